//! The store's driver layer: one [`Db`] that is either a SQLite connection or a PostgreSQL
//! client (on a thread of its own, [`pg`]), with an API shaped like the rusqlite calls the
//! store makes (`execute`, `query_row`, `query`, a write transaction that commits or rolls
//! back), so the store's SQL is written once (docs/design.md §7).
//!
//! - SQL uses `?N` placeholders; the PostgreSQL side rewrites them to `$N` ([`sql`]) and
//!   keeps one prepared statement per SQL text.
//! - Values cross as [`Value`] (NULL, 64-bit integer, text, bytes); rows come back as
//!   owned [`Row`]s read with `row.get::<_, T>(i)` as with rusqlite.
//! - [`Db::write_tx`] serialises writers on both engines: SQLite's `BEGIN IMMEDIATE`, and on
//!   PostgreSQL `BEGIN` plus `pg_advisory_xact_lock(WRITER_LOCK)`, so every read-then-write
//!   of the store sees what the previous writer committed, whichever node it runs on.
//!
//! Converting rusqlite-style store code: import `params`, `OptionalExtension`, `Row` and
//! `Db` from here instead of rusqlite, write `Db` for `Connection` and `Row` for `Row<'_>`,
//! and turn `prepare` + `query` + `while let Some(row) = rows.next()?` into
//! `for row in &conn.query(sql, params)?`.

pub mod pg;
pub mod sql;
mod value;

pub use value::{FromValue, Params, Row, RowIndex, ToValue, Value};

use super::error::{Result, StoreError};
use rusqlite::Connection;

/// `params![a, b, c]`: the values of a statement's `?1`, `?2`, `?3`, as with rusqlite.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::db::ToValue]
    };
    ($($param:expr),+ $(,)?) => {
        &[$(&$param as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue]
    };
}
pub(crate) use params;

/// Which engine a [`Db`] talks to (for the few statements that differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A SQLite connection or a PostgreSQL client. Not `Sync`: one caller at a time (the store
/// sits behind a mutex).
pub enum Db {
    Sqlite(Connection),
    Postgres(pg::Pg),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Sqlite(_) => f.write_str("Db::Sqlite"),
            Db::Postgres(p) => write!(f, "Db::Postgres({})", p.target()),
        }
    }
}

/// `.optional()` on a `query_row` result: no row becomes `None` (as rusqlite's).
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NoRow) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Db {
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.into_values();
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter()))?)
            }
            Db::Postgres(p) => Ok(usize::try_from(p.execute(sql, values)?).unwrap_or(usize::MAX)),
        }
    }

    /// Runs a query and returns every row.
    pub fn query<P: Params>(&self, sql: &str, params: P) -> Result<Vec<Row>> {
        let values = params.into_values();
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let n = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        vals.push(Value::from_sqlite(r.get_ref(i)?)?);
                    }
                    out.push(Row::new(vals));
                }
                Ok(out)
            }
            Db::Postgres(p) => p.query(sql, values),
        }
    }

    /// The first row through `f`, or [`StoreError::NoRow`] (see [`OptionalExtension`]).
    pub fn query_row<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        match self.query(sql, params)?.first() {
            Some(row) => f(row),
            None => Err(StoreError::NoRow),
        }
    }

    /// Runs statements without parameters, `;`-separated (schema steps, tests).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(p) => p.batch(sql),
        }
    }

    /// A write transaction: one writer at a time (SQLite `BEGIN IMMEDIATE`; PostgreSQL `BEGIN`
    /// and the writer's advisory lock). Rolled back when dropped without [`Tx::commit`].
    pub fn write_tx(&self) -> Result<Tx<'_>> {
        match self {
            Db::Sqlite(c) => c.execute_batch("BEGIN IMMEDIATE")?,
            Db::Postgres(p) => p.begin(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({})",
                pg::WRITER_LOCK
            ))?,
        }
        Ok(Tx {
            db: self,
            done: false,
        })
    }

    /// A read transaction: every query in it sees one snapshot (SQLite's deferred read
    /// transaction in WAL; PostgreSQL `REPEATABLE READ READ ONLY`).
    pub fn read_tx(&self) -> Result<Tx<'_>> {
        match self {
            Db::Sqlite(c) => c.execute_batch("BEGIN DEFERRED")?,
            Db::Postgres(p) => p.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?,
        }
        Ok(Tx {
            db: self,
            done: false,
        })
    }

    /// A transaction opened with `begin` (raw SQL: `BEGIN` and whatever must come first,
    /// e.g. a lock; migrations use it).
    pub fn transaction_with(&self, begin: &str) -> Result<Tx<'_>> {
        match self {
            Db::Sqlite(c) => c.execute_batch(begin)?,
            Db::Postgres(p) => p.begin(begin)?,
        }
        Ok(Tx {
            db: self,
            done: false,
        })
    }

    fn end(&self, sql: &'static str) -> Result<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(p) => p.end(sql),
        }
    }
}

/// An open transaction on a [`Db`]; statements go through it as through the `Db` (it
/// dereferences to it).
pub struct Tx<'a> {
    db: &'a Db,
    done: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let r = self.db.end("COMMIT");
        // A failed COMMIT leaves a SQLite transaction open (PostgreSQL ends it either way).
        if let (Err(_), Db::Sqlite(c)) = (&r, self.db) {
            if !c.is_autocommit() {
                let _ = c.execute_batch("ROLLBACK");
            }
        }
        r
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.db.end("ROLLBACK") {
                tracing::debug!(error = %crate::core::errors::Chain(&e), "Rollback failed.");
            }
        }
    }
}
