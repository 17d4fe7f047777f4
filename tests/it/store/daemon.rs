//! The daemon with its state store on PostgreSQL: it creates and delivers a due run against
//! a real sshd, the receipt is in the database, and this node's lock and status files are
//! in the spool folder (no SQLite file appears); started while the database cannot be
//! reached, it waits and tries again instead of exiting, and its metrics endpoint says the
//! store is unreachable (`regdrop_state_db_up`), at start and when the connection is lost
//! later.

use crate::util::daemon_env::{
    self, fast_retry, sshd_sub, sub_toml, wait_for, wait_for_or, Env, WRONG_KEY,
};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::postgres::Postgres;
use crate::util::sshd::Sshd;
use crate::util::{free_port, http_get};
use chrono::Utc;
use regdrop::core::config::location::DbLocation;
use regdrop::daemon::Options;
use regdrop::store::{NewRun, RunState, Store};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_delivers_with_its_state_in_postgresql() {
    let pg = Postgres::get();
    let url = pg.url(&pg.fresh_database());
    delivers(&url, &url, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_while_postgresql_is_down_waits_for_it() {
    let pg = Postgres::get();
    let name = pg.fresh_database();
    // The daemon reaches the database through a proxy that is "down" at first. The proxy
    // runs on a runtime of its own: the in-process daemon blocks this runtime's workers in
    // store calls (as it does with SQLite), which must not stop the way to the database.
    let rt = std::thread::spawn(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
    .join()
    .unwrap();
    let proxy = std::thread::scope(|sc| {
        sc.spawn(|| rt.block_on(Proxy::with(0, pg.port, Faults::default())))
            .join()
            .unwrap()
    });
    proxy.down.store(true, Ordering::SeqCst);
    let via_proxy = format!("postgresql://postgres@127.0.0.1:{}/{name}", proxy.port);
    delivers(&via_proxy, &pg.url(&name), Some(&proxy)).await;
    drop(proxy);
    rt.shutdown_background();
}

/// Seeds a missed run, starts the daemon on `daemon_url` and waits for its delivery, read
/// through `url`. With `proxy` (down), the daemon must try at least twice before the proxy
/// comes up.
async fn delivers(daemon_url: &str, url: &str, proxy: Option<&Proxy>) {
    let sshd = Sshd::start();
    let env = Env::new(200, "");
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        cfg.replacen(
            "state_db = \"state/regdrop.sqlite\"",
            &format!("state_db = \"{daemon_url}\""),
            1,
        ),
    )
    .unwrap();
    let remote = sshd.remote_dir("pg");
    env.write_sub(
        "pgsub",
        &sshd_sub(
            "pgsub",
            "0 6 * * *",
            "once",
            &sshd,
            sshd.port,
            &remote,
            &fast_retry(5),
        ),
    );
    let store = || Store::open_location(&DbLocation::from_config(url, Path::new("/"))).unwrap();
    // A finished run three days ago, so catch-up fires the latest missed time now.
    let old = store()
        .create_run(&NewRun {
            subscription: "pgsub".into(),
            scheduled_at: Utc::now() - chrono::Duration::days(3),
        })
        .unwrap()
        .into_run();
    store()
        .set_state(&old.id, RunState::Failed, Some("seeded by the test"))
        .unwrap();

    let (stop, daemon) = daemon_env::start_daemon(
        &env,
        Options {
            signals: false,
            ..Options::default()
        },
    );
    if let Some(proxy) = proxy {
        wait_for(60, "two tries to reach the database", || {
            (proxy.connections() >= 2).then_some(())
        })
        .await;
        assert!(
            !daemon.is_finished(),
            "the daemon gave up instead of waiting"
        );
        proxy.down.store(false, Ordering::SeqCst);
    }
    let receipt = wait_for(90, "the receipt in PostgreSQL", || {
        store()
            .receipts(&Default::default())
            .ok()
            .and_then(|r| r.into_iter().next())
    })
    .await;
    assert_eq!(receipt.subscription, "pgsub");
    assert!(Path::new(&receipt.remote_path).exists());
    let spool = env.path().join("spool");
    assert!(spool.join("daemon.lock").exists());
    wait_for(30, "the status file in the spool folder", || {
        spool.join("daemon-status.json").exists().then_some(())
    })
    .await;
    let _ = stop.send(());
    daemon.await.unwrap();
    assert!(!env.path().join("state/regdrop.sqlite").exists());
    assert!(store().verify_chain().unwrap().is_intact());
    assert_eq!(
        store().get_run(&receipt.run_id).unwrap().unwrap().state,
        RunState::Delivered
    );
}

/// The real binary (one metrics exporter per process), its store behind a proxy: the
/// endpoint answers while the daemon waits for the database and says
/// `regdrop_state_db_up 0`; 1 once it is reached; 0 again when the connection is lost
/// later (the server ends the daemon's session, the proxy refuses a new one) at the next
/// wake-up (SIGUSR1), and 1 when the database is back. The daemon never exits; a SIGTERM
/// while it waits for the database ends it cleanly.
#[test]
fn the_metrics_endpoint_says_when_postgresql_cannot_be_reached() {
    let pg = Postgres::get();
    let name = pg.fresh_database();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = rt.block_on(Proxy::with(0, pg.port, Faults::default()));
    proxy.down.store(true, Ordering::SeqCst);

    let metrics = free_port();
    let via_proxy = format!("postgresql://postgres@127.0.0.1:{}/{name}", proxy.port);
    let env = quiet_env(metrics, &via_proxy);
    let log = env.path().join("daemon.log");
    let spawn_with = |envs: &[(&str, String)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regdrop"));
        cmd.arg("--config")
            .arg(env.config())
            .arg("run")
            .env("REGDROP_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap()
    };
    let spawn = || spawn_with(&[]);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let gauge = |v: u8| {
        move || {
            http_get(metrics, "/metrics")
                .filter(|b| b.contains(&format!("\nregdrop_state_db_up {v}\n")))
        }
    };
    let signal = |child: &std::process::Child, name: &str| {
        let st = Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -{name}");
    };
    let usr1 = |child: &std::process::Child| signal(child, "USR1");
    let wait = |secs, what: &str, f: &mut dyn FnMut() -> Option<String>| {
        rt.block_on(wait_for_or(secs, what, f, log_text))
    };

    let stop = |mut child: std::process::Child| {
        signal(&child, "TERM");
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}\n{}", log_text());
    };

    // A SIGTERM while it waits for the database ends it cleanly (exit 0).
    let waiting = spawn();
    wait(60, "regdrop_state_db_up 0 while waiting", &mut gauge(0));
    stop(waiting);

    // systemd's side of sd_notify: while it waits the daemon says why and extends its start
    // timeout (a long outage at boot is not a failed start); READY only once it is reached.
    let sock_path = env.path().join("notify.sock");
    let notified = Notified::bind(&sock_path);
    let heard = || notified.heard();
    let mut child = spawn_with(&[("NOTIFY_SOCKET", sock_path.display().to_string())]);
    wait(
        60,
        "regdrop_state_db_up 0 while the database is down",
        &mut gauge(0),
    );
    assert!(
        proxy.connections() >= 1,
        "the daemon never tried the database"
    );
    let before = wait(30, "EXTEND_TIMEOUT_USEC while waiting", &mut || {
        let h = heard();
        (h.contains("EXTEND_TIMEOUT_USEC=") && h.contains("STATUS=waiting for the state store"))
            .then_some(h)
    });
    assert!(
        !before.contains("READY=1"),
        "READY before the store answered:\n{before}"
    );
    proxy.down.store(false, Ordering::SeqCst);
    wait(30, "READY=1 once the store answers", &mut || {
        let h = heard();
        h.contains("READY=1").then_some(h)
    });
    wait(
        60,
        "regdrop_state_db_up 1 once it is reached",
        &mut gauge(1),
    );

    // Lost later: the server ends the daemon's session and no new one gets through.
    proxy.down.store(true, Ordering::SeqCst);
    let ended = pg.psql(
        "postgres",
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ),
    );
    assert_ne!(ended.trim(), "0", "no session of the daemon to end");
    let down = gauge(0);
    wait(
        60,
        "regdrop_state_db_up 0 after the connection was lost",
        &mut || {
            usr1(&child);
            std::thread::sleep(Duration::from_millis(300));
            down()
        },
    );
    proxy.down.store(false, Ordering::SeqCst);
    let up = gauge(1);
    wait(
        60,
        "regdrop_state_db_up 1 when the database is back",
        &mut || {
            usr1(&child);
            std::thread::sleep(Duration::from_millis(300));
            up()
        },
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the daemon exited:\n{}",
        log_text()
    );
    stop(child);
    drop(proxy);
    rt.shutdown_background();
}

/// A daemon environment with its metrics on `metrics`, its state store at `state_db` and one
/// subscription that never fires while a test runs.
fn quiet_env(metrics: u16, state_db: &str) -> Env {
    let env = Env::new(10, &format!("metrics_listen = \"127.0.0.1:{metrics}\"\n"));
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    let with_pg = cfg.replacen(
        "state_db = \"state/regdrop.sqlite\"",
        &format!("state_db = \"{state_db}\""),
        1,
    );
    assert_ne!(
        cfg, with_pg,
        "the test's config has no state_db line to replace"
    );
    std::fs::write(env.config(), with_pg).unwrap();
    // One subscription that never fires while the test runs.
    let key = env.path().join("nokey");
    let remote = env.path().join("remote");
    let sub = sub_toml(
        "quiet",
        "0 6 1 1 *",
        "skip",
        free_port(),
        WRONG_KEY,
        &key,
        &remote,
        "",
    );
    env.write_sub("quiet", &sub);
    env
}

/// systemd's side of sd_notify: a datagram socket collecting what the daemon says.
struct Notified {
    sock: std::os::unix::net::UnixDatagram,
    said: std::cell::RefCell<String>,
}

impl Notified {
    fn bind(path: &Path) -> Notified {
        let sock = std::os::unix::net::UnixDatagram::bind(path).unwrap();
        sock.set_nonblocking(true).unwrap();
        Notified {
            sock,
            said: Default::default(),
        }
    }

    /// Everything said so far, a datagram a line.
    fn heard(&self) -> String {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            let mut said = self.said.borrow_mut();
            said.push_str(&String::from_utf8_lossy(&buf[..n]));
            said.push('\n');
        }
        self.said.borrow().clone()
    }
}
