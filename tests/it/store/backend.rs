//! The two engines the store suite runs on: a SQLite file in a temp folder, or a fresh
//! database on the test process's PostgreSQL cluster ([`crate::util::postgres`]).
//! [`both!`] turns `fn test(db: &TestDb)` into a test per engine: `NAME::sqlite` and
//! `NAME::postgres`.

use crate::util::postgres::Postgres;
use regdrop::core::config::location::DbLocation;
use regdrop::store::Store;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// One empty store location of `engine`; [`TestDb::open`] opens (or reopens) it.
pub struct TestDb {
    pub engine: Engine,
    pub location: DbLocation,
    /// The PostgreSQL database's name (`None` on SQLite).
    pub pg_database: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new(engine: Engine) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let (location, pg_database) = match engine {
            Engine::Sqlite => (DbLocation::Sqlite(dir.path().join("state.sqlite")), None),
            Engine::Postgres => {
                let pg = Postgres::get();
                let name = pg.fresh_database();
                (
                    DbLocation::from_config(&pg.url(&name), Path::new("/")),
                    Some(name),
                )
            }
        };
        TestDb {
            engine,
            location,
            pg_database,
            _dir: dir,
        }
    }

    /// Opens the store (a new connection each time: a restart, or a second node).
    pub fn open(&self) -> Store {
        Store::open_location(&self.location).unwrap_or_else(|e| {
            panic!(
                "opening {}: {}",
                self.location,
                regdrop::core::errors::chain(&e)
            )
        })
    }

    /// Runs SQL behind the store's back, as someone with the sqlite3 shell or psql would.
    pub fn tamper(&self, s: &Store, sql: &str) {
        s.connection()
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {}", regdrop::core::errors::chain(&e)));
    }

    /// Drops the trigger that refuses edits to receipts (the tamperer's first step).
    pub fn drop_append_only_trigger(&self, s: &Store) {
        self.tamper(
            s,
            match self.engine {
                Engine::Sqlite => "DROP TRIGGER receipts_append_only",
                Engine::Postgres => "DROP TRIGGER receipts_append_only ON receipts",
            },
        );
    }
}

/// `both!(a, b, c)`: for each `fn a(db: &TestDb)`, a module `a` with the tests `sqlite` and
/// `postgres`.
macro_rules! both {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&$crate::store::backend::TestDb::new(
                    $crate::store::backend::Engine::Sqlite,
                ));
            }
            #[test]
            fn postgres() {
                super::$name(&$crate::store::backend::TestDb::new(
                    $crate::store::backend::Engine::Postgres,
                ));
            }
        }
    )+};
}
pub(crate) use both;

/// A clock the store handles of a test share (the nodes of one cluster), moved by the test.
#[derive(Clone)]
pub struct Clock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Clock {
    /// 2026-03-01 06:00:00 UTC.
    pub fn new() -> Clock {
        use chrono::TimeZone;
        let start = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap();
        Clock(std::sync::Arc::new(start.timestamp().into()))
    }
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let secs = self.0.load(std::sync::atomic::Ordering::SeqCst);
        chrono::DateTime::from_timestamp(secs, 0).unwrap()
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A handle on `db` (one node) that reads the time from `clock`.
pub fn handle(db: &TestDb, clock: &Clock) -> Store {
    let c = clock.clone();
    db.open().with_clock(move || c.now())
}
