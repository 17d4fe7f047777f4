//! Interop cases of getting bytes there: probe, 20 MiB over several channels, key and
//! password login, a cut mid-upload, the CLI with code tables, and the same bytes as
//! OpenSSH `sftp`.

use super::helpers::*;
use super::MIB;
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::{random_file, sha256_file};
use crate::util::servers::Kind;
use crate::util::{self};
use regdrop::core::retry::Classify;
use regdrop::sftp::{self};
use std::process::Command;
use std::time::{Duration, Instant};

/// `probe` logs in, checks the folder is writable with a temp file, and removes it.
pub(super) fn probe_succeeds_and_leaves_the_folder_empty(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let (remote, local) = s.remote_dir("probe");
    let t0 = Instant::now();
    let r = block_on(sftp::probe(&s.target(&remote)));
    eprintln!(
        "[{}] probe in {:.1} s: {:?}",
        s.name(),
        t0.elapsed().as_secs_f64(),
        r.as_ref().map(|r| &r.extensions)
    );
    let r = r.unwrap_or_else(|e| panic!("probe failed: {e}\n{}", context(s, t0, &local)));
    assert!(r.remote_dir_exists, "[{}] {r:?}", s.name());
    assert!(r.writable, "[{}] {r:?}", s.name());
    assert_eq!(r.host_key_sha256, s.host_fingerprint());
    assert_eq!(r.remote_dir, remote);
    assert_listing(s, &local, &[]);
}

/// 20 MiB (more than the 8 MiB above which regdrop writes over several channels): the
/// final file is byte-identical, its sidecar passes `sha256sum -c`, nothing else is left.
pub(super) fn delivers_20_mib_over_several_channels(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("big");
    let (data, sum) = random_file(&file, 20 * MIB);
    let (remote, local) = s.remote_dir("big");
    let d = block_on(deliver_ok(
        s,
        &s.target(&remote),
        &upload(&file, "big.dsv.age", "run-big", &sum),
        &local,
    ));
    assert_eq!(d.final_name, "big.dsv.age");
    assert_eq!(d.bytes, data.len() as u64);
    assert_eq!(d.remote_path, format!("{remote}/big.dsv.age"));
    assert!(
        std::fs::read(local.join("big.dsv.age")).unwrap() == data,
        "[{}] final file differs from the upload",
        s.name()
    );
    sha256sum_c(s, &local, "big.dsv.age");
    assert_listing(s, &local, &["big.dsv.age", "big.dsv.age.sha256"]);
}

pub(super) fn login_case(kind: Kind, password: bool) {
    let s = kind.start();
    let s = s.as_ref();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("f");
    let (data, sum) = random_file(&file, MIB + 17);
    let (remote, local) = s.remote_dir("login");
    let t = if password {
        s.password_target(&remote)
    } else {
        s.target(&remote)
    };
    let d = block_on(deliver_ok(
        s,
        &t,
        &upload(&file, "l.age", "run-l", &sum),
        &local,
    ));
    assert_eq!(d.host_key_sha256, s.host_fingerprint());
    assert!(std::fs::read(local.join("l.age")).unwrap() == data);
    sha256sum_c(s, &local, "l.age");
    assert_listing(s, &local, &["l.age", "l.age.sha256"]);
}

pub(super) fn key_login(kind: Kind) {
    login_case(kind, false);
}

pub(super) fn password_login(kind: Kind) {
    if kind == Kind::OpenSsh
        && !util::root::require(
            "password login through sshd needs a second local user and sshd reading the \
             shadow file",
        )
    {
        return;
    }
    login_case(kind, true);
}

/// The first connection is cut after 2 MiB of a 6 MiB upload: a retryable error within
/// seconds and nothing under the final name; the retry (same run, as the daemon does it)
/// leaves exactly the final file and its sidecar.
pub(super) fn cut_mid_upload_then_retry_leaves_one_file(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cut");
    let (data, sum) = random_file(&file, 6 * MIB);
    let (remote, local) = s.remote_dir("cut");
    block_on(async {
        let proxy = Proxy::with(
            0,
            s.port(),
            Faults {
                cut_after: Some(2 * MIB as u64),
                cut_connections: Some(1),
                ..Faults::default()
            },
        )
        .await;
        let mut t = s.target(&remote);
        t.port = proxy.port;
        let up = upload(&file, "cut.age", "run-c", &sum);
        let (r, took) = deliver(&t, &up).await;
        eprintln!("[{}] cut: {r:?} in {took:?}", s.name());
        let ctx = context(s, Instant::now() - took, &local);
        let e = match r {
            Err(e) => e,
            Ok(d) => panic!("a cut upload reported success: {d:?}\n{ctx}"),
        };
        assert!(
            e.is_retryable(),
            "[{}] {e} should be retryable\n{ctx}",
            s.name()
        );
        assert!(
            took < Duration::from_secs(10),
            "[{}] the cut took {took:?} to notice\n{ctx}",
            s.name()
        );
        // Let the server notice the cut too.
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.settle();
        assert!(
            !local.join("cut.age").exists(),
            "[{}] something under the final name after a cut\n{ctx}",
            s.name()
        );

        let d = deliver_ok(s, &t, &up, &local).await;
        assert!(proxy.connections() >= 2);
        assert_eq!(d.bytes, data.len() as u64);
        assert!(std::fs::read(local.join("cut.age")).unwrap() == data);
        sha256sum_c(s, &local, "cut.age");
        assert_listing(s, &local, &["cut.age", "cut.age.sha256"]);
    });
}

/// `regdrop deliver` (the real binary) of a report with two code tables beside it: one
/// receipt naming every file, each file passes `sha256sum -c` and decrypts with the `age`
/// CLI; delivering the same run again makes no second receipt and no new file.
pub(super) fn cli_deliver_with_code_tables_and_receipt(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let (remote, local) = s.remote_dir("in");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let identity = d.join("age.key");
    let rec = util::cli::age_keygen(&identity);
    util::cli::write_config(d, "");
    std::fs::write(
        d.join("subs/sub.toml"),
        util::cli::CustomerSub {
            port: s.port(),
            user: s.username(),
            host_key: s.host_pub(),
            key: s.user_key(),
            remote: &remote,
            recipient: &rec,
            extract_extra: "code_tables = [\"make\", \"fuel\"]\n",
            max_attempts: 2,
            extra: "",
        }
        .toml(),
    )
    .unwrap();
    let rd = |args: &[&str]| util::cli::run(util::cli::regdrop_in(d).args(args));
    let out = rd(&["check", "--no-environment"]);
    assert!(out.ok(), "{}", out.text());
    let out = rd(&["register", "generate", "--vehicles", "2000", "--seed", "8"]);
    assert!(out.ok(), "{}", out.text());

    let t0 = Instant::now();
    let out = rd(&["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    eprintln!(
        "[{}] regdrop deliver: exit {} in {:.1} s\n{}",
        s.name(),
        out.code,
        t0.elapsed().as_secs_f64(),
        out.text()
    );
    assert!(
        out.ok(),
        "regdrop deliver failed:\n{}\n{}",
        out.text(),
        context(s, t0, &local)
    );
    s.settle();
    let receipts = rd(&["receipts", "list"]);
    assert!(receipts.ok(), "{}", receipts.text());
    let count = |text: &str| -> usize {
        text.lines()
            .last()
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in `receipts list`: {text}"))
    };
    assert_eq!(count(&receipts.stdout), 1, "{}", receipts.text());
    let shown = rd(&["receipts", "show", "1"]);
    assert!(shown.ok(), "{}", shown.text());
    let r: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    let main = "sub_20261125.dsv.age";
    assert_eq!(r["remote_path"], format!("{remote}/{main}"));
    assert_eq!(r["host_key_fingerprint"], s.host_fingerprint());
    let files = r["files"].as_array().expect("files in the receipt");
    assert_eq!(files.len(), 2, "two code tables: {r}");
    let mut expected = vec![
        main.to_string(),
        format!("{main}.manifest.json"),
        format!("{main}.sha256"),
    ];
    let mut delivered = vec![main.to_string()];
    for f in files {
        let name = f["name"].as_str().unwrap().to_string();
        assert_eq!(f["remote_path"], format!("{remote}/{name}"));
        expected.push(format!("{name}.sha256"));
        expected.push(name.clone());
        delivered.push(name);
    }
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_listing(s, &local, &expected);
    use sha2::Digest;
    for name in &delivered {
        sha256sum_c(s, &local, name);
        let plain = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&identity)
            .arg(local.join(name))
            .output()
            .unwrap();
        assert!(
            plain.status.success(),
            "[{}] age -d {name}: {}",
            s.name(),
            String::from_utf8_lossy(&plain.stderr)
        );
        assert!(!plain.stdout.is_empty(), "{name} decrypts to nothing");
        if name == main {
            assert_eq!(
                r["plaintext_sha256"],
                hex::encode(sha2::Sha256::digest(&plain.stdout))
            );
            assert_eq!(r["ciphertext_sha256"], sha256_file(&local.join(name)));
        }
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(local.join(format!("{main}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["ciphertext_sha256"], r["ciphertext_sha256"]);

    // The same run again: recognised on the server, no second receipt, nothing new.
    let out = rd(&["deliver", "sub", "--at", "2026-11-25T06:00:00+01:00"]);
    assert!(out.ok(), "{}\n{}", out.text(), context(s, t0, &local));
    let receipts = rd(&["receipts", "list"]);
    assert_eq!(count(&receipts.stdout), 1, "{}", receipts.text());
    assert_listing(s, &local, &expected);
    let out = rd(&["receipts", "verify"]);
    assert!(
        out.ok() && out.text().contains("chain intact: 1 verified"),
        "{}",
        out.text()
    );
}

/// regdrop and OpenSSH's `sftp -b` (`put`, what an admin would script) upload the same file
/// to the same server, and the server holds identical bytes from both. The MiB/s of each
/// are printed as a `BENCH` line; `scripts/bench_upload_servers.sh` runs this case with a
/// large `REGDROP_BENCH_MIB` in a release build and reports the ratios (tests never assert
/// time). `REGDROP_BENCH_SFTP_FIRST=1` swaps the order.
pub(super) fn regdrop_and_openssh_sftp_put_the_same_bytes(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let mib: usize = std::env::var("REGDROP_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("bench.bin");
    let (data, sum) = random_file(&file, mib * MIB);
    let (remote, local) = s.remote_dir("bench");
    let known = work.path().join("known_hosts");
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", s.port(), s.host_pub()),
    )
    .unwrap();

    let ours = || {
        // Timed like the sftp client: the delivery itself, without waiting for rclone's
        // write-back cache afterwards.
        let t = s.target(&remote);
        let (r, took) = block_on(deliver(&t, &upload(&file, "ours.bin", "run-b", &sum)));
        let d = r.unwrap_or_else(|e| panic!("[{}] {e}", s.name()));
        assert_eq!(d.bytes, (mib * MIB) as u64);
        took.as_secs_f64()
    };
    let theirs = || {
        let batch = work.path().join("batch");
        std::fs::write(
            &batch,
            format!(
                "put {} {}/theirs.bin\n",
                file.display(),
                remote.trim_end_matches('/')
            ),
        )
        .unwrap();
        let t0 = Instant::now();
        let out = Command::new("sftp")
            .arg("-q")
            .args(["-b"])
            .arg(&batch)
            .args(["-P", &s.port().to_string(), "-i"])
            .arg(s.user_key())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .arg(format!("{}@127.0.0.1", s.username()))
            .output()
            .expect("OpenSSH sftp client (apt-get install -y openssh-client)");
        let secs = t0.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "[{}] sftp -b put failed: {}{}",
            s.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        secs
    };
    let (ours_secs, theirs_secs) =
        if std::env::var("REGDROP_BENCH_SFTP_FIRST").is_ok_and(|v| v == "1") {
            let t = theirs();
            (ours(), t)
        } else {
            let o = ours();
            (o, theirs())
        };
    s.settle();
    assert!(
        std::fs::read(local.join("ours.bin")).unwrap() == data,
        "[{}] ours.bin",
        s.name()
    );
    assert!(
        std::fs::read(local.join("theirs.bin")).unwrap() == data,
        "[{}] theirs.bin",
        s.name()
    );
    sha256sum_c(s, &local, "ours.bin");
    assert_listing(s, &local, &["ours.bin", "ours.bin.sha256", "theirs.bin"]);
    let rate = |secs: f64| mib as f64 / secs.max(1e-9);
    println!(
        "BENCH server={:?} mib={mib} regdrop_mib_s={:.1} sftp_mib_s={:.1} ratio={:.2}",
        s.name(),
        rate(ours_secs),
        rate(theirs_secs),
        rate(ours_secs) / rate(theirs_secs)
    );
}
