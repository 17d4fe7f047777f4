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

/// `[sms]`: the SMS gateway the passphrases of e-mail deliveries go through (one HTTP POST
/// per message).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSms {
    /// The gateway's endpoint, `https://...` (`http://` only for a loopback host).
    pub url: String,
    /// `json` (default: the fields as a JSON object) or `form` (url-encoded form fields).
    pub format: Option<String>,
    /// The request's fields; each value is a template with `{number}` (the contact mobile,
    /// as written without spaces, e.g. `+4799999999`) and `{text}` (the message), e.g.
    /// `{ to = "{number}", message = "{text}", from = "Vegvesen" }`. Both placeholders must
    /// appear.
    pub fields: std::collections::BTreeMap<String, String>,
    /// Header carrying the gateway credential. Default `Authorization`.
    pub auth_header: Option<String>,
    /// File (0600, relative to `secrets_dir`) whose content is that header's value
    /// (e.g. `Bearer 3f9...`).
    pub auth_file: Option<String>,
    /// systemd credential holding that header's value.
    pub auth_credential: Option<String>,
    /// PEM file of the CA certificate(s) to trust instead of the Mozilla roots.
    pub ca_file: Option<String>,
    /// Seconds the request may take. Default 30.
    pub timeout_secs: Option<u64>,
}

/// A subscription's `[email]` table: the extract goes as an e-mail attachment instead of
/// to an SFTP `[target]` (exactly one of the two).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    /// Recipient addresses (`name@domain` or `Name <name@domain>`), at least one.
    pub to: Vec<String>,
    /// Subject template: `{id}`, `{report}`, `{run:%Y-%m-%d}`, `{period_start:FMT}`,
    /// `{period_end:FMT}`. Default `Uttrekk fra kjøretøyregisteret: {id} {run:%Y-%m-%d}`.
    pub subject: Option<String>,
    /// Largest total size of the attached (sealed) files, in bytes. Default 10 MiB
    /// (10485760); at most 50 MiB. A larger extract is not sent: the run needs an operator
    /// and the message says to deliver by SFTP.
    pub max_bytes: Option<u64>,
}
