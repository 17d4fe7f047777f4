//! The PostgreSQL side of [`super::Db`]: one `postgres::Client` on a thread the store owns.
//!
//! The sync `postgres` client runs a small tokio runtime of its own and panics when called
//! on a thread inside a tokio runtime, and the store is called from async tasks (the
//! supervisor, the delivery). So the client lives on its own OS thread: each call sends a
//! closure over a channel and blocks for the answer, exactly as a SQLite call blocks.
//!
//! - A lost connection (closed, refused, server shutdown, `08xxx`, `57P0x`) drops the
//!   client; the next call connects again, so an outage is a retryable error per call, not
//!   a crash loop. A connection lost inside a transaction fails every statement of it until
//!   the transaction ends (it is never silently continued on a new connection).
//! - One prepared statement per SQL text (`?N` rewritten to `$N`, [`super::sql`]), dropped
//!   with the connection.
//! - TLS (`sslmode=require`, `verify-ca`, `verify-full`): rustls with the system's roots
//!   (plus `sslrootcert=FILE`), certificate and host name always checked. Without `sslmode`
//!   or with `disable`, and always on a Unix socket, no TLS.

use super::super::error::{Result, StoreError};
use super::value::PgValue;
use super::{Row, Value};
use crate::core::config::location::PgUrl;
use crate::pgconn::Target;
use postgres::{Client, Statement};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::time::Duration;

/// `pg_advisory_xact_lock` key every write transaction takes (one writer at a time, as
/// SQLite's `BEGIN IMMEDIATE`; it is what keeps the receipt chain single-writer across nodes).
pub const WRITER_LOCK: i64 = 0x7265_6764_726f_7001; // "regdrop" 01
/// The key migrations take, so two nodes starting at once migrate once.
pub const MIGRATE_LOCK: i64 = 0x7265_6764_726f_7002;

/// How long a statement waits for a lock (the writer's, a row's) before a retryable error:
/// SQLite's busy timeout.
const LOCK_TIMEOUT: Duration = super::super::BUSY_TIMEOUT;
/// A session idle inside a transaction this long (a stopped node) is ended by the server,
/// which releases the writer's lock.
const IDLE_IN_TX_TIMEOUT: Duration = Duration::from_secs(30);
const STATEMENT_CACHE: usize = 512;

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The handle the store holds; the client itself lives on the thread.
pub struct Pg {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shown: String,
}

impl Pg {
    /// Starts the thread and connects (so a wrong URL, password or database fails here).
    pub fn connect(url: &PgUrl) -> Result<Pg> {
        let target = Target::parse(url).map_err(|why| StoreError::PgConfig {
            url: url.to_string(),
            why,
        })?;
        let shown = target.shown.clone();
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("regdrop-pg".into())
            .spawn(move || {
                let mut session = Session {
                    target,
                    client: None,
                    statements: HashMap::new(),
                    in_tx: false,
                };
                for job in rx {
                    if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut session))).is_err() {
                        // The caller got no answer; start from a clean connection.
                        session.drop_client();
                        session.in_tx = false;
                    }
                }
            })?;
        let pg = Pg {
            jobs: Some(jobs),
            thread: Some(thread),
            shown,
        };
        pg.call(|s| s.client().map(|_| ()))?;
        Ok(pg)
    }

    /// The URL without its password.
    pub fn target(&self) -> &str {
        &self.shown
    }

    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let gone = || StoreError::PgThread;
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(Box::new(move |s: &mut Session| {
                let _ = tx.send(f(s));
            }))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }

    pub(super) fn execute(&self, sql: &str, values: Vec<Value>) -> Result<u64> {
        let sql = sql.to_string();
        self.call(move |s| {
            let stmt = s.statement(&sql)?;
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                values.iter().map(|v| v as _).collect();
            let r = s.client()?.execute(&stmt, &refs);
            s.check(r, &sql)
        })
    }

    pub(super) fn query(&self, sql: &str, values: Vec<Value>) -> Result<Vec<Row>> {
        let sql = sql.to_string();
        self.call(move |s| {
            let stmt = s.statement(&sql)?;
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                values.iter().map(|v| v as _).collect();
            let r = s.client()?.query(&stmt, &refs);
            let rows = s.check(r, &sql)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let mut vals = Vec::with_capacity(row.len());
                for i in 0..row.len() {
                    vals.push(row.try_get::<_, PgValue>(i)?.0);
                }
                out.push(Row::new(vals));
            }
            Ok(out)
        })
    }

    pub(super) fn batch(&self, sql: &str) -> Result<()> {
        let sql = sql.to_string();
        self.call(move |s| {
            let r = s.client()?.batch_execute(&sql);
            s.check(r, &sql)
        })
    }

    /// Opens a transaction with `sql` (`BEGIN ...` and whatever it takes first).
    pub(super) fn begin(&self, sql: &str) -> Result<()> {
        let sql = sql.to_string();
        self.call(move |s| {
            if s.in_tx {
                return Err(StoreError::Invalid(
                    "a transaction is already open on this store".into(),
                ));
            }
            let r = s.client()?.batch_execute(&sql);
            match s.check(r, &sql) {
                Ok(()) => {
                    s.in_tx = true;
                    Ok(())
                }
                Err(e) => {
                    // BEGIN may have gone through before what followed it failed.
                    if let Some(c) = s.client.as_mut() {
                        let _ = c.batch_execute("ROLLBACK");
                    }
                    Err(e)
                }
            }
        })
    }

    /// Ends the open transaction with `COMMIT` or `ROLLBACK`.
    pub(super) fn end(&self, sql: &'static str) -> Result<()> {
        self.call(move |s| {
            s.in_tx = false;
            match s.client.as_mut() {
                // The connection went in the transaction: nothing of it was committed.
                None if sql == "ROLLBACK" => Ok(()),
                None => Err(StoreError::PgLostInTransaction),
                Some(c) => {
                    let r = c.batch_execute(sql);
                    s.check(r, sql)
                }
            }
        })
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which drops (closes) the connection.
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What lives on the thread.
struct Session {
    target: Target,
    client: Option<Client>,
    statements: HashMap<String, Statement>,
    in_tx: bool,
}

impl Session {
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.drop_client();
        }
        if self.client.is_none() {
            if self.in_tx {
                return Err(StoreError::PgLostInTransaction);
            }
            let mut c = self.target.connect()?;
            c.batch_execute(&format!(
                "SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {}; \
                 SET client_min_messages = warning",
                LOCK_TIMEOUT.as_millis(),
                IDLE_IN_TX_TIMEOUT.as_millis()
            ))?;
            tracing::debug!(db = %self.target.shown, "Connected to PostgreSQL.");
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn drop_client(&mut self) {
        self.client = None;
        self.statements.clear();
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let r = self.client()?.prepare(&super::sql::to_postgres(sql));
        let stmt = self.check(r, sql)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    /// Maps an error, dropping the client when the connection is gone and the statement
    /// when it failed (a schema change by another node invalidates a prepared plan).
    fn check<T>(&mut self, r: std::result::Result<T, postgres::Error>, sql: &str) -> Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                self.statements.remove(sql);
                if connection_lost(&e) || self.client.as_ref().is_some_and(Client::is_closed) {
                    tracing::warn!(db = %self.target.shown, error = %crate::core::errors::Chain(&e),
                        "Lost the connection to PostgreSQL; the next call connects again.");
                    self.drop_client();
                }
                Err(StoreError::Postgres(e))
            }
        }
    }
}

pub use crate::pgconn::{connection_lost, io_cause};
