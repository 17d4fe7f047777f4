//! The mail adapter's one error type: what failed, whether trying again can help
//! (`core::retry::Classify`) and whether the server may have taken the message anyway.

use crate::core::retry::{Classify, ErrorClass};
use crate::secret::SecretError;
use std::path::PathBuf;

/// Where in the SMTP dialogue a reply or a failure came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    /// The message itself and the server's reply to its final dot.
    Message,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::StartTls => "STARTTLS",
            Phase::Auth => "AUTH",
            Phase::MailFrom => "MAIL FROM",
            Phase::RcptTo => "RCPT TO",
            Phase::Data => "DATA",
            Phase::Message => "message",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message was not (known to be) sent. Every text that came from the server is
/// cleaned (control characters escaped) and cut before it gets here.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The password file or credential cannot be used. Permanent.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// `ca_file` cannot be read or holds no certificate. Permanent.
    #[error("CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    /// An address or the message cannot be built (a bad recipient, a bad sender). Permanent.
    #[error("the message cannot be built: {0}")]
    Message(String),
    /// The server answered with an SMTP error code: 4xx retryable, 5xx permanent.
    #[error("the mail server {addr} refused {phase} with {code}: {text}")]
    Rejected {
        addr: String,
        phase: Phase,
        code: u16,
        text: String,
    },
    /// No connection, a dropped connection or a timeout before the message was handed
    /// over: nothing was sent. Retryable.
    #[error("the mail server {addr} ({phase}): {reason}")]
    Connection {
        addr: String,
        phase: Phase,
        reason: String,
    },
    /// TLS could not be set up: the server's certificate is not trusted or names another
    /// host, STARTTLS is not offered, the handshake failed. Permanent: a server that cannot
    /// prove who it is never gets the message.
    #[error(
        "TLS with the mail server {addr} ({phase}): {reason}; check [smtp] tls, host and ca_file"
    )]
    Tls {
        addr: String,
        phase: Phase,
        reason: String,
    },
    /// The login was refused or no mechanism fits. Permanent.
    #[error("the mail server {addr} refused the login of `{user}`: {reason}; check [smtp.auth]")]
    Auth {
        addr: String,
        user: String,
        reason: String,
    },
    /// The whole message went out but no reply came (connection lost, timeout): the server
    /// may have accepted it. Permanent, so it is never sent blindly again: an operator
    /// checks with the recipient first.
    #[error("the mail server {addr} got the whole message {message_id} but its reply was lost ({reason}); it may have been delivered: ask the recipient before `regdrop retry`")]
    Unconfirmed {
        addr: String,
        message_id: String,
        reason: String,
    },
    /// The caller's check before DATA stopped the send (nothing sent).
    #[error("the send was stopped before DATA: {0}")]
    Stopped(String),
}

impl MailError {
    /// Whether the message cannot have reached the server (everything but
    /// [`MailError::Unconfirmed`]).
    pub fn nothing_sent(&self) -> bool {
        !matches!(self, MailError::Unconfirmed { .. })
    }
}

impl Classify for MailError {
    fn class(&self) -> ErrorClass {
        match self {
            MailError::Rejected { code, .. } if (400..500).contains(code) => ErrorClass::Retryable,
            MailError::Connection { .. } => ErrorClass::Retryable,
            MailError::Rejected { .. }
            | MailError::Secret(_)
            | MailError::CaFile { .. }
            | MailError::Message(_)
            | MailError::Tls { .. }
            | MailError::Auth { .. }
            | MailError::Unconfirmed { .. }
            | MailError::Stopped(_) => ErrorClass::Permanent,
        }
    }
}
