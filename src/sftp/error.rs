//! `SftpError`: every way a delivery, probe or scan can fail, and whether retrying can help
//! (`crate::retry::Classify`). Messages name hosts, users, paths and fingerprints, never
//! secrets (passwords, passphrases, key material).

use crate::retry::{Classify, ErrorClass};
use russh_sftp::protocol::StatusCode;
use std::path::PathBuf;

/// A failure of the SFTP adapter. The class decides retry versus operator.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// TCP connect failed (refused, unreachable, reset). Retryable.
    #[error("cannot connect to {addr}: {source}")]
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
    #[error("local file {}: {source}", path.display())]
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
        let (code, message) = match e {
            E::Status(s) => {
                let msg = if s.error_message.is_empty() {
                    s.status_code.to_string()
                } else {
                    s.error_message
                };
                (Some(s.status_code), msg)
            }
            other => (None, other.to_string()),
        };
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
            | SftpError::InvalidName { .. }
            | SftpError::Local { .. } => Permanent,
            SftpError::Remote { code, .. } => match code {
                // Access rules and unsupported operations do not change by themselves.
                Some(StatusCode::PermissionDenied) | Some(StatusCode::OpUnsupported) => Permanent,
                // Generic failure (OpenSSH reports a full disk as plain "Failure"), missing
                // files in the middle of our own protocol, lost connection, timeouts:
                // try again.
                _ => Retryable,
            },
        }
    }
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
    }
}
