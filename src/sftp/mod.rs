//! SFTP delivery: push one sealed artifact to a customer's SFTP server with a pinned host
//! key and an atomic commit protocol (DESIGN §6, §7), plus the operator tools around it:
//! [`probe`] (can we log in and write there?), [`scan_host_keys`] (what to pin) and
//! [`find_delivered`] (crash recovery: is this artifact already there?).
//!
//! # Protocol of [`deliver`]
//! 1. Read the secret files (refused when group/other can read them), connect with
//!    `connect_timeout` (TCP, key exchange and login together), keepalive 15 s x 3.
//! 2. The server's host key must equal one of `host_keys` or a `known_hosts` entry for
//!    `host` / `[host]:port`; otherwise [`SftpError::HostKeyMismatch`] (permanent) before
//!    anything is sent.
//! 3. Learn the server ([`ServerProfile`]: identification line, SFTP version, extensions,
//!    `limits@openssh.com`, what earlier deliveries learned by trying) and choose the
//!    [`Strategy`] (channels, write size, requests in flight, fsync) and the
//!    [`CommitPath`]; `[target]` overrides win ([`Overrides`]). A server with no race-free
//!    no-clobber commit for `Fail`/`Version` stops here, permanently, with nothing written.
//! 4. Make sure `remote_dir` is a folder (created recursively only with `create_dirs`).
//!    Delete temp files of earlier attempts of this file or of any run of the same
//!    subscription, and put back (or delete) an old file an interrupted overwrite had
//!    renamed aside. With `Fail`/`Version`, a
//!    file already under the name (or a versioned name) with this size and this checksum
//!    (its sidecar names it, or a read-back hash matches) is an earlier attempt of this very
//!    artifact that died before its sidecars: only the sidecars are written, no conflict,
//!    no duplicate version.
//! 5. Upload to `.NAME.<run-id>.part` (0600, created and truncated) with many WRITE requests
//!    in flight, spread over several SFTP channels of the one SSH connection where the
//!    server is known to take that (else one); if writes on several channels fail with a
//!    server error, the same attempt goes again on one channel and the host is remembered.
//!    `fsync@openssh.com` when offered; close and check every handle; `fstat` and compare
//!    the size. A failed attempt removes its temp file when the session still works.
//! 6. Verify before the commit: `Size` compares the size the server reports (fstat);
//!    `ReadBack` downloads the complete temp file and compares its SHA-256, so a mismatch
//!    never shows under the final name (a rename does not change bytes). Any failure up to
//!    here leaves the final name untouched.
//! 7. Commit per [`IfExists`]: `Fail` moves the temp file to the final name without ever
//!    replacing a file there (`hardlink@openssh.com` + remove, or a plain rename where it is
//!    known to refuse an existing name, see [`CommitPath`]); `Overwrite` uses
//!    `posix-rename@openssh.com` (atomic replace); without it the old file is renamed
//!    aside, the new one renamed in and the aside copy deleted (the name is briefly absent,
//!    never partial); `Version` picks the first free name `STEM.vN.EXT...` (N = 2, 3, ...;
//!    `a.dsv.age` -> `a.v2.dsv.age`, `a` -> `a.v2`) with the same no-clobber commit.
//! 8. Sidecars, each via temp + rename: `NAME.sha256` (`sha256sum -c` format), the optional
//!    `NAME.manifest.json` (its `file` names the file actually written), and the optional
//!    `NAME.done` marker last.
//! 9. Close the SFTP sessions and disconnect.

mod connect;
mod error;
mod learned;
pub mod profile;
mod remote;
mod upload;

pub use connect::read_secret_file;
pub use error::SftpError;
pub use profile::{CommitChoice, CommitPath, Family, Overrides, ServerProfile, Strategy};
pub use upload::deliver;

use connect::{fingerprint, key_line};
use remote::join;
use std::path::PathBuf;
use std::time::Duration;
use tracing::{info, warn};

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct Target {
    /// DNS name or IP address.
    pub host: String,
    pub port: u16,
    pub username: String,
    /// Pinned OpenSSH public-key lines: `ssh-ed25519 AAAA... [comment]`.
    pub host_keys: Vec<String>,
    /// Additionally (or instead) a known_hosts file; `[host]:port` entries for port != 22,
    /// hashed host names are understood.
    pub known_hosts: Option<PathBuf>,
    pub auth: Auth,
    /// Absolute folder on the server.
    pub remote_dir: String,
    /// Create `remote_dir` (and parents) when missing; otherwise a missing folder is permanent.
    pub create_dirs: bool,
    /// TCP connect + key exchange + login.
    pub connect_timeout: Duration,
    /// Per SFTP request (including the time it waits behind other in-flight writes).
    pub io_timeout: Duration,
    /// Data-path and commit overrides for servers nobody can probe safely.
    pub overrides: Overrides,
}

/// Credentials, always from files (0600) read at connect time.
#[derive(Debug, Clone)]
pub enum Auth {
    /// An OpenSSH private key (ed25519, ECDSA, RSA), optionally passphrase-protected.
    KeyFile {
        path: PathBuf,
        passphrase_file: Option<PathBuf>,
    },
    /// A file holding the password (one trailing newline is stripped).
    PasswordFile(PathBuf),
}

/// What to do when the final name is already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    /// Permanent error; the existing file is left untouched.
    Fail,
    /// Replace it atomically (posix-rename) once the new file is complete.
    Overwrite,
    /// Use the first free name `STEM.v2.EXT...`, `STEM.v3.EXT...`, ...
    Version,
}

/// How the upload is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Compare the remote size with the local size.
    Size,
    /// Additionally download the final file and compare its SHA-256.
    ReadBack,
}

impl Verify {
    pub fn as_str(self) -> &'static str {
        match self {
            Verify::Size => "size",
            Verify::ReadBack => "read-back",
        }
    }
}

/// One artifact to deliver.
#[derive(Debug, Clone)]
pub struct Upload {
    pub local: PathBuf,
    /// A plain file name (no `/`, not starting with `.`).
    pub final_name: String,
    /// Distinguishes temp files of different runs: `[A-Za-z0-9_-]`, at most 64 chars.
    pub run_id: String,
    pub if_exists: IfExists,
    pub verify: Verify,
    /// SHA-256 of the local file (hex), for the sidecar and read-back.
    pub sha256_hex: String,
    /// JSON bytes uploaded as `NAME.manifest.json`.
    pub manifest: Option<Vec<u8>>,
    /// Upload an empty `NAME.done` last.
    pub done_marker: bool,
}

/// Proof of a delivery, for the receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Absolute remote path of the final file.
    pub remote_path: String,
    /// The name actually used (differs from the requested one with `IfExists::Version`).
    pub final_name: String,
    pub bytes: u64,
    /// `SHA256:...` as printed by `ssh-keygen -l`.
    pub host_key_sha256: String,
    /// Whether `fsync@openssh.com` was done on the data file.
    pub fsync: bool,
    /// Whether the final rename was a `posix-rename@openssh.com`.
    pub posix_rename: bool,
    /// How the temp file became the final one; `None` when an earlier attempt's finished
    /// file was found (crash recovery).
    pub commit: Option<CommitPath>,
    /// The server's identification line (cleaned), e.g. `SSH-2.0-OpenSSH_9.2p1`.
    pub server: String,
    pub verified: Verify,
    /// Names of the sidecar files present, in upload order.
    pub sidecars: Vec<String>,
}

/// Result of [`probe`]: what the server is, what it did when tried, and what a delivery
/// would do there. Every string from the server is cleaned ([`profile::clean`]).
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub host_key_sha256: String,
    pub profile: ServerProfile,
    /// SFTP protocol extensions offered by the server, sorted: (name, data).
    pub extensions: Vec<(String, String)>,
    pub remote_dir: String,
    /// False only when the folder is missing and `create_dirs` would create it.
    pub remote_dir_exists: bool,
    /// A temp file was created and removed in `remote_dir`.
    pub writable: bool,
    /// The test upload (empty when the folder is missing): what was written and learned.
    pub test: Option<ProbeTest>,
    /// The strategy a large delivery would use (after what the test learned).
    pub strategy: Strategy,
    /// The commit path `fail` / `version` would use, or why there is none.
    pub commit_no_clobber: Result<CommitPath, String>,
    /// The commit path `overwrite` would use.
    pub commit_replace: CommitPath,
}

/// What [`probe`]'s test upload found.
#[derive(Debug, Clone)]
pub struct ProbeTest {
    pub bytes: u64,
    /// Channels used by the upload that worked.
    pub channels: usize,
    /// Set when writes on several channels failed (and one channel was used instead).
    pub parallel_failed: Option<String>,
    pub mib_per_s: f64,
    pub read_back_ok: bool,
    pub fsync: bool,
    /// Mode the server gave the temp file created with 0600 (None: not reported).
    pub mode: Option<u32>,
    /// Whether a plain rename onto an existing file replaced it.
    pub rename_replaces: bool,
    /// Whether the no-clobber commit refused an existing name, as it must (None: no
    /// no-clobber path to test).
    pub no_clobber_refuses: Option<bool>,
}

/// One host key offered by a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedKey {
    /// `ssh-ed25519 AAAA...`, ready for `host_keys`.
    pub line: String,
    /// `SHA256:...`.
    pub fingerprint: String,
}

/// What the server holds under a final name (or a versioned name of it) with the
/// artifact's size, as crash recovery needs to know it.
enum Holding {
    /// Its `.sha256` sidecar names this artifact's checksum.
    Receipted(String),
    /// No sidecar, but the content hashes to the artifact's checksum.
    Unreceipted(String),
}

/// Looks for this artifact (size `bytes`, SHA-256 `sha`) under `final_name` or a versioned
/// name of it; a file without a sidecar is hashed on the server only when `hash_bare`.
async fn find_holding(
    s: &connect::Sftp,
    dir: &str,
    final_name: &str,
    bytes: u64,
    sha: &str,
    hash_bare: bool,
) -> Result<Option<Holding>, SftpError> {
    if !s.stat(dir).await?.is_some_and(|a| a.is_dir()) {
        return Ok(None);
    }
    let mut names = s.list(dir).await?;
    names.sort();
    let mut candidates = vec![final_name.to_string()];
    candidates.extend(
        names
            .into_iter()
            .filter(|n| upload::version_of(final_name, n).is_some()),
    );
    let sha = sha.to_ascii_lowercase();
    for name in candidates {
        let path = join(dir, &name);
        let Some(a) = s.stat(&path).await? else {
            continue;
        };
        if a.size != Some(bytes) {
            continue;
        }
        let line = format!("{sha}  {name}");
        match s
            .read_small(&join(dir, &format!("{name}.sha256")), 4096)
            .await?
        {
            Some(side)
                if String::from_utf8_lossy(&side)
                    .lines()
                    .any(|l| l.trim_end() == line) =>
            {
                return Ok(Some(Holding::Receipted(name)))
            }
            Some(_) => continue, // another file's checksum: not ours
            None if hash_bare => {
                let (sum, n) = s.hash_remote(&path, bytes).await?;
                if n == bytes && sum.eq_ignore_ascii_case(&sha) {
                    return Ok(Some(Holding::Unreceipted(name)));
                }
            }
            None => {}
        }
    }
    Ok(None)
}

/// A delivery found on the server: `fsync`, `posix_rename` and the commit are unknown.
fn recovered(
    conn: &connect::Conn,
    dir: &str,
    name: String,
    bytes: u64,
    sidecars: Vec<String>,
) -> Delivered {
    Delivered {
        remote_path: join(dir, &name),
        final_name: name,
        bytes,
        host_key_sha256: conn.host_key_sha256.clone(),
        fsync: false,
        posix_rename: false,
        commit: None,
        server: conn.banner.clone(),
        verified: Verify::Size,
        sidecars,
    }
}

/// Crash recovery: is a file of `bytes` bytes already under `final_name` (or a versioned
/// name of it) with a `.sha256` sidecar naming `sha256_hex`? `fsync` and `posix_rename` are
/// reported `false` (unknown). Missing manifest/done sidecars show in `sidecars`.
pub async fn find_delivered(
    target: &Target,
    final_name: &str,
    bytes: u64,
    sha256_hex: &str,
) -> Result<Option<Delivered>, SftpError> {
    upload::check_name(final_name)?;
    let conn = connect::connect(target).await?;
    let res = conn
        .guard(async {
            let s = conn.open_sftp(target.io_timeout).await?;
            let dir = target.remote_dir.as_str();
            let mut found = None;
            if let Some(Holding::Receipted(name)) =
                find_holding(&s, dir, final_name, bytes, sha256_hex, false).await?
            {
                let mut sidecars = Vec::new();
                for suffix in upload::SIDECARS {
                    let side = format!("{name}{suffix}");
                    if s.exists(&join(dir, &side)).await? {
                        sidecars.push(side);
                    }
                }
                found = Some(recovered(&conn, dir, name, bytes, sidecars));
            }
            let _ = s.raw.close_session();
            Ok(found)
        })
        .await;
    let host_key = conn.host_key_sha256.clone();
    conn.close().await;
    if let Ok(Some(d)) = &res {
        info!(remote_path = %d.remote_path, bytes, host_key = %host_key, "Found an earlier delivery.");
    }
    res
}

/// Crash recovery that also finishes the commit (DESIGN §6, step 6): like
/// [`find_delivered`], but every missing sidecar is written (`up.local` is not read, so
/// this works when the spool copy is gone), temp files of the run are removed, and a file of `bytes` bytes under the final (or a versioned) name
/// whose `.sha256` sidecar is *missing* is accepted when its content hashes to
/// `up.sha256_hex` (the process died between the rename and the sidecars), and every
/// missing sidecar (checksum, manifest, done marker last) is uploaded before it returns.
/// Without this a restart after such a crash would try the upload again and, with
/// `if_exists = "fail"`, stop at the file it had delivered itself.
pub async fn complete_delivered(
    target: &Target,
    up: &Upload,
    bytes: u64,
) -> Result<Option<Delivered>, SftpError> {
    let final_name = up.final_name.as_str();
    upload::check_name(final_name)?;
    let conn = connect::connect(target).await?;
    let res = conn
        .guard(async {
            let s = conn.open_sftp(target.io_timeout).await?;
            let dir = target.remote_dir.as_str();
            let mut found = None;
            let name = match find_holding(&s, dir, final_name, bytes, &up.sha256_hex, true).await? {
                Some(Holding::Receipted(name)) => Some(name),
                Some(Holding::Unreceipted(name)) => {
                    info!(remote_path = %join(dir, &name), "Found this run's file without its sidecars; completing them.");
                    Some(name)
                }
                None => None,
            };
            if let Some(name) = name {
                let mut sidecars = Vec::new();
                for (suffix, data) in upload::sidecar_files(up, &name) {
                    let side = format!("{name}{suffix}");
                    if !s.exists(&join(dir, &side)).await? {
                        let tmp = join(dir, &format!(".{}{suffix}.{}.part", up.final_name, up.run_id));
                        s.put_small(&join(dir, &side), &tmp, &data).await?;
                        info!(path = %join(dir, &side), "Completed a missing sidecar.");
                    }
                    sidecars.push(side);
                }
                // What cut attempts left (a sidecar cut in flight), as a delivery cleans it.
                if let Ok(names) = s.list(dir).await {
                    upload::clean_litter(&s, dir, up, &names).await?;
                }
                found = Some(recovered(&conn, dir, name, bytes, sidecars));
            }
            let _ = s.raw.close_session();
            Ok(found)
        })
        .await;
    conn.close().await;
    res
}

/// The cheap check before an extract: connect, pin, log in, and see that `remote_dir` is a
/// folder (or may be created). Writes nothing.
pub async fn check_target(target: &Target) -> Result<(), SftpError> {
    let conn = connect::connect(target).await?;
    let res = conn
        .guard(async {
            let s = conn.open_sftp(target.io_timeout).await?;
            let r = match s.ensure_dir(&target.remote_dir, false).await {
                Ok(_) => Ok(()),
                Err(SftpError::RemoteDirMissing { .. }) if target.create_dirs => Ok(()),
                Err(e) => Err(e),
            };
            let _ = s.raw.close_session();
            r
        })
        .await;
    conn.close().await;
    res
}

/// Bytes of [`probe`]'s test file: large enough to be written the way a large delivery is
/// (several channels where the server takes them).
pub const PROBE_BYTES: u64 = profile::MULTI_CHANNEL_FROM + (1 << 20);

/// Connects, checks the host key, logs in, learns the server, and tests the path a large
/// delivery takes: a temp file of [`PROBE_BYTES`] written with the delivery's strategy
/// (falling back to one channel as a delivery would), read back and compared, its mode
/// checked, a no-clobber commit tried onto a free and onto a taken name, a plain rename
/// onto an existing file tried; everything it created is removed again.
pub async fn probe(target: &Target) -> Result<ProbeReport, SftpError> {
    let conn = connect::connect(target).await?;
    let mut sessions: Vec<connect::Sftp> = Vec::new();
    let res = conn
        .guard(async {
            let (mut prof, strategy) =
                upload::open_sessions(&conn, target, PROBE_BYTES, &mut sessions).await?;
            let dir = target.remote_dir.as_str();
            let exists = match sessions[0].ensure_dir(dir, false).await {
                Ok(_) => true,
                Err(SftpError::RemoteDirMissing { .. }) if target.create_dirs => false,
                Err(e) => return Err(e),
            };
            let mut test = None;
            if exists {
                test =
                    Some(upload::probe_test(&conn, &sessions, &mut prof, &strategy, target).await?);
            }
            let extensions = prof
                .extensions
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(ProbeReport {
                host_key_sha256: conn.host_key_sha256.clone(),
                strategy: profile::strategy(&prof, &target.overrides, PROBE_BYTES),
                commit_no_clobber: profile::commit_path(
                    &prof,
                    &target.overrides,
                    profile::Want::NoClobber,
                ),
                commit_replace: profile::commit_path(
                    &prof,
                    &target.overrides,
                    profile::Want::Replace,
                )
                .unwrap_or(CommitPath::RenameAside),
                profile: prof,
                extensions,
                remote_dir: dir.to_string(),
                remote_dir_exists: exists,
                writable: test.is_some(),
                test,
            })
        })
        .await;
    for s in &sessions {
        let _ = s.raw.close_session();
    }
    conn.close().await;
    res
}

/// Lists the host keys a server offers (ed25519, ECDSA, RSA: one handshake per type, each
/// aborted right after the key is seen; nothing is authenticated).
pub async fn scan_host_keys(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<ScannedKey>, SftpError> {
    use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
    let kinds: Vec<Vec<Algorithm>> = vec![
        vec![Algorithm::Ed25519],
        vec![Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        }],
        vec![Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP384,
        }],
        vec![Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP521,
        }],
        vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
            Algorithm::Rsa { hash: None },
        ],
    ];
    let mut out: Vec<ScannedKey> = Vec::new();
    for algos in kinds {
        let cfg = connect::ssh_config(Some(algos));
        match connect::handshake(host, port, Vec::new(), cfg, timeout).await {
            Ok((h, _)) => {
                // Cannot happen: the handler accepts no key.
                let _ = h
                    .disconnect(russh::Disconnect::ByApplication, "", "en")
                    .await;
            }
            Err((e, seen)) => match seen.key {
                Some(key) => {
                    let line = key_line(&key);
                    if !out.iter().any(|k| k.line == line) {
                        out.push(ScannedKey {
                            line,
                            fingerprint: fingerprint(&key),
                        });
                    }
                }
                // The server has no key of this type: next.
                None if matches!(
                    e,
                    SftpError::Negotiation { .. } | SftpError::Transport { .. }
                ) => {}
                None => return Err(e),
            },
        }
    }
    if out.is_empty() {
        warn!(host, port, "The server offered no usable host key.");
    }
    Ok(out)
}
