//! Test harness: an asyncssh 2.x `SFTPServer` (Python, `pip install asyncssh`) started from
//! `tests/data/asyncssh_sftp_server.py` on a free loopback port, with a throwaway ed25519
//! host key, the harness user key authorised and password login for one user. The server
//! is chrooted to `DIR/root`, so the server's `/NAME` is the local `DIR/root/NAME`. The
//! script prints `READY <port>` once listening and exits 98 when the port is taken (then
//! another port is tried). Killed on drop. Never skips: a missing python3 or asyncssh
//! fails the test loudly with the install line.

use super::servers::{password_file, SftpServer};
use super::sshd::{keys, Keys};
use regdrop::sftp::Target;
use std::path::{Path, PathBuf};
use std::process::Child;

pub use super::py_server::PYTHON;
pub const USER: &str = "regdrop";
pub const PASSWORD: &str = "Interop-Asyncssh-7-Pass";

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
        let args: Vec<std::ffi::OsString> = vec![
            "--host-key".into(),
            host_key.clone().into(),
            "--authorized-keys".into(),
            auth_keys.clone().into(),
            "--user".into(),
            USER.into(),
            "--password".into(),
            PASSWORD.into(),
            "--root".into(),
            d.join("root").into(),
        ];
        let (child, port) = super::py_server::start(
            "the asyncssh SFTP server",
            "asyncssh_sftp_server.py",
            &args,
            &log,
            &format!("asyncssh is not installed for {PYTHON}: run `pip install asyncssh`"),
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
