//! Uploading a run's files: the code tables first, then the main file with its manifest;
//! an earlier attempt's finished upload is found and completed, never repeated.

use super::{DeliveryError, Observer};
use crate::core::config::Subscription;
use crate::sftp;
use crate::store::{self, DeliveredFile, Run, RunFile};
use std::path::PathBuf;
use tracing::info;

/// The manifest uploaded beside the file.
pub(super) fn manifest(
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

/// Crash recovery without the local file: is the sealed artifact (by its recorded size and
/// checksum) already on the server, with the code tables uploaded before it (those first,
/// so the main file's manifest can list them)? Every missing sidecar is completed on the
/// way (checksum, manifest, done marker last), as after any crash between the commit and
/// the receipt.
pub(super) async fn find_on_server(
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
pub(super) fn delivered_file(f: &RunFile, d: &sftp::Delivered) -> DeliveredFile {
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
pub(super) async fn attempt_all(
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
pub(super) async fn attempt(
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
