//! Ordered parallel reads of a SQLite register (an extract's second core): the rows of one
//! query are read in blocks of consecutive `v.id`s by several reader threads, each on a
//! connection of its own that sees exactly the read the count ran in, formatted there, and
//! written out in block order, so the file is byte for byte the one a single thread writes.
//!
//! One register state for all readers: in WAL mode (what `register generate|import` make)
//! each reader opens SQLite's snapshot of the extract's read transaction
//! (`sqlite3_snapshot_open`, built in by `.cargo/config.toml`); in the rollback-journal modes
//! the extract's read holds the database's shared lock, so no writer can commit until it
//! ends. When neither holds (a snapshot that cannot be shared), the caller reads on one
//! thread.
//!
//! Memory stays bounded whatever the size: reader `w` of `n` reads blocks `w`, `w + n`, ...
//! and is at most [`AHEAD`] formatted blocks ahead of the writer; a block is about
//! [`BLOCK_ROWS`] rows.

use super::query::{Param, Query};
use super::source::{open_sqlite, read_rows};
use super::writers;
use super::{ExtractError, Snapshot};
use crate::core::config::{ExtractSpec, Format};
use rusqlite::Connection;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Rows per block, on average (blocks are ranges of `v.id`, sized from the count).
pub const BLOCK_ROWS: u64 = 1024;
/// Formatted blocks a reader may hold ahead of the writer.
pub const AHEAD: usize = 2;
/// At most this many reader threads, whatever the machine.
pub const MAX_THREADS: usize = 4;

/// The reader threads an extract uses by default: one per core, at most [`MAX_THREADS`].
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_THREADS)
}

/// Bytes a block's buffer starts with (a block of `technical_owners` is about 500 KiB).
const BLOCK_BYTES: usize = 1 << 20;

/// One block of formatted rows.
struct Block {
    bytes: Vec<u8>,
    rows: u64,
}

/// A reader's side of its two queues: blocks to the writer, emptied buffers back.
struct Lane {
    blocks: Receiver<Result<Block, ExtractError>>,
    spent: SyncSender<Vec<u8>>,
}

/// Streams `q` (dsv or csv) in `snap` on `threads` readers into `out`, after `out` has its
/// header. `Ok(None)`: this register's read cannot be shared (nothing was written; read on
/// one thread instead).
#[allow(clippy::too_many_arguments)]
pub(super) fn stream(
    snap: &Snapshot<'_>,
    q: &Query,
    spec: &ExtractSpec,
    format: Format,
    threads: usize,
    total: u64,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<u64>, ExtractError> {
    debug_assert!(matches!(format, Format::Dsv | Format::Csv));
    let Some(conn) = snap.sqlite() else {
        return Ok(None);
    };
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
    let blocks = Blocks::new(lo, hi, total);
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

/// The blocks of `v.id` ranges a scan is cut into.
struct Blocks {
    lo: i64,
    hi: i64,
    width: i64,
    count: usize,
}

impl Blocks {
    /// Blocks over `lo..=hi` holding about [`BLOCK_ROWS`] of `total` rows each.
    fn new(lo: i64, hi: i64, total: u64) -> Blocks {
        let span = (hi as i128 - lo as i128 + 1).max(1);
        let blocks = (total / BLOCK_ROWS).max(1) as i128;
        let width = (span + blocks - 1) / blocks;
        let count = (span + width - 1) / width;
        Blocks {
            lo,
            hi,
            width: width.min(i64::MAX as i128) as i64,
            count: count as usize,
        }
    }

    /// Block `k` as `[from, to)`; the last one ends just past `hi`.
    fn range(&self, k: usize) -> (i64, i64) {
        let at = |k: usize| {
            (self.lo as i128 + self.width as i128 * k as i128).min(self.hi as i128 + 1) as i64
        };
        let to = match k + 1 == self.count {
            true => self.hi + 1,
            false => at(k + 1),
        };
        (at(k), to)
    }
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

/// Writes the readers' blocks into `out` in block order; a reader's error comes out with
/// its row counted from the start of the file.
fn write_in_order(
    lanes: Vec<Lane>,
    blocks: usize,
    total: u64,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, ExtractError> {
    let mut done: u64 = 0;
    let mut reported: u64 = 0;
    for k in 0..blocks {
        let lane = &lanes[k % lanes.len()];
        let block = lane.blocks.recv().map_err(|_| {
            ExtractError::Io(std::io::Error::other(
                "a register reader thread ended early",
            ))
        })?;
        let block = block.map_err(|e| renumber(e, done))?;
        out.write_all(&block.bytes).map_err(ExtractError::Io)?;
        done += block.rows;
        // A reader that stopped takes no more buffers.
        let _ = lane.spent.try_send(block.bytes);
        if done - reported >= 16_384 {
            progress(done, total);
            reported = done;
        }
    }
    Ok(done)
}

/// A value error of a block, its row counted from the file's first data row.
fn renumber(e: ExtractError, before: u64) -> ExtractError {
    match e {
        ExtractError::Value {
            row,
            field,
            problem,
        } => ExtractError::Value {
            row: row + before,
            field,
            problem,
        },
        e => e,
    }
}

/// Whether an extract of `format` with `total` rows reads on several threads.
pub(super) fn pays(format: Format, threads: usize, total: u64, min_rows: u64) -> bool {
    matches!(format, Format::Dsv | Format::Csv) && threads > 1 && total >= min_rows.max(1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_every_id_once_in_order() {
        for (lo, hi, total) in [
            (1, 1_000_000, 1_000_000),
            (1, 10, 10),
            (5, 5, 1),
            (-3, 7, 100_000),
            (1, 1_000_000, 3),
            (i64::MAX - 10, i64::MAX - 1, 5000),
            (i64::MIN, i64::MAX - 1, 10_000_000),
        ] {
            let b = Blocks::new(lo, hi, total);
            assert!(b.count >= 1);
            assert_eq!(b.range(0).0, lo, "{lo}..{hi}");
            for k in 1..b.count {
                assert_eq!(b.range(k - 1).1, b.range(k).0, "{lo}..{hi} block {k}");
                assert!(b.range(k).0 < b.range(k).1);
            }
            let last = b.range(b.count - 1);
            assert!(last.0 <= hi && last.1 == hi + 1, "{lo}..{hi}: {last:?}");
        }
        let b = Blocks::new(1, 1_000_000, 1_000_000);
        assert_eq!(b.count as u64, 1_000_000 / BLOCK_ROWS);
        assert_eq!(b.width, 1025);
    }

    #[test]
    fn only_text_formats_with_enough_rows_and_threads_go_parallel() {
        assert!(pays(Format::Dsv, 2, 100_000, 50_000));
        assert!(pays(Format::Csv, 4, 50_000, 50_000));
        assert!(!pays(Format::Xlsx, 4, 100_000, 50_000));
        assert!(!pays(Format::Dsv, 1, 100_000, 50_000));
        assert!(!pays(Format::Dsv, 2, 49_999, 50_000));
        assert!(!pays(Format::Dsv, 2, 0, 0));
    }
}
