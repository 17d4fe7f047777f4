//! Shared scans in the supervisor (docs/design.md §8): fires queued in the same turn of the
//! loop whose runs read the same rows ([`crate::core::scan::ScanKey`], from
//! [`super::Work::scan_key`]) are sealed from one scan. The scan takes one worker slot
//! (`max_concurrent`) and no host's slot; its fires stay in the queue, held, until the scan
//! says it starts (its members are ready; or it ends without starting), then they start as
//! usual, each under `max_concurrent` and its host's limit: one that starts while the scan
//! seals uploads as it seals, one that gets its slots later uploads the artifact the scan
//! sealed for it (or seals alone when it could not join). Each fire is considered once: a
//! fire that was held, or had no partner, is never grouped again, and retries happen inside
//! a run, so a retried run is always solo.

use super::job::{Job, JobKind};
use super::slots::Done;
use super::Supervisor;
use crate::core::identity::RunId;
use crate::core::scan::ScanKey;
use std::collections::HashSet;
use tracing::info;

/// The supervisor's shared scans.
#[derive(Default)]
pub(super) struct Groups {
    /// Fires waiting for their shared scan.
    held: HashSet<RunId>,
    /// Fires already considered (held now or before, or without a partner).
    seen: HashSet<RunId>,
}

/// A shared scan's end, as its task reports it.
pub(super) struct GroupDone {
    runs: Vec<RunId>,
}

impl Groups {
    pub(super) fn holds(&self, job: &Job) -> bool {
        !self.held.is_empty() && self.held.contains(&job.run_id())
    }
}

impl Supervisor {
    /// Starts a shared scan for every set of two or more queued fires with one register
    /// query, while a worker slot is free (a set without a slot is looked at again on the
    /// next turn; a fire without a partner is not).
    pub(super) fn form_groups(&mut self) {
        let queued: HashSet<RunId> = self.queue.iter().map(Job::run_id).collect();
        self.groups.seen.retain(|r| queued.contains(r));
        let mut keyed: Vec<(ScanKey, Vec<usize>)> = Vec::new();
        for (i, job) in self.queue.iter().enumerate() {
            let id = job.run_id();
            if !matches!(job.kind, JobKind::Fire { .. }) || !self.groups.seen.insert(id) {
                continue;
            }
            let Some(key) = self.work.scan_key(job) else {
                continue;
            };
            match keyed.iter_mut().find(|(k, _)| *k == key) {
                Some((_, m)) => m.push(i),
                None => keyed.push((key, vec![i])),
            }
        }
        for (_, members) in keyed.into_iter().filter(|(_, m)| m.len() > 1) {
            if self.active >= self.daemon.max_concurrent {
                // No slot for the scan now (nor for them): the next turn looks again.
                for &i in &members {
                    self.groups.seen.remove(&self.queue[i].run_id());
                }
                continue;
            }
            let jobs: Vec<Job> = members.iter().map(|&i| self.queue[i].clone()).collect();
            let runs: Vec<RunId> = jobs.iter().map(Job::run_id).collect();
            self.groups.held.extend(runs.iter().cloned());
            self.active += 1;
            self.dirty = true;
            info!(runs = runs.len(), subscriptions = %jobs.iter().map(|j| j.sub.id.to_string()).collect::<Vec<_>>().join(","),
                  active = self.active, "Shared scan queued.");
            let tx = self.done_tx.clone();
            let started = {
                let (tx, runs) = (tx.clone(), runs.clone());
                Box::new(move || {
                    let _ = tx.send(Done::GroupStarted(GroupDone { runs }));
                })
            };
            let fut = self.work.seal_group(jobs, self.cancel.clone(), started);
            self.tracker.spawn(async move {
                // A panic in the scan leaves its runs to seal alone.
                let _ = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(fut)).await;
                let _ = tx.send(Done::Group(GroupDone { runs }));
            });
        }
    }

    /// A shared scan started: its fires may start (its slot stays taken until it ends).
    pub(super) fn group_started(&mut self, g: GroupDone) {
        for r in &g.runs {
            self.groups.held.remove(r);
        }
        self.dirty = true;
    }

    /// A shared scan ended: its slot is free, its fires may start (if they did not yet).
    pub(super) fn group_ended(&mut self, g: GroupDone) {
        self.active -= 1;
        for r in &g.runs {
            self.groups.held.remove(r);
        }
        self.dirty = true;
    }
}
