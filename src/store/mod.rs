//! The state store: runs, attempts and hash-chained receipts in one SQLite file next to
//! the spool (docs/design.md §4).
//!
//! - A run is recorded for (subscription, scheduled time) before any work, so a crash
//!   always leaves something to resume ([`Store::unfinished_runs`]). Run ids are
//!   `<subscription>-<YYYYMMDDTHHMMSSZ>` ([`run_id`]); a subscription has at most one
//!   active run (enforced by a partial unique index).
//! - [`Store::commit_receipt`] writes the receipt and marks the run delivered in one
//!   transaction; never two receipts per run (UNIQUE(run_id) plus an idempotent API).
//! - Receipts form a hash chain ([`chain`]); [`Store::verify_chain`] names the first broken
//!   link; retention ([`Store::purge_older_than`]) keeps the rest verifiable via an anchor.
//! - Durability: WAL with `synchronous=FULL` (a committed receipt survives power loss),
//!   `busy_timeout` 5 s, foreign keys on, versioned [`migrations`].
//!
//! A `Store` holds one connection and is `Send` but not `Sync`: share it behind a mutex and
//! call it from a blocking thread. Timestamps are stored as UTC text ([`model::TS_FORMAT`]).
//!
//! `Store` is one type with an `impl` block per table: `runs`, `artifacts`
//! (the sealed files of a run), `attempts`, `email` (the passphrase SMS and the mail of an
//! e-mail run), `receipts` (append, read, verify, export), `resolutions` (an operator's
//! decision closing a run), `notices` (notifications sent per run, event and recipient)
//! `leases` and `nodes` (several daemons on one store) and `retention`. This file opens and migrates the file and hands out transactions.
//! The pure parts import one way: [`chain`] -> [`model`] -> `error` (which defines
//! [`BrokenLink`], the finding both report).

mod artifacts;
mod attempts;
pub mod chain;
pub mod db;
mod email;
mod error;
pub mod export;
mod leases;
pub mod migrations;
pub mod model;
mod nodes;
mod notices;
mod receipts;
mod resolutions;
mod retention;
mod runs;

pub use chain::{ChainReport, GENESIS};
pub use error::{pg_hint, BreakKind, BrokenLink, Result, StoreError};
pub use leases::{Claim, Lease, LeaseInfo};
pub use model::{
    fmt_ts, month_range, parse_month, parse_ts, run_id, Artifact, Attempt, AttemptOutcome,
    DeliveredFile, EmailSend, EmailSent, NewReceipt, NewResolution, NewRun, Receipt, ReceiptFilter,
    Resolution, Run, RunCreated, RunFile, RunFilter, RunId, RunState, SubscriptionId, Transport,
};
pub use nodes::{peek_node, Registration};
pub use notices::{Channel, NewNotification, NoticeState, Notification};
pub use retention::PurgeCounts;

use crate::core::config::location::{DbLocation, PgUrl};
use chrono::{DateTime, Utc};
use db::{Db, Tx};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a writer waits for another connection's lock before `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The state store. See the module docs.
pub struct Store {
    conn: Db,
    path: Option<PathBuf>,
    clock: Clock,
    /// This process's node ([`Store::set_node`]): fences the commit points by its lease.
    node: Option<String>,
    /// This daemon's registered name ([`Store::set_registration`]): fences by the name.
    registered: Option<nodes::Registered>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("db", &self.conn)
            .finish_non_exhaustive()
    }
}

fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {v}")))
}

fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} too large: {v}")))
}

/// The store behind a shared mutex, also when a holder panicked: its state lives in SQLite
/// and every change is a transaction, so a poisoned lock holds nothing half-done.
pub fn lock(store: &std::sync::Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Opens and migrates the store `state_db` names: a SQLite file ([`Store::open`]) or a
    /// PostgreSQL database ([`Store::open_postgres`]).
    pub fn open_location(location: &DbLocation) -> Result<Store> {
        match location {
            DbLocation::Sqlite(path) => Self::open(path),
            DbLocation::Postgres(url) => Self::open_postgres(url),
        }
    }

    /// Connects to and migrates the store in a PostgreSQL database (several nodes may share
    /// it; see docs/design.md §7).
    pub fn open_postgres(url: &PgUrl) -> Result<Store> {
        let conn = Db::Postgres(db::pg::Pg::connect(url)?);
        migrations::migrate_db(&conn)?;
        Ok(Store {
            conn,
            path: None,
            clock: Arc::new(Utc::now),
            node: None,
            registered: None,
        })
    }

    /// Opens (creating it 0600 if missing) and migrates the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        create_private(path)?;
        let conn = Connection::open(path)?;
        // Before anything that takes a lock (switching to WAL does): another process (the
        // daemon, `regdrop status`) may be writing, and must be waited for, not failed on.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode = switch_to_wal(&conn)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "State store could not switch to WAL.");
        }
        Self::setup(conn, Some(path.to_path_buf()))
    }

    /// An in-memory store (tests and dry runs; nothing is durable).
    pub fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(conn: Connection, path: Option<PathBuf>) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        migrations::migrate(&conn)?;
        Ok(Store {
            conn: Db::Sqlite(conn),
            path,
            clock: Arc::new(Utc::now),
            node: None,
            registered: None,
        })
    }

    /// Replaces the clock used for `created_at`, `updated_at` and attempt times (tests).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    ) -> Store {
        self.clock = Arc::new(clock);
        self
    }

    /// The file behind this store (`None` in memory and on PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Which engine holds this store.
    pub fn backend(&self) -> db::Backend {
        self.conn.backend()
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64> {
        migrations::version_of(&self.conn)
    }

    /// The raw connection, for diagnostics and tests. Writing through it bypasses the
    /// store's rules (tests use that to play a tamperer).
    pub fn connection(&self) -> &Db {
        &self.conn
    }

    fn now(&self) -> String {
        fmt_ts((self.clock)())
    }

    fn write_tx(&self) -> Result<Tx<'_>> {
        self.conn.write_tx()
    }
}

/// `PRAGMA journal_mode = WAL`, retried while another process holds the file's lock.
///
/// SQLite answers a journal-mode change that meets a lock with `SQLITE_BUSY` at once,
/// without its busy handler: two daemons starting together on a new file would see one
/// of them fail. So the switch is retried here, for up to [`BUSY_TIMEOUT`] like every
/// other statement. Once a file is in WAL (it stays so), the pragma only reads the mode.
fn switch_to_wal(conn: &Connection) -> Result<String> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return Ok(r?),
        }
    }
}

/// What `regdrop check` learns from a PostgreSQL store without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgProbe {
    /// The schema version found (0: an empty database, migrated at the first open).
    pub version: i64,
    /// Whether the login may create tables where the store's go (needed to migrate).
    pub can_create: bool,
}

/// Connects to a PostgreSQL store and reads its schema version, changing nothing.
pub fn probe_postgres(url: &PgUrl) -> Result<PgProbe> {
    let conn = Db::Postgres(db::pg::Pg::connect(url)?);
    Ok(PgProbe {
        version: migrations::version_of(&conn)?,
        can_create: conn.query_row(
            "SELECT has_schema_privilege(current_schema(), 'CREATE')",
            [],
            |r| r.get(0),
        )?,
    })
}

/// Creates the file with mode 0600 if it does not exist (it names customers and servers).
fn create_private(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    // The behaviour on both engines is tested in tests/it/store (the fixture's PostgreSQL).
    #[test]
    fn store_can_move_to_a_blocking_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<super::Store>();
        assert_send::<super::StoreError>();
    }
}
