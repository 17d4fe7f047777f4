//! What a run writes to the store: the sealed artifact (and the code tables beside it),
//! and the receipt of a delivered run.

use super::email::EmailDelivered;
use super::{lock, Ctx, DeliveryError, Observer, Sent};
use crate::core::config::Subscription;
use crate::core::identity::RunId;
use crate::core::plan::RunPlan;
use crate::pipeline::artifact;
use crate::store::{
    self, DeliveredFile, NewReceipt, Receipt, Run, RunFile, RunFilter, RunState, Store, StoreError,
};
use chrono::{DateTime, NaiveDate, Utc};
use tracing::{info, warn};

/// The end of the period of the subscription's last delivered run (for
/// `since_last_delivery`).
pub(super) fn last_delivered_to(store: &Store, sub: &str) -> Result<Option<NaiveDate>, StoreError> {
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

/// Generates and seals the run's artifact into the spool and records it (state `sealed`).
pub(super) async fn generate(
    ctx: &Ctx,
    plan: &RunPlan,
    run: &mut Run,
    obs: &dyn Observer,
    passphrase: Option<age::secrecy::SecretString>,
) -> Result<(), DeliveryError> {
    obs.stage(&run.id, "generating");
    let art = seal_in_spool(ctx, plan, &run.id, obs, passphrase, None).await?;
    record_sealed(ctx, plan, run, &art)
}

/// Generates and seals the run's artifact into the spool (on a blocking thread; rows
/// progress goes to `obs`), the main file followed by `follow` while it is sealed.
pub(super) async fn seal_in_spool(
    ctx: &Ctx,
    plan: &RunPlan,
    id: &RunId,
    obs: &dyn Observer,
    passphrase: Option<age::secrecy::SecretString>,
    follow: Option<artifact::Follow>,
) -> Result<artifact::Artifact, DeliveryError> {
    let (register, spool) = (ctx.daemon.register.clone(), ctx.daemon.spool_dir.clone());
    let (plan2, name, limit) = (plan.clone(), format!("{id}.artifact"), ctx.xlsx_row_limit);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let mut task = tokio::task::spawn_blocking(move || {
        let shop = artifact::Workshop {
            register: &register,
            spool: &spool,
            xlsx_row_limit: limit,
            passphrase: passphrase.as_ref(),
        };
        artifact::generate_and_seal_followed(
            shop,
            &name,
            &plan2,
            &mut |d, t| {
                let _ = tx.send((d, t));
            },
            follow,
        )
    });
    let art = loop {
        tokio::select! {
            Some((d, t)) = rx.recv() => obs.rows(d, t),
            res = &mut task => break res,
        }
    };
    Ok(art.map_err(|e| DeliveryError::Task(format!("generation: {e}")))??)
}

/// Records a sealed artifact (and the code tables beside it): the run is `sealed`.
pub(super) fn record_sealed(
    ctx: &Ctx,
    plan: &RunPlan,
    run: &mut Run,
    art: &artifact::Artifact,
) -> Result<(), DeliveryError> {
    let id = run.id.clone();
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
    info!(subscription = %plan.subscription, run = %id, rows = art.rows, bytes = art.sealed.ciphertext_bytes,
          sha256 = %art.sealed.ciphertext_sha256, "Extract sealed.");
    if let Some(note) = &art.fallback_note {
        warn!(subscription = %plan.subscription, run = %id, "{note}");
    }
    Ok(())
}

/// Commits the receipt of a delivered file (idempotent per run).
pub(super) fn record_receipt(
    ctx: &Ctx,
    sub: &Subscription,
    id: &RunId,
    artifact: &store::Artifact,
    sent: &Sent,
    files: &[DeliveredFile],
    started_at: DateTime<Utc>,
) -> Result<Receipt, DeliveryError> {
    let (transport, host, port, key, path, bytes) = match sent {
        Sent::Sftp(d) => (
            store::Transport {
                kind: "sftp".into(),
                server: d.server.clone(),
                commit: d.commit.map_or("found", |c| c.as_str()).into(),
                fsync: d.fsync,
                verify: d.verified.as_str().into(),
                email: None,
            },
            sub.target().map(|t| t.host.clone()).unwrap_or_default(),
            sub.target().map_or(0, |t| t.port),
            d.host_key_sha256.clone(),
            d.remote_path.clone(),
            d.bytes,
        ),
        Sent::Email(e) => (
            store::Transport {
                kind: "email".into(),
                server: e.reply.clone(),
                commit: "smtp".into(),
                fsync: false,
                verify: "none".into(),
                email: Some(store::EmailSent {
                    message_id: e.message_id.clone(),
                    to: e.to.clone(),
                    passphrase_sms_to: e.sms_to.clone(),
                }),
            },
            e.host.clone(),
            e.port,
            String::new(),
            format!("mailto:{}/{}", e.to.join(","), artifact.file_name),
            artifact.ciphertext_bytes,
        ),
    };
    let recipients = match sent {
        Sent::Email(EmailDelivered {
            sms_to: Some(to), ..
        }) => {
            vec![format!("passphrase (age scrypt), sent by SMS to {to}")]
        }
        _ => sub
            .encryption
            .recipients
            .iter()
            .map(|r| r.as_str().to_string())
            .collect(),
    };
    Ok(lock(&ctx.store).commit_delivery(
        &NewReceipt {
            run_id: id.clone(),
            subscription: sub.id.clone(),
            customer: sub.customer.clone(),
            customer_org_number: sub.customer_org_number.clone(),
            case_number: sub.case_number.clone(),
            invoice_reference: sub.invoice_reference.clone(),
            report: sub.extract.report.as_str().to_string(),
            remote_host: host,
            remote_port: port,
            host_key_fingerprint: key,
            remote_path: path,
            bytes,
            rows: artifact.rows,
            plaintext_sha256: artifact.plaintext_sha256.clone(),
            ciphertext_sha256: artifact.ciphertext_sha256.clone(),
            personal_fields: sub.personal_fields(),
            legal_basis: sub.legal_basis.clone(),
            recipients,
            started_at,
            delivered_at: Utc::now(),
        },
        files,
        Some(&transport),
    )?)
}
