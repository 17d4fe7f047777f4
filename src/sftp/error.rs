//! `SftpError`: every way a delivery, probe or scan can fail, and whether retrying can help
//! (`crate::core::retry::Classify`). Messages name hosts, users, paths and fingerprints, never
//! secrets (passwords, passphrases, key material).

use crate::core::retry::{Classify, ErrorClass};
use russh_sftp::protocol::StatusCode;
use std::path::PathBuf;

/// A failure of the SFTP adapter. The class decides retry versus operator.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// TCP connect failed (refused, unreachable, reset). Retryable.
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Connect + key exchange + login did not finish in time. Retryable.
    #[error("connecting to {addr} timed out after {secs} s")]
    ConnectTimeout { addr: String, secs: u64 },
    /// The server's key is not among the pinned keys. Permanent: possible interception.
    #[error(
        "host key of {addr} does not match the pinned keys: the server offered {offered} ({algorithm}); \
         if the change is expected, run `regdrop hostkey scan {addr}` and update `host_keys`"
    )]
    HostKeyMismatch {
        addr: String,
        algorithm: String,
        offered: String,
    },
    /// The pinned key list or known_hosts file cannot be used. Permanent.
    #[error("invalid host key configuration: {0}")]
    HostKeyConfig(String),
    /// The server refused our credentials. Permanent.
    #[error("authentication refused for user {user:?} at {addr} ({method})")]
    AuthRefused {
        addr: String,
        user: String,
        method: &'static str,
    },
    /// A password or passphrase file is unusable (missing, unreadable, too open). Permanent.
    #[error("secret file {}: {reason}", path.display())]
    SecretFile { path: PathBuf, reason: String },
    /// The private key file cannot be read or decrypted. Permanent.
    #[error("private key file {}: {reason}", path.display())]
    BadKeyFile { path: PathBuf, reason: String },
    /// The server refused the `sftp` subsystem. Permanent.
    #[error("the server at {addr} refused the sftp subsystem")]
    NoSftpSubsystem { addr: String },
    /// No common algorithm (key exchange, host key, cipher, MAC) with the server. Permanent:
    /// the server's configuration must change (or ours).
    #[error("ssh negotiation with {addr} failed: {message}")]
    Negotiation { addr: String, message: String },
    /// SSH transport failure after connecting (disconnect, reset, keepalive timeout). Retryable.
    #[error("ssh connection to {addr} failed: {message}")]
    Transport { addr: String, message: String },
    /// An SFTP request failed with a status from the server or locally (timeout, lost session).
    #[error("sftp {op} {path}: {message}")]
    Remote {
        op: &'static str,
        path: String,
        /// The SFTP status code when the server sent one.
        code: Option<StatusCode>,
        message: String,
    },
    /// The target folder does not exist and `create_dirs` is off. Permanent.
    #[error("remote folder {dir} does not exist (set create_dirs = true to create it)")]
    RemoteDirMissing { dir: String },
    /// The target path exists but is not a folder. Permanent.
    #[error("remote path {dir} is not a folder")]
    RemoteNotDir { dir: String },
    /// `if_exists = fail` and the final name is taken. Permanent; the old file is untouched.
    #[error("remote file {path} already exists (if_exists = fail); it was left untouched")]
    FinalExists { path: String },
    /// The server offers no race-free way to commit without replacing an existing file,
    /// and the operator has not accepted a checked rename. Permanent; nothing was written.
    #[error("cannot deliver to {addr} without risking to replace someone else's file: {reason}")]
    NoSafeCommit { addr: String, reason: String },
    /// The server answered `hardlink@openssh.com` with OK but no file is under the new
    /// name. Retryable (the next try does not use hardlink with this server).
    #[error("the server answered the hardlink {path} with OK but created no link")]
    HardlinkBroken { path: String },
    /// The local artifact changed while it was being uploaded (the bytes sent are not the
    /// sealed ones). Retryable: nothing was committed, and the next attempt's spool check
    /// regenerates the artifact.
    #[error("local file {} changed during the upload ({detail}); nothing was committed", path.display())]
    LocalChanged { path: PathBuf, detail: String },
    /// The local file was being written while it was uploaded (upload while sealing) and
    /// its writer failed (why): the upload stopped, its temp file is removed. Retryable
    /// as the writer's error is.
    #[error("local file {} was not completed ({why}); its upload stopped and nothing was committed", path.display())]
    SourceStopped { path: PathBuf, why: String },
    /// No free versioned name was found. Permanent.
    #[error("no free versioned name for {path} (tried {tried})")]
    NoFreeVersion { path: String, tried: u32 },
    /// The uploaded file has the wrong size. Retryable (re-upload).
    #[error("size check failed for {path}: expected {expected} bytes, server has {actual}")]
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// Read-back verification found other bytes than uploaded. Retryable (re-upload).
    #[error("read-back of {path} has SHA-256 {actual}, expected {expected}")]
    ChecksumMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    /// A file or run name that could escape the folder or is not usable. Permanent.
    #[error("invalid remote name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// The local artifact cannot be read. Permanent: the spool file is gone or damaged.
    #[error("local file {}", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SftpError {
    /// Builds [`SftpError::Remote`] from a russh-sftp client error.
    pub(crate) fn remote(
        op: &'static str,
        path: impl Into<String>,
        e: russh_sftp::client::error::Error,
    ) -> SftpError {
        use russh_sftp::client::error::Error as E;
        // The server's words are untrusted: cleaned before they reach a log or terminal.
        let (code, mut message) = match e {
            E::Status(s) => {
                let msg = if s.error_message.is_empty() {
                    s.status_code.to_string()
                } else {
                    format!(
                        "{} ({})",
                        super::profile::clean(&s.error_message, 200),
                        s.status_code
                    )
                };
                (Some(s.status_code), msg)
            }
            other => (None, super::profile::clean(&other.to_string(), 300)),
        };
        if code.is_some() && cannot_seek(&message) {
            message.push_str(
                "; the server takes only sequential writes: set channels = 1 under [target] \
                 (and in_flight = 1 if that is not enough)",
            );
        }
        SftpError::Remote {
            op,
            path: path.into(),
            code,
            message,
        }
    }

    /// The SFTP status code, if this is a server-reported SFTP failure.
    pub fn status_code(&self) -> Option<StatusCode> {
        match self {
            SftpError::Remote { code, .. } => *code,
            _ => None,
        }
    }
}

impl Classify for SftpError {
    fn class(&self) -> ErrorClass {
        use ErrorClass::*;
        match self {
            SftpError::Connect { .. }
            | SftpError::ConnectTimeout { .. }
            | SftpError::Transport { .. }
            | SftpError::SizeMismatch { .. }
            | SftpError::HardlinkBroken { .. }
            | SftpError::LocalChanged { .. }
            | SftpError::SourceStopped { .. }
            | SftpError::ChecksumMismatch { .. } => Retryable,
            SftpError::HostKeyMismatch { .. }
            | SftpError::HostKeyConfig(_)
            | SftpError::AuthRefused { .. }
            | SftpError::SecretFile { .. }
            | SftpError::BadKeyFile { .. }
            | SftpError::NoSftpSubsystem { .. }
            | SftpError::Negotiation { .. }
            | SftpError::RemoteDirMissing { .. }
            | SftpError::RemoteNotDir { .. }
            | SftpError::FinalExists { .. }
            | SftpError::NoFreeVersion { .. }
            | SftpError::NoSafeCommit { .. }
            | SftpError::InvalidName { .. }
            | SftpError::Local { .. } => Permanent,
            SftpError::Remote { code, message, .. } => match code {
                Some(c) => status_class(*c, message),
                // Lost session, timeouts: try again.
                None => Retryable,
            },
        }
    }
}

/// The class of an SFTP status a server sent (codes 0-31 of the drafts, and unknown ones).
fn status_class(code: StatusCode, message: &str) -> ErrorClass {
    use ErrorClass::*;
    use StatusCode as S;
    match code {
        // Access rules, unsupported operations, names and principals the server refuses,
        // read-only media: these do not change by themselves.
        S::PermissionDenied
        | S::OpUnsupported
        | S::WriteProtect
        | S::NoMedia
        | S::InvalidFilename
        | S::UnknownPrincipal
        | S::OwnerInvalid
        | S::GroupInvalid
        | S::NotADirectory
        | S::FileIsADirectory
        | S::LinkLoop
        | S::InvalidParameter
        | S::CannotDelete => Permanent,
        // A back end that cannot write at an offset (sequential-only): the strategy must
        // change, not the moment.
        S::Failure | S::Unknown(_) if cannot_seek(message) => Permanent,
        // Generic failure (OpenSSH reports a full disk as plain "Failure"), full disks and
        // quotas (the customer may free space), locks, an invalid handle (a server mixing up
        // channels; the next attempt uses one), missing files in the middle of our own
        // protocol, codes nobody knows: try again.
        _ => Retryable,
    }
}

/// Whether a server's message says it cannot write at the requested offset.
pub(crate) fn cannot_seek(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("illegal seek")
        || m.contains("can't seek")
        || m.contains("cannot seek")
        || m.contains("non-sequential")
        || m.contains("out of order")
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh_sftp::protocol::Status;

    fn status(code: StatusCode) -> russh_sftp::client::error::Error {
        russh_sftp::client::error::Error::Status(Status {
            id: 1,
            status_code: code,
            error_message: String::new(),
            language_tag: "en-US".into(),
        })
    }

    #[test]
    fn classes() {
        let e = SftpError::remote("open", "/x", status(StatusCode::PermissionDenied));
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert!(e.to_string().contains("Permission denied"), "{e}");
        let e = SftpError::remote("write", "/x", status(StatusCode::Failure));
        assert!(e.is_retryable());
        let e = SftpError::remote("write", "/x", russh_sftp::client::error::Error::Timeout);
        assert!(e.is_retryable());
        assert_eq!(
            SftpError::FinalExists { path: "/a".into() }.class(),
            ErrorClass::Permanent
        );
        // Codes of the later drafts, sent by v3 servers anyway.
        let e = SftpError::remote("write", "/x", status(StatusCode::InvalidHandle));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("Invalid handle"), "{e}");
        for c in [
            StatusCode::WriteProtect,
            StatusCode::InvalidFilename,
            StatusCode::OwnerInvalid,
        ] {
            assert!(
                !SftpError::remote("open", "/x", status(c)).is_retryable(),
                "{c}"
            );
        }
        for c in [
            StatusCode::NoSpaceOnFilesystem,
            StatusCode::QuotaExceeded,
            StatusCode::Unknown(77),
        ] {
            assert!(
                SftpError::remote("write", "/x", status(c)).is_retryable(),
                "{c}"
            );
        }
        // "Illegal seek" (rclone without a VFS cache) is permanent and says what to set.
        let mut st = status(StatusCode::Failure);
        if let russh_sftp::client::error::Error::Status(s) = &mut st {
            s.error_message = "write /x: illegal seek".into();
        }
        let e = SftpError::remote("write", "/x", st);
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert!(e.to_string().contains("channels = 1"), "{e}");
        // Server text is cleaned.
        let mut st = status(StatusCode::Failure);
        if let russh_sftp::client::error::Error::Status(s) = &mut st {
            s.error_message = "\u{1b}[2Jgone\0".into();
        }
        let e = SftpError::remote("write", "/x", st).to_string();
        assert!(!e.contains('\u{1b}') && !e.contains('\0'), "{e:?}");
    }

    /// A STATUS packet on the wire: type 101, id, code, message, language.
    fn status_packet(id: u32, code: u32, msg: &str) -> Vec<u8> {
        let mut b = vec![101u8];
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&code.to_be_bytes());
        for s in [msg, "en"] {
            b.extend_from_slice(&(s.len() as u32).to_be_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        b
    }

    /// The vendored russh-sftp parses every status code (upstream 3.0.1 fails on 9 and
    /// above, which left the request waiting for its timeout).
    #[test]
    fn every_status_code_parses() {
        use russh_sftp::protocol::Packet;
        for (code, want) in [
            (4, StatusCode::Failure),
            (9, StatusCode::InvalidHandle),
            (11, StatusCode::FileAlreadyExists),
            (14, StatusCode::NoSpaceOnFilesystem),
            (31, StatusCode::NoMatchingByteRangeLock),
            (99, StatusCode::Unknown(99)),
        ] {
            let mut bytes = bytes::Bytes::from(status_packet(7, code, "m"));
            match Packet::try_from(&mut bytes) {
                Ok(Packet::Status(s)) => {
                    assert_eq!((s.id, s.status_code), (7, want));
                    assert_eq!(s.status_code.code(), code);
                }
                other => panic!("code {code}: {other:?}"),
            }
        }
    }

    /// A reply the client cannot accept (here: longer than the packet limit) fails the
    /// pending request at once, with the reason (upstream 3.0.1 says only "sender dropped").
    #[tokio::test]
    async fn unacceptable_reply_fails_pending_requests_at_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let fake = tokio::spawn(async move {
            // INIT -> VERSION 3
            let n = server.read_u32().await.unwrap();
            let mut buf = vec![0; n as usize];
            server.read_exact(&mut buf).await.unwrap();
            let version = [0u8, 0, 0, 5, 2, 0, 0, 0, 3];
            server.write_all(&version).await.unwrap();
            // STAT -> a packet header announcing 16 MiB.
            let n = server.read_u32().await.unwrap();
            let mut buf = vec![0; n as usize];
            server.read_exact(&mut buf).await.unwrap();
            server
                .write_all(&(16u32 << 20).to_be_bytes())
                .await
                .unwrap();
            server.write_all(&[103u8; 64]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            drop(server);
        });
        let cfg = russh_sftp::client::Config {
            request_timeout_secs: 30,
            max_packet_len: super::super::profile::MAX_PACKET,
            ..Default::default()
        };
        let raw = russh_sftp::client::RawSftpSession::new_with_config(client, cfg);
        raw.init().await.unwrap();
        let e = raw.stat("/x").await.unwrap_err();
        let e = SftpError::remote("stat", "/x", e);
        assert!(e.to_string().contains("sftp session ended"), "{e}");
        assert!(e.is_retryable());
        fake.abort();
    }

    /// The vendored `write_from_slice`: each request leaves with the bytes it was given,
    /// at once and in order (the buffer can be reused right away); a server's failure and
    /// the stated write limit come out of its future.
    #[tokio::test]
    async fn borrowed_writes_go_out_at_once_with_their_bytes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let fake = tokio::spawn(async move {
            let n = server.read_u32().await.unwrap();
            let mut buf = vec![0; n as usize];
            server.read_exact(&mut buf).await.unwrap();
            server
                .write_all(&[0u8, 0, 0, 5, 2, 0, 0, 0, 3])
                .await
                .unwrap();
            let mut got = Vec::new();
            for _ in 0..2 {
                let n = server.read_u32().await.unwrap();
                let mut buf = vec![0; n as usize];
                server.read_exact(&mut buf).await.unwrap();
                got.push(buf);
            }
            // STATUS OK for the first, FAILURE (4) for the second.
            for (id, code) in [(1u32, 0u32), (2, 4)] {
                let mut p = vec![101u8];
                p.extend(id.to_be_bytes());
                p.extend(code.to_be_bytes());
                p.extend(0u32.to_be_bytes());
                p.extend(0u32.to_be_bytes());
                server
                    .write_all(&(p.len() as u32).to_be_bytes())
                    .await
                    .unwrap();
                server.write_all(&p).await.unwrap();
            }
            got
        });
        let mut raw = russh_sftp::client::RawSftpSession::new(client);
        raw.init().await.unwrap();
        let mut block = b"abcdefgh".to_vec();
        let first = raw.write_from_slice("h1", 7, &block[..5]);
        block.copy_from_slice(b"ABCDEFGH");
        let second = raw.write_from_slice("h1", 12, &block[5..]);
        block.fill(0);
        let got = fake.await.unwrap();
        let packet = |id: u32, off: u64, data: &[u8]| {
            let mut p = vec![6u8];
            p.extend(id.to_be_bytes());
            p.extend(2u32.to_be_bytes());
            p.extend(b"h1");
            p.extend(off.to_be_bytes());
            p.extend((data.len() as u32).to_be_bytes());
            p.extend(data);
            p
        };
        assert_eq!(got, vec![packet(1, 7, b"abcde"), packet(2, 12, b"FGH")]);
        assert!(first.await.is_ok());
        assert!(second.await.is_err());
        raw.set_limits(russh_sftp::client::rawsession::Limits {
            write_len: Some(4),
            ..Default::default()
        });
        let e = raw.write_from_slice("h1", 0, b"12345").await.unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
    }
}
