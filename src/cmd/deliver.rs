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
    let rt = runtime()?;
    let ctx = Ctx {
        daemon: Arc::new(loaded.daemon.clone()),
        store: Arc::new(Mutex::new(store)),
        cancel: tokio_util::sync::CancellationToken::new(),
        xlsx_row_limit: None,
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
            println!(
                "delivered: {} ({} bytes, {} rows) to {}:{}",
                r.remote_path, r.bytes, r.rows, r.remote_host, r.remote_port
            );
            println!(
                "receipt {} for run {}: sha256 {}, host key {}, {} attempt(s)",
                r.id, r.run_id, r.ciphertext_sha256, r.host_key_fingerprint, r.attempts
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
    }
}

pub(super) fn probe(flag: Option<&Path>, id: &str) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?;
    let target = delivery::target_of(&sub.id, &sub.target)?;
    let report = runtime()?.block_on(crate::sftp::probe(&target))?;
    // Every server-provided string in the report is already cleaned (escapes, no control
    // characters), so it is safe on a terminal.
    let p = &report.profile;
    println!(
        "host:        {}:{} (key {} pinned and matching)",
        sub.target.host, sub.target.port, report.host_key_sha256
    );
    println!(
        "server:      {} (treated as {}, SFTP version {})",
        p.banner,
        p.family.as_str(),
        p.sftp_version
    );
    println!("login:       {} ok", sub.target.username);
    println!(
        "folder:      {} {}",
        report.remote_dir,
        match (report.remote_dir_exists, report.writable) {
            (true, true) => "exists, writable",
            (true, false) => "exists, NOT writable",
            (false, _) => "missing (create_dirs = true will create it)",
        }
    );
    println!(
        "extensions:  {}",
        report
            .extensions
            .iter()
            .map(|(n, v)| format!("{n} ({v})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(l) = p.limits {
        println!(
            "limits:      packet {} / read {} / write {} / handles {} (0 = not stated)",
            l.packet_len, l.read_len, l.write_len, l.open_handles
        );
    }
    let mut ok = !report.remote_dir_exists || report.writable;
    if let Some(t) = &report.test {
        println!(
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
            println!("             writes on several channels failed ({why}); deliveries use one");
        }
        println!(
            "rename:      a plain rename onto an existing file {}",
            if t.rename_replaces {
                "REPLACES it"
            } else {
                "is refused"
            }
        );
        if let Some(refuses) = t.no_clobber_refuses {
            println!(
                "no-clobber:  committing onto a taken name {}",
                if refuses {
                    "was refused, as it must be"
                } else {
                    "REPLACED the other file"
                }
            );
            ok &= refuses;
        }
        ok &= t.read_back_ok;
    }
    let st = &report.strategy;
    println!(
        "strategy:    {} channel(s), {} bytes per write, {} in flight per channel, fsync {}",
        st.channels,
        st.write_len,
        st.in_flight,
        if st.fsync { "yes" } else { "no" }
    );
    let wanted = sub.delivery.if_exists;
    match &report.commit_no_clobber {
        Ok(c) => println!("commit:      fail/version: {c} ({})", c.guarantee()),
        Err(why) => {
            println!("commit:      fail/version: NONE: {why}");
            ok &= wanted == crate::core::config::IfExists::Overwrite;
        }
    }
    println!(
        "             overwrite: {} ({})",
        report.commit_replace,
        report.commit_replace.guarantee()
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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

pub(super) fn hostkey_scan(addr: &str, timeout_secs: u64) -> Result<ExitCode> {
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
    println!("# {host}:{port}: check these fingerprints with the customer before pinning them");
    for k in keys {
        println!("# {}", k.fingerprint);
        println!("{}", k.line);
    }
    Ok(ExitCode::SUCCESS)
}
