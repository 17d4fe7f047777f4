//! `regdrop status [--json]`: every subscription with its last run and next fire, the runs
//! waiting for an operator, the runs operators resolved lately, the invalid subscription
//! files, and what the running daemon reports. Exits 0 when nothing needs anyone,
//! [`EXIT_ATTENTION`] / [`EXIT_INVALID_FILES`] / [`EXIT_BOTH`] otherwise.

use super::times::{LocalZone, Time};
use crate::loader::Loaded;
use crate::store::{self, RunFilter, RunState};
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// `status` exit code: runs in `needs_attention` that no operator resolved.
pub const EXIT_ATTENTION: u8 = 3;
/// `status` exit code: subscription files that fail validation.
pub const EXIT_INVALID_FILES: u8 = 4;
/// `status` exit code: both of the above.
pub const EXIT_BOTH: u8 = 5;
/// How far back `status` lists resolved runs.
pub const RESOLVED_DAYS: i64 = 30;

#[derive(Debug, Serialize)]
struct Report {
    generated_at: Time,
    local_zone: String,
    daemon: DaemonInfo,
    subscriptions: Vec<SubRow>,
    /// Unresolved runs in `needs_attention` or `failed`.
    runs_needing_operator: Vec<WaitingRun>,
    /// Unresolved `needs_attention` runs (what the gauge counts; `failed` runs not included).
    needs_attention: usize,
    resolved_recently: Vec<ResolvedRun>,
    invalid_files: Vec<InvalidFile>,
    /// This node's name (`[daemon] node`, else the host name).
    node: Option<String>,
    /// Active runs with the node holding (or last holding) each one's lease.
    active_runs: Vec<ActiveRun>,
    /// The node registry: every name a daemon registered on this store.
    nodes: Vec<NodeRow>,
    exit_code: u8,
}

#[derive(Debug, Serialize)]
struct NodeRow {
    name: String,
    host: String,
    pid: u32,
    started_at: Time,
    heartbeat_at: Time,
    /// `alive` (heartbeat within `lease_secs`), `stale` or `stopped`.
    state: crate::core::nodes::NodeState,
    /// This configuration's node name.
    this_node: bool,
}

#[derive(Debug, Serialize)]
struct ActiveRun {
    id: String,
    state: String,
    /// The node holding the lease (`lease_live`), or the last one that did.
    node: Option<String>,
    lease_until: Option<Time>,
    lease_live: bool,
    heartbeat_at: Option<Time>,
    /// The node whose spool holds the sealed artifact.
    sealed_by: Option<String>,
}

#[derive(Debug, Serialize)]
struct DaemonInfo {
    running: bool,
    pid: Option<u64>,
    started_at: Option<Time>,
    updated_at: Option<Time>,
    running_runs: Option<u64>,
    queued_runs: Option<u64>,
}

#[derive(Debug, Serialize)]
struct SubRow {
    id: String,
    last_run: Option<LastRun>,
    next_fire: Option<Time>,
    /// `idle`, `running`, `queued`, or `unknown` (no daemon running).
    activity: &'static str,
    enabled: Option<bool>,
    /// Its file fails validation (the running daemon may keep its last good version).
    file_invalid: bool,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct LastRun {
    id: String,
    state: String,
    scheduled_at: Time,
    resolved: bool,
}

#[derive(Debug, Serialize)]
struct WaitingRun {
    id: String,
    subscription: String,
    state: String,
    reason: Option<String>,
    scheduled_at: Time,
    updated_at: Time,
}

#[derive(Debug, Serialize)]
struct ResolvedRun {
    id: String,
    subscription: Option<String>,
    /// The state it was resolved in.
    state: String,
    resolved_at: Time,
    os_user: String,
    resolved_by: Option<String>,
    reason: String,
}

#[derive(Debug, Serialize)]
struct InvalidFile {
    file: String,
    problems: Vec<Problem>,
}

#[derive(Debug, Serialize)]
struct Problem {
    line: usize,
    column: usize,
    key: String,
    message: String,
}

/// The exit code for `attention` unresolved runs and `invalid` bad files.
pub fn exit_code(attention: usize, invalid: usize) -> u8 {
    match (attention > 0, invalid > 0) {
        (false, false) => 0,
        (true, false) => EXIT_ATTENTION,
        (false, true) => EXIT_INVALID_FILES,
        (true, true) => EXIT_BOTH,
    }
}

pub fn status(flag: Option<&Path>, json: bool) -> Result<ExitCode> {
    let loaded = crate::cmd::load(flag)?;
    let zone = LocalZone::detect();
    let report = build(&loaded, Utc::now(), zone)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report, zone);
    }
    Ok(ExitCode::from(report.exit_code))
}

fn daemon_doc(loaded: &Loaded) -> (Option<serde_json::Value>, bool) {
    let status_path = crate::daemon::status_file(&loaded.daemon);
    let doc: Option<serde_json::Value> = std::fs::read(&status_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let alive = doc
        .as_ref()
        .filter(|d| d["stopped"].as_bool() != Some(true))
        .and_then(|d| d["pid"].as_u64())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
    (doc, alive)
}

fn doc_time(v: &serde_json::Value, zone: LocalZone) -> Option<Time> {
    v.as_str()
        .and_then(|s| store::parse_ts(s).ok())
        .map(|t| Time::new(t, zone))
}

#[allow(clippy::too_many_lines)] // one pass over the subscriptions, building each row
fn build(loaded: &Loaded, now: DateTime<Utc>, zone: LocalZone) -> Result<Report> {
    let (doc, alive) = daemon_doc(loaded);
    let daemon = DaemonInfo {
        running: alive,
        pid: doc.as_ref().and_then(|d| d["pid"].as_u64()),
        started_at: doc.as_ref().and_then(|d| doc_time(&d["started_at"], zone)),
        updated_at: doc.as_ref().and_then(|d| doc_time(&d["updated_at"], zone)),
        running_runs: doc
            .as_ref()
            .filter(|_| alive)
            .and_then(|d| d["running"].as_u64()),
        queued_runs: doc
            .as_ref()
            .filter(|_| alive)
            .and_then(|d| d["queued"].as_u64()),
    };
    let live: Vec<serde_json::Value> = if alive {
        doc.as_ref()
            .and_then(|d| d["subscriptions"].as_array().cloned())
            .unwrap_or_default()
    } else {
        vec![]
    };
    let store = super::open_existing_store(&loaded.daemon.state_db)?;
    let resolutions = match &store {
        Some(s) => s.resolutions()?,
        None => vec![],
    };
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
    let mut subscriptions = Vec::new();
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
        let last_run = last.map(|r| LastRun {
            resolved: resolutions.iter().any(|x| x.run_id == r.id),
            id: r.id.to_string(),
            state: r.state.to_string(),
            scheduled_at: Time::new(r.scheduled_at, zone),
        });
        let l = live.iter().find(|l| l["id"].as_str() == Some(id));
        let sub = loaded.subscription(id);
        let mut notes = Vec::new();
        let mut file_invalid = false;
        let mut activity = if alive { "idle" } else { "unknown" };
        let next_fire = match (l, sub) {
            (Some(l), _) => {
                if l["stale"].as_bool() == Some(true) {
                    file_invalid = true;
                    notes.push("file invalid: the daemon runs its last good version".to_string());
                }
                match l["state"].as_str() {
                    Some("running") => activity = "running",
                    Some("queued") => activity = "queued",
                    // A daemon from before `state` was written: busy is all it says.
                    None if l["busy"].as_bool() == Some(true) => activity = "running",
                    _ => {}
                }
                match activity {
                    "running" => notes.push("running".into()),
                    "queued" => notes.push("queued (waiting for a free slot)".into()),
                    _ => {}
                }
                doc_time(&l["next_fire"], zone)
            }
            (None, Some(s)) => {
                if alive {
                    notes.push("not loaded by the running daemon (reload with SIGHUP)".into());
                }
                if !s.enabled {
                    notes.push("disabled".into());
                }
                s.schedule
                    .next_after(now)
                    .filter(|_| s.enabled)
                    .map(|t| Time::new(t, zone))
            }
            (None, None) => None,
        };
        if let Some(r) = last_run.as_ref().filter(|r| r.resolved) {
            notes.push(format!("last run {} resolved by an operator", r.id));
        }
        subscriptions.push(SubRow {
            id: id.to_string(),
            last_run,
            next_fire,
            activity,
            enabled: sub.map(|s| s.enabled),
            file_invalid,
            notes,
        });
    }
    let mut runs_needing_operator = Vec::new();
    let mut needs_attention = 0;
    if let Some(s) = &store {
        for r in s.unresolved_runs(&[RunState::NeedsAttention, RunState::Failed])? {
            if r.state == RunState::NeedsAttention {
                needs_attention += 1;
            }
            runs_needing_operator.push(WaitingRun {
                id: r.id.to_string(),
                subscription: r.subscription.to_string(),
                state: r.state.to_string(),
                reason: r.state_reason,
                scheduled_at: Time::new(r.scheduled_at, zone),
                updated_at: Time::new(r.updated_at, zone),
            });
        }
    }
    let since = now - chrono::Duration::days(RESOLVED_DAYS);
    let mut resolved_recently = Vec::new();
    for x in resolutions.into_iter().filter(|x| x.resolved_at >= since) {
        let subscription = match &store {
            Some(s) => s.get_run(&x.run_id)?.map(|r| r.subscription.to_string()),
            None => None,
        };
        resolved_recently.push(ResolvedRun {
            id: x.run_id.to_string(),
            subscription,
            state: x.state.to_string(),
            resolved_at: Time::new(x.resolved_at, zone),
            os_user: x.os_user,
            resolved_by: x.resolved_by,
            reason: x.reason,
        });
    }
    let mut invalid_files: Vec<InvalidFile> = Vec::new();
    for p in &loaded.problems {
        let file = p.file.display().to_string();
        let problem = Problem {
            line: p.line,
            column: p.column,
            key: p.key.clone(),
            message: p.message.clone(),
        };
        match invalid_files.iter_mut().find(|f| f.file == file) {
            Some(f) => f.problems.push(problem),
            None => invalid_files.push(InvalidFile {
                file,
                problems: vec![problem],
            }),
        }
    }
    let mut active_runs = Vec::new();
    if let Some(s) = &store {
        for l in s.active_leases()? {
            active_runs.push(ActiveRun {
                id: l.run.to_string(),
                state: l.state.to_string(),
                lease_live: l.live_at(now),
                node: l.node,
                lease_until: l.until.map(|t| Time::new(t, zone)),
                heartbeat_at: l.heartbeat_at.map(|t| Time::new(t, zone)),
                sealed_by: l.sealed_by,
            });
        }
    }
    let node = crate::pipeline::delivery::node_name(&loaded.daemon).ok();
    let mut nodes = Vec::new();
    if let Some(s) = &store {
        for n in s.nodes()? {
            nodes.push(NodeRow {
                state: n.state(now, loaded.daemon.lease),
                this_node: node.as_deref() == Some(n.name.as_str()),
                host: n.instance.host,
                pid: n.instance.pid,
                started_at: Time::new(n.started_at, zone),
                heartbeat_at: Time::new(n.heartbeat_at, zone),
                name: n.name,
            });
        }
    }
    let exit_code = exit_code(needs_attention, invalid_files.len());
    Ok(Report {
        node,
        active_runs,
        nodes,
        generated_at: Time::new(now, zone),
        local_zone: zone.name(),
        daemon,
        subscriptions,
        runs_needing_operator,
        needs_attention,
        resolved_recently,
        invalid_files,
        exit_code,
    })
}

/// `2026-12-02 06:00 CET` from a report time.
fn short(t: &Time, zone: LocalZone) -> String {
    store::parse_ts(&t.utc)
        .map(|u| zone.short(u))
        .unwrap_or_default()
}

fn print_text(r: &Report, zone: LocalZone) {
    let d = &r.daemon;
    let at = |t: &Option<Time>| {
        t.as_ref()
            .map(|t| format!("{} ({})", t.utc, short(t, zone)))
            .unwrap_or_else(|| "?".into())
    };
    if d.running {
        println!(
            "daemon: running (pid {}, since {}), {} running, {} queued",
            d.pid.unwrap_or(0),
            at(&d.started_at),
            d.running_runs.unwrap_or(0),
            d.queued_runs.unwrap_or(0)
        );
    } else if d.pid.is_some() {
        println!("daemon: not running (last status {})", at(&d.updated_at));
    } else {
        println!("daemon: not running");
    }
    println!(
        "{:<24} {:<16} {:<34} {:<21} {:<22} note",
        "subscription",
        "last run",
        "",
        "next fire (UTC)",
        format!("(local, {})", r.local_zone)
    );
    for s in &r.subscriptions {
        let (state, when) = match &s.last_run {
            Some(l) if l.resolved => (
                "resolved".to_string(),
                format!("scheduled {}", l.scheduled_at.utc),
            ),
            Some(l) => (l.state.clone(), format!("scheduled {}", l.scheduled_at.utc)),
            None => ("-".into(), String::new()),
        };
        let (next, local) = match &s.next_fire {
            Some(t) => (t.utc.clone(), short(t, zone)),
            None => ("-".into(), String::new()),
        };
        println!(
            "{:<24} {state:<16} {when:<34} {next:<21} {local:<22} {}",
            s.id,
            s.notes.join("; ")
        );
    }
    if !r.active_runs.is_empty() {
        println!(
            "\nactive runs (this node: {}):",
            r.node.as_deref().unwrap_or("?")
        );
        for a in &r.active_runs {
            let lease = match (&a.node, &a.lease_until) {
                (Some(n), Some(u)) if a.lease_live => format!("lease held by {n} until {}", u.utc),
                (Some(n), Some(u)) => format!("lease of {n} expired {} (to be taken over)", u.utc),
                (Some(n), None) => format!("no lease (last held by {n})"),
                _ => "no lease".to_string(),
            };
            let sealed = a
                .sealed_by
                .as_ref()
                .map(|n| format!("; artifact in {n}'s spool"))
                .unwrap_or_default();
            println!("  {:<40} {:<10} {lease}{sealed}", a.id, a.state);
        }
    }
    if !r.nodes.is_empty() {
        println!("\nnodes (lease_secs without a heartbeat: stale):");
        for n in &r.nodes {
            let this = if n.this_node { " (this node)" } else { "" };
            println!(
                "  {:<24} {:<8} host {} pid {}, started {}, last heartbeat {}{this}",
                n.name,
                n.state.to_string(),
                n.host,
                n.pid,
                n.started_at.utc,
                n.heartbeat_at.utc
            );
        }
    }
    if !r.runs_needing_operator.is_empty() {
        println!("\nruns needing an operator (`regdrop retry RUN` after fixing the cause, or `regdrop resolve RUN --reason \"...\"`):");
        for w in &r.runs_needing_operator {
            println!(
                "  {:<40} {:<16} {}",
                w.id,
                w.state,
                w.reason.as_deref().unwrap_or("")
            );
        }
    }
    if !r.resolved_recently.is_empty() {
        println!("\nresolved runs (last {RESOLVED_DAYS} days):");
        for x in &r.resolved_recently {
            let by = match &x.resolved_by {
                Some(n) => format!("{n} (as {})", x.os_user),
                None => x.os_user.clone(),
            };
            println!(
                "  {:<40} resolved (was {}) {} by {by}: {}",
                x.id, x.state, x.resolved_at.utc, x.reason
            );
        }
    }
    if !r.invalid_files.is_empty() {
        println!("\ninvalid subscription files ({}):", r.invalid_files.len());
        for f in &r.invalid_files {
            for p in &f.problems {
                let key = if p.key.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", p.key)
                };
                println!("  {}:{}:{}: {key}{}", f.file, p.line, p.column, p.message);
            }
        }
    }
    if r.needs_attention > 0 {
        println!("\n{} run(s) need attention.", r.needs_attention);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_say_what_needs_an_operator() {
        assert_eq!(exit_code(0, 0), 0);
        assert_eq!(exit_code(2, 0), EXIT_ATTENTION);
        assert_eq!(exit_code(0, 1), EXIT_INVALID_FILES);
        assert_eq!(exit_code(1, 3), EXIT_BOTH);
        // Distinct from 1 (failure), 2 (usage) and 78 (config).
        assert!([EXIT_ATTENTION, EXIT_INVALID_FILES, EXIT_BOTH]
            .iter()
            .all(|c| ![1, 2, 78].contains(c)));
    }
}
