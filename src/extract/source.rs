//! The register as a source of rows: a [`Register`] opened from a [`DbLocation`] (a SQLite
//! file or a PostgreSQL database) owns the connection; a [`Snapshot`] of it is one
//! consistent read in which an extract counts its rows and then streams them, so both see
//! the same register.
//!
//! - SQLite: a deferred read transaction; rows are read with bound parameters.
//! - PostgreSQL: `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY` (one snapshot for the
//!   count and the rows) with `standard_conforming_strings` on; rows come from
//!   `COPY (SELECT ...) TO STDOUT` in text format, its parameters written in as literals by
//!   the one audited [`super::query::render`]. The client ([`crate::pgconn::bulk`]) lives
//!   on a thread of its own ([`crate::pgconn::Worker`]), which reads the COPY data in
//!   chunks of about [`CHUNK`] bytes (one runtime crossing each) into a bounded channel
//!   ([`IN_FLIGHT`] chunks), so memory stays flat whatever the register's size; this
//!   thread parses the chunks into rows ([`crate::pgconn::copy_text::RowReader`]).

use super::query::{Dialect, Query};
use super::ExtractError;
use crate::core::catalog::Field;
use crate::core::config::location::{DbLocation, PgUrl};
use crate::core::retry::{Classify, ErrorClass};
use crate::pgconn::bulk::BulkClient;
use crate::pgconn::copy_text::{Problem, RowReader};
use crate::pgconn::{Worker, WorkerError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::cell::Cell as StdCell;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc;

/// Bytes of COPY data the PostgreSQL thread gathers before handing them over.
pub const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the PostgreSQL thread and the extract.
pub const IN_FLIGHT: usize = 8;

/// Why a register could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no such file")]
    Missing,
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}{}", .0, .0.hint_suffix(crate::pgconn::Use::Register))]
    Postgres(WorkerError),
}

impl From<WorkerError> for OpenError {
    fn from(e: WorkerError) -> Self {
        OpenError::Postgres(e)
    }
}

impl Classify for OpenError {
    fn class(&self) -> ErrorClass {
        match self {
            OpenError::Sqlite(e) => super::sqlite_class(e),
            OpenError::Postgres(e) => e.class(),
            OpenError::Missing => ErrorClass::Permanent,
        }
    }
}

/// An open register (read-only: extracts never write to it).
pub struct Register {
    conn: Conn,
}

enum Conn {
    Sqlite(Connection),
    /// The URL opens a parallel read's other connections.
    Postgres(Worker<BulkClient>, PgUrl),
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.conn {
            Conn::Sqlite(_) => f.write_str("Register::Sqlite"),
            Conn::Postgres(w, _) => write!(f, "Register::Postgres({})", w.target()),
        }
    }
}

/// How a read of a PostgreSQL register begins: one snapshot for all its statements,
/// backslashes in literals not escapes ([`super::query::literal`]).
const BEGIN_POSTGRES: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                              SET LOCAL standard_conforming_strings = on";

/// The tables an extract reads: `check` looks for them.
pub const TABLES: [&str; 3] = ["vehicle", "ownership", "code_vehicle_group"];

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
                    conn: Conn::Sqlite(open_sqlite(path)?),
                })
            }
            DbLocation::Postgres(url) => Ok(Register {
                conn: Conn::Postgres(Worker::connect_bulk(url)?, url.clone()),
            }),
        }
    }

    /// The SQL the register speaks.
    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(..) => Dialect::Postgres,
        }
    }

    /// Begins one consistent read: every count and stream of the snapshot sees the same
    /// register state. Ended by [`Snapshot::end`] (or when dropped).
    pub fn snapshot(&self) -> Result<Snapshot<'_>, ExtractError> {
        let exported = match &self.conn {
            Conn::Sqlite(c) => {
                c.execute_batch("BEGIN DEFERRED")?;
                None
            }
            Conn::Postgres(w, _) => w
                .call(|c| {
                    c.batch_execute(BEGIN_POSTGRES)?;
                    // For a parallel read's other connections. A refused export (a server
                    // that cannot, a role the function is revoked from) has aborted the
                    // transaction: it begins again, to be read on one connection.
                    match c.query_one("SELECT pg_export_snapshot()", &[]) {
                        Ok(row) => Ok(Some(row.get::<_, String>(0))),
                        Err(e) if e.as_db_error().is_some() => {
                            tracing::debug!(error = %e, "The register's read cannot be shared.");
                            c.batch_execute(&format!("ROLLBACK; {BEGIN_POSTGRES}"))?;
                            Ok(None)
                        }
                        Err(e) => Err(e),
                    }
                })
                .map_err(ExtractError::Postgres)?,
        };
        Ok(Snapshot {
            register: self,
            open: true,
            abandoned: StdCell::new(false),
            exported,
        })
    }

    /// Whether every table an extract reads is there (`regdrop check`): `Err` names the
    /// first missing one. PostgreSQL looks through the connection's `search_path`.
    pub fn check_tables(&self) -> Result<(), String> {
        for table in TABLES {
            let found = match &self.conn {
                Conn::Sqlite(c) => c
                    .query_row(
                        "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?1",
                        [table],
                        |r| r.get::<_, i64>(0),
                    )
                    .map(|n| n > 0)
                    .map_err(|e| format!("cannot be read: {e}"))?,
                Conn::Postgres(w, _) => w
                    .call(move |c| {
                        c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                            .map(|r| r.get::<_, bool>(0))
                    })
                    .map_err(|e| format!("cannot be read: {}", crate::core::errors::chain(&e)))?,
            };
            if !found {
                return Err(format!(
                    "has no `{table}` table or view; load it with `regdrop register generate|import`, or map the real register with views (docs/register.md)"
                ));
            }
        }
        Ok(())
    }
}

/// The page cache of a register connection, KiB. Extracts go through the tables in `v.id`
/// order (each page read about once), so a small cache loses nothing, and a parallel
/// extract has one per reader.
pub const PAGE_CACHE_KIB: i64 = 4_000;

/// SQLite, read-only. Reports scan large ranges: a moderate page cache. No memory-mapped
/// I/O: mapped pages count as the process's resident memory, and extracts must stay small
/// whatever the register's size.
pub(super) fn open_sqlite(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    Ok(conn)
}

/// One consistent read of a [`Register`].
pub struct Snapshot<'a> {
    register: &'a Register,
    open: bool,
    /// A COPY was left unfinished: the connection is dropped with the register rather than
    /// drained.
    abandoned: StdCell<bool>,
    /// PostgreSQL: the read's snapshot as `pg_export_snapshot()` named it (`None`: the
    /// server could not export it).
    exported: Option<String>,
}

impl Snapshot<'_> {
    /// The SQL the register speaks.
    pub fn dialect(&self) -> Dialect {
        self.register.dialect()
    }

    /// The number of rows `q.count` gives.
    pub fn count(&self, q: &Query) -> Result<u64, ExtractError> {
        let total: i64 = match &self.register.conn {
            Conn::Sqlite(conn) => {
                conn.query_row(&q.count, rusqlite::params_from_iter(q.params.iter()), |r| {
                    r.get(0)
                })?
            }
            Conn::Postgres(w, _) => {
                let sql = q.inline_count()?;
                w.call(move |c| c.query_one(&sql, &[]).map(|r| r.get::<_, i64>(0)))
                    .map_err(ExtractError::Postgres)?
            }
        };
        Ok(total as u64)
    }

    /// Runs `q.select` and hands each row's values (as text) to `each`; `progress(done,
    /// total)` now and then. Returns the number of rows.
    pub fn stream(
        &self,
        q: &Query,
        columns: &[Field],
        each: impl FnMut(u64, &[Option<&str>]) -> Result<(), ExtractError>,
        total: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64, ExtractError> {
        let conn = match &self.register.conn {
            Conn::Sqlite(c) => c,
            Conn::Postgres(w, _) => {
                return self.stream_copy(w, q, columns, each, total, progress);
            }
        };
        let mut stmt = conn.prepare(&q.select)?;
        let rows = stmt.query(rusqlite::params_from_iter(q.params.iter()))?;
        read_rows(rows, columns, each, total, progress)
    }

    /// The SQLite connection of the read, if the register is a SQLite file.
    pub(super) fn sqlite(&self) -> Option<&Connection> {
        match &self.register.conn {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(..) => None,
        }
    }

    /// A PostgreSQL register's connection, its URL and the read's exported snapshot, if
    /// the server could export it.
    pub(super) fn postgres(&self) -> Option<(&Worker<BulkClient>, &PgUrl, &str)> {
        match (&self.register.conn, &self.exported) {
            (Conn::Postgres(w, url), Some(id)) => Some((w, url, id)),
            _ => None,
        }
    }

    /// PostgreSQL: `COPY (q) TO STDOUT` read on the client's thread, parsed here.
    fn stream_copy(
        &self,
        w: &Worker<BulkClient>,
        q: &Query,
        columns: &[Field],
        mut each: impl FnMut(u64, &[Option<&str>]) -> Result<(), ExtractError>,
        total: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64, ExtractError> {
        let sql = format!("COPY ({}) TO STDOUT", q.inline()?);
        let (tx, rx) = mpsc::sync_channel::<Chunk>(IN_FLIGHT);
        // Read chunks go back to be filled again (no allocation, no fresh pages per chunk).
        let (used_tx, used) = mpsc::channel::<Vec<u8>>();
        // Until the end of the data is read, the COPY is unfinished.
        self.abandoned.set(true);
        w.submit(move |c| read_copy(c, &sql, &tx, &used))
            .map_err(ExtractError::Postgres)?;
        let bad = |row: u64, p: Problem| copy_problem(columns, row, p);
        let mut row = |count: u64, values: &[Option<&str>]| -> Result<(), ExtractError> {
            each(count, values)?;
            if count.is_multiple_of(16_384) {
                progress(count, total);
            }
            Ok(())
        };
        let mut reader = RowReader::new(columns.len());
        loop {
            let chunk = rx
                .recv()
                .map_err(|_| ExtractError::Postgres(WorkerError::Thread))?;
            match chunk {
                Chunk::Data(d) => {
                    reader.feed(&d, &mut row, &bad)?;
                    let _ = used_tx.send(d);
                }
                Chunk::Failed(e) => return Err(ExtractError::Postgres(e)),
                Chunk::Done => break,
            }
        }
        self.abandoned.set(false);
        reader.finish().map_err(|p| bad(reader.rows() + 1, p))
    }

    /// Ends the read.
    pub fn end(mut self) -> Result<(), ExtractError> {
        self.open = false;
        match &self.register.conn {
            Conn::Sqlite(c) => c.execute_batch("COMMIT")?,
            Conn::Postgres(w, _) => w
                .call(|c| c.batch_execute("COMMIT"))
                .map_err(ExtractError::Postgres)?,
        }
        Ok(())
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        match &self.register.conn {
            Conn::Sqlite(c) => {
                let _ = c.execute_batch("ROLLBACK");
            }
            // An unfinished COPY would have to be read to its end first: the connection
            // closes with the register instead, which ends the transaction.
            Conn::Postgres(..) if self.abandoned.get() => {}
            Conn::Postgres(w, _) => {
                let _ = w.call(|c| c.batch_execute("ROLLBACK"));
            }
        }
    }
}

/// What is wrong with row `row` of COPY data that cannot be read, as an extract error.
fn copy_problem(columns: &[Field], row: u64, p: Problem) -> ExtractError {
    let (field, problem) = match p {
        Problem::Unreadable(p) => (
            String::new(),
            format!("PostgreSQL sent a row regdrop cannot read: {p}"),
        ),
        Problem::NotUtf8 { field } => (
            columns[field].name.clone(),
            "the register holds bytes that are not UTF-8; re-import the row".into(),
        ),
        Problem::Truncated => (
            String::new(),
            "PostgreSQL's COPY data ended inside a row".into(),
        ),
    };
    ExtractError::Value {
        row,
        field,
        problem,
    }
}

/// On a client's own thread (a parallel read's reader): runs `sql` (a `COPY ... TO
/// STDOUT`), reads its data in chunks of about [`CHUNK`] bytes into `chunk` and hands each
/// row's number (from 1) and values to `each`. Returns the number of rows.
pub(super) fn copy_rows(
    c: &mut BulkClient,
    sql: &str,
    columns: &[Field],
    mut each: impl FnMut(u64, &[Option<&str>]) -> Result<(), ExtractError>,
    chunk: &mut Vec<u8>,
) -> Result<u64, ExtractError> {
    let bad = |row: u64, p: Problem| copy_problem(columns, row, p);
    let mut copy = c
        .copy_out(sql)
        .map_err(|e| ExtractError::Postgres(WorkerError::Db(e)))?;
    let mut reader = RowReader::new(columns.len());
    loop {
        chunk.clear();
        let more = copy
            .fill(chunk, CHUNK)
            .map_err(|e| ExtractError::Postgres(WorkerError::midway(e)))?;
        reader.feed(chunk, &mut each, &bad)?;
        if !more {
            break;
        }
    }
    reader.finish().map_err(|p| bad(reader.rows() + 1, p))
}

/// What the PostgreSQL thread hands over while it reads a COPY.
enum Chunk {
    Data(Vec<u8>),
    Failed(WorkerError),
    Done,
}

/// On the client's thread: runs the COPY and sends its data in chunks of about [`CHUNK`]
/// bytes (whole CopyData messages, gathered in one runtime crossing), then `Done`; stops
/// when the reader is gone. Chunks the reader is done with come back through `used`.
fn read_copy(
    c: &mut BulkClient,
    sql: &str,
    tx: &mpsc::SyncSender<Chunk>,
    used: &mpsc::Receiver<Vec<u8>>,
) {
    let mut copy = match c.copy_out(sql) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Chunk::Failed(WorkerError::Db(e)));
            return;
        }
    };
    loop {
        // A row is one message: a chunk ends at most one row beyond CHUNK.
        let mut buf = match used.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Vec::with_capacity(CHUNK + 64 * 1024),
        };
        let more = match copy.fill(&mut buf, CHUNK) {
            Ok(more) => more,
            Err(e) => {
                // The data was coming: a lost connection is one, whatever I/O error it is.
                let _ = tx.send(Chunk::Failed(WorkerError::midway(e)));
                return;
            }
        };
        if !buf.is_empty() && tx.send(Chunk::Data(buf)).is_err() {
            return;
        }
        if !more {
            break;
        }
    }
    let _ = tx.send(Chunk::Done);
}

/// Reads SQLite's `rows` and hands each row's values (as text) to `each`, numbered from 1;
/// `progress(done, total)` now and then. Returns the number of rows.
pub(super) fn read_rows(
    mut rows: rusqlite::Rows<'_>,
    columns: &[Field],
    mut each: impl FnMut(u64, &[Option<&str>]) -> Result<(), ExtractError>,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, ExtractError> {
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
                    Cell::Text(std::str::from_utf8(t).map_err(|_| ExtractError::Value {
                        row: count,
                        field: columns[i].name.clone(),
                        problem:
                            "the register holds bytes that are not UTF-8; re-import the row".into(),
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
