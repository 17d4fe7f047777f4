//! What a run writes to the store: the sealed artifact (and the code tables beside it),
//! and the receipt of a delivered run.

use super::{lock, Ctx, DeliveryError, Observer};
use crate::core::config::Subscription;
use crate::core::identity::RunId;
use crate::core::plan::RunPlan;
use crate::pipeline::artifact;
use crate::sftp;
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
) -> Result<(), DeliveryError> {
    let id = run.id.clone();
    obs.stage(&id, "generating");
    let (register, spool) = (ctx.daemon.register.clone(), ctx.daemon.spool_dir.clone());
    let (plan2, name, limit) = (plan.clone(), format!("{id}.artifact"), ctx.xlsx_row_limit);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let mut task = tokio::task::spawn_blocking(move || {
        let shop = artifact::Workshop {
            register: &register,
            spool: &spool,
            xlsx_row_limit: limit,
        };
        artifact::generate_and_seal(shop, &name, &plan2, &mut |d, t| {
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
            run_id: id.clone(),
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
            recipients: sub
                .encryption
                .recipients
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            started_at,
            delivered_at: Utc::now(),
        },
        files,
        Some(&transport),
    )?)
}
