//! `regdrop next` (the fire times of one or all subscriptions) and `regdrop agenda` (one
//! list of upcoming fires across all subscriptions, sorted by time, with time left and the
//! last run's result, like `systemctl list-timers`). Both with `--json`.

use super::times::{left, rfc3339_in, LocalZone, Time};
use super::{load, parse_time, subscription, Exit, EXIT_USAGE};
use crate::core::config;
use crate::loader::Loaded;
use crate::store::{self, RunFilter};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// One fire time in a `--json` document.
#[derive(Debug, Serialize)]
struct Fire {
    #[serde(flatten)]
    at: Time,
    /// RFC 3339 in the subscription's own zone (`[schedule] timezone`).
    schedule_local: String,
}

fn fire(s: &config::Subscription, t: DateTime<Utc>, zone: LocalZone) -> Fire {
    Fire {
        at: Time::new(t, zone),
        schedule_local: rfc3339_in(t, &s.schedule.tz),
    }
}

#[derive(Debug, Serialize)]
struct NextDoc {
    after: Time,
    local_zone: String,
    subscriptions: Vec<NextSub>,
}

#[derive(Debug, Serialize)]
struct NextSub {
    id: String,
    schedule: String,
    timezone: String,
    enabled: bool,
    fires: Vec<Fire>,
}

pub(super) fn next(
    flag: Option<&Path>,
    sub: Option<&str>,
    count: usize,
    after: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let after = parse_time(after)?;
    let zone = LocalZone::detect();
    let subs: Vec<&config::Subscription> = match sub {
        Some(id) => vec![subscription(&loaded, id)?],
        None => loaded.subscriptions.iter().collect(),
    };
    if json {
        let doc = NextDoc {
            after: Time::new(after, zone),
            local_zone: zone.name(),
            subscriptions: subs
                .iter()
                .map(|s| NextSub {
                    id: s.id.to_string(),
                    schedule: s.schedule.line.clone(),
                    timezone: s.schedule.tz.name().to_string(),
                    enabled: s.enabled,
                    fires: s
                        .schedule
                        .upcoming(after, count)
                        .into_iter()
                        .map(|t| fire(s, t, zone))
                        .collect(),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    for s in subs {
        // The machine's local time too, when its zone is not the subscription's.
        let also_local = zone.name() != s.schedule.tz.name();
        println!(
            "{} ({}, {}{}):",
            s.id,
            s.schedule.line,
            s.schedule.tz,
            if s.enabled { "" } else { ", disabled" }
        );
        for t in s.schedule.upcoming(after, count) {
            let local = if also_local {
                format!("   local {}", zone.short(t))
            } else {
                String::new()
            };
            println!(
                "  {}   {}{local}",
                s.schedule.local(t).format("%Y-%m-%d %H:%M %Z"),
                t.format("%Y-%m-%dT%H:%M:%SZ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `regdrop agenda` is asked for.
pub struct AgendaArgs<'a> {
    /// List every fire within this span (default: each subscription's next fire).
    pub within: Option<&'a str>,
    /// At most this many lines.
    pub count: usize,
    pub after: Option<&'a str>,
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct AgendaDoc {
    after: Time,
    local_zone: String,
    /// The span asked for with `--within`, in seconds (null: each subscription's next fire).
    within_secs: Option<u64>,
    fires: Vec<AgendaFire>,
    /// More fires than `--count` lets through.
    truncated: bool,
    disabled: Vec<String>,
    invalid_files: Vec<String>,
}

#[derive(Debug, Serialize)]
struct AgendaFire {
    subscription: String,
    at: Time,
    schedule_local: String,
    timezone: String,
    /// Seconds from `after` to the fire.
    left_secs: i64,
    left: String,
    /// The start may come up to this many seconds after the fire time (`jitter_secs`).
    jitter_secs: u64,
    last_run: Option<LastRun>,
}

#[derive(Debug, Clone, Serialize)]
struct LastRun {
    id: String,
    state: String,
    scheduled_at: Time,
    resolved: bool,
}

fn last_runs(
    loaded: &Loaded,
    zone: LocalZone,
) -> Result<std::collections::HashMap<String, LastRun>> {
    let mut out = std::collections::HashMap::new();
    let Some(store) = super::open_existing_store(&loaded.daemon.state_db)? else {
        return Ok(out);
    };
    let resolved: std::collections::HashSet<_> =
        store.resolutions()?.into_iter().map(|r| r.run_id).collect();
    for s in &loaded.subscriptions {
        let last = store
            .list_runs(&RunFilter {
                subscription: Some(s.id.clone()),
                ..Default::default()
            })?
            .pop();
        if let Some(r) = last {
            out.insert(
                s.id.to_string(),
                LastRun {
                    resolved: resolved.contains(&r.id),
                    id: r.id.to_string(),
                    state: r.state.to_string(),
                    scheduled_at: Time::new(r.scheduled_at, zone),
                },
            );
        }
    }
    Ok(out)
}

pub(super) fn agenda(flag: Option<&Path>, args: &AgendaArgs<'_>) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let after = parse_time(args.after)?;
    let zone = LocalZone::detect();
    let within = args
        .within
        .map(|w| {
            humantime::parse_duration(w).map_err(|e| {
                anyhow::Error::new(Exit {
                    code: EXIT_USAGE,
                    message: format!("--within `{w}` is not a duration like 36h, 7d or 2w ({e})"),
                })
            })
        })
        .transpose()?;
    let until = within
        .map(|w| {
            chrono::Duration::from_std(w)
                .ok()
                .and_then(|w| after.checked_add_signed(w))
                .with_context(|| "--within is too long".to_string())
        })
        .transpose()?;
    let mut times: Vec<(DateTime<Utc>, &config::Subscription)> = Vec::new();
    let mut disabled = Vec::new();
    for s in &loaded.subscriptions {
        if !s.enabled {
            disabled.push(s.id.to_string());
            continue;
        }
        match until {
            None => times.extend(s.schedule.next_after(after).map(|t| (t, s))),
            Some(until) => {
                // At most --count (+1, to know there are more) per subscription: no more
                // can be listed, and `* * * * *` within 30 days would be 43,200 fires.
                let mut t = after;
                let mut n_sub = 0;
                while let Some(n) = s.schedule.next_after(t).filter(|n| *n <= until) {
                    times.push((n, s));
                    n_sub += 1;
                    if n_sub > args.count {
                        break;
                    }
                    t = n;
                }
            }
        }
    }
    times.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let total = times.len();
    times.truncate(args.count);
    let last = last_runs(&loaded, zone)?;
    let fires: Vec<AgendaFire> = times
        .iter()
        .map(|(t, s)| AgendaFire {
            subscription: s.id.to_string(),
            at: Time::new(*t, zone),
            schedule_local: rfc3339_in(*t, &s.schedule.tz),
            timezone: s.schedule.tz.name().to_string(),
            left_secs: (*t - after).num_seconds(),
            left: left(after, *t),
            jitter_secs: s.schedule.jitter_secs,
            last_run: last.get(s.id.as_str()).cloned(),
        })
        .collect();
    let mut invalid_files: Vec<String> = loaded
        .failed_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    invalid_files.dedup();
    let doc = AgendaDoc {
        after: Time::new(after, zone),
        local_zone: zone.name(),
        within_secs: within.map(|w| w.as_secs()),
        truncated: total > fires.len(),
        fires,
        disabled,
        invalid_files,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_agenda(&doc, zone);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_agenda(doc: &AgendaDoc, zone: LocalZone) {
    let local_head = format!("NEXT ({})", doc.local_zone);
    println!(
        "{local_head:<22} {:<12} {:<21} {:<24} {:<21} LAST RESULT",
        "LEFT", "NEXT (UTC)", "SUBSCRIPTION", "LAST RUN (UTC)"
    );
    for f in &doc.fires {
        let local = store::parse_ts(&f.at.utc)
            .map(|t| zone.short(t))
            .unwrap_or_default();
        let (last_at, result) = match &f.last_run {
            Some(l) if l.resolved => (
                l.scheduled_at.utc.clone(),
                format!("{} (resolved)", l.state),
            ),
            Some(l) => (l.scheduled_at.utc.clone(), l.state.clone()),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{local:<22} {:<12} {:<21} {:<24} {last_at:<21} {result}",
            f.left, f.at.utc, f.subscription
        );
    }
    println!("\n{} fire(s) listed.", doc.fires.len());
    if doc.truncated {
        println!("more not shown (raise --count).");
    }
    if !doc.disabled.is_empty() {
        println!("disabled, not listed: {}", doc.disabled.join(", "));
    }
    if !doc.invalid_files.is_empty() {
        println!(
            "invalid subscription files, not listed (`regdrop check`): {}",
            doc.invalid_files.join(", ")
        );
    }
}
