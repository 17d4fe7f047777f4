//! Parallel extracts from a PostgreSQL register (`extract::parallel::postgres`, real server
//! from the fixture): several reader connections give byte for byte the file one
//! connection gives and the SQLite register gives, in every text format and with filters;
//! every reader sees the register state the count saw when a writer commits in between; a
//! role that may not open a second connection, or not export its snapshot, is read on one;
//! a bad value is reported at the row one reader reports; a reader's connection cut midway
//! is a retryable error.

use super::parallel::{extract_in, BODIES, PG_BLOCK_ROWS};
use super::pg_register::{pair, sub, write_config, VEHICLES};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::{self, postgres};
use regdrop::core::config::location::DbLocation;
use regdrop::core::config::Subscription;
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::extract::{self, ExtractError, Register};
use regdrop::register;
use std::path::Path;

/// The extract of `s` from the register at `at` on `threads` readers: bytes, rows, readers.
fn extract_with(
    at: &DbLocation,
    s: &Subscription,
    threads: usize,
) -> Result<(Vec<u8>, u64, usize), ExtractError> {
    let register = Register::open(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    let snap = register.snapshot()?;
    let planned = extract::plan(&snap, &s.extract, None, u64::MAX)?;
    let got = extract_in(&snap, planned, s, threads)?;
    snap.end()?;
    Ok(got)
}

/// A fresh PostgreSQL register of the fixture's size: (database, its location).
fn fresh_register() -> (String, DbLocation) {
    let (_, db, url) = postgres::fresh();
    let at = DbLocation::from_config(&url, Path::new(""));
    let opts = register::GenerateOptions {
        vehicles: VEHICLES,
        seed: 5,
    };
    register::generate_postgres(at.postgres().unwrap(), &opts, &mut |_| {}).unwrap();
    (db, at)
}

#[test]
fn several_postgres_readers_write_the_file_one_reader_and_sqlite_write() {
    let p = pair();
    for body in BODIES {
        let s = sub(body);
        let (lite, rows, _) = extract_with(&p.sqlite, &s, 1).unwrap();
        let (one, n, readers) = extract_with(&p.pg, &s, 1).unwrap();
        assert_eq!((n, readers), (rows, 1), "{body}");
        assert!(
            one == lite,
            "{body}: PostgreSQL on one connection differs from SQLite"
        );
        assert!(
            rows > 2 * PG_BLOCK_ROWS,
            "{body}: {rows} rows are too few blocks"
        );
        for threads in [2, 3] {
            let (many, n, readers) = extract_with(&p.pg, &s, threads).unwrap();
            assert_eq!((n, readers), (rows, threads), "{body}, {threads} readers");
            assert!(many == lite, "{body}, {threads} readers: the files differ");
        }
    }
}

#[test]
fn postgres_readers_see_the_register_the_count_saw_when_a_writer_commits_in_between() {
    let (db, at) = fresh_register();
    let pg = postgres::Postgres::get();
    let s = sub(BODIES[0]);
    let (before, rows, _) = extract_with(&at, &s, 1).unwrap();
    let register = Register::open(&at).unwrap();
    let snap = register.snapshot().unwrap();
    let planned = extract::plan(&snap, &s.extract, None, u64::MAX).unwrap();
    assert_eq!(planned.0, rows);
    // Committed after the count, before the readers connect.
    pg.psql(
        &db,
        "UPDATE vehicle SET tekn_modell = 'CHANGED'; \
         DELETE FROM ownership WHERE vehicle_id % 2 = 0; DELETE FROM vehicle WHERE id % 2 = 0",
    );
    let (during, n, readers) = extract_in(&snap, planned, &s, 2).unwrap();
    snap.end().unwrap();
    assert_eq!((n, readers), (rows, 2));
    assert!(during == before, "a reader saw the writer's commit");
    // The commit did happen: a new extract sees it.
    let (after, n, _) = extract_with(&at, &s, 2).unwrap();
    assert!(n < rows && after != before, "{n} of {rows} rows");
}

#[test]
fn a_role_that_may_not_open_a_second_connection_is_read_on_one() {
    let p = pair();
    let pg = postgres::Postgres::get();
    let role = format!("one_conn_{}", std::process::id());
    pg.psql(
        &p.db,
        &format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 1; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
        ),
    );
    let url = format!("postgresql://{role}@127.0.0.1:{}/{}", pg.port, p.db);
    let at = DbLocation::from_config(&url, Path::new(""));
    let s = sub(BODIES[0]);
    let (lite, rows, _) = extract_with(&p.sqlite, &s, 1).unwrap();
    let (got, n, readers) = extract_with(&at, &s, 2).unwrap();
    assert_eq!((n, readers), (rows, 1), "the second connection was refused");
    assert!(got == lite, "the files differ");
}

#[test]
fn a_role_that_may_not_export_its_snapshot_is_read_on_one_connection() {
    let (db, _) = fresh_register();
    let pg = postgres::Postgres::get();
    let role = format!("no_export_{}", std::process::id());
    pg.psql(
        &db,
        &format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; \
             REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC"
        ),
    );
    let url = format!("postgresql://{role}@127.0.0.1:{}/{db}", pg.port);
    let at = DbLocation::from_config(&url, Path::new(""));
    let s = sub(BODIES[0]);
    // The refused export aborted the read's transaction: it began again, and the count and
    // the rows come from that one.
    let (got, rows, readers) = extract_with(&at, &s, 2).unwrap();
    assert_eq!(readers, 1, "no snapshot to share");
    let superuser = DbLocation::from_config(&pg.url(&db), Path::new(""));
    let (all, n, many) = extract_with(&superuser, &s, 2).unwrap();
    assert_eq!((n, many), (rows, 2));
    assert!(got == all, "the files differ");
}

#[test]
fn a_bad_value_far_into_the_file_is_reported_at_the_row_one_postgres_reader_reports() {
    let (db, at) = fresh_register();
    // The 2222nd vehicle's model holds the separator, which dsv cannot carry.
    postgres::Postgres::get().psql(
        &db,
        "UPDATE vehicle SET tekn_modell = 'A¤B' \
         WHERE id = (SELECT id FROM vehicle ORDER BY id LIMIT 1 OFFSET 2221)",
    );
    let s = sub(BODIES[0]);
    let one = extract_with(&at, &s, 1).unwrap_err();
    assert!(
        matches!(one, ExtractError::Value { row: 2222, .. }),
        "{one}"
    );
    for threads in [2, 3] {
        let many = extract_with(&at, &s, threads).unwrap_err();
        assert_eq!(many.to_string(), one.to_string(), "{threads} readers");
    }
}

#[test]
fn a_reader_connection_cut_midway_is_a_retryable_register_error() {
    let p = pair();
    let pg = postgres::Postgres::get();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The extract's own connection passes; the first reader's is cut after 100 kB of its
    // COPY data.
    let cut = Faults {
        cut_back_after: Some(100_000),
        spare_first: 1,
        cut_connections: Some(1),
        ..Faults::default()
    };
    let proxy = rt.block_on(Proxy::with(0, pg.port, cut));
    let url = format!("postgresql://postgres@127.0.0.1:{}/{}", proxy.port, p.db);
    let at = DbLocation::from_config(&url, Path::new(""));
    let s = sub(BODIES[0]);
    let err = extract_with(&at, &s, 2).unwrap_err();
    let text = regdrop::core::errors::chain(&err);
    assert_eq!(proxy.connections(), 3, "the extract's and two readers'");
    assert_eq!(err.class(), ErrorClass::Retryable, "{text}");
    assert!(text.contains("PostgreSQL register"), "{text}");
}

#[test]
fn check_notes_a_register_an_extract_would_read_on_one_connection() {
    let pg = postgres::Postgres::get();
    let (db, _) = fresh_register();
    let (limited, no_export) = (
        format!("check_one_{}", std::process::id()),
        format!("check_noexp_{}", std::process::id()),
    );
    pg.psql(
        &db,
        &format!(
            "CREATE ROLE {limited} LOGIN CONNECTION LIMIT 1; CREATE ROLE {no_export} LOGIN; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {limited}, {no_export}; \
             REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC; \
             GRANT EXECUTE ON FUNCTION pg_export_snapshot() TO {limited}"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let check = |user: &str| {
        let url = format!("postgresql://{user}@127.0.0.1:{}/{db}", pg.port);
        write_config(d, &format!("register = \"{url}\""));
        let out = util::cli::run(util::cli::regdrop_in(d).arg("check"));
        assert!(!out.text().contains("register:"), "{}", out.text());
        out.text()
    };
    let text = check("postgres");
    assert!(!text.contains("read on one connection"), "{text}");
    let text = check(&limited);
    assert!(
        text.contains("note: the register postgresql://")
            && text.contains("extracts will read on one connection")
            && text.contains("a second connection cannot share the read")
            && text.contains("too many connections for role"),
        "{text}"
    );
    let text = check(&no_export);
    assert!(
        text.contains("extracts will read on one connection") && text.contains("may not export"),
        "{text}"
    );
}
