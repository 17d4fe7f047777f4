//! Runs that fire together with one register query, sealed from one shared scan
//! (docs/design.md §4, "Shared scans"): each member's run is recorded and locked as any run
//! is, its plan made, and its artifact sealed by [`crate::pipeline::shared_scan`] and
//! recorded (`sealed`). Before the scan starts each member is published on
//! [`super::Sealing`]: a member's delivery ([`super::deliver`], with its own attempts,
//! retries and receipt) that starts while the scan runs joins it, and its first attempt
//! uploads the spool file as it grows; one that starts later uploads the sealed file, not
//! read again ([`crate::core::fresh`]). A member that cannot join (its run exists already,
//! another process holds it, its plan differs, its target fails the check every run makes
//! before its extract) or whose sealing fails runs solo; a sealing failure is recorded as
//! its first attempt (the attempt of its joined delivery, when one joined).

use super::record::{last_delivered_to, record_sealed};
use super::{lock, lock_run, target_of, Ctx, DeliveryError};
use crate::core::config::{Subscription, Transport};
use crate::core::errors::chain;
use crate::core::fresh::Fresh;
use crate::core::identity::RunId;
use crate::core::plan::RunPlan;
use crate::core::retry::Classify;
use crate::core::scan::{self, ScanKey};
use crate::pipeline::artifact::Follow;
use crate::pipeline::shared_scan::{seal_shared, Member};
use crate::sftp::{self, Growth};
use crate::store::{Claim, NewRun, Run, RunState};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::sync::Arc;
use tracing::{info, warn};

/// How a member came out of its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// Its artifact is sealed and recorded: its delivery uploads it.
    Sealed,
    /// It runs on its own, for this reason.
    Solo(String),
}

/// The key of the scan the run of `sub` at `scheduled_at` would make, if it may share one
/// (the supervisor groups queued fires by it).
pub fn scan_key(ctx: &Ctx, sub: &Subscription, scheduled_at: DateTime<Utc>) -> Option<ScanKey> {
    let last_to = last_delivered_to(&lock(&ctx.store), &sub.id).ok()?;
    let plan = RunPlan::new(sub, scheduled_at, last_to).ok()?;
    scan::solo_reason(&plan)
        .is_none()
        .then(|| ScanKey::of(&plan))
}

/// A member ready to be sealed: its run (locked by this process) and its plan.
struct Ready {
    index: usize,
    run: Run,
    plan: RunPlan,
    /// Handed to [`super::Sealing`] when the scan starts.
    lock: Option<std::fs::File>,
}

fn ready(
    ctx: &Ctx,
    index: usize,
    sub: &Subscription,
    scheduled_at: DateTime<Utc>,
) -> Result<Ready, String> {
    let created = lock(&ctx.store)
        .create_run(&NewRun {
            subscription: sub.id.clone(),
            scheduled_at,
        })
        .map_err(|e| chain(&e))?;
    let run = created.into_run();
    if run.state != RunState::Pending || run.artifact.is_some() {
        return Err(format!("its run is {} already", run.state));
    }
    let held = lock_run(&ctx.daemon.spool_dir, &run.id).map_err(|e| chain(&e))?;
    let last_to = last_delivered_to(&lock(&ctx.store), &sub.id).map_err(|e| chain(&e))?;
    let plan = RunPlan::new(sub, run.scheduled_at, last_to).map_err(|e| chain(&e))?;
    if let Some(why) = scan::solo_reason(&plan) {
        return Err(why.to_string());
    }
    // Several nodes: sealed only under this node's lease (kept during the scan by
    // [`super::lease::GroupLeases`]); a run another node holds is left to it.
    let node = super::lease::node_name(&ctx.daemon).map_err(|e| chain(&e))?;
    let mut store = lock(&ctx.store);
    store.set_node(&node);
    match store
        .claim(&run.id, &node, ctx.daemon.lease)
        .map_err(|e| chain(&e))?
    {
        Claim::Claimed(_) => {}
        Claim::Held { node, .. } => return Err(format!("node {node} holds its lease")),
        Claim::Delivered => return Err("it is delivered".into()),
    }
    drop(store);
    Ok(Ready {
        index,
        run,
        plan,
        lock: Some(held),
    })
}

/// Seals the runs of `members` (subscription, scheduled time) from one scan of the
/// register; what became of each, in order. Never fails as a whole: a member that is not
/// sealed runs solo. `started` is called once the members' runs may start (their
/// deliveries join the scan and upload while it seals); not at all when no scan starts.
pub async fn seal_group(
    ctx: &Ctx,
    members: &[(Arc<Subscription>, DateTime<Utc>)],
    started: impl FnOnce(),
) -> Vec<Joined> {
    let mut out: Vec<Joined> = vec![Joined::Solo("not grouped".into()); members.len()];
    let mut group: Vec<Ready> = Vec::new();
    for (i, (sub, at)) in members.iter().enumerate() {
        match ready(ctx, i, sub, *at) {
            Ok(r) => group.push(r),
            Err(why) => out[i] = Joined::Solo(why),
        }
    }
    // Each member's lease renewed while the group seals, let go as the scan ends for it:
    // released, or left to its delivery that joined the scan.
    let leases = match super::lease::node_name(&ctx.daemon) {
        Ok(node) => Some(super::lease::GroupLeases::keep(
            ctx,
            group.iter().map(|r| r.run.id.clone()).collect(),
            node,
        )),
        Err(_) => None,
    };
    // Only the runs with the first one's query (the supervisor grouped them by it).
    if let Some(key) = group.first().map(|r| ScanKey::of(&r.plan)) {
        group.retain(|r| {
            let same = ScanKey::of(&r.plan) == key;
            if !same {
                out[r.index] = Joined::Solo("another register query".into());
            }
            same
        });
    }
    let mut group = check_targets(ctx, group, &mut out).await;
    if group.len() < 2 {
        for r in &group {
            out[r.index] = Joined::Solo("no other run with its query".into());
        }
        return out;
    }
    // Each member published before the scan starts: a member's delivery that starts
    // meanwhile (the supervisor lets them start now, each under its host's limit) joins it
    // and uploads the spool file as it grows; the sealers only tell how far it has grown.
    let (follows, growth) = publish(ctx, &mut group);
    let mut published = Published {
        ctx,
        leases: leases.as_ref(),
        runs: group.iter().map(|r| r.run.id.clone()).collect(),
    };
    started();
    let plans: Vec<RunPlan> = group.iter().map(|r| r.plan.clone()).collect();
    let names: Vec<String> = group
        .iter()
        .map(|r| format!("{}.artifact", r.run.id))
        .collect();
    let (register, spool) = (ctx.daemon.register.clone(), ctx.daemon.spool_dir.clone());
    let cancel = ctx.cancel.clone();
    let subs: Vec<String> = plans.iter().map(|p| p.subscription.to_string()).collect();
    info!(runs = plans.len(), subscriptions = %subs.join(","), "Shared scan started.");
    let scanned = tokio::task::spawn_blocking(move || {
        let mut members: Vec<Member<'_>> = plans
            .iter()
            .zip(&names)
            .zip(follows)
            .map(|((plan, name), follow)| Member {
                plan,
                spool: &spool,
                artifact_name: name.clone(),
                follow,
            })
            .collect();
        seal_shared(&register, &mut members, &mut |_, _| {}, &|| {
            cancel.is_cancelled()
        })
    })
    .await;
    // Why no member was sealed, when the scan as a whole stopped (no attempt of theirs).
    let stopped = match &scanned {
        Ok(Ok(_)) if ctx.cancel.is_cancelled() => Some("stopped by shutdown".to_string()),
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            warn!(subscriptions = %subs.join(","), stage = %e.label(), error = %chain(e),
                  "Shared scan failed; each run goes on alone.");
            Some(chain(e))
        }
        Err(e) => Some(format!("the shared scan's task failed: {e}")),
    };
    if let Some(why) = stopped {
        for (r, grow) in group.iter().zip(&growth) {
            grow.send_replace(Growth::Failed(why.clone()));
            let e = DeliveryError::Task(format!("the shared scan stopped: {why}"));
            if published.end(&r.run.id, Err(e)).is_err() {
                out[r.index] = Joined::Solo(why.clone());
            } else {
                out[r.index] = Joined::Solo(format!("{why} (told to its delivery)"));
            }
        }
        return out;
    }
    let Ok(Ok(scanned)) = scanned else {
        unreachable!("handled above")
    };
    let mut sealed = 0;
    for ((mut r, result), grow) in group.into_iter().zip(scanned.results).zip(&growth) {
        let result = result.map_err(DeliveryError::from).and_then(|art| {
            // The upload beside it checks what it sent against these figures.
            grow.send_replace(Growth::Complete {
                bytes: art.sealed.ciphertext_bytes,
                sha256: art.sealed.ciphertext_sha256.clone(),
            });
            record_sealed(ctx, &r.plan, &mut r.run, &art)?;
            let stamp = super::spool::stamp(&art.sealed.path).ok_or_else(|| {
                DeliveryError::Spool(format!(
                    "the sealed artifact {} is not in the spool",
                    art.sealed.path.display()
                ))
            })?;
            Ok(Fresh {
                bytes: art.sealed.ciphertext_bytes,
                sha256: art.sealed.ciphertext_sha256.clone(),
                stamp,
            })
        });
        if let Err(e) = &result {
            grow.send_replace(Growth::Failed(chain(e)));
        }
        let ok = result.is_ok();
        match published.end(&r.run.id, result) {
            Ok(()) if ok => {
                sealed += 1;
                out[r.index] = Joined::Sealed;
            }
            // Its delivery joined the scan: the error is its attempt's.
            Ok(()) => out[r.index] = Joined::Solo("its sealing failed".into()),
            Err(e) => {
                let msg = chain(&e);
                warn!(subscription = %r.plan.subscription, run = %r.run.id, stage = %e.label(), error = %msg,
                      "Sealing in the shared scan failed; the run goes on alone.");
                let store = lock(&ctx.store);
                if let Ok(n) = store.begin_attempt(&r.run.id) {
                    let _ = store.finish_attempt(
                        &r.run.id,
                        n,
                        e.class().into(),
                        Some(e.label()),
                        Some(&msg),
                    );
                }
                out[r.index] = Joined::Solo(msg);
            }
        }
    }
    crate::telemetry::shared_scan(sealed);
    info!(runs = sealed, rows = scanned.rows, subscriptions = %subs.join(","),
          "Shared scan sealed {sealed} runs from one read of the register.");
    out
}

/// The members of `group` whose target passes its check now, at most `max_per_host` checks
/// at once; the others go on alone (`out`).
async fn check_targets(ctx: &Ctx, group: Vec<Ready>, out: &mut [Joined]) -> Vec<Ready> {
    // A target that fails its check now (host key, login, folder, a server down) costs no
    // sealing: its run goes on alone, which checks it again first, as every run does. At
    // most `max_per_host` checks at once: a burst of logins is what servers throttle
    // (OpenSSH's MaxStartups drops connections beyond 10 unauthenticated ones).
    let targets: Vec<Result<sftp::Target, String>> = group
        .iter()
        .map(|r| match &r.plan.transport {
            Transport::Sftp(t) => target_of(&r.plan.subscription, t).map_err(|e| chain(&e)),
            Transport::Email(_) => Err("not an SFTP delivery".to_string()),
        })
        .collect();
    let checks: Vec<Result<(), String>> = futures::stream::iter(
        targets
            .into_iter()
            .map(|t| async move { sftp::check_target(&t?).await.map_err(|e| chain(&e)) }),
    )
    .buffered(ctx.daemon.max_per_host.max(1))
    .collect()
    .await;
    let mut checked = Vec::with_capacity(group.len());
    for (r, check) in group.into_iter().zip(checks) {
        match check {
            Ok(()) => checked.push(r),
            Err(why) => {
                info!(subscription = %r.plan.subscription, run = %r.run.id, error = %why,
                      "Target check failed; the run does not join the shared scan and goes on alone.");
                out[r.index] = Joined::Solo(format!("its target: {why}"));
            }
        }
    }
    checked
}

/// Publishes each member of `group` on [`super::Sealing`] with its run lock and the spool
/// file its sealer is about to write; what the sealers tell the followers (one per member)
/// and the senders the scan's end goes out on.
fn publish(
    ctx: &Ctx,
    group: &mut [Ready],
) -> (
    Vec<Option<Follow>>,
    Vec<Arc<tokio::sync::watch::Sender<Growth>>>,
) {
    let mut follows: Vec<Option<Follow>> = Vec::with_capacity(group.len());
    let mut growth: Vec<Arc<tokio::sync::watch::Sender<Growth>>> = Vec::with_capacity(group.len());
    for r in group.iter_mut() {
        let (file_tx, file_rx) = tokio::sync::oneshot::channel();
        let (grow_tx, grow_rx) = tokio::sync::watch::channel(Growth::Written(0));
        let grow_tx = Arc::new(grow_tx);
        let hook = grow_tx.clone();
        follows.push(Some(Follow {
            opened: Box::new(move |f| {
                let _ = file_tx.send(f);
            }),
            written: Box::new(move |bytes| {
                hook.send_replace(Growth::Written(bytes));
            }),
        }));
        growth.push(grow_tx);
        let held = r.lock.take().expect("a ready member holds its run's lock");
        let source = sftp::Growing {
            file: file_rx,
            growth: grow_rx,
        };
        ctx.sealing.publish(r.run.id.clone(), held, source);
    }
    (follows, growth)
}

/// The members published on [`super::Sealing`] whose scan has not ended yet: any left when
/// this is dropped (an early return, a panic) end with an error, so that no delivery that
/// joined waits for ever and the others get their run back.
struct Published<'a> {
    ctx: &'a Ctx,
    leases: Option<&'a super::lease::GroupLeases>,
    runs: Vec<RunId>,
}

impl Published<'_> {
    /// The scan ended for `run` ([`super::Sealing::end`]); the scan lets go of its lease.
    fn end(
        &mut self,
        run: &RunId,
        result: Result<Fresh, DeliveryError>,
    ) -> Result<(), DeliveryError> {
        self.runs.retain(|r| r != run);
        let leases = self.leases;
        let r = self.ctx.sealing.end(run, result, || {
            if let Some(l) = leases {
                l.let_go(run, true);
            }
        });
        if let Some(l) = leases {
            l.let_go(run, false);
        }
        r
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        for run in std::mem::take(&mut self.runs) {
            let e = DeliveryError::Task("the shared scan stopped before sealing it".into());
            let _ = self.end(&run, Err(e));
        }
    }
}
