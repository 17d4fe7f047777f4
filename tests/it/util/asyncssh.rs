//! Test harness: an asyncssh 2.x `SFTPServer` (Python, `pip install asyncssh`) started from
//! `tests/data/asyncssh_sftp_server.py` on a free loopback port, with a throwaway ed25519
//! host key, the harness user key authorised and password login for one user. The server
//! is chrooted to `DIR/root`, so the server's `/NAME` is the local `DIR/root/NAME`. The
//! script prints `READY <port>` once listening and exits 98 when the port is taken (then
//! another port is tried). Killed on drop. Never skips: a missing python3 or asyncssh
//! fails the test loudly with the install line.

use super::launch::Launch;
use super::servers::{password_file, SftpServer};
use super::sshd::{keys, Keys};
use regdrop::sftp::Target;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PYTHON: &str = "python3";
pub const USER: &str = "regdrop";
pub const PASSWORD: &str = "Interop-Asyncssh-7-Pass";

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/asyncssh_sftp_server.py")
}

pub struct Asyncssh {
    child: Child,
    pub port: u16,
    /// Temp folder: keys, log and `root/` (served as `/`).
    pub dir: tempfile::TempDir,
    pub host_pub: String,
    pub host_pub_path: PathBuf,
    pub user_key: PathBuf,
    pub username: String,
    pub password_file: PathBuf,
    pub log: PathBuf,
}

impl Asyncssh {
    pub fn start() -> Asyncssh {
        let dir = super::servers::server_dir("regdrop-asyncssh-");
        let d = dir.path();
        let Keys {
            host_key,
            host_pub,
            user_key,
            auth_keys,
        } = keys(d);
        std::fs::create_dir(d.join("root")).unwrap();
        let password_file = password_file(d, PASSWORD);
        let log = d.join("asyncssh.log");
        // The first stdout line is READY <port> (read by a thread; EOF when it exited).
        let first_line = std::cell::RefCell::new(None::<std::sync::mpsc::Receiver<String>>);
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let launch = Launch {
            name: "the asyncssh SFTP server",
            ready_means: "print READY",
            within: Duration::from_secs(20),
            log: &log_text,
            port_taken: &|status, text| match status.code() {
                Some(98) => true,
                Some(97) => {
                    panic!("asyncssh is not installed for {PYTHON}: run `pip install asyncssh`\n{text}")
                }
                _ => false,
            },
        };
        let (child, port) = launch.start(
            |port| {
                let logf = std::fs::File::create(&log).unwrap();
                let mut child = Command::new(PYTHON)
                    .arg(script())
                    .arg("--port")
                    .arg(port.to_string())
                    .arg("--host-key")
                    .arg(&host_key)
                    .arg("--authorized-keys")
                    .arg(&auth_keys)
                    .args(["--user", USER, "--password", PASSWORD])
                    .arg("--root")
                    .arg(d.join("root"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(logf)
                    .spawn()
                    .unwrap_or_else(|e| {
                        panic!("cannot start {PYTHON}: {e}; run `apt-get install -y python3`")
                    });
                let stdout = child.stdout.take().unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let mut line = String::new();
                    let _ = BufReader::new(stdout).read_line(&mut line);
                    let _ = tx.send(line);
                });
                *first_line.borrow_mut() = Some(rx);
                child
            },
            |_, port| {
                let line = first_line
                    .borrow()
                    .as_ref()
                    .and_then(|rx| rx.try_recv().ok());
                line.is_some_and(|l| l.trim() == format!("READY {port}"))
            },
        );
        Asyncssh {
            child,
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

impl SftpServer for Asyncssh {
    fn name(&self) -> &'static str {
        "asyncssh SFTPServer"
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
}

impl Drop for Asyncssh {
    fn drop(&mut self) {
        super::servers::stop(&mut self.child);
    }
}
