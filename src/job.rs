//! One delivery's work, wiring the adapters: resolve the period, run the extract from the
//! register through the writer and age into the spool, and name the remote file. Used by
//! `extract`, `deliver` and the daemon alike, so all of them produce the same artifact.

use crate::config::template::{self, NameContext};
use crate::config::{Format, Subscription};
use crate::extract::{self, ExtractError, Options};
use crate::period::{self, Period};
use crate::retry::{Classify, ErrorClass};
use crate::seal::{SealError, SealWriter, Sealed};
use chrono::{DateTime, NaiveDate, Utc};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot open the register {path}: {source}; create it with `regdrop register generate` or `regdrop register import`")]
    Register { path: String, source: rusqlite::Error },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("file name: {0}")]
    Name(String),
}

impl Classify for JobError {
    fn class(&self) -> ErrorClass {
        match self {
            JobError::Register { .. } => ErrorClass::Retryable,
            JobError::Extract(e) => e.class(),
            JobError::Seal(e) => e.class(),
            JobError::Name(_) => ErrorClass::Permanent,
        }
    }
}

/// A sealed artifact in the spool, and what it holds.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub sealed: Sealed,
    pub rows: u64,
    pub format: Format,
    pub fallback_note: Option<String>,
    pub period: Option<Period>,
    pub columns: Vec<String>,
    /// The remote file name the template gives for this run.
    pub file_name: String,
}

/// The period a run covers: the subscription's period evaluated on the run's scheduled
/// date in its time zone.
pub fn run_period(sub: &Subscription, scheduled_at: DateTime<Utc>, last_delivered_to: Option<NaiveDate>) -> Option<Period> {
    let local = sub.schedule.local(scheduled_at).date_naive();
    sub.extract.period.map(|p| period::resolve(p, local, last_delivered_to))
}

/// The remote file name for a run.
pub fn file_name(sub: &Subscription, scheduled_at: DateTime<Utc>, period: Option<&Period>, format: Format) -> Result<String, JobError> {
    let ext = if sub.encryption.encrypt { format!("{}.age", format.as_str()) } else { format.as_str().to_string() };
    let ctx = NameContext {
        id: &sub.id,
        report: sub.extract.report.as_str(),
        ext: &ext,
        run: sub.schedule.local(scheduled_at).naive_local(),
        period_start: period.and_then(|p| p.from).map(|d| d.and_hms_opt(0, 0, 0).expect("midnight")),
        period_end: period.map(|p| p.to.and_hms_opt(0, 0, 0).expect("midnight")),
    };
    template::render(&sub.delivery.file_name, &ctx).map_err(JobError::Name)
}

/// Generates and seals the extract of `sub` for the run at `scheduled_at` into `spool`,
/// as `spool/<artifact_name>`.
pub fn generate_and_seal(
    register: &Path,
    spool: &Path,
    artifact_name: &str,
    sub: &Subscription,
    scheduled_at: DateTime<Utc>,
    last_delivered_to: Option<NaiveDate>,
    xlsx_row_limit: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Artifact, JobError> {
    if !register.exists() {
        return Err(JobError::Register {
            path: register.display().to_string(),
            source: rusqlite::Error::InvalidPath(register.to_path_buf()),
        });
    }
    let conn = crate::register::schema::open_ro(register)
        .map_err(|source| JobError::Register { path: register.display().to_string(), source })?;
    let period = run_period(sub, scheduled_at, last_delivered_to);
    crate::seal::ensure_spool(spool)?;
    let mut opts = Options::new(spool);
    if let Some(l) = xlsx_row_limit {
        opts.xlsx_row_limit = l;
    }
    // Count and stream in one read transaction: both see the same register state.
    conn.execute_batch("BEGIN")?;
    let planned = extract::plan(&conn, &sub.extract, period.as_ref(), opts.xlsx_row_limit).map_err(JobError::from)?;
    let format = planned.1;
    let name = file_name(sub, scheduled_at, period.as_ref(), format)?;
    let mut w = SealWriter::create(spool, artifact_name, &sub.encryption.recipients, sub.encryption.encrypt)?;
    let outcome = extract::run(&conn, &sub.extract, period.as_ref(), planned, &mut w, &opts, progress)?;
    let sealed = w.finish()?;
    conn.execute_batch("COMMIT")?;
    Ok(Artifact {
        sealed,
        rows: outcome.rows,
        format: outcome.format,
        fallback_note: outcome.fallback_note,
        period,
        columns: outcome.columns,
        file_name: name,
    })
}

impl From<rusqlite::Error> for JobError {
    fn from(e: rusqlite::Error) -> Self {
        JobError::Extract(ExtractError::Sql(e))
    }
}
