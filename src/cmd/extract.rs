//! `regdrop preview` and `regdrop extract`: one subscription's extract, by hand, without delivering it.

use super::{load, parse_time, subscription};
use crate::progress::Progress;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;

pub(super) fn preview(
    flag: Option<&Path>,
    id: &str,
    rows: usize,
    at: Option<&str>,
    sql: bool,
) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?;
    let at = parse_time(at)?;
    if sub.extract.report == crate::core::catalog::ReportKind::CodeTables {
        // No register query: the tables come from the binary.
        for t in &sub.extract.code_tables {
            let all = t.rows();
            println!("{} ({}): {} rows", t.as_str(), t.file_stem(), all.len());
            for (code, name) in all.iter().take(rows) {
                println!("  {code} | {name}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if sql {
        let period = crate::core::plan::run_period(sub, at, None);
        println!(
            "{};",
            crate::extract::query::build(
                &sub.extract,
                period.as_ref(),
                crate::extract::query::Dialect::of(&loaded.daemon.register)
            )
            .inline()?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let register = crate::extract::Register::open(&loaded.daemon.register)
        .with_context(|| format!("opening the register {}", loaded.daemon.register))?;
    let period = crate::core::plan::run_period(sub, at, None);
    let snap = register.snapshot()?;
    let (total, sample) = crate::extract::preview(&snap, &sub.extract, period.as_ref(), rows)?;
    snap.end()?;
    println!(
        "{}: report {}, {} rows{}",
        sub.id,
        sub.extract.report.as_str(),
        total,
        period
            .map(|p| format!(
                ", period {}..{}",
                p.from.map(|d| d.to_string()).unwrap_or_default(),
                p.to
            ))
            .unwrap_or_default()
    );
    let names: Vec<&str> = sub
        .extract
        .columns
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    println!("{}", names.join(" | "));
    for r in sample {
        println!("{}", r.join(" | "));
    }
    if !sub.personal_fields().is_empty() {
        println!(
            "(personal fields are masked: {})",
            sub.personal_fields().join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn extract(
    flag: Option<&Path>,
    id: &str,
    out: &Path,
    at: Option<&str>,
    passphrase_file: Option<&Path>,
) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?;
    let passphrase = match (sub.encryption.passphrase, passphrase_file) {
        (true, Some(f)) => Some(age::secrecy::SecretString::from(
            crate::secret::read_secret_file(f)?,
        )),
        (true, None) => anyhow::bail!(
            "subscription {id} seals each delivery with a new passphrase (sent by SMS); give --passphrase-file FILE (0600) to seal this extract with yours"
        ),
        (false, Some(_)) => anyhow::bail!(
            "subscription {id} is encrypted to its age recipients; --passphrase-file is only for [encryption] mode = \"passphrase\""
        ),
        (false, None) => None,
    };
    let at = parse_time(at)?;
    let spool = &loaded.daemon.spool_dir;
    let name = format!("extract-{}-{}.part", sub.id, std::process::id());
    let bar = Progress::rows("extract");
    let shop = crate::pipeline::artifact::Workshop {
        register: &loaded.daemon.register,
        spool,
        xlsx_row_limit: None,
        passphrase: passphrase.as_ref(),
    };
    let plan = crate::core::plan::RunPlan::new(sub, at, None)?;
    let art =
        crate::pipeline::artifact::generate_and_seal(shop, &name, &plan, &mut |done, total| {
            bar.update(done, total)
        })?;
    bar.finish();
    move_file(&art.sealed.path, out)?;
    if let Some(note) = &art.fallback_note {
        eprintln!("note: {note}");
    }
    println!("file:               {}", out.display());
    println!("remote name:        {}", art.file_name);
    println!("rows:               {}", art.rows);
    println!(
        "format:             {}{}",
        art.format.as_str(),
        if art.sealed.encrypted { " + age" } else { "" }
    );
    println!("plaintext bytes:    {}", art.sealed.plaintext_bytes);
    println!("plaintext sha256:   {}", art.sealed.plaintext_sha256);
    println!("ciphertext bytes:   {}", art.sealed.ciphertext_bytes);
    println!("ciphertext sha256:  {}", art.sealed.ciphertext_sha256);
    // Code tables sealed beside it go next to --out under their remote names.
    for e in &art.extras {
        let to = out.with_file_name(&e.file_name);
        move_file(&e.sealed.path, &to)?;
        println!(
            "code table {:<15} {} ({} rows, sha256 {})",
            e.table.as_str(),
            to.display(),
            e.rows,
            e.sealed.ciphertext_sha256
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Renames, or copies and removes when `to` is on another file system.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).with_context(|| format!("writing {}", to.display()))?;
    std::fs::remove_file(from)?;
    Ok(())
}
