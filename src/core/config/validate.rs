//! Raw configuration -> validated, rich types. Pure: no file or network I/O. Collects every
//! problem of a file (not only the first), each with the key it concerns and a sentence
//! saying what to do.

use super::limits;
use super::raw::*;
use super::template::{self, NameContext};
use crate::core::catalog::{self, Field, PeriodField, ReportKind};
use crate::core::retry::RetryPolicy;
use crate::core::schedule::{self, Schedule};
use crate::core::text::{Encoding, LineEnding};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem, tied to a key path (`target.host_keys[1]`) that the loader turns into a
/// line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A validated subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub customer_org_number: Option<String>,
    pub case_number: Option<String>,
    pub invoice_reference: Option<String>,
    pub legal_basis: Option<String>,
    pub contact_email: Option<String>,
    pub contact_mobile: Option<String>,
    pub enabled: bool,
    pub schedule: Schedule,
    pub target: TargetSpec,
    pub extract: ExtractSpec,
    pub encryption: EncryptionSpec,
    pub delivery: DeliverySpec,
    pub retry: RetryPolicy,
    /// The file it came from.
    pub source: PathBuf,
}

impl Subscription {
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
    /// Parsed and checked recipient lines; empty only when `encrypt` is false.
    pub recipients: Vec<String>,
    pub encrypt: bool,
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
}

/// What the daemon config holds once validated.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub register: PathBuf,
    pub spool_dir: PathBuf,
    pub state_db: PathBuf,
    pub subscriptions_dir: PathBuf,
    pub inherited: Inherited,
    pub max_concurrent: usize,
    pub max_per_host: usize,
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub shutdown_grace: Duration,
    pub spool_grace: Duration,
    pub receipts_retention: Duration,
}

/// Validates the daemon file; `base` is the folder relative paths start from.
pub fn validate_daemon(raw: &RawDaemon, base: &Path) -> Result<DaemonConfig, Vec<Problem>> {
    let mut problems = Vec::new();
    let rel = |v: &Option<String>, default: &str| base.join(v.as_deref().unwrap_or(default));
    let timezone = raw
        .defaults
        .timezone
        .clone()
        .unwrap_or_else(|| "Europe/Oslo".into());
    if let Err(e) = schedule::parse_tz(&timezone) {
        problems.push(Problem::new("defaults.timezone", e));
    }
    let retry = RetryPolicy::default().with(&raw.retry);
    limits::retry_problems(&raw.retry, &retry, &mut problems);
    limits::check_range(
        "daemon.shutdown_grace_secs",
        raw.daemon.shutdown_grace_secs,
        (0, limits::SHUTDOWN_GRACE_SECS_MAX),
        "seconds in-flight runs get to finish on shutdown",
        &mut problems,
    );
    limits::check_range(
        "retention.spool_grace_hours",
        raw.retention.spool_grace_hours,
        (0, limits::SPOOL_GRACE_HOURS_MAX),
        "hours a delivered artifact stays in the spool",
        &mut problems,
    );
    limits::check_range(
        "retention.receipts_days",
        raw.retention.receipts_days,
        limits::RECEIPTS_DAYS,
        "days receipts and attempts are kept",
        &mut problems,
    );
    let metrics_listen = match &raw.daemon.metrics_listen {
        None => None,
        Some(s) => match s.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => Some(a),
            Ok(_) => {
                problems.push(Problem::new(
                    "daemon.metrics_listen",
                    "the metrics endpoint must listen on a loopback address (127.0.0.1:PORT); put a proxy in front to expose it",
                ));
                None
            }
            Err(_) => {
                problems.push(Problem::new(
                    "daemon.metrics_listen",
                    format!("`{s}` is not an address like 127.0.0.1:9187"),
                ));
                None
            }
        },
    };
    let max_concurrent = raw.daemon.max_concurrent.unwrap_or(4);
    let max_per_host = raw.daemon.max_per_host.unwrap_or(2);
    if max_concurrent == 0 {
        problems.push(Problem::new("daemon.max_concurrent", "must be at least 1"));
    }
    if max_per_host == 0 {
        problems.push(Problem::new("daemon.max_per_host", "must be at least 1"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(DaemonConfig {
        register: rel(&raw.register, "register.sqlite"),
        spool_dir: rel(&raw.spool_dir, "spool"),
        state_db: rel(&raw.state_db, "state/regdrop.sqlite"),
        subscriptions_dir: rel(&raw.subscriptions_dir, "subscriptions"),
        inherited: Inherited {
            timezone,
            retry,
            secrets_dir: raw
                .secrets_dir
                .as_ref()
                .map(|s| base.join(s))
                .unwrap_or_else(|| base.to_path_buf()),
        },
        max_concurrent,
        max_per_host,
        metrics_listen,
        shutdown_grace: Duration::from_secs(raw.daemon.shutdown_grace_secs.unwrap_or(60)),
        spool_grace: Duration::from_secs(
            raw.retention
                .spool_grace_hours
                .unwrap_or(24)
                .saturating_mul(3600),
        ),
        receipts_retention: Duration::from_secs(
            raw.retention
                .receipts_days
                .unwrap_or(2557)
                .saturating_mul(86_400),
        ),
    })
}

/// Validates one subscription, collecting every problem.
pub fn validate_subscription(
    raw: &RawSubscription,
    inherited: &Inherited,
    source: &Path,
) -> Result<Subscription, Vec<Problem>> {
    let mut p: Vec<Problem> = Vec::new();

    // --- identity ---
    if !valid_id(&raw.id) {
        p.push(Problem::new(
            "id",
            format!("`{}` is not a valid id; use 1-63 lowercase letters, digits and `-`, starting with a letter or digit", raw.id),
        ));
    }
    if raw.customer.trim().is_empty() {
        p.push(Problem::new(
            "customer",
            "the customer's name is empty; write the name that goes into receipts",
        ));
    }
    if let Some(org) = &raw.customer_org_number {
        if !crate::core::ids::is_valid_org_number(org) {
            p.push(Problem::new(
                "customer_org_number",
                format!("`{org}` is not a valid organisation number (9 digits, mod-11 check digit); copy it from Brønnøysundregistrene"),
            ));
        }
    }

    // --- schedule ---
    let tz_name = raw
        .schedule
        .timezone
        .clone()
        .unwrap_or_else(|| inherited.timezone.clone());
    let tz = match schedule::parse_tz(&tz_name) {
        Ok(tz) => Some(tz),
        Err(e) => {
            p.push(Problem::new("schedule.timezone", e));
            None
        }
    };
    let sched = match schedule::parse_cron(&raw.schedule.cron) {
        Err(e) => {
            p.push(Problem::new(
                "schedule.cron",
                format!("`{}` is not a cron line: {e}; write 5 fields like \"0 6 * * MON\" or an alias like \"@daily\"", raw.schedule.cron),
            ));
            None
        }
        Ok(_) => tz.and_then(|tz| {
            Schedule::new(
                &raw.schedule.cron,
                tz,
                raw.schedule.catch_up,
                raw.schedule.jitter_secs,
            )
            .ok()
        }),
    };
    // A 5-field line repeats within 28 years, so a line with no fire time after a fixed
    // date has none at all (`0 0 30 2 *`).
    if let Some(s) = &sched {
        let from = NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a date")
            .and_utc();
        if s.next_after(from).is_none() {
            p.push(Problem::new(
                "schedule.cron",
                format!("`{}` never fires (no date matches it, like 30 February); fix the day and month fields", raw.schedule.cron),
            ));
        }
    }
    limits::check_range(
        "schedule.jitter_secs",
        Some(raw.schedule.jitter_secs),
        (0, limits::JITTER_SECS_MAX),
        "the random delay added to each fire time, in seconds",
        &mut p,
    );

    // --- target ---
    let t = &raw.target;
    if t.host.trim().is_empty() || t.host.contains(char::is_whitespace) || t.host.contains('/') {
        p.push(Problem::new(
            "target.host",
            format!("`{}` is not a host name or IP address", t.host),
        ));
    }
    if t.port == 0 {
        p.push(Problem::new(
            "target.port",
            "port 0 is not a port; the SFTP default is 22",
        ));
    }
    if t.username.trim().is_empty() {
        p.push(Problem::new(
            "target.username",
            "the SFTP user name is empty",
        ));
    }
    if t.host_keys.is_empty() && t.known_hosts.is_none() {
        p.push(Problem::new(
            "target.host_keys",
            "no pinned host key; run `regdrop hostkey scan HOST[:PORT]`, check the fingerprint with the customer, and paste the line into host_keys",
        ));
    }
    for (i, k) in t.host_keys.iter().enumerate() {
        if let Err(e) = parse_host_key(k) {
            p.push(Problem::new(format!("target.host_keys[{i}]"), e));
        }
    }
    if t.remote_dir.trim().is_empty() || t.remote_dir.split('/').any(|c| c == "..") {
        p.push(Problem::new(
            "target.remote_dir",
            format!(
                "`{}` is not a usable folder; give the folder on the server, without `..`",
                t.remote_dir
            ),
        ));
    }
    limits::check_range(
        "target.connect_timeout_secs",
        t.connect_timeout_secs,
        limits::CONNECT_TIMEOUT_SECS,
        "seconds to wait for the server to answer",
        &mut p,
    );
    let auth = validate_auth(&t.auth, inherited, &mut p);
    let tuning = validate_tuning(t, &mut p);
    let target = TargetSpec {
        host: t.host.trim().to_string(),
        port: t.port,
        username: t.username.clone(),
        host_keys: t.host_keys.iter().map(|k| k.trim().to_string()).collect(),
        known_hosts: t
            .known_hosts
            .as_ref()
            .map(|k| inherited.secrets_dir.join(k)),
        auth: auth.unwrap_or(AuthSpec::PasswordFile(PathBuf::new())),
        remote_dir: t.remote_dir.trim().to_string(),
        create_dirs: t.create_dirs,
        connect_timeout: Duration::from_secs(t.connect_timeout_secs.unwrap_or(20)),
        io_timeout: Duration::from_secs(
            limits::in_range(
                "target.io_timeout_secs",
                t.io_timeout_secs,
                limits::IO_TIMEOUT_SECS,
                "the seconds one SFTP request may take",
                &mut p,
            )
            .unwrap_or(120),
        ),
        tuning,
    };

    // --- extract ---
    let extract = validate_extract(&raw.extract, &mut p);

    // --- encryption and the personal-data rules ---
    let encrypt = match raw.encryption.mode.as_deref() {
        None | Some("age") => true,
        Some("none") => false,
        Some(other) => {
            p.push(Problem::new(
                "encryption.mode",
                format!("`{other}` is not a mode; use \"age\" (default) or \"none\""),
            ));
            true
        }
    };
    let mut recipients = Vec::new();
    for (i, r) in raw.encryption.recipients.iter().enumerate() {
        match parse_recipient(r) {
            Ok(()) => recipients.push(r.trim().to_string()),
            Err(e) => p.push(Problem::new(format!("encryption.recipients[{i}]"), e)),
        }
    }
    if let Some(x) = &extract {
        let personal: Vec<&str> = x
            .columns
            .iter()
            .filter(|f| f.personal)
            .map(|f| f.name.as_str())
            .collect();
        let identifying = x.columns.iter().any(|f| f.identifying);
        if !personal.is_empty()
            && raw
                .legal_basis
                .as_deref()
                .map(str::trim)
                .unwrap_or("")
                .is_empty()
        {
            p.push(Problem::new(
                "legal_basis",
                format!(
                    "this extract discloses personal data ({}{}); write the customer's legal basis (law and agreement) in legal_basis, or drop the personal columns",
                    personal.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                    if personal.len() > 3 { ", ..." } else { "" }
                ),
            ));
        }
        if !encrypt && (identifying || !personal.is_empty()) {
            p.push(Problem::new(
                "encryption.mode",
                "this report holds identifying or personal fields, which always go out encrypted; remove mode = \"none\" and give age recipients",
            ));
        }
    }
    if encrypt && raw.encryption.recipients.is_empty() {
        p.push(Problem::new(
            "encryption.recipients",
            "no age recipient; add the customer's `age1...` key or `ssh-ed25519 ...` public key",
        ));
    }

    // --- delivery ---
    let d = &raw.delivery;
    let if_exists = match d.if_exists.as_deref().unwrap_or("fail") {
        "fail" => IfExists::Fail,
        "overwrite" => IfExists::Overwrite,
        "version" => IfExists::Version,
        other => {
            p.push(Problem::new(
                "delivery.if_exists",
                format!("`{other}` is not a choice; use \"fail\", \"overwrite\" or \"version\""),
            ));
            IfExists::Fail
        }
    };
    let verify = match d.verify.as_deref().unwrap_or("size") {
        "size" => VerifyLevel::Size,
        "read-back" => VerifyLevel::ReadBack,
        other => {
            p.push(Problem::new(
                "delivery.verify",
                format!("`{other}` is not a level; use \"size\" or \"read-back\""),
            ));
            VerifyLevel::Size
        }
    };
    let file_name = d
        .file_name
        .clone()
        .unwrap_or_else(|| "{id}_{run:%Y%m%dT%H%M}.{ext}".into());
    if let Some(x) = &extract {
        let sample = NameContext {
            id: &raw.id,
            report: x.report.as_str(),
            ext: "dsv.age",
            run: NaiveDate::from_ymd_opt(2026, 12, 31)
                .unwrap()
                .and_hms_opt(23, 59, 0)
                .unwrap(),
            period_start: x.period.map(|_| {
                NaiveDate::from_ymd_opt(2026, 12, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
            }),
            period_end: x.period.map(|_| {
                NaiveDate::from_ymd_opt(2026, 12, 30)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
            }),
        };
        if let Err(e) = template::render(&file_name, &sample) {
            p.push(Problem::new("delivery.file_name", e));
        }
    }

    let retry = inherited.retry.with(&raw.retry);
    limits::retry_problems(&raw.retry, &retry, &mut p);

    if !p.is_empty() {
        return Err(p);
    }
    let Some(schedule) = sched else {
        return Err(vec![Problem::new(
            "schedule",
            "the schedule could not be built; check cron and timezone",
        )]);
    };
    let Some(extract) = extract else {
        return Err(vec![Problem::new(
            "extract",
            "the extract could not be built; check the [extract] table",
        )]);
    };
    Ok(Subscription {
        id: raw.id.clone(),
        customer: raw.customer.trim().to_string(),
        customer_org_number: raw.customer_org_number.clone(),
        case_number: raw.case_number.clone(),
        invoice_reference: raw.invoice_reference.clone(),
        legal_basis: raw.legal_basis.clone().filter(|s| !s.trim().is_empty()),
        contact_email: raw.contact.as_ref().and_then(|c| c.email.clone()),
        contact_mobile: raw.contact.as_ref().and_then(|c| c.mobile.clone()),
        enabled: raw.enabled,
        schedule,
        target,
        extract,
        encryption: EncryptionSpec {
            recipients,
            encrypt,
        },
        delivery: DeliverySpec {
            file_name,
            if_exists,
            verify,
            manifest: d.manifest.unwrap_or(true),
            done_marker: d.done_marker.unwrap_or(false),
        },
        retry,
        source: source.to_path_buf(),
    })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
}

/// Checks an OpenSSH public-key line (`TYPE BASE64 [comment]`).
pub fn parse_host_key(line: &str) -> Result<(), String> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "`{line}` is not an OpenSSH public-key line; paste a line printed by `regdrop hostkey scan` (\"ssh-ed25519 AAAA...\")"
        ));
    };
    match russh::keys::parse_public_key_base64(b64) {
        Ok(k) if k.algorithm().as_str() == kind => Ok(()),
        Ok(k) => Err(format!("the key says `{kind}` but its data is a `{}` key; paste the whole line unchanged", k.algorithm().as_str())),
        Err(_) => Err(format!(
            "the `{kind}` key data does not decode; paste the line printed by `regdrop hostkey scan` unchanged"
        )),
    }
}

/// Checks an age recipient: `age1...` (X25519), `ssh-ed25519 ...` or `ssh-rsa ...`.
pub fn parse_recipient(r: &str) -> Result<(), String> {
    let r = r.trim();
    let ok = if r.starts_with("age1") {
        r.parse::<age::x25519::Recipient>().is_ok()
    } else if r.starts_with("ssh-ed25519 ") || r.starts_with("ssh-rsa ") {
        r.parse::<age::ssh::Recipient>().is_ok()
    } else {
        return Err(format!(
            "`{}` is not an age recipient; use an `age1...` key (from `age-keygen -y`) or an `ssh-ed25519`/`ssh-rsa` public-key line",
            short(r)
        ));
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` does not parse as an age recipient; check it was copied whole",
            short(r)
        ))
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The `[target]` upload overrides: each within its bounds, `commit` one of its words.
fn validate_tuning(t: &RawTarget, p: &mut Vec<Problem>) -> TargetTuning {
    let as_usize = |v: Option<u64>| v.map(|n| n as usize);
    let channels = as_usize(limits::in_range(
        "target.channels",
        t.channels,
        limits::CHANNELS,
        "the number of SFTP channels",
        p,
    ));
    let max_write = as_usize(limits::in_range(
        "target.max_write",
        t.max_write,
        limits::MAX_WRITE,
        "the bytes per WRITE request",
        p,
    ));
    let in_flight = as_usize(limits::in_range(
        "target.in_flight",
        t.in_flight,
        limits::IN_FLIGHT,
        "the WRITE requests in flight per channel",
        p,
    ));
    let commit = match t.commit.as_deref() {
        None | Some("auto") => CommitMode::Auto,
        Some("race-free") => CommitMode::RaceFree,
        Some("hardlink") => CommitMode::Hardlink,
        Some("rename") => CommitMode::Rename,
        Some("checked-rename") => CommitMode::CheckedRename,
        Some(other) => {
            p.push(Problem::new(
                "target.commit",
                format!(
                    "`{other}` is not a commit mode; use \"auto\", \"race-free\", \"hardlink\", \"rename\" or \"checked-rename\""
                ),
            ));
            CommitMode::Auto
        }
    };
    TargetTuning {
        channels,
        max_write,
        in_flight,
        commit,
        fsync: t.fsync.unwrap_or(true),
        posix_rename: t.posix_rename.unwrap_or(true),
    }
}

fn validate_auth(a: &RawAuth, inh: &Inherited, p: &mut Vec<Problem>) -> Option<AuthSpec> {
    if a.password.is_some() {
        p.push(Problem::new(
            "target.auth.password",
            "secrets never go into subscription files; put the password in a 0600 file and set password_file, or use a systemd credential (password_credential)",
        ));
    }
    if a.passphrase.is_some() {
        p.push(Problem::new(
            "target.auth.passphrase",
            "secrets never go into subscription files; put the passphrase in a 0600 file and set passphrase_file",
        ));
    }
    let path = |s: &String| inh.secrets_dir.join(s);
    let chosen = [
        a.key_file.is_some(),
        a.password_file.is_some(),
        a.password_credential.is_some(),
        a.key_credential.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if chosen != 1 {
        if a.password.is_none() && a.passphrase.is_none() || chosen > 1 {
            p.push(Problem::new(
                "target.auth",
                "give exactly one of key_file, password_file, password_credential, key_credential",
            ));
        }
        return None;
    }
    for (name, cred) in [
        ("password_credential", &a.password_credential),
        ("key_credential", &a.key_credential),
    ] {
        if let Some(c) = cred {
            if c.is_empty() || c.contains('/') {
                p.push(Problem::new(format!("target.auth.{name}"), format!("`{c}` is not a credential name (no `/`); it is the NAME of LoadCredential=NAME:PATH")));
            }
        }
    }
    if a.passphrase_file.is_some() && a.key_file.is_none() && a.key_credential.is_none() {
        p.push(Problem::new(
            "target.auth.passphrase_file",
            "a passphrase only makes sense with key_file or key_credential",
        ));
    }
    let passphrase_file = a.passphrase_file.as_ref().map(path);
    Some(if let Some(k) = &a.key_file {
        AuthSpec::KeyFile {
            path: path(k),
            passphrase_file,
        }
    } else if let Some(f) = &a.password_file {
        AuthSpec::PasswordFile(path(f))
    } else if let Some(c) = &a.password_credential {
        AuthSpec::PasswordCredential(c.clone())
    } else {
        AuthSpec::KeyCredential {
            name: a.key_credential.clone().unwrap_or_default(),
            passphrase_file,
        }
    })
}

fn validate_extract(x: &RawExtract, p: &mut Vec<Problem>) -> Option<ExtractSpec> {
    let before = p.len();
    let report = ReportKind::parse(&x.report);
    if report.is_none() {
        p.push(Problem::new(
            "extract.report",
            format!(
                "`{}` is not a report; use one of {}",
                x.report,
                ReportKind::ALL.map(|k| k.as_str()).join(", ")
            ),
        ));
    }
    let all = catalog::all_fields();
    let columns: Vec<Field> = match (report, &x.columns) {
        (Some(ReportKind::Custom), None) => {
            p.push(Problem::new(
                "extract.columns",
                "a custom report needs a columns list (catalog names like \"TEKN_KJM\")",
            ));
            vec![]
        }
        (Some(ReportKind::Custom), Some(cols)) => {
            if cols.is_empty() {
                p.push(Problem::new("extract.columns", "the columns list is empty"));
            }
            let mut out = Vec::new();
            for (i, c) in cols.iter().enumerate() {
                match all.iter().find(|f| &f.name == c) {
                    Some(f) if out.iter().any(|o: &Field| o.name == f.name) => {
                        p.push(Problem::new(
                            format!("extract.columns[{i}]"),
                            format!("`{c}` is listed twice"),
                        ))
                    }
                    Some(f) => out.push(f.clone()),
                    None => p.push(Problem::new(
                        format!("extract.columns[{i}]"),
                        format!(
                            "`{c}` is not a field of the catalog; `regdrop fields` lists them{}",
                            suggest(c, &all)
                        ),
                    )),
                }
            }
            out
        }
        (Some(k), Some(_)) => {
            p.push(Problem::new(
                "extract.columns",
                format!(
                    "the `{}` report has fixed columns; use report = \"custom\" to choose columns",
                    k.as_str()
                ),
            ));
            vec![]
        }
        (Some(k), None) => k.columns().unwrap_or_default(),
        (None, _) => vec![],
    };
    let format = match x.format.as_str() {
        "dsv" => Format::Dsv,
        "csv" => Format::Csv,
        "xlsx" => Format::Xlsx,
        other => {
            p.push(Problem::new(
                "extract.format",
                format!("`{other}` is not a format; use \"dsv\", \"csv\" or \"xlsx\""),
            ));
            Format::Dsv
        }
    };
    let period = match &x.period {
        None => None,
        Some(RawPeriod::Relative(s)) => match s.as_str() {
            "previous_day" => Some(PeriodSpec::PreviousDay),
            "previous_week" => Some(PeriodSpec::PreviousWeek),
            "previous_month" => Some(PeriodSpec::PreviousMonth),
            "since_last_delivery" => Some(PeriodSpec::SinceLastDelivery),
            other => {
                p.push(Problem::new(
                    "extract.period",
                    format!("`{other}` is not a period; use previous_day, previous_week, previous_month, since_last_delivery or {{ from = 2026-01-01, to = 2026-01-31 }}"),
                ));
                None
            }
        },
        Some(RawPeriod::Fixed { from, to }) => {
            let d = |v: &toml::value::Datetime, key: &str, p: &mut Vec<Problem>| match (
                &v.date, &v.time,
            ) {
                (Some(d), None) => {
                    NaiveDate::from_ymd_opt(d.year as i32, d.month as u32, d.day as u32)
                }
                _ => {
                    p.push(Problem::new(
                        format!("extract.period.{key}"),
                        "write a plain date like 2026-01-31 (no time)",
                    ));
                    None
                }
            };
            match (d(from, "from", p), d(to, "to", p)) {
                (Some(f), Some(t)) if f <= t => Some(PeriodSpec::Fixed { from: f, to: t }),
                (Some(_), Some(_)) => {
                    p.push(Problem::new(
                        "extract.period.to",
                        "the period ends before it starts",
                    ));
                    None
                }
                _ => None,
            }
        }
    };
    let period_field = match &x.period_field {
        None => report
            .map(|r| r.default_period_field())
            .unwrap_or(PeriodField::FirstRegistrationNorway),
        Some(s) => PeriodField::parse(s).unwrap_or_else(|| {
            p.push(Problem::new(
                "extract.period_field",
                format!(
                    "`{s}` is not a date field; use one of {}",
                    PeriodField::ALL.map(|f| f.as_str()).join(", ")
                ),
            ));
            PeriodField::FirstRegistrationNorway
        }),
    };
    if x.period_field.is_some() && x.period.is_none() {
        p.push(Problem::new(
            "extract.period_field",
            "period_field has no effect without a period",
        ));
    }
    let filter = validate_filter(&x.filter, p);
    let mut code_tables = Vec::new();
    for (i, name) in x.code_tables.iter().enumerate() {
        match crate::core::codes::CodeTable::parse(name) {
            Some(t) if code_tables.contains(&t) => p.push(Problem::new(
                format!("extract.code_tables[{i}]"),
                format!("`{name}` is listed twice"),
            )),
            Some(t) => code_tables.push(t),
            None => p.push(Problem::new(
                format!("extract.code_tables[{i}]"),
                format!(
                    "`{name}` is not a code table; use one of {}",
                    crate::core::codes::CodeTable::ALL
                        .map(|t| t.as_str())
                        .join(", ")
                ),
            )),
        }
    }
    if report == Some(ReportKind::CodeTables) {
        if x.code_tables.is_empty() {
            p.push(Problem::new(
                "extract.code_tables",
                "report code_tables needs the tables to deliver, e.g. code_tables = [\"make\", \"fuel\"]",
            ));
        }
        if filter != Filter::default() {
            p.push(Problem::new(
                "extract.filter",
                "code tables are delivered whole; remove the filter",
            ));
        }
        if x.period.is_some() {
            p.push(Problem::new(
                "extract.period",
                "code tables have no period; remove it",
            ));
        }
    }
    let has_owner_cols = columns
        .iter()
        .any(|f| matches!(f.source, catalog::Source::Owner(_)));
    if filter.has_owner_filter() && !has_owner_cols && report.is_some() {
        p.push(Problem::new(
            "extract.filter",
            "org_number, municipality and county filter on owners; use report technical_owners or owners (or owner columns in a custom report)",
        ));
    }
    if p.len() > before {
        return None;
    }
    Some(ExtractSpec {
        report: report?,
        code_tables,
        columns,
        format,
        encoding: x.encoding,
        line_ending: x.line_ending,
        period,
        period_field,
        filter,
    })
}

fn suggest(name: &str, all: &[Field]) -> String {
    let up = name.to_ascii_uppercase();
    match all.iter().find(|f| f.name == up || f.name.ends_with(&up)) {
        Some(f) => format!(" (did you mean `{}`?)", f.name),
        None => String::new(),
    }
}

fn validate_filter(f: &RawFilter, p: &mut Vec<Problem>) -> Filter {
    let range = |r: &Option<RawRange>, key: &str, p: &mut Vec<Problem>| {
        r.map(|r| {
            if let (Some(a), Some(b)) = (r.min, r.max) {
                if a > b {
                    p.push(Problem::new(
                        format!("extract.filter.{key}"),
                        format!("min {a} is above max {b}"),
                    ));
                }
            }
            (r.min, r.max)
        })
    };
    let makes = crate::core::codes::CodeTable::Make.rows();
    let mut make_codes = Vec::new();
    for (i, m) in f.make.iter().enumerate() {
        let m = m.trim();
        if let Some((code, _)) = makes
            .iter()
            .find(|(c, n)| c == m || n.eq_ignore_ascii_case(m))
        {
            make_codes.push(code.clone());
        } else {
            let hint = makes
                .iter()
                .find(|(_, n)| n.to_ascii_uppercase().starts_with(&m.to_ascii_uppercase()))
                .map(|(c, n)| format!(" (did you mean {n} = {c}?)"))
                .unwrap_or_default();
            p.push(Problem::new(
                format!("extract.filter.make[{i}]"),
                format!("`{m}` is neither a make code nor a make name of the make table{hint}"),
            ));
        }
    }
    let digits = |list: &Vec<String>, key: &str, len: Option<usize>, p: &mut Vec<Problem>| {
        for (i, v) in list.iter().enumerate() {
            let ok = !v.is_empty()
                && v.chars().all(|c| c.is_ascii_digit())
                && len.is_none_or(|l| v.len() == l);
            if !ok {
                let what = match len {
                    Some(l) => format!("{l} digits"),
                    None => "digits".into(),
                };
                p.push(Problem::new(
                    format!("extract.filter.{key}[{i}]"),
                    format!("`{v}` must be {what} (quote it to keep leading zeros)"),
                ));
            }
        }
    };
    digits(&f.vehicle_group, "vehicle_group", None, p);
    digits(&f.fuel, "fuel", None, p);
    digits(&f.municipality, "municipality", Some(4), p);
    digits(&f.county, "county", Some(2), p);
    for (i, o) in f.org_number.iter().enumerate() {
        if !crate::core::ids::is_valid_org_number(o) {
            p.push(Problem::new(
                format!("extract.filter.org_number[{i}]"),
                format!("`{o}` is not a valid organisation number (9 digits, mod-11)"),
            ));
        }
    }
    Filter {
        first_registration_year: range(&f.first_registration_year, "first_registration_year", p),
        make_codes,
        model: f.model.clone(),
        vehicle_group: f.vehicle_group.clone(),
        fuel: f.fuel.clone(),
        hybrid_category: f.hybrid_category.clone(),
        seats: range(&f.seats, "seats", p),
        status: f.status.iter().map(|s| s.to_ascii_uppercase()).collect(),
        org_number: f.org_number.clone(),
        municipality: f.municipality.clone(),
        county: f.county.clone(),
    }
}
