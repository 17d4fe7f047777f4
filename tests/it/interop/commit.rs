//! Interop cases of the commit to the final name: `if_exists` fail, overwrite (never a
//! partial file, watched with inotify) and version, a race on the final name, read-back.

use super::helpers::*;
use super::MIB;
use crate::util::fault_proxy::{Faults, Proxy};
use crate::util::files::{ls, random_file};
use crate::util::servers::Kind;
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::sftp::{self, IfExists, SftpError, Verify};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `if_exists = fail` with the name taken: a permanent FinalExists, the existing file
/// untouched, nothing else written.
pub(super) fn if_exists_fail_leaves_the_existing_file(kind: Kind) {
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
pub(super) fn if_exists_overwrite_replaces_never_partial(kind: Kind) {
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
pub(super) fn if_exists_version_takes_the_next_name(kind: Kind) {
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
pub(super) fn race_on_the_final_name_with_fail_keeps_the_other_file(kind: Kind) {
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
pub(super) fn read_back_verification(kind: Kind) {
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
