//! The daemon with real deliveries against a real OpenSSH sshd ([`crate::util::sshd`]):
//! a server that is down and then comes up gets the file after retries; a wrong pinned host
//! key puts the run in `needs_attention` after one connection (no retry storm), and
//! `regdrop retry RUN` delivers it once the operator fixed the key.

use crate::util::daemon_env::{self, fast_retry, sshd_sub, sub_toml, wait_for, Env, WRONG_KEY};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::ls;
use crate::util::free_port;
use crate::util::sshd::Sshd;
use chrono::Utc;
use regdrop::daemon::Options;
use regdrop::store::{ReceiptFilter, RunState};
use std::process::Command;
use std::time::Duration;

/// Starts the daemon in-process (real deliveries, no signals, no metrics) until the returned
/// sender fires.
fn start_daemon(
    env: &Env,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    // Metrics only where the config sets metrics_listen (one test per process).
    daemon_env::start_daemon(
        env,
        Options {
            signals: false,
            ..Options::default()
        },
    )
}

/// The run that catch-up started (not the seeded one).
fn caught_up_run(env: &Env, sub: &str) -> Option<regdrop::store::Run> {
    env.runs(sub)
        .into_iter()
        .find(|r| r.state_reason.as_deref() != Some("seeded by the test"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_then_up_is_delivered_after_retries() {
    let sshd = Sshd::start();
    let metrics = free_port();
    let env = Env::new(200, &format!("metrics_listen = \"127.0.0.1:{metrics}\"\n"));
    let remote = sshd.remote_dir("down-up");
    let port = free_port();
    env.write_sub(
        "downup",
        &sshd_sub(
            "downup",
            "0 6 * * *",
            "once",
            &sshd,
            port,
            &remote,
            &fast_retry(60),
        ),
    );
    env.seed_old_run("downup", Utc::now() - chrono::Duration::days(3));
    let (stop, daemon) = start_daemon(&env);

    // Nothing listens on the port: attempts fail and are retried.
    let run = wait_for(60, "two failed attempts", || {
        let r = caught_up_run(&env, "downup")?;
        let a = env.store().attempts(&r.id).ok()?;
        (a.iter().filter(|a| a.ended_at.is_some()).count() >= 2).then_some(r)
    })
    .await;
    assert!(ls(&remote).is_empty());
    // The server comes up.
    let proxy = Proxy::with(port, sshd.port, Faults::default()).await;
    let receipt = wait_for(60, "the receipt", || {
        env.store().receipt_for_run(&run.id).ok().flatten()
    })
    .await;
    let _ = stop.send(());
    daemon.await.unwrap();

    let attempts = env.store().attempts(&run.id).unwrap();
    assert!(attempts.len() >= 3, "{attempts:?}");
    assert_eq!(
        attempts[0].error_class.map(|s| s.as_str()),
        Some("connect"),
        "{attempts:?}"
    );
    assert_eq!(
        attempts.last().unwrap().outcome,
        Some(regdrop::store::AttemptOutcome::Ok)
    );
    assert_eq!(
        env.store().get_run(&run.id).unwrap().unwrap().state,
        RunState::Delivered
    );
    assert!(proxy.connections() >= 1);
    let name = receipt.remote_path.rsplit('/').next().unwrap().to_string();
    assert!(ls(&remote).contains(&name), "{:?}", ls(&remote));
    // The customer's check passes on the delivered file.
    let st = Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(&remote)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        env.store()
            .receipts(&ReceiptFilter::default())
            .unwrap()
            .len(),
        1
    );
    // The metrics saw it: one delivery, the retries, the duration, the last success.
    let body = http_get(metrics, "/metrics");
    assert!(
        body.contains("regdrop_deliveries_total{subscription=\"downup\",outcome=\"delivered\"} 1"),
        "{body}"
    );
    let retries: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("regdrop_retries_total{subscription=\"downup\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no retries series:\n{body}"));
    assert!(retries >= 2.0, "{body}");
    assert!(
        body.contains("regdrop_run_duration_seconds_bucket{le=\"+Inf\"}"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "regdrop_last_success_timestamp_seconds{{subscription=\"downup\"}} {}",
            receipt.delivered_at.timestamp()
        )),
        "{body}"
    );
    // The queue gauge drains to 0. It is the test process's one gauge: another in-process
    // daemon test (with hundreds of subscriptions) may hold runs queued for a moment, so
    // this waits for it rather than read it once.
    wait_for(60, "regdrop_queue_depth 0", || {
        http_get(metrics, "/metrics")
            .contains("\nregdrop_queue_depth 0\n")
            .then_some(())
    })
    .await;
    // What went out, per subscription.
    assert!(
        body.contains(&format!(
            "regdrop_delivered_bytes_total{{subscription=\"downup\"}} {}",
            receipt.bytes
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "regdrop_delivered_rows_total{{subscription=\"downup\"}} {}",
            receipt.rows
        )),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_host_key_needs_attention_after_one_connection_and_retry_delivers() {
    let sshd = Sshd::start();
    let env = Env::new(100, "");
    let remote = sshd.remote_dir("wrong-key");
    let proxy = Proxy::with(0, sshd.port, Faults::default()).await;
    let text = sub_toml(
        "pinned",
        "0 6 * * *",
        "once",
        proxy.port,
        WRONG_KEY,
        &sshd.user_key,
        &remote,
        &fast_retry(60),
    );
    env.write_sub("pinned", &text);
    env.seed_old_run("pinned", Utc::now() - chrono::Duration::days(3));
    let (stop, daemon) = start_daemon(&env);

    let run = wait_for(60, "needs_attention", || {
        caught_up_run(&env, "pinned").filter(|r| r.state == RunState::NeedsAttention)
    })
    .await;
    // Give a retry storm the time to show itself (retry base is 1 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _ = stop.send(());
    daemon.await.unwrap();
    assert_eq!(
        proxy.connections(),
        1,
        "one connection, no retries after a host-key mismatch"
    );
    let attempts = env.store().attempts(&run.id).unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        attempts[0].error_class.map(|s| s.as_str()),
        Some("host_key")
    );
    assert!(
        run.state_reason
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .contains("host key"),
        "{:?}",
        run.state_reason
    );
    assert!(ls(&remote).is_empty());

    // `regdrop status` shows it to the operator.
    let out = Command::new(env!("CARGO_BIN_EXE_regdrop"))
        .arg("--config")
        .arg(env.config())
        .arg("status")
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    // Exit 3: a run needs attention (README "Exit codes").
    assert!(
        out.status.code() == Some(3)
            && status.contains(run.id.as_str())
            && status.contains("needs_attention"),
        "{status}"
    );

    // The operator pins the right key and goes again.
    env.write_sub("pinned", &text.replace(WRONG_KEY, &sshd.host_pub));
    let out = Command::new(env!("CARGO_BIN_EXE_regdrop"))
        .arg("--config")
        .arg(env.config())
        .args(["retry", &run.id])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("delivered"), "{said}");
    assert_eq!(
        env.store().get_run(&run.id).unwrap().unwrap().state,
        RunState::Delivered
    );
    assert_eq!(
        env.store()
            .receipts(&ReceiptFilter::default())
            .unwrap()
            .len(),
        1
    );
    // The retry looks for an earlier finished upload first (its own connection), then uploads.
    assert!(
        (2..=3).contains(&proxy.connections()),
        "{}",
        proxy.connections()
    );
    // A second retry of a delivered run does nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_regdrop"))
        .arg("--config")
        .arg(env.config())
        .args(["retry", &run.id])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        env.store()
            .receipts(&ReceiptFilter::default())
            .unwrap()
            .len(),
        1
    );
}

/// A crash after the final rename but before the sidecars: the restart must recognise the
/// file by its content, add the missing sidecars and record the receipt (not stop at its
/// own file with `if_exists = "fail"`). Deterministic stand-in for the racy kill -9 point
/// in [`crate::daemon::process`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_rename_and_sidecars_is_completed_on_restart() {
    let sshd = Sshd::start();
    let env = Env::new(200, "");
    let remote = sshd.remote_dir("no-sidecars");
    let port = free_port();
    env.write_sub(
        "side",
        &sshd_sub(
            "side",
            "0 6 * * *",
            "once",
            &sshd,
            port,
            &remote,
            &fast_retry(60),
        ),
    );
    env.seed_old_run("side", Utc::now() - chrono::Duration::days(3));
    // First life: the target check passes, then every upload connection is cut: sealed,
    // uploading, attempts failing; then shut down.
    let cutting = Proxy::with(
        port,
        sshd.port,
        Faults {
            cut_after: Some(1),
            spare_first: 1,
            ..Faults::default()
        },
    )
    .await;
    let (stop, daemon) = start_daemon(&env);
    let run = wait_for(60, "a sealed run with a failed attempt", || {
        let r = caught_up_run(&env, "side")?;
        let failed = env
            .store()
            .attempts(&r.id)
            .ok()?
            .iter()
            .any(|a| a.ended_at.is_some());
        (r.state == RunState::Uploading && r.artifact.is_some() && failed).then_some(r)
    })
    .await;
    let _ = stop.send(());
    daemon.await.unwrap();
    drop(cutting);
    tokio::time::sleep(Duration::from_millis(200)).await; // the aborted listener lets go
                                                          // What the dead process left on the server: the final file, renamed, no sidecars.
    let art = run.artifact.clone().unwrap();
    std::fs::copy(&art.path, remote.join(&art.file_name)).unwrap();
    assert_eq!(ls(&remote), vec![art.file_name.clone()]);

    // Second life: the server is up.
    let _proxy = Proxy::with(port, sshd.port, Faults::default()).await;
    let (stop, daemon) = start_daemon(&env);
    let receipt = wait_for(60, "the receipt", || {
        env.store().receipt_for_run(&run.id).ok().flatten()
    })
    .await;
    let _ = stop.send(());
    daemon.await.unwrap();
    assert_eq!(
        ls(&remote),
        vec![
            art.file_name.clone(),
            format!("{}.manifest.json", art.file_name),
            format!("{}.sha256", art.file_name)
        ]
    );
    assert!(receipt.remote_path.ends_with(&art.file_name));
    let st = Command::new("sha256sum")
        .args(["-c", &format!("{}.sha256", art.file_name)])
        .current_dir(&remote)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        env.store()
            .receipts(&ReceiptFilter::default())
            .unwrap()
            .len(),
        1
    );
}

fn http_get(port: u16, path: &str) -> String {
    crate::util::http_get(port, path).expect("the metrics endpoint answers")
}
