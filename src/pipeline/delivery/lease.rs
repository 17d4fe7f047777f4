//! A run's lease while this node works on it (docs/design.md §8 "Several nodes"): claimed
//! before any work, a slot of the run's host taken across nodes (`max_per_host`), renewed
//! by a keeper task every third of `lease_secs`, released when the run ends.
//!
//! A node that loses its lease (the keeper's renewal is refused, or the store could not be
//! reached for two thirds of the lease, so another node may take the run at any moment)
//! cancels the run's work at once: it stops without committing (the store's commit points
//! check the lease as well) and the run ends in [`super::DeliveryError::LeaseLost`]. So
//! does a daemon whose node name another daemon instance took (`StoreError::NodeTaken`).

use super::{lock, Ctx, DeliveryError};
use crate::core::config::{DaemonConfig, Subscription};
use crate::core::identity::RunId;
use crate::store::{Claim, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// This node's name: `[daemon] node`, else the host name.
pub fn node_name(daemon: &DaemonConfig) -> Result<String, DeliveryError> {
    if let Some(n) = &daemon.node {
        return Ok(n.clone());
    }
    let host = nix::unistd::gethostname().map_err(|e| {
        DeliveryError::Setup(format!("reading the host name for [daemon] node: {e}"))
    })?;
    let host = host.to_string_lossy().trim().to_string();
    crate::core::config::node_name_problem(&host).map_err(|why| {
        DeliveryError::Setup(format!(
            "the host name, this node's default name, {why}: set [daemon] node"
        ))
    })?;
    Ok(host)
}

/// The host a run counts against for `max_per_host` (e-mail deliveries all count against
/// the one `[smtp]` server, under the name `smtp`).
pub fn host_of(sub: &Subscription) -> String {
    match sub.target() {
        Some(t) => format!("{}:{}", t.host, t.port),
        None => "smtp".into(),
    }
}

/// What [`take`] came to.
pub(super) enum Taken {
    /// The lease is ours; work under `Held::cancel`.
    Held(Held),
    /// Another live node holds the run.
    Elsewhere { node: String },
    /// The run is delivered already.
    Delivered,
    /// Shutdown while waiting for a slot of the host.
    Cancelled,
}

/// This node's lease on a run, kept alive by its keeper until [`Held::end`].
pub(super) struct Held {
    store: Arc<Mutex<Store>>,
    run: RunId,
    node: String,
    /// Cancelled by a shutdown (the parent token) or by the keeper when the lease is lost.
    pub cancel: CancellationToken,
    lost: Arc<AtomicBool>,
    keeper: Option<tokio::task::JoinHandle<()>>,
}

/// How often the host slot is asked for again while the host is busy on other nodes.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// Claims `run` for this node and a slot of its host, then starts the keeper.
pub(super) async fn take(
    ctx: &Ctx,
    sub: &Subscription,
    run: &RunId,
) -> Result<Taken, DeliveryError> {
    let node = node_name(&ctx.daemon)?;
    let ttl = ctx.daemon.lease;
    {
        let mut s = lock(&ctx.store);
        s.set_node(&node);
        match s.claim(run, &node, ttl)? {
            Claim::Claimed(l) => {
                debug!(run = %run, node = %node, until = %crate::store::fmt_ts(l.until), "Lease taken.");
            }
            Claim::Held {
                node: holder,
                until,
            } => {
                info!(run = %run, node = %holder, until = ?until.map(crate::store::fmt_ts), "Run is being delivered by another node.");
                return Ok(Taken::Elsewhere { node: holder });
            }
            Claim::Delivered => return Ok(Taken::Delivered),
        }
    }
    let host = host_of(sub);
    let mut waited = false;
    loop {
        let got =
            lock(&ctx.store).acquire_host_slot(&host, ctx.daemon.max_per_host, run, &node, ttl);
        match got {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                release(&ctx.store, run, &node);
                return Err(e.into());
            }
        }
        if !waited {
            info!(run = %run, host = %host, limit = ctx.daemon.max_per_host, "The host's slots are taken by other nodes' runs; waiting for one.");
            waited = true;
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => {
                release(&ctx.store, run, &node);
                return Ok(Taken::Cancelled);
            }
            _ = tokio::time::sleep(SLOT_WAIT) => {}
        }
        if let Err(e) = lock(&ctx.store).renew(run, &node, ttl) {
            release(&ctx.store, run, &node);
            return Err(e.into());
        }
    }
    let cancel = ctx.cancel.child_token();
    let lost = Arc::new(AtomicBool::new(false));
    let keeper = tokio::spawn(keep(
        ctx.store.clone(),
        run.clone(),
        node.clone(),
        ttl,
        cancel.clone(),
        lost.clone(),
    ));
    Ok(Taken::Held(Held {
        store: ctx.store.clone(),
        run: run.clone(),
        node,
        cancel,
        lost,
        keeper: Some(keeper),
    }))
}

fn release(store: &Arc<Mutex<Store>>, run: &RunId, node: &str) {
    if let Err(e) = lock(store).release(run, node) {
        // It expires by itself within the lease time.
        warn!(run = %run, error = %crate::core::errors::Chain(&e), "Could not release the run's lease; it expires by itself.");
    }
}

/// The keeper: renews every third of the lease; cancels the work when the lease is lost,
/// or when renewing has failed for two thirds of it (the store out of reach: another node
/// may take the run soon, so stop before that can happen).
async fn keep(
    store: Arc<Mutex<Store>>,
    run: RunId,
    node: String,
    ttl: Duration,
    cancel: CancellationToken,
    lost: Arc<AtomicBool>,
) {
    let every = ttl / 3;
    let mut last_ok = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (s, r, n) = (store.clone(), run.clone(), node.clone());
        let renewed = tokio::task::spawn_blocking(move || lock(&s).renew(&r, &n, ttl)).await;
        let why = match renewed {
            Ok(Ok(_)) => {
                last_ok = Instant::now();
                continue;
            }
            Ok(Err(e @ (StoreError::LeaseLost { .. } | StoreError::NodeTaken { .. }))) => {
                warn!(run = %run, node = %node, error = %crate::core::errors::Chain(&e), "Lease lost; this node stops working on the run without committing.");
                lost.store(true, Ordering::SeqCst);
                cancel.cancel();
                return;
            }
            Ok(Err(e)) => crate::core::errors::chain(&e),
            Err(e) => format!("the renewal task failed: {e}"),
        };
        if last_ok.elapsed() >= ttl * 2 / 3 {
            warn!(run = %run, node = %node, error = %why, "Cannot renew the run's lease in time; stopping work on it (another node may take it over).");
            lost.store(true, Ordering::SeqCst);
            cancel.cancel();
            return;
        }
        warn!(run = %run, node = %node, error = %why, "Renewing the run's lease failed; trying again.");
    }
}

impl Held {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Stops the keeper and releases the lease (another node may take the run at once if it
    /// is still active); returns whether the lease was lost meanwhile.
    pub async fn end(mut self) -> bool {
        if let Some(k) = self.keeper.take() {
            k.abort();
            let _ = k.await;
        }
        // A no-op when another node holds it now.
        release(&self.store, &self.run, &self.node);
        self.lost.load(Ordering::SeqCst)
    }
}

/// The leases of the runs a shared scan seals (`group`): renewed every third of the lease
/// while the scan runs, let go one by one as the scan ends for each ([`GroupLeases::let_go`]:
/// released, or left to the run's delivery that joined the scan), and those left released
/// when dropped (each run's delivery claims its own again).
pub(super) struct GroupLeases {
    store: Arc<Mutex<Store>>,
    runs: Arc<Mutex<Vec<RunId>>>,
    node: String,
    keeper: tokio::task::JoinHandle<()>,
}

impl GroupLeases {
    pub fn keep(ctx: &Ctx, runs: Vec<RunId>, node: String) -> GroupLeases {
        let (store, ttl) = (ctx.store.clone(), ctx.daemon.lease);
        let runs = Arc::new(Mutex::new(runs));
        let (s, r, n) = (store.clone(), runs.clone(), node.clone());
        let keeper = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                let (s, r, n) = (s.clone(), r.clone(), n.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    let runs = r.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let s = lock(&s);
                    for run in &runs {
                        // A lost one is fenced at its commit (the member then runs solo).
                        if let Err(e) = s.renew(run, &n, ttl) {
                            debug!(run = %run, error = %crate::core::errors::Chain(&e), "Lease of a shared scan's run not renewed.");
                        }
                    }
                })
                .await;
            }
        });
        GroupLeases {
            store,
            runs,
            node,
            keeper,
        }
    }

    /// The scan has ended for `run`: its lease is no longer renewed by the scan, and
    /// released when `release` (no delivery of the run holds it).
    pub fn let_go(&self, run: &RunId, release: bool) {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r != run);
        if release {
            self::release(&self.store, run, &self.node);
        }
    }
}

impl Drop for GroupLeases {
    fn drop(&mut self) {
        self.keeper.abort();
        let runs = std::mem::take(&mut *self.runs.lock().unwrap_or_else(|p| p.into_inner()));
        for run in &runs {
            release(&self.store, run, &self.node);
        }
    }
}

impl Drop for Held {
    /// The run's future was dropped without [`Held::end`] (its task aborted): the keeper
    /// stops, so the lease expires and another node (or this one) takes the run over.
    fn drop(&mut self) {
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
    }
}
