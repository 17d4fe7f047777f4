//! The store's records: runs, artifacts, attempts, receipts and the filters to list them.
//! Pure: no SQL here.

pub use crate::core::identity::{RunId, SubscriptionId};
use crate::core::retry::Stage;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::error::StoreError;

/// How every timestamp is stored: UTC RFC 3339 with whole seconds and a `Z`
/// (`2026-11-25T06:00:00Z`). Fixed width, so text order is time order.
pub const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Formats a timestamp the way the store keeps it (sub-seconds are dropped).
pub fn fmt_ts(t: DateTime<Utc>) -> String {
    t.format(TS_FORMAT).to_string()
}

/// Parses a stored timestamp.
pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

/// Drops sub-seconds, so what callers get back equals what was stored.
pub fn trunc_ts(t: DateTime<Utc>) -> DateTime<Utc> {
    parse_ts(&fmt_ts(t)).unwrap_or(t)
}

/// A run's id: `<subscription>-<scheduled_at as YYYYMMDDTHHMMSSZ>`, e.g.
/// `acme-parking-20261125T060000Z`. Deterministic, so the same (subscription, fire time)
/// always names the same run, and readable in logs and remote temp names. Subscription ids
/// are validated by config (letters, digits, `-`, `_`), so the id is safe in file names.
pub fn run_id(subscription: &str, scheduled_at: DateTime<Utc>) -> RunId {
    RunId::new(format!(
        "{subscription}-{}",
        scheduled_at.format("%Y%m%dT%H%M%SZ")
    ))
}

/// Where a run is in the delivery protocol (docs/design.md §4).
///
/// `pending -> generated -> sealed -> uploading -> delivered`, with `needs_attention`
/// (a permanent error; an operator must act) and `failed` (given up) on the side.
/// The first four are *active*: a run in them is in progress or must be resumed after a
/// crash, and a subscription has at most one active run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Pending,
    Generated,
    Sealed,
    Uploading,
    Delivered,
    NeedsAttention,
    Failed,
}

impl RunState {
    pub const ALL: [RunState; 7] = [
        RunState::Pending,
        RunState::Generated,
        RunState::Sealed,
        RunState::Uploading,
        RunState::Delivered,
        RunState::NeedsAttention,
        RunState::Failed,
    ];
    pub const ACTIVE: [RunState; 4] = [
        RunState::Pending,
        RunState::Generated,
        RunState::Sealed,
        RunState::Uploading,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Generated => "generated",
            RunState::Sealed => "sealed",
            RunState::Uploading => "uploading",
            RunState::Delivered => "delivered",
            RunState::NeedsAttention => "needs_attention",
            RunState::Failed => "failed",
        }
    }

    pub fn is_active(self) -> bool {
        RunState::ACTIVE.contains(&self)
    }

    /// Whether [`Store::set_state`](super::Store::set_state) may move a run from `self` to
    /// `to`. `delivered` is terminal and is only reached through `commit_receipt` (so there
    /// is never a delivered run without a receipt); anything else may move anywhere, which
    /// lets an operator retry a `failed` or `needs_attention` run.
    pub fn check_move(self, to: RunState) -> Result<(), &'static str> {
        if self == RunState::Delivered {
            Err("a delivered run is final")
        } else if to == RunState::Delivered {
            Err("only commit_receipt marks a run delivered")
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        RunState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run state {s:?}")))
    }
}

/// What the scheduler knows when it creates a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub subscription: SubscriptionId,
    /// The fire time this run belongs to (sub-seconds are dropped).
    pub scheduled_at: DateTime<Utc>,
}

/// The sealed file in the spool and what went into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// The ciphertext in the spool folder.
    pub path: String,
    /// The final remote file name.
    pub file_name: String,
    pub plaintext_sha256: String,
    pub ciphertext_sha256: String,
    pub rows: u64,
    pub plaintext_bytes: u64,
    pub ciphertext_bytes: u64,
    /// The extract's period (ISO 8601 date or date-time, as the extractor states it).
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    /// The format actually written (`dsv`, `csv`, `xlsx`).
    pub format: String,
    /// Set when the format fell back (e.g. xlsx over 1,048,575 rows went out as dsv).
    pub fallback_note: Option<String>,
}

/// A further file sealed for a run beside its artifact (a code table), kept in the store so
/// that retries and restarts upload exactly these files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunFile {
    /// What the file holds (`make`, `load_index`, ...).
    pub code_table: String,
    /// The ciphertext in the spool folder.
    pub path: String,
    /// The remote file name requested.
    pub file_name: String,
    pub rows: u64,
    pub plaintext_sha256: String,
    pub ciphertext_sha256: String,
    pub plaintext_bytes: u64,
    pub ciphertext_bytes: u64,
}

/// A further file delivered in a run beside the main one (a code table), as its receipt
/// records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredFile {
    /// The final remote file name.
    pub name: String,
    pub remote_path: String,
    /// What the file holds (`make`, `load_index`, ...).
    pub code_table: String,
    pub rows: u64,
    /// Bytes delivered (the encrypted file).
    pub bytes: u64,
    /// SHA-256 of the delivered file (what its `.sha256` sidecar says).
    pub sha256: String,
    pub plaintext_sha256: String,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    pub subscription: SubscriptionId,
    pub scheduled_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub state: RunState,
    pub state_reason: Option<String>,
    /// Present once the run was sealed.
    pub artifact: Option<Artifact>,
    pub updated_at: DateTime<Utc>,
}

/// An operator's decision on a run that needed one (`regdrop resolve`): the run is closed,
/// no longer needs attention and is not run again. Kept with the run, never edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    pub run_id: RunId,
    /// The run's state when it was resolved (`needs_attention` or `failed`).
    pub state: RunState,
    #[serde(serialize_with = "ser_ts")]
    pub resolved_at: DateTime<Utc>,
    /// The operating-system user who ran `regdrop resolve` (with `sudo`, `root (sudo alice)`).
    pub os_user: String,
    /// The name given with `--by`, when it was.
    pub resolved_by: Option<String>,
    pub reason: String,
}

impl Resolution {
    /// For people: `2026-12-02T08:00:00Z by kari (as root): REASON`.
    pub fn describe(&self) -> String {
        let by = match &self.resolved_by {
            Some(name) => format!("{name} (as {})", self.os_user),
            None => self.os_user.clone(),
        };
        format!("{} by {by}: {}", fmt_ts(self.resolved_at), self.reason)
    }
}

/// What [`Store::resolve_run`](super::Store::resolve_run) records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResolution {
    pub run_id: RunId,
    pub os_user: String,
    pub resolved_by: Option<String>,
    pub reason: String,
}

/// Result of [`Store::create_run`](super::Store::create_run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCreated {
    /// A new run was recorded.
    Created(Run),
    /// This (subscription, scheduled_at) already had a run: resume it.
    Exists(Run),
}

impl RunCreated {
    pub fn run(&self) -> &Run {
        match self {
            RunCreated::Created(r) | RunCreated::Exists(r) => r,
        }
    }
    pub fn into_run(self) -> Run {
        match self {
            RunCreated::Created(r) | RunCreated::Exists(r) => r,
        }
    }
    pub fn is_new(&self) -> bool {
        matches!(self, RunCreated::Created(_))
    }
}

/// Which runs [`Store::list_runs`](super::Store::list_runs) returns (all set filters apply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub subscription: Option<SubscriptionId>,
    /// Empty: any state.
    pub states: Vec<RunState>,
    /// `scheduled_at >= since`.
    pub since: Option<DateTime<Utc>>,
    /// `scheduled_at < until`.
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Ok,
    Retryable,
    Permanent,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Retryable => "retryable",
            AttemptOutcome::Permanent => "permanent",
        }
    }
}

impl From<crate::core::retry::ErrorClass> for AttemptOutcome {
    fn from(c: crate::core::retry::ErrorClass) -> Self {
        match c {
            crate::core::retry::ErrorClass::Retryable => AttemptOutcome::Retryable,
            crate::core::retry::ErrorClass::Permanent => AttemptOutcome::Permanent,
        }
    }
}

impl FromStr for AttemptOutcome {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "ok" => Ok(AttemptOutcome::Ok),
            "retryable" => Ok(AttemptOutcome::Retryable),
            "permanent" => Ok(AttemptOutcome::Permanent),
            _ => Err(StoreError::Corrupt(format!(
                "unknown attempt outcome {s:?}"
            ))),
        }
    }
}

/// One delivery attempt of a run (1-based `n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub run_id: RunId,
    pub n: u32,
    pub started_at: DateTime<Utc>,
    /// `None` while running (or when the process died during it).
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<AttemptOutcome>,
    /// A short machine label (`connect`, `host_key`, `auth`, ...).
    pub error_class: Option<Stage>,
    pub message: Option<String>,
}

/// What the delivery job hands to [`Store::commit_receipt`](super::Store::commit_receipt).
/// The store adds the id, the attempt count and the chain hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    pub run_id: RunId,
    pub subscription: SubscriptionId,
    pub customer: String,
    pub customer_org_number: Option<String>,
    /// The authority's case number for the subscription.
    pub case_number: Option<String>,
    pub invoice_reference: Option<String>,
    pub report: String,
    pub remote_host: String,
    pub remote_port: u16,
    /// `SHA256:...` fingerprint of the server key that was pinned and seen.
    pub host_key_fingerprint: String,
    pub remote_path: String,
    /// Ciphertext bytes delivered.
    pub bytes: u64,
    pub rows: u64,
    pub plaintext_sha256: String,
    pub ciphertext_sha256: String,
    /// Names of the personal-data fields that went out (empty for none).
    pub personal_fields: Vec<String>,
    pub legal_basis: Option<String>,
    /// The age recipients (or their fingerprints) the file was encrypted to.
    pub recipients: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub delivered_at: DateTime<Utc>,
}

/// A committed, hash-chained receipt. See [`chain`](super::chain) for the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub id: i64,
    pub run_id: RunId,
    pub subscription: SubscriptionId,
    pub customer: String,
    pub customer_org_number: Option<String>,
    pub case_number: Option<String>,
    pub invoice_reference: Option<String>,
    pub report: String,
    pub remote_host: String,
    pub remote_port: u16,
    pub host_key_fingerprint: String,
    pub remote_path: String,
    pub bytes: u64,
    pub rows: u64,
    pub plaintext_sha256: String,
    pub ciphertext_sha256: String,
    pub personal_fields: Vec<String>,
    pub legal_basis: Option<String>,
    pub recipients: Vec<String>,
    pub attempts: u32,
    #[serde(serialize_with = "ser_ts")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "ser_ts")]
    pub delivered_at: DateTime<Utc>,
    /// Further files delivered in the same run (code tables); empty for one-file runs.
    /// Covered by the chain hash (canonical form v2, see [`chain`](super::chain)).
    pub files: Vec<DeliveredFile>,
    /// How the files went out (server, commit path); `None` for receipts written before
    /// schema v4. Covered by the chain hash (canonical form v3).
    pub transport: Option<Transport>,
    pub prev_hash: String,
    pub hash: String,
}

/// How a delivery reached the customer, as the receipt records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Transport {
    /// `sftp` or `email`.
    pub kind: String,
    /// The server's identification line (cleaned), e.g. `SSH-2.0-OpenSSH_9.2p1`.
    pub server: String,
    /// How the temp file became the final file: `posix-rename`, `hardlink`, `rename`,
    /// `checked-rename`, `rename-aside`, or `found` (an earlier attempt's finished file).
    pub commit: String,
    /// Whether the data was fsync'ed on the server.
    pub fsync: bool,
    /// `size` or `read-back`.
    pub verify: String,
    /// E-mail deliveries: the mail and the passphrase SMS. Covered by the chain hash
    /// (canonical form v4); absent for SFTP, whose receipts keep form v3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSent>,
}

/// What the receipt of an e-mail delivery records of the mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EmailSent {
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// The mail's recipients as configured.
    pub to: Vec<String>,
    /// The contact mobile the passphrase went to by SMS, masked (`+47 ••• •• 123`);
    /// `None` when the file was encrypted to age recipients (no SMS).
    pub passphrase_sms_to: Option<String>,
}

/// The state of an e-mail run's sending ([`Store::email_send`](super::Store::email_send)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSend {
    pub run_id: RunId,
    /// The sealed artifact (ciphertext SHA-256) the SMS and the mail belong to.
    pub artifact_sha256: String,
    /// `sms_sent`, `sending` (Message-ID recorded before DATA) or `sent` (the server took it).
    pub state: String,
    /// Masked number the passphrase went to, if one did.
    pub sms_to: Option<String>,
    pub message_id: Option<String>,
    /// The server's reply to the mail (`sent`).
    pub reply: Option<String>,
}

impl Receipt {
    /// Files delivered by this run, the main one included.
    pub fn file_count(&self) -> u64 {
        1 + self.files.len() as u64
    }
    /// Rows of every file of the run.
    pub fn total_rows(&self) -> u64 {
        self.rows + self.files.iter().map(|f| f.rows).sum::<u64>()
    }
    /// Bytes of every file of the run (sidecars not counted).
    pub fn total_bytes(&self) -> u64 {
        self.bytes + self.files.iter().map(|f| f.bytes).sum::<u64>()
    }
}

fn ser_ts<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_ts(*t))
}

/// Which receipts to list or export: `delivered_at` in `[since, until)`, optionally one
/// subscription. [`ReceiptFilter::month`] sets both bounds to a calendar month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptFilter {
    pub subscription: Option<SubscriptionId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl ReceiptFilter {
    /// The calendar month `year-month` in time zone `tz` (finance counts local months; a
    /// delivery at 23:30 UTC on 31 January is in February in Oslo). Use `chrono::Utc` for
    /// UTC months.
    pub fn month<Tz: TimeZone>(
        year: i32,
        month: u32,
        tz: &Tz,
    ) -> Result<ReceiptFilter, StoreError> {
        let (since, until) = month_range(year, month, tz)?;
        Ok(ReceiptFilter {
            subscription: None,
            since: Some(since),
            until: Some(until),
        })
    }

    pub fn subscription(mut self, s: impl Into<SubscriptionId>) -> Self {
        self.subscription = Some(s.into());
        self
    }
}

/// Parses `YYYY-MM` (the CLI's `--month`).
pub fn parse_month(s: &str) -> Result<(i32, u32), StoreError> {
    let bad = || StoreError::Invalid(format!("month {s:?} is not YYYY-MM"));
    let (y, m) = s.split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(bad());
    }
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) {
        return Err(bad());
    }
    Ok((y, m))
}

/// `[first instant of the month, first instant of the next month)` in `tz`, as UTC.
pub fn month_range<Tz: TimeZone>(
    year: i32,
    month: u32,
    tz: &Tz,
) -> Result<(DateTime<Utc>, DateTime<Utc>), StoreError> {
    let start = NaiveDate::from_ymd_opt(year, month, 1)
        .ok_or_else(|| StoreError::Invalid(format!("no month {year}-{month:02}")))?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .ok_or_else(|| StoreError::Invalid(format!("no month after {year}-{month:02}")))?;
    let at_midnight = |d: NaiveDate| {
        let naive = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        // Midnight can fall into a DST gap in a few zones: take the first instant after it.
        tz.from_local_datetime(&naive)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| StoreError::Invalid(format!("no midnight on {d}")))
    };
    Ok((at_midnight(start)?, at_midnight(next)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_deterministic_and_readable() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap();
        assert_eq!(run_id("acme-parking", t), "acme-parking-20261125T060000Z");
    }

    #[test]
    fn timestamps_round_trip_at_second_precision() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
            + chrono::Duration::milliseconds(678);
        assert_eq!(fmt_ts(t), "2026-01-02T03:04:05Z");
        assert_eq!(parse_ts(&fmt_ts(t)).unwrap(), trunc_ts(t));
        assert!(parse_ts("yesterday").is_err());
    }

    #[test]
    fn states_parse_and_delivered_is_only_reached_by_receipt() {
        for s in RunState::ALL {
            assert_eq!(s.as_str().parse::<RunState>().unwrap(), s);
        }
        assert!("done".parse::<RunState>().is_err());
        assert!(RunState::Uploading.check_move(RunState::Delivered).is_err());
        assert!(RunState::Delivered.check_move(RunState::Pending).is_err());
        assert!(RunState::Failed.check_move(RunState::Pending).is_ok());
        assert!(RunState::Pending.is_active() && !RunState::NeedsAttention.is_active());
    }

    #[test]
    fn months_in_utc_and_oslo() {
        let (a, b) = month_range(2026, 12, &Utc).unwrap();
        assert_eq!(fmt_ts(a), "2026-12-01T00:00:00Z");
        assert_eq!(fmt_ts(b), "2027-01-01T00:00:00Z");
        let (a, b) = month_range(2026, 7, &chrono_tz::Europe::Oslo).unwrap();
        assert_eq!(fmt_ts(a), "2026-06-30T22:00:00Z");
        assert_eq!(fmt_ts(b), "2026-07-31T22:00:00Z");
        assert_eq!(parse_month("2026-03").unwrap(), (2026, 3));
        for bad in ["2026-13", "2026-3", "26-03", "2026/03", ""] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
    }
}

// The ids are stored as TEXT.
macro_rules! text_sql {
    ($t:ty) => {
        impl rusqlite::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                self.as_str().to_sql()
            }
        }
        impl rusqlite::types::FromSql for $t {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                String::column_result(v).map(<$t>::from)
            }
        }
    };
}
text_sql!(RunId);
text_sql!(SubscriptionId);

// ... and cross the store's driver layer as text.
macro_rules! text_value {
    ($t:ty) => {
        impl super::db::ToValue for $t {
            fn to_value(&self) -> super::db::Value {
                super::db::Value::Text(self.as_str().to_string())
            }
        }
        impl super::db::FromValue for $t {
            fn from_value(v: &super::db::Value) -> std::result::Result<Self, String> {
                String::from_value(v).map(<$t>::from)
            }
        }
    };
}
text_value!(RunId);
text_value!(SubscriptionId);
