//! A PostgreSQL register's parallel read: reader connections that each begin a read on the
//! extract's own snapshot (exported by its read, [`crate::extract::Snapshot`], and imported
//! with `SET TRANSACTION SNAPSHOT`), so every reader sees exactly the register state the
//! count saw. Each reader's client thread runs one `COPY (ranged select) TO STDOUT` per
//! block (its owner joins bounded too, [`Query::ranged`]), parses and formats it there, and
//! hands the block over.
//!
//! Why it pays: one PostgreSQL backend formats a COPY on one core, and that is what bounds
//! a single read (and `psql \copy`); two backends share the work (docs/performance.md). A
//! block is about [`BLOCK_ROWS`] rows: each `COPY` is planned anew (about 2 ms for
//! `technical_owners`), so a block is large enough to hide that, and small enough that a
//! reader's two blocks (the one it fills, the one it hands over: [`AHEAD`] is 0) keep memory
//! low. A reader that cannot connect or import the snapshot (a connection limit, a pooler
//! that hands out another server) leaves the read to one connection.

use super::{write_in_order, Block, Blocks, Lane, Split, BLOCK_BYTES};
use crate::core::config::location::PgUrl;
use crate::core::config::{ExtractSpec, Format};
use crate::extract::query::{literal, Param, Query};
use crate::extract::source::{copy_rows, CHUNK};
use crate::extract::Register;
use crate::extract::{writers, ExtractError};
use crate::pgconn::bulk::BulkClient;
use crate::pgconn::{Worker, WorkerError};
use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Rows per block, on average (about 4 MiB of `technical_owners`).
pub const BLOCK_ROWS: u64 = 8 * 1024;
/// Formatted blocks a reader may queue for the writer besides the one it hands over (none:
/// one more held 9 MiB more at no gain in time).
pub const AHEAD: usize = 0;

/// The extract's own read of the register.
pub(in crate::extract) struct Read<'a> {
    /// Its connection (for the ids' range; it holds the snapshot while the readers read).
    pub main: &'a Worker<BulkClient>,
    /// Where the readers connect.
    pub url: &'a PgUrl,
    /// The snapshot's name from `pg_export_snapshot()`.
    pub snapshot: &'a str,
}

/// What each reader needs to read and format its blocks (owned: it runs on the client's
/// thread).
struct Job {
    q: Query,
    spec: ExtractSpec,
    format: Format,
    blocks: Blocks,
    readers: usize,
}

/// Streams `q` in `read` on up to `split.threads` reader connections into `out`; returns
/// the rows and the readers. `Ok(None)`: nothing was written (the read cannot be shared,
/// or is one block).
#[allow(clippy::too_many_arguments)]
pub(in crate::extract) fn stream(
    read: Read<'_>,
    q: &Query,
    spec: &ExtractSpec,
    format: Format,
    split: Split,
    total: u64,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<(u64, usize)>, ExtractError> {
    let (lo, hi) = read
        .main
        .call(|c| {
            c.query_one("SELECT min(id)::bigint, max(id)::bigint FROM vehicle", &[])
                .map(|r| (r.get::<_, Option<i64>>(0), r.get::<_, Option<i64>>(1)))
        })
        .map_err(ExtractError::Postgres)?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(None);
    };
    if hi == i64::MAX {
        // A block's end is exclusive: the last id would have none.
        return Ok(None);
    }
    let blocks = Blocks::new(lo, hi, total, split.pg_block_rows);
    if blocks.count < 2 || split.threads < 2 {
        return Ok(None);
    }
    let readers = match open_readers(&read, split.threads.min(blocks.count)) {
        Ok(readers) => readers,
        Err(e) => {
            tracing::info!(
                error = %crate::core::errors::chain(&e),
                "A second connection to the PostgreSQL register cannot share the read; \
                 the extract reads on one connection."
            );
            return Ok(None);
        }
    };
    let job = Arc::new(Job {
        q: q.clone(),
        spec: spec.clone(),
        format,
        blocks,
        readers: readers.len(),
    });
    let mut lanes = Vec::with_capacity(readers.len());
    for (w, reader) in readers.iter().enumerate() {
        let (tx, rx) = sync_channel::<Result<Block, ExtractError>>(AHEAD);
        // Buffers go round: at most AHEAD + 2 per reader, allocated once.
        let (spent, reuse) = sync_channel::<Vec<u8>>(AHEAD + 2);
        lanes.push(Lane { blocks: rx, spent });
        let job = Arc::clone(&job);
        reader
            .submit(move |c| read_lane(c, &job, w, &tx, &reuse))
            .map_err(ExtractError::Postgres)?;
    }
    // An error returns here: the lanes are gone, so each reader stops at its next block,
    // and its connection (a COPY unfinished) is dropped with it.
    let rows = write_in_order(lanes, blocks.count, total, out, progress)?;
    // Each reader's last block is out: its read ends (queued behind it on its thread).
    for reader in &readers {
        reader
            .call(|c| c.batch_execute("COMMIT"))
            .map_err(ExtractError::Postgres)?;
    }
    Ok(Some((rows, readers.len())))
}

/// `threads` connections, each in a read on `read`'s snapshot.
fn open_readers(read: &Read<'_>, threads: usize) -> Result<Vec<Worker<BulkClient>>, WorkerError> {
    let name =
        literal(&Param::Text(read.snapshot.to_string())).map_err(|e| WorkerError::Config {
            url: read.url.to_string(),
            why: e.to_string(),
        })?;
    let begin = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {name}; \
         SET LOCAL standard_conforming_strings = on"
    );
    (0..threads)
        .map(|_| {
            let reader = Worker::connect_bulk(read.url)?;
            let begin = begin.clone();
            reader.call(move |c| c.batch_execute(&begin))?;
            Ok(reader)
        })
        .collect()
}

/// Whether an extract from `register` (PostgreSQL) can be read on several connections
/// (`regdrop check`): `Err` says why it would read on one.
pub fn shareable(register: &Register) -> Result<(), String> {
    let snap = register
        .snapshot()
        .map_err(|e| crate::core::errors::chain(&e))?;
    let Some((main, url, snapshot)) = snap.postgres() else {
        return Err(
            "its role may not export the read's snapshot (GRANT EXECUTE ON FUNCTION \
             pg_export_snapshot() TO the role)"
                .into(),
        );
    };
    let read = Read {
        main,
        url,
        snapshot,
    };
    let got = open_readers(&read, 1).map(drop).map_err(|e| {
        format!(
            "a second connection cannot share the read: {}",
            crate::core::errors::chain(&e)
        )
    });
    let _ = snap.end();
    got
}

/// On reader `w`'s client thread: reads and formats blocks `w`, `w + n`, ... and sends
/// them; stops at the first error (sent) or when the writer is gone.
fn read_lane(
    c: &mut BulkClient,
    job: &Job,
    w: usize,
    tx: &SyncSender<Result<Block, ExtractError>>,
    reuse: &Receiver<Vec<u8>>,
) {
    let mut chunk = Vec::with_capacity(CHUNK + 64 * 1024);
    for k in (w..job.blocks.count).step_by(job.readers) {
        let buf = reuse
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK_BYTES));
        let block = read_block(c, job, job.blocks.range(k), buf, &mut chunk);
        let failed = block.is_err();
        if tx.send(block).is_err() || failed {
            return;
        }
    }
}

/// Reads and formats one block; its rows are numbered from 1.
fn read_block(
    c: &mut BulkClient,
    job: &Job,
    (from, to): (i64, i64),
    mut bytes: Vec<u8>,
    chunk: &mut Vec<u8>,
) -> Result<Block, ExtractError> {
    bytes.clear();
    let sql = format!("COPY ({}) TO STDOUT", job.q.inline_ranged(from, to)?);
    let spec = &job.spec;
    let rows = {
        let mut w = writers::text(job.format, &mut bytes, spec.encoding, spec.line_ending);
        w.columns(&spec.columns);
        let rows = copy_rows(
            c,
            &sql,
            &spec.columns,
            |row, values| w.row(row, values),
            chunk,
        )?;
        w.finish()?;
        rows
    };
    Ok(Block { bytes, rows })
}
