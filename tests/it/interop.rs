//! The same delivery cases against every real SFTP server of the harness
//! ([`crate::util::servers`]): OpenSSH `internal-sftp`, ProFTPD `mod_sftp`,
//! `rclone serve sftp` (default and `--vfs-cache-mode writes`) and an asyncssh
//! `SFTPServer`. One `#[test]` per (server, case), named `SERVER::CASE`, so
//! `cargo test --test it interop::proftpd::` runs one server and a failure names both.
//!
//! Every test starts its own server on its own loopback port. Assertions look at the files
//! on the server's disk (exact folder listings: no `.part` or other litter), not only at
//! what regdrop returns. Targets use a 20 s `io_timeout`, so a server that stops answering
//! fails a test in seconds; every failure message carries the time, the folder listing and
//! the tail of the server's log.

use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::{ls, random_file, sha256_file};
use crate::util::servers::{Kind, SftpServer};
use crate::util::{self};
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::sftp::{self, Delivered, IfExists, SftpError, Target, Upload, Verify};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// The matrix: every case against every server.

macro_rules! suite {
    (servers: [$($srv:ident = $kind:ident),* $(,)?], cases: $cases:tt) => {
        $( suite!(@server $srv, $kind, $cases); )*
    };
    (@server $srv:ident, $kind:ident, [$($case:ident),* $(,)?]) => {
        mod $srv {
            $(
                #[test]
                fn $case() {
                    if let Some(why) = super::Kind::$kind.needs_root() {
                        if !crate::util::root::require(why) {
                            return;
                        }
                    }
                    super::$case(super::Kind::$kind);
                }
            )*
        }
    };
}

suite! {
    servers: [
        openssh = OpenSsh,
        proftpd = Proftpd,
        rclone = Rclone,
        rclone_vfs_writes = RcloneVfsWrites,
        asyncssh = Asyncssh,
    ],
    cases: [
        probe_succeeds_and_leaves_the_folder_empty,
        delivers_20_mib_over_several_channels,
        if_exists_fail_leaves_the_existing_file,
        if_exists_overwrite_replaces_never_partial,
        if_exists_version_takes_the_next_name,
        race_on_the_final_name_with_fail_keeps_the_other_file,
        read_back_verification,
        key_login,
        password_login,
        cut_mid_upload_then_retry_leaves_one_file,
        cli_deliver_with_code_tables_and_receipt,
        regdrop_and_openssh_sftp_put_the_same_bytes,
    ]
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn upload(local: &Path, name: &str, run_id: &str, sum: &str) -> Upload {
    Upload {
        local: local.to_path_buf(),
        final_name: name.into(),
        run_id: run_id.into(),
        if_exists: IfExists::Fail,
        verify: Verify::Size,
        sha256_hex: sum.into(),
        manifest: None,
        done_marker: false,
    }
}

/// The last `n` characters of the server's log.
fn log_tail(s: &dyn SftpServer, n: usize) -> String {
    let text = s.log_text();
    let start = text.len().saturating_sub(n);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Context for a failure message: server, time, folder, log.
fn context(s: &dyn SftpServer, t0: Instant, local: &Path) -> String {
    format!(
        "server: {}\nafter {:.1} s\nfolder {}: {:?}\n--- server log (tail) ---\n{}",
        s.name(),
        t0.elapsed().as_secs_f64(),
        local.display(),
        if local.exists() { ls(local) } else { vec![] },
        log_tail(s, 6000)
    )
}

/// Delivers and times it.
async fn deliver(t: &Target, up: &Upload) -> (Result<Delivered, SftpError>, Duration) {
    let t0 = Instant::now();
    let r = sftp::deliver(t, up, &|_| {}).await;
    (r, t0.elapsed())
}

/// Delivers `up`, which must succeed.
async fn deliver_ok(s: &dyn SftpServer, t: &Target, up: &Upload, local: &Path) -> Delivered {
    let t0 = Instant::now();
    let r = sftp::deliver(t, up, &|_| {}).await;
    eprintln!(
        "[{}] deliver {} -> {:?} in {:.1} s",
        s.name(),
        up.final_name,
        r.as_ref().map(|d| &d.final_name),
        t0.elapsed().as_secs_f64()
    );
    match r {
        Ok(d) => {
            s.settle();
            d
        }
        Err(e) => panic!(
            "deliver {} failed: {e}\n{e:?}\n{}",
            up.final_name,
            context(s, t0, local)
        ),
    }
}

/// `sha256sum -c NAME.sha256` in the folder, as the customer runs it.
fn sha256sum_c(s: &dyn SftpServer, local: &Path, name: &str) {
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{name}.sha256"))
        .current_dir(local)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "[{}] sha256sum -c {name}.sha256: {}{}",
        s.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The folder holds exactly `expected` (sorted), nothing else: no temp files, no litter.
fn assert_listing(s: &dyn SftpServer, local: &Path, expected: &[&str]) {
    s.settle();
    assert_eq!(
        ls(local),
        names(expected),
        "[{}] folder {} should hold exactly these files",
        s.name(),
        local.display()
    );
}

/// What happened to the names in one folder (inotify, Linux): every event is queued by the
/// kernel, so a window of microseconds is seen as surely as a long one.
struct DirEvents {
    fd: i32,
}

impl DirEvents {
    #[allow(unsafe_code)] // each unsafe block below carries its SAFETY note
    fn watch(dir: &Path) -> DirEvents {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls on a fd we own; the path is NUL-terminated below.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0, "inotify_init1");
            let mut p = dir.as_os_str().as_bytes().to_vec();
            p.push(0);
            let mask = libc::IN_CREATE
                | libc::IN_DELETE
                | libc::IN_MOVED_FROM
                | libc::IN_MOVED_TO
                | libc::IN_MODIFY;
            let wd = libc::inotify_add_watch(fd, p.as_ptr().cast(), mask);
            assert!(wd >= 0, "inotify_add_watch {}", dir.display());
            DirEvents { fd }
        }
    }

    /// The events so far: (name, what).
    #[allow(unsafe_code)] // each unsafe block below carries its SAFETY note
    fn drain(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reads into our buffer of the stated length.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            let mut i = 0usize;
            while i + 16 <= n as usize {
                let mask = u32::from_ne_bytes(buf[i + 4..i + 8].try_into().unwrap());
                let len = u32::from_ne_bytes(buf[i + 12..i + 16].try_into().unwrap()) as usize;
                let raw = &buf[i + 16..i + 16 + len];
                let name = String::from_utf8_lossy(raw.split(|&b| b == 0).next().unwrap_or(&[]))
                    .into_owned();
                let what = if mask & libc::IN_DELETE != 0 {
                    "deleted"
                } else if mask & libc::IN_MOVED_FROM != 0 {
                    "moved away"
                } else if mask & libc::IN_MOVED_TO != 0 {
                    "moved in"
                } else if mask & libc::IN_CREATE != 0 {
                    "created"
                } else {
                    "written"
                };
                out.push((name, what));
                i += 16 + len;
            }
        }
    }
}

impl Drop for DirEvents {
    #[allow(unsafe_code)] // each unsafe block below carries its SAFETY note
    fn drop(&mut self) {
        // SAFETY: closes the fd we opened.
        unsafe {
            libc::close(self.fd);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The cases.

/// `probe` logs in, checks the folder is writable with a temp file, and removes it.
fn probe_succeeds_and_leaves_the_folder_empty(kind: Kind) {
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
fn delivers_20_mib_over_several_channels(kind: Kind) {
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

/// `if_exists = fail` with the name taken: a permanent FinalExists, the existing file
/// untouched, nothing else written.
fn if_exists_fail_leaves_the_existing_file(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("new");
    let (_, sum) = random_file(&file, MIB);
    let (remote, local) = s.remote_dir("fail");
    let old = b"last week's file, must stay\n".to_vec();
    std::fs::write(local.join("w.age"), &old).unwrap();
    let (r, took) = block_on(deliver(
        &s.target(&remote),
        &upload(&file, "w.age", "run-f", &sum),
    ));
    eprintln!("[{}] fail on taken name: {r:?} in {took:?}", s.name());
    s.settle();
    match r {
        Err(SftpError::FinalExists { .. }) => {}
        other => panic!(
            "expected FinalExists, got {other:?}\n{}",
            context(s, Instant::now() - took, &local)
        ),
    }
    assert_eq!(std::fs::read(local.join("w.age")).unwrap(), old);
    assert_listing(s, &local, &["w.age"]);
}

/// `if_exists = overwrite`: the new bytes replace the old ones; a reader of the final name
/// on disk sees old then new, never a partial file (and never no file when regdrop says
/// the replace was an atomic posix-rename). Besides readers polling the name, inotify
/// on the folder proves it: no bytes are ever written under the final name (only renamed
/// in), and with posix-rename the old file is never deleted or moved away first.
fn if_exists_overwrite_replaces_never_partial(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("new");
    let (new, sum) = random_file(&file, 3 * MIB);
    let (remote, local) = s.remote_dir("overwrite");
    let old = b"last week's file, to be replaced\n".to_vec();
    let final_path = local.join("w.age");
    std::fs::write(&final_path, &old).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, old, new, path) = (stop.clone(), old.clone(), new.clone(), final_path.clone());
        std::thread::spawn(move || {
            // (polls, times missing, first bad content)
            let (mut polls, mut missing, mut bad) = (0u64, 0u64, None::<String>);
            let mut seen_new = false;
            while !stop.load(Ordering::Relaxed) {
                polls += 1;
                match std::fs::read(&path) {
                    Err(_) => missing += 1,
                    Ok(got) if got == new => seen_new = true,
                    Ok(got) if got == old && !seen_new => {}
                    Ok(got) => {
                        bad.get_or_insert(format!(
                            "{} bytes, neither old nor new{}",
                            got.len(),
                            if seen_new { " (after new)" } else { "" }
                        ));
                    }
                }
            }
            (polls, missing, bad)
        })
    };
    // A second watcher only stats the name: many more polls, so a short window without
    // the file (a delete-then-move on the server) is caught far more often.
    let stat_watcher = {
        let (stop, path) = (stop.clone(), final_path.clone());
        std::thread::spawn(move || {
            let mut missing = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if std::fs::symlink_metadata(&path).is_err() {
                    missing += 1;
                }
            }
            missing
        })
    };
    let events = DirEvents::watch(&local);
    let mut up = upload(&file, "w.age", "run-o", &sum);
    up.if_exists = IfExists::Overwrite;
    let d = block_on(deliver_ok(s, &s.target(&remote), &up, &local));
    stop.store(true, Ordering::Relaxed);
    let (polls, missing, bad) = watcher.join().unwrap();
    let missing = missing + stat_watcher.join().unwrap();
    let on_final: Vec<&'static str> = events
        .drain()
        .into_iter()
        .filter(|(n, _)| n == "w.age")
        .map(|(_, what)| what)
        .collect();
    eprintln!(
        "[{}] overwrite: posix_rename {}, {polls} polls, missing {missing}, bad {bad:?}, \
         events on the final name {on_final:?}",
        s.name(),
        d.posix_rename
    );
    assert!(polls > 0);
    assert_eq!(
        bad,
        None,
        "[{}] a reader saw a partial final file",
        s.name()
    );
    assert!(
        !on_final.iter().any(|&w| w == "written" || w == "created"),
        "[{}] bytes were written under the final name (not renamed in): {on_final:?}",
        s.name()
    );
    if d.posix_rename {
        assert_eq!(
            missing,
            0,
            "[{}] the final name was missing during an atomic posix-rename",
            s.name()
        );
        assert!(
            !on_final
                .iter()
                .any(|&w| w == "deleted" || w == "moved away"),
            "[{}] regdrop reports an atomic posix-rename, but the server vacated the final \
             name first (events on it: {on_final:?})",
            s.name()
        );
    }
    assert!(
        std::fs::read(&final_path).unwrap() == new,
        "[{}] the final file does not hold the new bytes",
        s.name()
    );
    sha256sum_c(s, &local, "w.age");
    assert_listing(s, &local, &["w.age", "w.age.sha256"]);
}

/// `if_exists = version`: the taken name stays, the new file goes to `STEM.v2.EXT...`.
fn if_exists_version_takes_the_next_name(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("new");
    let (new, sum) = random_file(&file, MIB);
    let (remote, local) = s.remote_dir("version");
    let old = b"an earlier file under the name\n".to_vec();
    std::fs::write(local.join("w.dsv.age"), &old).unwrap();
    let mut up = upload(&file, "w.dsv.age", "run-v", &sum);
    up.if_exists = IfExists::Version;
    let d = block_on(deliver_ok(s, &s.target(&remote), &up, &local));
    assert_eq!(d.final_name, "w.v2.dsv.age");
    assert_eq!(d.remote_path, format!("{remote}/w.v2.dsv.age"));
    assert_eq!(std::fs::read(local.join("w.dsv.age")).unwrap(), old);
    assert!(std::fs::read(local.join("w.v2.dsv.age")).unwrap() == new);
    sha256sum_c(s, &local, "w.v2.dsv.age");
    assert_listing(
        s,
        &local,
        &["w.dsv.age", "w.v2.dsv.age", "w.v2.dsv.age.sha256"],
    );
}

/// Another writer creates the final name while regdrop's upload (throttled through the
/// proxy) is in flight: with `fail`, the other file must survive byte-identical and
/// regdrop must report a permanent FinalExists, not success.
fn race_on_the_final_name_with_fail_keeps_the_other_file(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("new");
    // Below 8 MiB: one channel, so the case is about the commit, not the data path.
    let (_, sum) = random_file(&file, 3 * MIB);
    let other_path = work.path().join("other");
    let (other, _) = random_file(&other_path, 64 * 1024);
    let (remote, local) = s.remote_dir("race");

    if matches!(kind, Kind::Rclone | Kind::RcloneVfsWrites) {
        // rclone has no race-free no-clobber commit (its hardlink does nothing, its rename
        // replaces, its directory cache does not see files created behind its back): the
        // one server-side impossibility. With `commit = "race-free"` it is a permanent
        // error naming the setting, with nothing written; by default the delivery goes
        // out with a checked rename and says so.
        block_on(async {
            let mut t = s.target(&remote);
            t.overrides.commit = sftp::CommitChoice::RaceFree;
            let (r, _) = deliver(&t, &upload(&file, "race.age", "run-r", &sum)).await;
            match &r {
                Err(e @ SftpError::NoSafeCommit { .. }) => {
                    assert_eq!(e.class(), ErrorClass::Permanent);
                    assert!(e.to_string().contains("race-free"), "{e}");
                }
                other => panic!("[{}] expected NoSafeCommit, got {other:?}", s.name()),
            }
            s.settle();
            assert_listing(s, &local, &[]);
            let t = s.target(&remote);
            let (r, _) = deliver(&t, &upload(&file, "race.age", "run-r2", &sum)).await;
            let d = r.expect("a checked-rename delivery");
            assert_eq!(d.commit, Some(sftp::CommitPath::CheckedRename));
            s.settle();
            assert_listing(s, &local, &["race.age", "race.age.sha256"]);
        });
        return;
    }

    block_on(async {
        // 1 MiB/s client -> server: the 3 MiB upload takes about 3 s.
        let proxy = Proxy::with(
            0,
            s.port(),
            Faults {
                rate: Some(MIB as u64),
                ..Faults::default()
            },
        )
        .await;
        let mut t = s.target(&remote);
        t.port = proxy.port;
        // Once 1 MiB has gone up (login is a few KiB: the data is flowing into the temp
        // file), the other writer creates the final name on disk.
        let up_bytes = proxy.up_bytes.clone();
        let (final_path, other2, dir) = (local.join("race.age"), other.clone(), local.clone());
        let writer = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while up_bytes.load(Ordering::Relaxed) < MIB as u64 {
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let part_visible = ls(&dir).iter().any(|n| n.ends_with(".part"));
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&final_path)
                .expect("the other writer creates the final name");
            f.write_all(&other2).unwrap();
            f.sync_all().unwrap();
            Some((Instant::now(), part_visible))
        });
        let (r, took) = deliver(&t, &upload(&file, "race.age", "run-r", &sum)).await;
        let ended = Instant::now();
        let staged = writer.join().unwrap();
        s.settle();
        eprintln!(
            "[{}] race: {r:?} in {took:?}; other writer: {staged:?}",
            s.name()
        );
        let (wrote_at, _) = staged.expect("the upload never got 1 MiB through the proxy");
        assert!(
            wrote_at < ended,
            "[{}] race not staged: the other writer came after regdrop finished ({r:?})",
            s.name()
        );
        let ctx = context(s, Instant::now() - took, &local);
        let survived = std::fs::read(local.join("race.age")).ok() == Some(other.clone());
        let fate = if survived {
            "the other writer's file survived"
        } else {
            "the other writer's file was CLOBBERED"
        };
        match &r {
            Err(SftpError::FinalExists { .. }) => {}
            Ok(d) => panic!(
                "regdrop reported success ({d:?}) although another writer took the name; \
                 {fate}\n{ctx}"
            ),
            Err(e) => panic!("expected FinalExists, got {e}\n{e:?}\n{fate}\n{ctx}"),
        }
        assert_eq!(r.as_ref().unwrap_err().class(), ErrorClass::Permanent);
        assert!(survived, "[{}] {fate}\n{ctx}", s.name());
        assert_listing(s, &local, &["race.age"]);
    });
}

/// `verify = read-back` downloads the temp file and compares its SHA-256 before the commit.
fn read_back_verification(kind: Kind) {
    let s = kind.start();
    let s = s.as_ref();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("rb");
    let (data, sum) = random_file(&file, 5 * MIB + 4321);
    let (remote, local) = s.remote_dir("readback");
    let mut up = upload(&file, "rb.csv.age", "run-rb", &sum);
    up.verify = Verify::ReadBack;
    let d = block_on(deliver_ok(s, &s.target(&remote), &up, &local));
    assert_eq!(d.verified, Verify::ReadBack);
    assert!(std::fs::read(local.join("rb.csv.age")).unwrap() == data);
    sha256sum_c(s, &local, "rb.csv.age");
    assert_listing(s, &local, &["rb.csv.age", "rb.csv.age.sha256"]);
}

fn login_case(kind: Kind, password: bool) {
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

fn key_login(kind: Kind) {
    login_case(kind, false);
}

fn password_login(kind: Kind) {
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
fn cut_mid_upload_then_retry_leaves_one_file(kind: Kind) {
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
fn cli_deliver_with_code_tables_and_receipt(kind: Kind) {
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
    let out = rd(&["check"]);
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
fn regdrop_and_openssh_sftp_put_the_same_bytes(kind: Kind) {
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
