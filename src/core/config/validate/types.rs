//! The validated configuration types: what a subscription and the daemon file mean once
//! every check passed. Plain data; the validators of the other files build them.

use crate::core::catalog::{Field, PeriodField, ReportKind};
use crate::core::config::Recipient;
use crate::core::retry::RetryPolicy;
use crate::core::schedule::Schedule;
use crate::core::text::{Encoding, LineEnding};
use chrono::NaiveDate;
use std::path::PathBuf;
use std::time::Duration;

/// A validated subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: crate::core::identity::SubscriptionId,
    pub customer: String,
    pub customer_org_number: Option<String>,
    pub case_number: Option<String>,
    pub invoice_reference: Option<String>,
    pub legal_basis: Option<String>,
    pub contact_email: Option<String>,
    pub contact_mobile: Option<String>,
    pub enabled: bool,
    pub schedule: Schedule,
    /// Where the files go: SFTP (`[target]`) or e-mail (`[email]`).
    pub transport: Transport,
    pub extract: ExtractSpec,
    pub encryption: EncryptionSpec,
    pub delivery: DeliverySpec,
    /// `[delivery] notice`: a delivery notice goes to `contact_email` after each delivery.
    pub customer_notice: bool,
    pub retry: RetryPolicy,
    /// The file it came from.
    pub source: PathBuf,
}

impl Subscription {
    /// The SFTP target, for an SFTP subscription.
    pub fn target(&self) -> Option<&TargetSpec> {
        match &self.transport {
            Transport::Sftp(t) => Some(t),
            Transport::Email(_) => None,
        }
    }

    /// The SFTP target, mutable (tests point it elsewhere).
    pub fn target_mut(&mut self) -> Option<&mut TargetSpec> {
        match &mut self.transport {
            Transport::Sftp(t) => Some(t),
            Transport::Email(_) => None,
        }
    }

    /// The personal-data fields this subscription discloses (for receipts).
    pub fn personal_fields(&self) -> Vec<String> {
        self.extract
            .columns
            .iter()
            .filter(|f| f.personal)
            .map(|f| f.name.clone())
            .collect()
    }
}

/// How a subscription's files reach the customer.
#[derive(Debug, Clone)]
pub enum Transport {
    /// `[target]`: the customer's SFTP server.
    Sftp(TargetSpec),
    /// `[email]`: attached to one e-mail through `[smtp]`.
    Email(super::email::EmailSpec),
}

impl Transport {
    /// `sftp` or `email` (receipts, logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Sftp(_) => "sftp",
            Transport::Email(_) => "email",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub host_keys: Vec<String>,
    pub known_hosts: Option<PathBuf>,
    pub auth: AuthSpec,
    pub remote_dir: String,
    pub create_dirs: bool,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub tuning: TargetTuning,
}

/// `[target]` overrides of the per-server upload strategy (`None`: chosen per server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetTuning {
    pub channels: Option<usize>,
    pub max_write: Option<usize>,
    pub in_flight: Option<usize>,
    pub commit: CommitMode,
    pub fsync: bool,
    pub posix_rename: bool,
}

impl Default for TargetTuning {
    fn default() -> Self {
        TargetTuning {
            channels: None,
            max_write: None,
            in_flight: None,
            commit: CommitMode::Auto,
            fsync: true,
            posix_rename: true,
        }
    }
}

/// `[target] commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    Auto,
    RaceFree,
    Hardlink,
    Rename,
    CheckedRename,
}

/// Where the login secret lives; never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSpec {
    KeyFile {
        path: PathBuf,
        passphrase_file: Option<PathBuf>,
    },
    PasswordFile(PathBuf),
    /// A systemd credential name (`$CREDENTIALS_DIRECTORY/NAME`) holding the password.
    PasswordCredential(String),
    /// A systemd credential name holding the private key.
    KeyCredential {
        name: String,
        passphrase_file: Option<PathBuf>,
    },
}

/// Where a secret lives (never the secret): a 0600 file or a systemd credential name
/// (`$CREDENTIALS_DIRECTORY/NAME`). Read by `crate::secret` when it is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    File(PathBuf),
    Credential(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dsv,
    Csv,
    Xlsx,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Dsv => "dsv",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// A reporting period as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodSpec {
    PreviousDay,
    PreviousWeek,
    PreviousMonth,
    SinceLastDelivery,
    Fixed { from: NaiveDate, to: NaiveDate },
}

impl PeriodSpec {
    pub fn describe(&self) -> String {
        match self {
            PeriodSpec::PreviousDay => "previous_day".into(),
            PeriodSpec::PreviousWeek => "previous_week".into(),
            PeriodSpec::PreviousMonth => "previous_month".into(),
            PeriodSpec::SinceLastDelivery => "since_last_delivery".into(),
            PeriodSpec::Fixed { from, to } => format!("{from}..{to}"),
        }
    }
}

/// Validated filters. Every list means "any of"; empty means no restriction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub first_registration_year: Option<(Option<i64>, Option<i64>)>,
    /// Make codes (names are resolved to codes through the make table).
    pub make_codes: Vec<String>,
    pub model: Vec<String>,
    pub vehicle_group: Vec<String>,
    pub fuel: Vec<String>,
    pub hybrid_category: Vec<String>,
    pub seats: Option<(Option<i64>, Option<i64>)>,
    pub status: Vec<String>,
    pub org_number: Vec<String>,
    pub municipality: Vec<String>,
    pub county: Vec<String>,
}

impl Filter {
    pub fn has_owner_filter(&self) -> bool {
        !(self.org_number.is_empty() && self.municipality.is_empty() && self.county.is_empty())
    }
}

#[derive(Debug, Clone)]
pub struct ExtractSpec {
    pub report: ReportKind,
    /// Code tables delivered beside the report (or alone, for report `code_tables`).
    pub code_tables: Vec<crate::core::codes::CodeTable>,
    pub columns: Vec<Field>,
    pub format: Format,
    pub encoding: Encoding,
    pub line_ending: LineEnding,
    pub period: Option<PeriodSpec>,
    pub period_field: PeriodField,
    pub filter: Filter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionSpec {
    /// The recipients, parsed once here; empty only when `encrypt` is false or with
    /// `passphrase`.
    pub recipients: Vec<Recipient>,
    pub encrypt: bool,
    /// `mode = "passphrase"` (e-mail only): sealed with an age scrypt passphrase made per
    /// delivery and sent by SMS, instead of to recipients.
    pub passphrase: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    Fail,
    Overwrite,
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyLevel {
    Size,
    ReadBack,
}

#[derive(Debug, Clone)]
pub struct DeliverySpec {
    pub file_name: String,
    pub if_exists: IfExists,
    pub verify: VerifyLevel,
    pub manifest: bool,
    pub done_marker: bool,
}

/// Defaults a subscription inherits from the daemon config.
#[derive(Debug, Clone)]
pub struct Inherited {
    pub timezone: String,
    pub retry: RetryPolicy,
    /// Relative secret paths are resolved against this folder.
    pub secrets_dir: PathBuf,
    /// The channels the daemon file configures (`[smtp]`, `[sms]`).
    pub offers: Offers,
}

/// Which sending channels `regdrop.toml` configures, so a subscription that needs one the
/// daemon file lacks is refused by `check` instead of failing at its first run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offers {
    /// `[smtp]`: e-mail deliveries and delivery notices.
    pub smtp: bool,
    /// `[sms]`: the passphrases of e-mail deliveries.
    pub sms: bool,
}

impl Offers {
    /// Both channels: for a subscription checked without its daemon file (tests, the
    /// fuzz targets, `new-subscription` before a config exists), where nothing is known.
    pub const ASSUMED: Offers = Offers {
        smtp: true,
        sms: true,
    };
}

/// What the daemon config holds once validated.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// A SQLite file, or a PostgreSQL database (a read replica of the real register).
    pub register: crate::core::config::location::DbLocation,
    pub spool_dir: PathBuf,
    /// A SQLite file, or a PostgreSQL database several nodes may share.
    pub state_db: crate::core::config::location::DbLocation,
    pub subscriptions_dir: PathBuf,
    pub inherited: Inherited,
    pub max_concurrent: usize,
    pub max_per_host: usize,
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub shutdown_grace: Duration,
    pub spool_grace: Duration,
    pub receipts_retention: Duration,
    /// `[daemon] user`: the user the service runs as, when the file names one.
    pub service_user: Option<String>,
    /// `[daemon] node`: this node's name in a shared state store (`None`: the host name,
    /// read by the daemon).
    pub node: Option<String>,
    /// `[daemon] lease_secs`: how long a node's claim on a run lasts without a heartbeat.
    pub lease: Duration,
    /// `[smtp]`, when configured.
    pub smtp: Option<super::smtp::SmtpSpec>,
    /// `[notify]`: operator alerts (empty: none).
    pub notify: super::NotifySpec,
    /// `[sms]`, when configured.
    pub sms: Option<super::email::SmsSpec>,
}
