//! Upload while sealing (issue 12, item 2) against a real OpenSSH sshd, through the fault
//! proxy: a connection cut while the file is sealed and uploaded at once ends delivered once
//! (one receipt, the file decrypts with the `age` CLI to what `regdrop extract` gives, no
//! temp file left); a sealing that fails mid-way (the spool's disk fills up) leaves no temp
//! file, no file and no receipt; a slow server still gets the file.

use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::small_disk::SmallDisk;
use crate::util::sshd::Sshd;
use crate::util::{self};
use std::path::{Path, PathBuf};
use std::process::Command;

const AT: &str = "2026-11-25T06:00:00+01:00";
const FILE: &str = "sub_20261125.dsv.age";

struct Env {
    dir: tempfile::TempDir,
    age_identity: PathBuf,
}

/// A config folder with a register of `vehicles` and the subscription `sub` delivering
/// to `port` on loopback into `remote`, 1 s retries up to `max_attempts`.
fn setup(sshd: &Sshd, port: u16, remote: &Path, vehicles: u32, max_attempts: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let age_identity = d.join("age.key");
    let rec = util::cli::age_keygen(&age_identity);
    util::cli::write_config(d, "");
    std::fs::write(
        d.join("subs/sub.toml"),
        util::cli::CustomerSub {
            port,
            user: &util::sshd::current_user(),
            host_key: &sshd.host_pub,
            key: &sshd.user_key,
            remote: &remote.display().to_string(),
            recipient: &rec,
            extract_extra: "",
            max_attempts,
            extra: "",
        }
        .toml(),
    )
    .unwrap();
    let n = vehicles.to_string();
    let (ok, out) = regdrop(
        d,
        &["register", "generate", "--vehicles", &n, "--seed", "5"],
    );
    assert!(ok, "{out}");
    Env { dir, age_identity }
}

fn regdrop(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = util::cli::run(util::cli::regdrop_in(dir).args(args));
    (out.ok(), out.text())
}

async fn deliver(dir: &Path) -> (bool, String) {
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || regdrop(&d, &["deliver", "sub", "--at", AT]))
        .await
        .unwrap()
}

fn receipts(dir: &Path) -> Vec<serde_json::Value> {
    let (ok, out) = regdrop(dir, &["receipts", "list"]);
    assert!(ok, "{out}");
    let n: i64 = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (1..=n)
        .map(|id| {
            let (ok, out) = regdrop(dir, &["receipts", "show", &id.to_string()]);
            assert!(ok, "{out}");
            serde_json::from_str(&out).unwrap()
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// The plaintext SHA-256 of an age file, decrypted by the `age` CLI.
fn age_plaintext_sha(identity: &Path, file: &Path) -> String {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sha256_hex(&out.stdout)
}

/// The delivered file is alone with its sidecars (no temp file), its receipt is the only
/// one, and it decrypts to what a plain `regdrop extract` of the same run gives.
fn assert_delivered_once(env: &Env, remote: &Path, attempts: u64) {
    let d = env.dir.path();
    assert_eq!(
        util::files::ls(remote),
        [
            FILE.to_string(),
            format!("{FILE}.manifest.json"),
            format!("{FILE}.sha256")
        ]
    );
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{FILE}.sha256"))
        .current_dir(remote)
        .output()
        .unwrap();
    assert!(check.status.success());
    let r = receipts(d);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["attempts"], attempts, "{r:?}");
    let cipher = std::fs::read(remote.join(FILE)).unwrap();
    assert_eq!(r[0]["ciphertext_sha256"], sha256_hex(&cipher));
    assert_eq!(r[0]["bytes"], cipher.len() as u64);
    let delivered = age_plaintext_sha(&env.age_identity, &remote.join(FILE));
    assert_eq!(r[0]["plaintext_sha256"], delivered);
    let solo = d.join("solo.dsv.age");
    let (ok, out) = regdrop(
        d,
        &[
            "extract",
            "sub",
            "--at",
            AT,
            "--out",
            solo.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(delivered, age_plaintext_sha(&env.age_identity, &solo));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_during_seal_and_upload_ends_delivered_once() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("cut");
    // The target check passes; the upload that runs beside the sealing is cut after 2 MiB
    // (of ~10 MB); the retry's connection passes.
    let faults = Faults {
        cut_after: Some(2 << 20),
        cut_connections: Some(1),
        spare_first: 1,
        ..Faults::default()
    };
    let proxy = Proxy::with(0, sshd.port, faults).await;
    let env = setup(&sshd, proxy.port, &remote, 20_000, 4);
    let (ok, out) = deliver(env.dir.path()).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("generating and uploading (attempt 1)"),
        "the first attempt sealed and uploaded at once: {out}"
    );
    assert!(out.contains("attempt 1 failed"), "it was cut: {out}");
    assert!(
        out.contains("uploading (attempt 2)")
            && !out.contains("generating and uploading (attempt 2)"),
        "the retry uploads the spool copy, it does not seal again: {out}"
    );
    assert!(proxy.connections() >= 3);
    assert_delivered_once(&env, &remote, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_still_gets_the_file_sealed_while_it_uploads() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("slow");
    let faults = Faults {
        delay: std::time::Duration::from_millis(30),
        ..Faults::default()
    };
    let proxy = Proxy::with(0, sshd.port, faults).await;
    let env = setup(&sshd, proxy.port, &remote, 3000, 1);
    let (ok, out) = deliver(env.dir.path()).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("generating and uploading (attempt 1)"),
        "{out}"
    );
    assert_delivered_once(&env, &remote, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealing_failure_mid_upload_leaves_no_temp_file_and_no_receipt() {
    if !util::root::require("it mounts a small tmpfs as the spool") {
        return;
    }
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("full");
    let env = setup(&sshd, sshd.port, &remote, 20_000, 2);
    // The spool holds 3 MiB of the ~10 MB sealed file: the upload has started on the
    // first megabytes when the disk fills up.
    let spool = SmallDisk::mount(&env.dir.path().join("spool"), "3m");
    let (ok, out) = deliver(env.dir.path()).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("generating and uploading (attempt 1)"),
        "{out}"
    );
    assert!(out.contains("No space left"), "names the cause: {out}");
    assert!(out.contains("gave up after attempt 2"), "{out}");
    assert!(
        util::files::ls(&remote).is_empty(),
        "no temp file, no file, no sidecar: {:?}",
        util::files::ls(&remote)
    );
    assert!(receipts(env.dir.path()).is_empty());
    let left: Vec<String> = util::files::ls(&spool.0)
        .into_iter()
        .filter(|n| n != "locks")
        .collect();
    assert!(left.is_empty(), "nothing half-sealed stays: {left:?}");
}
