//! Schema versions on both engines: SQLite files and PostgreSQL databases migrate step by
//! step from an old version, a newer schema is refused, both step lists end with the same
//! tables and columns, and two nodes starting at once on one database migrate once (and
//! all open a new SQLite file).

use super::backend::{both, Engine, TestDb};
use super::chain::{receipt_for, ts};
use regdrop::store::migrations::{self, LATEST_VERSION};
use regdrop::store::*;
use rusqlite::Connection;
use std::collections::BTreeSet;
use std::path::Path;

fn db(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("state.sqlite")
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

#[test]
fn opens_durable_wal_file_with_private_mode() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(db(&dir)).unwrap();
    let c = s.connection();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    let fk: i64 = c
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), sync, fk), ("wal", 2, 1));
    assert_eq!(s.schema_version().unwrap(), LATEST_VERSION);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(db(&dir)).unwrap().permissions().mode();
        assert_eq!(m & 0o777, 0o600);
    }
}

#[test]
fn a_version_1_sqlite_file_is_migrated_to_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = raw(&db(&dir));
        assert_eq!(migrations::migrate_to(&c, 1).unwrap(), vec![1]);
        c.execute(
            "INSERT INTO runs (id, subscription, scheduled_at, created_at, state, updated_at) \
             VALUES ('acme-20260101T060000Z', 'acme', '2026-01-01T06:00:00Z', \
             '2026-01-01T06:00:00Z', 'sealed', '2026-01-01T06:00:00Z')",
            [],
        )
        .unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
        let has_anchor: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'chain_anchor'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_anchor, 0);
    }
    let s = Store::open(db(&dir)).unwrap();
    assert_eq!(s.schema_version().unwrap(), LATEST_VERSION);
    const { assert!(LATEST_VERSION >= 2) };
    let names: Vec<String> = s
        .connection()
        .query(
            "SELECT name FROM sqlite_master WHERE name IN ('chain_anchor', 'receipts_append_only')",
            [],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0).unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // The old run is intact and can be delivered.
    let run = s.get_run(&"acme-20260101T060000Z".into()).unwrap().unwrap();
    assert_eq!(run.state, RunState::Sealed);
    s.commit_receipt(&receipt_for(&run, ts(2026, 1, 1, 6, 5, 0)))
        .unwrap();
    assert!(s.verify_chain().unwrap().is_intact());
}

fn a_store_from_a_newer_build_is_refused(db: &TestDb) {
    let s = db.open();
    db.tamper(
        &s,
        &match db.engine {
            Engine::Sqlite => format!("PRAGMA user_version = {}", LATEST_VERSION + 1),
            Engine::Postgres => {
                format!("UPDATE schema_version SET version = {}", LATEST_VERSION + 1)
            }
        },
    );
    drop(s);
    let err = Store::open_location(&db.location).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
}

both!(a_store_from_a_newer_build_is_refused);

fn pg_db(db: &TestDb) -> db::Db {
    db::Db::Postgres(db::pg::Pg::connect(db.location.postgres().unwrap()).unwrap())
}

#[test]
fn a_version_1_postgres_database_is_migrated_to_the_latest() {
    let db = TestDb::new(Engine::Postgres);
    {
        let c = pg_db(&db);
        assert_eq!(migrations::postgres::migrate_to(&c, 1).unwrap(), vec![1]);
        c.execute(
            "INSERT INTO runs (id, subscription, scheduled_at, created_at, state, updated_at) \
             VALUES ('acme-20260101T060000Z', 'acme', '2026-01-01T06:00:00Z', \
             '2026-01-01T06:00:00Z', 'sealed', '2026-01-01T06:00:00Z')",
            [],
        )
        .unwrap();
        assert_eq!(migrations::version_of(&c).unwrap(), 1);
        let has_anchor: bool = c
            .query_row("SELECT to_regclass('chain_anchor') IS NOT NULL", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(!has_anchor);
    }
    let s = db.open();
    assert_eq!(s.schema_version().unwrap(), LATEST_VERSION);
    let run = s.get_run(&"acme-20260101T060000Z".into()).unwrap().unwrap();
    assert_eq!(run.state, RunState::Sealed);
    s.commit_receipt(&receipt_for(&run, ts(2026, 1, 1, 6, 5, 0)))
        .unwrap();
    assert!(s.verify_chain().unwrap().is_intact());
    // The append-only trigger came with step 2.
    let err = s
        .connection()
        .execute("UPDATE receipts SET bytes = 1", [])
        .unwrap_err();
    assert!(regdrop::core::errors::chain(&err).contains("append-only"));
}

/// `(table, column)` of every table a fully migrated store has.
fn columns(s: &Store) -> BTreeSet<(String, String)> {
    let c = s.connection();
    let rows = match s.backend() {
        db::Backend::Sqlite => c
            .query(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
                [],
            )
            .unwrap(),
        db::Backend::Postgres => c
            .query(
                "SELECT table_name, column_name FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name != 'schema_version'",
                [],
            )
            .unwrap(),
    };
    rows.iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
        .collect()
}

#[test]
fn both_step_lists_end_at_the_same_version_with_the_same_tables_and_columns() {
    assert_eq!(
        migrations::postgres::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>(),
        migrations::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>(),
        "every SQLite step needs its PostgreSQL step with the same number"
    );
    let sqlite = columns(&Store::open_in_memory().unwrap());
    let pg_db = TestDb::new(Engine::Postgres);
    let mut pg = columns(&pg_db.open());
    for (t, c) in migrations::postgres::ONLY_ON_POSTGRES {
        assert!(pg.remove(&(t.to_string(), c.to_string())), "{t}.{c}");
    }
    assert!(sqlite.len() > 50, "{sqlite:?}");
    assert_eq!(
        sqlite.difference(&pg).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "on SQLite only"
    );
    assert_eq!(
        pg.difference(&sqlite).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "on PostgreSQL only"
    );
}

#[test]
fn two_nodes_starting_at_once_on_an_empty_database_migrate_once() {
    let db = TestDb::new(Engine::Postgres);
    let barrier = std::sync::Barrier::new(4);
    let applied: Vec<Vec<i64>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                sc.spawn(|| {
                    let c = pg_db(&db);
                    barrier.wait();
                    migrations::migrate_db(&c).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = applied.concat();
    all.sort();
    assert_eq!(all, (1..=LATEST_VERSION).collect::<Vec<_>>(), "{applied:?}");
    assert_eq!(db.open().schema_version().unwrap(), LATEST_VERSION);
}

/// Daemons started together on a new SQLite file all open it (SQLite refuses the switch
/// to WAL at once, without waiting, while another connection holds the lock: this failed
/// one round in a few dozen before the switch was retried).
#[test]
fn nodes_starting_at_once_on_a_new_sqlite_file_all_open_it() {
    for round in 0..150 {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let barrier = std::sync::Barrier::new(3);
        std::thread::scope(|sc| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    sc.spawn(|| {
                        barrier.wait();
                        Store::open(&path).map(|s| s.schema_version().unwrap())
                    })
                })
                .collect();
            for h in handles {
                match h.join().unwrap() {
                    Ok(v) => assert_eq!(v, LATEST_VERSION),
                    Err(e) => panic!("round {round}: {e:?}"),
                }
            }
        });
    }
}
