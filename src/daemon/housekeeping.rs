//! The daily housekeeping pass (gallring): sealed artifacts of delivered runs leave the
//! spool once `spool_grace` has passed since delivery; receipts and attempts older than
//! `receipts_retention` are purged from the store (which keeps the rest of the receipt
//! chain verifiable through its anchor).

use crate::core::config::DaemonConfig;
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

use crate::store::lock;

/// One pass at `now`. Errors are logged; the next pass tries again.
pub fn run(store: &Mutex<Store>, daemon: &DaemonConfig, now: DateTime<Utc>) -> Swept {
    let mut swept = Swept::default();
    // Checked: a grace too long for a date keeps everything (never "cut at now").
    let before = |d: std::time::Duration| {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let spool_cut = before(daemon.spool_grace);
    let delivered = lock(store).list_runs(&RunFilter {
        states: vec![RunState::Delivered],
        ..Default::default()
    });
    match delivered {
        Ok(runs) => {
            for r in runs.iter().filter(|r| r.updated_at < spool_cut) {
                let Some(a) = &r.artifact else { continue };
                // The artifact, the code tables delivered beside it, and the run's lock file.
                let extras = lock(store).run_files(&r.id).unwrap_or_default();
                let mut paths: Vec<std::path::PathBuf> = vec![Path::new(&a.path).to_path_buf()];
                paths.extend(extras.iter().map(|f| Path::new(&f.path).to_path_buf()));
                paths.push(
                    daemon
                        .spool_dir
                        .join("locks")
                        .join(format!("{}.lock", r.id)),
                );
                for p in &paths {
                    match std::fs::remove_file(p) {
                        Ok(()) => {
                            swept.spool_files += 1;
                            info!(subscription = %r.subscription, run = %r.id, file = %p.display(), "Delivered run's file removed from the spool.");
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            warn!(run = %r.id, file = %p.display(), error = %e, "Cannot remove a delivered run's spool file.")
                        }
                    }
                }
            }
        }
        Err(e) => {
            warn!(error = %crate::core::errors::Chain(&e), "Housekeeping cannot list delivered runs.")
        }
    }
    let cut = before(daemon.receipts_retention);
    match lock(store).purge_older_than(cut) {
        Ok(c) => {
            swept.receipts = c.receipts;
            swept.attempts = c.attempts;
            swept.runs = c.runs;
        }
        Err(e) => {
            warn!(error = %crate::core::errors::Chain(&e), "Retention purge failed; receipts are kept until it succeeds.")
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Artifact, NewReceipt, NewRun};
    use chrono::TimeZone;
    use std::sync::Arc;
    use std::time::Duration;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 6, 0, 0).unwrap()
    }

    /// A run of `sub` at `at`, sealed into `spool`, delivered one minute later.
    fn delivered(
        store: &Store,
        clock: &Mutex<DateTime<Utc>>,
        spool: &Path,
        sub: &str,
        at: DateTime<Utc>,
    ) -> String {
        *clock.lock().unwrap() = at;
        let run = store
            .create_run(&NewRun {
                subscription: sub.into(),
                scheduled_at: at,
            })
            .unwrap()
            .into_run();
        let path = spool.join(format!("{}.artifact", run.id));
        std::fs::write(&path, b"sealed").unwrap();
        let art = Artifact {
            path: path.display().to_string(),
            file_name: "x.dsv.age".into(),
            plaintext_sha256: "a".repeat(64),
            ciphertext_sha256: "b".repeat(64),
            rows: 1,
            plaintext_bytes: 6,
            ciphertext_bytes: 6,
            period_from: None,
            period_to: None,
            format: "dsv".into(),
            fallback_note: None,
        };
        store.record_artifact(&run.id, &art).unwrap();
        *clock.lock().unwrap() = at + chrono::Duration::minutes(1);
        store
            .commit_receipt(&NewReceipt {
                run_id: run.id.clone(),
                subscription: sub.into(),
                customer: "C".into(),
                customer_org_number: None,
                case_number: None,
                invoice_reference: None,
                report: "technical".into(),
                remote_host: "127.0.0.1".into(),
                remote_port: 22,
                host_key_fingerprint: "SHA256:x".into(),
                remote_path: "/in/x.dsv.age".into(),
                bytes: 6,
                rows: 1,
                plaintext_sha256: "a".repeat(64),
                ciphertext_sha256: "b".repeat(64),
                personal_fields: vec![],
                legal_basis: None,
                recipients: vec![],
                started_at: at,
                delivered_at: at + chrono::Duration::minutes(1),
            })
            .unwrap();
        path.display().to_string()
    }

    #[test]
    fn removes_old_artifacts_and_purges_old_receipts_keeping_the_chain_verifiable() {
        let spool = tempfile::tempdir().unwrap();
        let clock = Arc::new(Mutex::new(day(1)));
        let c2 = clock.clone();
        let store = Store::open_in_memory()
            .unwrap()
            .with_clock(move || *c2.lock().unwrap());
        let old = delivered(&store, &clock, spool.path(), "a", day(1));
        let mid = delivered(&store, &clock, spool.path(), "a", day(15));
        let new = delivered(&store, &clock, spool.path(), "a", day(20));
        let store = Mutex::new(store);
        let mut daemon =
            crate::core::config::validate::validate_daemon(&Default::default(), spool.path())
                .unwrap();
        daemon.spool_grace = Duration::from_secs(24 * 3600);
        daemon.receipts_retention = Duration::from_secs(10 * 24 * 3600);
        // Ten hours after the last delivery: its artifact is within the grace period.
        let now = day(20) + chrono::Duration::hours(10);
        *clock.lock().unwrap() = now;
        let swept = run(&store, &daemon, now);
        assert_eq!(swept.spool_files, 2);
        assert!(!Path::new(&old).exists() && !Path::new(&mid).exists());
        assert!(Path::new(&new).exists(), "within spool_grace");
        assert_eq!(swept.receipts, 1, "only the receipt older than 10 days");
        let s = store.lock().unwrap();
        assert_eq!(s.receipts(&Default::default()).unwrap().len(), 2);
        assert!(s.verify_chain().unwrap().is_intact());
        drop(s);
        // A second pass finds nothing more to do.
        assert_eq!(run(&store, &daemon, now), Swept::default());
    }
}
