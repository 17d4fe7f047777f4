//! Test harness: starts a real OpenSSH `sshd` (Debian's `openssh-server`) on a free loopback
//! port with a throwaway host key and user key, `internal-sftp`, logging to a file in its
//! own temp folder; kills it on drop. Never skips: a missing sshd fails the test loudly.
//!
//! It runs as whoever runs the tests. As a normal user, sshd (OpenSSH 9.x) serves logins of
//! that same user with public keys: its own host key, `UsePAM no`, `StrictModes no`, no
//! privilege separation folder (that is only needed, and only created, as root). Password
//! login ([`Opts::password_auth`] with [`PW_USER`]) needs root: sshd must read the shadow
//! file and switch to another user, and [`ensure_password_user`] creates that user.

use super::launch::Launch;
use regdrop::sftp::{Auth, Target};
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

pub const SSHD: &str = "/usr/sbin/sshd";
/// Local user for password tests (created idempotently; needs root).
pub const PW_USER: &str = "regdrop-sftp-test";
pub const PW_PASSWORD: &str = "Correct-Horse-7-Battery";

/// Runs a command, panics with its output on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ssh-keygen -q -t ed25519 -N '' -f PATH`; returns the public key line.
pub fn keygen(path: &Path) -> String {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "regdrop-test", "-f"])
        .arg(path));
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// A throwaway host key and user key, the user key authorised in an `authorized_keys` file.
pub struct Keys {
    pub host_key: PathBuf,
    /// The host's public key line.
    pub host_pub: String,
    pub user_key: PathBuf,
    pub auth_keys: PathBuf,
}

/// Makes [`Keys`] in `dir` (`host_ed25519`, `user_ed25519`, `authorized_keys`).
pub fn keys(dir: &Path) -> Keys {
    let host_key = dir.join("host_ed25519");
    let host_pub = keygen(&host_key);
    let user_key = dir.join("user_ed25519");
    let user_pub = keygen(&user_key);
    let auth_keys = dir.join("authorized_keys");
    std::fs::write(&auth_keys, format!("{user_pub}\n")).unwrap();
    Keys {
        host_key,
        host_pub,
        user_key,
        auth_keys,
    }
}

/// `SHA256:...` of a public key file, from `ssh-keygen -l`.
pub fn fingerprint(pub_path: &Path) -> String {
    let out = run(Command::new("ssh-keygen").arg("-lf").arg(pub_path));
    out.split_whitespace().nth(1).unwrap().to_string()
}

pub fn current_user() -> String {
    run(Command::new("id").arg("-un")).trim().to_string()
}

/// Options of one sshd.
#[derive(Default, Clone, Copy)]
pub struct Opts {
    pub password_auth: bool,
}

pub struct Sshd {
    child: Child,
    pub port: u16,
    /// Temp folder holding keys, config, log and the remote folders.
    pub dir: tempfile::TempDir,
    /// The host's public key line (`ssh-ed25519 AAAA... comment`) and its file.
    pub host_pub: String,
    pub host_pub_path: PathBuf,
    /// The authorised user key (private key file).
    pub user_key: PathBuf,
    pub log: PathBuf,
}

static USER_LOCK: Mutex<()> = Mutex::new(());

/// Creates (once) the password-test user with [`PW_PASSWORD`]. Needs root: call it after
/// [`super::root::require`].
pub fn ensure_password_user() {
    let _g = USER_LOCK.lock().unwrap();
    let exists = Command::new("id")
        .arg(PW_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    if !exists {
        let st = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", PW_USER])
            .status()
            .expect("useradd (needs root)");
        // Another test binary may have created it in between.
        assert!(
            st.success() || Command::new("id").arg(PW_USER).status().unwrap().success(),
            "useradd {PW_USER} failed"
        );
    }
    let mut c = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd");
    writeln!(c.stdin.take().unwrap(), "{PW_USER}:{PW_PASSWORD}").unwrap();
    assert!(c.wait().unwrap().success(), "chpasswd failed");
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with(Opts::default())
    }

    pub fn start_with(opts: Opts) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: these tests need a real OpenSSH server; \
             run `apt-get install -y openssh-server`"
        );
        if super::root::is_root() {
            // sshd started by root chroots its unprivileged child into this folder.
            std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (privilege separation)");
        }
        let dir = tempfile::Builder::new()
            .prefix("regdrop-sshd-")
            .tempdir()
            .unwrap();
        // Other users (the password-test user) must be able to reach remote folders in here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let Keys {
            host_key,
            host_pub,
            user_key,
            auth_keys,
        } = keys(dir.path());
        let log = dir.path().join("sshd.log");
        let config = dir.path().join("sshd_config");
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let launch = Launch {
            name: "sshd",
            ready_means: "accept connections",
            within: Duration::from_secs(10),
            log: &log_text,
            port_taken: &|_, text| text.contains("Address already in use"),
        };
        let (child, port) = launch.start(
            |port| {
                std::fs::write(
                    &config,
                    format!(
                        "Port {port}\n\
                         ListenAddress 127.0.0.1\n\
                         HostKey {hk}\n\
                         AuthorizedKeysFile {ak}\n\
                         PubkeyAuthentication yes\n\
                         PasswordAuthentication {pw}\n\
                         KbdInteractiveAuthentication no\n\
                         PermitRootLogin yes\n\
                         UsePAM no\n\
                         StrictModes no\n\
                         PidFile {pid}\n\
                         LogLevel VERBOSE\n\
                         Subsystem sftp internal-sftp\n",
                        hk = host_key.display(),
                        ak = auth_keys.display(),
                        pw = if opts.password_auth { "yes" } else { "no" },
                        pid = dir.path().join("sshd.pid").display(),
                    ),
                )
                .unwrap();
                let logf = std::fs::File::create(&log).unwrap();
                Command::new(SSHD)
                    .arg("-D")
                    .arg("-e")
                    .arg("-f")
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(logf)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"))
            },
            |_, port| TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        Sshd {
            child,
            port,
            host_pub_path: host_key.with_extension("pub"),
            dir,
            host_pub,
            user_key,
            log,
        }
    }

    /// A fresh, empty remote folder (absolute path) for one test.
    pub fn remote_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("remote").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// A target logging in as the current user (the one sshd runs as) with the harness's
    /// user key.
    pub fn target(&self, remote_dir: &Path) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: self.port,
            username: current_user(),
            host_keys: vec![self.host_pub.clone()],
            known_hosts: None,
            auth: Auth::KeyFile {
                path: self.user_key.clone(),
                passphrase_file: None,
            },
            remote_dir: remote_dir.to_str().unwrap().to_string(),
            create_dirs: false,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            overrides: Default::default(),
        }
    }

    pub fn host_fingerprint(&self) -> String {
        fingerprint(&self.host_pub_path)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
