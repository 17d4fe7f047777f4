//! SFTP delivery: push one sealed artifact to a customer's SFTP server with a pinned host
//! key and an atomic commit protocol (docs/design.md §4, §5), plus the operator tools around it:
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
//!
//! # Files
//! The imports point one way: [`profile`] (pure: what a server is, the strategy and commit
//! path chosen for it, the protocol constants) <- `connect` (SSH, host-key pinning, the
//! sessions) <- `remote` (small operations on one session) <- `upload` (the protocol of
//! [`deliver`], one file per step) <- `recover` ([`find_delivered`],
//! [`complete_delivered`]) and `probe` ([`probe`]); `connect` uses `hostkey` (pinning) and
//! `secrets` (login files). `error` and `learned` (what earlier deliveries learned per
//! host) are leaves.

mod connect;
mod error;
mod hostkey;
mod learned;
mod probe;
pub mod profile;
mod recover;
mod remote;
mod secrets;
mod upload;

pub use error::SftpError;
pub use probe::{probe, ProbeReport, ProbeTest, PROBE_BYTES};
pub use profile::{CommitChoice, CommitPath, Family, Overrides, ServerProfile, Strategy};
pub use recover::{complete_delivered, find_delivered};
pub use remote::MissingDir;
pub use secrets::{check_credentials, read_secret_file};
pub use upload::deliver;
pub use upload::stream::{stage_growing, Staged};

use hostkey::{fingerprint, key_line};
use std::path::PathBuf;
use std::time::Duration;
use tracing::warn;

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

impl Target {
    /// What a missing `remote_dir` means for this target (`create_dirs`).
    pub fn missing_dir(&self) -> MissingDir {
        if self.create_dirs {
            MissingDir::Create
        } else {
            MissingDir::Refuse
        }
    }
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
    pub run_id: crate::core::identity::RunId,
    pub if_exists: IfExists,
    pub verify: Verify,
    /// SHA-256 of the local file (hex), for the sidecar and read-back.
    pub sha256_hex: String,
    /// JSON bytes uploaded as `NAME.manifest.json`.
    pub manifest: Option<Vec<u8>>,
    /// Upload an empty `NAME.done` last.
    pub done_marker: bool,
}

/// How far a local file still being written has grown (upload while sealing: the
/// pipeline tells the upload, which sends what is there and waits for the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Growth {
    /// This many bytes are in the file and readable.
    Written(u64),
    /// The file is complete: its size and SHA-256 (hex).
    Complete { bytes: u64, sha256: String },
    /// The writer failed (why): the file will never be complete.
    Failed(String),
}

/// A local file still being written, for [`stage_growing`].
pub struct Growing {
    /// The file opened for reading, handed over once the writer has made it (its own
    /// descriptor: a rename of the file does not disturb it).
    pub file: tokio::sync::oneshot::Receiver<std::fs::File>,
    /// How far it has grown.
    pub growth: tokio::sync::watch::Receiver<Growth>,
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

/// One host key offered by a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedKey {
    /// `ssh-ed25519 AAAA...`, ready for `host_keys`.
    pub line: String,
    /// `SHA256:...`.
    pub fingerprint: String,
}

/// The cheap check before an extract: connect, pin, log in, and see that `remote_dir` is a
/// folder (or may be created). Writes nothing.
pub async fn check_target(target: &Target) -> Result<(), SftpError> {
    let conn = connect::connect(target).await?;
    let res = conn
        .guard(async {
            let s = conn.open_sftp(target.io_timeout).await?;
            let r = match s.ensure_dir(&target.remote_dir, MissingDir::Refuse).await {
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
