//! Closing the loop on failures, with the real `regdrop run` process and a real sshd: a run
//! driven to `needs_attention` raises `regdrop_runs_needing_attention` and makes `status`
//! exit 3; `regdrop resolve` records the decision, the running daemon's gauge drops to 0
//! (and stays 0 after a restart), `status` shows the run as resolved and exits 0, a second
//! resolution and a retry are refused. An invalid subscription file raises
//! `regdrop_subscription_files_invalid` and makes `status` exit 4 until it is fixed and
//! SIGHUP reloads it.

use super::process::{exit_code, logs, signal, spawn, wait_ready, BIN};
use crate::util::daemon_env::{fast_retry, sub_toml, wait_for, wait_for_or, Env, WRONG_KEY};
use crate::util::sshd::Sshd;
use crate::util::{free_port, http_get};
use chrono::Utc;
use regdrop::store::RunState;
use std::process::Command;

/// `regdrop --config ENV ARGS`: exit code, stdout, stderr.
fn regdrop(env: &Env, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(env.config())
        .args(args)
        .env("REGDROP_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of the unlabelled series `name` on the daemon's metrics endpoint.
fn gauge(port: u16, name: &str) -> Option<f64> {
    let body = http_get(port, "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn wait_gauge(env: &Env, port: u16, name: &str, want: f64) {
    wait_for_or(
        30,
        &format!("{name} = {want}"),
        || (gauge(port, name) == Some(want)).then_some(()),
        || format!("metrics: {:?}\n{}", http_get(port, "/metrics"), logs(env)),
    )
    .await;
}

fn status_json(env: &Env) -> (Option<i32>, serde_json::Value) {
    let (code, out, err) = regdrop(env, &["status", "--json"]);
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_run_no_longer_needs_attention_in_the_metric_or_status() {
    let sshd = Sshd::start();
    let metrics = free_port();
    let env = Env::new(50, &format!("metrics_listen = \"127.0.0.1:{metrics}\"\n"));
    let remote = sshd.remote_dir("resolve");
    // A wrong pinned key: the caught-up run goes needs_attention after one connection.
    env.write_sub(
        "pinned",
        &sub_toml(
            "pinned",
            "0 6 * * *",
            "once",
            sshd.port,
            WRONG_KEY,
            &sshd.user_key,
            &remote,
            &fast_retry(60),
        ),
    );
    env.seed_old_run("pinned", Utc::now() - chrono::Duration::days(3));
    let mut d = spawn(&env, "daemon.log", &[]);
    wait_ready(&env, &d).await;
    let run = wait_for_or(
        60,
        "the run to need attention",
        || {
            env.runs("pinned")
                .into_iter()
                .find(|r| r.state == RunState::NeedsAttention)
        },
        || logs(&env),
    )
    .await;
    wait_gauge(&env, metrics, "regdrop_runs_needing_attention", 1.0).await;

    // Before: status says so and exits 3 (the seeded `failed` run is listed, not counted).
    let (code, text, err) = regdrop(&env, &["status"]);
    assert_eq!(code, Some(3), "{text}{err}");
    assert!(
        text.contains(run.id.as_str()) && text.contains("1 run(s) need attention"),
        "{text}"
    );
    let (code, doc) = status_json(&env);
    assert_eq!(code, Some(3));
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["needs_attention"], 1);
    assert!(doc["runs_needing_operator"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == run.id.as_str() && r["state"] == "needs_attention"));

    // A decision needs a reason.
    let (code, _, err) = regdrop(&env, &["resolve", &run.id, "--reason", "  "]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--reason is empty"), "{err}");
    let (code, _, err) = regdrop(
        &env,
        &["resolve", "pinned-20200101T060000Z", "--reason", "x"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no run `pinned-20200101T060000Z`"), "{err}");

    let (code, out, err) = regdrop(
        &env,
        &[
            "resolve",
            &run.id,
            "--reason",
            "customer changed servers; new key pinned under case 2026/114",
            "--by",
            "Kari Nordmann",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("resolved {}", run.id)), "{out}");
    assert!(out.contains("told the running daemon"), "{out}");
    // The running daemon's gauge drops at once (SIGUSR1), without a reload or a run.
    wait_gauge(&env, metrics, "regdrop_runs_needing_attention", 0.0).await;

    // Kept with the run in the store: who and why.
    let r = env
        .store()
        .resolution(&run.id)
        .unwrap()
        .expect("resolution");
    assert_eq!(r.state, RunState::NeedsAttention);
    assert_eq!(r.resolved_by.as_deref(), Some("Kari Nordmann"));
    // The OS user (under sudo, `root (sudo NAME)`).
    assert!(
        r.os_user.starts_with(&crate::util::sshd::current_user()),
        "{}",
        r.os_user
    );
    assert!(r.reason.contains("case 2026/114"));

    let (code, text, err) = regdrop(&env, &["status"]);
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(!text.contains("need attention"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("pinned "))
        .unwrap_or_default();
    assert!(line.contains("resolved"), "{text}");
    assert!(text.contains("case 2026/114"), "{text}");
    let (code, doc) = status_json(&env);
    assert_eq!(code, Some(0));
    assert_eq!(doc["needs_attention"], 0);
    assert_eq!(doc["resolved_recently"][0]["id"], run.id.as_str());
    assert_eq!(doc["resolved_recently"][0]["resolved_by"], "Kari Nordmann");
    assert_eq!(doc["subscriptions"][0]["last_run"]["resolved"], true);

    // The first decision stands; a resolved run is not retried.
    let (code, _, err) = regdrop(&env, &["resolve", &run.id, "--reason", "again"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("was resolved already") && err.contains("case 2026/114"),
        "{err}"
    );
    let (code, out, err) = regdrop(&env, &["retry", &run.id]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("resolved by an operator"), "{err}");

    // After a restart the gauge comes from the store: still 0.
    signal(&d, "TERM");
    assert_eq!(exit_code(&mut d, 30).await, 0, "{}", logs(&env));
    let mut d = spawn(&env, "daemon2.log", &[]);
    wait_ready(&env, &d).await;
    wait_gauge(&env, metrics, "regdrop_runs_needing_attention", 0.0).await;
    signal(&d, "TERM");
    assert_eq!(exit_code(&mut d, 30).await, 0, "{}", logs(&env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_subscription_file_shows_in_its_gauge_and_status_until_fixed() {
    let metrics = free_port();
    let env = Env::new(10, &format!("metrics_listen = \"127.0.0.1:{metrics}\"\n"));
    let key = env.path().join("key");
    std::fs::write(&key, "").unwrap();
    // Never due during the test: nothing connects anywhere.
    let sub = |id: &str| {
        sub_toml(
            id,
            "0 6 1 1 *",
            "skip",
            22,
            WRONG_KEY,
            &key,
            &env.path().join("r"),
            "base_secs = 1",
        )
    };
    env.write_sub("good", &sub("good"));
    env.write_sub("bad", &format!("{}colour = \"blue\"\n", sub("bad")));
    let mut d = spawn(&env, "daemon.log", &[]);
    wait_ready(&env, &d).await;
    wait_gauge(&env, metrics, "regdrop_subscription_files_invalid", 1.0).await;
    let (code, text, err) = regdrop(&env, &["status"]);
    assert_eq!(code, Some(4), "{text}{err}");
    assert!(
        text.contains("invalid subscription files (1)") && text.contains("colour"),
        "{text}"
    );
    let (code, doc) = status_json(&env);
    assert_eq!(code, Some(4));
    let file = doc["invalid_files"][0]["file"].as_str().unwrap_or_default();
    assert!(file.ends_with("bad.toml"), "{doc}");
    assert!(
        doc["invalid_files"][0]["problems"][0]["line"].as_u64() > Some(0),
        "{doc}"
    );

    env.write_sub("bad", &sub("bad"));
    signal(&d, "HUP");
    wait_gauge(&env, metrics, "regdrop_subscription_files_invalid", 0.0).await;
    let (code, text, err) = regdrop(&env, &["status"]);
    assert_eq!(code, Some(0), "{text}{err}");
    wait_for(30, "both subscriptions loaded", || {
        let (_, doc) = status_json(&env);
        let subs = doc["subscriptions"].as_array()?.clone();
        (subs.len() == 2
            && subs
                .iter()
                .all(|s| s["notes"].as_array().is_some_and(|n| n.is_empty())))
        .then_some(())
    })
    .await;
    signal(&d, "TERM");
    assert_eq!(exit_code(&mut d, 30).await, 0, "{}", logs(&env));
}
