//! Take-over (several nodes on one store, docs/design.md §8): every half lease the
//! supervisor lists the active runs no node holds (a dead node's expired leases, released
//! ones, runs nobody claimed) and queues each as a resume, the same path as crash recovery
//! after a `kill -9`: the delivery claims the lease, looks for the finished file on the
//! server, and regenerates an artifact that is in another node's spool.

use super::job::{Job, JobKind};
use super::{lock, Supervisor};
use crate::core::config::DaemonConfig;
use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

/// How often runs without a live lease are looked for: half the lease, at least a second.
pub(super) fn poll_every(daemon: &DaemonConfig) -> chrono::Duration {
    chrono::Duration::from_std(daemon.lease / 2)
        .unwrap_or(chrono::Duration::seconds(15))
        .max(chrono::Duration::seconds(1))
}

impl Supervisor {
    /// Queues the runs no node holds, when the half lease since the last look is over.
    pub(super) fn take_over(&mut self, now: DateTime<Utc>) {
        if now < self.next_takeover {
            return;
        }
        self.next_takeover = now + poll_every(&self.daemon);
        if !self.heartbeat() {
            return;
        }
        // Deliveries by other nodes count for this node's silent-stop alert too.
        super::super::seed_last_success(&self.store);
        let runs = match lock(&self.store).expired_runs() {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %crate::core::errors::Chain(&e), "Cannot list the runs without a live lease; looking again later.");
                return;
            }
        };
        for run in runs {
            let Some(e) = self.entries.get_mut(&run.subscription) else {
                continue;
            };
            // Queued or working here, or waiting for its own retry after an error.
            if e.busy || e.resume_at.is_some() {
                continue;
            }
            e.busy = true;
            info!(subscription = %run.subscription, run = %run.id, state = %run.state,
                  "Taking over a run no node holds (its node stopped or lost it).");
            self.queue.push_back(Job {
                sub: e.sub.clone(),
                daemon: self.daemon.clone(),
                kind: JobKind::Resume { run: Box::new(run) },
            });
            self.dirty = true;
        }
    }

    /// The node registry's heartbeat (docs/design.md §8 "One name, one daemon"); `false`
    /// when another daemon instance holds this one's name now: every run is cancelled and
    /// the loop ends (`evicted`), without committing anything more.
    fn heartbeat(&mut self) -> bool {
        let Some((name, me)) = &self.registration else {
            return true;
        };
        match lock(&self.store).node_heartbeat(name, me) {
            Ok(None) => true,
            Ok(Some(holder)) => {
                error!(node = %name, holder_host = %holder.instance.host, holder_pid = holder.instance.pid,
                       holder_started = %crate::store::fmt_ts(holder.started_at),
                       "Another regdrop daemon took this node's name (this one's heartbeat had lapsed); stopping every run now without committing, and exiting.");
                self.cancel.cancel();
                self.evicted = Some(holder);
                false
            }
            Err(e) => {
                // The leases' own heartbeats decide about the runs meanwhile.
                warn!(node = %name, error = %crate::core::errors::Chain(&e), "Cannot renew this node's registration; trying again at the next tick.");
                true
            }
        }
    }
}
