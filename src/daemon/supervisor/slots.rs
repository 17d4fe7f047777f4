//! The slots: starting queued runs in FIFO order while `max_concurrent` and the run's
//! host (`max_per_host`) allow, each in a task of its own, and what happens when one ends
//! (metrics, the log line, notifications, a waiting fire, a resume after an error).

use super::job::{host_of, Job, WorkResult};
use super::{lock, Supervisor};
use crate::core::identity::{RunId, SubscriptionId};
use crate::pipeline::delivery::{DeliveryError, Outcome};
use crate::telemetry;
use futures::FutureExt;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// What a task reports when it ends: a run, or a shared scan (`groups`).
// One message per run's end, moved once: the size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub(super) enum Done {
    Run(RunDone),
    /// A shared scan started: its fires may start (`groups`).
    GroupStarted(super::groups::GroupDone),
    Group(super::groups::GroupDone),
}

/// A run's end, as its task reports it.
pub(super) struct RunDone {
    sub: SubscriptionId,
    host: String,
    run: RunId,
    result: WorkResult,
    seconds: f64,
}

fn outcome_label(r: &WorkResult) -> &'static str {
    match r {
        Ok(Outcome::Delivered(_)) => "delivered",
        Ok(Outcome::AlreadyDelivered(_)) => "already_delivered",
        Ok(Outcome::NeedsAttention { .. }) => "needs_attention",
        Ok(Outcome::Failed { .. }) => "failed",
        Ok(Outcome::Interrupted { .. }) => "interrupted",
        Ok(Outcome::Elsewhere { .. }) => "elsewhere",
        Err(DeliveryError::LeaseLost { .. }) => "lease_lost",
        Err(_) => "error",
    }
}

impl Supervisor {
    /// Starts queued runs, oldest first, while the limits allow.
    pub(super) fn dispatch(&mut self) {
        let mut i = 0;
        while i < self.queue.len() && self.active < self.daemon.max_concurrent {
            // Waiting for its shared scan to seal it.
            if self.groups.holds(&self.queue[i]) {
                i += 1;
                continue;
            }
            let host = host_of(&self.queue[i].sub);
            if self.per_host.get(&host).copied().unwrap_or(0) >= self.daemon.max_per_host {
                i += 1;
                continue;
            }
            let job = self.queue.remove(i).expect("in range");
            self.spawn(job, host);
        }
    }

    pub(super) fn spawn(&mut self, job: Job, host: String) {
        self.active += 1;
        *self.per_host.entry(host.clone()).or_default() += 1;
        self.dirty = true;
        let run = job.run_id();
        let sub = job.sub.id.clone();
        if let Some(e) = self.entries.get_mut(&sub) {
            e.running = true;
        }
        info!(subscription = %sub, run = %run, host = %host, active = self.active, "Run started.");
        let fut = self.work.start(job, self.cancel.clone());
        let tx = self.done_tx.clone();
        self.tracker.spawn(async move {
            let t0 = Instant::now();
            let result = match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::Task("the run's task panicked".to_string())),
            };
            let _ = tx.send(Done::Run(RunDone {
                sub,
                host,
                run,
                result,
                seconds: t0.elapsed().as_secs_f64(),
            }));
        });
    }

    pub(super) fn finished(&mut self, d: Done) {
        let d = match d {
            Done::Run(d) => d,
            Done::GroupStarted(g) => return self.group_started(g),
            Done::Group(g) => return self.group_ended(g),
        };
        self.active -= 1;
        if let Some(n) = self.per_host.get_mut(&d.host) {
            *n -= 1;
            if *n == 0 {
                self.per_host.remove(&d.host);
            }
        }
        self.dirty = true;
        let label = outcome_label(&d.result);
        let (bytes, rows) = match &d.result {
            Ok(Outcome::Delivered(r)) => (r.bytes, r.rows),
            _ => (0, 0),
        };
        telemetry::run_ended(&d.sub, label, bytes, rows, d.seconds);
        match &d.result {
            Ok(Outcome::Delivered(r)) | Ok(Outcome::AlreadyDelivered(r)) => {
                telemetry::last_success(&d.sub, r.delivered_at.timestamp());
                info!(subscription = %d.sub, run = %d.run, outcome = label, receipt = r.id, seconds = d.seconds, "Run finished.");
            }
            Ok(Outcome::NeedsAttention { reason, .. }) | Ok(Outcome::Failed { reason, .. }) => {
                warn!(subscription = %d.sub, run = %d.run, outcome = label, reason = %reason, "Run finished without delivery; `regdrop retry {}` after fixing the cause.", d.run);
            }
            Ok(Outcome::Interrupted { .. }) => {
                info!(subscription = %d.sub, run = %d.run, outcome = label, "Run interrupted; it resumes on the next start.");
            }
            Ok(Outcome::Elsewhere { node, .. }) => {
                info!(subscription = %d.sub, run = %d.run, outcome = label, node = %node, "Another node is delivering this run.");
            }
            Err(e @ DeliveryError::LeaseLost { .. }) => {
                warn!(subscription = %d.sub, run = %d.run, outcome = label, error = %crate::core::errors::Chain(e), "Run given up on this node: its lease was lost.");
            }
            Err(e) => {
                error!(subscription = %d.sub, run = %d.run, outcome = label, error = %crate::core::errors::Chain(e), "Run stopped by an error.");
            }
        }
        self.refresh_attention();
        if let Some(e) = self.entries.get(&d.sub) {
            self.alerts
                .run_ended(&e.sub, &d.run, d.result.as_ref().ok(), e.next.map(|n| n.0));
        }
        let now = self.clock.now();
        let shutting_down = self.cancel.is_cancelled() || self.tracker.is_closed();
        let Some(e) = self.entries.get_mut(&d.sub) else {
            return;
        };
        e.busy = false;
        e.running = false;
        if shutting_down {
            return;
        }
        if d.result.is_err() {
            // The run may still be active in the store: resume it after the retry base. A
            // waiting fire waits for that (firing it now would resume the same run at once,
            // again and again while the error lasts).
            let wait = e.sub.retry.base.max(Duration::from_secs(1));
            e.resume_at = Some(
                chrono::Duration::from_std(wait)
                    .ok()
                    .and_then(|w| now.checked_add_signed(w))
                    .unwrap_or(now + chrono::Duration::seconds(1)),
            );
            return;
        }
        if matches!(d.result, Ok(Outcome::Elsewhere { .. })) {
            // Another node works on the subscription's active run: a waiting fire waits
            // for it (asked again every half lease; the take-over finds the run if that
            // node dies).
            if e.pending.is_some() {
                e.resume_at = Some(now + super::leases::poll_every(&self.daemon));
            }
            return;
        }
        if let Some(t) = e.pending.take() {
            self.fire(&d.sub, t);
        }
    }

    /// `runs_needing_attention` from the store, so a run resolved by `regdrop resolve` (another
    /// process) drops out at the daemon's next wake-up.
    pub(super) fn refresh_attention(&self) {
        match lock(&self.store).runs_needing_attention() {
            Ok(runs) => {
                telemetry::state_db_up(true);
                telemetry::needing_attention(runs.len())
            }
            Err(e) => {
                // A store that cannot be reached is what `regdrop_state_db_up` alerts on;
                // the runs wait (their work retries store calls), nothing is lost.
                if crate::core::retry::Classify::is_retryable(&e) {
                    telemetry::state_db_up(false);
                }
                warn!(error = %crate::core::errors::Chain(&e), "Cannot count the runs needing attention.")
            }
        }
    }
}
