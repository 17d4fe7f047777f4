//! Installing regdrop: `--version` names the commit the binary was built from.

use crate::util::cli;
use std::process::Command;

#[test]
fn version_names_the_version_and_the_git_commit() {
    let out = cli::run(cli::regdrop().arg("--version"));
    assert!(out.ok(), "{}", out.text());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        out.stdout.trim(),
        format!("regdrop {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
}
