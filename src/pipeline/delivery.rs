//! One run, from its record in the store to its receipt (DESIGN §6): record the run
//! before any work, generate and seal once, upload with retries that reuse the artifact,
//! find an earlier attempt's finished upload after a crash, and commit exactly one receipt.

use crate::core::config::{
    AuthSpec, CommitMode, DaemonConfig, IfExists, Subscription, VerifyLevel,
};
use crate::core::retry::{Classify, ErrorClass, GiveUp, Next};
use crate::pipeline::artifact::{self, JobError};
use crate::sftp::{self, SftpError};
use crate::store::{
    self, AttemptOutcome, DeliveredFile, NewReceipt, NewRun, Receipt, Run, RunFile, RunFilter,
    RunState, Store, StoreError,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
    ArtifactLost { path: String, sub: String },
    /// The spool cannot be read or written.
    #[error("{0}")]
    Spool(String),
}

impl Classify for DeliveryError {
    fn class(&self) -> ErrorClass {
        match self {
            DeliveryError::Store(e) => e.class(),
            DeliveryError::Job(e) => e.class(),
            DeliveryError::Sftp(e) => e.class(),
            DeliveryError::Setup(_) | DeliveryError::ArtifactLost { .. } => ErrorClass::Permanent,
            DeliveryError::Task(_)
            | DeliveryError::Busy { .. }
            | DeliveryError::ArtifactChanged { .. }
            | DeliveryError::Spool(_) => ErrorClass::Retryable,
        }
    }
}

impl DeliveryError {
    /// A short label for the attempts table and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DeliveryError::Store(_) => "store",
            DeliveryError::Job(e) => e.label(),
            DeliveryError::Sftp(e) => sftp_label(e),
            DeliveryError::Setup(_) => "config",
            DeliveryError::Task(_) => "internal",
            DeliveryError::Busy { .. } => "busy",
            DeliveryError::ArtifactChanged { .. }
            | DeliveryError::ArtifactLost { .. }
            | DeliveryError::Spool(_) => "spool",
        }
    }
}

fn sftp_label(e: &SftpError) -> &'static str {
    match e {
        SftpError::Connect { .. } | SftpError::ConnectTimeout { .. } => "connect",
        SftpError::HostKeyMismatch { .. } | SftpError::HostKeyConfig(_) => "host_key",
        SftpError::AuthRefused { .. }
        | SftpError::SecretFile { .. }
        | SftpError::BadKeyFile { .. } => "auth",
        SftpError::NoSftpSubsystem { .. }
        | SftpError::Transport { .. }
        | SftpError::Negotiation { .. } => "transport",
        SftpError::Remote { .. } => "remote",
        SftpError::RemoteDirMissing { .. } | SftpError::RemoteNotDir { .. } => "remote_dir",
        SftpError::FinalExists { .. }
        | SftpError::NoFreeVersion { .. }
        | SftpError::InvalidName { .. } => "final_name",
        SftpError::NoSafeCommit { .. } | SftpError::HardlinkBroken { .. } => "commit",
        SftpError::SizeMismatch { .. } | SftpError::ChecksumMismatch { .. } => "verify",
        SftpError::Local { .. } | SftpError::LocalChanged { .. } => "spool",
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
    NeedsAttention { run: String, reason: String },
    /// Retries exhausted (attempts or deadline).
    Failed { run: String, reason: String },
    /// Shutdown while waiting or working; the run resumes on the next start.
    Interrupted { run: String },
}

/// What the delivery needs from its surroundings.
#[derive(Clone)]
pub struct Ctx {
    pub daemon: Arc<DaemonConfig>,
    pub store: Arc<Mutex<Store>>,
    pub cancel: CancellationToken,
    /// Lowered in tests to exercise the xlsx fallback.
    pub xlsx_row_limit: Option<u64>,
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

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// The SFTP target of a subscription, with secrets resolved to files.
pub fn target_of(sub: &Subscription) -> Result<sftp::Target, DeliveryError> {
    let cred = |name: &str| -> Result<PathBuf, DeliveryError> {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
            DeliveryError::Setup(format!(
                "subscription {} uses systemd credential `{name}`, but $CREDENTIALS_DIRECTORY is not set; run under systemd with LoadCredential={name}:PATH, or use password_file/key_file",
                sub.id
            ))
        })?;
        Ok(PathBuf::from(dir).join(name))
    };
    let t = &sub.target;
    let auth = match &t.auth {
        AuthSpec::KeyFile {
            path,
            passphrase_file,
        } => sftp::Auth::KeyFile {
            path: path.clone(),
            passphrase_file: passphrase_file.clone(),
        },
        AuthSpec::PasswordFile(p) => sftp::Auth::PasswordFile(p.clone()),
        AuthSpec::PasswordCredential(n) => sftp::Auth::PasswordFile(cred(n)?),
        AuthSpec::KeyCredential {
            name,
            passphrase_file,
        } => sftp::Auth::KeyFile {
            path: cred(name)?,
            passphrase_file: passphrase_file.clone(),
        },
    };
    Ok(sftp::Target {
        host: t.host.clone(),
        port: t.port,
        username: t.username.clone(),
        host_keys: t.host_keys.clone(),
        known_hosts: t.known_hosts.clone(),
        auth,
        remote_dir: t.remote_dir.clone(),
        create_dirs: t.create_dirs,
        connect_timeout: t.connect_timeout,
        io_timeout: t.io_timeout,
        overrides: sftp::Overrides {
            channels: t.tuning.channels,
            max_write: t.tuning.max_write,
            in_flight: t.tuning.in_flight,
            commit: match t.tuning.commit {
                CommitMode::Auto => sftp::CommitChoice::Auto,
                CommitMode::RaceFree => sftp::CommitChoice::RaceFree,
                CommitMode::Hardlink => sftp::CommitChoice::Hardlink,
                CommitMode::Rename => sftp::CommitChoice::Rename,
                CommitMode::CheckedRename => sftp::CommitChoice::CheckedRename,
            },
            fsync: t.tuning.fsync,
            posix_rename: t.tuning.posix_rename,
        },
    })
}

/// The end of the period of the subscription's last delivered run (for
/// `since_last_delivery`).
fn last_delivered_to(store: &Store, sub: &str) -> Result<Option<NaiveDate>, StoreError> {
    let runs = store.list_runs(&RunFilter {
        subscription: Some(sub.into()),
        states: vec![RunState::Delivered],
        ..Default::default()
    })?;
    Ok(runs
        .iter()
        .filter_map(|r| {
            r.artifact
                .as_ref()?
                .period_to
                .as_deref()?
                .parse::<NaiveDate>()
                .ok()
        })
        .max())
}

/// The manifest uploaded beside the file.
fn manifest(
    sub: &Subscription,
    run: &Run,
    a: &store::Artifact,
    columns: &[String],
    files: &[DeliveredFile],
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "file": a.file_name,
        "bytes": a.ciphertext_bytes,
        "rows": a.rows,
        "plaintext_sha256": a.plaintext_sha256,
        "ciphertext_sha256": a.ciphertext_sha256,
        "plaintext_bytes": a.plaintext_bytes,
        "report": sub.extract.report.as_str(),
        "format": a.format,
        "encoding": sub.extract.encoding.as_str(),
        "line_ending": sub.extract.line_ending.as_str(),
        "encrypted": sub.encryption.encrypt,
        "fallback_note": a.fallback_note,
        "period": { "from": a.period_from, "to": a.period_to },
        "columns": columns,
        "subscription": sub.id,
        "run": run.id,
        "scheduled_at": store::model::fmt_ts(run.scheduled_at),
        "generated_at": store::model::fmt_ts(run.updated_at),
        "case_number": sub.case_number,
    });
    // Code tables delivered in the same run (uploaded before this file), and for report
    // `code_tables` which table the main file holds.
    if !files.is_empty() {
        m["files"] = serde_json::to_value(files).expect("json");
    }
    if sub.extract.report == crate::core::catalog::ReportKind::CodeTables {
        m["code_table"] = sub.extract.code_tables.first().map(|t| t.as_str()).into();
        m["columns"] = serde_json::json!(["kode", "navn"]);
    }
    let mut v = serde_json::to_vec_pretty(&m).expect("json");
    v.push(b'\n');
    v
}

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
pub async fn deliver_run(
    ctx: &Ctx,
    sub: &Subscription,
    mut run: Run,
    obs: &dyn Observer,
) -> Result<Outcome, DeliveryError> {
    let id = run.id.clone();
    // One process per run: the lock is held until this function returns (released by the
    // kernel if the process dies).
    let _lock = lock_run(&ctx.daemon.spool_dir, &id)?;
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
    }
    // A run found mid-upload may have finished on the server before the process died.
    let resumed = run.state == RunState::Uploading;
    info!(subscription = %sub.id, run = %id, state = %run.state, "Run started.");
    let columns: Vec<String> = sub.extract.columns.iter().map(|f| f.name.clone()).collect();
    let first_start = Instant::now();
    let started_at = Utc::now();
    loop {
        let n = lock(&ctx.store).begin_attempt(&id)?;
        let result = attempt_once(ctx, sub, &mut run, n, resumed, &columns, obs).await;
        match result {
            Ok(Attempted::Cancelled) => {
                lock(&ctx.store).finish_attempt(
                    &id,
                    n,
                    AttemptOutcome::Retryable,
                    Some("shutdown"),
                    Some("stopped by shutdown"),
                )?;
                return Ok(Outcome::Interrupted { run: id });
            }
            Ok(Attempted::Delivered { d, files, artifact }) => {
                lock(&ctx.store).finish_attempt(&id, n, AttemptOutcome::Ok, None, None)?;
                let receipt = record_receipt(ctx, sub, &id, &artifact, &d, &files, started_at)?;
                info!(subscription = %sub.id, run = %id, receipt = receipt.id, remote = %d.remote_path,
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
                        Some(&e.to_string()),
                    );
                    return Err(e);
                }
                let class = e.class();
                let msg = e.to_string();
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
                        warn!(subscription = %sub.id, run = %id, attempt = n, stage = e.label(), error = %msg, wait_secs = wait.as_secs_f64(), "Attempt failed; will retry.");
                        obs.retry(&id, n, wait, &msg);
                        tokio::select! {
                            _ = ctx.cancel.cancelled() => return Ok(Outcome::Interrupted { run: id }),
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                    Next::GiveUp(GiveUp::Permanent) => {
                        let reason = format!("attempt {n}: {msg}");
                        lock(&ctx.store).set_state(&id, RunState::NeedsAttention, Some(&reason))?;
                        warn!(subscription = %sub.id, run = %id, stage = e.label(), error = %msg, "Run needs an operator.");
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
                        warn!(subscription = %sub.id, run = %id, stage = e.label(), error = %msg, "Run failed; retries exhausted.");
                        return Ok(Outcome::Failed { run: id, reason });
                    }
                }
            }
        }
    }
}

/// What one attempt came to (errors are the `Err` side).
// One value per attempt, moved once: the size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
enum Attempted {
    Delivered {
        d: sftp::Delivered,
        files: Vec<DeliveredFile>,
        artifact: store::Artifact,
    },
    /// Shutdown during the upload.
    Cancelled,
}

/// One attempt: the sealed artifact checked against its recorded size and SHA-256 (a
/// changed one is discarded, never uploaded), else the target checked and the artifact
/// generated; then the upload.
async fn attempt_once(
    ctx: &Ctx,
    sub: &Subscription,
    run: &mut Run,
    n: u32,
    resumed: bool,
    columns: &[String],
    obs: &dyn Observer,
) -> Result<Attempted, DeliveryError> {
    let id = run.id.clone();
    let target = target_of(sub)?;
    let look_first = resumed || n > 1;
    if let Some(a) = run.artifact.clone() {
        let extras = lock(&ctx.store).run_files(&id)?;
        match check_spool(&a, &extras).await? {
            SpoolCheck::Intact => {}
            SpoolCheck::Missing => {
                // Cannot be regenerated byte for byte (age output differs every time): if
                // the server has it, record the receipt; otherwise an operator decides.
                if let Some((d, files)) =
                    find_on_server(&target, sub, run, &a, &extras, columns).await?
                {
                    return Ok(Attempted::Delivered {
                        d,
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
                            d,
                            files,
                            artifact: a,
                        });
                    }
                }
                let e = DeliveryError::ArtifactChanged {
                    path: a.path.clone(),
                    detail,
                };
                warn!(subscription = %sub.id, run = %id, error = %e, "Sealed artifact changed; it is discarded and regenerated.");
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
        generate(ctx, sub, run, obs).await?;
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
    let upload = sftp::Upload {
        local: PathBuf::from(&artifact.path),
        final_name: artifact.file_name.clone(),
        run_id: id.clone(),
        if_exists: match sub.delivery.if_exists {
            IfExists::Fail => sftp::IfExists::Fail,
            IfExists::Overwrite => sftp::IfExists::Overwrite,
            IfExists::Version => sftp::IfExists::Version,
        },
        verify: match sub.delivery.verify {
            VerifyLevel::Size => sftp::Verify::Size,
            VerifyLevel::ReadBack => sftp::Verify::ReadBack,
        },
        sha256_hex: artifact.ciphertext_sha256.clone(),
        // Built per attempt, once the code tables' final names are known.
        manifest: None,
        done_marker: sub.delivery.done_marker,
    };
    obs.stage(&id, &format!("uploading (attempt {n})"));
    let total = artifact.ciphertext_bytes;
    let run_now = run.clone();
    tokio::select! {
        _ = ctx.cancel.cancelled() => Ok(Attempted::Cancelled),
        r = attempt_all(&target, &extras, &upload, look_first, total, obs, |files| {
            sub.delivery.manifest.then(|| manifest(sub, &run_now, &artifact, columns, files))
        }) => {
            let (d, files) = r?;
            Ok(Attempted::Delivered { d, files, artifact: artifact.clone() })
        }
    }
}

/// Generates and seals the run's artifact into the spool and records it (state `sealed`).
async fn generate(
    ctx: &Ctx,
    sub: &Subscription,
    run: &mut Run,
    obs: &dyn Observer,
) -> Result<(), DeliveryError> {
    let id = run.id.clone();
    obs.stage(&id, "generating");
    let last_to = last_delivered_to(&lock(&ctx.store), &sub.id)?;
    let (register, spool) = (ctx.daemon.register.clone(), ctx.daemon.spool_dir.clone());
    let (sub2, name, limit) = (sub.clone(), format!("{id}.artifact"), ctx.xlsx_row_limit);
    let scheduled_at = run.scheduled_at;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let mut task = tokio::task::spawn_blocking(move || {
        let shop = artifact::Workshop {
            register: &register,
            spool: &spool,
            xlsx_row_limit: limit,
        };
        artifact::generate_and_seal(shop, &name, &sub2, scheduled_at, last_to, &mut |d, t| {
            let _ = tx.send((d, t));
        })
    });
    let art = loop {
        tokio::select! {
            Some((d, t)) = rx.recv() => obs.rows(d, t),
            res = &mut task => break res,
        }
    };
    let art = art.map_err(|e| DeliveryError::Task(format!("generation: {e}")))??;
    let (from, to) = art
        .period
        .map(|p| (p.from.map(|d| d.to_string()), Some(p.to.to_string())))
        .unwrap_or((None, None));
    let record = store::Artifact {
        path: art.sealed.path.display().to_string(),
        file_name: art.file_name.clone(),
        plaintext_sha256: art.sealed.plaintext_sha256.clone(),
        ciphertext_sha256: art.sealed.ciphertext_sha256.clone(),
        rows: art.rows,
        plaintext_bytes: art.sealed.plaintext_bytes,
        ciphertext_bytes: art.sealed.ciphertext_bytes,
        period_from: from,
        period_to: to,
        format: art.format.as_str().to_string(),
        fallback_note: art.fallback_note.clone(),
    };
    let files: Vec<RunFile> = art
        .extras
        .iter()
        .map(|e| RunFile {
            code_table: e.table.as_str().to_string(),
            path: e.sealed.path.display().to_string(),
            file_name: e.file_name.clone(),
            rows: e.rows,
            plaintext_sha256: e.sealed.plaintext_sha256.clone(),
            ciphertext_sha256: e.sealed.ciphertext_sha256.clone(),
            plaintext_bytes: e.sealed.plaintext_bytes,
            ciphertext_bytes: e.sealed.ciphertext_bytes,
        })
        .collect();
    lock(&ctx.store).record_run_files(&id, &files)?;
    *run = lock(&ctx.store).record_artifact(&id, &record)?;
    info!(subscription = %sub.id, run = %id, rows = art.rows, bytes = art.sealed.ciphertext_bytes,
          sha256 = %art.sealed.ciphertext_sha256, "Extract sealed.");
    if let Some(note) = &art.fallback_note {
        warn!(subscription = %sub.id, run = %id, "{note}");
    }
    Ok(())
}

/// Whether the spool still holds what was sealed.
enum SpoolCheck {
    Intact,
    /// The main artifact is gone.
    Missing,
    /// A file has another size or SHA-256 than when it was sealed (what differs).
    Changed(String),
}

/// Compares the sealed files with their recorded sizes and SHA-256 sums (read in full: the
/// file that goes out is the file that was sealed, or none).
async fn check_spool(a: &store::Artifact, extras: &[RunFile]) -> Result<SpoolCheck, DeliveryError> {
    let mut files = vec![(
        a.path.clone(),
        a.ciphertext_bytes,
        a.ciphertext_sha256.clone(),
    )];
    files.extend(extras.iter().map(|f| {
        (
            f.path.clone(),
            f.ciphertext_bytes,
            f.ciphertext_sha256.clone(),
        )
    }));
    tokio::task::spawn_blocking(move || {
        for (i, (path, bytes, sha)) in files.iter().enumerate() {
            match file_differs(Path::new(path), *bytes, sha) {
                Ok(None) => {}
                Ok(Some(d)) => return Ok(SpoolCheck::Changed(d)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && i == 0 => {
                    return Ok(SpoolCheck::Missing)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(SpoolCheck::Changed(format!("{path} is missing")))
                }
                Err(e) => {
                    return Err(DeliveryError::Spool(format!(
                        "cannot read the sealed artifact {path}: {e}; check the spool folder's permissions and disk"
                    )))
                }
            }
        }
        Ok(SpoolCheck::Intact)
    })
    .await
    .map_err(|e| DeliveryError::Task(format!("checking the spool: {e}")))?
}

/// `None` when `path` has `bytes` bytes hashing to `sha`; else what differs.
fn file_differs(path: &Path, bytes: u64, sha: &str) -> std::io::Result<Option<String>> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len != bytes {
        return Ok(Some(format!(
            "{} has {len} bytes, sealed with {bytes}",
            path.display()
        )));
    }
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
    }
    let got = hex::encode(h.finalize());
    Ok((!got.eq_ignore_ascii_case(sha))
        .then(|| format!("{} hashes to {got}, sealed as {sha}", path.display())))
}

/// Takes the run's lock file (`SPOOL/locks/RUN.lock`) or says who has it. The daemon and
/// an operator's `regdrop retry` share one machine and one spool (the state store is never
/// shared between machines), so an OS file lock is enough to keep two processes from
/// uploading the same run at once.
fn lock_run(spool: &std::path::Path, run: &str) -> Result<std::fs::File, DeliveryError> {
    let dir = spool.join("locks");
    crate::seal::ensure_spool(spool).map_err(|e| DeliveryError::Setup(e.to_string()))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| DeliveryError::Setup(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join(format!("{run}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DeliveryError::Setup(format!("opening {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(DeliveryError::Busy {
            run: run.to_string(),
            lock: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(DeliveryError::Setup(format!(
            "locking {}: {e}",
            path.display()
        ))),
    }
}

/// Commits the receipt of a delivered file (idempotent per run).
fn record_receipt(
    ctx: &Ctx,
    sub: &Subscription,
    id: &str,
    artifact: &store::Artifact,
    d: &sftp::Delivered,
    files: &[DeliveredFile],
    started_at: DateTime<Utc>,
) -> Result<Receipt, DeliveryError> {
    let transport = store::Transport {
        kind: "sftp".into(),
        server: d.server.clone(),
        commit: d.commit.map_or("found", |c| c.as_str()).into(),
        fsync: d.fsync,
        verify: d.verified.as_str().into(),
    };
    Ok(lock(&ctx.store).commit_delivery(
        &NewReceipt {
            run_id: id.to_string(),
            subscription: sub.id.clone(),
            customer: sub.customer.clone(),
            customer_org_number: sub.customer_org_number.clone(),
            case_number: sub.case_number.clone(),
            invoice_reference: sub.invoice_reference.clone(),
            report: sub.extract.report.as_str().to_string(),
            remote_host: sub.target.host.clone(),
            remote_port: sub.target.port,
            host_key_fingerprint: d.host_key_sha256.clone(),
            remote_path: d.remote_path.clone(),
            bytes: d.bytes,
            rows: artifact.rows,
            plaintext_sha256: artifact.plaintext_sha256.clone(),
            ciphertext_sha256: artifact.ciphertext_sha256.clone(),
            personal_fields: sub.personal_fields(),
            legal_basis: sub.legal_basis.clone(),
            recipients: sub.encryption.recipients.clone(),
            started_at,
            delivered_at: Utc::now(),
        },
        files,
        Some(&transport),
    )?)
}

/// Crash recovery without the local file: is the sealed artifact (by its recorded size and
/// checksum) already on the server, with the code tables uploaded before it (those first,
/// so the main file's manifest can list them)? Every missing sidecar is completed on the
/// way (checksum, manifest, done marker last), as after any crash between the commit and
/// the receipt.
async fn find_on_server(
    target: &sftp::Target,
    sub: &Subscription,
    run: &Run,
    a: &store::Artifact,
    run_files: &[RunFile],
    columns: &[String],
) -> Result<Option<(sftp::Delivered, Vec<DeliveredFile>)>, DeliveryError> {
    let up_of = |name: &str, sha: &str| sftp::Upload {
        local: PathBuf::from(&a.path),
        final_name: name.to_string(),
        run_id: run.id.clone(),
        if_exists: sftp::IfExists::Fail,
        verify: sftp::Verify::Size,
        sha256_hex: sha.to_string(),
        manifest: None,
        done_marker: false,
    };
    let mut files = Vec::new();
    for f in run_files {
        let up = up_of(&f.file_name, &f.ciphertext_sha256);
        if let Ok(Some(fd)) = sftp::complete_delivered(target, &up, f.ciphertext_bytes).await {
            files.push(delivered_file(f, &fd));
        }
    }
    let main = sftp::Upload {
        manifest: sub
            .delivery
            .manifest
            .then(|| manifest(sub, run, a, columns, &files)),
        done_marker: sub.delivery.done_marker,
        ..up_of(&a.file_name, &a.ciphertext_sha256)
    };
    Ok(sftp::complete_delivered(target, &main, a.ciphertext_bytes)
        .await?
        .map(|d| (d, files)))
}

/// What a receipt records of a code table delivered beside the main file.
fn delivered_file(f: &RunFile, d: &sftp::Delivered) -> DeliveredFile {
    DeliveredFile {
        name: d.final_name.clone(),
        remote_path: d.remote_path.clone(),
        code_table: f.code_table.clone(),
        rows: f.rows,
        bytes: d.bytes,
        sha256: f.ciphertext_sha256.clone(),
        plaintext_sha256: f.plaintext_sha256.clone(),
    }
}

/// One attempt of a run with further files: the code tables first (each with its own
/// `.sha256` sidecar; an earlier attempt's finished upload is found, not repeated), then
/// the main file, whose manifest lists them and whose done marker (if any) comes last.
#[allow(clippy::too_many_arguments)]
async fn attempt_all(
    target: &sftp::Target,
    extras: &[RunFile],
    main: &sftp::Upload,
    look_first: bool,
    total: u64,
    obs: &dyn Observer,
    manifest: impl Fn(&[DeliveredFile]) -> Option<Vec<u8>>,
) -> Result<(sftp::Delivered, Vec<DeliveredFile>), DeliveryError> {
    let mut files = Vec::with_capacity(extras.len());
    for f in extras {
        let up = sftp::Upload {
            local: PathBuf::from(&f.path),
            final_name: f.file_name.clone(),
            sha256_hex: f.ciphertext_sha256.clone(),
            manifest: None,
            done_marker: false,
            ..main.clone()
        };
        let d = attempt(target, &up, look_first, f.ciphertext_bytes, obs).await?;
        files.push(delivered_file(f, &d));
    }
    let up = sftp::Upload {
        manifest: manifest(&files),
        ..main.clone()
    };
    let d = attempt(target, &up, look_first, total, obs).await?;
    Ok((d, files))
}

/// One attempt: first look whether an earlier attempt already finished (crash between
/// upload and receipt), else upload.
async fn attempt(
    target: &sftp::Target,
    up: &sftp::Upload,
    look_first: bool,
    total: u64,
    obs: &dyn Observer,
) -> Result<sftp::Delivered, DeliveryError> {
    if look_first {
        if let Some(d) = sftp::complete_delivered(target, up, total).await? {
            info!(remote = %d.remote_path, "Found this run's file already delivered; recording the receipt.");
            return Ok(d);
        }
    }
    Ok(sftp::deliver(target, up, &|b| obs.bytes(b, total)).await?)
}
