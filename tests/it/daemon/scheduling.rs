//! The supervisor with paused tokio time and a fake work function (no network): due runs
//! fire at their times, the global and per-host limits hold, a long run does not start a
//! second run of its subscription, catch-up `once` vs `skip`, and SIGHUP-style reload with
//! an invalid file (its last good version keeps running) and added/removed subscriptions.

use chrono::{DateTime, Utc};
use regdrop::daemon::{self, Intent, Job, Options, TokioClock, Work};
use regdrop::pipeline::delivery::{DeliveryError, Outcome};
use regdrop::store::{NewRun, RunState, Store};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj";
const AGE: &str = "age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r";

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn config(dir: &Path, max_concurrent: usize, max_per_host: usize) {
    std::fs::create_dir_all(dir.join("subs")).unwrap();
    std::fs::write(
        dir.join("regdrop.toml"),
        format!(
            "subscriptions_dir = \"subs\"\n[defaults]\ntimezone = \"UTC\"\n[daemon]\nmax_concurrent = {max_concurrent}\nmax_per_host = {max_per_host}\nshutdown_grace_secs = 60\n"
        ),
    )
    .unwrap();
}

fn sub_text(id: &str, customer: &str, cron: &str, host: &str, catch_up: &str) -> String {
    format!(
        "id = \"{id}\"\ncustomer = \"{customer}\"\n[schedule]\ncron = \"{cron}\"\ncatch_up = \"{catch_up}\"\n\
         [target]\nhost = \"{host}\"\nport = 22\nusername = \"u\"\nhost_keys = [\"{HOST_KEY}\"]\n\
         auth = {{ key_file = \"nokey\" }}\nremote_dir = \"/in\"\n[extract]\nreport = \"technical\"\n\
         [encryption]\nrecipients = [\"{AGE}\"]\n"
    )
}

fn write_sub(dir: &Path, id: &str, customer: &str, cron: &str, host: &str, catch_up: &str) {
    std::fs::write(
        dir.join("subs").join(format!("{id}.toml")),
        sub_text(id, customer, cron, host, catch_up),
    )
    .unwrap();
}

/// One run as the fake work saw it.
#[derive(Debug, Clone)]
struct Started {
    sub: String,
    customer: String,
    scheduled: DateTime<Utc>,
    at: DateTime<Utc>,
}

#[derive(Default)]
struct Log {
    started: Vec<Started>,
    total: usize,
    max_total: usize,
    host: HashMap<String, usize>,
    max_host: HashMap<String, usize>,
    per_sub: HashMap<String, usize>,
    max_per_sub: usize,
    /// (subscription, interrupted, when)
    ended: Vec<(String, bool, DateTime<Utc>)>,
}

/// A work function that takes `dur(sub)` of (paused) time, honours cancel, and counts
/// concurrency overall, per host and per subscription.
fn fake(clock: Arc<TokioClock>, log: Arc<Mutex<Log>>, dur: fn(&str) -> Duration) -> Arc<dyn Work> {
    use regdrop::daemon::Clock;
    Arc::new(move |job: Job, cancel: CancellationToken| {
        let log = log.clone();
        let now = clock.now();
        let clock = clock.clone();
        async move {
            let host = job.sub.target().unwrap().host.clone();
            let id = job.sub.id.clone();
            {
                let mut l = log.lock().unwrap();
                l.started.push(Started {
                    sub: id.to_string(),
                    customer: job.sub.customer.clone(),
                    scheduled: job.scheduled_at(),
                    at: now,
                });
                l.total += 1;
                l.max_total = l.max_total.max(l.total);
                let h = {
                    let h = l.host.entry(host.clone()).or_default();
                    *h += 1;
                    *h
                };
                let m = l.max_host.entry(host.clone()).or_default();
                *m = (*m).max(h);
                let s = {
                    let s = l.per_sub.entry(id.to_string()).or_default();
                    *s += 1;
                    *s
                };
                l.max_per_sub = l.max_per_sub.max(s);
            }
            let run = job.run_id();
            let interrupted = tokio::select! {
                _ = tokio::time::sleep(dur(&id)) => false,
                _ = cancel.cancelled() => true,
            };
            let mut l = log.lock().unwrap();
            l.ended.push((id.to_string(), interrupted, clock.now()));
            l.total -= 1;
            *l.host.get_mut(&host).unwrap() -= 1;
            *l.per_sub.get_mut(id.as_str()).unwrap() -= 1;
            Ok(if interrupted {
                Outcome::Interrupted { run }
            } else {
                Outcome::Failed {
                    run,
                    reason: "fake".into(),
                }
            })
        }
    })
}

async fn run_daemon(
    dir: &Path,
    start: DateTime<Utc>,
    for_: Duration,
    dur: fn(&str) -> Duration,
) -> Arc<Mutex<Log>> {
    run_daemon_with(dir, start, for_, dur, None).await
}

async fn run_daemon_with(
    dir: &Path,
    start: DateTime<Utc>,
    for_: Duration,
    dur: fn(&str) -> Duration,
    intents: Option<tokio::sync::mpsc::UnboundedReceiver<Intent>>,
) -> Arc<Mutex<Log>> {
    let clock = Arc::new(TokioClock::starting_at(start));
    let log = Arc::new(Mutex::new(Log::default()));
    let opts = Options {
        work: Some(fake(clock.clone(), log.clone(), dur)),
        clock,
        intents,
        signals: false,
        metrics: false,
    };
    daemon::run_with(dir.join("regdrop.toml"), tokio::time::sleep(for_), opts)
        .await
        .unwrap();
    log
}

fn starts_of(log: &Log, sub: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    log.started
        .iter()
        .filter(|s| s.sub == sub)
        .map(|s| (s.scheduled, s.at))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn due_runs_fire_at_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 4, 2);
    write_sub(d, "daily", "D", "0 6 * * *", "h1", "skip");
    write_sub(d, "halfhour", "H", "*/30 * * * *", "h2", "skip");
    let log = run_daemon(
        d,
        utc("2026-11-25T05:59:30Z"),
        Duration::from_secs(2 * 3600),
        |_| Duration::from_secs(1),
    )
    .await;
    let log = log.lock().unwrap();
    let daily = starts_of(&log, "daily");
    let half = starts_of(&log, "halfhour");
    assert_eq!(
        daily.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![utc("2026-11-25T06:00:00Z")]
    );
    assert_eq!(
        half.iter().map(|s| s.0).collect::<Vec<_>>(),
        ["06:00", "06:30", "07:00", "07:30"]
            .iter()
            .map(|t| utc(&format!("2026-11-25T{t}:00Z")))
            .collect::<Vec<_>>()
    );
    // Each started at its fire time (paused time: no drift beyond the timer's millisecond).
    for (scheduled, at) in daily.iter().chain(&half) {
        assert!(
            *at >= *scheduled && *at - *scheduled < chrono::Duration::seconds(1),
            "{scheduled} started {at}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn global_and_per_host_limits_hold_and_other_hosts_are_not_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 3, 2);
    for id in ["a1", "a2", "a3", "a4"] {
        write_sub(d, id, id, "0 6 * * *", "shared.example", "skip");
    }
    for id in ["b1", "b2"] {
        write_sub(d, id, id, "0 6 * * *", "other.example", "skip");
    }
    let log = run_daemon(
        d,
        utc("2026-11-25T05:59:00Z"),
        Duration::from_secs(3600),
        |_| Duration::from_secs(600),
    )
    .await;
    let log = log.lock().unwrap();
    assert_eq!(log.started.len(), 6, "{:?}", log.started);
    assert_eq!(log.max_total, 3, "global limit");
    assert_eq!(log.max_host["shared.example"], 2, "per-host limit");
    // FIFO with skipping: a1, a2 (host full), then b1 ahead of a3/a4 at 06:00.
    let order: Vec<&str> = log.started.iter().map(|s| s.sub.as_str()).collect();
    assert_eq!(&order[..3], &["a1", "a2", "b1"]);
    let at = |id: &str| log.started.iter().find(|s| s.sub == id).unwrap().at;
    assert_eq!(at("b1"), utc("2026-11-25T06:00:00Z"));
    assert!(
        at("a3") >= utc("2026-11-25T06:10:00Z"),
        "a3 waited for a slot on its host"
    );
    // The waiting ones keep their fire time as the run's scheduled time.
    assert!(log
        .started
        .iter()
        .all(|s| s.scheduled == utc("2026-11-25T06:00:00Z")));
}

#[tokio::test(start_paused = true)]
async fn a_long_run_does_not_start_a_second_run_of_the_same_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 4, 4);
    write_sub(d, "slow", "S", "*/10 * * * *", "h", "skip");
    let log = run_daemon(
        d,
        utc("2026-11-25T05:59:30Z"),
        Duration::from_secs(3540),
        |_| Duration::from_secs(24 * 60),
    )
    .await;
    let log = log.lock().unwrap();
    assert_eq!(
        log.max_per_sub, 1,
        "never two runs of one subscription at once"
    );
    let runs = starts_of(&log, "slow");
    // 06:00 runs until 06:24; 06:10 and 06:20 coalesce (the latest wins) and start at 06:24;
    // 06:30 and 06:40 coalesce and start at 06:48.
    assert_eq!(
        runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![
            utc("2026-11-25T06:00:00Z"),
            utc("2026-11-25T06:20:00Z"),
            utc("2026-11-25T06:40:00Z")
        ]
    );
    assert_eq!(runs.len(), 3, "{runs:?}");
    let close = |a: DateTime<Utc>, b: &str| (a - utc(b)).num_milliseconds().abs() < 1000;
    assert!(
        close(runs[1].1, "2026-11-25T06:24:00Z") && close(runs[2].1, "2026-11-25T06:48:00Z"),
        "{runs:?}"
    );
}

fn seed_run(d: &Path, sub: &str, at: &str) {
    std::fs::create_dir_all(d.join("state")).unwrap();
    let store = Store::open(d.join("state/regdrop.sqlite")).unwrap();
    let run = store
        .create_run(&NewRun {
            subscription: sub.into(),
            scheduled_at: utc(at),
        })
        .unwrap()
        .into_run();
    store
        .set_state(&run.id, RunState::Failed, Some("seeded"))
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn catch_up_once_runs_the_latest_missed_time_and_skip_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 4, 2);
    write_sub(d, "once", "O", "0 6 * * *", "h", "once");
    write_sub(d, "skip", "S", "0 6 * * *", "h", "skip");
    write_sub(d, "fresh", "F", "0 6 * * *", "h", "once");
    // The daemon was down from the 20th: the store's last runs are from then.
    seed_run(d, "once", "2026-11-20T06:00:00Z");
    seed_run(d, "skip", "2026-11-20T06:00:00Z");
    let start = utc("2026-11-25T09:00:00Z");
    let log = run_daemon(d, start, Duration::from_secs(60), |_| {
        Duration::from_secs(5)
    })
    .await;
    let log = log.lock().unwrap();
    let once = starts_of(&log, "once");
    assert_eq!(once.len(), 1, "{once:?}");
    assert_eq!(
        once[0].0,
        utc("2026-11-25T06:00:00Z"),
        "the most recent missed fire time, once"
    );
    assert!(
        once[0].1 - start < chrono::Duration::seconds(1),
        "caught up at once"
    );
    assert!(starts_of(&log, "skip").is_empty());
    assert!(
        starts_of(&log, "fresh").is_empty(),
        "no history: nothing was missed"
    );
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_the_last_good_version_of_an_invalid_file_and_applies_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    config(&d, 8, 8);
    write_sub(&d, "a", "A v1", "*/10 * * * *", "h", "skip");
    write_sub(&d, "b", "B v1", "*/10 * * * *", "h", "skip");
    write_sub(&d, "gone", "G", "*/10 * * * *", "h", "skip");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let d2 = d.clone();
    let status = Arc::new(Mutex::new(None::<serde_json::Value>));
    let status2 = status.clone();
    tokio::spawn(async move {
        // 06:05: a changes (valid), b becomes invalid, `gone` is removed, `new` is added.
        tokio::time::sleep(Duration::from_secs(5 * 60 + 30)).await;
        write_sub(&d2, "a", "A v2", "*/10 * * * *", "h", "skip");
        let b = d2.join("subs/b.toml");
        let text = std::fs::read_to_string(&b)
            .unwrap()
            .replace("*/10 * * * *", "*/10 * * *")
            .replace("B v1", "B v2");
        std::fs::write(&b, text).unwrap();
        std::fs::remove_file(d2.join("subs/gone.toml")).unwrap();
        write_sub(&d2, "new", "N", "*/10 * * * *", "h", "skip");
        tx.send(Intent::Reload).unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let doc = std::fs::read(d2.join("state/daemon-status.json")).unwrap();
        *status2.lock().unwrap() = Some(serde_json::from_slice(&doc).unwrap());
        // keep tx alive until the end
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(tx);
    });
    let log = run_daemon_with(
        &d,
        utc("2026-11-25T05:59:30Z"),
        Duration::from_secs(35 * 60),
        |_| Duration::from_secs(1),
        Some(rx),
    )
    .await;
    let log = log.lock().unwrap();
    let customers = |id: &str| -> Vec<String> {
        log.started
            .iter()
            .filter(|s| s.sub == id)
            .map(|s| s.customer.clone())
            .collect()
    };
    assert_eq!(
        customers("a"),
        ["A v1", "A v2", "A v2", "A v2"],
        "a valid change takes effect"
    );
    assert_eq!(
        customers("b"),
        ["B v1", "B v1", "B v1", "B v1"],
        "an invalid file keeps its last good version"
    );
    assert_eq!(
        customers("gone"),
        ["G"],
        "a removed subscription stops at once"
    );
    assert_eq!(
        customers("new"),
        ["N", "N", "N"],
        "an added subscription starts at once"
    );
    let status = status.lock().unwrap().clone().expect("status file read");
    let subs = status["subscriptions"].as_array().unwrap();
    let b = subs.iter().find(|s| s["id"] == "b").unwrap();
    assert_eq!(b["stale"], true, "{status}");
    assert!(subs.iter().all(|s| s["id"] != "gone"));
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_the_start_but_not_the_scheduled_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 4, 4);
    let text = sub_text("j", "J", "0 6 * * *", "h", "skip").replace(
        "catch_up = \"skip\"\n",
        "catch_up = \"skip\"\njitter_secs = 600\n",
    );
    std::fs::write(d.join("subs/j.toml"), text).unwrap();
    let log = run_daemon(
        d,
        utc("2026-11-25T05:00:00Z"),
        Duration::from_secs(3 * 86400),
        |_| Duration::from_secs(1),
    )
    .await;
    let log = log.lock().unwrap();
    let runs = starts_of(&log, "j");
    assert_eq!(runs.len(), 3, "{runs:?}");
    for (scheduled, at) in runs {
        assert_eq!(scheduled.format("%H:%M:%S").to_string(), "06:00:00");
        assert!(
            at >= scheduled && at <= scheduled + chrono::Duration::seconds(601),
            "{scheduled} started {at}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_short_runs_finish_and_cancels_the_rest_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 4, 4); // shutdown_grace_secs = 60
    write_sub(d, "quick", "Q", "0 6 * * *", "h1", "skip");
    write_sub(d, "long", "L", "0 6 * * *", "h2", "skip");
    write_sub(d, "later", "X", "1 6 * * *", "h3", "skip"); // 06:01, inside the grace period
                                                           // Shutdown at 06:00:10: quick needs 30 s more, long 2 h.
    let log = run_daemon(
        d,
        utc("2026-11-25T05:59:50Z"),
        Duration::from_secs(20),
        |id| {
            if id == "quick" {
                Duration::from_secs(30)
            } else {
                Duration::from_secs(7200)
            }
        },
    )
    .await;
    let log = log.lock().unwrap();
    let ended = |id: &str| log.ended.iter().find(|e| e.0 == id).cloned().unwrap();
    let (_, q_interrupted, q_at) = ended("quick");
    assert!(!q_interrupted, "finished within the grace period");
    assert!(
        (q_at - utc("2026-11-25T06:00:30Z")).num_seconds().abs() <= 1,
        "{q_at}"
    );
    let (_, l_interrupted, l_at) = ended("long");
    assert!(l_interrupted, "cancelled after the grace period");
    assert!(
        (l_at - utc("2026-11-25T06:01:10Z")).num_seconds().abs() <= 1,
        "{l_at}"
    );
    assert!(
        starts_of(&log, "later").is_empty(),
        "no new runs after shutdown"
    );
}

#[tokio::test(start_paused = true)]
async fn reload_with_an_invalid_daemon_config_keeps_the_running_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    config(&d, 4, 4);
    write_sub(&d, "a", "A", "*/10 * * * *", "h", "skip");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let d2 = d.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5 * 60 + 30)).await;
        std::fs::write(d2.join("regdrop.toml"), "[daemon]\nmax_concurrent = 0\n").unwrap();
        write_sub(&d2, "b", "B", "*/10 * * * *", "h", "skip");
        tx.send(Intent::Reload).unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(tx);
    });
    let log = run_daemon_with(
        &d,
        utc("2026-11-25T05:59:30Z"),
        Duration::from_secs(25 * 60),
        |_| Duration::from_secs(1),
        Some(rx),
    )
    .await;
    let log = log.lock().unwrap();
    assert_eq!(
        starts_of(&log, "a").len(),
        3,
        "a keeps running: 06:00, 06:10, 06:20"
    );
    assert!(
        starts_of(&log, "b").is_empty(),
        "nothing of the rejected reload was applied"
    );
}

/// A run that ends in an error outside the protocol (store, task) and stays active is
/// resumed after the retry base, not at once in a loop, and a fire time that comes
/// meanwhile waits for it.
#[tokio::test(start_paused = true)]
async fn an_erroring_active_run_is_resumed_with_backoff_not_in_a_hot_loop() {
    use regdrop::daemon::Clock;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    config(&d, 4, 4);
    // retry base 60 s
    let text = sub_text("e", "E", "*/10 * * * *", "h", "skip") + "[retry]\nbase_secs = 60\n";
    std::fs::write(d.join("subs/e.toml"), text).unwrap();
    let clock = Arc::new(TokioClock::starting_at(utc("2026-11-25T05:59:30Z")));
    let starts = Arc::new(Mutex::new(Vec::<(String, DateTime<Utc>)>::new()));
    let (c2, s2, d2) = (clock.clone(), starts.clone(), d.clone());
    let work: Arc<dyn Work> = Arc::new(move |job: Job, _cancel: CancellationToken| {
        let now = c2.now();
        s2.lock().unwrap().push((job.run_id().to_string(), now));
        let d2 = d2.clone();
        async move {
            // Record the run (it stays pending, as after a failed generation), then fail.
            let store = Store::open(d2.join("state/regdrop.sqlite")).unwrap();
            if let daemon::JobKind::Fire { scheduled_at } = job.kind {
                let _ = store.create_run(&NewRun {
                    subscription: job.sub.id.clone(),
                    scheduled_at,
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err::<Outcome, _>(DeliveryError::Task("register unreadable".into()))
        }
    });
    let opts = Options {
        work: Some(work),
        clock,
        intents: None,
        signals: false,
        metrics: false,
    };
    daemon::run_with(
        d.join("regdrop.toml"),
        tokio::time::sleep(Duration::from_secs(25 * 60)),
        opts,
    )
    .await
    .unwrap();
    let starts = starts.lock().unwrap();
    // 06:00 fire, then a resume about every 61 s (+ one extra at each fire time) for 25 min.
    assert!(
        starts.len() >= 20 && starts.len() <= 30,
        "{} starts: {starts:?}",
        starts.len()
    );
    assert!(
        starts.iter().all(|(run, _)| run == "e-20261125T060000Z"),
        "only the active run: {starts:?}"
    );
    for w in starts.windows(2) {
        assert!(
            w[1].1 - w[0].1 >= chrono::Duration::seconds(1),
            "no hot loop: {starts:?}"
        );
    }
}
