//! The serde mirror of the configuration files, exactly as operators write them. Unknown
//! keys are refused. The doc comments here are the operator documentation of every key.

use crate::core::retry::RetryOverrides;
use crate::core::schedule::CatchUp;
use crate::core::text::{Encoding, LineEnding};
use serde::Deserialize;

/// `regdrop.toml`: the daemon's own settings. Relative paths are relative to this file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    /// The register database (SQLite). Default `register.sqlite`.
    pub register: Option<String>,
    /// Folder for sealed artifacts waiting for delivery (created 0700). Default `spool`.
    pub spool_dir: Option<String>,
    /// The state database: runs, attempts, receipts. Default `state/regdrop.sqlite`.
    pub state_db: Option<String>,
    /// Folder holding one `*.toml` file per subscription. Default `subscriptions`.
    pub subscriptions_dir: Option<String>,
    /// Folder secret files are looked up in when a subscription names a relative path.
    /// Default: the folder of this file.
    pub secrets_dir: Option<String>,
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Default retry policy for every subscription.
    #[serde(default)]
    pub retry: RetryOverrides,
    #[serde(default)]
    pub daemon: RawDaemonRuntime,
    #[serde(default)]
    pub retention: RawRetention,
    /// The outgoing mail server (e-mail deliveries, notifications).
    pub smtp: Option<super::raw_mail::RawSmtp>,
    /// Alerts to the operators, delivery notices to customers (README "Notifications").
    #[serde(default)]
    pub notify: RawNotify,
    /// The SMS gateway (passphrases of e-mail deliveries).
    pub sms: Option<super::raw_mail::RawSms>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Time zone of schedules that do not name one. Default `Europe/Oslo`.
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDaemonRuntime {
    /// At most this many deliveries run at once. Default 4.
    pub max_concurrent: Option<usize>,
    /// At most this many deliveries to one host at once. Default 2.
    pub max_per_host: Option<usize>,
    /// Prometheus text endpoint, any address (no TLS or login). Default off.
    pub metrics_listen: Option<String>,
    /// Seconds in-flight uploads get to finish on shutdown. Default 60.
    pub shutdown_grace_secs: Option<u64>,
    /// The system user the service runs as (`User=` of the unit): `check` verifies that
    /// this user can read every secret file and write the spool and state folders.
    /// Default `regdrop` when that user exists, else the user running `check`.
    pub user: Option<String>,
    /// This node's name in a shared state store (leases, `regdrop status`). Default: the
    /// host name.
    pub node: Option<String>,
    /// Seconds a node's claim on a run lasts without a heartbeat; another node takes the
    /// run over after that. Default 30, at least 5.
    pub lease_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Hours a delivered artifact stays in the spool. Default 24.
    pub spool_grace_hours: Option<u64>,
    /// Days receipts and attempts are kept (gallring). Default 2557 (7 years).
    pub receipts_days: Option<u64>,
}

/// One subscription file: one customer's standing extract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubscription {
    /// Unique id: lowercase letters, digits and `-`; used in file names and receipts.
    pub id: String,
    /// The customer's name as it goes into receipts.
    pub customer: String,
    /// The customer's organisation number (9 digits, mod-11 checked).
    pub customer_org_number: Option<String>,
    /// The authority's case number for this release of data (saksnummer).
    pub case_number: Option<String>,
    /// The customer's invoice reference.
    pub invoice_reference: Option<String>,
    /// The legal basis for releasing personal data (required when any personal field is
    /// selected).
    pub legal_basis: Option<String>,
    /// Contact e-mail and mobile number of the customer's person responsible.
    pub contact: Option<RawContact>,
    /// Set to false to keep the file but not schedule it.
    #[serde(default = "yes")]
    pub enabled: bool,
    pub schedule: RawSchedule,
    /// SFTP delivery; exactly one of `[target]` and `[email]`.
    pub target: Option<RawTarget>,
    /// E-mail delivery (small extracts); exactly one of `[target]` and `[email]`.
    pub email: Option<super::raw_mail::RawEmail>,
    pub extract: RawExtract,
    pub encryption: RawEncryption,
    #[serde(default)]
    pub delivery: RawDelivery,
    /// Overrides of the daemon's retry policy.
    #[serde(default)]
    pub retry: RetryOverrides,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    pub email: Option<String>,
    pub mobile: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// Standard 5-field cron line (`0 6 * * MON`) or `@daily`-style alias.
    pub cron: String,
    /// IANA time zone; default from the daemon config.
    pub timezone: Option<String>,
    /// After downtime: `once` (run for the most recent missed time) or `skip`.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Random delay up to this many seconds added to each fire time.
    #[serde(default)]
    pub jitter_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// DNS name or IP address of the customer's SFTP server.
    pub host: String,
    #[serde(default = "port22")]
    pub port: u16,
    pub username: String,
    /// Pinned server keys, OpenSSH public-key lines (`ssh-ed25519 AAAA...`). Get them with
    /// `regdrop hostkey scan HOST[:PORT]`.
    #[serde(default)]
    pub host_keys: Vec<String>,
    /// A known_hosts file with the server's keys (alternative to `host_keys`).
    pub known_hosts: Option<String>,
    pub auth: RawAuth,
    /// Folder on the server the files go into.
    pub remote_dir: String,
    /// Create `remote_dir` (and parents) when missing. Default false.
    #[serde(default)]
    pub create_dirs: bool,
    /// Seconds to wait for a connection. Default 20.
    pub connect_timeout_secs: Option<u64>,
    /// Seconds one SFTP request may take (including its wait behind other in-flight
    /// writes). Default 120.
    pub io_timeout_secs: Option<u64>,
    /// SFTP channels a large upload uses, 1-16. Default: chosen per server (4 where the
    /// server is known to take parallel writes, else 1). Set 1 for servers that mishandle
    /// several channels or take only sequential writes.
    pub channels: Option<u64>,
    /// Bytes per SFTP WRITE request, 1024-261120. Default: the server's
    /// `limits@openssh.com`, else 32768.
    pub max_write: Option<u64>,
    /// WRITE requests in flight per channel, 1-1024. Default 64.
    pub in_flight: Option<u64>,
    /// How a file is committed without replacing an existing one (`if_exists` fail and
    /// version): "auto" (default: hardlink@openssh.com, else a rename known to refuse, else
    /// a checked rename, which the receipt records), "race-free" (like auto, but refuse where
    /// only a checked rename is possible), "hardlink", "rename" (the server's rename is known
    /// to refuse an existing name), or "checked-rename" (check, then rename: accepts a
    /// one-round-trip window in which someone else's new file under the final name would
    /// be replaced).
    pub commit: Option<String>,
    /// Use fsync@openssh.com when the server offers it. Default true.
    pub fsync: Option<bool>,
    /// Use posix-rename@openssh.com when the server offers it. Default true.
    pub posix_rename: Option<bool>,
}

fn port22() -> u16 {
    22
}

/// How to log in. Secrets are never written here: name a file (0600) or a systemd
/// credential (`LoadCredential=`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Private key file (OpenSSH format).
    pub key_file: Option<String>,
    /// File holding the private key's passphrase.
    pub passphrase_file: Option<String>,
    /// File holding the password (0600).
    pub password_file: Option<String>,
    /// systemd credential holding the password.
    pub password_credential: Option<String>,
    /// systemd credential holding the private key.
    pub key_credential: Option<String>,
    /// Refused: secrets never go into subscription files.
    pub password: Option<toml::Value>,
    /// Refused: secrets never go into subscription files.
    pub passphrase: Option<toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    /// `technical`, `technical_owners`, `first_registrations`, `owners`, `custom`,
    /// `technical_open` (open data: no plate, personal plate or chassis number) or
    /// `code_tables` (only the tables listed in `code_tables`).
    pub report: String,
    /// Code tables delivered beside the report in the same run, each as a file of its own
    /// (`kode`/`navn`, same format, encoding and encryption as the report): `make`,
    /// `vehicle_group`, `fuel`, `colour`, `euronorm`, `load_index`, `speed_index`,
    /// `technical_code`, `status`. Required (non-empty) for report `code_tables`.
    #[serde(default)]
    pub code_tables: Vec<String>,
    /// The columns of a `custom` report (catalog names, e.g. `TEKN_KJM`, `EIER_NAVN`).
    pub columns: Option<Vec<String>>,
    /// `dsv` (¤-separated, the authority's format), `csv` (RFC 4180) or `xlsx`.
    #[serde(default = "dsv")]
    pub format: String,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub line_ending: LineEnding,
    /// A relative period (`previous_day`, `previous_week`, `previous_month`,
    /// `since_last_delivery`) or a fixed one (`{ from = 2026-01-01, to = 2026-01-31 }`).
    pub period: Option<RawPeriod>,
    /// Which date the period applies to: `first_registration`,
    /// `first_registration_norway`, `ownership`, `deregistered`, `scrapped`. Each report
    /// has a natural default.
    pub period_field: Option<String>,
    #[serde(default)]
    pub filter: RawFilter,
}

fn dsv() -> String {
    "dsv".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawPeriod {
    Relative(String),
    Fixed {
        from: toml::value::Datetime,
        to: toml::value::Datetime,
    },
}

/// Filters; every list means "any of". Empty or absent means no restriction.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// First-registration year range, inclusive.
    pub first_registration_year: Option<RawRange>,
    /// Make by 4-digit code (`5750`) or name (`VOLKSWAGEN`).
    #[serde(default)]
    pub make: Vec<String>,
    /// Model / trade name, exact match, case-insensitive.
    #[serde(default)]
    pub model: Vec<String>,
    /// Vehicle group (tax code), e.g. `101`.
    #[serde(default)]
    pub vehicle_group: Vec<String>,
    /// Fuel code of any motor, e.g. `5` electric.
    #[serde(default)]
    pub fuel: Vec<String>,
    /// Hybrid category.
    #[serde(default)]
    pub hybrid_category: Vec<String>,
    /// Total seats range, inclusive.
    pub seats: Option<RawRange>,
    /// Registration status (`REGISTRERT`, ...).
    #[serde(default)]
    pub status: Vec<String>,
    /// Owner reports: owner's organisation number.
    #[serde(default)]
    pub org_number: Vec<String>,
    /// Owner reports: owner's municipality number (4 digits).
    #[serde(default)]
    pub municipality: Vec<String>,
    /// Owner reports: owner's county number (2 digits).
    #[serde(default)]
    pub county: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    /// age recipients: `age1...` X25519 keys, `ssh-ed25519 ...` or `ssh-rsa ...` lines.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// `age` (default), `none` (only for reports without identifying or personal data) or
    /// `passphrase` (only with `[email]`: an age passphrase made per delivery and sent by SMS
    /// to `contact.mobile`, for customers without an age key).
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// Remote file name template. Variables: `{id}`, `{report}`, `{ext}`,
    /// `{run:%Y%m%d}`, `{period_start:%Y%m%d}`, `{period_end:%Y%m%d}` (strftime formats,
    /// in the subscription's time zone). Default `{id}_{run:%Y%m%dT%H%M%S}.{ext}` (seconds:
    /// two runs by hand in one minute get two names).
    pub file_name: Option<String>,
    /// When the final name exists: `fail` (default), `overwrite` or `version`.
    pub if_exists: Option<String>,
    /// `size` (default) or `read-back` (download and hash the uploaded file).
    pub verify: Option<String>,
    /// Upload `NAME.manifest.json` beside the file. Default true.
    pub manifest: Option<bool>,
    /// Upload an empty `NAME.done` last. Default false.
    pub done_marker: Option<bool>,
    /// E-mail a delivery notice (file name, size, rows, SHA-256, receipt number; never
    /// register data) to `[contact] email` after each delivery. Needs `[smtp]` in
    /// `regdrop.toml`. Default false.
    pub notice: Option<bool>,
}

/// `[notify]` in `regdrop.toml`: who hears about runs that need an operator, fail or
/// recover. Nothing is sent without it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// Operator e-mail addresses, sent through the `[smtp]` table.
    #[serde(default)]
    pub email: Vec<String>,
    /// Webhooks, each POSTed a JSON body per event (`[[notify.webhook]]`).
    #[serde(default)]
    pub webhook: Vec<RawWebhook>,
    /// Operator events to send: `needs_attention`, `failed`, `recovered`. Default all three.
    pub events: Option<Vec<String>>,
    /// Tries per message and recipient, 1-20. Default 5.
    pub attempts: Option<u32>,
    /// Seconds before the first retry of a message (doubling after each, at most 10
    /// minutes), 1-3600. Default 10.
    pub retry_base_secs: Option<u64>,
}

/// One `[[notify.webhook]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Its name in logs and the state store (letters, digits, `-`, `_`). Default
    /// `webhook-N` (its place in the list, from 1).
    pub name: Option<String>,
    /// `https://` or `http://` URL the JSON body is POSTed to.
    pub url: String,
    /// The header that carries the credential. Default `Authorization`.
    pub auth_header: Option<String>,
    /// File (0600) holding the header's value, e.g. `Bearer 3f9a...`; relative to
    /// `secrets_dir`.
    pub auth_file: Option<String>,
    /// systemd credential holding the header's value (`LoadCredential=NAME:PATH`).
    pub auth_credential: Option<String>,
    /// Seconds one POST may take, 1-120. Default 10.
    pub timeout_secs: Option<u64>,
}
