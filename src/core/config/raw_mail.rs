//! The serde mirror of the e-mail channel's tables in `regdrop.toml`: `[smtp]` (the
//! outgoing mail server) and its `[smtp.auth]`. Kept apart from `raw` so the daemon file's
//! own keys stay small; unknown keys are refused. The doc comments are the operator
//! documentation of every key.

use serde::Deserialize;

/// `[smtp]`: the mail server e-mail deliveries and notifications are sent through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// DNS name or IP address of the submission server.
    pub host: String,
    /// Default by `tls`: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: Option<u16>,
    /// `starttls` (default: plain connect, then STARTTLS, refused if the server does not
    /// offer it), `tls` (implicit TLS, "SMTPS") or `none` (only for a loopback host).
    pub tls: Option<String>,
    /// The sender, `uttrekk@vegvesen.example` or `Vegvesen uttrekk <uttrekk@vegvesen.example>`.
    pub from: String,
    /// A PEM file of the CA certificate(s) to trust instead of the system's store (for a
    /// server with a private CA).
    pub ca_file: Option<String>,
    /// Seconds one SMTP command may take (connect, each reply). Default 60.
    pub timeout_secs: Option<u64>,
    /// Log in (AUTH PLAIN/LOGIN, only over TLS). Absent: send without logging in.
    pub auth: Option<RawSmtpAuth>,
}

/// `[smtp.auth]`: the user name and where its password lives (never the password itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtpAuth {
    pub username: String,
    /// File holding the password (0600), relative to `secrets_dir`.
    pub password_file: Option<String>,
    /// systemd credential holding the password (`LoadCredential=NAME:PATH`).
    pub password_credential: Option<String>,
    /// Refused: secrets never go into configuration files.
    pub password: Option<toml::Value>,
}
