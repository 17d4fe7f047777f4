//! Parallel extracts from a SQLite register (`extract::parallel`): several reader threads
//! give byte for byte the file one thread gives, in every text format, with filters and
//! with gaps in the ids, in WAL and rollback-journal registers; all readers see the
//! register state the count saw, even when a writer commits in between; a bad value is
//! reported at the same row as one thread reports it.

use super::selection_and_formats::{open, sub};
use regdrop::core::config::Subscription;
use regdrop::extract::{self, ExtractError, Options};
use regdrop::register;
use std::path::{Path, PathBuf};

/// A generated register of `vehicles` in a fresh folder.
fn register_of(vehicles: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    register::generate(
        &db,
        &register::GenerateOptions { vehicles, seed: 7 },
        &mut |_| {},
    )
    .unwrap();
    (dir, db)
}

/// Rows per block of a PostgreSQL register in these tests (`extract::pg_parallel`): the
/// 2,500 vehicles are 50 blocks, a filter's 217 are 4. A SQLite register ignores it.
pub(super) const PG_BLOCK_ROWS: u64 = 50;

/// The extract of `s` from an already opened snapshot on `threads` readers (every size
/// goes parallel when `threads > 1`): bytes, rows, readers.
pub(super) fn extract_in(
    snap: &extract::Snapshot<'_>,
    planned: (u64, regdrop::core::config::Format, Option<String>),
    s: &Subscription,
    threads: usize,
) -> Result<(Vec<u8>, u64, usize), ExtractError> {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(dir.path());
    opts.threads = threads;
    opts.parallel_min_rows = 0;
    opts.pg_block_rows = PG_BLOCK_ROWS;
    let mut out = Vec::new();
    let mut last = (0, 0);
    let o = extract::run(
        snap,
        &s.extract,
        None,
        planned,
        &mut out,
        &opts,
        &mut |d, t| last = (d, t),
    )?;
    assert_eq!(last, (o.rows, o.rows), "progress ends at the total");
    Ok((out, o.rows, o.readers))
}

/// The extract of `s` on `threads` readers; checks that they were all used.
fn extract_with(
    db: &Path,
    s: &Subscription,
    threads: usize,
) -> Result<(Vec<u8>, u64), ExtractError> {
    let register = open(db);
    let snap = register.snapshot().unwrap();
    let planned = extract::plan(&snap, &s.extract, None, u64::MAX).unwrap();
    let (out, rows, readers) = extract_in(&snap, planned, s, threads)?;
    assert_eq!(readers, threads, "the readers asked for did the reading");
    Ok((out, rows))
}

pub(super) const BODIES: [&str; 5] = [
    "report = \"technical_owners\"",
    "report = \"technical_owners\"\nformat = \"csv\"\nencoding = \"iso-8859-1\"\nline_ending = \"crlf\"",
    "report = \"technical\"\nformat = \"dsv\"\nencoding = \"iso-8859-1\"",
    "report = \"owners\"\nformat = \"csv\"",
    "report = \"technical_owners\"\n[extract.filter]\nfuel = [\"1\", \"5\"]\nfirst_registration_year = [2012, 2019]",
];

#[test]
fn several_readers_write_the_one_reader_file_in_every_text_format() {
    let (_dir, db) = register_of(9000);
    for body in BODIES {
        let s = sub(body);
        let (one, rows) = extract_with(&db, &s, 1).unwrap();
        assert!(rows > 100, "{body}: {rows} rows");
        for threads in [2, 3] {
            let (many, n) = extract_with(&db, &s, threads).unwrap();
            assert_eq!(n, rows, "{body}, {threads} readers");
            assert!(one == many, "{body}, {threads} readers: the files differ");
        }
    }
}

#[test]
fn ids_with_gaps_and_a_rollback_journal_register_give_the_same_file() {
    let (_dir, db) = register_of(6000);
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        // Gaps: a long run of missing ids, and ids far beyond the others.
        c.execute_batch(
            "PRAGMA foreign_keys = OFF;
             DELETE FROM ownership WHERE vehicle_id BETWEEN 1000 AND 3999;
             DELETE FROM vehicle WHERE id BETWEEN 1000 AND 3999;
             UPDATE ownership SET vehicle_id = vehicle_id + 1000000000 WHERE vehicle_id > 5500;
             UPDATE vehicle SET id = id + 1000000000 WHERE id > 5500;",
        )
        .unwrap();
    }
    let s = sub(BODIES[0]);
    let (one, rows) = extract_with(&db, &s, 1).unwrap();
    assert_eq!(rows, 3000);
    assert!(
        one == extract_with(&db, &s, 2).unwrap().0,
        "WAL register: the files differ"
    );
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
    }
    assert!(
        one == extract_with(&db, &s, 3).unwrap().0,
        "rollback-journal register: the files differ"
    );
}

/// Deletes every other vehicle through `c` (another process's connection).
fn delete_half(c: &rusqlite::Connection) {
    c.execute_batch(
        "DELETE FROM ownership WHERE vehicle_id % 2 = 0; DELETE FROM vehicle WHERE id % 2 = 0;",
    )
    .unwrap();
    let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}

#[test]
fn readers_see_the_register_the_count_saw_when_a_writer_commits_in_between() {
    let (_dir, db) = register_of(6000);
    let s = sub(BODIES[0]);
    // Another process keeps the register open and has written to it (its WAL holds
    // frames): the readers open the snapshot of the extract's read.
    let writer = rusqlite::Connection::open(&db).unwrap();
    let mode: String = writer
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "the generated register is in WAL mode");
    writer
        .execute(
            "UPDATE vehicle SET tekn_modell = 'X' || coalesce(tekn_modell, '') WHERE id = 1",
            [],
        )
        .unwrap();
    let (before, rows) = extract_with(&db, &s, 1).unwrap();
    let register = open(&db);
    let snap = register.snapshot().unwrap();
    let planned = extract::plan(&snap, &s.extract, None, u64::MAX).unwrap();
    assert_eq!(planned.0, rows);
    delete_half(&writer);
    let (during, n, readers) = extract_in(&snap, planned, &s, 2).unwrap();
    snap.end().unwrap();
    assert_eq!((n, readers), (rows, 2));
    assert!(during == before, "a reader saw the writer's commit");
    // The commit did happen: a new extract sees it.
    assert_eq!(extract_with(&db, &s, 2).unwrap().1, rows / 2);
}

#[test]
fn a_commit_into_a_register_at_rest_after_the_count_leaves_the_reading_to_one_thread() {
    let (_dir, db) = register_of(6000);
    let s = sub(BODIES[0]);
    // At rest: the generator closed it, nothing is in its WAL; SQLite has no snapshot of
    // such a read to give the readers.
    let (before, rows) = extract_with(&db, &s, 2).unwrap();
    let register = open(&db);
    let snap = register.snapshot().unwrap();
    let planned = extract::plan(&snap, &s.extract, None, u64::MAX).unwrap();
    delete_half(&rusqlite::Connection::open(&db).unwrap());
    let (during, n, readers) = extract_in(&snap, planned, &s, 2).unwrap();
    snap.end().unwrap();
    assert_eq!(
        (n, readers),
        (rows, 1),
        "readers that would see the commit are not used"
    );
    assert!(during == before, "the extract saw the writer's commit");
    assert_eq!(extract_with(&db, &s, 2).unwrap().1, rows / 2);
}

#[test]
fn a_bad_value_far_into_the_file_is_reported_at_the_row_one_reader_reports() {
    let (_dir, db) = register_of(9000);
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        // The 7777th vehicle's model holds the separator, which dsv cannot carry.
        c.execute("UPDATE vehicle SET tekn_modell = 'A¤B' WHERE id = (SELECT id FROM vehicle ORDER BY id LIMIT 1 OFFSET 7776)", [])
            .unwrap();
    }
    let s = sub(BODIES[0]);
    let one = extract_with(&db, &s, 1).unwrap_err();
    assert!(
        matches!(one, ExtractError::Value { row: 7777, .. }),
        "{one}"
    );
    for threads in [2, 3] {
        let many = extract_with(&db, &s, threads).unwrap_err();
        assert_eq!(many.to_string(), one.to_string(), "{threads} readers");
    }
}
