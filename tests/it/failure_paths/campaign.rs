//! The fault campaign: real sshd, real SQLite, real age, the real binary.
//!
//! - connection cuts at uniformly random byte offsets of the upload connection, N deliveries;
//! - `kill -9` of `regdrop run` at random moments during work, N kills, then one clean life;
//! - server down then up; wrong host key; wrong user key;
//! - mutation fuzzing of subscription files through `check` and daemon start;
//! - corrupt and truncated registers; a full spool (small tmpfs); a full server disk;
//! - spool files tampered with after sealing.
//!
//! It prints figures (deliveries, delivered, duplicates, partial files, orphans, panics,
//! receipts chain) and fails on any violation. Sizes come from `REGDROP_FAULTS_N` (default
//! 4: the CI run) and `REGDROP_FAULTS_KILLS` (default N); `scripts/faults/run.sh N` runs
//! the long campaign in release mode.

use crate::util;
use crate::util::small_disk::SmallDisk;

use super::{ctx_of, new_env, utc};
use crate::util::daemon_env::{fast_retry, sshd_sub, sub_toml, WRONG_KEY};
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::{ls, sha256_file};
use crate::util::sshd::Sshd;
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use regdrop::pipeline::delivery::{self, Ctx, Outcome, Quiet};
use regdrop::store::{ReceiptFilter, RunFilter, RunState, Store};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

use std::time::Duration;

#[derive(Debug, Default)]
struct Figures {
    deliveries: u64,
    delivered: u64,
    needs_attention: u64,
    failed: u64,
    duplicates: u64,
    partial: u64,
    orphans: u64,
    panics: u64,
    chains_ok: u64,
    chains_broken: u64,
    violations: Vec<String>,
}

impl Figures {
    fn violation(&mut self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.violations.push(what);
    }
    fn print(&self, scenario: &str) {
        println!(
            "FAULTS {scenario:<16} deliveries {:>4}  delivered {:>4}  needs_attention {:>3}  failed {:>3}  duplicates {}  partial {}  orphans {}  panics {}  chain {}",
            self.deliveries,
            self.delivered,
            self.needs_attention,
            self.failed,
            self.duplicates,
            self.partial,
            self.orphans,
            self.panics,
            if self.chains_broken == 0 {
                format!("ok ({} checked)", self.chains_ok)
            } else {
                format!("BROKEN ({})", self.chains_broken)
            }
        );
    }
}

fn n_of(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Looks at the remote folder and the store after deliveries: every receipt's file is on
/// the server with the receipt's SHA-256 (else partial), no run has two final files or two
/// receipts (duplicates), no temp file is left (orphans), the chain verifies.
fn audit(store: &Store, remote: &Path, f: &mut Figures, scenario: &str) {
    let receipts = store.receipts(&ReceiptFilter::default()).unwrap();
    let names = ls(remote);
    for r in &receipts {
        let name = r.remote_path.rsplit('/').next().unwrap();
        let p = remote.join(name);
        if !p.exists() || sha256_file(&p) != r.ciphertext_sha256 {
            f.partial += 1;
            f.violation(format!(
                "{scenario}: receipt {} names {name}, which is not the sealed file on the server",
                r.id
            ));
        }
    }
    let mut runs = std::collections::HashSet::new();
    for r in &receipts {
        if !runs.insert(r.run_id.clone()) {
            f.duplicates += 1;
            f.violation(format!("{scenario}: run {} has two receipts", r.run_id));
        }
    }
    // Final files nobody has a receipt for (a delivery that never finished its receipt).
    for n in &names {
        if n.starts_with('.') {
            f.orphans += 1;
            eprintln!("{scenario}: left on the server: {n}");
            continue;
        }
        let sidecar =
            n.ends_with(".sha256") || n.ends_with(".manifest.json") || n.ends_with(".done");
        if !sidecar
            && !receipts
                .iter()
                .any(|r| r.remote_path.ends_with(&format!("/{n}")))
        {
            f.partial += 1;
            f.violation(format!(
                "{scenario}: {n} is on the server without a receipt"
            ));
        }
    }
    let chain = store.verify_chain().unwrap();
    if chain.is_intact() {
        f.chains_ok += 1;
    } else {
        f.chains_broken += 1;
        f.violation(format!("{scenario}: receipt chain broken: {chain}"));
    }
}

fn tally(f: &mut Figures, out: &Outcome) {
    match out {
        Outcome::Delivered(_) | Outcome::AlreadyDelivered(_) => f.delivered += 1,
        Outcome::NeedsAttention { .. } => f.needs_attention += 1,
        Outcome::Failed { .. } => f.failed += 1,
        Outcome::Interrupted { .. } | Outcome::Elsewhere { .. } => {}
    }
}

/// Runs one delivery in its own task, so a panic is counted, not fatal.
async fn deliver_counted(
    ctx: &Ctx,
    sub: &regdrop::core::config::Subscription,
    at: DateTime<Utc>,
    f: &mut Figures,
) -> Option<Outcome> {
    let (ctx2, sub2) = (ctx.clone(), sub.clone());
    f.deliveries += 1;
    match tokio::spawn(async move { delivery::deliver(&ctx2, &sub2, at, &Quiet).await }).await {
        Ok(Ok(o)) => {
            tally(f, &o);
            Some(o)
        }
        Ok(Err(e)) => {
            f.violation(format!("delivery at {at} ended outside the protocol: {e}"));
            None
        }
        Err(e) => {
            f.panics += 1;
            f.violation(format!("delivery at {at} panicked: {e}"));
            None
        }
    }
}

// ---- scenarios ------------------------------------------------------------------------

async fn cuts(sshd: &Sshd, n: u64, rng: &mut impl Rng, all: &mut Vec<String>) {
    let mut f = Figures::default();
    let env = new_env(1500, "");
    let remote = sshd.remote_dir("cuts");
    // How many bytes the upload connection carries: a clean delivery through a counting
    // proxy, minus what the target check before the extract took.
    let probe_proxy = Proxy::with(0, sshd.port, Faults::default()).await;
    let mut t = sshd.target(&remote);
    t.port = probe_proxy.port;
    regdrop::sftp::probe(&t).await.unwrap();
    let probe_bytes = probe_proxy.up_bytes.load(Ordering::SeqCst);
    let counting = Proxy::with(0, sshd.port, Faults::default()).await;
    env.write_sub(
        "cut",
        &sshd_sub(
            "cut",
            "0 6 * * *",
            "skip",
            sshd,
            counting.port,
            &remote,
            &fast_retry(6),
        ),
    );
    let (ctx, loaded) = ctx_of(&env);
    let sub = loaded.subscription("cut").unwrap().clone();
    deliver_counted(&ctx, &sub, utc("2020-01-01T05:00:00Z"), &mut f).await;
    let upload_bytes = counting
        .up_bytes
        .load(Ordering::SeqCst)
        .saturating_sub(probe_bytes)
        .max(1);
    for i in 0..n {
        let cut = rng.gen_range(0..upload_bytes);
        let proxy = Proxy::with(
            0,
            sshd.port,
            Faults {
                cut_after: Some(cut),
                cut_connections: Some(1),
                spare_first: 1,
                ..Faults::default()
            },
        )
        .await;
        let mut s = sub.clone();
        s.target_mut().unwrap().port = proxy.port;
        let at = utc("2020-01-02T05:00:00Z") + chrono::Duration::days(i as i64);
        if let Some(o) = deliver_counted(&ctx, &s, at, &mut f).await {
            if !matches!(o, Outcome::Delivered(_)) {
                f.violation(format!("cut at byte {cut} of {upload_bytes}: {o:?}"));
            }
        }
    }
    audit(&env.store(), &remote, &mut f, "cuts");
    f.print("cuts");
    println!("FAULTS cuts: offsets uniform in [0, {upload_bytes}) bytes of the upload connection");
    all.extend(f.violations);
}

async fn kills(sshd: &Sshd, n: u64, rng: &mut impl Rng, all: &mut Vec<String>) {
    let mut f = Figures::default();
    let env = new_env(3000, "");
    let remote = sshd.remote_dir("kills");
    for k in 0..4 {
        let id = format!("k{k}");
        let retry = fast_retry(100);
        env.write_sub(
            &id,
            &sshd_sub(&id, "* * * * *", "once", sshd, sshd.port, &remote, &retry),
        );
        // A run before this minute: the first start catches the current minute up at once.
        env.seed_old_run(&id, Utc::now() - chrono::Duration::days(1));
    }
    let start = || {
        util::cli::regdrop_in(env.path())
            .arg("run")
            .env("REGDROP_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let stderr_of = |c: std::process::Child| {
        String::from_utf8_lossy(&c.wait_with_output().unwrap().stderr).into_owned()
    };
    for _ in 0..n {
        let mut c = start();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..2500)));
        let _ = Command::new("kill")
            .args(["-9", &c.id().to_string()])
            .status();
        let _ = c.wait();
        let err = stderr_of(c);
        if err.contains("panicked") {
            f.panics += 1;
            f.violation(format!("the daemon panicked: {err}"));
        }
    }
    // A clean life: every run ends.
    let c = start();
    let t0 = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let active = env.store().unfinished_runs().unwrap();
        if active.is_empty() || t0.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let err = stderr_of(c);
    if err.contains("panicked") {
        f.panics += 1;
        f.violation(format!("the daemon panicked: {err}"));
    }
    let runs = env.store().list_runs(&RunFilter::default()).unwrap();
    for r in runs
        .iter()
        .filter(|r| r.state_reason.as_deref() != Some("seeded by the test"))
    {
        f.deliveries += 1;
        match r.state {
            RunState::Delivered => f.delivered += 1,
            RunState::NeedsAttention => f.needs_attention += 1,
            RunState::Failed => f.failed += 1,
            s => f.violation(format!("kills: run {} is still {s}", r.id)),
        }
        if r.state == RunState::NeedsAttention || r.state == RunState::Failed {
            f.violation(format!(
                "kills: run {} ended {}: {:?}",
                r.id, r.state, r.state_reason
            ));
        }
    }
    audit(&env.store(), &remote, &mut f, "kills");
    f.print(&format!("kills ({n})"));
    all.extend(f.violations);
}

async fn down_up_and_wrong_keys(sshd: &Sshd, all: &mut Vec<String>) {
    let mut f = Figures::default();
    let env = new_env(200, "");
    let remote = sshd.remote_dir("downup");
    let proxy = Proxy::with(0, sshd.port, Faults::default()).await;
    proxy.down.store(true, Ordering::SeqCst);
    env.write_sub(
        "du",
        &sshd_sub(
            "du",
            "0 6 * * *",
            "skip",
            sshd,
            proxy.port,
            &remote,
            &fast_retry(60),
        ),
    );
    let other = sshd.dir.path().join("other_key");
    util::sshd::keygen(&other);
    env.write_sub(
        "hk",
        &sub_toml(
            "hk",
            "0 6 * * *",
            "skip",
            sshd.port,
            WRONG_KEY,
            &sshd.user_key,
            &remote,
            &fast_retry(6),
        ),
    );
    env.write_sub(
        "uk",
        &sub_toml(
            "uk",
            "0 6 * * *",
            "skip",
            sshd.port,
            &sshd.host_pub,
            &other,
            &remote,
            &fast_retry(6),
        ),
    );
    let (ctx, loaded) = ctx_of(&env);
    let down = proxy.down.clone();
    let up_later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        down.store(false, Ordering::SeqCst);
    });
    let du = loaded.subscription("du").unwrap().clone();
    match deliver_counted(&ctx, &du, utc("2026-11-25T05:00:00Z"), &mut f).await {
        Some(Outcome::Delivered(r)) if r.attempts >= 2 => {}
        o => f.violation(format!("server down then up: {o:?}")),
    }
    up_later.await.unwrap();
    for id in ["hk", "uk"] {
        let sub = loaded.subscription(id).unwrap().clone();
        match deliver_counted(&ctx, &sub, utc("2026-11-25T05:00:00Z"), &mut f).await {
            Some(Outcome::NeedsAttention { run, .. }) => {
                let r = env.store().get_run(&run).unwrap().unwrap();
                let a = env.store().attempts(&run).unwrap();
                if r.artifact.is_some() || a.len() != 1 {
                    f.violation(format!(
                        "{id}: a permanent target error cost an extract or retried: {a:?}"
                    ));
                }
            }
            o => f.violation(format!("{id}: {o:?}")),
        }
    }
    audit(&env.store(), &remote, &mut f, "down-up/keys");
    f.print("down-up, keys");
    all.extend(f.violations);
}

async fn registers(sshd: &Sshd, n: u64, rng: &mut impl Rng, all: &mut Vec<String>) {
    let mut f = Figures::default();
    let env = new_env(2000, "");
    let remote = sshd.remote_dir("registers");
    let good = std::fs::read(env.path().join("register.sqlite")).unwrap();
    env.write_sub(
        "reg",
        &sshd_sub(
            "reg",
            "0 6 * * *",
            "skip",
            sshd,
            sshd.port,
            &remote,
            &fast_retry(6),
        ),
    );
    let (ctx, loaded) = ctx_of(&env);
    let sub = loaded.subscription("reg").unwrap().clone();
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    for i in 0..n.max(3) {
        let mut bytes = good.clone();
        let what = match i % 3 {
            0 => {
                let at = rng.gen_range(0..bytes.len());
                bytes.truncate(at);
                "truncated"
            }
            1 => {
                let page = rng.gen_range(0..bytes.len() / 4096) * 4096;
                for b in &mut bytes[page..(page + 4096).min(good.len())] {
                    *b = rng.gen();
                }
                "page overwritten"
            }
            _ => {
                bytes = b"not a database at all\n".repeat(rng.gen_range(0..500));
                "not a database"
            }
        };
        std::fs::write(env.path().join("register.sqlite"), &bytes).unwrap();
        let at = utc("2026-01-01T05:00:00Z") + chrono::Duration::days(i as i64);
        if let Some(o) = deliver_counted(&ctx, &sub, at, &mut f).await {
            let label = match &o {
                Outcome::Delivered(_) => "delivered".to_string(),
                Outcome::NeedsAttention { .. } | Outcome::Failed { .. } => {
                    let run = regdrop::store::run_id("reg", at);
                    let a = env.store().attempts(&run).unwrap();
                    let r = env.store().get_run(&run).unwrap().unwrap();
                    if a.is_empty() || r.state_reason.is_none() {
                        f.violation(format!("{what}: no attempt or reason recorded"));
                    }
                    format!(
                        "{} ({})",
                        r.state,
                        a.last()
                            .and_then(|a| a.error_class)
                            .map(|s| s.as_str())
                            .unwrap_or_default()
                    )
                }
                o => format!("{o:?}"),
            };
            *kinds.entry(format!("{what} -> {label}")).or_default() += 1;
        }
    }
    audit(&env.store(), &remote, &mut f, "registers");
    f.print("registers");
    for (k, v) in kinds {
        println!("FAULTS registers: {v} x {k}");
    }
    all.extend(f.violations);
}

async fn full_disks(sshd: &Sshd, all: &mut Vec<String>) {
    let mut f = Figures::default();
    // The spool.
    let env = new_env(3000, "");
    let remote = sshd.remote_dir("fullspool");
    let spool = SmallDisk::mount(&env.path().join("spool"), "64k");
    env.write_sub(
        "fs",
        &sshd_sub(
            "fs",
            "0 6 * * *",
            "skip",
            sshd,
            sshd.port,
            &remote,
            &fast_retry(2),
        ),
    );
    let (ctx, loaded) = ctx_of(&env);
    let sub = loaded.subscription("fs").unwrap().clone();
    match deliver_counted(&ctx, &sub, utc("2026-11-25T05:00:00Z"), &mut f).await {
        Some(Outcome::Failed { run, .. }) => {
            let a = env.store().attempts(&run).unwrap();
            if a.len() != 2
                || a.iter()
                    .any(|a| a.error_class.map(|s| s.as_str()) != Some("spool"))
            {
                f.violation(format!("full spool: attempts {a:?}"));
            }
        }
        o => f.violation(format!("full spool: {o:?}")),
    }
    if ls(&spool.0).iter().any(|n| n.contains("artifact")) {
        f.violation(format!("full spool: left {:?}", ls(&spool.0)));
    }
    audit(&env.store(), &remote, &mut f, "full spool");
    drop(spool);
    // The server's disk.
    let env = new_env(3000, "");
    let remote = sshd.remote_dir("fullserver");
    let disk = SmallDisk::mount(&remote, "256k");
    std::fs::set_permissions(&remote, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.write_sub(
        "fd",
        &sshd_sub(
            "fd",
            "0 6 * * *",
            "skip",
            sshd,
            sshd.port,
            &remote,
            &fast_retry(2),
        ),
    );
    let (ctx, loaded) = ctx_of(&env);
    let sub = loaded.subscription("fd").unwrap().clone();
    match deliver_counted(&ctx, &sub, utc("2026-11-25T05:00:00Z"), &mut f).await {
        Some(Outcome::Failed { .. }) => {}
        o => f.violation(format!("full server disk: {o:?}")),
    }
    audit(&env.store(), &remote, &mut f, "full server disk");
    drop(disk);
    f.print("full disks");
    all.extend(f.violations);
}

async fn tampering(sshd: &Sshd, n: u64, rng: &mut impl Rng, all: &mut Vec<String>) {
    let mut f = Figures::default();
    let env = new_env(500, "");
    let remote = sshd.remote_dir("tamper");
    env.write_sub(
        "tp",
        &sshd_sub(
            "tp",
            "0 6 * * *",
            "skip",
            sshd,
            sshd.port,
            &remote,
            &fast_retry(6),
        ),
    );
    let (ctx, loaded) = ctx_of(&env);
    let sub = loaded.subscription("tp").unwrap().clone();
    for i in 0..n {
        let at = utc("2026-01-01T05:00:00Z") + chrono::Duration::days(i as i64);
        let name = format!("tp_{}.dsv.age", at.format("%Y%m%dT%H%M%S"));
        std::fs::write(remote.join(&name), b"blocker").unwrap();
        f.deliveries += 1;
        let Ok(Outcome::NeedsAttention { run, .. }) =
            delivery::deliver(&ctx, &sub, at, &Quiet).await
        else {
            f.violation("tamper: the blocked first delivery did not need attention".into());
            continue;
        };
        std::fs::remove_file(remote.join(&name)).unwrap();
        let sealed = env.store().get_run(&run).unwrap().unwrap();
        let path = sealed.artifact.as_ref().unwrap().path.clone();
        let len = std::fs::metadata(&path).unwrap().len();
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            match i % 3 {
                0 => file.set_len(rng.gen_range(0..len)).unwrap(),
                1 => {
                    file.seek(SeekFrom::Start(rng.gen_range(0..len))).unwrap();
                    let junk: Vec<u8> = (0..4096).map(|_| rng.gen()).collect();
                    file.write_all(&junk).unwrap();
                }
                _ => {
                    file.seek(SeekFrom::Start(rng.gen_range(0..len))).unwrap();
                    file.write_all(&[rng.gen::<u8>() | 1]).unwrap();
                }
            }
        }
        let tampered = sha256_file(Path::new(&path));
        match delivery::deliver_run(&ctx, &sub, sealed, &Quiet).await {
            Ok(Outcome::Delivered(r)) => {
                f.delivered += 1;
                if sha256_file(&remote.join(&name)) == tampered && tampered != r.ciphertext_sha256 {
                    f.partial += 1;
                    f.violation(format!("tamper {i}: the tampered file went out"));
                }
            }
            o => f.violation(format!("tamper {i}: {o:?}")),
        }
    }
    audit(&env.store(), &remote, &mut f, "tampering");
    f.print("tampering");
    all.extend(f.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_campaign() {
    let n = n_of("REGDROP_FAULTS_N", 4);
    let kills_n = n_of("REGDROP_FAULTS_KILLS", n);
    let seed = n_of("REGDROP_FAULTS_SEED", 7);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let sshd = Sshd::start();
    let mut all = Vec::new();
    println!("FAULTS campaign: N = {n}, kills = {kills_n}, seed = {seed}");
    cuts(&sshd, n, &mut rng, &mut all).await;
    down_up_and_wrong_keys(&sshd, &mut all).await;
    registers(&sshd, n, &mut rng, &mut all).await;
    if util::root::require(
        "its full-disk scenarios mount small tmpfs disks (only those are skipped)",
    ) {
        full_disks(&sshd, &mut all).await;
    }
    tampering(&sshd, n.clamp(3, 30), &mut rng, &mut all).await;
    // Mutation fuzzing of subscription files through `check` and daemon start.
    // (paused time: the daemon runs three days of schedule in moments)
    let m = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(util::mutate::campaign((n * 100) as usize, seed, dir.path()))
    })
    .await
    .unwrap();
    println!(
        "FAULTS mutations       {} files: accepted {}, refused {}, check runs {}, panics {}",
        m.mutations,
        m.accepted,
        m.refused,
        m.cli_checks,
        m.panics.len()
    );
    all.extend(m.panics);
    let sshd2 = &sshd;
    kills(sshd2, kills_n, &mut rng, &mut all).await;
    println!("FAULTS violations {}", all.len());
    assert!(
        all.is_empty(),
        "{} violations:\n{}",
        all.len(),
        all.join("\n")
    );
}
