//! A SQLite register's parallel read: reader threads on the register's file, each in a read
//! of the extract's register state. In WAL mode (what `register generate|import` make) each
//! reader opens SQLite's snapshot of the extract's read transaction
//! (`sqlite3_snapshot_open`, built in by `.cargo/config.toml`); in the rollback-journal modes
//! the extract's read holds the database's shared lock, so no writer can commit until it
//! ends. When neither holds (a snapshot that cannot be shared), the caller reads on one
//! thread. A block is one run of the prepared [`Query::ranged`], about [`BLOCK_ROWS`] rows.

use super::{write_in_order, Block, Blocks, Lane, BLOCK_BYTES};
use crate::core::config::{ExtractSpec, Format};
use crate::extract::query::{Param, Query};
use crate::extract::source::{open_sqlite, read_rows};
use crate::extract::{writers, ExtractError};
use rusqlite::Connection;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::sync_channel;

/// Rows per block, on average (blocks are ranges of `v.id`, sized from the count).
pub const BLOCK_ROWS: u64 = 1024;
/// Formatted blocks a reader may queue for the writer.
pub const AHEAD: usize = 2;

/// Streams `q` (dsv or csv) in the open read of `conn` on `threads` reader threads into
/// `out`. `Ok(None)`: the read cannot be shared (nothing was written).
#[allow(clippy::too_many_arguments)]
pub(super) fn stream(
    conn: &Connection,
    q: &Query,
    spec: &ExtractSpec,
    format: Format,
    threads: usize,
    total: u64,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<u64>, ExtractError> {
    let Some(readers) = open_readers(conn, threads)? else {
        return Ok(None);
    };
    let (lo, hi): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT min(id), max(id) FROM vehicle", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(Some(0));
    };
    if hi == i64::MAX {
        // A block's end is exclusive: the last id would have none.
        return Ok(None);
    }
    let blocks = Blocks::new(lo, hi, total, BLOCK_ROWS);
    let n = readers.len();
    std::thread::scope(|s| {
        let mut lanes = Vec::with_capacity(n);
        for (w, reader) in readers.into_iter().enumerate() {
            let (tx, rx) = sync_channel::<Result<Block, ExtractError>>(AHEAD);
            // Buffers go round: at most AHEAD + 2 per reader, allocated once.
            let (spent, reuse) = sync_channel::<Vec<u8>>(AHEAD + 2);
            lanes.push(Lane { blocks: rx, spent });
            let blocks = &blocks;
            std::thread::Builder::new()
                .name(format!("regdrop-read-{w}"))
                .spawn_scoped(s, move || {
                    let mut stmt = match reader.prepare(&q.ranged) {
                        Ok(stmt) => stmt,
                        Err(e) => {
                            let _ = tx.send(Err(e.into()));
                            return;
                        }
                    };
                    for k in (w..blocks.count).step_by(n) {
                        let buf = reuse
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(BLOCK_BYTES));
                        let block = read_block(&mut stmt, q, spec, format, blocks.range(k), buf);
                        let failed = block.is_err();
                        // The writer is gone (it failed, or the extract was cancelled).
                        if tx.send(block).is_err() || failed {
                            return;
                        }
                    }
                })
                .map_err(ExtractError::Io)?;
        }
        // Returning drops the receivers, which stops readers still running.
        write_in_order(lanes, blocks.count, total, out, progress)
    })
    .map(Some)
}

/// Opens `threads` connections on the file of `conn`, each in a read of the same register
/// state as `conn`'s open read; `None` when that cannot be had.
fn open_readers(
    conn: &Connection,
    threads: usize,
) -> Result<Option<Vec<Connection>>, ExtractError> {
    let Some(path) = conn.path().filter(|p| !p.is_empty()).map(Path::new) else {
        return Ok(None);
    };
    let wal = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))?
        .eq_ignore_ascii_case("wal");
    let mut readers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let reader = open_sqlite(path)?;
        reader.execute_batch("BEGIN DEFERRED")?;
        readers.push(reader);
    }
    if wal {
        match snapshot::share(conn, &readers) {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(error = %e, "The register's read cannot be shared; one reader thread.");
                return Ok(None);
            }
        }
    }
    // Rollback journal: the extract's read holds the shared lock, so the readers' first
    // reads see the state it sees. The count's pages are not read again: their memory goes
    // to the readers.
    conn.execute_batch("PRAGMA shrink_memory")?;
    Ok(Some(readers))
}

/// Reads and formats one block; its rows are numbered from 1.
fn read_block(
    stmt: &mut rusqlite::Statement<'_>,
    q: &Query,
    spec: &ExtractSpec,
    format: Format,
    (from, to): (i64, i64),
    mut bytes: Vec<u8>,
) -> Result<Block, ExtractError> {
    bytes.clear();
    let rows = {
        let mut w = writers::text(format, &mut bytes, spec.encoding, spec.line_ending);
        w.columns(&spec.columns);
        let bounds = [Param::Int(from), Param::Int(to)];
        let params = rusqlite::params_from_iter(q.params.iter().chain(bounds.iter()));
        let rows = read_rows(
            stmt.query(params)?,
            &spec.columns,
            |row, values| w.row(row, values),
            0,
            &mut |_, _| {},
        )?;
        w.finish()?;
        rows
    };
    Ok(Block { bytes, rows })
}

/// SQLite's snapshot interface, the one `unsafe` use of the register.
mod snapshot {
    use rusqlite::{ffi, Connection};

    /// Why readers cannot share a read.
    #[derive(Debug, thiserror::Error)]
    pub(super) enum NotShared {
        #[error(transparent)]
        Sqlite(#[from] rusqlite::Error),
        #[error("a writer committed before the readers began")]
        Moved,
    }

    /// Opens the read of each of `readers` (each in a `BEGIN` that has not read yet) on
    /// the register state of `from`'s open read (WAL mode only).
    ///
    /// SQLite has no snapshot of a read that began on a WAL nothing was written to since it
    /// was last reset (a register at rest): such a read sees the database file alone, and
    /// holds back any checkpoint into it. A reader that then also finds the WAL untouched
    /// sees that same file; one that finds frames in it (a writer committed meanwhile) does
    /// not, and the readers are not used.
    pub(super) fn share(from: &Connection, readers: &[Connection]) -> Result<(), NotShared> {
        let Some(snap) = Snapshot::get(from) else {
            for r in readers {
                r.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
                if Snapshot::get(r).is_some() {
                    return Err(NotShared::Moved);
                }
            }
            return Ok(());
        };
        for r in readers {
            snap.open_on(r)?;
        }
        Ok(())
    }

    /// A snapshot of a connection's open read, freed when dropped.
    struct Snapshot(*mut ffi::sqlite3_snapshot);

    const MAIN: &std::ffi::CStr = c"main";

    impl Snapshot {
        /// The snapshot of `conn`'s open read; `None` when SQLite has none to give (no read
        /// open, not WAL, or a WAL untouched since its reset).
        #[allow(unsafe_code)]
        fn get(conn: &Connection) -> Option<Snapshot> {
            let mut snap: *mut ffi::sqlite3_snapshot = std::ptr::null_mut();
            // SAFETY: the handle is a live connection borrowed for the call, used on this
            // thread only; on success SQLite hands over a snapshot this value frees.
            let rc = unsafe { ffi::sqlite3_snapshot_get(conn.handle(), MAIN.as_ptr(), &mut snap) };
            (rc == ffi::SQLITE_OK && !snap.is_null()).then_some(Snapshot(snap))
        }

        /// Begins `conn`'s read (a `BEGIN` that has not read yet) on this snapshot.
        #[allow(unsafe_code)]
        fn open_on(&self, conn: &Connection) -> rusqlite::Result<()> {
            // SAFETY: the handle is a live connection borrowed for the call; the snapshot
            // is live until this value drops.
            let rc = unsafe { ffi::sqlite3_snapshot_open(conn.handle(), MAIN.as_ptr(), self.0) };
            match rc {
                ffi::SQLITE_OK => Ok(()),
                rc => Err(rusqlite::Error::SqliteFailure(
                    ffi::Error::new(rc),
                    Some("sqlite3_snapshot_open".into()),
                )),
            }
        }
    }

    impl Drop for Snapshot {
        #[allow(unsafe_code)]
        fn drop(&mut self) {
            // SAFETY: a snapshot SQLite gave, freed once.
            unsafe { ffi::sqlite3_snapshot_free(self.0) }
        }
    }
}
