//! The register's SQLite schema: vehicles (the 85 technical fields), ownerships and the code
//! tables the project carries in `data/`. Opening, creating and filling code tables.

use crate::core::catalog::{column_of, TECHNICAL};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

pub use crate::core::codes::parse_code_csv;

/// Schema version stored in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

/// The code tables: (table, embedded `kode;navn` CSV). The CSVs are copies of the
/// authority's published tables (see `data/README.md`).
pub const CODE_TABLES: [(&str, &str); 9] = [
    ("code_make", include_str!("../../data/merkekode.csv")),
    ("code_fuel", include_str!("../../data/drivstoff.csv")),
    ("code_colour", include_str!("../../data/farge.csv")),
    (
        "code_vehicle_group",
        include_str!("../../data/kjoretoygruppe.csv"),
    ),
    ("code_technical", include_str!("../../data/tekniskkode.csv")),
    ("code_euronorm", include_str!("../../data/euronorm.csv")),
    (
        "code_status",
        include_str!("../../data/registreringsstatus.csv"),
    ),
    ("code_county", include_str!("../../data/fylke.csv")),
    // Municipalities valid from 1 January 2024 (SSB classification 131 after the county
    // reform); county = the first two digits.
    ("code_municipality", include_str!("../../data/kommune.csv")),
];

/// The DDL of the register. All technical fields are TEXT exactly as the authority writes
/// them (dates `YYYYMMDD`, multi-values comma-joined); NULL means empty.
pub fn ddl() -> String {
    let cols: Vec<String> = TECHNICAL
        .iter()
        .map(|(name, _, _)| format!("  {} TEXT", column_of(name)))
        .collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS vehicle (\n  id INTEGER PRIMARY KEY,\n{}\n);\n",
        cols.join(",\n")
    );
    sql.push_str(
        "CREATE TABLE IF NOT EXISTS ownership (
  id INTEGER PRIMARY KEY,
  vehicle_id INTEGER NOT NULL REFERENCES vehicle(id),
  role TEXT NOT NULL CHECK (role IN ('eier','medeier','leasingtaker')),
  national_id TEXT,          -- fødselsnummer / D-number; never exported
  first_name TEXT,
  middle_name TEXT,
  last_name TEXT,
  birth_date TEXT,           -- YYYYMMDD, derived from national_id
  org_number TEXT,           -- 9 digits, mod-11 checked
  org_name TEXT,
  address TEXT,
  postal_code TEXT,
  postal_place TEXT,
  municipality TEXT,         -- 4 digits; county = first two
  country_code TEXT,
  from_date TEXT NOT NULL,   -- YYYYMMDD
  to_date TEXT               -- NULL while current
);
CREATE TABLE IF NOT EXISTS register_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
",
    );
    for (table, _) in CODE_TABLES {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (code TEXT PRIMARY KEY, name TEXT NOT NULL);\n"
        ));
    }
    sql
}

/// The same DDL for PostgreSQL: the same tables and columns, ids as `bigint`, and every
/// text column `COLLATE "C"`, so comparisons, `upper` and `ORDER BY` follow SQLite's byte
/// order and the extracts of both are byte-identical.
pub fn ddl_postgres() -> String {
    ddl()
        .replace(" INTEGER PRIMARY KEY", " bigint PRIMARY KEY")
        .replace(" INTEGER NOT NULL", " bigint NOT NULL")
        .replace(" TEXT", " text COLLATE \"C\"")
}

/// Indexes used by the report filters. Created after bulk loads (faster than maintaining
/// them row by row).
pub const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS vehicle_make ON vehicle(tekn_merke);
CREATE INDEX IF NOT EXISTS vehicle_first_reg ON vehicle(tekn_reg_f_g);
CREATE INDEX IF NOT EXISTS vehicle_first_reg_no ON vehicle(tekn_reg_f_g_n);
CREATE INDEX IF NOT EXISTS vehicle_group ON vehicle(tekn_kjtgrp);
CREATE INDEX IF NOT EXISTS ownership_vehicle ON ownership(vehicle_id, role) WHERE to_date IS NULL;
CREATE INDEX IF NOT EXISTS ownership_from ON ownership(from_date);
";

/// Opens (creating if needed) a register database for writing, with the schema and the
/// code tables in place.
pub fn open_rw(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(&ddl())?;
    fill_code_tables(&conn)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(conn)
}

/// Opens an existing register read-only (extracts never write to the register).
pub fn open_ro(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Reports scan large ranges: a moderate page cache. No memory-mapped I/O: mapped pages
    // count as the process's resident memory, and extracts must stay small whatever the
    // register's size.
    conn.pragma_update(None, "cache_size", -16_000)?;
    Ok(conn)
}

/// Opens the register read-only and checks it is one this version reads: a SQLite file
/// with `user_version` [`SCHEMA_VERSION`] and the vehicle and ownership tables (what
/// `regdrop check` runs before the first extract would find out). The error says what to do.
pub fn check(path: &Path) -> Result<(), String> {
    let not_db = |e: rusqlite::Error| {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            "is not a register database (not SQLite); point `register` at the file `regdrop register import` or `register generate` wrote".to_string()
        } else {
            format!("cannot be opened: {e}; check the path and its permissions")
        }
    };
    let conn = open_ro(path).map_err(not_db)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(not_db)?;
    if version != SCHEMA_VERSION {
        return Err(format!(
            "has schema version {version}, this regdrop reads version {SCHEMA_VERSION}; import it again with `regdrop register import`"
        ));
    }
    for table in ["vehicle", "ownership", "code_make"] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| format!("cannot be read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "has no `{table}` table; import it again with `regdrop register import`"
            ));
        }
    }
    Ok(())
}

/// (Re)fills every code table from the embedded CSVs.
pub fn fill_code_tables(conn: &Connection) -> rusqlite::Result<()> {
    for (table, text) in CODE_TABLES {
        conn.execute(&format!("DELETE FROM {table}"), [])?;
        let mut stmt = conn.prepare(&format!(
            "INSERT OR REPLACE INTO {table} (code, name) VALUES (?1, ?2)"
        ))?;
        for (code, name) in parse_code_csv(text) {
            stmt.execute([&code, &name])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_postgresql_ddl_has_the_same_columns_with_byte_order_text() {
        let pg = ddl_postgres();
        assert!(!pg.contains(" TEXT") && !pg.contains("INTEGER"), "{pg}");
        assert_eq!(
            pg.matches("COLLATE \"C\"").count(),
            ddl().matches(" TEXT").count()
        );
        assert!(pg.contains("id bigint PRIMARY KEY,\n  tekn_kjm text COLLATE \"C\","));
        assert!(pg.contains("vehicle_id bigint NOT NULL REFERENCES vehicle(id)"));
    }

    #[test]
    fn creates_schema_and_code_tables() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_rw(&dir.path().join("r.sqlite")).unwrap();
        let makes: i64 = conn
            .query_row("SELECT count(*) FROM code_make", [], |r| r.get(0))
            .unwrap();
        assert!(makes > 2000, "{makes}");
        let tesla: String = conn
            .query_row("SELECT name FROM code_make WHERE code = '4360'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(tesla, "TESLA");
        let cols: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('vehicle')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cols, 86);
        let (n, oslo): (i64, String) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM code_municipality), name FROM code_municipality WHERE code = '0301'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, oslo.as_str()), (357, "Oslo"));
    }
}
