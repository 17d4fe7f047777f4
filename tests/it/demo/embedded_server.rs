//! The embedded demo SFTP server against the OpenSSH `sftp` client: upload, rename, list,
//! download, pinned host key, path escapes refused, fault injection.

use regdrop::demo_server::{self, DemoAuth, DemoServerHandle};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
    root: PathBuf,
    key: PathBuf,
    pub_line: String,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("served");
    fs::create_dir(&root).unwrap();
    let key = dir.path().join("id_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "demo-test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client) must be installed");
    assert!(st.success());
    let pub_line = fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string();
    Env {
        dir,
        root,
        key,
        pub_line,
    }
}

async fn start(e: &Env) -> DemoServerHandle {
    demo_server::start(
        e.root.clone(),
        DemoAuth::public_key("demo", e.pub_line.clone()),
        Some(e.dir.path().join("host_ed25519")),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Runs `sftp -b` with the given batch lines, pinning the server key via a temp known_hosts.
async fn sftp(e: &Env, srv: &DemoServerHandle, batch: &[&str], extra: &[&str]) -> Output {
    let kh = e.dir.path().join("known_hosts");
    fs::write(&kh, format!("{}\n", srv.info.known_hosts_line())).unwrap();
    let bf = e.dir.path().join("batch");
    fs::write(&bf, batch.join("\n") + "\n").unwrap();
    let mut cmd = Command::new("sftp");
    cmd.current_dir(e.dir.path())
        .args(["-F", "/dev/null", "-i"])
        .arg(&e.key)
        .args(["-P", &srv.addr().port().to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "PasswordAuthentication=no",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args(extra)
        .arg("-b")
        .arg(&bf)
        .arg("demo@127.0.0.1");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn payload(n: usize) -> Vec<u8> {
    // Deterministic, incompressible enough, not a multiple of any packet size.
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn write_local(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, data).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_sftp_put_rename_ls_get_round_trip() {
    let e = env();
    let srv = start(&e).await;
    assert!(srv.host_key_line().starts_with("ssh-ed25519 "));
    let data = payload(1_234_567);
    write_local(e.dir.path(), "upload.bin", &data);
    let out = sftp(
        &e,
        &srv,
        &[
            "mkdir incoming",
            "put -f upload.bin incoming/.final.bin.run1.part",
            "rename incoming/.final.bin.run1.part incoming/final.bin",
            "ls -l incoming",
            "get incoming/final.bin download.bin",
            "cd incoming",
            "pwd",
        ],
        &["-vv"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("final.bin"), "{}", text(&out));
    let listing: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("sftp>")).collect();
    assert!(
        listing.iter().any(|l| l.ends_with(" final.bin")),
        "{}",
        text(&out)
    );
    assert!(
        !listing.iter().any(|l| l.contains(".part")),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("Remote working directory: /incoming"),
        "{}",
        text(&out)
    );
    // The extensions are advertised in the version reply (sftp -vv logs them).
    assert!(
        stderr.contains("posix-rename@openssh.com"),
        "{}",
        text(&out)
    );
    assert!(stderr.contains("fsync@openssh.com"), "{}", text(&out));
    assert_eq!(fs::read(e.root.join("incoming/final.bin")).unwrap(), data);
    assert_eq!(fs::read(e.dir.path().join("download.bin")).unwrap(), data);
    assert!(!e.root.join("incoming/.final.bin.run1.part").exists());
    assert_eq!(srv.faults().bytes_written(), data.len() as u64);
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_onto_an_existing_file_fails_without_touching_it() {
    let e = env();
    let srv = start(&e).await;
    fs::write(e.root.join("old.txt"), b"old").unwrap();
    write_local(e.dir.path(), "new.txt", b"new");
    // sftp's `rename` uses posix-rename@openssh.com (overwrites) when offered: hide it
    // to reach the plain SSH_FXP_RENAME, which must refuse an existing target.
    srv.faults().set_hide_extensions(true);
    let out = sftp(
        &e,
        &srv,
        &["put new.txt new.txt", "rename new.txt old.txt"],
        &[],
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(fs::read(e.root.join("old.txt")).unwrap(), b"old");
    assert_eq!(fs::read(e.root.join("new.txt")).unwrap(), b"new");
    // With the extension, the same rename replaces the target atomically.
    srv.faults().set_hide_extensions(false);
    let out = sftp(&e, &srv, &["rename new.txt old.txt"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read(e.root.join("old.txt")).unwrap(), b"new");
    assert!(!e.root.join("new.txt").exists());
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_escapes_are_refused() {
    let e = env();
    let srv = start(&e).await;
    fs::write(e.dir.path().join("secret.txt"), b"outside").unwrap();
    std::os::unix::fs::symlink(e.dir.path(), e.root.join("link")).unwrap();
    std::os::unix::fs::symlink(e.dir.path().join("nowhere.txt"), e.root.join("dangling")).unwrap();
    write_local(e.dir.path(), "x.txt", b"x");
    let attempts: &[&[&str]] = &[
        &["get ../secret.txt got1.txt"],
        &["get /../secret.txt got2.txt"],
        &["get link/secret.txt got3.txt"],
        &["put x.txt ../escaped.txt"],
        &["put x.txt link/escaped.txt"],
        &["put x.txt dangling"],
        &["cd link"],
        &["rename link/secret.txt stolen.txt"],
        &["rm link/secret.txt"],
        &["symlink /etc/passwd pw"],
    ];
    for batch in attempts {
        let out = sftp(&e, &srv, batch, &[]).await;
        assert!(
            !out.status.success(),
            "{batch:?} was allowed:\n{}",
            text(&out)
        );
    }
    for name in [
        "got1.txt",
        "got2.txt",
        "got3.txt",
        "escaped.txt",
        "nowhere.txt",
    ] {
        assert!(!e.dir.path().join(name).exists(), "{name} exists");
    }
    assert_eq!(
        fs::read(e.dir.path().join("secret.txt")).unwrap(),
        b"outside"
    );
    assert!(!e.root.join("stolen.txt").exists());
    assert!(!e.root.join("pw").exists());
    // Listing through the symlink shows nothing of what lies outside.
    let out = sftp(
        &e,
        &srv,
        &["-ls -l link/", "-ls -l link/secret.txt", "-ls -l .."],
        &[],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("sftp>")).collect();
    for word in ["secret.txt", "id_ed25519", "served", "x.txt"] {
        assert!(
            !listed.iter().any(|l| l.contains(word)),
            "{word} listed:\n{}",
            text(&out)
        );
    }
    // `..` inside the folder is fine.
    let out = sftp(&e, &srv, &["mkdir a", "put x.txt a/../inside.txt"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read(e.root.join("inside.txt")).unwrap(), b"x");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_key_persists_and_wrong_user_key_is_refused() {
    let e = env();
    let srv = start(&e).await;
    let line = srv.host_key_line().to_string();
    let fp = srv.info.host_key_fingerprint.clone();
    srv.shutdown().await;
    let srv = start(&e).await;
    assert_eq!(
        srv.host_key_line(),
        line,
        "the persisted host key is reused"
    );
    assert_eq!(srv.info.host_key_fingerprint, fp);
    assert!(fp.starts_with("SHA256:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(e.dir.path().join("host_ed25519"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Another key is not let in.
    let other = e.dir.path().join("other_ed25519");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap()
        .success());
    let e2 = Env {
        dir: e.dir,
        root: e.root.clone(),
        key: other,
        pub_line: String::new(),
    };
    let out = sftp(&e2, &srv, &["ls"], &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out)
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_cuts_the_upload_once_then_a_retry_succeeds() {
    let e = env();
    let srv = start(&e).await;
    let data = payload(600_000);
    write_local(e.dir.path(), "big.bin", &data);
    srv.faults().set_fail_after_bytes(Some(200_000));
    let out = sftp(&e, &srv, &["put big.bin big.bin.part"], &[]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(srv.faults().trips(), 1);
    let partial = fs::metadata(e.root.join("big.bin.part"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(partial <= 600_000);
    assert_eq!(srv.faults().bytes_written(), 200_000);
    // Retry: the cut fired once, so this upload completes.
    let out = sftp(
        &e,
        &srv,
        &["put big.bin big.bin.part", "rename big.bin.part big.bin"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read(e.root.join("big.bin")).unwrap(), data);
    assert_eq!(srv.faults().connections(), 2);
    srv.shutdown().await;
}

#[tokio::test]
async fn refuses_non_loopback_and_no_auth() {
    let dir = tempfile::tempdir().unwrap();
    let err = demo_server::start(
        dir.path().to_path_buf(),
        DemoAuth::password("demo", "pw"),
        None,
        "0.0.0.0:0".parse().unwrap(),
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("loopback"), "{err}");
    let err = demo_server::start(
        dir.path().to_path_buf(),
        DemoAuth {
            user: "demo".into(),
            ..Default::default()
        },
        None,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("no authentication"), "{err}");
}

// ---- the same server through regdrop's own client stack (russh + russh-sftp) ----------

struct Pinned(russh::keys::PublicKey);

impl russh::client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.key_data() == self.0.key_data()
            }
            _ => false,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn russh_sftp_client_with_password_fsync_and_posix_rename() {
    use russh_sftp::client::{RawSftpSession, SftpSession};
    use russh_sftp::extensions::HardlinkExtension;
    use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    let dir = tempfile::tempdir().unwrap();
    let srv = demo_server::start(
        dir.path().to_path_buf(),
        DemoAuth::password("demo", "s3cret"),
        None,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let pinned = demo_server::parse_key_line(srv.host_key_line()).unwrap();
    let config = Arc::new(russh::client::Config::default());

    // Wrong password: refused.
    let mut h = russh::client::connect(config.clone(), srv.addr(), Pinned(pinned.clone()))
        .await
        .unwrap();
    assert!(!h
        .authenticate_password("demo", "wrong")
        .await
        .unwrap()
        .success());
    drop(h);

    let mut h = russh::client::connect(config, srv.addr(), Pinned(pinned))
        .await
        .unwrap();
    assert!(h
        .authenticate_password("demo", "s3cret")
        .await
        .unwrap()
        .success());

    // Raw session: the version reply lists the extensions.
    let ch = h.channel_open_session().await.unwrap();
    ch.request_subsystem(true, "sftp").await.unwrap();
    let raw = RawSftpSession::new(ch.into_stream());
    let version = raw.init().await.unwrap();
    assert_eq!(
        version
            .extensions
            .get("posix-rename@openssh.com")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        version
            .extensions
            .get("fsync@openssh.com")
            .map(String::as_str),
        Some("1")
    );

    // High-level session: exclusive create, pipelined writes, fsync, close, stat.
    let ch = h.channel_open_session().await.unwrap();
    ch.request_subsystem(true, "sftp").await.unwrap();
    let sftp = SftpSession::new(ch.into_stream()).await.unwrap();
    let data = payload(3 * 1024 * 1024 + 17);
    let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE | OpenFlags::EXCLUDE;
    let attrs = FileAttributes {
        permissions: Some(0o600),
        ..Default::default()
    };
    let mut f = sftp
        .open_with_flags_and_attributes(".x.part", flags, attrs.clone())
        .await
        .unwrap();
    for chunk in data.chunks(1 << 20) {
        f.write_all(chunk).await.unwrap();
    }
    f.sync_all().await.unwrap();
    f.close().await.unwrap();
    assert_eq!(
        sftp.metadata(".x.part").await.unwrap().size,
        Some(data.len() as u64)
    );
    // EXCL on an existing name fails.
    assert!(sftp
        .open_with_flags_and_attributes(".x.part", flags, attrs)
        .await
        .is_err());
    // Plain rename onto an existing file fails; posix-rename replaces it.
    fs::write(dir.path().join("x.bin"), b"old").unwrap();
    assert!(sftp.rename(".x.part", "x.bin").await.is_err());
    let ext: Vec<u8> = HardlinkExtension {
        oldpath: ".x.part".into(),
        newpath: "x.bin".into(),
    }
    .try_into()
    .unwrap();
    match raw.extended("posix-rename@openssh.com", ext).await.unwrap() {
        Packet::Status(s) => assert_eq!(s.status_code, StatusCode::Ok),
        other => panic!("unexpected reply {other:?}"),
    }
    assert_eq!(fs::read(dir.path().join("x.bin")).unwrap(), data);
    assert_eq!(sftp.read("x.bin").await.unwrap(), data);
    assert!(!sftp.try_exists(".x.part").await.unwrap());
    // Listing a folder larger than one READDIR reply (100 names) returns every entry.
    fs::create_dir(dir.path().join("many")).unwrap();
    for i in 0..250 {
        fs::write(dir.path().join(format!("many/f{i:03}")), b"").unwrap();
    }
    let names: Vec<String> = sftp
        .read_dir("many")
        .await
        .unwrap()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.iter().filter(|n| n.starts_with('f')).count(), 250);
    // Escapes are refused through this client too.
    assert!(sftp.metadata("../").await.is_err());
    assert!(sftp.create("/../evil").await.is_err());
    sftp.close().await.unwrap();
    let _ = h
        .disconnect(russh::Disconnect::ByApplication, "done", "en")
        .await;
    srv.shutdown().await;
}
