//! Summary statistics of a register for operators (`regdrop register stats`): vehicle
//! counts by status, current ownerships by role, persons vs organisations, top makes,
//! first-registration years and the `register_meta` rows.

use super::schema;
use super::RegisterError;
use std::fmt;
use std::path::Path;

/// Counts describing one register database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterStats {
    pub vehicles: u64,
    /// (TEKN_REG_STATUS, count), largest first; empty status shown as "".
    pub by_status: Vec<(String, u64)>,
    /// Current ownerships (`to_date IS NULL`) per role: (role, count).
    pub current_by_role: Vec<(String, u64)>,
    /// Current ownerships held by persons and by organisations.
    pub current_persons: u64,
    pub current_organisations: u64,
    /// Ownership rows with a `to_date` (history).
    pub history_rows: u64,
    /// Top 10 makes: (code, name, count).
    pub top_makes: Vec<(String, String, u64)>,
    /// Smallest and largest year of TEKN_REG_F_G (first registration), if any.
    pub first_reg_years: Option<(String, String)>,
    /// `register_meta` rows, sorted by key.
    pub meta: Vec<(String, String)>,
}

/// Reads the statistics of the register at `db` (read-only).
pub fn stats(db: &Path) -> Result<RegisterStats, RegisterError> {
    if !db.exists() {
        return Err(RegisterError::Io {
            path: db.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such register database"),
        });
    }
    let conn = schema::open_ro(db)?;
    let count = |sql: &str| -> Result<u64, RegisterError> {
        Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
    };
    let pairs = |sql: &str| -> Result<Vec<(String, u64)>, RegisterError> {
        let mut st = conn.prepare(sql)?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                r.get::<_, i64>(1)? as u64,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let vehicles = count("SELECT count(*) FROM vehicle")?;
    let by_status = pairs(
        "SELECT tekn_reg_status, count(*) FROM vehicle GROUP BY tekn_reg_status ORDER BY 2 DESC, 1",
    )?;
    let current_by_role = pairs(
        "SELECT role, count(*) FROM ownership WHERE to_date IS NULL GROUP BY role
         ORDER BY CASE role WHEN 'eier' THEN 0 WHEN 'medeier' THEN 1 ELSE 2 END",
    )?;
    let (current_persons, current_organisations): (i64, i64) = conn.query_row(
        "SELECT coalesce(sum(org_number IS NULL), 0), coalesce(sum(org_number IS NOT NULL), 0)
         FROM ownership WHERE to_date IS NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let history_rows = count("SELECT count(*) FROM ownership WHERE to_date IS NOT NULL")?;
    let top_makes = {
        let mut st = conn.prepare(
            "SELECT t.code, coalesce(m.name, t.name, ''), t.n FROM
               (SELECT tekn_merke AS code, max(tekn_merkenavn) AS name, count(*) AS n
                  FROM vehicle GROUP BY tekn_merke ORDER BY n DESC LIMIT 10) t
             LEFT JOIN code_make m ON m.code = t.code ORDER BY t.n DESC, t.code",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let first_reg_years = conn.query_row(
        "SELECT min(substr(tekn_reg_f_g, 1, 4)), max(substr(tekn_reg_f_g, 1, 4)) FROM vehicle
         WHERE tekn_reg_f_g IS NOT NULL",
        [],
        |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
            ))
        },
    )?;
    let first_reg_years = match first_reg_years {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let meta = {
        let mut st = conn.prepare("SELECT key, value FROM register_meta ORDER BY key")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    Ok(RegisterStats {
        vehicles,
        by_status,
        current_by_role,
        current_persons: current_persons as u64,
        current_organisations: current_organisations as u64,
        history_rows,
        top_makes,
        first_reg_years,
        meta,
    })
}

/// [`stats`] of a PostgreSQL register, in one read-only snapshot.
pub fn stats_postgres(
    url: &crate::core::config::location::PgUrl,
) -> Result<RegisterStats, RegisterError> {
    use super::pg;
    let w = pg::connect(url)?;
    pg::batch(&w, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
    let rows = |sql: &str| pg::text_rows(&w, sql);
    let num =
        |v: &Option<String>| -> u64 { v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0) };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let one = |sql: &str| -> Result<Vec<Option<String>>, RegisterError> {
        Ok(rows(sql)?.into_iter().next().unwrap_or_default())
    };
    let pairs = |sql: &str| -> Result<Vec<(String, u64)>, RegisterError> {
        Ok(rows(sql)?
            .iter()
            .map(|r| (text(&r[0]), num(&r[1])))
            .collect())
    };
    let vehicles = num(&one("SELECT count(*)::text FROM vehicle")?[0]);
    let by_status = pairs(
        "SELECT tekn_reg_status, count(*)::text FROM vehicle GROUP BY tekn_reg_status ORDER BY count(*) DESC, 1",
    )?;
    let current_by_role = pairs(
        "SELECT role, count(*)::text FROM ownership WHERE to_date IS NULL GROUP BY role
         ORDER BY CASE role WHEN 'eier' THEN 0 WHEN 'medeier' THEN 1 ELSE 2 END",
    )?;
    let held = one("SELECT (count(*) FILTER (WHERE org_number IS NULL))::text,
                (count(*) FILTER (WHERE org_number IS NOT NULL))::text
         FROM ownership WHERE to_date IS NULL")?;
    let history_rows =
        num(&one("SELECT count(*)::text FROM ownership WHERE to_date IS NOT NULL")?[0]);
    let top_makes = rows(
        "SELECT t.code, coalesce(m.name, t.name, ''), t.n::text FROM
           (SELECT tekn_merke AS code, max(tekn_merkenavn) AS name, count(*) AS n
              FROM vehicle GROUP BY tekn_merke ORDER BY n DESC LIMIT 10) t
         LEFT JOIN code_make m ON m.code = t.code ORDER BY t.n DESC, t.code",
    )?
    .iter()
    .map(|r| (text(&r[0]), text(&r[1]), num(&r[2])))
    .collect();
    let years = one(
        "SELECT min(substr(tekn_reg_f_g, 1, 4)), max(substr(tekn_reg_f_g, 1, 4)) FROM vehicle
         WHERE tekn_reg_f_g IS NOT NULL",
    )?;
    let first_reg_years = match (&years[0], &years[1]) {
        (Some(a), Some(b)) => Some((a.clone(), b.clone())),
        _ => None,
    };
    let meta = rows("SELECT key, value FROM register_meta ORDER BY key")?
        .iter()
        .map(|r| (text(&r[0]), text(&r[1])))
        .collect();
    pg::batch(&w, "COMMIT")?;
    Ok(RegisterStats {
        vehicles,
        by_status,
        current_by_role,
        current_persons: num(&held[0]),
        current_organisations: num(&held[1]),
        history_rows,
        top_makes,
        first_reg_years,
        meta,
    })
}

/// Formats a count with thin thousands separators: 4 073 210.
fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

impl fmt::Display for RegisterStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<34} {:>12}", "Vehicles", n(self.vehicles))?;
        if let Some((a, b)) = &self.first_reg_years {
            writeln!(f, "{:<34} {:>12}", "First registered", format!("{a}-{b}"))?;
        }
        writeln!(f, "\nBy registration status")?;
        for (s, c) in &self.by_status {
            let s = if s.is_empty() { "(empty)" } else { s };
            writeln!(f, "  {:<32} {:>12} {:>8}", s, n(*c), pct(*c, self.vehicles))?;
        }
        writeln!(f, "\nCurrent ownerships by role")?;
        for (r, c) in &self.current_by_role {
            writeln!(f, "  {:<32} {:>12}", r, n(*c))?;
        }
        let cur = self.current_persons + self.current_organisations;
        writeln!(
            f,
            "  {:<32} {:>12} {:>8}",
            "held by persons",
            n(self.current_persons),
            pct(self.current_persons, cur)
        )?;
        writeln!(
            f,
            "  {:<32} {:>12} {:>8}",
            "held by organisations",
            n(self.current_organisations),
            pct(self.current_organisations, cur)
        )?;
        writeln!(
            f,
            "  {:<32} {:>12}",
            "history rows (ended)",
            n(self.history_rows)
        )?;
        writeln!(f, "\nTop makes")?;
        for (code, name, c) in &self.top_makes {
            writeln!(
                f,
                "  {:<6}{:<26} {:>12} {:>8}",
                code,
                name,
                n(*c),
                pct(*c, self.vehicles)
            )?;
        }
        if !self.meta.is_empty() {
            writeln!(f, "\nMeta")?;
            for (k, v) in &self.meta {
                writeln!(f, "  {:<32} {}", k, v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1000), "1 000");
        assert_eq!(n(4_073_210), "4 073 210");
        assert_eq!(pct(1, 4), "25.0 %");
        assert_eq!(pct(1, 0), "-");
    }

    #[test]
    fn empty_register_has_zero_counts_and_displays() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.sqlite");
        drop(schema::open_rw(&db).unwrap());
        let s = stats(&db).unwrap();
        assert_eq!(s.vehicles, 0);
        assert!(s.first_reg_years.is_none());
        assert!(s.to_string().contains("Vehicles"));
        assert!(stats(&dir.path().join("missing.sqlite")).is_err());
    }
}
