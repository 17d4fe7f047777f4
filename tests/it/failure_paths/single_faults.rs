//! Failure paths, one fault per test: no config value can crash the daemon; errors before the first
//! upload go through the same attempt accounting as upload errors; a spool artifact that
//! changed after sealing never goes out; a permanent target error costs no extract;
//! `status` tells queued from running. Real sshd, real SQLite files, real age CLI.

use crate::util::small_disk::SmallDisk;

use super::{ctx_of, new_env, utc};
use crate::util;
use crate::util::daemon_env::{
    fast_retry, sshd_sub, start_daemon, sub_toml, wait_for, Env, WRONG_KEY,
};
use crate::util::files::{ls, sha256_file};
use crate::util::sshd::Sshd;
use chrono::{DateTime, Utc};
use regdrop::daemon::{Clock, Job, Options, Work, WorkResult};
use regdrop::pipeline::delivery::{self, Outcome, Quiet};
use regdrop::store::{AttemptOutcome, RunState};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn artifacts_in(spool: &Path) -> Vec<String> {
    if !spool.exists() {
        return vec![];
    }
    ls(spool)
        .into_iter()
        .filter(|n| n.contains(".artifact"))
        .collect()
}

// ---- item 1: no config value can crash the daemon ---------------------------------------

/// A subscription file with the given lines replaced.
fn sub_with(
    env: &Env,
    sshd_port: u16,
    host_key: &str,
    key: &Path,
    extra: &[(&str, &str)],
) -> String {
    let mut text = sub_toml(
        "sub",
        "0 6 * * *",
        "skip",
        sshd_port,
        host_key,
        key,
        &env.path().join("remote"),
        "base_secs = 1",
    );
    for (from, to) in extra {
        assert!(text.contains(from), "no `{from}` in\n{text}");
        text = text.replacen(from, to, 1);
    }
    text
}

#[test]
fn check_refuses_numbers_that_overflow_time_arithmetic_blank_names_and_crons_that_never_fire() {
    let env = new_env(1, "");
    let key = env.path().join("key");
    std::fs::write(&key, "").unwrap();
    env.write_sub(
        "sub",
        &sub_with(
            &env,
            22,
            WRONG_KEY,
            &key,
            &[
                ("catch_up = \"skip\"\n", "catch_up = \"skip\"\njitter_secs = 100000000000000\n"),
                ("connect_timeout_secs = 5", "connect_timeout_secs = 0"),
                (
                    "base_secs = 1",
                    "base_secs = 18446744073709551615\nfactor = 1e300\ncap_secs = 18446744073709551615\nmax_attempts = 4000000000\ndeadline_secs = 18446744073709551615",
                ),
                ("[encryption]", "[delivery]\nfile_name = \"   \"\n[encryption]"),
            ],
        ),
    );
    env.write_sub(
        "never",
        &sub_with(
            &env,
            22,
            WRONG_KEY,
            &key,
            &[
                ("id = \"sub\"", "id = \"never\""),
                ("0 6 * * *", "0 0 30 2 *"),
            ],
        ),
    );
    let out = util::cli::run(util::cli::regdrop_in(env.path()).arg("check"));
    assert_eq!(out.code, 78, "{}", out.text());
    let text = out.text();
    for (file, key) in [
        ("sub.toml", "schedule.jitter_secs"),
        ("sub.toml", "target.connect_timeout_secs"),
        ("sub.toml", "retry.base_secs"),
        ("sub.toml", "retry.factor"),
        ("sub.toml", "retry.cap_secs"),
        ("sub.toml", "retry.max_attempts"),
        ("sub.toml", "retry.deadline_secs"),
        ("sub.toml", "delivery.file_name"),
        ("never.toml", "schedule.cron"),
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(file) && l.contains(&format!(": {key}: ")))
            .unwrap_or_else(|| panic!("no problem for {file} {key} in:\n{text}"));
        // file:line:col: key: what is wrong; what to do
        let place = line.split(&format!("{file}:")).nth(1).unwrap();
        let mut nums = place.split(':');
        assert!(nums.next().unwrap().parse::<usize>().unwrap() > 1, "{line}");
        assert!(
            nums.next().unwrap().parse::<usize>().unwrap() >= 1,
            "{line}"
        );
        assert!(line.contains(';'), "says what to do: {line}");
    }
    assert!(text.contains("never fires"), "{text}");
    // A huge number in the daemon file is refused the same way (exit 78, file:line:col).
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        cfg.replace("shutdown_grace_secs = 5", "shutdown_grace_secs = 18446744073709551615")
            + "[retention]\nspool_grace_hours = 18446744073709551615\nreceipts_days = 18446744073709551615\n",
    )
    .unwrap();
    let out = util::cli::run(util::cli::regdrop_in(env.path()).arg("check"));
    assert_eq!(out.code, 78, "{}", out.text());
    for key in [
        "daemon.shutdown_grace_secs",
        "retention.spool_grace_hours",
        "retention.receipts_days",
    ] {
        assert!(
            out.text().contains(&format!(": {key}: ")),
            "{key}: {}",
            out.text()
        );
    }
    assert!(!out.text().contains("panicked"), "{}", out.text());
}

#[test]
fn the_daemon_never_panics_on_a_huge_jitter_at_start_or_on_reload() {
    let env = new_env(1, "");
    let key = env.path().join("key");
    std::fs::write(&key, "").unwrap();
    let huge = sub_with(
        &env,
        22,
        WRONG_KEY,
        &key,
        &[(
            "catch_up = \"skip\"\n",
            "catch_up = \"skip\"\njitter_secs = 100000000000000\n",
        )],
    );
    env.write_sub("sub", &huge);
    let mut child = util::cli::regdrop_in(env.path())
        .arg("run")
        .env("REGDROP_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = env.path().join("state/daemon-status.json");
    let t0 = std::time::Instant::now();
    while !status.exists() {
        if let Some(s) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("the daemon exited at start with {s}:\n{err}");
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no status file");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGHUP with the same file, then with a valid one: still alive.
    let pid = child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    env.write_sub(
        "sub",
        &huge.replace("jitter_secs = 100000000000000", "jitter_secs = 60"),
    );
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the daemon died on reload"
    );
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("schedule.jitter_secs"),
        "the problem is logged: {err}"
    );
}

// ---- item 2: errors before the upload are attempts --------------------------------------

/// A clock `speed` times faster than real time (a minute cron fires every 60/speed s).
struct Fast {
    base: DateTime<Utc>,
    started: std::time::Instant,
    speed: f64,
}
impl Clock for Fast {
    fn now(&self) -> DateTime<Utc> {
        let ms = self.started.elapsed().as_secs_f64() * self.speed * 1000.0;
        self.base + chrono::Duration::milliseconds(ms as i64)
    }
    fn real(&self, span: chrono::Duration) -> Duration {
        span.to_std().unwrap_or_default().div_f64(self.speed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_that_is_not_a_database_is_a_permanent_attempt_and_later_fires_still_run() {
    let sshd = Sshd::start();
    let env = new_env(1, "");
    let remote = sshd.remote_dir("notadb");
    std::fs::write(
        env.path().join("register.sqlite"),
        b"this is not a database\n".repeat(200),
    )
    .unwrap();
    env.write_sub(
        "notadb",
        &sshd_sub(
            "notadb",
            "* * * * *",
            "skip",
            &sshd,
            sshd.port,
            &remote,
            &fast_retry(5),
        ),
    );
    let (stop, daemon) = start_daemon(
        &env,
        Options {
            signals: false,
            metrics: false,
            clock: Arc::new(Fast {
                base: utc("2026-11-25T05:59:58Z"),
                started: std::time::Instant::now(),
                speed: 30.0,
            }),
            ..Options::default()
        },
    );
    // Every fire (one each 2 real seconds) makes its run, which needs attention at once.
    let runs = wait_for(40, "three runs needing attention", || {
        let runs: Vec<_> = env
            .runs("notadb")
            .into_iter()
            .filter(|r| r.state == RunState::NeedsAttention)
            .collect();
        (runs.len() >= 3).then_some(runs)
    })
    .await;
    let _ = stop.send(());
    daemon.await.unwrap();
    for r in &runs {
        let a = env.store().attempts(&r.id).unwrap();
        assert_eq!(
            a.len(),
            1,
            "one attempt, no retry of a permanent error: {a:?}"
        );
        assert_eq!(a[0].outcome, Some(AttemptOutcome::Permanent), "{a:?}");
        assert_eq!(
            a[0].error_class.map(|s| s.as_str()),
            Some("register"),
            "{a:?}"
        );
        let reason = r.state_reason.as_deref().unwrap_or("");
        assert!(reason.contains("register"), "{reason}");
        assert!(r.artifact.is_none());
    }
    assert!(ls(&remote).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_is_a_retryable_attempt_with_backoff_limits_and_leaves_no_file() {
    if !util::root::require("it mounts a small tmpfs as the spool") {
        return;
    }
    let sshd = Sshd::start();
    let env = new_env(3000, "");
    let remote = sshd.remote_dir("fullspool");
    let spool = SmallDisk::mount(&env.path().join("spool"), "64k");
    env.write_sub(
        "full",
        &sshd_sub(
            "full",
            "0 6 * * *",
            "skip",
            &sshd,
            sshd.port,
            &remote,
            &fast_retry(3),
        ),
    );
    let (ctx, loaded) = ctx_of(&env);
    let sub = loaded.subscription("full").unwrap();
    let out = delivery::deliver(&ctx, sub, utc("2026-11-25T05:00:00Z"), &Quiet)
        .await
        .expect("a full spool is an attempt of the run, not an error outside it");
    let Outcome::Failed { run, reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("max attempts"), "{reason}");
    assert!(
        reason.contains("No space left"),
        "names the cause: {reason}"
    );
    let a = env.store().attempts(&run).unwrap();
    assert_eq!(a.len(), 3, "{a:?}");
    for x in &a {
        assert_eq!(x.outcome, Some(AttemptOutcome::Retryable), "{a:?}");
        assert_eq!(x.error_class.map(|s| s.as_str()), Some("spool"), "{a:?}");
    }
    assert_eq!(
        env.store().get_run(&run).unwrap().unwrap().state,
        RunState::Failed
    );
    assert!(artifacts_in(&spool.0).is_empty(), "{:?}", ls(&spool.0));
    assert!(ls(&remote).is_empty());
}

// ---- item 3: a changed artifact never goes out -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_changed_after_sealing_is_regenerated_and_never_uploaded() {
    let sshd = Sshd::start();
    let env = new_env(400, "");
    let remote = sshd.remote_dir("tamper");
    let identity = env.path().join("age.key");
    let recipient = util::cli::age_keygen(&identity);
    let text = sshd_sub(
        "tamper",
        "0 6 * * *",
        "skip",
        &sshd,
        sshd.port,
        &remote,
        &fast_retry(3),
    )
    .replace(
        "age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r",
        &recipient,
    );
    env.write_sub("tamper", &text);
    let (ctx, loaded) = ctx_of(&env);
    let sub = loaded.subscription("tamper").unwrap();
    type Tamper = fn(&Path);
    let truncate: Tamper = |p| {
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len / 2).unwrap();
    };
    let overwrite: Tamper = |p| {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.seek(SeekFrom::Start(1024)).unwrap();
        f.write_all(&[0x5a; 4096]).unwrap();
    };
    for (i, (what, tamper)) in [("truncated", truncate), ("overwritten", overwrite)]
        .into_iter()
        .enumerate()
    {
        let at = utc("2026-11-25T05:00:00Z") + chrono::Duration::days(i as i64);
        let name = format!("tamper_{}.dsv.age", at.format("%Y%m%dT%H%M%S"));
        // The final name is taken: the first attempt needs attention with the artifact sealed.
        std::fs::write(remote.join(&name), b"blocker").unwrap();
        let out = delivery::deliver(&ctx, sub, at, &Quiet).await.unwrap();
        let Outcome::NeedsAttention { run, .. } = out else {
            panic!("{out:?}")
        };
        let sealed = env.store().get_run(&run).unwrap().unwrap();
        let a = sealed.artifact.clone().expect("sealed");
        // The operator clears the name; meanwhile someone changes the spool file.
        std::fs::remove_file(remote.join(&name)).unwrap();
        tamper(Path::new(&a.path));
        let changed = sha256_file(Path::new(&a.path));
        assert_ne!(changed, a.ciphertext_sha256);
        let out = delivery::deliver_run(&ctx, sub, sealed, &Quiet)
            .await
            .unwrap();
        let Outcome::Delivered(receipt) = out else {
            panic!("{what}: {out:?}")
        };
        let delivered = remote.join(&name);
        let on_server = sha256_file(&delivered);
        assert_ne!(on_server, changed, "{what}: the changed file went out");
        assert_eq!(
            on_server, receipt.ciphertext_sha256,
            "{what}: receipt names the file"
        );
        let now = env
            .store()
            .get_run(&run)
            .unwrap()
            .unwrap()
            .artifact
            .unwrap();
        assert_eq!(now.ciphertext_sha256, receipt.ciphertext_sha256, "{what}");
        assert_eq!(std::fs::metadata(&delivered).unwrap().len(), receipt.bytes);
        let sidecar = std::fs::read_to_string(remote.join(format!("{name}.sha256"))).unwrap();
        assert!(sidecar.starts_with(&on_server), "{what}: {sidecar}");
        // The customer decrypts a whole extract with the reference age CLI.
        let dec = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&identity)
            .arg(&delivered)
            .output()
            .unwrap();
        assert!(
            dec.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&dec.stderr)
        );
        let plain = String::from_utf8(dec.stdout).unwrap();
        assert_eq!(plain.lines().count(), 401, "{what}: header + 400 rows");
        let attempts = env.store().attempts(&run).unwrap();
        assert!(
            attempts.iter().any(|x| x
                .message
                .as_deref()
                .unwrap_or("")
                .contains("changed after sealing")),
            "{what}: the mismatch is recorded: {attempts:?}"
        );
    }
}

// ---- item 4: probe before extract; queued vs running -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_target_error_costs_no_extract() {
    let sshd = Sshd::start();
    let env = new_env(2000, "");
    let remote = sshd.remote_dir("wrongkey");
    env.write_sub(
        "wk",
        &sub_toml(
            "wk",
            "0 6 * * *",
            "skip",
            sshd.port,
            WRONG_KEY,
            &sshd.user_key,
            &remote,
            "base_secs = 1",
        ),
    );
    let (ctx, loaded) = ctx_of(&env);
    let sub = loaded.subscription("wk").unwrap();
    let out = delivery::deliver(&ctx, sub, utc("2026-11-25T05:00:00Z"), &Quiet)
        .await
        .unwrap();
    let Outcome::NeedsAttention { run, reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.to_lowercase().contains("host key"), "{reason}");
    let r = env.store().get_run(&run).unwrap().unwrap();
    assert!(
        r.artifact.is_none(),
        "no extract was made: {:?}",
        r.artifact
    );
    assert!(artifacts_in(&env.path().join("spool")).is_empty());
    let a = env.store().attempts(&run).unwrap();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        a[0].error_class.map(|s| s.as_str()),
        Some("host_key"),
        "{a:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tells_queued_runs_from_running_ones() {
    let env = new_env(1, "");
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        cfg.replace("max_concurrent = 4", "max_concurrent = 1"),
    )
    .unwrap();
    let key = env.path().join("key");
    std::fs::write(&key, "").unwrap();
    for id in ["aaa", "bbb"] {
        env.write_sub(
            id,
            &sub_toml(
                id,
                "0 6 * * *",
                "once",
                22,
                WRONG_KEY,
                &key,
                &env.path().join("r"),
                "base_secs = 1",
            ),
        );
        env.seed_old_run(id, Utc::now() - chrono::Duration::days(3));
    }
    // Work that holds its slot until shutdown.
    let work = |job: Job, cancel: CancellationToken| async move {
        cancel.cancelled().await;
        WorkResult::Ok(Outcome::Interrupted { run: job.run_id() })
    };
    let (stop, daemon) = start_daemon(
        &env,
        Options {
            signals: false,
            metrics: false,
            work: Some(Arc::new(work) as Arc<dyn Work>),
            ..Options::default()
        },
    );
    let status = env.path().join("state/daemon-status.json");
    wait_for(20, "one running, one queued", || {
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&status).ok()?).ok()?;
        (doc["running"] == 1 && doc["queued"] == 1).then_some(())
    })
    .await;
    let dir = env.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        util::cli::run(util::cli::regdrop_in(&dir).arg("status"))
    })
    .await
    .unwrap();
    let _ = stop.send(());
    daemon.await.unwrap();
    assert!(out.ok(), "{}", out.text());
    let line = |id: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id}: {}", out.stdout))
            .to_string()
    };
    let (a, b) = (line("aaa"), line("bbb"));
    let queued = [&a, &b].iter().filter(|l| l.contains("queued")).count();
    let running = [&a, &b].iter().filter(|l| l.contains("running")).count();
    assert_eq!((queued, running), (1, 1), "{}", out.stdout);
}
