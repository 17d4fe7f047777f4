//! `regdrop check` and `regdrop fields`: what the configuration says (`next` is in
//! [`super::agenda`]).

use super::{load, EXIT_CONFIG};
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
