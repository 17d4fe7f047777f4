//! The daemon's commands: `regdrop run`, `regdrop retry RUN`, `regdrop status`.

use super::{runtime, Exit, EXIT_CONFIG};
use crate::daemon::DaemonError;
use crate::pipeline::delivery::{self, Ctx, Observer, Outcome};
use crate::store::{self, RunFilter, RunState, Store};
use anyhow::{bail, Context, Result};
use chrono::Utc;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `regdrop run`: the daemon until SIGTERM/SIGINT. An invalid daemon config exits 78;
/// invalid subscription files are logged and skipped.
pub fn run(flag: Option<&Path>) -> Result<ExitCode> {
    let path = crate::loader::default_path(flag);
    match runtime()?.block_on(crate::daemon::run(path, std::future::pending())) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(DaemonError::Config(e)) => Err(anyhow::Error::new(Exit {
            code: EXIT_CONFIG,
            message: e.to_string(),
        })),
        Err(e) => Err(e.into()),
    }
}

fn open_existing_store(state_db: &Path) -> Result<Option<Store>> {
    if !state_db.exists() {
        return Ok(None);
    }
    Ok(Some(Store::open(state_db).with_context(|| {
        format!("opening the state store {}", state_db.display())
    })?))
}

/// Prints the stages of a run for a person at a terminal.
struct Print;
impl Observer for Print {
    fn stage(&self, run: &str, what: &str) {
        eprintln!("{run}: {what}");
    }
    fn retry(&self, run: &str, attempt: u32, wait: Duration, error: &str) {
        eprintln!(
            "{run}: attempt {attempt} failed ({error}); retrying in {:.0} s",
            wait.as_secs_f64()
        );
    }
}

/// `regdrop retry RUN`: an operator goes again with a run in `needs_attention` or
/// `failed` after fixing its cause. The same sealed artifact is reused.
pub fn retry(flag: Option<&Path>, run_id: &str) -> Result<ExitCode> {
    let loaded = crate::cmd::load(flag)?;
    let Some(store) = open_existing_store(&loaded.daemon.state_db)? else {
        bail!(
            "no state store at {}: nothing has run yet",
            loaded.daemon.state_db.display()
        );
    };
    let Some(run) = store.get_run(&store::RunId::from(run_id))? else {
        bail!(
            "no run `{run_id}` in {}; `regdrop status` lists the runs needing attention",
            loaded.daemon.state_db.display()
        );
    };
    match run.state {
        RunState::NeedsAttention | RunState::Failed => {}
        RunState::Delivered => {
            println!("{run_id} was delivered already; nothing to do.");
            return Ok(ExitCode::SUCCESS);
        }
        s => bail!("{run_id} is {s}: the daemon is working on it or resumes it at its next start"),
    }
    let Some(sub) = loaded.subscription(&run.subscription) else {
        bail!(
            "subscription `{}` of {run_id} is not loaded (removed or invalid; `regdrop check`)",
            run.subscription
        );
    };
    let ctx = Ctx {
        daemon: Arc::new(loaded.daemon.clone()),
        store: Arc::new(Mutex::new(store)),
        cancel: CancellationToken::new(),
        xlsx_row_limit: None,
    };
    let rt = runtime()?;
    let cancel = ctx.cancel.clone();
    let outcome = rt.block_on(async {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        delivery::deliver_run(&ctx, sub, run, &Print).await
    })?;
    Ok(match outcome {
        Outcome::Delivered(r) | Outcome::AlreadyDelivered(r) => {
            println!(
                "delivered: {} ({} bytes, {} rows), receipt {}",
                r.remote_path, r.bytes, r.rows, r.id
            );
            ExitCode::SUCCESS
        }
        Outcome::NeedsAttention { reason, .. } => {
            println!("needs attention again: {reason}");
            ExitCode::FAILURE
        }
        Outcome::Failed { reason, .. } => {
            println!("failed: {reason}");
            ExitCode::FAILURE
        }
        Outcome::Interrupted { .. } => {
            println!("interrupted; `regdrop retry {run_id}` goes on from here");
            ExitCode::FAILURE
        }
    })
}

/// `regdrop status`: every subscription with its last run and next fire, the runs that
/// need an operator, and what the running daemon reports (its last good versions of
/// subscription files that are now invalid).
pub fn status(flag: Option<&Path>) -> Result<ExitCode> {
    let loaded = crate::cmd::load(flag)?;
    let now = Utc::now();
    let status_path = crate::daemon::status_file_of(&loaded.daemon.state_db);
    let daemon_doc: Option<serde_json::Value> = std::fs::read(&status_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let alive = daemon_doc
        .as_ref()
        .filter(|d| d["stopped"].as_bool() != Some(true))
        .and_then(|d| d["pid"].as_u64())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
    match &daemon_doc {
        Some(d) if alive => println!(
            "daemon: running (pid {}, since {}), {} running, {} queued",
            d["pid"],
            d["started_at"].as_str().unwrap_or("?"),
            d["running"],
            d["queued"]
        ),
        Some(d) => println!(
            "daemon: not running (last status {})",
            d["updated_at"].as_str().unwrap_or("?")
        ),
        None => println!("daemon: not running"),
    }
    let live: Vec<serde_json::Value> = if alive {
        daemon_doc
            .as_ref()
            .and_then(|d| d["subscriptions"].as_array().cloned())
            .unwrap_or_default()
    } else {
        vec![]
    };
    let store = open_existing_store(&loaded.daemon.state_db)?;
    let mut ids: Vec<store::SubscriptionId> =
        loaded.subscriptions.iter().map(|s| s.id.clone()).collect();
    for l in &live {
        if let Some(id) = l["id"].as_str() {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.into());
            }
        }
    }
    ids.sort();
    println!(
        "{:<24} {:<16} {:<34} {:<21} note",
        "subscription", "last run", "", "next fire (UTC)"
    );
    for id in &ids {
        let last = match &store {
            Some(s) => s
                .list_runs(&RunFilter {
                    subscription: Some(id.clone()),
                    ..Default::default()
                })?
                .pop(),
            None => None,
        };
        let (state, when) = last
            .as_ref()
            .map(|r| {
                (
                    r.state.to_string(),
                    format!("scheduled {}", store::fmt_ts(r.scheduled_at)),
                )
            })
            .unwrap_or_else(|| ("-".into(), String::new()));
        let l = live.iter().find(|l| l["id"].as_str() == Some(id));
        let mut note = Vec::new();
        let next = match (l, loaded.subscription(id)) {
            (Some(l), _) => {
                if l["stale"].as_bool() == Some(true) {
                    note.push("file invalid: the daemon runs its last good version".to_string());
                }
                match l["state"].as_str() {
                    Some("running") => note.push("running".into()),
                    Some("queued") => note.push("queued (waiting for a free slot)".into()),
                    // A daemon from before `state` was written: busy is all it says.
                    None if l["busy"].as_bool() == Some(true) => note.push("running".into()),
                    _ => {}
                }
                l["next_fire"].as_str().unwrap_or("-").to_string()
            }
            (None, Some(s)) => {
                if alive {
                    note.push("not loaded by the running daemon (reload with SIGHUP)".into());
                }
                if !s.enabled {
                    note.push("disabled".into());
                }
                s.schedule
                    .next_after(now)
                    .filter(|_| s.enabled)
                    .map(store::fmt_ts)
                    .unwrap_or_else(|| "-".into())
            }
            (None, None) => "-".into(),
        };
        println!(
            "{id:<24} {state:<16} {when:<34} {next:<21} {}",
            note.join("; ")
        );
    }
    let mut attention = 0;
    if let Some(s) = &store {
        let runs = s.list_runs(&RunFilter {
            states: vec![RunState::NeedsAttention, RunState::Failed],
            ..Default::default()
        })?;
        if !runs.is_empty() {
            println!("\nruns needing an operator (`regdrop retry RUN` after fixing the cause):");
        }
        for r in &runs {
            if r.state == RunState::NeedsAttention {
                attention += 1;
            }
            println!(
                "  {:<40} {:<16} {}",
                r.id,
                r.state.as_str(),
                r.state_reason.as_deref().unwrap_or("")
            );
        }
    }
    if !loaded.problems.is_empty() {
        println!(
            "\ninvalid subscription files ({}):",
            loaded.failed_files.len()
        );
        for p in &loaded.problems {
            println!("  {p}");
        }
    }
    if attention > 0 {
        println!("\n{attention} run(s) need attention.");
    }
    Ok(ExitCode::SUCCESS)
}
