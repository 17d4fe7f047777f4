//! An embedded loopback SFTP server for demos and fault injection: russh's server side
//! plus russh-sftp's server handler, serving ONE folder on a loopback address.
//!
//! - One user, authenticated by public key (authorized OpenSSH public-key lines) and/or a
//!   password. Only loopback bind addresses are accepted.
//! - The host key is an Ed25519 key, generated, or loaded from / persisted to a file
//!   (OpenSSH format, 0600) so a demo can pin it across restarts.
//! - SFTP v3: open (READ/WRITE/CREATE/TRUNCATE/EXCL/APPEND), positional read/write, close,
//!   stat/lstat/fstat, setstat/fsetstat (permissions, size), opendir/readdir, mkdir, rmdir,
//!   remove, rename (fails if the target exists), realpath, and the extensions
//!   `posix-rename@openssh.com` and `fsync@openssh.com`, advertised in the version reply.
//! - Every path is confined to the served folder: the client sees it as `/`; a `..` that
//!   would climb above it is refused, and so is any symlink whose target lies outside it.
//!   Symlinks cannot be created.
//! - Fault injection ([`Faults`]): drop the connection after N written bytes, hide the
//!   extensions; counters for connections and bytes written.
//!
//! Files: `ssh` (login and the russh handler), `sftp` (the SFTP handler), `fs` (the
//! served folder and the path confinement), `faults`; this file starts and stops it.
//!
//! It is not a production server: file I/O runs on the async task, and the checks are
//! lexical plus `canonicalize` (racy against a local attacker who can make symlinks in
//! the served folder). Tests of the real delivery path use OpenSSH's sshd.

mod faults;
mod fs;
mod sftp;
mod ssh;

pub use faults::Faults;
pub use fs::virtual_components;
pub use ssh::{parse_key_line, DemoAuth};

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};
use russh::server::Server as _;
use russh::{MethodKind, MethodSet};
use ssh::{DemoSsh, Shared};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Errors starting the demo server.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo server")]
    Io(#[from] io::Error),
    #[error("demo server host key {path}: {message}")]
    HostKey { path: PathBuf, message: String },
    #[error("demo server: authorized key {line:?}: {message}")]
    AuthorizedKey { line: String, message: String },
    #[error("demo server: no authentication method configured (give a key or a password)")]
    NoAuth,
    #[error("demo server: {0} is not a loopback address; the demo server only serves loopback")]
    NotLoopback(SocketAddr),
    #[error("demo server: served folder {path}")]
    Root { path: PathBuf, source: io::Error },
}

/// What a started server tells its user.
#[derive(Debug, Clone)]
pub struct DemoServer {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The host key as an OpenSSH public-key line, to pin (`host_keys = [...]`).
    pub host_key_line: String,
    /// `SHA256:...` fingerprint of the host key.
    pub host_key_fingerprint: String,
    /// The served folder (canonical).
    pub root: PathBuf,
    pub user: String,
}

impl DemoServer {
    /// A `known_hosts` line for OpenSSH clients (`[127.0.0.1]:PORT ssh-ed25519 AAAA...`).
    pub fn known_hosts_line(&self) -> String {
        let host = if self.addr.port() == 22 {
            self.addr.ip().to_string()
        } else {
            format!("[{}]:{}", self.addr.ip(), self.addr.port())
        };
        format!("{host} {}", self.host_key_line)
    }
}

/// A running server. Dropping it without [`shutdown`](DemoServerHandle::shutdown) aborts
/// the accept loop.
pub struct DemoServerHandle {
    pub info: DemoServer,
    faults: Arc<Faults>,
    running: russh::server::RunningServerHandle,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl DemoServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.info.addr
    }

    pub fn host_key_line(&self) -> &str {
        &self.info.host_key_line
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Stops accepting, disconnects every client and waits (at most 5 s) for the loop to end.
    pub async fn shutdown(mut self) {
        self.running.shutdown("demo server shutting down".into());
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for DemoServerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.running.shutdown("demo server dropped".into());
            task.abort();
        }
    }
}

/// Loads the host key from `path`, or generates one and (if `path` is given) saves it
/// there with mode 0600.
pub fn load_or_create_host_key(path: Option<&Path>) -> Result<PrivateKey, DemoError> {
    let bad = |p: &Path, m: String| DemoError::HostKey {
        path: p.to_path_buf(),
        message: m,
    };
    if let Some(p) = path {
        if p.exists() {
            return russh::keys::load_secret_key(p, None).map_err(|e| bad(p, e.to_string()));
        }
    }
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    if let Some(p) = path {
        let pem = key
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .map_err(|e| bad(p, e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(p)?;
        io::Write::write_all(&mut f, pem.as_bytes())?;
        f.sync_all()?;
    }
    Ok(key)
}

/// Starts the server on `bind` (port 0 picks a free port; see [`DemoServer::addr`]).
pub async fn start(
    root: PathBuf,
    auth: DemoAuth,
    host_key_path: Option<PathBuf>,
    bind: SocketAddr,
) -> Result<DemoServerHandle, DemoError> {
    if !bind.ip().is_loopback() {
        return Err(DemoError::NotLoopback(bind));
    }
    let root = std::fs::canonicalize(&root).map_err(|source| DemoError::Root {
        path: root.clone(),
        source,
    })?;
    if !root.is_dir() {
        return Err(DemoError::Root {
            path: root,
            source: io::Error::other("not a folder"),
        });
    }
    let mut keys = Vec::new();
    for line in &auth.authorized_keys {
        let key = parse_key_line(line).map_err(|message| DemoError::AuthorizedKey {
            line: line.clone(),
            message,
        })?;
        keys.push(key);
    }
    if keys.is_empty() && auth.password.is_none() {
        return Err(DemoError::NoAuth);
    }
    let host_key = load_or_create_host_key(host_key_path.as_deref())?;
    let public = host_key.public_key();
    let host_key_line = public.to_openssh().map_err(|e| DemoError::HostKey {
        path: host_key_path.clone().unwrap_or_default(),
        message: e.to_string(),
    })?;
    let host_key_fingerprint = public.fingerprint(HashAlg::Sha256).to_string();

    let mut methods = MethodSet::empty();
    if !keys.is_empty() {
        methods.push(MethodKind::PublicKey);
    }
    if auth.password.is_some() {
        methods.push(MethodKind::Password);
    }
    let config = Arc::new(russh::server::Config {
        methods,
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        inactivity_timeout: Some(Duration::from_secs(600)),
        nodelay: true,
        ..Default::default()
    });

    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let faults = Arc::new(Faults::default());
    let shared = Arc::new(Shared {
        root: root.clone(),
        user: auth.user.clone(),
        keys,
        password: auth.password.clone(),
        faults: faults.clone(),
    });
    let server = DemoSsh { shared };
    // `run_on_socket` borrows the server and the listener: both live in the task.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut server = server;
        let running = server.run_on_socket(config, &listener);
        let _ = ready_tx.send(running.handle());
        running.await
    });
    let running = ready_rx
        .await
        .map_err(|_| io::Error::other("demo server task ended before it started"))?;
    tracing::info!(addr = %addr, root = %root.display(), host_key = %host_key_fingerprint,
        "Demo SFTP server listening.");
    Ok(DemoServerHandle {
        info: DemoServer {
            addr,
            host_key_line,
            host_key_fingerprint,
            root,
            user: auth.user,
        },
        faults,
        running,
        task: Some(task),
    })
}
