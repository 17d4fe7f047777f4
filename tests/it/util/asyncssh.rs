//! Test harness: an asyncssh 2.x `SFTPServer` (Python, `pip install asyncssh`) started from
//! `tests/data/asyncssh_sftp_server.py` on a free loopback port, with a throwaway ed25519
//! host key, the harness user key authorised and password login for one user. The server
//! is chrooted to `DIR/root`, so the server's `/NAME` is the local `DIR/root/NAME`. The
//! script prints `READY <port>` once listening and exits 98 when the port is taken (then
//! another port is tried). Killed on drop. Never skips: a missing python3 or asyncssh
//! fails the test loudly with the install line.

use super::servers::{password_file, SftpServer};
use super::sshd::keygen;
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
        let host_key = d.join("host_ed25519");
        let host_pub = keygen(&host_key);
        let user_key = d.join("user_ed25519");
        let user_pub = keygen(&user_key);
        let auth_keys = d.join("authorized_keys");
        std::fs::write(&auth_keys, format!("{user_pub}\n")).unwrap();
        std::fs::create_dir(d.join("root")).unwrap();
        let password_file = password_file(d, PASSWORD);
        let log = d.join("asyncssh.log");
        for attempt in 0..5 {
            let port = super::free_port();
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
            // The first stdout line is READY <port>; EOF means it exited. A thread bounds
            // the wait.
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
            if line.trim() == format!("READY {port}") {
                return Asyncssh {
                    child,
                    port,
                    host_pub_path: host_key.with_extension("pub"),
                    dir,
                    host_pub,
                    user_key,
                    username: USER.into(),
                    password_file,
                    log,
                };
            }
            let status = child.try_wait().unwrap();
            if status.is_none() {
                let _ = child.kill();
            }
            let status = child.wait().unwrap();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            match status.code() {
                Some(98) if attempt < 4 => continue, // port race: try another
                Some(97) => panic!(
                    "asyncssh is not installed for {PYTHON}: run `pip install asyncssh`\n{text}"
                ),
                _ => panic!(
                    "the asyncssh SFTP server did not start ({status}, stdout {line:?}):\n{text}"
                ),
            }
        }
        unreachable!()
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
