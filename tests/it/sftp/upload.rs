//! Uploading to a real sshd: sidecars and `sha256sum -c`, read-back and versioned names,
//! a cut mid-upload, an existing final name, bytes that are not the sealed ones, a missing
//! folder, and `probe`/`scan`.

use super::*;
use crate::util::fault_proxy::Proxy;
use crate::util::files::{ls, random_file};
use crate::util::sshd::{run, Sshd};
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::sftp::{self, Delivered, IfExists, SftpError, Upload, Verify};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_age_file_with_sidecars_and_sha256sum_passes() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    // A real sealed artifact: 5 MiB of random data encrypted with the age CLI.
    let key = work.path().join("age.key");
    run(Command::new("age-keygen").arg("-o").arg(&key));
    let recipient = run(Command::new("age-keygen").arg("-y").arg(&key));
    let plain = work.path().join("plain.dsv");
    let (plain_bytes, _) = random_file(&plain, 5 * MIB);
    let sealed = work.path().join("x.dsv.age");
    run(Command::new("age")
        .args(["-r", recipient.trim(), "-o"])
        .arg(&sealed)
        .arg(&plain));
    let sum = crate::util::files::sha256_file(&sealed);
    let size = std::fs::metadata(&sealed).unwrap().len();

    let dir = sshd.remote_dir("deliver");
    let t = sshd.target(&dir);
    let mut up = upload(&sealed, "acme_20260105.dsv.age", "run-1", &sum);
    up.if_exists = IfExists::Overwrite;
    up.manifest = Some(br#"{"file":"acme_20260105.dsv.age"}"#.to_vec());
    up.done_marker = true;
    let last = AtomicU64::new(0);
    let d = sftp::deliver(&t, &up, &|n| {
        last.fetch_max(n, Ordering::Relaxed);
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log_text()));

    let final_path = dir.join("acme_20260105.dsv.age");
    assert_eq!(
        std::fs::read(&final_path).unwrap(),
        std::fs::read(&sealed).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&final_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        last.load(Ordering::Relaxed),
        size,
        "progress reached the size"
    );
    assert_eq!(
        ls(&dir),
        vec![
            "acme_20260105.dsv.age",
            "acme_20260105.dsv.age.done",
            "acme_20260105.dsv.age.manifest.json",
            "acme_20260105.dsv.age.sha256",
        ]
    );
    // The customer's check: sha256sum -c in the remote folder.
    run(Command::new("sha256sum")
        .args(["-c", "acme_20260105.dsv.age.sha256"])
        .current_dir(&dir));
    // And the customer can decrypt it.
    let out = work.path().join("decrypted");
    run(Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg("-o")
        .arg(&out)
        .arg(&final_path));
    assert_eq!(std::fs::read(&out).unwrap(), plain_bytes);

    assert!(d.server.starts_with("SSH-2.0-OpenSSH"), "{}", d.server);
    assert_eq!(
        d,
        Delivered {
            remote_path: final_path.to_str().unwrap().into(),
            final_name: "acme_20260105.dsv.age".into(),
            bytes: size,
            host_key_sha256: sshd.host_fingerprint(),
            fsync: true,
            posix_rename: true,
            commit: Some(sftp::CommitPath::PosixRename),
            server: d.server.clone(),
            verified: Verify::Size,
            sidecars: vec![
                "acme_20260105.dsv.age.sha256".into(),
                "acme_20260105.dsv.age.manifest.json".into(),
                "acme_20260105.dsv.age.done".into(),
            ],
        }
    );

    // Crash recovery sees it; a different checksum does not match.
    let found = sftp::find_delivered(&t, "acme_20260105.dsv.age", size, &sum)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found.remote_path, d.remote_path);
    assert_eq!(found.sidecars, d.sidecars);
    assert!(
        sftp::find_delivered(&t, "acme_20260105.dsv.age", size, &"0".repeat(64))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sftp::find_delivered(&t, "acme_20260105.dsv.age", size + 1, &sum)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_back_verification_and_versioned_names() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("a");
    let (data, sum) = random_file(&local, 3 * MIB + 12345);
    let dir = sshd.remote_dir("readback");
    let t = sshd.target(&dir);
    let mut up = upload(&local, "r.csv.age", "run-2", &sum);
    up.verify = Verify::ReadBack;
    up.if_exists = IfExists::Version;
    let d = deliver(&t, &up).await.unwrap();
    assert_eq!(d.verified, Verify::ReadBack);
    assert_eq!(d.final_name, "r.csv.age");
    // Other artifacts (same size, other bytes) under the same name get versions.
    let local_b = work.path().join("b");
    let (data_b, sum_b) = random_file(&local_b, data.len());
    let local_c = work.path().join("c");
    let (data_c, sum_c) = random_file(&local_c, data.len());
    let up_b = Upload {
        local: local_b.clone(),
        sha256_hex: sum_b.clone(),
        ..up.clone()
    };
    let up_c = Upload {
        local: local_c.clone(),
        sha256_hex: sum_c.clone(),
        ..up.clone()
    };
    assert_eq!(deliver(&t, &up_b).await.unwrap().final_name, "r.v2.csv.age");
    assert_eq!(deliver(&t, &up_c).await.unwrap().final_name, "r.v3.csv.age");
    assert_eq!(std::fs::read(dir.join("r.csv.age")).unwrap(), data);
    assert_eq!(std::fs::read(dir.join("r.v2.csv.age")).unwrap(), data_b);
    assert_eq!(std::fs::read(dir.join("r.v3.csv.age")).unwrap(), data_c);
    run(Command::new("sha256sum")
        .args(["-c", "r.v2.csv.age.sha256"])
        .current_dir(&dir));
    no_parts(&dir);
    // Recovery finds each artifact under its own name.
    for (name, sum) in [
        ("r.csv.age", &sum),
        ("r.v2.csv.age", &sum_b),
        ("r.v3.csv.age", &sum_c),
    ] {
        let f = sftp::find_delivered(&t, "r.csv.age", data.len() as u64, sum)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.final_name, name);
    }

    // The same artifact again (a retry after a crash that hit after the commit, before
    // the sidecar): `version` recognises its own file by read-back, writes only the
    // sidecar and makes no new version; `fail` raises no conflict for it.
    std::fs::remove_file(dir.join("r.v2.csv.age.sha256")).unwrap();
    let mut again = up_b.clone();
    again.verify = Verify::Size;
    let d4 = deliver(&t, &again).await.unwrap();
    assert_eq!(d4.final_name, "r.v2.csv.age");
    assert_eq!(d4.verified, Verify::ReadBack);
    run(Command::new("sha256sum")
        .args(["-c", "r.v2.csv.age.sha256"])
        .current_dir(&dir));
    std::fs::remove_file(dir.join("r.csv.age.sha256")).unwrap();
    let mut again_a = up.clone();
    again_a.verify = Verify::Size;
    again_a.if_exists = IfExists::Fail;
    let d5 = deliver(&t, &again_a).await.unwrap();
    assert_eq!(
        (d5.final_name.as_str(), d5.verified),
        ("r.csv.age", Verify::ReadBack)
    );
    let d6 = deliver(&t, &again_a).await.unwrap();
    assert_eq!(
        d6.verified,
        Verify::Size,
        "the sidecar is back: no read-back needed"
    );
    assert!(!dir.join("r.v4.csv.age").exists());
    // ... but another artifact under a taken name with `fail` is a conflict.
    let e = deliver(
        &t,
        &Upload {
            if_exists: IfExists::Fail,
            ..up_b.clone()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SftpError::FinalExists { .. }), "{e}");
    assert_eq!(std::fs::read(dir.join("r.csv.age")).unwrap(), data);

    // A wrong checksum is detected before the commit: retryable, nothing under the final
    // name, no temp file left. (The hash of the bytes sent catches it before the read-back
    // would: LocalChanged; a read-back mismatch now needs the server to change bytes.)
    let mut bad = upload(&local, "s.bin", "run-3", &"ab".repeat(32));
    bad.verify = Verify::ReadBack;
    let e = deliver(&t, &bad).await.unwrap_err();
    assert!(
        matches!(
            e,
            SftpError::LocalChanged { .. } | SftpError::ChecksumMismatch { .. }
        ),
        "{e}"
    );
    assert!(e.is_retryable());
    assert!(!dir.join("s.bin").exists());
    no_parts(&dir);
    // A malformed checksum is refused before connecting.
    let e = deliver(&t, &upload(&local, "s.bin", "run-4", "xyz"))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_mid_upload_is_retryable_and_the_retry_replaces_the_stale_part() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("f");
    let (data, sum) = random_file(&local, 24 * MIB);
    let dir = sshd.remote_dir("cut");
    let proxy = Proxy::start(sshd.port, Some(6 * MIB as u64)).await;
    let mut t = sshd.target(&dir);
    t.port = proxy.port;
    let up = upload(&local, "cut.age", "run-a", &sum);
    let e = deliver(&t, &up).await.unwrap_err();
    assert!(e.is_retryable(), "{e} should be retryable");
    assert!(proxy.up_bytes.load(Ordering::Relaxed) >= 6 * MIB as u64);
    assert!(
        !dir.join("cut.age").exists(),
        "nothing under the final name"
    );
    // Give sshd a moment to notice the cut; the partial temp file stays behind.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ls(&dir), vec![".cut.age.run-a.part"]);

    // The next attempt (a retry with another attempt id, directly) succeeds and cleans up.
    let t = sshd.target(&dir);
    let d = deliver(&t, &upload(&local, "cut.age", "run-b", &sum))
        .await
        .unwrap();
    assert_eq!(d.bytes, data.len() as u64);
    assert_eq!(std::fs::read(dir.join("cut.age")).unwrap(), data);
    assert_eq!(ls(&dir), vec!["cut.age", "cut.age.sha256"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_final_with_fail_and_overwrite() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("new");
    let (new, sum) = random_file(&local, 12 * MIB);
    let dir = sshd.remote_dir("exists");
    let old = b"old content of a previous week\n".to_vec();
    std::fs::write(dir.join("w.age"), &old).unwrap();
    let t = sshd.target(&dir);

    // Fail: permanent, old file intact, no temp file left.
    let e = deliver(&t, &upload(&local, "w.age", "r1", &sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::FinalExists { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(std::fs::read(dir.join("w.age")).unwrap(), old);
    assert_eq!(ls(&dir), vec!["w.age"]);

    // Overwrite, cut mid-upload: the old content is still in place.
    let proxy = Proxy::start(sshd.port, Some(4 * MIB as u64)).await;
    let mut tp = sshd.target(&dir);
    tp.port = proxy.port;
    let mut up = upload(&local, "w.age", "r2", &sum);
    up.if_exists = IfExists::Overwrite;
    let e = deliver(&tp, &up).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(std::fs::read(dir.join("w.age")).unwrap(), old);

    // Overwrite, watched: while the upload runs, the final name always holds the old
    // bytes (never missing, never partial) until it holds the new bytes.
    let watch_path = dir.join("w.age");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let (old2, new2) = (old.clone(), new.clone());
    let watcher = std::thread::spawn(move || {
        let mut seen_new = false;
        let mut polls = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            let got = std::fs::read(&watch_path).expect("final name must never be missing");
            if got == new2 {
                seen_new = true;
            } else {
                assert!(!seen_new, "went back from new to something else");
                assert_eq!(got, old2, "final name held neither old nor new content");
            }
            polls += 1;
        }
        polls
    });
    up.run_id = "r3".into();
    let d = deliver(&t, &up).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let polls = watcher.join().expect("watcher saw a bad state");
    assert!(polls > 0);
    assert!(d.posix_rename);
    assert_eq!(std::fs::read(dir.join("w.age")).unwrap(), new);
    assert_eq!(ls(&dir), vec!["w.age", "w.age.sha256"]);

    // The fallback for servers without posix-rename: rename aside, rename in, delete aside.
    let local2 = work.path().join("newer");
    let (newer, sum2) = random_file(&local2, 100_000);
    let mut up2 = upload(&local2, "w.age", "r4", &sum2);
    up2.if_exists = IfExists::Overwrite;
    let mut t2 = t.clone();
    t2.overrides.posix_rename = false;
    let d = sftp::deliver(&t2, &up2, &|_| {}).await.unwrap();
    assert_eq!(d.commit, Some(sftp::CommitPath::RenameAside));
    assert!(!d.posix_rename);
    assert_eq!(std::fs::read(dir.join("w.age")).unwrap(), newer);
    assert_eq!(ls(&dir), vec!["w.age", "w.age.sha256"]);
    run(Command::new("sha256sum")
        .args(["-c", "w.age.sha256"])
        .current_dir(&dir));
}

/// The bytes sent are hashed on the way: a spool file that is not what was sealed (changed
/// after sealing, or during the upload) never reaches the final name, even with
/// `verify = "size"` (whose size check alone passes here), and leaves no temp file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_the_sealed_ones_are_never_committed() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let dir = sshd.remote_dir("changed");
    let t = sshd.target(&dir);
    let local = work.path().join("a.age");
    let (_, sealed_sum) = random_file(&local, 10 * MIB + 5);
    // Same size, other bytes: what a 4 KiB overwrite of the spool file looks like.
    random_file(&local, 10 * MIB + 5);
    let e = deliver(&t, &upload(&local, "a.age", "r1", &sealed_sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::LocalChanged { .. }), "{e:?}");
    assert!(e.is_retryable(), "{e}");
    assert_eq!(ls(&dir), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_remote_dir_needs_create_dirs() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("f");
    let (data, sum) = random_file(&local, 50_000);
    let base = sshd.remote_dir("dirs");
    let missing = base.join("a/b/c");
    let mut t = sshd.target(&missing);
    let e = deliver(&t, &upload(&local, "f.age", "r1", &sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::RemoteDirMissing { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(ls(&base).is_empty());

    t.create_dirs = true;
    deliver(&t, &upload(&local, "f.age", "r1", &sum))
        .await
        .unwrap();
    assert_eq!(std::fs::read(missing.join("f.age")).unwrap(), data);

    // A path that is a file, not a folder: permanent.
    let mut t = sshd.target(&missing.join("f.age"));
    t.create_dirs = true;
    let e = deliver(&t, &upload(&local, "g.age", "r1", &sum))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_lists_extensions_and_leaves_folder_empty_and_scan_finds_host_key() {
    let sshd = Sshd::start();
    let dir = sshd.remote_dir("probe");
    let t = sshd.target(&dir);
    let r = sftp::probe(&t).await.unwrap();
    let names: Vec<&str> = r.extensions.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"posix-rename@openssh.com"), "{names:?}");
    assert!(names.contains(&"fsync@openssh.com"), "{names:?}");
    assert!(r.writable && r.remote_dir_exists);
    assert_eq!(r.host_key_sha256, sshd.host_fingerprint());
    assert!(ls(&dir).is_empty(), "{:?}", ls(&dir));

    // Missing folder: an error without create_dirs, a report with it.
    let mut t2 = sshd.target(&dir.join("nope"));
    assert!(matches!(
        sftp::probe(&t2).await.unwrap_err(),
        SftpError::RemoteDirMissing { .. }
    ));
    t2.create_dirs = true;
    let r2 = sftp::probe(&t2).await.unwrap();
    assert!(!r2.remote_dir_exists && !r2.writable);
    assert!(!dir.join("nope").exists(), "probe creates nothing");

    let keys = sftp::scan_host_keys("127.0.0.1", sshd.port, Duration::from_secs(10))
        .await
        .unwrap();
    let material: Vec<&str> = sshd.host_pub.split_whitespace().take(2).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].line, material.join(" "));
    assert_eq!(keys[0].fingerprint, sshd.host_fingerprint());

    // A scanned line pins: deliver with it.
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("f");
    let (_, sum) = random_file(&local, 1000);
    let mut t3 = sshd.target(&dir);
    t3.host_keys = vec![keys[0].line.clone()];
    deliver(&t3, &upload(&local, "f", "r1", &sum))
        .await
        .unwrap();

    // Nothing listening: scan fails retryably.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = sftp::scan_host_keys("127.0.0.1", port, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
}
