//! What every interop case uses: a runtime, uploads, timed deliveries with failure context,
//! `sha256sum -c` on the server, exact folder listings and an inotify watcher of the folder.

use crate::util::files::ls;
use crate::util::servers::SftpServer;
use regdrop::sftp::{self, Delivered, IfExists, SftpError, Target, Upload, Verify};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers.

pub(super) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub(super) fn upload(local: &Path, name: &str, run_id: &str, sum: &str) -> Upload {
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
pub(super) fn log_tail(s: &dyn SftpServer, n: usize) -> String {
    let text = s.log_text();
    let start = text.len().saturating_sub(n);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Context for a failure message: server, time, folder, log.
pub(super) fn context(s: &dyn SftpServer, t0: Instant, local: &Path) -> String {
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
pub(super) async fn deliver(t: &Target, up: &Upload) -> (Result<Delivered, SftpError>, Duration) {
    let t0 = Instant::now();
    let r = sftp::deliver(t, up, &|_| {}).await;
    (r, t0.elapsed())
}

/// Delivers `up`, which must succeed.
pub(super) async fn deliver_ok(
    s: &dyn SftpServer,
    t: &Target,
    up: &Upload,
    local: &Path,
) -> Delivered {
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
pub(super) fn sha256sum_c(s: &dyn SftpServer, local: &Path, name: &str) {
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

pub(super) fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The folder holds exactly `expected` (sorted), nothing else: no temp files, no litter.
pub(super) fn assert_listing(s: &dyn SftpServer, local: &Path, expected: &[&str]) {
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
pub(super) struct DirEvents {
    fd: i32,
}

impl DirEvents {
    #[allow(unsafe_code)] // each unsafe block below carries its SAFETY note
    pub(super) fn watch(dir: &Path) -> DirEvents {
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
    pub(super) fn drain(&self) -> Vec<(String, &'static str)> {
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
