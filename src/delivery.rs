//! One run, from its record in the store to its receipt (DESIGN §6): record the run
//! before any work, generate and seal once, upload with retries that reuse the artifact,
//! find an earlier attempt's finished upload after a crash, and commit exactly one receipt.

use crate::config::{AuthSpec, CommitMode, DaemonConfig, IfExists, Subscription, VerifyLevel};
use crate::job::{self, JobError};
use crate::retry::{Classify, ErrorClass, GiveUp, Next};
use crate::sftp::{self, SftpError};
use crate::store::{
    self, AttemptOutcome, DeliveredFile, NewReceipt, NewRun, Receipt, Run, RunFile, RunFilter,
    RunState, Store, StoreError,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::path::PathBuf;
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
}

impl Classify for DeliveryError {
    fn class(&self) -> ErrorClass {
        match self {
            DeliveryError::Store(e) => e.class(),
            DeliveryError::Job(e) => e.class(),
            DeliveryError::Sftp(e) => e.class(),
            DeliveryError::Setup(_) => ErrorClass::Permanent,
            DeliveryError::Task(_) | DeliveryError::Busy { .. } => ErrorClass::Retryable,
        }
    }
}

impl DeliveryError {
    /// A short label for the attempts table and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DeliveryError::Store(_) => "store",
            DeliveryError::Job(_) => "generate",
            DeliveryError::Sftp(e) => sftp_label(e),
            DeliveryError::Setup(_) => "config",
            DeliveryError::Task(_) => "internal",
            DeliveryError::Busy { .. } => "busy",
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
        SftpError::Local { .. } => "spool",
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
    if sub.extract.report == crate::catalog::ReportKind::CodeTables {
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

    // 1. Generate + seal once; retries and restarts reuse the artifact.
    let columns: Vec<String> = sub.extract.columns.iter().map(|f| f.name.clone()).collect();
    if let Some(lost) = run
        .artifact
        .clone()
        .filter(|a| !std::path::Path::new(&a.path).exists())
    {
        return lost_artifact(ctx, sub, &run, &lost, &columns).await;
    }
    if run.artifact.is_none() {
        obs.stage(&id, "generating");
        let last_to = last_delivered_to(&lock(&ctx.store), &sub.id)?;
        let (register, spool) = (ctx.daemon.register.clone(), ctx.daemon.spool_dir.clone());
        let (sub2, name, limit) = (sub.clone(), format!("{id}.artifact"), ctx.xlsx_row_limit);
        let scheduled_at = run.scheduled_at;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
        let mut task = tokio::task::spawn_blocking(move || {
            let shop = job::Workshop {
                register: &register,
                spool: &spool,
                xlsx_row_limit: limit,
            };
            job::generate_and_seal(shop, &name, &sub2, scheduled_at, last_to, &mut |d, t| {
                let _ = tx.send((d, t));
            })
        });
        let art = loop {
            tokio::select! {
                Some((d, t)) = rx.recv() => obs.rows(d, t),
                res = &mut task => break res,
            }
        };
        let art = match art.map_err(|e| DeliveryError::Task(e.to_string()))? {
            Ok(a) => a,
            Err(e) => return fail_without_attempt(ctx, sub, &id, DeliveryError::Job(e)),
        };
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
        run = lock(&ctx.store).record_artifact(&id, &record)?;
        info!(subscription = %sub.id, run = %id, rows = art.rows, bytes = art.sealed.ciphertext_bytes,
              sha256 = %art.sealed.ciphertext_sha256, "Extract sealed.");
        if let Some(note) = &art.fallback_note {
            warn!(subscription = %sub.id, run = %id, "{note}");
        }
    }
    let artifact = run.artifact.clone().expect("sealed above");
    let extras = lock(&ctx.store).run_files(&id)?;
    if run.state != RunState::Uploading {
        run = lock(&ctx.store).set_state(&id, RunState::Uploading, None)?;
    }

    // 2. Upload with retries.
    let target = match target_of(sub) {
        Ok(t) => t,
        Err(e) => return fail_without_attempt(ctx, sub, &id, e),
    };
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
    let first_start = Instant::now();
    let started_at = Utc::now();
    loop {
        let n = lock(&ctx.store).begin_attempt(&id)?;
        obs.stage(&id, &format!("uploading (attempt {n})"));
        let total = artifact.ciphertext_bytes;
        let result = tokio::select! {
            _ = ctx.cancel.cancelled() => {
                lock(&ctx.store).finish_attempt(&id, n, AttemptOutcome::Retryable, Some("shutdown"), Some("stopped by shutdown"))?;
                return Ok(Outcome::Interrupted { run: id });
            }
            r = attempt_all(&target, &extras, &upload, n > 1 || resumed, total, obs, |files| {
                sub.delivery.manifest.then(|| manifest(sub, &run, &artifact, &columns, files))
            }) => r,
        };
        match result {
            Ok((d, files)) => {
                lock(&ctx.store).finish_attempt(&id, n, AttemptOutcome::Ok, None, None)?;
                let receipt = record_receipt(ctx, sub, &id, &artifact, &d, &files, started_at)?;
                info!(subscription = %sub.id, run = %id, receipt = receipt.id, remote = %d.remote_path,
                      sha256 = %artifact.ciphertext_sha256, attempts = n, "Delivery succeeded.");
                return Ok(Outcome::Delivered(receipt));
            }
            Err(e) => {
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
                        warn!(subscription = %sub.id, run = %id, attempt = n, error = %msg, wait_secs = wait.as_secs_f64(), "Delivery attempt failed; will retry.");
                        obs.retry(&id, n, wait, &msg);
                        tokio::select! {
                            _ = ctx.cancel.cancelled() => return Ok(Outcome::Interrupted { run: id }),
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                    Next::GiveUp(GiveUp::Permanent) => {
                        let reason = format!("attempt {n}: {msg}");
                        lock(&ctx.store).set_state(&id, RunState::NeedsAttention, Some(&reason))?;
                        warn!(subscription = %sub.id, run = %id, error = %msg, "Delivery needs an operator.");
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
                        warn!(subscription = %sub.id, run = %id, error = %msg, "Delivery failed; retries exhausted.");
                        return Ok(Outcome::Failed { run: id, reason });
                    }
                }
            }
        }
    }
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

/// The run was sealed but its spool file is gone (deleted by hand, disk replaced). The
/// artifact cannot be regenerated byte for byte (age output differs every time), so: if
/// the server already has it, record the receipt; otherwise an operator decides.
async fn lost_artifact(
    ctx: &Ctx,
    sub: &Subscription,
    run: &Run,
    a: &store::Artifact,
    columns: &[String],
) -> Result<Outcome, DeliveryError> {
    let id = run.id.clone();
    let started_at = Utc::now();
    let target = match target_of(sub) {
        Ok(t) => t,
        Err(e) => return fail_without_attempt(ctx, sub, &id, e),
    };
    let n = lock(&ctx.store).begin_attempt(&id)?;
    // The code tables went up before the main file: find them (and complete their
    // sidecars) first, so the main file's manifest can list them.
    let mut files = Vec::new();
    let up_of = |name: &str, sha: &str| sftp::Upload {
        local: PathBuf::from(&a.path),
        final_name: name.to_string(),
        run_id: id.clone(),
        if_exists: sftp::IfExists::Fail,
        verify: sftp::Verify::Size,
        sha256_hex: sha.to_string(),
        manifest: None,
        done_marker: false,
    };
    let run_files = lock(&ctx.store).run_files(&id)?;
    for f in run_files {
        let up = up_of(&f.file_name, &f.ciphertext_sha256);
        if let Ok(Some(fd)) = sftp::complete_delivered(&target, &up, f.ciphertext_bytes).await {
            files.push(delivered_file(&f, &fd));
        }
    }
    // The main file: every missing sidecar (checksum, manifest, done marker last) is
    // written, as after any crash between the commit and the receipt.
    let main = sftp::Upload {
        manifest: sub
            .delivery
            .manifest
            .then(|| manifest(sub, run, a, columns, &files)),
        done_marker: sub.delivery.done_marker,
        ..up_of(&a.file_name, &a.ciphertext_sha256)
    };
    match sftp::complete_delivered(&target, &main, a.ciphertext_bytes).await {
        Ok(Some(d)) => {
            lock(&ctx.store).finish_attempt(&id, n, AttemptOutcome::Ok, None, None)?;
            let r = record_receipt(ctx, sub, &id, a, &d, &files, started_at)?;
            Ok(Outcome::Delivered(r))
        }
        Ok(None) => {
            let reason = format!(
                "the sealed artifact {} is missing from the spool and the server does not have it; this run cannot be resumed: deliver a new run with `regdrop deliver {}`",
                a.path, sub.id
            );
            lock(&ctx.store).finish_attempt(
                &id,
                n,
                AttemptOutcome::Permanent,
                Some("spool"),
                Some(&reason),
            )?;
            lock(&ctx.store).set_state(&id, RunState::NeedsAttention, Some(&reason))?;
            Ok(Outcome::NeedsAttention { run: id, reason })
        }
        Err(e) => {
            let e = DeliveryError::Sftp(e);
            lock(&ctx.store).finish_attempt(
                &id,
                n,
                e.class().into(),
                Some(e.label()),
                Some(&e.to_string()),
            )?;
            Err(e)
        }
    }
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

/// A failure before any upload attempt (generation, setup): permanent ones need an
/// operator; retryable ones leave the run to be resumed.
fn fail_without_attempt(
    ctx: &Ctx,
    sub: &Subscription,
    id: &str,
    e: DeliveryError,
) -> Result<Outcome, DeliveryError> {
    let reason = e.to_string();
    if e.class() == ErrorClass::Permanent {
        lock(&ctx.store).set_state(id, RunState::NeedsAttention, Some(&reason))?;
        warn!(subscription = %sub.id, run = %id, error = %reason, "Run needs an operator.");
        Ok(Outcome::NeedsAttention {
            run: id.to_string(),
            reason,
        })
    } else {
        Err(e)
    }
}
