//! Ordered parallel reads of a register (an extract's second core): the rows of one query
//! are read in blocks of consecutive `v.id`s by several readers, each on a connection of its
//! own that sees exactly the read the count ran in, formatted there, and written out in
//! block order, so the file is byte for byte the one a single reader writes.
//!
//! - SQLite ([`sqlite`]): reader threads sharing SQLite's snapshot of the read.
//! - PostgreSQL ([`postgres`]): reader connections that import the read's exported snapshot
//!   (`SET TRANSACTION SNAPSHOT`), each running one `COPY` per block on its own thread.
//!
//! When the read cannot be shared, nothing is written and the caller reads on one thread.
//!
//! Memory stays bounded whatever the size: reader `w` of `n` reads blocks `w`, `w + n`, ...
//! and is at most a few formatted blocks ahead of the writer.

use super::query::Query;
use super::{ExtractError, Snapshot};
use crate::core::config::{ExtractSpec, Format};
use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender};

pub mod postgres;
pub mod sqlite;

pub use sqlite::BLOCK_ROWS;

/// At most this many reader threads, whatever the machine.
pub const MAX_THREADS: usize = 4;

/// The reader threads an extract uses by default: one per core, at most [`MAX_THREADS`].
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_THREADS)
}

/// Bytes a block's buffer starts with (a SQLite block of `technical_owners` is about 500 KiB).
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

/// How a parallel read is cut up.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    /// Readers (besides the read's own connection).
    pub threads: usize,
    /// Rows per block of a PostgreSQL register, on average ([`postgres::BLOCK_ROWS`]).
    pub pg_block_rows: u64,
}

/// Streams `q` (dsv or csv) in `snap` on several readers into `out`, after `out` has its
/// header; returns the rows and the readers that read them. `Ok(None)`: this register's
/// read cannot be shared, or is too small to be cut up (nothing was written; read on one
/// thread instead).
#[allow(clippy::too_many_arguments)]
pub(super) fn stream(
    snap: &Snapshot<'_>,
    q: &Query,
    spec: &ExtractSpec,
    format: Format,
    split: Split,
    total: u64,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<(u64, usize)>, ExtractError> {
    debug_assert!(matches!(format, Format::Dsv | Format::Csv));
    if let Some(conn) = snap.sqlite() {
        let rows = sqlite::stream(conn, q, spec, format, split.threads, total, out, progress)?;
        return Ok(rows.map(|rows| (rows, split.threads)));
    }
    if let Some((main, url, snapshot)) = snap.postgres() {
        let read = postgres::Read {
            main,
            url,
            snapshot,
        };
        return postgres::stream(read, q, spec, format, split, total, out, progress);
    }
    Ok(None)
}

/// The blocks of `v.id` ranges a scan is cut into.
#[derive(Debug, Clone, Copy)]
struct Blocks {
    lo: i64,
    hi: i64,
    width: i64,
    count: usize,
}

impl Blocks {
    /// Blocks over `lo..=hi` holding about `rows` of `total` rows each.
    fn new(lo: i64, hi: i64, total: u64, rows: u64) -> Blocks {
        let span = (hi as i128 - lo as i128 + 1).max(1);
        let blocks = (total / rows.max(1)).max(1) as i128;
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
            let b = Blocks::new(lo, hi, total, BLOCK_ROWS);
            assert!(b.count >= 1);
            assert_eq!(b.range(0).0, lo, "{lo}..{hi}");
            for k in 1..b.count {
                assert_eq!(b.range(k - 1).1, b.range(k).0, "{lo}..{hi} block {k}");
                assert!(b.range(k).0 < b.range(k).1);
            }
            let last = b.range(b.count - 1);
            assert!(last.0 <= hi && last.1 == hi + 1, "{lo}..{hi}: {last:?}");
        }
        let b = Blocks::new(1, 1_000_000, 1_000_000, BLOCK_ROWS);
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
