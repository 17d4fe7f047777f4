//! The HTTP adapter's error type: what failed and whether trying again can help.

use crate::core::retry::{Classify, ErrorClass};
use crate::core::text::clean;
use crate::secret::SecretError;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not usable (not http(s), plain http to another machine). Permanent.
    #[error("{0}")]
    Url(String),
    /// The credential header's file or systemd credential cannot be used. Permanent.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// `ca_file` cannot be read or holds no certificate. Permanent.
    #[error("CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    /// No connection (refused, DNS, reset) or it broke off. Retryable.
    #[error("{url}: {reason}")]
    Connect { url: String, reason: String },
    /// No complete answer in time. Retryable.
    #[error("{url}: no answer within {} s", timeout.as_secs())]
    Timeout { url: String, timeout: Duration },
    /// The server's certificate is not trusted or names another host. Permanent.
    #[error("{url}: TLS failed: {reason}; check the URL's host and ca_file")]
    Tls { url: String, reason: String },
    /// A status other than 2xx: 5xx, 408 and 429 retryable, others (4xx, 3xx) permanent.
    /// `body` is the start of the answer, cleaned.
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// A task of our own failed.
    #[error("the HTTP request task failed: {0}")]
    Internal(String),
}

impl HttpError {
    pub(super) fn from_ureq(url: &str, timeout: Duration, e: ureq::Error) -> HttpError {
        let url = url.to_string();
        match e {
            ureq::Error::Timeout(_) => HttpError::Timeout { url, timeout },
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                HttpError::Timeout { url, timeout }
            }
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => HttpError::Tls {
                url,
                reason: clean(&e.to_string(), 300),
            },
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
                HttpError::Url(format!("{url}: {}", clean(&e.to_string(), 200)))
            }
            other => HttpError::Connect {
                url,
                reason: clean(&other.to_string(), 300),
            },
        }
    }
}

impl Classify for HttpError {
    fn class(&self) -> ErrorClass {
        match self {
            HttpError::Connect { .. } | HttpError::Timeout { .. } | HttpError::Internal(_) => {
                ErrorClass::Retryable
            }
            HttpError::Status { status, .. }
                if *status >= 500 || *status == 408 || *status == 429 =>
            {
                ErrorClass::Retryable
            }
            HttpError::Status { .. }
            | HttpError::Url(_)
            | HttpError::Secret(_)
            | HttpError::CaFile { .. }
            | HttpError::Tls { .. } => ErrorClass::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let s = |status| HttpError::Status {
            url: "u".into(),
            status,
            body: String::new(),
        };
        for st in [500, 502, 503, 408, 429] {
            assert_eq!(s(st).class(), ErrorClass::Retryable, "{st}");
        }
        for st in [400, 401, 403, 404, 301] {
            assert_eq!(s(st).class(), ErrorClass::Permanent, "{st}");
        }
    }
}
