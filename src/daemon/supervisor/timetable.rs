//! The timetable: the subscriptions the supervisor knows ([`Entry`]), when each fires next
//! (jitter included), installing a (re)loaded configuration, and turning due fire times
//! into queued jobs (one run per subscription; a fire that comes meanwhile waits,
//! coalesced).

use super::job::{Job, JobKind};
use super::{lock, Supervisor};
use crate::core::config::Subscription;
use crate::core::identity::SubscriptionId;
use crate::loader::Loaded;
use crate::store::{self, RunFilter};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::{error, info, warn};

/// A subscription as the supervisor keeps it.
pub(super) struct Entry {
    pub(super) sub: Arc<Subscription>,
    /// Next fire time (the run's scheduled time) and when to start it (plus jitter).
    pub(super) next: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// A run of it is queued or working.
    pub(super) busy: bool,
    /// Its run holds a slot (working, or waiting between attempts); `busy && !running` is
    /// queued for a slot.
    pub(super) running: bool,
    /// A fire time that came while busy (coalesced: the latest wins).
    pub(super) pending: Option<DateTime<Utc>>,
    /// After an error outside the protocol, resume its active run at this time.
    pub(super) resume_at: Option<DateTime<Utc>>,
    /// Its file failed validation at the last reload; this is the last good version.
    pub(super) stale: bool,
}

fn jittered(sub: &Subscription, t: DateTime<Utc>) -> DateTime<Utc> {
    // Checked: `check` bounds jitter_secs to a day, and no value may overflow here either.
    let j = sub.schedule.jitter_secs.min(i64::MAX as u64 - 1);
    if j == 0 {
        return t;
    }
    chrono::Duration::try_seconds(rand::random::<u64>().wrapping_rem(j + 1) as i64)
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(t)
}

fn next_fire(sub: &Subscription, after: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if !sub.enabled {
        return None;
    }
    guarded(sub, "the next fire time", || {
        sub.schedule
            .next_after(after)
            .map(|t| (t, jittered(sub, t)))
    })
}

/// Runs a schedule computation of one subscription; a panic in it (a bug: `check` bounds
/// every number) unschedules that subscription with an error in the log instead of taking
/// the daemon and every other subscription down.
fn guarded<T>(sub: &Subscription, what: &str, f: impl FnOnce() -> Option<T>) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            error!(subscription = %sub.id, file = %sub.source.display(),
                   "Computing {what} panicked; this subscription is not scheduled until the next reload. This is a bug: report it with the subscription file.");
            None
        }
    }
}

impl Supervisor {
    /// The last scheduled time the store has a run for.
    pub(super) fn last_scheduled(&self, sub: &str) -> Option<DateTime<Utc>> {
        let runs = lock(&self.store).list_runs(&RunFilter {
            subscription: Some(sub.into()),
            ..Default::default()
        });
        match runs {
            Ok(r) => r.iter().map(|r| r.scheduled_at).max(),
            Err(e) => {
                warn!(subscription = %sub, error = %crate::core::errors::Chain(&e), "Cannot read the last run.");
                None
            }
        }
    }

    /// Installs a loaded configuration; returns the catch-up fires of new subscriptions.
    pub(super) fn apply(
        &mut self,
        loaded: Loaded,
        now: DateTime<Utc>,
    ) -> Vec<(SubscriptionId, DateTime<Utc>)> {
        for p in &loaded.problems {
            warn!(file = %p.file.display(), line = p.line, column = p.column, problem = %p, "Subscription file is invalid.");
        }
        let invalid: std::collections::BTreeSet<&std::path::PathBuf> =
            loaded.failed_files.iter().collect();
        self.invalid_files = invalid.len();
        crate::telemetry::subscription_files_invalid(invalid.len());
        if !invalid.is_empty() {
            warn!(
                files = invalid.len(),
                "Subscription files invalid; `regdrop check` lists every problem."
            );
        }
        let old = &self.daemon;
        if old.state_db != loaded.daemon.state_db
            || old.metrics_listen != loaded.daemon.metrics_listen
        {
            warn!("state_db and metrics_listen changes take effect at the next restart.");
        }
        if old.notify != loaded.daemon.notify {
            warn!("[notify] changes take effect at the next restart (systemctl restart regdrop).");
        }
        self.daemon = Arc::new(loaded.daemon);
        let mut entries = BTreeMap::new();
        let mut catch_up = Vec::new();
        for sub in loaded.subscriptions {
            let id = sub.id.clone();
            let sub = Arc::new(sub);
            match self.entries.remove(&id) {
                Some(mut e) => {
                    let same = e.sub.schedule.line == sub.schedule.line
                        && e.sub.schedule.tz == sub.schedule.tz
                        && e.sub.schedule.jitter_secs == sub.schedule.jitter_secs
                        && e.sub.enabled == sub.enabled;
                    if !same {
                        e.next = next_fire(&sub, now);
                        info!(subscription = %id, schedule = %sub.schedule.line, "Schedule changed.");
                    }
                    if e.stale {
                        info!(subscription = %id, "Subscription file is valid again.");
                    }
                    e.sub = sub;
                    e.stale = false;
                    entries.insert(id, e);
                }
                None => {
                    if sub.enabled && sub.schedule.catch_up == crate::core::schedule::CatchUp::Once
                    {
                        let since = self.last_scheduled(&id).unwrap_or(now);
                        if let Some(t) = guarded(&sub, "the missed fire time", || {
                            sub.schedule.last_missed(since, now)
                        }) {
                            catch_up.push((id.clone(), t));
                        }
                    }
                    let next = next_fire(&sub, now);
                    info!(subscription = %id, next = %next.map(|n| store::fmt_ts(n.0)).unwrap_or_else(|| "never".into()), enabled = sub.enabled, "Subscription loaded.");
                    entries.insert(
                        id,
                        Entry {
                            sub,
                            next,
                            busy: false,
                            running: false,
                            pending: None,
                            resume_at: None,
                            stale: false,
                        },
                    );
                }
            }
        }
        // A file that fails validation keeps its last good version running.
        for file in &loaded.failed_files {
            let ids: Vec<SubscriptionId> = self
                .entries
                .iter()
                .filter(|(_, e)| &e.sub.source == file)
                .map(|(id, _)| id.clone())
                .collect();
            for id in ids {
                if entries.contains_key(&id) {
                    continue;
                }
                let mut e = self.entries.remove(&id).expect("listed above");
                e.stale = true;
                warn!(subscription = %id, file = %file.display(), "Subscription file is invalid; its last good version keeps running.");
                entries.insert(id, e);
            }
        }
        for (id, e) in std::mem::take(&mut self.entries) {
            info!(subscription = %id, busy = e.busy, "Subscription removed.");
        }
        let before = self.queue.len();
        self.queue.retain(|j| {
            entries.contains_key(&j.sub.id) || matches!(j.kind, JobKind::Resume { .. })
        });
        if self.queue.len() != before {
            info!(
                dropped = before - self.queue.len(),
                "Queued runs of removed subscriptions dropped."
            );
        }
        self.entries = entries;
        self.dirty = true;
        catch_up
    }

    /// A fire time of `id` came: queue it, or remember it while a run is busy.
    pub(super) fn fire(&mut self, id: &SubscriptionId, t: DateTime<Utc>) {
        let Some(e) = self.entries.get_mut(id) else {
            return;
        };
        let run = store::run_id(id, t);
        if e.busy {
            if let Some(old) = e.pending.replace(t) {
                info!(subscription = %id, run = %run, replaced = %store::fmt_ts(old), "Fire coalesced with an earlier waiting one.");
            } else {
                info!(subscription = %id, run = %run, "Fire while a run is busy; it waits for that run.");
            }
            return;
        }
        e.busy = true;
        let sub = e.sub.clone();
        // An active run left by an earlier error or another process goes first.
        let active = lock(&self.store).active_run(id).ok().flatten();
        let kind = match active {
            Some(a) if a.scheduled_at != store::model::trunc_ts(t) => {
                e.pending = Some(t);
                info!(subscription = %id, run = %a.id, "An earlier run is still active; resuming it first.");
                JobKind::Resume { run: Box::new(a) }
            }
            _ => JobKind::Fire { scheduled_at: t },
        };
        info!(subscription = %id, run = %run, "Run queued.");
        self.queue.push_back(Job {
            sub,
            daemon: self.daemon.clone(),
            kind,
        });
        self.dirty = true;
    }

    pub(super) fn fire_due(&mut self, now: DateTime<Utc>) {
        let due: Vec<(SubscriptionId, Option<DateTime<Utc>>, bool)> = self
            .entries
            .iter()
            .filter_map(|(id, e)| {
                let fire = e.next.filter(|n| n.1 <= now).map(|n| n.0);
                let resume = e.resume_at.is_some_and(|r| r <= now);
                (fire.is_some() || resume).then(|| (id.clone(), fire, resume))
            })
            .collect();
        for (id, fire, resume) in due {
            if resume {
                let e = self.entries.get_mut(&id).expect("listed");
                e.resume_at = None;
                let active = if e.busy {
                    None
                } else {
                    Some(lock(&self.store).active_run(&id))
                };
                if let Some(active) = active {
                    if let Ok(Some(run)) = active {
                        e.busy = true;
                        info!(subscription = %id, run = %run.id, "Resuming a run after an error.");
                        self.queue.push_back(Job {
                            sub: e.sub.clone(),
                            daemon: self.daemon.clone(),
                            kind: JobKind::Resume { run: Box::new(run) },
                        });
                    } else if let Some(t) = e.pending.take() {
                        self.fire(&id, t);
                    }
                }
            }
            if let Some(t) = fire {
                self.fire(&id, t);
                let e = self.entries.get_mut(&id).expect("listed");
                e.next = next_fire(&e.sub, t.max(now));
                self.dirty = true;
            }
        }
    }

    pub(super) fn next_wake(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut t = self.next_housekeeping.min(self.next_takeover);
        for e in self.entries.values() {
            if let Some((_, due)) = e.next {
                t = t.min(due);
            }
            if let Some(r) = e.resume_at {
                t = t.min(r);
            }
        }
        t.max(now)
    }
}
