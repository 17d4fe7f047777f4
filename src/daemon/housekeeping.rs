//! The daily housekeeping pass (gallring): sealed artifacts of delivered runs leave the
//! spool once `spool_grace` has passed since delivery; receipts and attempts older than
//! `receipts_retention` are purged from the store (which keeps the rest of the receipt
//! chain verifiable through its anchor).

use crate::config::DaemonConfig;
use crate::store::{RunFilter, RunState, Store};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::Mutex;
use tracing::{info, warn};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub spool_files: u64,
    pub receipts: u64,
    pub attempts: u64,
    pub runs: u64,
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// One pass at `now`. Errors are logged; the next pass tries again.
pub fn run(store: &Mutex<Store>, daemon: &DaemonConfig, now: DateTime<Utc>) -> Swept {
    let mut swept = Swept::default();
    let spool_cut = now - chrono::Duration::from_std(daemon.spool_grace).unwrap_or_default();
    let delivered = lock(store).list_runs(&RunFilter { states: vec![RunState::Delivered], ..Default::default() });
    match delivered {
        Ok(runs) => {
            for r in runs.iter().filter(|r| r.updated_at < spool_cut) {
                let Some(a) = &r.artifact else { continue };
                let p = Path::new(&a.path);
                match std::fs::remove_file(p) {
                    Ok(()) => {
                        swept.spool_files += 1;
                        info!(subscription = %r.subscription, run = %r.id, file = %p.display(), "Delivered artifact removed from the spool.");
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => warn!(run = %r.id, file = %p.display(), error = %e, "Cannot remove a delivered artifact."),
                }
            }
        }
        Err(e) => warn!(error = %e, "Housekeeping cannot list delivered runs."),
    }
    let cut = now - chrono::Duration::from_std(daemon.receipts_retention).unwrap_or_default();
    match lock(store).purge_older_than(cut) {
        Ok(c) => {
            swept.receipts = c.receipts;
            swept.attempts = c.attempts;
            swept.runs = c.runs;
        }
        Err(e) => warn!(error = %e, "Retention purge failed; receipts are kept until it succeeds."),
    }
    swept
}
