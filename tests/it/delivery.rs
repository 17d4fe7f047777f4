//! `regdrop deliver` end to end against a real OpenSSH sshd: the delivered file decrypts
//! with the `age` CLI, `sha256sum -c` accepts the sidecar, the receipt matches, the chain
//! verifies and a tampered receipt is caught; a connection cut mid-upload is retried to
//! exactly one receipt; a wrong host key needs an operator after one attempt.

use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::small_disk::SmallDisk;
use crate::util::sshd::Sshd;
use crate::util::{self};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Env {
    dir: tempfile::TempDir,
    age_identity: PathBuf,
}

/// A config folder with a register and one subscription `sub` delivering to `port` on
/// loopback, pinned to `host_key`, into `remote`.
fn setup(sshd: &Sshd, port: u16, host_key: &str, remote: &Path, extra: &str) -> Env {
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
            host_key,
            key: &sshd.user_key,
            remote: &remote.display().to_string(),
            recipient: &rec,
            extract_extra: "",
            max_attempts: 4,
            extra,
        }
        .toml(),
    )
    .unwrap();
    let (ok, out) = regdrop(
        d,
        &["register", "generate", "--vehicles", "3000", "--seed", "9"],
    );
    assert!(ok, "{out}");
    Env { dir, age_identity }
}

fn regdrop(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = util::cli::run(util::cli::regdrop_in(dir).args(args));
    (out.ok(), out.text())
}

fn receipt(dir: &Path, id: i64) -> serde_json::Value {
    let (ok, out) = regdrop(dir, &["receipts", "show", &id.to_string()]);
    assert!(ok, "{out}");
    serde_json::from_str(&out).unwrap()
}

fn receipt_count(dir: &Path) -> usize {
    let (ok, out) = regdrop(dir, &["receipts", "list"]);
    assert!(ok, "{out}");
    out.lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `remote` holds exactly `file` and its sidecars (no temp files), and `sha256sum -c`
/// accepts the sidecar in the folder the customer sees.
fn assert_delivered_alone(remote: &Path, file: &str) {
    assert_eq!(
        util::files::ls(remote),
        [
            file.to_string(),
            format!("{file}.manifest.json"),
            format!("{file}.sha256")
        ]
    );
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{file}.sha256"))
        .current_dir(remote)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn delivers_decryptable_file_with_sidecar_and_matching_receipt() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("in");
    let env = setup(&sshd, sshd.port, &sshd.host_pub, &remote, "");
    let d = env.dir.path();
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(ok, "{out}");
    let file = "sub_20261125.dsv.age";
    assert_delivered_alone(&remote, file);

    // The reference age CLI decrypts it; the receipt records what was sent.
    let plain = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&env.age_identity)
        .arg(remote.join(file))
        .output()
        .unwrap();
    assert!(plain.status.success());
    use sha2::Digest;
    let r = receipt(d, 1);
    assert_eq!(
        r["plaintext_sha256"],
        hex::encode(sha2::Sha256::digest(&plain.stdout))
    );
    let cipher = std::fs::read(remote.join(file)).unwrap();
    assert_eq!(
        r["ciphertext_sha256"],
        hex::encode(sha2::Sha256::digest(&cipher))
    );
    assert_eq!(r["bytes"], cipher.len() as u64);
    assert_eq!(
        r["rows"],
        String::from_utf8(plain.stdout).unwrap().lines().count() as u64 - 1
    );
    assert_eq!(r["remote_path"], remote.join(file).display().to_string());
    assert_eq!(r["host_key_fingerprint"], sshd.host_fingerprint());
    assert_eq!(r["remote_port"], sshd.port);
    assert_eq!(r["case_number"], "26/4242");
    assert_eq!(r["legal_basis"], "test basis");
    assert!(r["personal_fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "EIER_FODSELSDATO"));
    assert_eq!(r["attempts"], 1);
    // How it went out: `fail` commits with hardlink@openssh.com (race-free no-clobber).
    assert_eq!(r["transport"]["kind"], "sftp");
    assert_eq!(r["transport"]["commit"], "hardlink");
    assert_eq!(r["transport"]["fsync"], true);
    assert!(
        r["transport"]["server"]
            .as_str()
            .unwrap()
            .starts_with("SSH-2.0-OpenSSH"),
        "{r}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(remote.join(format!("{file}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["ciphertext_sha256"], r["ciphertext_sha256"]);
    assert_eq!(manifest["rows"], r["rows"]);

    // Delivering the same run again gives the same receipt, not a second one.
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(ok, "{out}");
    assert_eq!(receipt_count(d), 1);

    // A second run chains to the first; verify walks the chain.
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-26T06:00:00+01:00"]);
    assert!(ok, "{out}");
    assert_eq!(receipt(d, 2)["prev_hash"], receipt(d, 1)["hash"]);
    let (ok, out) = regdrop(d, &["receipts", "verify"]);
    assert!(ok && out.contains("chain intact: 2 verified"), "{out}");

    // Tamper with the first receipt as someone with the sqlite3 shell could.
    let db = rusqlite::Connection::open(d.join("state/regdrop.sqlite")).unwrap();
    let triggers: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in triggers {
        db.execute_batch(&format!("DROP TRIGGER {t}")).unwrap();
    }
    db.execute("UPDATE receipts SET rows = rows + 1 WHERE id = 1", [])
        .unwrap();
    drop(db);
    let (ok, out) = regdrop(d, &["receipts", "verify"]);
    assert!(!ok, "verify must fail: {out}");
    assert!(
        out.contains("receipt 1"),
        "names the first broken link: {out}"
    );
}

#[test]
fn wrong_host_key_needs_an_operator_after_one_attempt_and_writes_nothing() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("in");
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj";
    let env = setup(&sshd, sshd.port, other, &remote, "");
    let d = env.dir.path();
    let (ok, out) = regdrop(d, &["deliver", "sub"]);
    assert!(!ok);
    assert!(
        out.contains("needs attention") && out.contains("does not match the pinned keys"),
        "{out}"
    );
    assert!(util::files::ls(&remote).is_empty());
    assert_eq!(receipt_count(d), 0);
    let db = rusqlite::Connection::open(d.join("state/regdrop.sqlite")).unwrap();
    let (attempts, state): (i64, String) = db
        .query_row(
            "SELECT (SELECT count(*) FROM attempts), (SELECT state FROM runs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (attempts, state.as_str()),
        (1, "needs_attention"),
        "no retry storm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_upload_is_retried_to_exactly_one_receipt() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("in");
    // The target check before the extract passes; the first upload connection is cut
    // after 600 KiB; later ones pass.
    let faults = Faults {
        cut_after: Some(600 * 1024),
        cut_connections: Some(1),
        spare_first: 1,
        ..Faults::default()
    };
    let proxy = Proxy::with(0, sshd.port, faults).await;
    let env = setup(&sshd, proxy.port, &sshd.host_pub, &remote, "");
    let d = env.dir.path().to_path_buf();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        regdrop(&d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"])
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert!(
        out.contains("attempt 1 failed"),
        "the first attempt was cut: {out}"
    );
    assert!(proxy.connections() >= 2);
    let d = env.dir.path();
    assert_eq!(receipt_count(d), 1);
    assert_eq!(receipt(d, 1)["attempts"], 2);
    // Only the final file and its sidecars: the cut attempt's temp file is gone.
    assert_delivered_alone(&remote, "sub_20261125.dsv.age");
}

#[test]
fn a_run_held_by_another_process_is_not_uploaded_twice() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("in");
    let env = setup(&sshd, sshd.port, &sshd.host_pub, &remote, "");
    let d = env.dir.path();
    // Another process (say the daemon) holds run sub-20261125T050000Z.
    let locks = d.join("spool/locks");
    std::fs::create_dir_all(&locks).unwrap();
    let held = std::fs::File::create(locks.join("sub-20261125T050000Z.lock")).unwrap();
    held.try_lock().unwrap();
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("is being delivered by another regdrop process"),
        "{out}"
    );
    assert!(util::files::ls(&remote).is_empty(), "nothing uploaded");
    // Once the other process lets go, the same run delivers.
    drop(held);
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(ok, "{out}");
    assert_eq!(receipt_count(d), 1);
}

#[test]
fn a_full_server_disk_is_retried_then_fails_without_a_file_or_receipt() {
    if !util::root::require("it mounts a small tmpfs as the server's disk") {
        return;
    }
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("small");
    // The customer's disk holds 256 KiB; the artifact is megabytes.
    let _disk = SmallDisk::mount(&remote, "256k");
    let env = setup(&sshd, sshd.port, &sshd.host_pub, &remote, "");
    let d = env.dir.path();
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("attempt 1 failed"),
        "a full disk is retried: {out}"
    );
    assert!(out.contains("failed: gave up after attempt 4"), "{out}");
    assert!(
        !remote.join("sub_20261125.dsv.age").exists(),
        "no file under the final name"
    );
    assert!(
        util::files::ls(&remote)
            .iter()
            .all(|n| !n.ends_with(".sha256")),
        "no sidecar"
    );
    assert_eq!(receipt_count(d), 0, "no receipt for a failed delivery");
}

/// Issue 9, item 4: the crash left the file and its checksum on the server, the manifest
/// cut in flight (its temp file still there) and the receipt not written; meanwhile the
/// spool copy was lost. Resuming the run finds the delivery, writes the missing manifest (naming
/// the file), removes the temp file and records the one receipt.
#[test]
fn recovery_without_the_artifact_completes_the_missing_sidecars() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("lost");
    let env = setup(&sshd, sshd.port, &sshd.host_pub, &remote, "");
    let d = env.dir.path();
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(ok, "{out}");
    let file = "sub_20261125.dsv.age";
    let run = "sub-20261125T050000Z";
    let manifest = remote.join(format!("{file}.manifest.json"));
    let sent: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();

    // The state a crash in the manifest upload leaves, plus a lost spool file.
    std::fs::remove_file(&manifest).unwrap();
    let part = remote.join(format!(".{file}.manifest.json.{run}.part"));
    std::fs::write(&part, b"{\"file\": \"sub_2026").unwrap();
    let db = d.join("state/regdrop.sqlite");
    let artifact = util::sshd::run(
        Command::new("sqlite3")
            .arg(&db)
            .arg(format!("SELECT artifact_path FROM runs WHERE id = '{run}'")),
    );
    std::fs::remove_file(artifact.trim()).unwrap();
    util::sshd::run(Command::new("sqlite3").arg(&db).arg(format!(
        "DELETE FROM receipts; UPDATE runs SET state = 'uploading' WHERE id = '{run}'"
    )));
    assert_eq!(receipt_count(d), 0);

    // The same run again (what the daemon's restart does).
    let (ok, out) = regdrop(d, &["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(ok, "{out}");
    assert_eq!(receipt_count(d), 1);
    assert_delivered_alone(&remote, file);
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(again["file"], file);
    assert_eq!(again["ciphertext_sha256"], sent["ciphertext_sha256"]);
    assert_eq!(again["rows"], sent["rows"]);
    assert_eq!(
        receipt(d, 1)["ciphertext_sha256"],
        sent["ciphertext_sha256"]
    );
}
