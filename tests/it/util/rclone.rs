//! Test harness: `rclone serve sftp` (Debian's `rclone`) serving `DIR/root` as `/` on a free
//! loopback port, with a throwaway ed25519 host key (`--key`), the harness user key in
//! `--authorized-keys` and `--user`/`--pass` for password login; a throwaway config
//! (`--config /dev/null`) and cache folder (`--cache-dir DIR/cache`). Two modes: the
//! default `--vfs-cache-mode off` (writes stream straight to the file) and
//! `--vfs-cache-mode writes` (writes go to a cache file, uploaded on close). Killed on drop.
//! Never skips: a missing rclone fails the test loudly with the `apt-get install` line.

use super::launch::Launch;
use super::servers::{password_file, SftpServer};
use super::sshd::{keys, Keys};
use regdrop::sftp::Target;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RCLONE: &str = "rclone";
pub const USER: &str = "regdrop";
pub const PASSWORD: &str = "Interop-Rclone-7-Pass";

#[derive(Debug, Default, Clone, Copy)]
pub struct Opts {
    /// `--vfs-cache-mode writes` instead of the default `off`.
    pub vfs_cache_writes: bool,
}

pub struct Rclone {
    child: Child,
    pub opts: Opts,
    pub port: u16,
    /// Temp folder: keys, log, `cache/` and `root/` (served as `/`).
    pub dir: tempfile::TempDir,
    pub host_pub: String,
    pub host_pub_path: PathBuf,
    pub user_key: PathBuf,
    pub username: String,
    pub password_file: PathBuf,
    pub log: PathBuf,
}

impl Rclone {
    pub fn start(opts: Opts) -> Rclone {
        let found = Command::new(RCLONE)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            found,
            "`{RCLONE}` not found: these tests need rclone; run `apt-get install -y rclone`"
        );
        let dir = super::servers::server_dir("regdrop-rclone-");
        let d = dir.path();
        let Keys {
            host_key,
            host_pub,
            user_key,
            auth_keys,
        } = keys(d);
        std::fs::create_dir(d.join("root")).unwrap();
        let password_file = password_file(d, PASSWORD);
        let log = d.join("rclone.log");
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let launch = Launch {
            name: "rclone serve sftp",
            ready_means: "start listening",
            within: Duration::from_secs(15),
            log: &log_text,
            port_taken: &|_, text| text.contains("address already in use"),
        };
        let (child, port) = launch.start(
            |port| {
                let logf = std::fs::File::create(&log).unwrap();
                Command::new(RCLONE)
                    .arg("serve")
                    .arg("sftp")
                    .arg(d.join("root"))
                    .arg("--addr")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("--key")
                    .arg(&host_key)
                    .arg("--authorized-keys")
                    .arg(&auth_keys)
                    .args(["--user", USER, "--pass", PASSWORD])
                    .args(["--config", "/dev/null"])
                    .arg("--cache-dir")
                    .arg(d.join("cache"))
                    .args([
                        "--vfs-cache-mode",
                        if opts.vfs_cache_writes {
                            "writes"
                        } else {
                            "off"
                        },
                    ])
                    // Cached writes go to the served folder right after close, not 5 s later
                    // (the default), so the tests can look at the folder; see `settle`.
                    .args(["--vfs-write-back", "0s"])
                    .arg("-vv")
                    .env("RCLONE_CONFIG", "/dev/null")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(logf)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {RCLONE}: {e}"))
            },
            |_, _| log_text().contains("SFTP server listening on"),
        );
        Rclone {
            child,
            opts,
            port,
            host_pub_path: host_key.with_extension("pub"),
            dir,
            host_pub,
            user_key,
            username: USER.into(),
            password_file,
            log,
        }
    }
}

impl SftpServer for Rclone {
    fn name(&self) -> &'static str {
        if self.opts.vfs_cache_writes {
            "rclone serve sftp --vfs-cache-mode writes"
        } else {
            "rclone serve sftp"
        }
    }
    fixture_accessors!();
    /// `("/NAME", DIR/root/NAME)`.
    fn remote_dir(&self, name: &str) -> (String, PathBuf) {
        let local = self.dir.path().join("root").join(name);
        std::fs::create_dir_all(&local).unwrap();
        (format!("/{name}"), local)
    }
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// With `--vfs-cache-mode writes`, waits (at most 15 s) until every file queued for
    /// upload from the cache has been written to the served folder.
    fn settle(&self) {
        if !self.opts.vfs_cache_writes {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.log_text();
            let queued = text.matches("vfs cache: queuing for upload").count();
            let done = text.matches("vfs cache: upload succeeded").count()
                + text.matches("vfs cache: failed to upload").count()
                + text.matches("vfs cache: upload failed").count();
            if done >= queued || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rclone {
    fn drop(&mut self) {
        super::servers::stop(&mut self.child);
    }
}
