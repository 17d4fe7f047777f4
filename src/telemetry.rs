//! Metrics in one place: the names, labels and buckets of every Prometheus series regdrop
//! exports, and the loopback HTTP endpoint that serves them (`daemon.metrics_listen`).
//!
//! Series (all prefixed `regdrop_`):
//! - `deliveries_total{subscription,outcome}` — runs that ended, by outcome
//!   (`delivered`, `already_delivered`, `needs_attention`, `failed`, `interrupted`, `error`);
//! - `delivered_bytes_total{subscription}`, `delivered_rows_total{subscription}` — what
//!   went out (ciphertext bytes);
//! - `run_duration_seconds` — histogram of a run's wall time, queue wait excluded;
//! - `retries_total{subscription}` — failed attempts that were retried;
//! - `queue_depth` — runs waiting for a free slot (global or per-host limit);
//! - `runs_needing_attention` — runs in `needs_attention` in the store that no operator
//!   closed with `regdrop resolve`; recomputed from the store at start,
//!   when a run ends and at every wake-up of the daemon (SIGUSR1 wakes it: `resolve` sends it);
//! - `subscription_files_invalid` — subscription files that failed validation at the last
//!   load (start or SIGHUP reload);
//! - `last_success_timestamp_seconds{subscription}` — Unix time of the last receipt, set at
//!   start from the store too, so `time() - regdrop_last_success_timestamp_seconds > X`
//!   catches a subscription that silently stopped, across restarts;
//! - `shared_scans_total` — register scans shared by several runs (one query, docs/design.md
//!   §4 "Shared scans"); `shared_scan_runs_total` — the runs sealed by them;
//!   `shared_scan_streamed_total` — the runs of them whose upload started while their
//!   scan sealed (it followed the growing spool file);
//! - `state_db_up` — 1 while the daemon's state store answers, 0 while it cannot be reached
//!   (a PostgreSQL server down, restarting or failing over): set when the daemon starts,
//!   while it waits for the store, and at every wake-up;
//! - `build_info{version,commit}` — always 1, the labels say what runs.
//!
//! Beside them the standard process series of the Prometheus client libraries, without a
//! prefix (`process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`, `process_threads`, ...), from the
//! `metrics-process` collector, refreshed every [`PROCESS_EVERY`].
//!
//! Recording goes through the `metrics` facade: without an installed exporter (tests, CLI
//! commands) every call is a no-op.

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::net::SocketAddr;

/// How often the process series are read from /proc.
pub const PROCESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Run-duration buckets in seconds: from small extracts to multi-hour retried runs.
pub const DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

#[derive(Debug, thiserror::Error)]
#[error("cannot start the metrics endpoint on {addr}: {message}")]
pub struct TelemetryError {
    pub addr: SocketAddr,
    pub message: String,
}

static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the global recorder and returns the HTTP listener's future (serve it on the
/// runtime; it ends only with an error). Only the first call in a process installs; later
/// ones (a second daemon run in the same process) return `None` and keep the first endpoint.
pub fn install(
    addr: SocketAddr,
) -> Result<Option<impl std::future::Future<Output = ()> + Send>, TelemetryError> {
    if INSTALLED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(None);
    }
    let err = |e: &dyn std::fmt::Display| TelemetryError {
        addr,
        message: e.to_string(),
    };
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("regdrop_run_duration_seconds".into()),
            &DURATION_BUCKETS,
        )
        .map_err(|e| err(&e))?
        .build()
        .map_err(|e| err(&e))?;
    metrics::set_global_recorder(recorder).map_err(|e| err(&e))?;
    describe();
    gauge!("regdrop_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => env!("REGDROP_COMMIT")).set(1.0);
    let process = metrics_process::Collector::default();
    process.describe();
    process.collect();
    Ok(Some(async move {
        let mut tick = tokio::time::interval(PROCESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let refresh = async {
            loop {
                tick.tick().await;
                process.collect();
            }
        };
        tokio::select! {
            // The exporter's error type has no Display; its Debug names the failure.
            r = exporter => if let Err(e) = r {
                tracing::error!(error = %format!("{e:?}"), "Metrics endpoint stopped.");
            },
            () = refresh => {}
        }
    }))
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "regdrop_deliveries_total",
        "Runs that ended, by subscription and outcome."
    );
    describe_counter!(
        "regdrop_delivered_bytes_total",
        Unit::Bytes,
        "Ciphertext bytes delivered, by subscription."
    );
    describe_counter!(
        "regdrop_delivered_rows_total",
        "Rows delivered, by subscription."
    );
    describe_gauge!(
        "regdrop_build_info",
        "Always 1; the labels name the version and git commit running."
    );
    describe_histogram!(
        "regdrop_run_duration_seconds",
        Unit::Seconds,
        "Wall time of a run, queue wait excluded."
    );
    describe_counter!(
        "regdrop_retries_total",
        "Failed delivery attempts that were retried."
    );
    describe_gauge!("regdrop_queue_depth", "Runs waiting for a free slot.");
    describe_gauge!(
        "regdrop_runs_needing_attention",
        "Runs in needs_attention that no operator resolved."
    );
    describe_gauge!(
        "regdrop_subscription_files_invalid",
        "Subscription files that failed validation at the last load or reload."
    );
    describe_gauge!(
        "regdrop_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last receipt."
    );
    describe_gauge!(
        "regdrop_state_db_up",
        "1 while the state store answers, 0 while the daemon cannot reach it."
    );
    describe_counter!(
        "regdrop_shared_scans_total",
        "Register scans shared by several runs with the same query."
    );
    describe_counter!(
        "regdrop_shared_scan_runs_total",
        "Runs whose artifact was sealed from a shared scan."
    );
    describe_counter!(
        "regdrop_shared_scan_streamed_total",
        "Runs of shared scans whose upload started while their scan sealed."
    );
    describe_counter!(
        "regdrop_notifications_sent_total",
        "Notifications sent (operator alerts, customer notices), by channel."
    );
    describe_counter!(
        "regdrop_notifications_failed_total",
        "Failed tries of a notification (each retry counts), by channel."
    );
}

/// A run ended with `outcome`; `bytes`/`rows` are what it delivered now (0 otherwise).
pub fn run_ended(subscription: &str, outcome: &'static str, bytes: u64, rows: u64, seconds: f64) {
    counter!("regdrop_deliveries_total", "subscription" => subscription.to_string(), "outcome" => outcome).increment(1);
    if bytes > 0 || rows > 0 {
        counter!("regdrop_delivered_bytes_total", "subscription" => subscription.to_string())
            .increment(bytes);
        counter!("regdrop_delivered_rows_total", "subscription" => subscription.to_string())
            .increment(rows);
    }
    histogram!("regdrop_run_duration_seconds").record(seconds);
}

/// A shared scan sealed `runs` artifacts.
pub fn shared_scan(runs: usize) {
    counter!("regdrop_shared_scans_total").increment(1);
    counter!("regdrop_shared_scan_runs_total").increment(runs as u64);
}

/// A shared scan's run started its upload while the scan sealed.
pub fn shared_scan_streamed() {
    counter!("regdrop_shared_scan_streamed_total").increment(1);
}

pub fn retried(subscription: &str) {
    counter!("regdrop_retries_total", "subscription" => subscription.to_string()).increment(1);
}

pub fn queue_depth(n: usize) {
    gauge!("regdrop_queue_depth").set(n as f64);
}

pub fn needing_attention(n: usize) {
    gauge!("regdrop_runs_needing_attention").set(n as f64);
}

/// Whether the state store answered the daemon's last call to it.
pub fn state_db_up(up: bool) {
    gauge!("regdrop_state_db_up").set(if up { 1.0 } else { 0.0 });
}

pub fn subscription_files_invalid(n: usize) {
    gauge!("regdrop_subscription_files_invalid").set(n as f64);
}

pub fn last_success(subscription: &str, unix_secs: i64) {
    gauge!("regdrop_last_success_timestamp_seconds", "subscription" => subscription.to_string())
        .set(unix_secs as f64);
}
