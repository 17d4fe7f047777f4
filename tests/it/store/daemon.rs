//! The daemon with its state store on PostgreSQL: it creates and delivers a due run against
//! a real sshd, the receipt is in the database, and this node's lock and status files are
//! in the spool folder (no SQLite file appears); started while the database cannot be
//! reached, it waits and tries again instead of exiting.

use crate::util::daemon_env::{self, fast_retry, sshd_sub, wait_for, Env};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::postgres::Postgres;
use crate::util::sshd::Sshd;
use chrono::Utc;
use regdrop::core::config::location::DbLocation;
use regdrop::daemon::Options;
use regdrop::store::{NewRun, RunState, Store};
use std::path::Path;
use std::sync::atomic::Ordering;

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
