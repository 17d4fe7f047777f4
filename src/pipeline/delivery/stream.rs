//! Upload while sealing (docs/design.md §4, step 2): a run's first attempt generates and
//! seals the main file into the spool while the upload sends the spool file to the server's
//! temp file as it grows, so the attempt costs about the longer of the two, not their sum.
//! The spool copy stays the one for retries, and the commit protocol is unchanged: the temp
//! file is checked against the final sealed size and SHA-256, the artifact is recorded
//! (state `sealed`) before anything is committed, then the no-clobber commit, the sidecars,
//! and the receipt last. Sealing that fails removes the temp file and is the attempt's
//! error; an upload that fails lets the sealing finish and the next attempt resumes from
//! the complete spool copy. Only runs with one file (dsv or csv, no code tables beside it)
//! go this way; the others seal first and upload after. The runs of a shared scan go the
//! same way when their delivery starts while the scan seals ([`upload_while_shared`]): the
//! scan's sealer for the run writes the file the upload follows.

use super::live::Live;
use super::record::{record_sealed, seal_in_spool};
use super::{lock, manifest, Attempted, Ctx, DeliveryError, Observer, Sent};
use crate::core::config::{Format, IfExists, Subscription, VerifyLevel};
use crate::core::errors::Chain;
use crate::core::plan::RunPlan;
use crate::pipeline::artifact::Follow;
use crate::sftp::{self, Growth};
use crate::store::{RunFilter, RunState};
use std::path::PathBuf;
use std::sync::Arc;
use tracing::{debug, info};

/// Whether `plan`'s first attempt uploads while it seals: one file read from the register
/// in a format whose name and bytes do not depend on the row count (xlsx may fall back to
/// dsv, and builds its zip before any byte of it exists; code tables go up before the main
/// file).
pub(super) fn streams(plan: &RunPlan) -> bool {
    plan.reads_register()
        && matches!(plan.extract.format, Format::Dsv | Format::Csv)
        && plan.planned_files().extras.is_empty()
}

/// The upload as [`super::attempt_once`] makes it, for `local` under `final_name`; the
/// SHA-256 and manifest are filled in once the file is sealed.
pub(super) fn upload_of(
    plan: &RunPlan,
    run: &crate::store::Run,
    local: PathBuf,
    final_name: String,
    sha256_hex: String,
) -> sftp::Upload {
    sftp::Upload {
        local,
        final_name,
        run_id: run.id.clone(),
        if_exists: match plan.delivery.if_exists {
            IfExists::Fail => sftp::IfExists::Fail,
            IfExists::Overwrite => sftp::IfExists::Overwrite,
            IfExists::Version => sftp::IfExists::Version,
        },
        verify: match plan.delivery.verify {
            VerifyLevel::Size => sftp::Verify::Size,
            VerifyLevel::ReadBack => sftp::Verify::ReadBack,
        },
        sha256_hex,
        manifest: None,
        done_marker: plan.delivery.done_marker,
    }
}

/// The size the last delivered artifact of the subscription had (the upload's strategy
/// is chosen by size before the size is known); unknown: large.
fn size_hint(ctx: &Ctx, sub: &Subscription) -> u64 {
    let runs = lock(&ctx.store).list_runs(&RunFilter {
        subscription: Some(sub.id.clone()),
        states: vec![RunState::Delivered],
        ..Default::default()
    });
    runs.ok()
        .and_then(|r| {
            r.iter()
                .max_by_key(|r| r.scheduled_at)
                .and_then(|r| r.artifact.as_ref().map(|a| a.ciphertext_bytes))
        })
        .unwrap_or(u64::MAX)
}

/// One attempt that generates, seals and uploads at once (the target was checked). See
/// the module documentation for what happens on each failure.
#[allow(clippy::too_many_arguments)]
pub(super) async fn generate_and_upload(
    ctx: &Ctx,
    sub: &Subscription,
    plan: &RunPlan,
    run: &mut crate::store::Run,
    n: u32,
    target: &sftp::Target,
    columns: &[String],
    obs: &dyn Observer,
) -> Result<Attempted, DeliveryError> {
    let id = run.id.clone();
    obs.stage(&id, &format!("generating and uploading (attempt {n})"));
    let (file_tx, file_rx) = tokio::sync::oneshot::channel();
    let (grow_tx, grow_rx) = tokio::sync::watch::channel(Growth::Written(0));
    let grow_tx = Arc::new(grow_tx);
    let hook = grow_tx.clone();
    let follow = Follow {
        opened: Box::new(move |f| {
            let _ = file_tx.send(f);
        }),
        written: Box::new(move |bytes| {
            hook.send_replace(Growth::Written(bytes));
        }),
    };
    let source = sftp::Growing {
        file: file_rx,
        growth: grow_rx,
    };
    let mut sealed_run = run.clone();
    let sealing = async {
        let r = seal_in_spool(ctx, plan, &id, obs, None, Some(follow)).await;
        grow_tx.send_replace(match &r {
            Ok(a) => Growth::Complete {
                bytes: a.sealed.ciphertext_bytes,
                sha256: a.sealed.ciphertext_sha256.clone(),
            },
            Err(e) => Growth::Failed(Chain(e).to_string()),
        });
        let art = r?;
        // Recorded as soon as it is sealed, while the rest goes up: from here a crash finds
        // the run `uploading` with this artifact, as on the serial path, and resuming looks
        // for the file on the server, then uploads the spool copy.
        record_sealed(ctx, plan, &mut sealed_run, &art)?;
        Ok::<_, DeliveryError>(lock(&ctx.store).set_state(&id, RunState::Uploading, None)?)
    };
    upload_beside(ctx, sub, plan, run, target, columns, source, sealing).await
}

/// The first attempt of a run whose shared scan seals its artifact now (it joined the scan,
/// [`super::live`]): the same upload as [`generate_and_upload`]'s, of the spool file the
/// scan's sealer for this run writes, committed once the scan has ended for the run and
/// recorded its artifact. The sealer never waits for this upload; an upload that fails
/// waits for the scan's end (the next attempt uploads the complete spool copy); a sealing
/// that fails is this attempt's error (the next attempt seals alone).
#[allow(clippy::too_many_arguments)]
pub(super) async fn upload_while_shared(
    ctx: &Ctx,
    sub: &Subscription,
    plan: &RunPlan,
    run: &mut crate::store::Run,
    n: u32,
    target: &sftp::Target,
    columns: &[String],
    obs: &dyn Observer,
    live: &Live,
    source: sftp::Growing,
) -> Result<Attempted, DeliveryError> {
    let id = run.id.clone();
    obs.stage(
        &id,
        &format!("uploading while the shared scan seals (attempt {n})"),
    );
    info!(subscription = %sub.id, run = %id, attempt = n, "Uploading while the shared scan seals.");
    crate::telemetry::shared_scan_streamed();
    let sealing = async {
        match live.ended(&ctx.cancel).await {
            None => Err(DeliveryError::Task("stopped by shutdown".into())),
            Some(Err(e)) => Err(e),
            Some(Ok(())) => {
                let store = lock(&ctx.store);
                let r = store
                    .get_run(&id)?
                    .ok_or_else(|| DeliveryError::Task(format!("run {id} is not in the store")))?;
                Ok(match r.state {
                    RunState::Uploading => r,
                    _ => store.set_state(&id, RunState::Uploading, None)?,
                })
            }
        }
    };
    upload_beside(ctx, sub, plan, run, target, columns, source, sealing).await
}

/// Uploads `source` (the run's spool file as it is sealed) to its temp file while `sealing`
/// ends (the run with its sealed artifact recorded, state `uploading`), then commits: the
/// temp file checked against the sealed size and SHA-256, the no-clobber commit, the
/// sidecars. `run` is the sealed one from there, whatever the upload came to.
#[allow(clippy::too_many_arguments)]
async fn upload_beside(
    ctx: &Ctx,
    sub: &Subscription,
    plan: &RunPlan,
    run: &mut crate::store::Run,
    target: &sftp::Target,
    columns: &[String],
    source: sftp::Growing,
    sealing: impl std::future::Future<Output = Result<crate::store::Run, DeliveryError>>,
) -> Result<Attempted, DeliveryError> {
    let id = run.id.clone();
    let local = ctx.daemon.spool_dir.join(format!("{id}.artifact"));
    let up = upload_of(
        plan,
        run,
        local,
        plan.files(plan.extract.format).main.clone(),
        String::new(),
    );
    let hint = size_hint(ctx, sub);
    let mut sealed_at = None;
    let sealing = async {
        let r = sealing.await;
        sealed_at = Some(std::time::Instant::now());
        r
    };
    let uploading = async {
        tokio::select! {
            _ = ctx.cancel.cancelled() => None,
            r = sftp::stage_growing(target, &up, source, hint, &|_| {}) => Some(r),
        }
    };
    let (sealed, staged) = tokio::join!(sealing, uploading);
    let sealed = match sealed {
        Ok(r) => r,
        Err(e) => {
            // The upload saw a sealing failure and removed its temp file; a staged one (the
            // sealing or its recording failed after the last byte) is removed here.
            if let Some(Ok(s)) = staged {
                s.abandon().await;
            }
            if ctx.cancel.is_cancelled() {
                return Ok(Attempted::Cancelled);
            }
            return Err(e);
        }
    };
    *run = sealed;
    let staged = match staged {
        None => return Ok(Attempted::Cancelled),
        // The spool copy is complete: the next attempt uploads it.
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(s)) => s,
    };
    debug!(subscription = %sub.id, run = %id, bytes = staged.bytes(), "Uploaded while sealing; committing.");
    let artifact = run
        .artifact
        .clone()
        .ok_or_else(|| DeliveryError::Task("the sealed artifact was not recorded".into()))?;
    let up = sftp::Upload {
        sha256_hex: artifact.ciphertext_sha256.clone(),
        manifest: plan
            .delivery
            .manifest
            .then(|| manifest(sub, run, &artifact, columns, &[])),
        ..up
    };
    tokio::select! {
        _ = ctx.cancel.cancelled() => Ok(Attempted::Cancelled),
        r = staged.commit(&up) => {
            let d = r?;
            // What the upload added after the sealing ended (the rest of it overlapped).
            let after = sealed_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
            info!(subscription = %sub.id, run = %id, remote = %d.remote_path, after_sealing_secs = after,
                  "Uploaded while sealing.");
            Ok(Attempted::Delivered { d: Sent::Sftp(d), files: Vec::new(), artifact })
        }
    }
}
