//! The real `regdrop run` process: `kill -9` at several points of a delivery and restart ->
//! exactly one receipt and one final file; SIGHUP with an invalid subscription file -> its
//! last good version keeps running while added/removed files take effect; sd_notify
//! messages; the metrics endpoint (last success seeded from the store after a restart);
//! SIGTERM -> exit 0; an invalid daemon config -> exit 78.

use crate::util::daemon_env::{
    fast_retry, sshd_sub, sub_toml, wait_for, wait_for_or, Env, WRONG_KEY,
};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::ls;
use crate::util::free_port;
use crate::util::http_get;
use crate::util::sshd::Sshd;
use chrono::Utc;
use regdrop::store::{ReceiptFilter, RunState};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) const BIN: &str = env!("CARGO_BIN_EXE_regdrop");

pub(super) fn spawn(env: &Env, log: &str, extra_env: &[(&str, String)]) -> Child {
    let err = std::fs::File::create(env.path().join(log)).unwrap();
    let mut c = Command::new(BIN);
    c.arg("--config")
        .arg(env.config())
        .arg("run")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env("REGDROP_LOG", "info");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap()
}

pub(super) fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Waits until the daemon `child` wrote its status file (its signal handlers are installed).
pub(super) async fn wait_ready(env: &Env, child: &Child) {
    let file = env.path().join("state/daemon-status.json");
    let pid = child.id() as u64;
    wait_for_or(
        30,
        "the daemon to be ready",
        || {
            let doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
            (doc["pid"].as_u64() == Some(pid)).then_some(())
        },
        || logs(env),
    )
    .await;
}

pub(super) fn logs(env: &Env) -> String {
    let mut s = String::new();
    for n in ls(env.path()) {
        if n.ends_with(".log") {
            s += &format!(
                "--- {n}\n{}\n",
                std::fs::read_to_string(env.path().join(&n)).unwrap_or_default()
            );
        }
    }
    s
}

/// Waits for the process to exit on its own; its exit code.
pub(super) async fn exit_code(child: &mut Child, secs: u64) -> i32 {
    let st = wait_for(secs, "the daemon to exit", || child.try_wait().unwrap()).await;
    st.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_several_points_then_restart_delivers_exactly_once() {
    let sshd = Sshd::start();
    // ~30,000 rows: generation takes a moment, and the upload is throttled to ~2 MB/s.
    let metrics = free_port();
    let env = Env::new(
        30_000,
        &format!("metrics_listen = \"127.0.0.1:{metrics}\"\n"),
    );
    let remote = sshd.remote_dir("kill9");
    let proxy = Proxy::with(
        0,
        sshd.port,
        Faults {
            rate: Some(2_000_000),
            ..Faults::default()
        },
    )
    .await;
    env.write_sub(
        "k9",
        &sshd_sub(
            "k9",
            "0 6 * * *",
            "once",
            &sshd,
            proxy.port,
            &remote,
            &fast_retry(60),
        ),
    );
    env.seed_old_run("k9", Utc::now() - chrono::Duration::days(3));
    let spool = env.path().join("spool");
    let the_run = || {
        env.runs("k9")
            .into_iter()
            .find(|r| r.state_reason.as_deref() != Some("seeded by the test"))
    };

    // 1. During generation: the sealed artifact's temp file is being written.
    let mut d = spawn(&env, "1.log", &[]);
    wait_for(60, "generation in progress", || {
        std::fs::read_dir(&spool)
            .ok()?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .then_some(())
    })
    .await;
    d.kill().unwrap();
    d.wait().unwrap();
    let run = the_run().expect("the run was recorded before work");
    assert!(run.state.is_active(), "{:?}", run.state);

    // 2. During the upload: the temp file on the server is growing.
    let mut d = spawn(&env, "2.log", &[]);
    wait_for(90, "upload in progress", || {
        let r = the_run()?;
        let part = ls(&remote).into_iter().find(|n| n.ends_with(".part"))?;
        let len = std::fs::metadata(remote.join(&part)).ok()?.len();
        (r.state == RunState::Uploading && len > 0).then_some(())
    })
    .await;
    d.kill().unwrap();
    d.wait().unwrap();
    assert_eq!(
        the_run().unwrap().state,
        RunState::Uploading,
        "{}",
        logs(&env)
    );
    let sealed = the_run()
        .unwrap()
        .artifact
        .expect("sealed before the upload");

    // 3. Right after the final file appeared (receipt committed or not).
    let mut d = spawn(&env, "3.log", &[]);
    let final_name = sealed.file_name.clone();
    wait_for(120, "the final file", || {
        ls(&remote).contains(&final_name).then_some(())
    })
    .await;
    d.kill().unwrap();
    d.wait().unwrap();

    // 4. Restart: whatever was left is finished; then a clean SIGTERM.
    let mut d = spawn(&env, "4.log", &[]);
    let run_id = run.id.clone();
    let receipt = wait_for_or(
        120,
        "the receipt",
        || env.store().receipt_for_run(&run_id).ok().flatten(),
        || logs(&env),
    )
    .await;
    wait_ready(&env, &d).await;
    signal(&d, "TERM");
    assert_eq!(exit_code(&mut d, 30).await, 0, "{}", logs(&env));

    let after = env.store().get_run(&run.id).unwrap().unwrap();
    assert_eq!(after.state, RunState::Delivered);
    assert_eq!(
        after.artifact.as_ref().unwrap().ciphertext_sha256,
        sealed.ciphertext_sha256,
        "the artifact was not regenerated after sealing"
    );
    assert_eq!(
        env.store()
            .receipts(&ReceiptFilter::default())
            .unwrap()
            .len(),
        1,
        "exactly one receipt"
    );
    let names = ls(&remote);
    let finals: Vec<&String> = names
        .iter()
        .filter(|n| {
            !n.starts_with('.') && !n.ends_with(".sha256") && !n.ends_with(".manifest.json")
        })
        .collect();
    assert_eq!(
        finals,
        vec![&final_name],
        "exactly one final file: {names:?}"
    );
    // The data file's temp name is gone. (A sidecar's temp file cut by the kill may stay:
    // see the note in the daemon's report.)
    let data_part = format!(".{final_name}.{}.part", run.id);
    assert!(!names.contains(&data_part), "temp file left: {names:?}");
    assert!(receipt.remote_path.ends_with(&final_name));
    let st = Command::new("sha256sum")
        .args(["-c", &format!("{final_name}.sha256")])
        .current_dir(&remote)
        .status()
        .unwrap();
    assert!(st.success(), "the delivered file matches its checksum");
    assert_eq!(
        crate::util::files::sha256_file(&remote.join(&final_name)),
        receipt.ciphertext_sha256
    );

    // 5. A restart with nothing to do: the metrics carry the last success from the store.
    let mut d = spawn(&env, "5.log", &[]);
    let body = wait_for(30, "metrics", || {
        http_get(metrics, "/metrics")
            .filter(|b| b.contains("regdrop_last_success_timestamp_seconds"))
    })
    .await;
    assert!(
        body.contains("regdrop_last_success_timestamp_seconds{subscription=\"k9\"}"),
        "{body}"
    );
    wait_ready(&env, &d).await;
    signal(&d, "INT");
    assert_eq!(exit_code(&mut d, 30).await, 0);
    assert_eq!(
        env.store()
            .receipts(&ReceiptFilter::default())
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_an_invalid_file_keeps_its_last_good_version_and_applies_the_rest() {
    let env = Env::new(10, "");
    let dead = free_port();
    let key = env.path().join("nokey");
    let remote = env.path().join("remote");
    let sub = |id: &str| sub_toml(id, "0 6 * * *", "skip", dead, WRONG_KEY, &key, &remote, "");
    env.write_sub("a", &sub("a"));
    env.write_sub("b", &sub("b"));
    env.write_sub("gone", &sub("gone"));

    // systemd's side of sd_notify: a datagram socket collecting what the daemon says.
    let sock_path = env.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let said = Arc::new(Mutex::new(String::new()));
    let said2 = said.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let listener = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(n) = sock.recv(&mut buf) {
                said2
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    let mut d = spawn(
        &env,
        "d.log",
        &[
            ("NOTIFY_SOCKET", sock_path.display().to_string()),
            ("WATCHDOG_USEC", "400000".into()),
        ],
    );
    let status_file = env.path().join("state/daemon-status.json");
    let ids = |doc: &serde_json::Value| -> Vec<String> {
        doc["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    let read_status = || -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(&status_file).ok()?).ok()
    };
    wait_for(30, "the daemon's status file", || {
        read_status().filter(|d| ids(d) == ["a", "b", "gone"])
    })
    .await;
    wait_ready(&env, &d).await;
    wait_for(10, "READY=1", || {
        said.lock().unwrap().contains("READY=1").then_some(())
    })
    .await;

    // b breaks (a 4-field cron line), gone goes, new comes; then SIGHUP.
    let b = env.path().join("subs/b.toml");
    std::fs::write(
        &b,
        std::fs::read_to_string(&b)
            .unwrap()
            .replace("cron = \"0 6 * * *\"", "cron = \"0 6 * *\""),
    )
    .unwrap();
    std::fs::remove_file(env.path().join("subs/gone.toml")).unwrap();
    env.write_sub("new", &sub("new"));
    signal(&d, "HUP");
    let doc = wait_for(30, "the reloaded subscriptions", || {
        read_status().filter(|d| ids(d) == ["a", "b", "new"])
    })
    .await;
    let b_entry = doc["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "b")
        .unwrap()
        .clone();
    assert_eq!(b_entry["stale"], true, "{doc}");
    assert!(
        b_entry["next_fire"].as_str().is_some(),
        "b keeps its schedule: {doc}"
    );
    assert!(d.try_wait().unwrap().is_none(), "still running");
    let log = std::fs::read_to_string(env.path().join("d.log")).unwrap();
    assert!(
        log.contains("b.toml:4:8"),
        "the problem is logged with file:line:col:\n{log}"
    );
    assert!(log.contains("last good version keeps running"), "{log}");

    // A second daemon on the same state store refuses to start.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(env.config())
        .arg("run")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("another regdrop daemon (pid {})", d.id())),
        "{err}"
    );

    // The operator's view.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(env.config())
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("daemon: running"), "{text}");
    let b_line = text
        .lines()
        .find(|l| l.starts_with("b "))
        .unwrap_or_default();
    assert!(b_line.contains("last good version"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("gone ")), "{text}");

    wait_for(10, "RELOADING=1 and WATCHDOG=1", || {
        let s = said.lock().unwrap();
        (s.contains("RELOADING=1")
            && s.contains("WATCHDOG=1")
            && s.contains("STATUS=3 subscriptions"))
        .then_some(())
    })
    .await;
    signal(&d, "TERM");
    assert_eq!(exit_code(&mut d, 30).await, 0, "{}", logs(&env));
    wait_for(10, "STOPPING=1", || {
        said.lock().unwrap().contains("STOPPING=1").then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    listener.join().unwrap();
}

#[test]
fn invalid_daemon_config_exits_78_and_invalid_subscriptions_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("regdrop.toml");
    std::fs::write(&cfg, "[daemon]\nmax_concurrent = 0\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("regdrop.toml:2:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
