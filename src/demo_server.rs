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
//! It is not a production server: file I/O runs on the async task, and the checks are
//! lexical plus `canonicalize` (racy against a local attacker who can make symlinks in
//! the served folder). Tests of the real delivery path use OpenSSH's sshd.

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Server as _, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use russh_sftp::protocol::{
    Attrs, Data, File as SftpFile, FileAttributes, Handle as SftpHandle, Name, OpenFlags, Packet,
    Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Errors starting the demo server.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo server: {0}")]
    Io(#[from] io::Error),
    #[error("demo server host key {path}: {message}")]
    HostKey { path: PathBuf, message: String },
    #[error("demo server: authorized key {line:?}: {message}")]
    AuthorizedKey { line: String, message: String },
    #[error("demo server: no authentication method configured (give a key or a password)")]
    NoAuth,
    #[error("demo server: {0} is not a loopback address; the demo server only serves loopback")]
    NotLoopback(SocketAddr),
    #[error("demo server: served folder {path}: {source}")]
    Root { path: PathBuf, source: io::Error },
}

/// Who may log in.
#[derive(Clone, Default)]
pub struct DemoAuth {
    pub user: String,
    /// OpenSSH public-key lines (`ssh-ed25519 AAAA... comment`), as in `authorized_keys`.
    pub authorized_keys: Vec<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for DemoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAuth")
            .field("user", &self.user)
            .field("authorized_keys", &self.authorized_keys.len())
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl DemoAuth {
    /// Public-key login with one authorized key line.
    pub fn public_key(user: impl Into<String>, authorized_line: impl Into<String>) -> DemoAuth {
        DemoAuth {
            user: user.into(),
            authorized_keys: vec![authorized_line.into()],
            password: None,
        }
    }

    /// Password login.
    pub fn password(user: impl Into<String>, password: impl Into<String>) -> DemoAuth {
        DemoAuth {
            user: user.into(),
            authorized_keys: Vec::new(),
            password: Some(password.into()),
        }
    }

    /// Also accept `password`.
    pub fn with_password(mut self, password: impl Into<String>) -> DemoAuth {
        self.password = Some(password.into());
        self
    }
}

/// Parses the key of an OpenSSH public-key line (`type base64 [comment]`, or bare base64).
pub fn parse_key_line(line: &str) -> Result<PublicKey, String> {
    let mut parts = line.split_whitespace();
    let first = parts.next().ok_or("empty line")?;
    let b64 =
        if first.starts_with("ssh-") || first.starts_with("ecdsa-") || first.starts_with("sk-") {
            parts.next().ok_or("no key after the type")?
        } else {
            first
        };
    russh::keys::parse_public_key_base64(b64).map_err(|e| e.to_string())
}

/// Runtime fault-injection knobs and counters, shared by all connections.
#[derive(Debug, Default)]
pub struct Faults {
    /// (limit, bytes written since armed)
    fail_after: Mutex<Option<(u64, u64)>>,
    hide_extensions: AtomicBool,
    trips: AtomicU64,
    bytes_written: AtomicU64,
    connections: AtomicU64,
}

impl Faults {
    /// Arms (or with `None` disarms) the cut: once `n` more bytes have been written through
    /// WRITE requests (over all connections), the connection that crosses the limit writes
    /// only up to it, gets SSH_FX_CONNECTION_LOST and is disconnected. Fires once, then
    /// disarms itself, so a retry can succeed.
    pub fn set_fail_after_bytes(&self, n: Option<u64>) {
        *self.fail_after.lock().unwrap_or_else(|e| e.into_inner()) = n.map(|n| (n, 0));
    }

    /// Leaves `posix-rename@openssh.com` and `fsync@openssh.com` out of the version reply
    /// (and refuses them), to test a client's fallbacks.
    pub fn set_hide_extensions(&self, hide: bool) {
        self.hide_extensions.store(hide, Ordering::SeqCst);
    }

    /// How many times the byte limit cut a connection.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::SeqCst)
    }

    /// Bytes written to files so far (all connections).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far (to count a client's retries).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Accounts for a write of `len` bytes; returns how many may be written, and whether to
    /// cut the connection afterwards.
    fn admit(&self, len: u64) -> (u64, bool) {
        let mut g = self.fail_after.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_mut() {
            Some((limit, done)) if *done + len >= *limit && len > 0 => {
                let allowed = limit.saturating_sub(*done);
                *g = None;
                self.trips.fetch_add(1, Ordering::SeqCst);
                (allowed, true)
            }
            Some((_, done)) => {
                *done += len;
                (len, false)
            }
            None => (len, false),
        }
    }
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
        let mut f = fs::OpenOptions::new()
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
    let root = fs::canonicalize(&root).map_err(|source| DemoError::Root {
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

struct Shared {
    root: PathBuf,
    user: String,
    keys: Vec<PublicKey>,
    password: Option<String>,
    faults: Arc<Faults>,
}

#[derive(Clone)]
struct DemoSsh {
    shared: Arc<Shared>,
}

impl russh::server::Server for DemoSsh {
    type Handler = Conn;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Conn {
        self.shared
            .faults
            .connections
            .fetch_add(1, Ordering::SeqCst);
        tracing::debug!(peer = ?peer, "Demo server accepted a connection.");
        Conn {
            shared: self.shared.clone(),
            channels: HashMap::new(),
        }
    }

    fn handle_session_error(&mut self, error: russh::Error) {
        tracing::debug!(error = %error, "Demo server session ended with an error.");
    }
}

struct Conn {
    shared: Arc<Shared>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl Conn {
    fn key_allowed(&self, user: &str, key: &PublicKey) -> bool {
        user == self.shared.user
            && self
                .shared
                .keys
                .iter()
                .any(|k| k.key_data() == key.key_data())
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = user == self.shared.user
            && self
                .shared
                .password
                .as_deref()
                .is_some_and(|p| constant_eq(p.as_bytes(), password.as_bytes()));
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_allowed(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_allowed(user, key.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match (name, self.channels.remove(&channel_id)) {
            ("sftp", Some(channel)) => {
                session.channel_success(channel_id)?;
                let fs = SftpFs {
                    root: self.shared.root.clone(),
                    faults: self.shared.faults.clone(),
                    session: session.handle(),
                    handles: HashMap::new(),
                    next_handle: 0,
                    cut: false,
                };
                russh_sftp::server::run(channel.into_stream(), fs).await;
            }
            _ => session.channel_failure(channel_id)?,
        }
        Ok(())
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- the SFTP side ---------------------------------------------------------------------

enum OpenHandle {
    File(fs::File),
    Dir { entries: Vec<SftpFile> },
}

struct SftpFs {
    root: PathBuf,
    faults: Arc<Faults>,
    session: russh::server::Handle,
    handles: HashMap<String, OpenHandle>,
    next_handle: u64,
    /// The fault fired on this connection: refuse everything after it.
    cut: bool,
}

type R<T> = Result<T, StatusReply>;

fn ok_status(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn io_reply(e: io::Error) -> StatusReply {
    let code = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn escape() -> StatusReply {
    StatusCode::PermissionDenied.with_message("path is outside the served folder")
}

fn bad_handle() -> StatusReply {
    StatusCode::Failure.with_message("invalid handle")
}

/// Normalises a client path to the components below the served folder (`/` is the folder;
/// relative paths start there). `..` above the folder is an escape.
pub fn virtual_components(path: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p.to_string()),
        }
    }
    Some(out)
}

fn read_u32(data: &[u8], at: &mut usize) -> Option<u32> {
    let b = data.get(*at..*at + 4)?;
    *at += 4;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_string(data: &[u8], at: &mut usize) -> Option<String> {
    let len = read_u32(data, at)? as usize;
    let b = data.get(*at..at.checked_add(len)?)?;
    *at += len;
    String::from_utf8(b.to_vec()).ok()
}

impl SftpFs {
    /// Maps a client path to a real path inside the root. `follow_last`: the last
    /// component may be a symlink that is followed (open, stat), so its target must stay
    /// inside too.
    fn resolve(&self, path: &str, follow_last: bool) -> R<PathBuf> {
        let comps = virtual_components(path).ok_or_else(escape)?;
        let mut real = self.root.clone();
        for c in &comps {
            real.push(c);
        }
        if comps.is_empty() {
            return Ok(real);
        }
        // Every folder on the way must resolve inside the root (catches symlinked folders).
        let parent = real.parent().unwrap_or(&self.root);
        match fs::canonicalize(parent) {
            Ok(p) if p.starts_with(&self.root) => {}
            Ok(_) => return Err(escape()),
            Err(e) => return Err(io_reply(e)),
        }
        if follow_last {
            if let Ok(meta) = fs::symlink_metadata(&real) {
                if meta.file_type().is_symlink() {
                    match fs::canonicalize(&real) {
                        Ok(t) if t.starts_with(&self.root) => {}
                        // Outside, or dangling (O_CREAT would create the target): refuse.
                        _ => return Err(escape()),
                    }
                }
            }
        }
        Ok(real)
    }

    fn virtual_path(&self, path: &str) -> R<String> {
        let comps = virtual_components(path).ok_or_else(escape)?;
        Ok(format!("/{}", comps.join("/")))
    }

    fn new_handle(&mut self, h: OpenHandle) -> String {
        self.next_handle += 1;
        let name = format!("h{}", self.next_handle);
        self.handles.insert(name.clone(), h);
        name
    }

    fn file(&self, handle: &str) -> R<&fs::File> {
        match self.handles.get(handle) {
            Some(OpenHandle::File(f)) => Ok(f),
            _ => Err(bad_handle()),
        }
    }

    fn check_cut(&self) -> R<()> {
        if self.cut {
            Err(StatusCode::ConnectionLost.with_message("connection cut by fault injection"))
        } else {
            Ok(())
        }
    }

    fn set_attrs(&self, real: &Path, file: Option<&fs::File>, attrs: &FileAttributes) -> R<()> {
        if let Some(mode) = attrs.permissions {
            let perm = fs::Permissions::from_mode(mode & 0o7777);
            match file {
                Some(f) => f.set_permissions(perm),
                None => fs::set_permissions(real, perm),
            }
            .map_err(io_reply)?;
        }
        if let Some(size) = attrs.size {
            match file {
                Some(f) => f.set_len(size),
                None => fs::OpenOptions::new()
                    .write(true)
                    .open(real)
                    .and_then(|f| f.set_len(size)),
            }
            .map_err(io_reply)?;
        }
        // uid/gid and times are accepted and ignored.
        Ok(())
    }

    fn rename_inner(&self, from: &str, to: &str, overwrite: bool) -> R<()> {
        let a = self.resolve(from, false)?;
        let b = self.resolve(to, false)?;
        if a == self.root || b == self.root {
            return Err(
                StatusCode::PermissionDenied.with_message("cannot rename the served folder")
            );
        }
        fs::symlink_metadata(&a).map_err(io_reply)?;
        if !overwrite && fs::symlink_metadata(&b).is_ok() {
            return Err(StatusCode::Failure.with_message("target exists"));
        }
        fs::rename(&a, &b).map_err(io_reply)
    }
}

impl russh_sftp::server::Handler for SftpFs {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        StatusReply::new(StatusCode::OpUnsupported)
    }

    async fn init(&mut self, _version: u32, _ext: HashMap<String, String>) -> R<Version> {
        let mut v = Version::new();
        if !self.faults.hide_extensions.load(Ordering::SeqCst) {
            v.extensions
                .insert("posix-rename@openssh.com".into(), "1".into());
            v.extensions.insert("fsync@openssh.com".into(), "1".into());
        }
        Ok(v)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> R<SftpHandle> {
        self.check_cut()?;
        let real = self.resolve(&filename, true)?;
        let mut opts: fs::OpenOptions = pflags.into();
        if !pflags.intersects(OpenFlags::READ | OpenFlags::WRITE | OpenFlags::APPEND) {
            opts.read(true);
        }
        opts.mode(attrs.permissions.map_or(0o644, |m| m & 0o777));
        let file = opts.open(&real).map_err(io_reply)?;
        if file.metadata().map_err(io_reply)?.is_dir() {
            return Err(StatusCode::Failure.with_message("is a folder"));
        }
        let handle = self.new_handle(OpenHandle::File(file));
        Ok(SftpHandle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> R<Status> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok_status(id)),
            None => Err(bad_handle()),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> R<Data> {
        self.check_cut()?;
        let f = self.file(&handle)?;
        let mut buf = vec![0u8; len.min(256 * 1024) as usize];
        let n = f.read_at(&mut buf, offset).map_err(io_reply)?;
        if n == 0 && !buf.is_empty() {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        buf.truncate(n);
        Ok(Data { id, data: buf })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> R<Status> {
        self.check_cut()?;
        let (allowed, cut) = self.faults.admit(data.len() as u64);
        let f = self.file(&handle)?;
        f.write_all_at(&data[..allowed as usize], offset)
            .map_err(io_reply)?;
        self.faults
            .bytes_written
            .fetch_add(allowed, Ordering::SeqCst);
        if cut {
            self.cut = true;
            tracing::info!(
                after_bytes = allowed,
                "Demo server cuts the connection (fault injection)."
            );
            let session = self.session.clone();
            tokio::spawn(async move {
                let _ = session
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "fault injection: connection cut".into(),
                        "en".into(),
                    )
                    .await;
            });
            return Err(
                StatusCode::ConnectionLost.with_message("connection cut by fault injection")
            );
        }
        Ok(ok_status(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> R<Attrs> {
        let real = self.resolve(&path, false)?;
        let meta = fs::symlink_metadata(real).map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> R<Attrs> {
        let meta = self.file(&handle)?.metadata().map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> R<Attrs> {
        let real = self.resolve(&path, true)?;
        let meta = fs::metadata(real).map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> R<Status> {
        self.check_cut()?;
        let real = self.resolve(&path, true)?;
        self.set_attrs(&real, None, &attrs)?;
        Ok(ok_status(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> R<Status> {
        self.check_cut()?;
        let f = self.file(&handle)?;
        self.set_attrs(Path::new(""), Some(f), &attrs)?;
        Ok(ok_status(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> R<SftpHandle> {
        let real = self.resolve(&path, true)?;
        let mut entries = Vec::new();
        for e in fs::read_dir(&real).map_err(io_reply)? {
            let e = e.map_err(io_reply)?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if let Ok(meta) = e.path().symlink_metadata() {
                entries.push(SftpFile::new(name, FileAttributes::from(&meta)));
            }
        }
        entries.sort_by(|a, b| a.filename.cmp(&b.filename));
        let handle = self.new_handle(OpenHandle::Dir { entries });
        Ok(SftpHandle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> R<Name> {
        match self.handles.get_mut(&handle) {
            Some(OpenHandle::Dir { entries }) => {
                // At most 100 names per reply keeps each packet small.
                let files: Vec<SftpFile> = entries.drain(..entries.len().min(100)).collect();
                if files.is_empty() {
                    Err(StatusReply::new(StatusCode::Eof))
                } else {
                    Ok(Name { id, files })
                }
            }
            _ => Err(bad_handle()),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> R<Status> {
        self.check_cut()?;
        let real = self.resolve(&filename, false)?;
        if fs::symlink_metadata(&real).map_err(io_reply)?.is_dir() {
            return Err(StatusCode::Failure.with_message("is a folder (use rmdir)"));
        }
        fs::remove_file(real).map_err(io_reply)?;
        Ok(ok_status(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> R<Status> {
        self.check_cut()?;
        let real = self.resolve(&path, false)?;
        let mut b = fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(
            &mut b,
            attrs.permissions.map_or(0o755, |m| m & 0o777),
        );
        b.create(real).map_err(io_reply)?;
        Ok(ok_status(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> R<Status> {
        self.check_cut()?;
        let real = self.resolve(&path, false)?;
        if real == self.root {
            return Err(
                StatusCode::PermissionDenied.with_message("cannot remove the served folder")
            );
        }
        fs::remove_dir(real).map_err(io_reply)?;
        Ok(ok_status(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> R<Name> {
        let v = self.virtual_path(&path)?;
        Ok(Name {
            id,
            files: vec![SftpFile::dummy(v)],
        })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> R<Status> {
        self.check_cut()?;
        self.rename_inner(&oldpath, &newpath, false)?;
        Ok(ok_status(id))
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> R<Name> {
        Err(StatusReply::new(StatusCode::OpUnsupported))
    }

    async fn symlink(&mut self, _id: u32, _linkpath: String, _targetpath: String) -> R<Status> {
        Err(StatusCode::PermissionDenied.with_message("symlinks are not allowed"))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> R<Packet> {
        self.check_cut()?;
        if self.faults.hide_extensions.load(Ordering::SeqCst) {
            return Err(StatusReply::new(StatusCode::OpUnsupported));
        }
        let malformed = || StatusCode::BadMessage.with_message("malformed extension request");
        let mut at = 0;
        match request.as_str() {
            "posix-rename@openssh.com" => {
                let old = read_string(&data, &mut at).ok_or_else(malformed)?;
                let new = read_string(&data, &mut at).ok_or_else(malformed)?;
                self.rename_inner(&old, &new, true)?;
                Ok(Packet::Status(ok_status(id)))
            }
            "fsync@openssh.com" => {
                let handle = read_string(&data, &mut at).ok_or_else(malformed)?;
                self.file(&handle)?.sync_all().map_err(io_reply)?;
                Ok(Packet::Status(ok_status(id)))
            }
            _ => Err(StatusReply::new(StatusCode::OpUnsupported)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_and_escapes_are_refused() {
        assert_eq!(virtual_components("/").unwrap(), Vec::<String>::new());
        assert_eq!(virtual_components(".").unwrap(), Vec::<String>::new());
        assert_eq!(virtual_components("a/./b//c").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(virtual_components("/a/../b").unwrap(), vec!["b"]);
        assert!(virtual_components("..").is_none());
        assert!(virtual_components("/a/../../etc/passwd").is_none());
    }

    #[test]
    fn fault_limit_fires_once_at_the_byte() {
        let f = Faults::default();
        assert_eq!(f.admit(100), (100, false));
        f.set_fail_after_bytes(Some(250));
        assert_eq!(f.admit(100), (100, false));
        assert_eq!(f.admit(100), (100, false));
        assert_eq!(f.admit(100), (50, true));
        assert_eq!(f.admit(100), (100, false));
        assert_eq!(f.trips(), 1);
    }

    #[test]
    fn extension_strings_parse() {
        let mut d = Vec::new();
        for s in ["/a", "/bb"] {
            d.extend_from_slice(&(s.len() as u32).to_be_bytes());
            d.extend_from_slice(s.as_bytes());
        }
        let mut at = 0;
        assert_eq!(read_string(&d, &mut at).as_deref(), Some("/a"));
        assert_eq!(read_string(&d, &mut at).as_deref(), Some("/bb"));
        assert_eq!(read_string(&d, &mut at), None);
    }

    #[test]
    fn key_lines_parse_with_and_without_type_and_comment() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ me@host";
        let k = parse_key_line(line).unwrap();
        let bare = parse_key_line(line.split_whitespace().nth(1).unwrap()).unwrap();
        assert_eq!(k.key_data(), bare.key_data());
        assert!(parse_key_line("ssh-ed25519").is_err());
    }
}
