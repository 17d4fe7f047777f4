//! `regdrop deliver`, `regdrop probe` and `regdrop hostkey scan`: one delivery by hand and the checks of a customer's server.

use super::{load, open_store, parse_time, runtime, subscription};
use crate::pipeline::delivery::{self, Ctx, Observer, Outcome};
use crate::progress::Progress;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a delivery by hand runs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Manual {
    /// One attempt, no retries (`--no-retry`).
    pub no_retry: bool,
    /// `-q`: no progress lines, only the outcome and errors.
    pub quiet: bool,
}

/// Prints a delivery's progress for a person: stage lines above the bars (which show only
/// at a terminal, and only once there is something to count).
struct Terminal {
    rows: Progress,
    bytes: Progress,
    quiet: bool,
}

impl Terminal {
    fn line(&self, text: &str) {
        if !self.quiet {
            crate::progress::eprintln(text);
        }
    }
}

impl Observer for Terminal {
    fn stage(&self, run: &str, what: &str) {
        self.rows.finish();
        self.line(&format!("{run}: {what}"));
    }
    fn rows(&self, done: u64, total: u64) {
        self.rows.update(done, total)
    }
    fn bytes(&self, done: u64, total: u64) {
        self.bytes.update(done, total)
    }
    fn retry(&self, run: &str, attempt: u32, wait: Duration, error: &str) {
        self.rows.finish();
        self.bytes.finish();
        let at = chrono::Local::now()
            + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
        self.line(&format!(
            "{run}: attempt {attempt} failed: {error}\n{run}: retrying at {} (in {:.0} s) under the subscription's retry policy; Ctrl-C stops (the run resumes with `regdrop retry {run}`), `deliver --no-retry` makes one attempt",
            at.format("%H:%M:%S"),
            wait.as_secs_f64()
        ));
    }
}

pub(super) fn deliver(
    flag: Option<&Path>,
    id: &str,
    at: Option<&str>,
    how: Manual,
) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let mut sub = subscription(&loaded, id)?.clone();
    if how.no_retry {
        sub.retry.max_attempts = 1;
    }
    let at = parse_time(at)?;
    let store = open_store(&loaded)?;
    super::refuse_name_held_elsewhere(&loaded, &store)?;
    let rt = runtime()?;
    let ctx = Ctx {
        daemon: Arc::new(loaded.daemon.clone()),
        store: Arc::new(Mutex::new(store)),
        cancel: tokio_util::sync::CancellationToken::new(),
        xlsx_row_limit: None,
        sealing: Default::default(),
    };
    let obs = Terminal {
        rows: Progress::rows("extract"),
        bytes: Progress::bytes("upload"),
        quiet: how.quiet,
    };
    let outcome = rt.block_on(async {
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        delivery::deliver(&ctx, &sub, at, &obs).await
    });
    // Off the screen before the outcome is printed, on the error path too.
    obs.rows.finish();
    obs.bytes.finish();
    match outcome? {
        Outcome::Delivered(r) | Outcome::AlreadyDelivered(r) => {
            outln!(
                "delivered: {} ({} bytes, {} rows) to {}:{}",
                r.remote_path,
                r.bytes,
                r.rows,
                r.remote_host,
                r.remote_port
            );
            outln!(
                "receipt {} for run {}: sha256 {}, host key {}, {} attempt(s)",
                r.id,
                r.run_id,
                r.ciphertext_sha256,
                r.host_key_fingerprint,
                r.attempts
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::NeedsAttention { run, reason } => {
            eprintln!("run {run} needs attention: {reason}\nFix the cause, then run `regdrop deliver {id}` again (or `regdrop retry {run}`).");
            Ok(ExitCode::FAILURE)
        }
        Outcome::Failed { run, reason } if how.no_retry => {
            eprintln!("run {run} failed after its one attempt (--no-retry): {reason}\n`regdrop retry {run}` tries again under the retry policy.");
            Ok(ExitCode::FAILURE)
        }
        Outcome::Failed { run, reason } => {
            eprintln!("run {run} failed: {reason}\nThe artifact is kept; `regdrop retry {run}` tries again.");
            Ok(ExitCode::FAILURE)
        }
        Outcome::Interrupted { run } => {
            eprintln!("run {run} interrupted; it resumes with `regdrop retry {run}` or when the daemon starts.");
            Ok(ExitCode::from(130))
        }
        Outcome::Elsewhere { run, node } => {
            eprintln!("run {run} is being delivered by node {node} (it holds the run's lease); `regdrop status` shows it.");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Whether the probe found what deliveries need: a writable folder (or one `create_dirs`
/// makes), an identical read-back, a no-clobber commit that refuses a taken name, and a
/// commit path for the subscription's `if_exists`.
fn probe_ok(report: &crate::sftp::ProbeReport, if_exists: crate::core::config::IfExists) -> bool {
    let mut ok = !report.remote_dir_exists || report.writable;
    if let Some(t) = &report.test {
        ok &= t.read_back_ok && t.no_clobber_refuses != Some(false);
    }
    if report.commit_no_clobber.is_err() {
        ok &= if_exists == crate::core::config::IfExists::Overwrite;
    }
    ok
}

/// `probe --json`: one document (README "JSON output").
fn probe_json(
    sub: &crate::core::config::Subscription,
    t: &crate::core::config::TargetSpec,
    report: &crate::sftp::ProbeReport,
    ok: bool,
) -> serde_json::Value {
    use crate::core::config::IfExists;
    let p = &report.profile;
    let commit = |c: &crate::sftp::CommitPath| serde_json::json!({ "path": c.to_string(), "guarantee": c.guarantee() });
    serde_json::json!({
        "subscription": sub.id.as_str(),
        "checked_at": super::times::Time::new(chrono::Utc::now(), super::times::LocalZone::detect()),
        "host": t.host,
        "port": t.port,
        "host_key_sha256": report.host_key_sha256,
        "host_key_pinned": true,
        "server": {
            "banner": p.banner,
            "family": p.family.as_str(),
            "sftp_version": p.sftp_version,
        },
        "login": { "username": t.username, "ok": true },
        "folder": {
            "path": report.remote_dir,
            "exists": report.remote_dir_exists,
            "writable": report.writable,
        },
        "extensions": report.extensions.iter().cloned().collect::<std::collections::BTreeMap<String, String>>(),
        "limits": p.limits.map(|l| serde_json::json!({
            "packet_len": l.packet_len,
            "read_len": l.read_len,
            "write_len": l.write_len,
            "open_handles": l.open_handles,
        })),
        "test_upload": report.test.as_ref().map(|t| serde_json::json!({
            "bytes": t.bytes,
            "channels": t.channels,
            "parallel_failed": t.parallel_failed,
            "mib_per_s": t.mib_per_s,
            "read_back_ok": t.read_back_ok,
            "fsync": t.fsync,
            "mode": t.mode.map(|m| format!("{m:o}")),
            "rename_replaces": t.rename_replaces,
            "no_clobber_refuses": t.no_clobber_refuses,
        })),
        "strategy": {
            "channels": report.strategy.channels,
            "write_len": report.strategy.write_len,
            "in_flight": report.strategy.in_flight,
            "fsync": report.strategy.fsync,
        },
        "commit": {
            "no_clobber": match &report.commit_no_clobber {
                Ok(c) => commit(c),
                Err(why) => serde_json::json!({ "path": null, "error": why }),
            },
            "replace": commit(&report.commit_replace),
        },
        "if_exists": match sub.delivery.if_exists {
            IfExists::Fail => "fail",
            IfExists::Overwrite => "overwrite",
            IfExists::Version => "version",
        },
        "ok": ok,
    })
}

pub(super) fn probe(flag: Option<&Path>, id: &str, json: bool) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?;
    let Some(t) = sub.target() else {
        return Err(anyhow::anyhow!(
            "subscription {id} delivers by [email], not SFTP; probe checks SFTP targets only"
        ));
    };
    let target = delivery::target_of(&sub.id, t)?;
    let report = runtime()?.block_on(crate::sftp::probe(&target))?;
    let ok = probe_ok(&report, sub.delivery.if_exists);
    let code = if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&probe_json(sub, t, &report, ok))?
        );
        return Ok(code);
    }
    // Every server-provided string in the report is already cleaned (escapes, no control
    // characters), so it is safe on a terminal.
    let p = &report.profile;
    outln!(
        "host:        {}:{} (key {} pinned and matching)",
        t.host,
        t.port,
        report.host_key_sha256
    );
    outln!(
        "server:      {} (treated as {}, SFTP version {})",
        p.banner,
        p.family.as_str(),
        p.sftp_version
    );
    outln!("login:       {} ok", t.username);
    outln!(
        "folder:      {} {}",
        report.remote_dir,
        match (report.remote_dir_exists, report.writable) {
            (true, true) => "exists, writable",
            (true, false) => "exists, NOT writable",
            (false, _) => "missing (create_dirs = true will create it)",
        }
    );
    outln!(
        "extensions:  {}",
        report
            .extensions
            .iter()
            .map(|(n, v)| format!("{n} ({v})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(l) = p.limits {
        outln!(
            "limits:      packet {} / read {} / write {} / handles {} (0 = not stated)",
            l.packet_len,
            l.read_len,
            l.write_len,
            l.open_handles
        );
    }
    if let Some(t) = &report.test {
        outln!(
            "test upload: {} bytes on {} channel(s), {:.1} MiB/s, read back {}, fsync {}, mode {}",
            t.bytes,
            t.channels,
            t.mib_per_s,
            if t.read_back_ok {
                "identical"
            } else {
                "DIFFERENT"
            },
            if t.fsync { "done" } else { "not offered" },
            t.mode
                .map(|m| format!("{m:o}"))
                .unwrap_or_else(|| "not reported".into()),
        );
        if let Some(why) = &t.parallel_failed {
            outln!("             writes on several channels failed ({why}); deliveries use one");
        }
        outln!(
            "rename:      a plain rename onto an existing file {}",
            if t.rename_replaces {
                "REPLACES it"
            } else {
                "is refused"
            }
        );
        if let Some(refuses) = t.no_clobber_refuses {
            outln!(
                "no-clobber:  committing onto a taken name {}",
                if refuses {
                    "was refused, as it must be"
                } else {
                    "REPLACED the other file"
                }
            );
        }
    }
    let st = &report.strategy;
    outln!(
        "strategy:    {} channel(s), {} bytes per write, {} in flight per channel, fsync {}",
        st.channels,
        st.write_len,
        st.in_flight,
        if st.fsync { "yes" } else { "no" }
    );
    match &report.commit_no_clobber {
        Ok(c) => outln!("commit:      fail/version: {c} ({})", c.guarantee()),
        Err(why) => outln!("commit:      fail/version: NONE: {why}"),
    }
    outln!(
        "             overwrite: {} ({})",
        report.commit_replace,
        report.commit_replace.guarantee()
    );
    Ok(code)
}

/// Splits `HOST`, `HOST:PORT` or `[V6]:PORT`.
fn split_host_port(addr: &str) -> Result<(String, u16)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| anyhow!("`{addr}`: missing `]`"))?;
        let port = p
            .strip_prefix(':')
            .map(|p| p.parse())
            .transpose()?
            .unwrap_or(22);
        return Ok((h.to_string(), port));
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_string(),
            p.parse().with_context(|| format!("`{p}` is not a port"))?,
        )),
        _ => Ok((addr.to_string(), 22)),
    }
}

pub(super) fn hostkey_scan(addr: &str, timeout_secs: u64, json: bool) -> Result<ExitCode> {
    let (host, port) = split_host_port(addr)?;
    let keys = runtime()?.block_on(crate::sftp::scan_host_keys(
        &host,
        port,
        Duration::from_secs(timeout_secs),
    ))?;
    if keys.is_empty() {
        bail!(
            "{host}:{port} offered no host key regdrop can pin (ed25519, ECDSA or RSA); ask the customer which key types their server has"
        );
    }
    if json {
        let doc = serde_json::json!({
            "host": host,
            "port": port,
            "scanned_at": super::times::Time::new(chrono::Utc::now(), super::times::LocalZone::detect()),
            "keys": keys.iter().map(|k| serde_json::json!({
                "line": k.line,
                "type": k.line.split_whitespace().next().unwrap_or_default(),
                "fingerprint": k.fingerprint,
            })).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("# {host}:{port}: check these fingerprints with the customer before pinning them");
    for k in keys {
        outln!("# {}", k.fingerprint);
        outln!("{}", k.line);
    }
    Ok(ExitCode::SUCCESS)
}
