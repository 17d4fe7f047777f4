//! `regdrop receipts …`: list, verify and export the delivery receipts.

use super::times::{LocalZone, Time};
use super::{load, open_store};
use crate::cmd::cli::{ExportFormat, ReceiptsCmd};
use crate::store::ReceiptFilter;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::process::ExitCode;

/// `receipts list --json`: one document (README "JSON output"); `receipts show ID` has
/// everything a receipt records.
fn list_json(list: &[crate::store::Receipt]) -> serde_json::Value {
    let zone = LocalZone::detect();
    serde_json::json!({
        "local_zone": zone.name(),
        "count": list.len(),
        "receipts": list.iter().map(|r| serde_json::json!({
            "id": r.id,
            "run_id": r.run_id.as_str(),
            "subscription": r.subscription.as_str(),
            "customer": r.customer,
            "report": r.report,
            "started_at": Time::new(r.started_at, zone),
            "delivered_at": Time::new(r.delivered_at, zone),
            "rows": r.rows,
            "bytes": r.bytes,
            "files": 1 + r.files.len(),
            "remote_host": r.remote_host,
            "remote_port": r.remote_port,
            "remote_path": r.remote_path,
            "ciphertext_sha256": r.ciphertext_sha256,
            "plaintext_sha256": r.plaintext_sha256,
            "hash": r.hash,
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn receipts(flag: Option<&Path>, cmd: ReceiptsCmd) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let store = open_store(&loaded)?;
    match cmd {
        ReceiptsCmd::List {
            subscription,
            since,
            json,
        } => {
            let since = since
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
                        .with_context(|| format!("`{d}` is not a date like 2026-11-01"))
                })
                .transpose()?;
            let list = store.receipts(&ReceiptFilter {
                subscription: subscription.map(Into::into),
                since,
                until: None,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list_json(&list))?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:>5}  {:<20}  {:<24}  {:>10}  {:>12}  remote path",
                "id", "delivered (UTC)", "subscription", "rows", "bytes"
            );
            for r in &list {
                println!(
                    "{:>5}  {:<20}  {:<24}  {:>10}  {:>12}  {}:{}",
                    r.id,
                    r.delivered_at.format("%Y-%m-%d %H:%M:%S"),
                    r.subscription,
                    r.rows,
                    r.bytes,
                    r.remote_host,
                    r.remote_path
                );
            }
            println!("{} receipt(s)", list.len());
        }
        ReceiptsCmd::Show { id } => {
            let r = store
                .receipt(id)?
                .ok_or_else(|| anyhow!("no receipt {id}; `regdrop receipts list` shows the ids"))?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ReceiptsCmd::Verify => {
            let report = store.verify_chain()?;
            println!("{report}");
            if !report.is_intact() {
                return Ok(ExitCode::FAILURE);
            }
        }
        ReceiptsCmd::Export {
            format,
            month,
            subscription,
        } => {
            let mut filter = match month {
                Some(m) => {
                    let (y, mo) = crate::store::model::parse_month(&m)?;
                    let tz = crate::core::schedule::parse_tz(&loaded.daemon.inherited.timezone)
                        .map_err(|e| anyhow!(e))?;
                    ReceiptFilter::month(y, mo, &tz)?
                }
                None => ReceiptFilter::default(),
            };
            filter.subscription = subscription.map(Into::into);
            let out = std::io::stdout().lock();
            match format {
                ExportFormat::Csv => store.export_csv(out, &filter)?,
                ExportFormat::Json => store.export_json(out, &filter)?,
            };
        }
    }
    Ok(ExitCode::SUCCESS)
}
