//! Several `regdrop run` processes on one state store (issue 11, item 2): two real daemons
//! with their own spools and node names share a SQLite file or a PostgreSQL database and
//! one sshd. `kill -9` of a node mid-upload: the other takes the run over (regenerates the
//! artifact from the dead node's spool, or finds its file on the server), one receipt.
//! Random `kill -9`s (at least 20) and restarts while subscriptions fire every minute:
//! every run delivered exactly once (one receipt, one final file, no temp file left), the
//! receipt chain verifies, and runs a node held when it died were taken over by the other
//! while it was down. A node whose lease was taken stops without committing. Two daemons
//! given one node name: the second is refused (exit 78) and the first keeps delivering; a
//! killed node restarted at once takes its name back; a node whose name another daemon
//! took stops mid-upload without committing and exits 1.

use super::process::BIN;
use crate::util::daemon_env::{fast_retry, make_register, sshd_sub, wait_for_or};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::ls;
use crate::util::postgres::Postgres;
use crate::util::sshd::Sshd;
use regdrop::core::config::location::DbLocation;
use regdrop::store::{LeaseInfo, ReceiptFilter, Run, RunState, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LEASE_SECS: u64 = 5;
const NODES: [&str; 2] = ["node-a", "node-b"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shared {
    Sqlite,
    Postgres,
}

/// Two node folders (`node-a/`, `node-b/`: config, spool, logs) over one register, one
/// subscriptions folder and one state store.
struct Cluster {
    dir: tempfile::TempDir,
    state: DbLocation,
    children: [Option<Child>; 2],
    starts: [usize; 2],
}

impl Cluster {
    fn new(shared: Shared, rows: usize, max_per_host: usize) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("regdrop-multinode-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("subs")).unwrap();
        std::fs::create_dir_all(d.join("shared")).unwrap();
        make_register(&d.join("register.sqlite"), rows);
        let state_db = match shared {
            Shared::Sqlite => d.join("shared/state.sqlite").display().to_string(),
            Shared::Postgres => {
                let pg = Postgres::get();
                pg.url(&pg.fresh_database())
            }
        };
        for node in NODES {
            std::fs::create_dir_all(d.join(node)).unwrap();
            std::fs::write(
                d.join(node).join("regdrop.toml"),
                format!(
                    "register = \"../register.sqlite\"\nspool_dir = \"spool\"\nstate_db = \"{state_db}\"\n\
                     subscriptions_dir = \"../subs\"\n[defaults]\ntimezone = \"UTC\"\n\
                     [daemon]\nnode = \"{node}\"\nlease_secs = {LEASE_SECS}\nmax_concurrent = 8\n\
                     max_per_host = {max_per_host}\nshutdown_grace_secs = 2\n"
                ),
            )
            .unwrap();
        }
        Cluster {
            state: DbLocation::from_config(&state_db, Path::new("/")),
            dir,
            children: [None, None],
            starts: [0, 0],
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn store(&self) -> Store {
        Store::open_location(&self.state).unwrap()
    }

    fn write_sub(&self, id: &str, text: &str) {
        std::fs::write(self.path().join("subs").join(format!("{id}.toml")), text).unwrap();
    }

    fn start(&mut self, i: usize) {
        assert!(self.children[i].is_none());
        self.starts[i] += 1;
        let node = NODES[i];
        let log = self
            .path()
            .join(node)
            .join(format!("{}.log", self.starts[i]));
        let err = std::fs::File::create(log).unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(self.path().join(node).join("regdrop.toml"))
            .arg("run")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("REGDROP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    /// Starts a `regdrop run` on the config in `folder` (logging to `folder/log.log`),
    /// outside the two nodes' slots.
    fn spawn_in(&self, folder: &str, log: &str) -> Child {
        let err =
            std::fs::File::create(self.path().join(folder).join(format!("{log}.log"))).unwrap();
        Command::new(BIN)
            .arg("--config")
            .arg(self.path().join(folder).join("regdrop.toml"))
            .arg("run")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("REGDROP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap()
    }

    fn kill9(&mut self, i: usize) {
        let mut c = self.children[i].take().expect("running");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM to every running node; each must exit 0.
    fn stop_all(&mut self) {
        for (i, node) in NODES.iter().enumerate() {
            if let Some(mut c) = self.children[i].take() {
                let st = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .status()
                    .unwrap();
                assert!(st.success());
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                let code = loop {
                    if let Some(s) = c.try_wait().unwrap() {
                        break s.code();
                    }
                    assert!(std::time::Instant::now() < deadline, "{node} did not stop");
                    std::thread::sleep(Duration::from_millis(50));
                };
                assert_eq!(code, Some(0), "{node} exit\n{}", self.logs());
            }
        }
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for node in NODES {
            let dir = self.path().join(node);
            let mut names: Vec<String> = ls(&dir)
                .into_iter()
                .filter(|n| n.ends_with(".log"))
                .collect();
            names.sort_by_key(|n| n.trim_end_matches(".log").parse::<usize>().unwrap_or(0));
            for n in names {
                let text = std::fs::read_to_string(dir.join(&n)).unwrap_or_default();
                // The end of each log is what explains a failure.
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                s += &format!("--- {node}/{n} (last lines)\n");
                for l in tail.into_iter().rev() {
                    s += l;
                    s += "\n";
                }
            }
        }
        s
    }

    fn runs(&self) -> Vec<Run> {
        self.store().list_runs(&Default::default()).unwrap()
    }

    /// Live leases: run -> node.
    fn live_leases(&self) -> BTreeMap<String, String> {
        let now = chrono::Utc::now();
        self.store()
            .active_leases()
            .unwrap_or_default()
            .into_iter()
            .filter(|l: &LeaseInfo| l.live_at(now))
            .filter_map(|l| Some((l.run.to_string(), l.node?)))
            .collect()
    }
}

impl Drop for Cluster {
    /// A failed test leaves no daemon behind.
    fn drop(&mut self) {
        for c in self.children.iter_mut().filter_map(Option::take) {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn subscription(id: &str, cron: &str, sshd: &Sshd, port: u16, remote: &Path) -> String {
    sshd_sub(id, cron, "once", sshd, port, remote, &fast_retry(100))
}

/// The final files on the server (no sidecars, no hidden temp files).
fn finals(remote: &Path) -> Vec<String> {
    ls(remote)
        .into_iter()
        .filter(|n| {
            !n.starts_with('.') && !n.ends_with(".sha256") && !n.ends_with(".manifest.json")
        })
        .collect()
}

/// Every run delivered exactly once: one receipt per run, the receipt's file on the server
/// with its checksum, no other final file, no temp file, the chain intact.
fn assert_exactly_once(c: &Cluster, remote: &Path) -> Vec<Run> {
    let runs = c.runs();
    let store = c.store();
    let receipts = store.receipts(&ReceiptFilter::default()).unwrap();
    assert_eq!(
        receipts.len(),
        runs.len(),
        "one receipt per run\n{}",
        c.logs()
    );
    let mut names = BTreeSet::new();
    for r in &runs {
        assert_eq!(
            r.state,
            RunState::Delivered,
            "{} {:?}: {:?}\n{}",
            r.id,
            r.state,
            r.state_reason,
            c.logs()
        );
        let receipt = store.receipt_for_run(&r.id).unwrap().expect("a receipt");
        let name = Path::new(&receipt.remote_path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            crate::util::files::sha256_file(&remote.join(&name)),
            receipt.ciphertext_sha256,
            "{}: the file on the server is the one the receipt names",
            r.id
        );
        assert!(names.insert(name), "two runs name one file");
    }
    let on_server: BTreeSet<String> = finals(remote).into_iter().collect();
    assert_eq!(on_server, names, "exactly one final file per run");
    let temps: Vec<String> = ls(remote)
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(temps.is_empty(), "temp files left on the server: {temps:?}");
    let chain = store.verify_chain().unwrap();
    assert!(chain.is_intact(), "{chain}");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(c.path().join("node-a/regdrop.toml"))
        .args(["receipts", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "receipts verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    runs
}

/// A finished run three days ago: catch-up fires the latest missed time at once.
fn seed(c: &Cluster, sub: &str) -> regdrop::store::RunId {
    let s = c.store();
    let r = s
        .create_run(&regdrop::store::NewRun {
            subscription: sub.into(),
            scheduled_at: chrono::Utc::now() - chrono::Duration::days(3),
        })
        .unwrap()
        .into_run();
    s.set_state(&r.id, RunState::Failed, Some("seeded by the test"))
        .unwrap();
    r.id
}

async fn wait<T>(c: &Cluster, secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_or(secs, what, f, || c.logs()).await
}

/// A proxy to `sshd` passing `rate` bytes a second client -> server.
async fn throttled(sshd: &Sshd, rate: u64) -> Proxy {
    let faults = Faults {
        rate: Some(rate),
        ..Faults::default()
    };
    Proxy::with(0, sshd.port, faults).await
}

/// Node A alone on a fresh run of subscription `one`, whose ~1 MB goes through a proxy at
/// 100 kB/s (the upload takes seconds); a run seeded three days ago makes it fire at once.
struct SlowUpload {
    sshd: Sshd,
    proxy: Proxy,
    remote: std::path::PathBuf,
    c: Cluster,
    seeded: regdrop::store::RunId,
}

impl SlowUpload {
    async fn start(shared: Shared, folder: &str) -> SlowUpload {
        let sshd = Sshd::start();
        let remote = sshd.remote_dir(folder);
        let proxy = throttled(&sshd, 100_000).await;
        let mut c = Cluster::new(shared, 6_000, 3);
        c.write_sub(
            "one",
            &subscription("one", "0 6 * * *", &sshd, proxy.port, &remote),
        );
        let seeded = seed(&c, "one");
        c.start(0);
        SlowUpload {
            sshd,
            proxy,
            remote,
            c,
            seeded,
        }
    }

    /// The fresh run, once it uploads and its `.part` on the server has bytes.
    async fn uploading(&self) -> Run {
        let (c, remote) = (&self.c, &self.remote);
        wait(c, 90, "node A uploading", || {
            let r = c
                .runs()
                .into_iter()
                .find(|r| r.id != self.seeded && r.subscription == "one")?;
            let part = ls(remote).into_iter().find(|n| n.ends_with(".part"))?;
            let len = std::fs::metadata(remote.join(part)).ok()?.len();
            (r.state == RunState::Uploading && len > 0).then_some(r)
        })
        .await
    }
}

/// Node A works on a run alone, is killed mid-upload (its artifact is in its spool:
/// `sealed_by` A); node B, started after, takes the run over once A's lease expired and
/// regenerates it. A second run: A killed when its file is on the server, B finds it.
async fn take_over_after_a_kill_mid_upload(shared: Shared) {
    let f = SlowUpload::start(shared, "takeover").await;
    let run = f.uploading().await;
    let SlowUpload {
        sshd,
        proxy,
        remote,
        mut c,
        seeded,
    } = f;
    c.kill9(0);
    let lease = c.store().lease_of(&run.id).unwrap().unwrap();
    assert_eq!(lease.node.as_deref(), Some("node-a"));
    assert_eq!(lease.sealed_by.as_deref(), Some("node-a"));
    let a_sha = run.artifact.as_ref().unwrap().ciphertext_sha256.clone();
    // `regdrop status` on node B names both nodes: itself, and A holding the run.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(c.path().join("node-b/regdrop.toml"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(doc["node"], "node-b", "{doc}");
    let active = doc["active_runs"].as_array().expect("active_runs");
    let held = active
        .iter()
        .find(|a| a["id"] == run.id.as_str())
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(held["node"], "node-a", "{doc}");
    assert_eq!(held["sealed_by"], "node-a", "{doc}");
    assert!(held["lease_until"]["utc"].is_string(), "{doc}");

    c.start(1);
    let receipt = wait(&c, 120, "node B's receipt", || {
        c.store().receipt_for_run(&run.id).ok().flatten()
    })
    .await;
    let after = c.store().lease_of(&run.id).unwrap().unwrap();
    assert_eq!(
        after.delivered_by.as_deref(),
        Some("node-b"),
        "B committed the receipt"
    );
    assert_eq!(
        after.sealed_by.as_deref(),
        Some("node-b"),
        "B regenerated the artifact"
    );
    assert_ne!(
        receipt.ciphertext_sha256, a_sha,
        "A's artifact was never uploaded by B"
    );
    let b_log = std::fs::read_to_string(c.path().join("node-b/1.log")).unwrap();
    assert!(b_log.contains("Taken over"), "{b_log}");

    // Second run: A delivers, killed as soon as its final file is there (the receipt
    // committed or not); B, running, records the receipt (or finds it recorded).
    c.stop_all();
    std::fs::write(
        c.path().join("subs/one.toml"),
        subscription("one", "0 6 * * *", &sshd, proxy.port, &remote)
            .replace("id = \"one\"", "id = \"two\""),
    )
    .unwrap();
    std::fs::rename(
        c.path().join("subs/one.toml"),
        c.path().join("subs/two.toml"),
    )
    .unwrap();
    let seeded2 = seed(&c, "two");
    c.start(0);
    let run2 = wait(&c, 90, "node A's second run sealed", || {
        c.runs()
            .into_iter()
            .find(|r| r.subscription == "two" && r.id != seeded2 && r.artifact.is_some())
    })
    .await;
    let name2 = run2.artifact.as_ref().unwrap().file_name.clone();
    wait(&c, 120, "A's final file", || {
        ls(&remote).contains(&name2).then_some(())
    })
    .await;
    c.kill9(0);
    c.start(1);
    let receipt2 = wait(&c, 120, "the second receipt", || {
        c.store().receipt_for_run(&run2.id).ok().flatten()
    })
    .await;
    assert_eq!(
        receipt2.ciphertext_sha256,
        run2.artifact.as_ref().unwrap().ciphertext_sha256,
        "the file A uploaded is the one recorded, not a second upload"
    );
    c.stop_all();
    // Both seeded runs are `failed` by design; the others are delivered exactly once.
    let s = c.store();
    for id in [&seeded, &seeded2] {
        s.connection()
            .execute("DELETE FROM runs WHERE id = ?1", [id.as_str()])
            .unwrap();
    }
    assert_exactly_once(&c, &remote);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_upload_is_taken_over_on_sqlite() {
    take_over_after_a_kill_mid_upload(Shared::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_upload_is_taken_over_on_postgres() {
    take_over_after_a_kill_mid_upload(Shared::Postgres).await;
}

/// A node whose lease another node took (a partition, a stall) stops its upload at the
/// next heartbeat and commits nothing; once the lease is free again it takes the run back
/// (its own artifact, `sealed_by` itself) and delivers it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_lease_stops_without_committing() {
    let f = SlowUpload::start(Shared::Sqlite, "fenced").await;
    let run = f.uploading().await;
    // The server and the proxy stay in `f` until the end.
    let (remote, mut c) = (f.remote, f.c);
    let seeded = f.seeded;
    // Another node holds the lease now.
    c.store()
        .connection()
        .execute(
            "UPDATE runs SET lease_node = 'node-x', lease_until = '2099-01-01T00:00:00Z' WHERE id = ?1",
            [run.id.as_str()],
        )
        .unwrap();
    let log = c.path().join("node-a/1.log");
    wait(&c, 30, "node A to notice", || {
        std::fs::read_to_string(&log)
            .ok()?
            .contains("Lease lost")
            .then_some(())
    })
    .await;
    // Longer than the rest of the upload would have taken: nothing was committed.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(c.store().receipt_for_run(&run.id).unwrap().is_none());
    assert!(
        !ls(&remote).contains(&run.artifact.as_ref().unwrap().file_name),
        "{:?}",
        ls(&remote)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("lease_lost"), "{text}");
    // node-x lets go: A takes the run back and delivers its own artifact.
    c.store()
        .connection()
        .execute(
            "UPDATE runs SET lease_until = NULL WHERE id = ?1",
            [run.id.as_str()],
        )
        .unwrap();
    let receipt = wait(&c, 120, "the receipt", || {
        c.store().receipt_for_run(&run.id).ok().flatten()
    })
    .await;
    assert_eq!(
        receipt.ciphertext_sha256,
        run.artifact.as_ref().unwrap().ciphertext_sha256
    );
    let l = c.store().lease_of(&run.id).unwrap().unwrap();
    assert_eq!(l.delivered_by.as_deref(), Some("node-a"));
    c.stop_all();
    c.store()
        .connection()
        .execute("DELETE FROM runs WHERE id = ?1", [seeded.as_str()])
        .unwrap();
    assert_exactly_once(&c, &remote);
}

/// Kills for this long, at least [`KILLS`] times.
const KILL_PHASE: Duration = Duration::from_secs(115);
const KILLS: usize = 20;
const SUBS: usize = 6;

/// Random `kill -9`s of both nodes while `SUBS` subscriptions fire every minute.
async fn random_kills(shared: Shared) {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("chaos");
    let proxy = throttled(&sshd, 150_000).await;
    // The host's limit above the subscriptions: a run taken over never waits for a slot
    // (runs of the host are bounded across nodes: tests/it/store/leases.rs).
    let mut c = Cluster::new(shared, 4_000, SUBS + 2);
    for i in 0..SUBS {
        let id = format!("s{i}");
        c.write_sub(
            &id,
            &subscription(&id, "* * * * *", &sshd, proxy.port, &remote),
        );
    }
    c.start(0);
    c.start(1);
    let t0 = chrono::Utc::now();
    let began = std::time::Instant::now();
    let mut kills = 0;
    let mut checked_takeovers = 0;
    while began.elapsed() < KILL_PHASE || kills < KILLS {
        tokio::time::sleep(Duration::from_millis(1000 + rand::random::<u64>() % 3000)).await;
        let held = c.live_leases();
        let holder = held
            .values()
            .next()
            .and_then(|n| NODES.iter().position(|x| x == n));
        // Mostly a random node down for a moment; sometimes the node holding a run,
        // down for long enough that the other must take it over.
        let (victim, long) = match holder {
            Some(h) if rand::random::<f64>() < 0.5 => (h, true),
            _ => (rand::random::<u32>() as usize % 2, false),
        };
        let mine: Vec<String> = held
            .iter()
            .filter(|(_, n)| *n == NODES[victim])
            .map(|(r, _)| r.clone())
            .collect();
        c.kill9(victim);
        kills += 1;
        if long {
            // The lease, the take-over poll (half a lease) and the seconds of the clock.
            tokio::time::sleep(Duration::from_secs(LEASE_SECS * 2 + 2)).await;
            let store = c.store();
            let other = NODES[1 - victim];
            for run in &mine {
                let l = store.lease_of(&run.as_str().into()).unwrap().unwrap();
                // Delivered by the victim just before it was killed: nothing to take over.
                if l.state == RunState::Delivered
                    && l.delivered_by.as_deref() == Some(NODES[victim])
                {
                    continue;
                }
                let taken =
                    l.delivered_by.as_deref() == Some(other) || l.node.as_deref() == Some(other);
                assert!(
                    taken,
                    "run {run} of killed {} not taken over by {other} while it was down: {l:?}\n{}",
                    NODES[victim],
                    c.logs()
                );
                checked_takeovers += 1;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 1500)).await;
        }
        c.start(victim);
    }
    let t_end = chrono::Utc::now();
    // Settle: both nodes up; every run created so far ends delivered.
    wait(&c, 120, "every run delivered", || {
        let runs = c.runs();
        (!runs.is_empty() && runs.iter().all(|r| r.state == RunState::Delivered)).then_some(())
    })
    .await;
    // Let a fire that is due right now be created and finished too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait(&c, 120, "every run delivered (after the last fire)", || {
        c.runs()
            .iter()
            .all(|r| r.state == RunState::Delivered)
            .then_some(())
    })
    .await;
    c.stop_all();
    let runs = assert_exactly_once(&c, &remote);
    // Every minute of the kill phase fired for every subscription (one node was always up),
    // with the one rule a single daemon has too: a fire that comes while the subscription's
    // previous run is still busy waits for it, and a later fire takes the place of a waiting
    // one (kills every few seconds can keep a run busy past the next minute). So a minute
    // may have no run only when the run before it was still busy a minute later and a later
    // run exists.
    // The first minute after both nodes had loaded their subscriptions.
    let loaded = t0 + chrono::Duration::seconds(5);
    let first = loaded
        + chrono::Duration::seconds(
            60 - i64::from(loaded.format("%S").to_string().parse::<u8>().unwrap()),
        );
    let mut minute = first;
    let mut due = 0;
    let mut coalesced = 0;
    while minute <= t_end - chrono::Duration::seconds(5) {
        for i in 0..SUBS {
            let sub = format!("s{i}");
            let id = regdrop::store::run_id(&sub, minute);
            due += 1;
            if runs.iter().any(|r| r.id == id) {
                continue;
            }
            let of_sub = || runs.iter().filter(|r| r.subscription.as_str() == sub);
            let before = of_sub()
                .filter(|r| r.scheduled_at < minute)
                .max_by_key(|r| r.scheduled_at);
            let busy_past_next =
                before.is_some_and(|b| b.updated_at >= minute + chrono::Duration::minutes(1));
            let later = of_sub().any(|r| r.scheduled_at > minute);
            assert!(
                busy_past_next && later,
                "no run {id} (the run before it: {before:?})\n{}",
                c.logs()
            );
            coalesced += 1;
        }
        minute += chrono::Duration::minutes(1);
    }
    assert!(due >= SUBS, "{due} due runs");
    assert!(kills >= KILLS);
    assert!(
        checked_takeovers >= 1,
        "no kill hit a node holding a run (kills {kills})\n{}",
        c.logs()
    );
    // Which nodes committed receipts (either may win every claim: not asserted; the
    // take-over checks above show the other node finishing a killed node's runs).
    let store = c.store();
    let by: BTreeSet<String> = runs
        .iter()
        .filter_map(|r| store.lease_of(&r.id).unwrap()?.delivered_by)
        .collect();
    assert!(by.iter().all(|n| NODES.contains(&n.as_str())), "{by:?}");
    eprintln!(
        "multinode {shared:?}: {kills} kills, {} runs ({due} due in the kill phase, {coalesced} of them waiting behind a busy run and replaced by a later fire), {checked_takeovers} take-overs checked after a kill, {} starts",
        runs.len(),
        c.starts[0] + c.starts[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_of_two_nodes_on_sqlite_deliver_every_run_once() {
    random_kills(Shared::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_of_two_nodes_on_postgres_deliver_every_run_once() {
    random_kills(Shared::Postgres).await;
}

/// Waits up to `secs` for `child` to exit; its exit code.
fn exit_code(c: &Cluster, child: &mut Child, secs: u64, what: &str) -> Option<i32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not exit\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A second node folder (`twin/`) whose config names itself `node-a` too, its own spool.
fn twin_of_node_a(c: &Cluster) {
    std::fs::create_dir_all(c.path().join("twin")).unwrap();
    std::fs::copy(
        c.path().join("node-a/regdrop.toml"),
        c.path().join("twin/regdrop.toml"),
    )
    .unwrap();
}

fn log_of(c: &Cluster, file: &str) -> String {
    std::fs::read_to_string(c.path().join(file)).unwrap_or_default()
}

fn status_json(c: &Cluster, node: &str) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(c.path().join(node).join("regdrop.toml"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Two `regdrop run` with one node name on one store: the second is refused at start with
/// the holder's host and pid (exit 78, which the unit does not restart), and the first,
/// untouched, delivers a run after. Killed with `kill -9` and restarted at once, the first
/// takes its name back without waiting for `lease_secs`.
async fn one_name_one_daemon(shared: Shared) {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("twins");
    let mut c = Cluster::new(shared, 200, 3);
    twin_of_node_a(&c);
    c.start(0);
    let first_pid = c.children[0].as_ref().unwrap().id();
    wait(&c, 30, "node A registered", || {
        let e = c.store().node_entry("node-a").ok()??;
        (e.instance.pid == first_pid).then_some(())
    })
    .await;

    let mut twin = c.spawn_in("twin", "1");
    let code = exit_code(&c, &mut twin, 30, "the twin");
    let log = log_of(&c, "twin/1.log");
    assert_eq!(code, Some(78), "{log}");
    let host = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        log.contains(&format!(
            "node name node-a is held by another running regdrop daemon (host {host}, pid {first_pid},"
        )),
        "{log}"
    );
    assert!(
        log.contains("give each node its own [daemon] node"),
        "{log}"
    );
    assert!(log.contains("lease_secs (5 s)"), "{log}");
    // Refused before any work: no spool, and the registration is still the first's.
    assert!(!c
        .path()
        .join("twin/spool")
        .join("daemon-status.json")
        .exists());
    assert_eq!(
        c.store()
            .node_entry("node-a")
            .unwrap()
            .unwrap()
            .instance
            .pid,
        first_pid
    );

    // The first keeps delivering: a subscription added now (reload) fires at once.
    c.write_sub(
        "one",
        &subscription("one", "0 6 * * *", &sshd, sshd.port, &remote),
    );
    let seeded = seed(&c, "one");
    let st = Command::new("kill")
        .args(["-HUP", &first_pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let receipt = wait(&c, 60, "node A's receipt", || {
        let r = c
            .runs()
            .into_iter()
            .find(|r| r.subscription == "one" && r.id != seeded)?;
        c.store().receipt_for_run(&r.id).ok().flatten()
    })
    .await;
    let l = c.store().lease_of(&receipt.run_id).unwrap().unwrap();
    assert_eq!(l.delivered_by.as_deref(), Some("node-a"));

    // `status` lists the registered name with its host and pid, alive.
    let doc = status_json(&c, "node-b");
    let nodes = doc["nodes"].as_array().unwrap_or_else(|| panic!("{doc}"));
    let a = nodes
        .iter()
        .find(|n| n["name"] == "node-a")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(a["pid"], first_pid, "{doc}");
    assert_eq!(a["host"], host.as_str(), "{doc}");
    assert_eq!(a["state"], "alive", "{doc}");
    assert_eq!(a["this_node"], false, "{doc}");
    assert!(a["heartbeat_at"]["utc"].is_string(), "{doc}");

    // kill -9 and a restart at once: the name is taken back within the lease.
    c.kill9(0);
    c.start(0);
    let second_pid = c.children[0].as_ref().unwrap().id();
    wait(&c, 15, "node A registered again", || {
        let e = c.store().node_entry("node-a").ok()??;
        (e.instance.pid == second_pid).then_some(())
    })
    .await;
    // The log line may follow the registration the store shows by a moment.
    wait(&c, 15, "node A's log of taking its name back", || {
        log_of(&c, "node-a/2.log")
            .contains("its process on this machine is gone")
            .then_some(())
    })
    .await;
    c.stop_all();
    // A clean stop frees the name: the twin starts at once.
    let doc = status_json(&c, "node-a");
    let a = &doc["nodes"].as_array().unwrap()[0];
    assert_eq!(
        (a["name"].as_str(), a["state"].as_str()),
        (Some("node-a"), Some("stopped")),
        "{doc}"
    );
    let mut twin = c.spawn_in("twin", "2");
    let twin_pid = twin.id();
    wait(&c, 15, "the twin registered", || {
        let e = c.store().node_entry("node-a").ok()??;
        (e.instance.pid == twin_pid).then_some(())
    })
    .await;
    let _ = Command::new("kill")
        .args(["-TERM", &twin_pid.to_string()])
        .status();
    assert_eq!(
        exit_code(&c, &mut twin, 30, "the twin"),
        Some(0),
        "{}",
        log_of(&c, "twin/2.log")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_with_the_same_node_name_is_refused_on_sqlite() {
    one_name_one_daemon(Shared::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_with_the_same_node_name_is_refused_on_postgres() {
    one_name_one_daemon(Shared::Postgres).await;
}

/// A node whose name another daemon took while it ran (its heartbeat had lapsed): it
/// stops its upload at its next half-lease tick, commits nothing, exits 1 (systemd
/// restarts it), and its restart is refused while the other holds the name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_name_was_taken_stops_without_committing_and_exits_1() {
    let f = SlowUpload::start(Shared::Sqlite, "evicted").await;
    let run = f.uploading().await;
    // The server and the proxy stay in `f` until the end.
    let (remote, mut c) = (f.remote, f.c);
    // Another daemon, on another machine, registered as node-a.
    let now = regdrop::store::fmt_ts(chrono::Utc::now() + chrono::Duration::seconds(60));
    c.store()
        .connection()
        .execute(
            "UPDATE nodes SET instance = 'elsewhere', host = 'other-host', machine = 'm-other', \
             boot = 'b-other', pid = 4242, heartbeat_at = ?1 WHERE name = 'node-a'",
            [now.as_str()],
        )
        .unwrap();
    let mut a = c.children[0].take().unwrap();
    let code = exit_code(&c, &mut a, 30, "node A");
    let log = log_of(&c, "node-a/1.log");
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("Another regdrop daemon took this node's name"),
        "{log}"
    );
    assert!(
        log.contains(
            "node name node-a was taken by another regdrop daemon (host other-host, pid 4242"
        ),
        "{log}"
    );
    // Longer than the rest of the upload would have taken: nothing was committed.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(c.store().receipt_for_run(&run.id).unwrap().is_none());
    assert!(
        !ls(&remote).contains(&run.artifact.as_ref().unwrap().file_name),
        "{:?}",
        ls(&remote)
    );
    // Restarted (as systemd would): refused while the other holds the name.
    c.start(0);
    let mut again = c.children[0].take().unwrap();
    let code = exit_code(&c, &mut again, 30, "node A restarted");
    let log = log_of(&c, "node-a/2.log");
    assert_eq!(code, Some(78), "{log}");
    assert!(log.contains("(host other-host, pid 4242,"), "{log}");
    // `check` notes it too (a note: the files themselves are fine).
    let out = Command::new(BIN)
        .arg("--config")
        .arg(c.path().join("node-a/regdrop.toml"))
        .args(["check", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes = doc["notes"].as_array().unwrap_or_else(|| panic!("{doc}"));
    assert!(
        notes.iter().any(|n| n.as_str().is_some_and(|n| n.contains(
            "[daemon] node node-a is held by a running regdrop daemon on host other-host (pid 4242"
        ))),
        "{doc}"
    );
}

/// `regdrop deliver` and `regdrop retry` by hand under a node name a live daemon on another
/// machine holds (a copied configuration) are refused before they touch a run: exit 78,
/// the holder's host and pid, nothing on the server, no receipt. Once that daemon's
/// heartbeat is older than the lease, the same delivery goes through.
#[test]
fn a_delivery_by_hand_under_another_machines_live_node_name_is_refused() {
    use regdrop::core::nodes::Instance;
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("byhand");
    let c = Cluster::new(Shared::Sqlite, 200, 2);
    c.write_sub(
        "hand",
        &subscription("hand", "0 6 * * *", &sshd, sshd.port, &remote),
    );
    let failed = seed(&c, "hand");
    let elsewhere = Instance {
        id: "another-machines-daemon".into(),
        host: "other-host".into(),
        machine: "m-other".into(),
        boot: "b-other".into(),
        pid_ns: "pid:[4026531836]".into(),
        pid: 4343,
        proc_start: 1,
    };
    let lease = Duration::from_secs(LEASE_SECS);
    c.store()
        .register_node("node-a", &elsewhere, lease, |_, _| {
            panic!("a holder on another machine: no process to look at")
        })
        .unwrap();
    let by_hand = |args: &[&str]| {
        Command::new(BIN)
            .arg("--config")
            .arg(c.path().join("node-a/regdrop.toml"))
            .args(args)
            .output()
            .unwrap()
    };
    let runs_before = c.runs().len();
    for args in [
        &["deliver", "hand", "--no-retry"][..],
        &["retry", failed.as_str()][..],
    ] {
        let out = by_hand(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {err}");
        assert!(
            err.contains("node name `node-a` is held by a regdrop daemon running on another machine (host other-host, pid 4343,"),
            "{args:?}: {err}"
        );
        assert!(err.contains("[daemon] node"), "{args:?}: {err}");
    }
    assert_eq!(c.runs().len(), runs_before, "no run was created");
    assert_eq!(
        c.store().get_run(&failed).unwrap().unwrap().state,
        RunState::Failed
    );
    assert!(ls(&remote).is_empty(), "{:?}", ls(&remote));

    // The other machine's daemon went quiet for longer than the lease: the name is free.
    std::thread::sleep(lease + Duration::from_secs(2));
    let out = by_hand(&["deliver", "hand", "--no-retry"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(finals(&remote).len(), 1, "{:?}", ls(&remote));
}
