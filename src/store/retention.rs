//! Retention (gallring) over all tables: receipts go as a prefix of the chain with an
//! anchor left behind, then old attempts and finished runs nothing refers to.

use super::db::{params, OptionalExtension};
use super::model::fmt_ts;
use super::receipts::verify_in;
use super::{Result, Store, StoreError};
use chrono::{DateTime, Utc};

/// What [`Store::purge_older_than`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    pub receipts: u64,
    pub attempts: u64,
    /// Finished runs (delivered, failed, or resolved by an operator) with nothing left
    /// referring to them.
    pub runs: u64,
}

impl Store {
    /// Retention (gallring): deletes receipts delivered before `cutoff`, attempts that
    /// started before it (of runs no longer active), and finished runs last touched
    /// before it that nothing refers to any more (a resolved run goes with its resolution).
    ///
    /// Receipts go as a prefix of the chain (oldest ids first, stopping at the first one
    /// to keep), and `chain_anchor` records the hash of the last one deleted, so
    /// [`verify_chain`](Store::verify_chain) still checks everything that remains. Refuses
    /// with [`StoreError::ChainBroken`] if the chain is broken inside the part to delete:
    /// that evidence must be looked at before it goes.
    pub fn purge_older_than(&self, cutoff: DateTime<Utc>) -> Result<PurgeCounts> {
        let cut = fmt_ts(cutoff);
        let tx = self.write_tx()?;
        let first_kept: Option<i64> = tx.query_row(
            "SELECT MIN(id) FROM receipts WHERE delivered_at >= ?1",
            [&cut],
            |r| r.get(0),
        )?;
        let last_purged: Option<(i64, String)> = match first_kept {
            Some(k) => tx
                .query_row(
                    "SELECT id, hash FROM receipts WHERE id < ?1 ORDER BY id DESC LIMIT 1",
                    [k],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
            None => tx
                .query_row(
                    "SELECT id, hash FROM receipts ORDER BY id DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
        };
        let mut counts = PurgeCounts::default();
        if let Some((last_id, last_hash)) = last_purged {
            if let Some(b) = verify_in(&tx)?.broken {
                if b.receipt_id <= last_id {
                    return Err(StoreError::ChainBroken(b));
                }
            }
            tx.execute(
                "INSERT INTO chain_anchor (id, hash, receipt_id, purged_at) VALUES (1, ?1, ?2, ?3) \
                 ON CONFLICT(id) DO UPDATE SET hash = excluded.hash, \
                 receipt_id = excluded.receipt_id, purged_at = excluded.purged_at",
                params![last_hash, last_id, self.now()],
            )?;
            counts.receipts = tx.execute("DELETE FROM receipts WHERE id <= ?1", [last_id])? as u64;
        }
        counts.attempts = tx.execute(
            "DELETE FROM attempts WHERE started_at < ?1 AND run_id IN \
             (SELECT id FROM runs WHERE state NOT IN ('pending','generated','sealed','uploading'))",
            [&cut],
        )? as u64;
        counts.runs = tx.execute(
            "DELETE FROM runs WHERE (state IN ('delivered','failed') OR (state = 'needs_attention' \
             AND id IN (SELECT run_id FROM run_resolutions WHERE resolved_at < ?1))) AND updated_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM receipts WHERE receipts.run_id = runs.id) \
             AND NOT EXISTS (SELECT 1 FROM attempts WHERE attempts.run_id = runs.id)",
            [&cut],
        )? as u64;
        tx.execute(
            "DELETE FROM run_files WHERE run_id NOT IN (SELECT id FROM runs)",
            [],
        )?;
        tx.execute(
            "DELETE FROM run_resolutions WHERE run_id NOT IN (SELECT id FROM runs)",
            [],
        )?;
        // Notifications are kept as long as receipts, except those still to be sent.
        tx.execute(
            "DELETE FROM notifications WHERE created_at < ?1 AND state != 'pending'",
            [&cut],
        )?;
        tx.commit()?;
        tracing::info!(cutoff = %cut, receipts = counts.receipts, attempts = counts.attempts,
            runs = counts.runs, "Retention purge done.");
        Ok(counts)
    }
}
