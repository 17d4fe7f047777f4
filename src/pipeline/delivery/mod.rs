//! One run, from its record in the store to its receipt (docs/design.md "A run"): record the run
//! before any work, generate and seal once, upload with retries that reuse the artifact,
//! find an earlier attempt's finished upload after a crash, and commit exactly one receipt.
//!
//! Two transports behind the one run loop ([`deliver_run`]): each attempt goes to SFTP
//! (`attempt_once`, the upload files) or e-mail (`email`), and comes back as
//! [`Sent`] (what the receipt records) or a [`DeliveryError`] classed like any other.

use crate::core::config::{DaemonConfig, Subscription, Transport};
use crate::core::errors::{chain, Chain};
use crate::core::fresh::SpoolRead;
use crate::core::identity::{RunId, SubscriptionId};
use crate::core::plan::{PlanError, RunPlan};
use crate::core::retry::{Classify, ErrorClass, GiveUp, Next, Stage};
use crate::pipeline::artifact::JobError;
use crate::sftp::{self, SftpError};
use crate::store::{
    self, AttemptOutcome, DeliveredFile, NewRun, Receipt, Run, RunState, Store, StoreError,
};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

mod email;
mod group;
mod lease;
mod live;
mod record;
mod spool;
mod stream;
mod target;
mod upload;

pub use group::{scan_key, seal_group, Joined};
pub use lease::{host_of, node_name};
pub use live::Sealing;
use record::{generate, last_delivered_to, record_receipt};
use spool::{check_spool, lock_run, SpoolCheck};
pub use target::target_of;
use upload::{attempt_all, find_on_server, manifest};

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Sftp(#[from] SftpError),
    #[error("{0}")]
    Setup(String),
    #[error("generation task failed: {0}")]
    Task(String),
    /// Another regdrop process (the daemon, or an operator's `retry`) works on this run.
    #[error("run {run} is being delivered by another regdrop process (lock {lock}); wait for it, or check `regdrop status`")]
    Busy { run: String, lock: String },
    /// The spool file is not what was sealed (truncated, overwritten): it is discarded and
    /// the next attempt regenerates it.
    #[error("the sealed artifact changed after sealing ({detail}); it is not uploaded and is regenerated; check what else writes to the spool folder")]
    ArtifactChanged { path: String, detail: String },
    /// The spool file is gone and the server does not have it.
    #[error("the sealed artifact {path} is missing from the spool and the server does not have it; this run cannot be resumed: deliver a new run with `regdrop deliver {sub}`")]
    ArtifactLost { path: String, sub: SubscriptionId },
    /// The spool cannot be read or written.
    #[error("{0}")]
    Spool(String),
    /// The mail server refused the mail, or could not be reached, or its answer was lost.
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    /// The SMS gateway did not take the passphrase.
    #[error("the passphrase SMS: {0}")]
    Sms(crate::http_post::HttpError),
    /// The sealed files are over `[email] max_bytes`: never sent (no SMS, no mail).
    #[error("the sealed files are {bytes} bytes, over [email] max_bytes = {max} for subscription {sub}; no mail was sent: deliver this extract by SFTP (a [target] table instead of [email]) or narrow the extract")]
    TooLarge {
        sub: SubscriptionId,
        bytes: u64,
        max: u64,
    },
    /// A crash (or a lost reply) left the run's mail recorded as being sent: it may have
    /// reached the recipient.
    #[error("the mail of run {run} (Message-ID {message_id}) may have been sent: the process stopped between handing it to the mail server and recording the answer; ask the recipient, then `regdrop retry {run}` sends it again")]
    MailUnconfirmed { run: RunId, message_id: String },
    /// This node lost the run's lease while working on it (its heartbeat was late or the
    /// store out of reach, and another node may have taken the run over): it stopped
    /// without committing; whichever node holds the lease finishes the run.
    #[error("run {run}: this node ({node}) lost the run's lease and stopped without committing{}; the node holding the lease finishes it", holder.as_ref().map(|h| format!(" (node {h} holds it)")).unwrap_or_default())]
    LeaseLost {
        run: RunId,
        node: String,
        holder: Option<String>,
    },
}

impl From<PlanError> for DeliveryError {
    fn from(e: PlanError) -> Self {
        DeliveryError::Job(JobError::Plan(e))
    }
}

impl Classify for DeliveryError {
    fn class(&self) -> ErrorClass {
        match self {
            DeliveryError::Store(e) => e.class(),
            DeliveryError::Job(e) => e.class(),
            DeliveryError::Sftp(e) => e.class(),
            DeliveryError::Mail(e) => e.class(),
            DeliveryError::Sms(e) => e.class(),
            DeliveryError::Setup(_)
            | DeliveryError::ArtifactLost { .. }
            | DeliveryError::TooLarge { .. }
            | DeliveryError::MailUnconfirmed { .. } => ErrorClass::Permanent,
            DeliveryError::Task(_)
            | DeliveryError::Busy { .. }
            | DeliveryError::LeaseLost { .. }
            | DeliveryError::ArtifactChanged { .. }
            | DeliveryError::Spool(_) => ErrorClass::Retryable,
        }
    }
}

impl DeliveryError {
    /// A short label for the attempts table and metrics.
    pub fn label(&self) -> Stage {
        match self {
            DeliveryError::Store(_) => Stage::Store,
            DeliveryError::Job(e) => e.label(),
            DeliveryError::Sftp(e) => sftp_label(e),
            DeliveryError::Setup(_) => Stage::Config,
            DeliveryError::Task(_) => Stage::Internal,
            DeliveryError::Busy { .. } | DeliveryError::LeaseLost { .. } => Stage::Busy,
            DeliveryError::ArtifactChanged { .. }
            | DeliveryError::ArtifactLost { .. }
            | DeliveryError::Spool(_) => Stage::Spool,
            DeliveryError::Mail(_) | DeliveryError::TooLarge { .. } => Stage::Mail,
            DeliveryError::MailUnconfirmed { .. } => Stage::Interrupted,
            DeliveryError::Sms(_) => Stage::Sms,
        }
    }
}

fn sftp_label(e: &SftpError) -> Stage {
    match e {
        SftpError::Connect { .. } | SftpError::ConnectTimeout { .. } => Stage::Connect,
        SftpError::HostKeyMismatch { .. } | SftpError::HostKeyConfig(_) => Stage::HostKey,
        SftpError::AuthRefused { .. }
        | SftpError::SecretFile { .. }
        | SftpError::BadKeyFile { .. } => Stage::Auth,
        SftpError::NoSftpSubsystem { .. }
        | SftpError::Transport { .. }
        | SftpError::Negotiation { .. } => Stage::Transport,
        SftpError::Remote { .. } => Stage::Remote,
        SftpError::RemoteDirMissing { .. } | SftpError::RemoteNotDir { .. } => Stage::RemoteDir,
        SftpError::FinalExists { .. }
        | SftpError::NoFreeVersion { .. }
        | SftpError::InvalidName { .. } => Stage::FinalName,
        SftpError::NoSafeCommit { .. } | SftpError::HardlinkBroken { .. } => Stage::Commit,
        SftpError::SizeMismatch { .. } | SftpError::ChecksumMismatch { .. } => Stage::Verify,
        SftpError::Local { .. }
        | SftpError::LocalChanged { .. }
        | SftpError::SourceStopped { .. } => Stage::Spool,
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Delivered now, with its receipt.
    Delivered(Receipt),
    /// The run had been delivered before; its receipt.
    AlreadyDelivered(Receipt),
    /// A permanent error: the run waits for an operator (`regdrop retry RUN`).
    NeedsAttention { run: RunId, reason: String },
    /// Retries exhausted (attempts or deadline).
    Failed { run: RunId, reason: String },
    /// Shutdown while waiting or working; the run resumes on the next start.
    Interrupted { run: RunId },
    /// Another node holds the run's lease and delivers it (several nodes on one store).
    Elsewhere { run: RunId, node: String },
}

/// What the delivery needs from its surroundings.
#[derive(Clone)]
pub struct Ctx {
    pub daemon: Arc<DaemonConfig>,
    pub store: Arc<Mutex<Store>>,
    pub cancel: CancellationToken,
    /// Lowered in tests to exercise the xlsx fallback.
    pub xlsx_row_limit: Option<u64>,
    /// The runs this process's shared scans seal (one for the process: the daemon's runs
    /// join their scan through it).
    pub sealing: Arc<Sealing>,
}

/// Events for a person watching (`deliver` prints them; the daemon logs them).
pub trait Observer: Send + Sync {
    fn stage(&self, _run: &str, _what: &str) {}
    fn rows(&self, _done: u64, _total: u64) {}
    fn bytes(&self, _done: u64, _total: u64) {}
    fn retry(&self, _run: &str, _attempt: u32, _wait: Duration, _error: &str) {}
}

/// Observes nothing.
pub struct Quiet;

impl Observer for Quiet {}

use crate::store::lock;

/// Drives the run of `sub` for `scheduled_at` to an end: delivered (one receipt), needs
/// attention, failed, or interrupted by shutdown. Safe to call again for the same run at
/// any time (after a crash, by an operator): it resumes where the store says it stopped.
pub async fn deliver(
    ctx: &Ctx,
    sub: &Subscription,
    scheduled_at: DateTime<Utc>,
    obs: &dyn Observer,
) -> Result<Outcome, DeliveryError> {
    let created = lock(&ctx.store).create_run(&NewRun {
        subscription: sub.id.clone(),
        scheduled_at,
    })?;
    let run = created.into_run();
    deliver_run(ctx, sub, run, obs).await
}

/// Continues an existing run (crash recovery, operator retry).
///
/// Every attempt is accounted the same way, whatever fails in it: checking the target,
/// generating and sealing, checking the sealed artifact, uploading, verifying. Each is an
/// attempt row with its reason, classed retryable or permanent by the error's type, under
/// the subscription's backoff, `max_attempts` and deadline; a permanent error leaves the run
/// `needs_attention`, exhausted retries `failed`.
///
/// Several nodes on one store: the run's lease is claimed first (a run another live node
/// holds ends in [`Outcome::Elsewhere`] at once), kept by a heartbeat while working, and
/// released at the end; a node that loses it stops without committing
/// ([`DeliveryError::LeaseLost`]).
pub async fn deliver_run(
    ctx: &Ctx,
    sub: &Subscription,
    run: Run,
    obs: &dyn Observer,
) -> Result<Outcome, DeliveryError> {
    let id = run.id.clone();
    // One process per run on this node: the lock is held until this function returns
    // (released by the kernel if the process dies). A run whose shared scan seals it now
    // shares the scan's lock of it, and its lease from here.
    let joined = ctx.sealing.join(&id);
    let _lock = match &joined {
        Some(j) => j.lock.clone(),
        None => Arc::new(lock_run(&ctx.daemon.spool_dir, &id)?),
    };
    let live = joined.map(|j| j.live);
    let held = match lease::take(ctx, sub, &id).await? {
        lease::Taken::Held(h) => h,
        lease::Taken::Elsewhere { node } => return Ok(Outcome::Elsewhere { run: id, node }),
        lease::Taken::Cancelled => return Ok(Outcome::Interrupted { run: id }),
        lease::Taken::Delivered => {
            if let Some(r) = lock(&ctx.store).receipt_for_run(&id)? {
                return Ok(Outcome::AlreadyDelivered(r));
            }
            return Err(DeliveryError::Task(format!(
                "run {id} is delivered but has no receipt"
            )));
        }
    };
    // Read again under the lease: another node may have moved the run since it was listed.
    let run = lock(&ctx.store).get_run(&id)?.unwrap_or(run);
    let node = held.node().to_string();
    let lease_ctx = Ctx {
        cancel: held.cancel.clone(),
        ..ctx.clone()
    };
    let result = deliver_held(&lease_ctx, sub, run, &node, live, obs).await;
    // The sealer's figures, if no attempt needed them (its upload followed the sealing).
    let _ = ctx.sealing.take_fresh(&id);
    let lost = held.end().await;
    let holder = || {
        lock(&ctx.store)
            .lease_of(&id)
            .ok()
            .flatten()
            .and_then(|l| l.node)
            .filter(|n| n != &node)
    };
    match result {
        Err(DeliveryError::Store(StoreError::LeaseLost { holder, .. })) => {
            Err(DeliveryError::LeaseLost {
                run: id,
                node,
                holder,
            })
        }
        // Cancelled by the keeper, not by a shutdown.
        Ok(Outcome::Interrupted { .. }) | Err(_) if lost && !ctx.cancel.is_cancelled() => {
            let holder = holder();
            Err(DeliveryError::LeaseLost {
                run: id,
                holder,
                node,
            })
        }
        r => r,
    }
}

/// [`deliver_run`] once this node holds the run's lease.
async fn deliver_held(
    ctx: &Ctx,
    sub: &Subscription,
    mut run: Run,
    node: &str,
    mut live: Option<Arc<live::Live>>,
    obs: &dyn Observer,
) -> Result<Outcome, DeliveryError> {
    let id = run.id.clone();
    if run.state == RunState::Delivered {
        if let Some(r) = lock(&ctx.store).receipt_for_run(&id)? {
            return Ok(Outcome::AlreadyDelivered(r));
        }
    }
    if matches!(run.state, RunState::NeedsAttention | RunState::Failed) {
        // An operator asked to go again: back to where the artifact allows.
        let to = if run.artifact.is_some() {
            RunState::Sealed
        } else {
            RunState::Pending
        };
        run = lock(&ctx.store).set_state(&id, to, Some("retried by operator"))?;
        // An e-mail whose sending was not confirmed: the operator checked with the
        // recipient and asks for it again (README "E-mail delivery").
        if lock(&ctx.store)
            .email_send(&id)?
            .is_some_and(|s| s.state == "sending")
        {
            lock(&ctx.store).email_not_sent(&id)?;
        }
    }
    // A run found mid-upload may have finished on the server before the process died.
    let resumed = run.state == RunState::Uploading;
    info!(subscription = %sub.id, run = %id, state = %run.state, "Run started.");
    let columns: Vec<String> = sub.extract.columns.iter().map(|f| f.name.clone()).collect();
    let first_start = Instant::now();
    // The run resolved once, on its first attempt, and kept for the retries.
    let mut plan: Option<RunPlan> = None;
    let started_at = Utc::now();
    loop {
        let n = lock(&ctx.store).begin_attempt(&id)?;
        let result = attempt_once(
            ctx, sub, &mut plan, &mut run, n, resumed, node, &mut live, &columns, obs,
        )
        .await;
        match result {
            Ok(Attempted::Cancelled) => {
                lock(&ctx.store).finish_attempt(
                    &id,
                    n,
                    AttemptOutcome::Retryable,
                    Some(Stage::Shutdown),
                    Some("stopped by shutdown"),
                )?;
                return Ok(Outcome::Interrupted { run: id });
            }
            Ok(Attempted::Delivered { d, files, artifact }) => {
                lock(&ctx.store).finish_attempt(&id, n, AttemptOutcome::Ok, None, None)?;
                let receipt = record_receipt(ctx, sub, &id, &artifact, &d, &files, started_at)?;
                info!(subscription = %sub.id, run = %id, receipt = receipt.id, remote = %receipt.remote_path,
                      sha256 = %artifact.ciphertext_sha256, attempts = n, "Delivery succeeded.");
                return Ok(Outcome::Delivered(receipt));
            }
            Err(e) => {
                // The store itself failing is outside the protocol: the supervisor resumes.
                if let DeliveryError::Store(_) = e {
                    let _ = lock(&ctx.store).finish_attempt(
                        &id,
                        n,
                        e.class().into(),
                        Some(e.label()),
                        Some(&chain(&e)),
                    );
                    return Err(e);
                }
                let class = e.class();
                let msg = chain(&e);
                lock(&ctx.store).finish_attempt(
                    &id,
                    n,
                    class.into(),
                    Some(e.label()),
                    Some(&msg),
                )?;
                match sub
                    .retry
                    .next(class, n, first_start.elapsed(), rand::random::<f64>())
                {
                    Next::RetryAfter(wait) => {
                        warn!(subscription = %sub.id, run = %id, attempt = n, stage = %e.label(), error = %msg, wait_secs = wait.as_secs_f64(), "Attempt failed; will retry.");
                        obs.retry(&id, n, wait, &msg);
                        tokio::select! {
                            _ = ctx.cancel.cancelled() => return Ok(Outcome::Interrupted { run: id }),
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                    Next::GiveUp(GiveUp::Permanent) => {
                        let reason = format!("attempt {n}: {msg}");
                        lock(&ctx.store).set_state(&id, RunState::NeedsAttention, Some(&reason))?;
                        warn!(subscription = %sub.id, run = %id, stage = %e.label(), error = %msg, "Run needs an operator.");
                        return Ok(Outcome::NeedsAttention { run: id, reason });
                    }
                    Next::GiveUp(why) => {
                        let reason = format!(
                            "gave up after attempt {n} ({}): {msg}",
                            if why == GiveUp::Attempts {
                                "max attempts"
                            } else {
                                "deadline"
                            }
                        );
                        lock(&ctx.store).set_state(&id, RunState::Failed, Some(&reason))?;
                        warn!(subscription = %sub.id, run = %id, stage = %e.label(), error = %msg, "Run failed; retries exhausted.");
                        return Ok(Outcome::Failed { run: id, reason });
                    }
                }
            }
        }
    }
}

/// What a transport reports of a delivered run, for its receipt.
// One value per attempt, moved once: the size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub(super) enum Sent {
    Sftp(sftp::Delivered),
    Email(email::EmailDelivered),
}

/// What one attempt came to (errors are the `Err` side).
// One value per attempt, moved once: the size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
enum Attempted {
    Delivered {
        d: Sent,
        files: Vec<DeliveredFile>,
        artifact: store::Artifact,
    },
    /// Shutdown during the upload.
    Cancelled,
}

/// One attempt: the sealed artifact checked against its recorded size and SHA-256 (a
/// changed one is discarded, never uploaded; one this process sealed moments ago is not
/// read again on the run's first attempt, [`crate::core::fresh`]), else the target checked
/// and the artifact generated; then the upload. A run whose shared scan seals it now
/// (`live`) uploads while the scan seals on its first attempt, and no attempt goes on
/// before the scan has ended for it.
#[allow(clippy::too_many_arguments)]
async fn attempt_once(
    ctx: &Ctx,
    sub: &Subscription,
    plan: &mut Option<RunPlan>,
    run: &mut Run,
    n: u32,
    resumed: bool,
    node: &str,
    live: &mut Option<Arc<live::Live>>,
    columns: &[String],
    obs: &dyn Observer,
) -> Result<Attempted, DeliveryError> {
    let id = run.id.clone();
    let plan: &RunPlan = match plan {
        Some(p) => p,
        None => {
            let last_to = last_delivered_to(&lock(&ctx.store), &sub.id)?;
            plan.insert(RunPlan::new(sub, run.scheduled_at, last_to)?)
        }
    };
    let t = match &plan.transport {
        Transport::Email(e) => return email::attempt(ctx, sub, plan, e, run, n, obs).await,
        Transport::Sftp(t) => t,
    };
    let target = target_of(&plan.subscription, t)?;
    if let Some(l) = live.take() {
        // The scan checked the target before it started.
        if let Some(source) = l.take_source().filter(|_| stream::streams(plan)) {
            return stream::upload_while_shared(
                ctx, sub, plan, run, n, &target, columns, obs, &l, source,
            )
            .await;
        }
        obs.stage(&id, "waiting for the shared scan");
        match l.ended(&ctx.cancel).await {
            None => return Ok(Attempted::Cancelled),
            Some(Err(e)) => return Err(e),
            Some(Ok(())) => {
                if let Some(r) = lock(&ctx.store).get_run(&id)? {
                    *run = r;
                }
            }
        }
    }
    let look_first = resumed || n > 1;
    if let Some(found) = take_over_artifact(ctx, sub, run, node, &target, columns).await? {
        return Ok(found);
    }
    if let Some(a) = run.artifact.clone() {
        let extras = lock(&ctx.store).run_files(&id)?;
        let fresh = ctx.sealing.take_fresh(&id);
        let read = crate::core::fresh::spool_read(
            fresh.as_ref(),
            a.ciphertext_bytes,
            &a.ciphertext_sha256,
            n == 1 && !resumed && extras.is_empty(),
            fresh
                .as_ref()
                .and_then(|_| spool::stamp(Path::new(&a.path))),
        );
        let checked = match read {
            SpoolRead::Trusted => {
                debug!(subscription = %sub.id, run = %id, path = %a.path,
                       "Sealed by this process moments ago; not read again before its upload.");
                SpoolCheck::Intact
            }
            SpoolRead::Full => {
                let c = check_spool(&a, &extras).await?;
                debug!(subscription = %sub.id, run = %id, path = %a.path, attempt = n,
                       "Sealed artifact read again and checked against its recorded size and SHA-256.");
                c
            }
        };
        match checked {
            SpoolCheck::Intact => {}
            SpoolCheck::Missing => {
                // Cannot be regenerated byte for byte (age output differs every time): if
                // the server has it, record the receipt; otherwise an operator decides.
                if let Some((d, files)) =
                    find_on_server(&target, sub, run, &a, &extras, columns).await?
                {
                    return Ok(Attempted::Delivered {
                        d: Sent::Sftp(d),
                        files,
                        artifact: a,
                    });
                }
                return Err(DeliveryError::ArtifactLost {
                    path: a.path.clone(),
                    sub: sub.id.clone(),
                });
            }
            SpoolCheck::Changed(detail) => {
                // An earlier attempt may have delivered the sealed file before it changed.
                if look_first {
                    if let Some((d, files)) =
                        find_on_server(&target, sub, run, &a, &extras, columns).await?
                    {
                        return Ok(Attempted::Delivered {
                            d: Sent::Sftp(d),
                            files,
                            artifact: a,
                        });
                    }
                }
                let e = DeliveryError::ArtifactChanged {
                    path: a.path.clone(),
                    detail,
                };
                warn!(subscription = %sub.id, run = %id, error = %Chain(&e), "Sealed artifact changed; it is discarded and regenerated.");
                *run = lock(&ctx.store).discard_artifact(&id, &format!("attempt {n}: {e}"))?;
                for p in std::iter::once(&a.path).chain(extras.iter().map(|f| &f.path)) {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        }
    }
    let mut look_first = look_first;
    if run.artifact.is_none() {
        // A permanent target error (host key, login, folder) must not cost an extract.
        obs.stage(&id, "checking the target");
        sftp::check_target(&target).await?;
        // One file: sealed and uploaded at once (`stream`), the rest as below on retries.
        if stream::streams(plan) {
            return stream::generate_and_upload(ctx, sub, plan, run, n, &target, columns, obs)
                .await;
        }
        generate(ctx, plan, run, obs, None).await?;
        // A ciphertext made just now cannot be on the server yet.
        look_first = false;
    }
    let artifact = run
        .artifact
        .clone()
        .ok_or_else(|| DeliveryError::Task("the sealed artifact was not recorded".into()))?;
    let extras = lock(&ctx.store).run_files(&id)?;
    if run.state != RunState::Uploading {
        *run = lock(&ctx.store).set_state(&id, RunState::Uploading, None)?;
    }
    // The manifest is built per attempt, once the code tables' final names are known.
    let upload = stream::upload_of(
        plan,
        run,
        PathBuf::from(&artifact.path),
        artifact.file_name.clone(),
        artifact.ciphertext_sha256.clone(),
    );
    obs.stage(&id, &format!("uploading (attempt {n})"));
    let total = artifact.ciphertext_bytes;
    let run_now = run.clone();
    tokio::select! {
        _ = ctx.cancel.cancelled() => Ok(Attempted::Cancelled),
        r = attempt_all(&target, &extras, &upload, look_first, total, obs, |files| {
            plan.delivery.manifest.then(|| manifest(sub, &run_now, &artifact, columns, files))
        }) => {
            let (d, files) = r?;
            Ok(Attempted::Delivered { d: Sent::Sftp(d), files, artifact: artifact.clone() })
        }
    }
}

/// A run taken over from another node whose spool holds its sealed artifact (`sealed_by`):
/// that file is not this node's to upload (the other node may be gone, or still writing it
/// out). If the server has it already, the run is delivered; else the artifact is discarded
/// and generated again here (age output differs every time, so the server is checked
/// first: never two files of one run).
async fn take_over_artifact(
    ctx: &Ctx,
    sub: &Subscription,
    run: &mut Run,
    node: &str,
    target: &sftp::Target,
    columns: &[String],
) -> Result<Option<Attempted>, DeliveryError> {
    let Some(a) = run.artifact.clone() else {
        return Ok(None);
    };
    let sealed_by = lock(&ctx.store)
        .lease_of(&run.id)?
        .and_then(|l| l.sealed_by);
    // Not recorded (sealed before schema 8): the artifact is this node's, as before.
    let Some(other) = sealed_by.filter(|s| s != node) else {
        return Ok(None);
    };
    let extras = lock(&ctx.store).run_files(&run.id)?;
    if let Some((d, files)) = find_on_server(target, sub, run, &a, &extras, columns).await? {
        info!(subscription = %sub.id, run = %run.id, sealed_by = %other, "Taken over: the other node's file is on the server; recording the receipt.");
        return Ok(Some(Attempted::Delivered {
            d: Sent::Sftp(d),
            files,
            artifact: a,
        }));
    }
    info!(subscription = %sub.id, run = %run.id, sealed_by = %other, "Taken over: the artifact is in another node's spool and not on the server; generating it again here.");
    *run = lock(&ctx.store).discard_artifact(
        &run.id,
        &format!("taken over by node {node} from node {other}; regenerated here"),
    )?;
    Ok(None)
}
