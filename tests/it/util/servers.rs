//! One interface over the real SFTP servers of the interop suite ([`crate::interop`]):
//! OpenSSH `internal-sftp` ([`super::sshd`]), ProFTPD `mod_sftp` ([`super::proftpd`]),
//! `rclone serve sftp` in two VFS modes ([`super::rclone`]) and an asyncssh `SFTPServer`
//! ([`super::asyncssh`]). Each runs as a child process on its own loopback port with a
//! throwaway ed25519 host key, the harness's user key authorised and a fixed test password.

use regdrop::sftp::{Auth, Target};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Per-request timeout of every interop target: short, so a server that stops answering
/// fails a test in seconds instead of regdrop's production two minutes.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The servers of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    OpenSsh,
    Proftpd,
    /// `rclone serve sftp` with the default `--vfs-cache-mode off`.
    Rclone,
    /// `rclone serve sftp --vfs-cache-mode writes`.
    RcloneVfsWrites,
    Asyncssh,
}

impl Kind {
    /// Why this server can only run as root, if it can.
    pub fn needs_root(self) -> Option<&'static str> {
        match self {
            Kind::Proftpd => {
                Some("ProFTPD chroots each login and serves its files as the virtual user nobody")
            }
            _ => None,
        }
    }

    /// Starts a fresh server of this kind (its own port, keys and folders).
    pub fn start(self) -> Box<dyn SftpServer> {
        match self {
            Kind::OpenSsh => Box::new(start_openssh()),
            Kind::Proftpd => Box::new(super::proftpd::Proftpd::start()),
            Kind::Rclone => Box::new(super::rclone::Rclone::start(super::rclone::Opts::default())),
            Kind::RcloneVfsWrites => Box::new(super::rclone::Rclone::start(super::rclone::Opts {
                vfs_cache_writes: true,
            })),
            Kind::Asyncssh => Box::new(super::asyncssh::Asyncssh::start()),
        }
    }
}

/// What a test needs to know about a running server.
pub trait SftpServer: Send + Sync {
    /// For messages: "OpenSSH internal-sftp", "ProFTPD mod_sftp", ...
    fn name(&self) -> &'static str;
    fn port(&self) -> u16;
    /// The host's public key line (`ssh-ed25519 AAAA... comment`) and its file.
    fn host_pub(&self) -> &str;
    fn host_pub_path(&self) -> &Path;
    /// The authorised user key (private key file, no passphrase).
    fn user_key(&self) -> &Path;
    /// The user that logs in with [`SftpServer::user_key`].
    fn username(&self) -> &str;
    /// The user that logs in with the password of [`SftpServer::password_target`] (the same user except at
    /// OpenSSH, where key login is the current user and password login a local test user).
    fn password_username(&self) -> &str;
    /// A fresh, empty folder both logins can write: (its path as the server shows it, the
    /// same folder on local disk).
    fn remote_dir(&self, name: &str) -> (String, PathBuf);
    /// Key login into `remote` (a path as the server shows it), [`IO_TIMEOUT`].
    fn target(&self, remote: &str) -> Target;
    /// Password login (from a 0600 file) into `remote`, [`IO_TIMEOUT`].
    fn password_target(&self, remote: &str) -> Target;
    /// The server's logs so far, for failure messages.
    fn log_text(&self) -> String;
    /// Waits until what the server acknowledged is on local disk (rclone's VFS cache
    /// uploads to the served folder after close); a no-op for the others.
    fn settle(&self) {}
    /// `SHA256:...` of the host key, as `ssh-keygen -l` prints it.
    fn host_fingerprint(&self) -> String {
        sshd::fingerprint(self.host_pub_path())
    }
}

/// A key-login target for `s` into `remote`.
pub fn key_target(s: &(impl SftpServer + ?Sized), remote: &str) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port: s.port(),
        username: s.username().into(),
        host_keys: vec![s.host_pub().into()],
        known_hosts: None,
        auth: Auth::KeyFile {
            path: s.user_key().to_path_buf(),
            passphrase_file: None,
        },
        remote_dir: remote.into(),
        create_dirs: false,
        connect_timeout: CONNECT_TIMEOUT,
        io_timeout: IO_TIMEOUT,
        overrides: Default::default(),
    }
}

/// A password-login target for `s` into `remote`, the password read from `file`.
pub fn password_target(s: &(impl SftpServer + ?Sized), remote: &str, file: &Path) -> Target {
    Target {
        username: s.password_username().into(),
        auth: Auth::PasswordFile(file.to_path_buf()),
        ..key_target(s, remote)
    }
}

/// The temp folder of one server (keys, config, logs, served files). Kept after the test
/// (and its path printed) when `REGDROP_INTEROP_KEEP` is set, to read full logs.
pub fn server_dir(prefix: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    if std::env::var_os("REGDROP_INTEROP_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("REGDROP_INTEROP_KEEP: keeping {}", dir.path().display());
    }
    dir
}

/// Writes `password` to `DIR/password` (0600, as regdrop demands); returns the path.
pub fn password_file(dir: &Path, password: &str) -> PathBuf {
    let p = dir.join("password");
    std::fs::write(&p, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// SIGTERM, up to 5 s to exit, then SIGKILL; reaps the child.
#[allow(unsafe_code)] // the unsafe block below carries its SAFETY note
pub fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: kill(2) on the pid of our own unreaped child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// --- OpenSSH: the existing harness, with password login on ---

use super::sshd::{self, Opts, Sshd};

/// OpenSSH `internal-sftp`: key login as the current user, and as root also password
/// login as [`sshd::PW_USER`] / [`sshd::PW_PASSWORD`] (which needs root; as any other user
/// the password case is skipped).
pub fn start_openssh() -> Sshd {
    let password_auth = super::root::is_root();
    if password_auth {
        sshd::ensure_password_user();
    }
    let s = Sshd::start_with(Opts { password_auth });
    password_file(s.dir.path(), sshd::PW_PASSWORD);
    s
}

impl SftpServer for Sshd {
    fn name(&self) -> &'static str {
        "OpenSSH internal-sftp"
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn host_pub(&self) -> &str {
        &self.host_pub
    }
    fn host_pub_path(&self) -> &Path {
        &self.host_pub_path
    }
    fn user_key(&self) -> &Path {
        &self.user_key
    }
    fn username(&self) -> &str {
        static USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        USER.get_or_init(sshd::current_user)
    }
    fn password_username(&self) -> &str {
        sshd::PW_USER
    }
    /// An absolute path (no chroot): the same string on both sides. As root, owned by the
    /// password-test user so both logins can write.
    fn remote_dir(&self, name: &str) -> (String, PathBuf) {
        let p = Sshd::remote_dir(self, name);
        if super::root::is_root() {
            sshd::run(
                std::process::Command::new("chown")
                    .arg(sshd::PW_USER)
                    .arg(&p),
            );
        }
        (p.to_str().unwrap().to_string(), p)
    }
    fn target(&self, remote: &str) -> Target {
        key_target(self, remote)
    }
    fn password_target(&self, remote: &str) -> Target {
        password_target(self, remote, &self.dir.path().join("password"))
    }
    fn log_text(&self) -> String {
        Sshd::log_text(self)
    }
}
