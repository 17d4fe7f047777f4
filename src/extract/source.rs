//! The register as a source of rows: a [`Register`] opened from a [`DbLocation`] owns the
//! connection; a [`Snapshot`] of it is one consistent read (SQLite: a read transaction) in
//! which an extract counts its rows and then streams them, so both see the same register.

use super::query::Query;
use super::ExtractError;
use crate::core::catalog::Field;
use crate::core::config::location::DbLocation;
use crate::core::retry::{Classify, ErrorClass};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::fmt::Write as _;
use std::path::Path;

/// Why a register could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no such file")]
    Missing,
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("a PostgreSQL register is not built yet (README, \"What is built\"); give a SQLite file path")]
    NotBuilt,
}

impl Classify for OpenError {
    fn class(&self) -> ErrorClass {
        match self {
            OpenError::Sqlite(e) => super::sqlite_class(e),
            OpenError::Missing | OpenError::NotBuilt => ErrorClass::Permanent,
        }
    }
}

/// An open register (read-only: extracts never write to it).
pub struct Register {
    conn: Connection,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Register::Sqlite")
    }
}

impl Register {
    /// Opens the register at `location`; a missing SQLite file is an error (opening would
    /// create an empty one).
    pub fn open(location: &DbLocation) -> Result<Register, OpenError> {
        match location {
            DbLocation::Sqlite(path) => {
                if !path.exists() {
                    return Err(OpenError::Missing);
                }
                Ok(Register {
                    conn: open_sqlite(path)?,
                })
            }
            DbLocation::Postgres(_) => Err(OpenError::NotBuilt),
        }
    }

    /// Begins one consistent read: every count and stream of the snapshot sees the same
    /// register state. Ended by [`Snapshot::end`] (or when dropped).
    pub fn snapshot(&self) -> Result<Snapshot<'_>, ExtractError> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        Ok(Snapshot {
            register: self,
            open: true,
        })
    }
}

/// SQLite, read-only. Reports scan large ranges: a moderate page cache. No memory-mapped
/// I/O: mapped pages count as the process's resident memory, and extracts must stay small
/// whatever the register's size.
fn open_sqlite(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    Ok(conn)
}

/// One consistent read of a [`Register`].
pub struct Snapshot<'a> {
    register: &'a Register,
    open: bool,
}

impl Snapshot<'_> {
    /// The number of rows `q.count` gives.
    pub fn count(&self, q: &Query) -> Result<u64, ExtractError> {
        let conn = &self.register.conn;
        let total: i64 =
            conn.query_row(&q.count, rusqlite::params_from_iter(q.params.iter()), |r| {
                r.get(0)
            })?;
        Ok(total as u64)
    }

    /// Runs `q.select` and hands each row's values (as text) to `each`; `progress(done,
    /// total)` now and then. Returns the number of rows.
    pub fn stream(
        &self,
        q: &Query,
        columns: &[Field],
        mut each: impl FnMut(u64, &[Option<&str>]) -> Result<(), ExtractError>,
        total: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64, ExtractError> {
        let conn = &self.register.conn;
        let mut stmt = conn.prepare(&q.select)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(q.params.iter()))?;
        let n = columns.len();
        // Numbers (rare: computed columns) are rendered into scratch space first.
        let mut scratch: Vec<String> = vec![String::new(); n];
        // Each value is read from SQLite once (every read is three calls into SQLite, a
        // third of the extract's instructions when it was done twice); the two vectors keep
        // their allocations from row to row.
        let mut cells: Vec<Cell<'static>> = Vec::with_capacity(n);
        let mut values: Vec<Option<&'static str>> = Vec::with_capacity(n);
        let mut count: u64 = 0;
        while let Some(r) = rows.next()? {
            count += 1;
            let mut row_cells = reuse(std::mem::take(&mut cells));
            for (i, s) in scratch.iter_mut().enumerate() {
                row_cells.push(match r.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Cell::Text(std::str::from_utf8(t).map_err(|_| {
                            ExtractError::Value {
                                row: count,
                                field: columns[i].name.clone(),
                                problem:
                                    "the register holds bytes that are not UTF-8; re-import the row"
                                        .into(),
                            }
                        })?)
                    }
                    ValueRef::Integer(v) => {
                        s.clear();
                        write!(s, "{v}").expect("writing to a String");
                        Cell::Number
                    }
                    ValueRef::Real(v) => {
                        s.clear();
                        write!(s, "{v}").expect("writing to a String");
                        Cell::Number
                    }
                });
            }
            let mut row_values = reuse(std::mem::take(&mut values));
            row_values.extend(row_cells.iter().zip(&scratch).map(|(c, s)| match c {
                Cell::Null => None,
                Cell::Text(t) => Some(*t),
                Cell::Number => Some(s.as_str()),
            }));
            each(count, &row_values)?;
            values = reuse(row_values);
            cells = reuse(row_cells);
            if count.is_multiple_of(16_384) {
                progress(count, total);
            }
        }
        Ok(count)
    }

    /// Ends the read.
    pub fn end(mut self) -> Result<(), ExtractError> {
        self.open = false;
        self.register.conn.execute_batch("COMMIT")?;
        Ok(())
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.register.conn.execute_batch("ROLLBACK");
        }
    }
}

/// One value of a row as read from SQLite: numbers are rendered into scratch space.
enum Cell<'a> {
    Null,
    Text(&'a str),
    Number,
}

/// An emptied vector for items of another lifetime, keeping its allocation (collecting an
/// empty vector into one of a same-sized item type reuses the buffer in place).
fn reuse<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter().map(|_| unreachable!("empty")).collect()
}
