//! Logging in to a real sshd: a wrong pinned host key or user key is permanent and writes
//! nothing; a password from a 0600 file works, a readable one is refused before connecting.

use super::*;
use crate::util::files::{ls, random_file};
use crate::util::sshd::{self, run, Opts, Sshd};
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::sftp::{Auth, IfExists, SftpError};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pinned_host_key_is_permanent_and_writes_nothing() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let other = sshd::keygen(&work.path().join("other"));
    let local = work.path().join("f");
    let (_, sum) = random_file(&local, 100_000);
    let dir = sshd.remote_dir("hostkey");
    let mut t = sshd.target(&dir);
    t.host_keys = vec![other];
    let e = deliver(&t, &upload(&local, "f.age", "r1", &sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::HostKeyMismatch { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    let msg = e.to_string();
    assert!(msg.contains(&sshd.host_fingerprint()), "{msg}");
    assert!(msg.contains("regdrop hostkey scan"), "{msg}");
    assert!(ls(&dir).is_empty(), "{:?}", ls(&dir));
    // The log shows no login happened.
    assert!(!sshd.log_text().contains("Accepted publickey"));

    // A known_hosts file with the right "[host]:port" entry and no pinned lines works.
    let kh = work.path().join("known_hosts");
    let material: Vec<&str> = sshd.host_pub.split_whitespace().take(2).collect();
    std::fs::write(
        &kh,
        format!("# test\n[127.0.0.1]:{} {}\n", sshd.port, material.join(" ")),
    )
    .unwrap();
    t.host_keys = vec![];
    t.known_hosts = Some(kh.clone());
    deliver(&t, &upload(&local, "f.age", "r2", &sum))
        .await
        .unwrap();
    // A @revoked line vetoes the key even when it is also pinned.
    std::fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {m}\n@revoked * {m}\n",
            sshd.port,
            m = material.join(" ")
        ),
    )
    .unwrap();
    t.host_keys = vec![sshd.host_pub.clone()];
    let e = deliver(&t, &upload(&local, "g.age", "r3", &sum))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    t.host_keys = vec![];
    // ... and an entry for another port does not match.
    std::fs::write(&kh, format!("[127.0.0.1]:1 {}\n", material.join(" "))).unwrap();
    let e = deliver(&t, &upload(&local, "g.age", "r3", &sum))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_user_key_is_permanent_and_writes_nothing() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let other = work.path().join("other_user");
    sshd::keygen(&other);
    let local = work.path().join("f");
    let (_, sum) = random_file(&local, 10_000);
    let dir = sshd.remote_dir("userkey");
    let mut t = sshd.target(&dir);
    t.auth = Auth::KeyFile {
        path: other,
        passphrase_file: None,
    };
    let e = deliver(&t, &upload(&local, "f.age", "r1", &sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::AuthRefused { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(ls(&dir).is_empty());

    // A key file that is not a key: permanent, and the message does not echo its content.
    let junk = work.path().join("junk");
    std::fs::write(&junk, "not-a-key-SECRET").unwrap();
    t.auth = Auth::KeyFile {
        path: junk,
        passphrase_file: None,
    };
    let e = deliver(&t, &upload(&local, "f.age", "r1", &sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::BadKeyFile { .. }), "{e}");
    assert!(!regdrop::core::errors::chain(&e).contains("SECRET"));
    assert_eq!(e.class(), ErrorClass::Permanent);

    // An RSA key works (rsa-sha2-512/256 chosen via best_supported_rsa_hash; OpenSSH 9
    // refuses SHA-1 ssh-rsa signatures).
    let rsa = work.path().join("rsa_key");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&rsa));
    let ak = sshd.dir.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&ak).unwrap();
    keys.push_str(&std::fs::read_to_string(rsa.with_extension("pub")).unwrap());
    std::fs::write(&ak, keys).unwrap();
    t.auth = Auth::KeyFile {
        path: rsa,
        passphrase_file: None,
    };
    deliver(&t, &upload(&local, "rsa.age", "r1", &sum))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log_text()));
    assert!(dir.join("rsa.age").exists());

    // An encrypted key with its passphrase file works.
    let enc = work.path().join("enc_key");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "pass phrase 1", "-f"])
        .arg(&enc));
    let pub_line = std::fs::read_to_string(enc.with_extension("pub")).unwrap();
    let ak = sshd.dir.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&ak).unwrap();
    keys.push_str(&pub_line);
    std::fs::write(&ak, keys).unwrap();
    let pass = work.path().join("pass");
    std::fs::write(&pass, "pass phrase 1\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    t.auth = Auth::KeyFile {
        path: enc,
        passphrase_file: Some(pass),
    };
    deliver(&t, &upload(&local, "f.age", "r2", &sum))
        .await
        .unwrap();
    assert!(dir.join("f.age").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_from_a_0600_file_works_and_a_wrong_password_is_permanent() {
    if !crate::util::root::require(
        "password login through sshd needs a second local user (useradd, chown) and sshd \
         reading the shadow file",
    ) {
        return;
    }
    sshd::ensure_password_user();
    let sshd = Sshd::start_with(Opts {
        password_auth: true,
    });
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let local = work.path().join("f");
    let (data, sum) = random_file(&local, 2 * MIB);
    let dir = sshd.remote_dir("password");
    run(Command::new("chown").arg(sshd::PW_USER).arg(&dir));

    let pw = work.path().join("pw");
    std::fs::write(&pw, format!("{}\n", sshd::PW_PASSWORD)).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut t = sshd.target(&dir);
    t.username = sshd::PW_USER.into();
    t.auth = Auth::PasswordFile(pw.clone());
    deliver(&t, &upload(&local, "p.age", "r1", &sum))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log_text()));
    assert_eq!(std::fs::read(dir.join("p.age")).unwrap(), data);

    // A write-only drop folder (no listing allowed): delivery still works.
    let drop_dir = sshd.remote_dir("drop");
    run(Command::new("chown").arg(sshd::PW_USER).arg(&drop_dir));
    std::fs::set_permissions(&drop_dir, std::fs::Permissions::from_mode(0o300)).unwrap();
    let mut t_drop = t.clone();
    t_drop.remote_dir = drop_dir.to_str().unwrap().into();
    let mut up_drop = upload(&local, "d.age", "r1", &sum);
    up_drop.if_exists = IfExists::Overwrite;
    deliver(&t_drop, &up_drop)
        .await
        .unwrap_or_else(|e| panic!("write-only folder: {e}"));
    assert_eq!(std::fs::read(drop_dir.join("d.age")).unwrap(), data);
    up_drop.if_exists = IfExists::Fail;
    up_drop.run_id = "r2".into();
    deliver(&t_drop, &up_drop).await.unwrap(); // the same artifact: recognised, no conflict

    // A folder the user may not write to: permission denied is permanent.
    let root_dir = sshd.remote_dir("root-owned");
    std::fs::set_permissions(&root_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut t_ro = t.clone();
    t_ro.remote_dir = root_dir.to_str().unwrap().into();
    let e = deliver(&t_ro, &upload(&local, "p.age", "r1", &sum))
        .await
        .unwrap_err();
    assert_eq!(
        e.status_code(),
        Some(russh_sftp::protocol::StatusCode::PermissionDenied),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    assert!(ls(&root_dir).is_empty());

    // Wrong password: permanent, nothing new written.
    let bad = work.path().join("bad");
    std::fs::write(&bad, "wrong-password\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    t.auth = Auth::PasswordFile(bad);
    let before = ls(&dir);
    let e = deliver(&t, &upload(&local, "q.age", "r2", &sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::AuthRefused { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(!regdrop::core::errors::chain(&e).contains("wrong-password"));
    assert_eq!(ls(&dir), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readable_password_file_is_refused_before_connecting() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("f");
    let (_, sum) = random_file(&local, 2 * MIB);
    let dir = sshd.remote_dir("password");
    let pw = work.path().join("pw");
    std::fs::write(&pw, format!("{}\n", sshd::PW_PASSWORD)).unwrap();
    let mut t = sshd.target(&dir);
    t.username = sshd::PW_USER.into();

    // A group/other-readable password file is refused before any connection: point the
    // target at a port where nothing listens to prove no connect is tried.
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    t.auth = Auth::PasswordFile(pw.clone());
    t.port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = deliver(&t, &upload(&local, "q.age", "r3", &sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::SecretFile { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("chmod 600 {}", pw.display())),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Permanent);

    // With a good file, nothing listening is a retryable connect error.
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = deliver(&t, &upload(&local, "q.age", "r3", &sum))
        .await
        .unwrap_err();
    assert!(matches!(e, SftpError::Connect { .. }), "{e}");
    assert!(e.is_retryable());
}
