//! `regdrop resolve RUN... --reason "..."`: an operator closes runs in `needs_attention` or
//! `failed` with a decision (who, when, why), kept with the run in the state store and
//! logged; the running daemon is told (SIGUSR1) so its attention gauge drops at once.

use super::{load, Exit, EXIT_USAGE};
use crate::store::{NewResolution, RunId, StoreError};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;

/// Who is typing: the user name of the real uid; with `sudo`, also who ran sudo.
pub(super) fn os_user() -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"));
    match std::env::var("SUDO_USER") {
        Ok(s) if uid.is_root() && !s.is_empty() && s != name => format!("{name} (sudo {s})"),
        _ => name,
    }
}

pub(super) fn resolve(
    flag: Option<&Path>,
    runs: &[String],
    reason: &str,
    by: Option<&str>,
) -> Result<ExitCode> {
    if reason.trim().is_empty() {
        return Err(anyhow::Error::new(Exit {
            code: EXIT_USAGE,
            message: "--reason is empty: say what was decided and why, e.g. --reason \"customer got the file by hand; case 2026/114\"".into(),
        }));
    }
    let loaded = load(flag)?;
    let state_db = &loaded.daemon.state_db;
    let Some(store) = super::open_existing_store(state_db)? else {
        bail!("no state store at {state_db}: nothing has run yet");
    };
    let os_user = os_user();
    let mut refused = 0;
    let mut resolved = 0;
    for run in runs {
        let new = NewResolution {
            run_id: RunId::from(run.as_str()),
            os_user: os_user.clone(),
            resolved_by: by.map(str::to_string),
            reason: reason.to_string(),
        };
        match store.resolve_run(&new) {
            Ok(r) => {
                resolved += 1;
                tracing::info!(run = %r.run_id, state = %r.state, os_user = %r.os_user,
                    resolved_by = r.resolved_by.as_deref(), reason = %r.reason,
                    "Run resolved by an operator.");
                println!("resolved {run} (was {}): {}", r.state, r.describe());
            }
            Err(e @ StoreError::AlreadyResolved(_)) => {
                refused += 1;
                eprintln!("error: {e}; a decision is never changed (the first one stands)");
            }
            Err(StoreError::NoSuchRun(_)) => {
                refused += 1;
                eprintln!(
                    "error: no run `{run}` in {state_db}; `regdrop status` lists the runs needing attention"
                );
            }
            Err(e @ StoreError::NotResolvable { .. }) => {
                refused += 1;
                eprintln!("error: {e}");
            }
            Err(e) => return Err(e).context("recording the resolution"),
        }
    }
    if resolved > 0 {
        tell_daemon(&loaded.daemon);
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Wakes the running daemon so `regdrop_runs_needing_attention` is recomputed now; without
/// it, that happens at its next wake-up (at most 5 minutes).
fn tell_daemon(daemon: &crate::core::config::DaemonConfig) {
    let Some(pid) = crate::daemon::running_daemon(daemon) else {
        return;
    };
    let to = nix::unistd::Pid::from_raw(pid as i32);
    match nix::sys::signal::kill(to, nix::sys::signal::Signal::SIGUSR1) {
        Ok(()) => println!("told the running daemon (pid {pid}); its attention gauge drops now"),
        Err(e) => println!(
            "could not tell the running daemon (pid {pid}: {e}); its attention gauge drops at its next wake-up, within {} minutes",
            crate::daemon::supervisor::MAX_NAP.as_secs() / 60
        ),
    }
}
