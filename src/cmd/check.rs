//! `regdrop check`, `regdrop fields` and `regdrop next`: what the configuration says.

use super::{load, parse_time, subscription, EXIT_CONFIG};
use crate::core::config;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn check(flag: Option<&Path>) -> Result<ExitCode> {
    let loaded = load(flag)?;
    for p in &loaded.problems {
        println!("{p}");
    }
    let n_ok = loaded.subscriptions.len();
    let n_bad = loaded.failed_files.len();
    if loaded.problems.is_empty() {
        println!(
            "ok: {} ({n_ok} subscriptions valid)",
            loaded.config_path.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} problem(s) in {n_bad} file(s); {n_ok} subscription(s) valid. Fix the lines above and run `regdrop check` again.",
            loaded.problems.len()
        );
        Ok(ExitCode::from(EXIT_CONFIG))
    }
}

pub(super) fn fields() {
    println!("{:<28} {:<9} {:<8} meaning", "name", "kind", "personal");
    for f in crate::core::catalog::all_fields() {
        println!(
            "{:<28} {:<9} {:<8} {}",
            f.name,
            format!("{:?}", f.kind).to_lowercase(),
            if f.personal { "yes" } else { "" },
            f.title
        );
    }
}

pub(super) fn next(
    flag: Option<&Path>,
    sub: Option<&str>,
    count: usize,
    after: Option<&str>,
) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let after = parse_time(after)?;
    let subs: Vec<&config::Subscription> = match sub {
        Some(id) => vec![subscription(&loaded, id)?],
        None => loaded.subscriptions.iter().collect(),
    };
    for s in subs {
        println!("{} ({}, {}):", s.id, s.schedule.line, s.schedule.tz);
        for t in s.schedule.upcoming(after, count) {
            println!(
                "  {}   {}",
                s.schedule.local(t).format("%Y-%m-%d %H:%M %Z"),
                t.format("%Y-%m-%dT%H:%M:%SZ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
