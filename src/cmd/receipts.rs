//! `regdrop receipts …`: list, verify and export the delivery receipts.

use super::{load, open_store};
use crate::cmd::cli::{ExportFormat, ReceiptsCmd};
use crate::store::ReceiptFilter;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::process::ExitCode;

pub(super) fn receipts(flag: Option<&Path>, cmd: ReceiptsCmd) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let store = open_store(&loaded)?;
    match cmd {
        ReceiptsCmd::List {
            subscription,
            since,
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
