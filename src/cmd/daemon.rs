//! The daemon's commands: `regdrop run` and `regdrop retry RUN` (`status` is in
//! [`super::status`], `resolve` in [`super::resolve`]).

use super::{runtime, Exit, EXIT_CONFIG};
use crate::daemon::DaemonError;
use crate::pipeline::delivery::{self, Ctx, Observer, Outcome};
use crate::store::{self, RunState};
use anyhow::{bail, Result};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `regdrop run`: the daemon until SIGTERM/SIGINT. An invalid daemon config exits 78, and
/// so does a node name another live daemon holds; invalid subscription files are logged
/// and skipped. A daemon whose name was taken while it ran exits 1 (systemd restarts it
/// into the start-time check).
pub fn run(flag: Option<&Path>) -> Result<ExitCode> {
    let path = crate::loader::default_path(flag);
    match runtime()?.block_on(crate::daemon::run(path, std::future::pending())) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(DaemonError::Config(e)) => Err(anyhow::Error::new(Exit {
            code: EXIT_CONFIG,
            message: e.to_string(),
        })),
        // Another live daemon has this node's name: a configuration that cannot run until
        // an operator acts, so systemd does not restart it (RestartPreventExitStatus=78).
        Err(e @ (DaemonError::NodeInUse(_) | DaemonError::NodeName(_))) => {
            Err(anyhow::Error::new(Exit {
                code: EXIT_CONFIG,
                message: e.to_string(),
            }))
        }
        Err(e) => Err(e.into()),
    }
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
    let Some(store) = super::open_existing_store(&loaded.daemon.state_db)? else {
        bail!(
            "no state store at {}: nothing has run yet",
            loaded.daemon.state_db
        );
    };
    crate::cmd::refuse_name_held_elsewhere(&loaded, &store)?;
    let Some(run) = store.get_run(&store::RunId::from(run_id))? else {
        bail!(
            "no run `{run_id}` in {}; `regdrop status` lists the runs needing attention",
            loaded.daemon.state_db
        );
    };
    if let Some(r) = store.resolution(&run.id)? {
        bail!(
            "{run_id} was resolved by an operator ({}); a resolved run is closed and not retried. \
             For a new delivery of {}, run `regdrop deliver {}`",
            r.describe(),
            run.subscription,
            run.subscription
        );
    }
    match run.state {
        RunState::NeedsAttention | RunState::Failed => {}
        RunState::Delivered => {
            outln!("{run_id} was delivered already; nothing to do.");
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
        sealing: Default::default(),
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
            outln!(
                "delivered: {} ({} bytes, {} rows), receipt {}",
                r.remote_path,
                r.bytes,
                r.rows,
                r.id
            );
            ExitCode::SUCCESS
        }
        Outcome::NeedsAttention { reason, .. } => {
            outln!("needs attention again: {reason}");
            ExitCode::FAILURE
        }
        Outcome::Failed { reason, .. } => {
            outln!("failed: {reason}");
            ExitCode::FAILURE
        }
        Outcome::Interrupted { .. } => {
            outln!("interrupted; `regdrop retry {run_id}` goes on from here");
            ExitCode::FAILURE
        }
        Outcome::Elsewhere { node, .. } => {
            outln!("node {node} is delivering this run now (it holds its lease); `regdrop status` shows it");
            ExitCode::FAILURE
        }
    })
}
