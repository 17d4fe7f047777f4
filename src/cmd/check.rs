//! `regdrop check` (every problem of the files, then what the next run needs of the machine)
//! and `regdrop fields`: what the configuration says (`next` is in [`super::agenda`]).

use super::EXIT_CONFIG;
use crate::cmd::cli::CheckArgs;
use crate::core::config::{self, validate::Problem};
use crate::loader::Located;
use crate::pipeline::preflight;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn check(flag: Option<&Path>, args: &CheckArgs) -> Result<ExitCode> {
    let config_path = crate::loader::default_path(flag);
    let o = outcome(&config_path, args);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&o.json(&config_path))?);
    } else {
        o.print(&config_path);
    }
    Ok(if o.config.is_empty() && o.environment.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CONFIG)
    })
}

/// What `check` found.
#[derive(Default)]
struct Outcome {
    config: Vec<Located>,
    environment: Vec<Located>,
    notes: Vec<String>,
    valid: usize,
    files: usize,
    /// The service user the environment was checked for, and how it was chosen.
    user: Option<(String, &'static str)>,
    environment_checked: bool,
}

fn outcome(config_path: &Path, args: &CheckArgs) -> Outcome {
    let mut o = Outcome::default();
    let loaded = match crate::loader::load(config_path) {
        Ok(l) => l,
        Err(crate::loader::FatalConfig(ps)) => {
            o.config = ps;
            return o;
        }
    };
    let mut own: Vec<config::Subscription> = Vec::new();
    if args.files.is_empty() {
        o.config.clone_from(&loaded.problems);
        o.files = loaded.subscriptions.len() + loaded.failed_files.len();
    } else {
        for f in &args.files {
            o.files += 1;
            match crate::loader::load_subscription_file(f, &loaded.daemon.inherited) {
                Ok((s, _)) => own.push(s),
                Err(ps) => o.config.extend(ps),
            }
        }
    }
    let subs: Vec<&config::Subscription> = if args.files.is_empty() {
        loaded.subscriptions.iter().collect()
    } else {
        own.iter().collect()
    };
    o.valid = subs.len();
    if args.no_environment {
        return o;
    }
    o.environment_checked = true;
    match preflight::ServiceUser::resolve(loaded.daemon.service_user.as_deref()) {
        Ok(user) => {
            let r = preflight::check(
                config_path,
                &loaded.daemon,
                &subs,
                &user,
                args.files.is_empty(),
            );
            o.environment = r.problems;
            o.notes = r.notes;
            o.notes.extend(node_name_note(&loaded.daemon));
            o.user = Some((user.name, user.chosen_by));
        }
        Err(e) => {
            let text = std::fs::read_to_string(config_path).unwrap_or_default();
            o.environment.push(crate::loader::locate(
                config_path,
                &text,
                Problem::new("daemon.user", e),
            ));
        }
    }
    o
}

/// A note when this configuration's node name is held by a live daemon on another machine
/// (or in another pid namespace of this one): a daemon started here would be refused.
fn node_name_note(daemon: &config::DaemonConfig) -> Option<String> {
    use crate::core::nodes::{decide, Decision, NodeState};
    let name = crate::pipeline::delivery::node_name(daemon).ok()?;
    let held = crate::store::peek_node(&daemon.state_db, &name).ok()??;
    let now = chrono::Utc::now();
    if held.state(now, daemon.lease) != NodeState::Alive {
        return None;
    }
    let me = crate::daemon::registry::this_instance();
    // This machine's own running daemon is what a live name usually is: not a problem.
    let alive_here = |pid, start| crate::daemon::registry::process_alive(pid, start);
    if decide(Some(&held), &me, now, daemon.lease, alive_here) != Decision::Refuse
        || (held.instance.host == me.host && held.instance.machine == me.machine)
    {
        return None;
    }
    Some(format!(
        "[daemon] node {name} is held by a running regdrop daemon on host {} (pid {}, last heartbeat {}): \
         a daemon started with this configuration is refused; give each node its own [daemon] node",
        held.instance.host,
        held.instance.pid,
        crate::store::fmt_ts(held.heartbeat_at)
    ))
}

impl Outcome {
    fn problems(&self) -> impl Iterator<Item = (&'static str, &Located)> {
        self.config
            .iter()
            .map(|p| ("config", p))
            .chain(self.environment.iter().map(|p| ("environment", p)))
    }

    fn files_with_problems(&self) -> usize {
        let files: std::collections::BTreeSet<&Path> =
            self.problems().map(|(_, p)| p.file.as_path()).collect();
        files.len()
    }

    fn print(&self, config_path: &Path) {
        for (_, p) in self.problems() {
            println!("{p}");
        }
        for n in &self.notes {
            println!("note: {n}");
        }
        let env = match (&self.user, self.environment_checked) {
            (Some((name, how)), _) => {
                format!("; environment checked for the service user `{name}` ({how})")
            }
            (None, true) => "; environment not checked".into(),
            (None, false) => "; environment not checked (--no-environment)".into(),
        };
        let n = self.config.len() + self.environment.len();
        if n == 0 {
            println!(
                "ok: {} ({} subscriptions valid{env})",
                config_path.display(),
                self.valid
            );
        } else {
            println!(
                "{n} problem(s) in {} file(s); {} subscription(s) valid{env}. Fix the lines above and run `regdrop check` again.",
                self.files_with_problems(),
                self.valid
            );
        }
    }

    /// The `--json` document (README "Checking the configuration" documents it).
    fn json(&self, config_path: &Path) -> serde_json::Value {
        let problems: Vec<serde_json::Value> = self
            .problems()
            .map(|(kind, p)| {
                let (message, hint) = match p.message.split_once("; ") {
                    Some((m, h)) => (m, Some(h)),
                    None => (p.message.as_str(), None),
                };
                serde_json::json!({
                    "kind": kind,
                    "file": p.file.display().to_string(),
                    "line": p.line,
                    "column": p.column,
                    "key": p.key,
                    "message": message,
                    "hint": hint,
                })
            })
            .collect();
        serde_json::json!({
            "config": config_path.display().to_string(),
            "ok": problems.is_empty(),
            "problems": problems,
            "notes": self.notes,
            "environment": {
                "checked": self.environment_checked,
                "service_user": self.user.as_ref().map(|u| &u.0),
                "chosen_by": self.user.as_ref().map(|u| u.1),
            },
            "summary": {
                "subscription_files": self.files,
                "subscriptions_valid": self.valid,
                "files_with_problems": self.files_with_problems(),
                "config_problems": self.config.len(),
                "environment_problems": self.environment.len(),
            },
        })
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
