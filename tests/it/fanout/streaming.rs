//! Shared scans that upload while they seal, through the real `regdrop run` process against
//! a real OpenSSH sshd and the fault proxy: subscriptions with one register query fire
//! together, share one scan, and their runs start while it seals (each under its host's
//! limit) and upload the growing spool files. The evidence is the daemon's own log, in
//! order: each run's "Uploading while the shared scan seals" comes before the scan's
//! "Shared scan sealed". A member whose connection is cut during the scan and its upload
//! is delivered exactly once, from its spool copy (read again), on its second attempt; a
//! member that gets its host's slot only after the scan uploads the sealed file without
//! reading it again; a member whose server stalls holds up neither the scan nor the
//! others' receipts.

use super::daemon::{assert_as_solo, log, metric, spawn_logging, sub};
use crate::util::daemon_env::{wait_for_or, Env};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::ls;
use crate::util::sshd::Sshd;
use crate::util::{free_port, http_get};
use chrono::Utc;
use regdrop::store::{Run, RunState};
use std::path::PathBuf;
use std::process::Command;

/// Vehicles in the register: three sealed files of about 6 MB, so that the first bytes
/// an upload can follow (the sealer's first 1 MiB write) come well before the scan's end.
const ROWS: usize = 20_000;

const SAME: &str = "report = \"technical\"\nformat = \"dsv\"";

/// The daemon process; killed when a test ends without stopping it (a failed assertion).
struct Daemon(Option<std::process::Child>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Fanout {
    env: Env,
    /// (id, age identity, remote folder) per member.
    members: Vec<(String, PathBuf, PathBuf)>,
}

/// A daemon config with the members `(id, port)`, all with one query, each with its own
/// key and folder, fired at once by catch-up (the default limits: 4 runs at once, the
/// scan counting as one, 2 per host).
fn setup(sshd: &Sshd, metrics: u16, members: &[(&str, u16)]) -> Fanout {
    let env = Env::new(ROWS, &format!("metrics_listen = \"127.0.0.1:{metrics}\"\n"));
    let mut out = Vec::new();
    for (id, port) in members {
        let identity = env.path().join(format!("{id}.agekey"));
        let recipient = crate::util::cli::age_keygen(&identity);
        let remote = sshd.remote_dir(id);
        let text = sub(
            id,
            *port,
            &sshd.host_pub,
            &sshd.user_key,
            &remote,
            SAME,
            &recipient,
        );
        env.write_sub(id, &text);
        env.seed_old_run(id, Utc::now() - chrono::Duration::days(3));
        out.push((id.to_string(), identity, remote));
    }
    Fanout { env, members: out }
}

impl Fanout {
    /// The run catch-up made for `id`.
    fn run(&self, id: &str) -> Option<Run> {
        self.env
            .runs(id)
            .into_iter()
            .find(|r| r.state_reason.as_deref() != Some("seeded by the test"))
    }

    async fn delivered(&self, id: &str) -> Run {
        wait_for_or(
            90,
            &format!("{id} delivered"),
            || self.run(id).filter(|r| r.state == RunState::Delivered),
            || log(&self.env),
        )
        .await
    }

    /// The runs of `ids` joined the one scan (of all members) and started their uploads
    /// while it sealed: in the daemon's log each one's "Uploading while the shared scan
    /// seals" comes before the scan's end. Returns the line number of that end.
    fn assert_uploads_overlapped_the_scan(&self, log: &str, ids: &[&str]) -> usize {
        let lines: Vec<&str> = log.lines().collect();
        let ends: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains("Shared scan sealed"))
            .collect();
        assert_eq!(ends.len(), 1, "one scan:\n{log}");
        let end = ends[0];
        let all = format!("Shared scan sealed {} runs", self.members.len());
        assert!(lines[end].contains(&all), "{}", lines[end]);
        for id in ids {
            let run = self.run(id).unwrap();
            let joined = lines
                .iter()
                .position(|l| {
                    l.contains("Uploading while the shared scan seals")
                        && l.contains(run.id.as_str())
                })
                .unwrap_or_else(|| panic!("{id} did not upload while the scan sealed:\n{log}"));
            assert!(joined < end, "{id} joined after the scan ended:\n{log}");
        }
        end
    }

    /// `id`'s folder holds its one delivered file and its sidecars, nothing else (no temp
    /// file, no second copy).
    fn assert_one_file(&self, id: &str, remote: &std::path::Path) {
        let files = ls(remote);
        let finals: Vec<&String> = files.iter().filter(|f| f.ends_with(".age")).collect();
        assert_eq!(finals.len(), 1, "{id}: {files:?}");
        assert_eq!(
            files,
            [
                finals[0].clone(),
                format!("{}.manifest.json", finals[0]),
                format!("{}.sha256", finals[0])
            ],
            "{id}: {files:?}"
        );
    }

    /// The daemon, with the debug lines of the delivery (how the spool file was checked).
    fn spawn(&self) -> Daemon {
        Daemon(Some(spawn_logging(
            &self.env,
            "info,regdrop::pipeline::delivery=debug",
        )))
    }

    /// The line of `log` with `what` for the run of `id`.
    fn line(&self, log: &str, id: &str, what: &str) -> Option<usize> {
        let run = self.run(id)?;
        log.lines()
            .position(|l| l.contains(what) && l.contains(run.id.as_str()))
    }

    fn stop(&self, mut daemon: Daemon) -> String {
        let mut daemon = daemon.0.take().expect("running");
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(daemon.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        daemon.wait().unwrap();
        log(&self.env)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_while_its_scan_seals_and_uploads_is_delivered_once() {
    let sshd = Sshd::start();
    let metrics = free_port();
    // The target check before the scan passes; the upload beside the sealing is cut after
    // 256 KiB; the connections of the retry pass.
    let cut = Proxy::with(
        0,
        sshd.port,
        Faults {
            spare_first: 1,
            cut_after: Some(256 << 10),
            cut_connections: Some(1),
            ..Faults::default()
        },
    )
    .await;
    // m4late waits for a slot of its host (m1 and m2 hold both until their commits, after
    // the scan): it uploads the sealed file afterwards.
    let f = setup(
        &sshd,
        metrics,
        &[
            ("m1", sshd.port),
            ("m2", sshd.port),
            ("m3cut", cut.port),
            ("m4late", sshd.port),
        ],
    );
    let daemon = f.spawn();
    for (id, _, _) in &f.members {
        f.delivered(id).await;
    }
    let body = wait_for_or(
        30,
        "the metrics",
        || http_get(metrics, "/metrics"),
        || log(&f.env),
    )
    .await;
    let log = f.stop(daemon);
    let end = f.assert_uploads_overlapped_the_scan(&log, &["m1", "m2", "m3cut"]);
    assert_eq!(
        metric(&body, "regdrop_shared_scan_streamed_total"),
        3.0,
        "{log}"
    );
    // The cut came while the scan sealed: the failed upload is logged before its end.
    let failed = f
        .line(&log, "m3cut", "Delivery failed")
        .unwrap_or_else(|| panic!("no failed upload of m3cut:\n{log}"));
    assert!(failed < end, "the cut came after the scan:\n{log}");
    // Its retry read the spool copy again before uploading it; m4late, sealed moments
    // before its first attempt, was not read again.
    const READ: &str = "Sealed artifact read again and checked";
    const TRUSTED: &str = "Sealed by this process moments ago; not read again";
    assert!(f.line(&log, "m3cut", READ).is_some(), "{log}");
    assert!(f.line(&log, "m3cut", TRUSTED).is_none(), "{log}");
    assert!(f
        .line(&log, "m4late", "Uploading while the shared scan seals")
        .is_none());
    assert!(
        f.line(&log, "m4late", TRUSTED).is_some_and(|l| l > end),
        "{log}"
    );
    assert!(f.line(&log, "m4late", READ).is_none(), "{log}");

    let loaded = regdrop::loader::load(&f.env.config()).unwrap();
    let store = f.env.store();
    assert_eq!(
        store
            .receipts(&regdrop::store::ReceiptFilter::default())
            .unwrap()
            .len(),
        4
    );
    for (id, identity, remote) in &f.members {
        let run = f.run(id).unwrap();
        let receipt = store
            .receipt_for_run(&run.id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id}: no receipt"));
        let attempts = store.attempts(&run.id).unwrap();
        // The cut member: its first attempt (upload while sealing) failed, its retry
        // uploaded the spool copy; the others in one attempt.
        let want = if id == "m3cut" { 2 } else { 1 };
        assert_eq!(attempts.len(), want, "{id}: {attempts:?}");
        assert_as_solo(&f.env, &loaded, id, &run, &receipt, identity, remote);
        f.assert_one_file(id, remote);
    }
    assert!(
        cut.connections() >= 3,
        "the check, the cut upload, the retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_server_stalls_holds_up_neither_the_scan_nor_the_others() {
    let sshd = Sshd::start();
    let metrics = free_port();
    // The target check passes; every later connection passes nothing more to the server
    // after 256 KiB until the test releases it.
    let stall = Proxy::with(
        0,
        sshd.port,
        Faults {
            spare_first: 1,
            stall_after: Some(256 << 10),
            ..Faults::default()
        },
    )
    .await;
    let f = setup(
        &sshd,
        metrics,
        &[
            ("m1", sshd.port),
            ("m2", sshd.port),
            ("m3stall", stall.port),
        ],
    );
    let daemon = f.spawn();
    // The others are delivered while the stalled one's upload cannot go on.
    for id in ["m1", "m2"] {
        f.delivered(id).await;
    }
    let stalled = f.run("m3stall").unwrap();
    assert_ne!(stalled.state, RunState::Delivered);
    assert!(f
        .env
        .store()
        .receipt_for_run(&stalled.id)
        .unwrap()
        .is_none());
    assert!(stall.held.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        log(&f.env).contains("Shared scan sealed 3 runs"),
        "the scan ended without waiting for the stalled upload:\n{}",
        log(&f.env)
    );
    stall.held.store(false, std::sync::atomic::Ordering::SeqCst);
    f.delivered("m3stall").await;
    let log = f.stop(daemon);
    f.assert_uploads_overlapped_the_scan(&log, &["m1", "m2", "m3stall"]);

    let loaded = regdrop::loader::load(&f.env.config()).unwrap();
    let store = f.env.store();
    for (id, identity, remote) in &f.members {
        let run = f.run(id).unwrap();
        let receipt = store.receipt_for_run(&run.id).unwrap().unwrap();
        // Stalled is not failed: one attempt each.
        let attempts = store.attempts(&run.id).unwrap();
        assert_eq!(attempts.len(), 1, "{id}: {attempts:?}");
        assert_as_solo(&f.env, &loaded, id, &run, &receipt, identity, remote);
        f.assert_one_file(id, remote);
    }
}
