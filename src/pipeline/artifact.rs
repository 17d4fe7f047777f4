//! One delivery's work, wiring the adapters: resolve the period, run the extract from the
//! register through the writer and age into the spool, and name the remote file. Used by
//! `extract`, `deliver` and the daemon alike, so all of them produce the same artifact.

use crate::core::catalog::ReportKind;
use crate::core::codes::CodeTable;
use crate::core::config::template::{self, NameContext};
use crate::core::config::{Format, Subscription};
use crate::core::period::{self, Period};
use crate::core::retry::{Classify, ErrorClass};
use crate::extract::{self, ExtractError, Options};
use crate::seal::{Piped, SealError, SealWriter, Sealed};
use chrono::{DateTime, NaiveDate, Utc};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot open the register {path}: {source}; create it with `regdrop register generate` or `regdrop register import`")]
    Register {
        path: String,
        source: rusqlite::Error,
    },
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
            // Busy or a full disk may pass; not a database, corrupt, missing, wrong schema
            // will not.
            JobError::Register { source, .. } => crate::extract::sqlite_class(source),
            JobError::Extract(e) => e.class(),
            JobError::Seal(e) => e.class(),
            JobError::Name(_) => ErrorClass::Permanent,
        }
    }
}

impl JobError {
    /// A short label for the attempts table: where the run stopped.
    pub fn label(&self) -> &'static str {
        match self {
            JobError::Register { .. } => "register",
            JobError::Extract(ExtractError::Sql(_)) => "register",
            JobError::Extract(ExtractError::Io(_)) => "spool",
            JobError::Extract(_) => "extract",
            JobError::Seal(SealError::Spool { .. } | SealError::Write { .. }) => "spool",
            JobError::Seal(_) => "config",
            JobError::Name(_) => "file_name",
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
    /// Code tables sealed beside the report (for report `code_tables`: every table after
    /// the first, which is the main artifact). Uploaded before the main file.
    pub extras: Vec<ExtraArtifact>,
}

/// One code table sealed into the spool beside the main artifact.
#[derive(Debug, Clone)]
pub struct ExtraArtifact {
    pub table: CodeTable,
    pub sealed: Sealed,
    pub rows: u64,
    /// The remote file name: the main file's name with `_<table>` before the extension.
    pub file_name: String,
}

/// The extension of a delivered file: the format's, plus `.age` when encrypted.
fn extension_of(sub: &Subscription, format: Format) -> String {
    if sub.encryption.encrypt {
        format!("{}.age", format.as_str())
    } else {
        format.as_str().to_string()
    }
}

/// The remote name of a code table delivered beside `main_name` (whose extension is
/// `main_ext`): `MVR_20261125.dsv.age` -> `MVR_20261125_merkekode.dsv.age`.
pub fn code_table_file_name(
    main_name: &str,
    main_ext: &str,
    table: CodeTable,
    ext: &str,
) -> String {
    let stem = main_name
        .strip_suffix(&format!(".{main_ext}"))
        .unwrap_or(main_name);
    format!("{stem}_{}.{ext}", table.file_stem())
}

/// Seals one code table into `spool/<artifact_name>`.
fn seal_code_table(
    spool: &Path,
    artifact_name: &str,
    sub: &Subscription,
    table: CodeTable,
    opts: &Options,
) -> Result<(Sealed, u64), JobError> {
    let mut w = SealWriter::create(
        spool,
        artifact_name,
        &sub.encryption.recipients,
        sub.encryption.encrypt,
    )?;
    let outcome = extract::write_code_table(table, &sub.extract, &mut w, opts)?;
    Ok((w.finish()?, outcome.rows))
}

/// Seals every table of `tables` as `spool/<artifact_name>.<table>`, named after `main_name`.
fn seal_extras(
    spool: &Path,
    artifact_name: &str,
    sub: &Subscription,
    tables: &[CodeTable],
    main_name: &str,
    main_ext: &str,
    opts: &Options,
) -> Result<Vec<ExtraArtifact>, JobError> {
    let ext = extension_of(sub, sub.extract.format);
    tables
        .iter()
        .map(|&table| {
            let (sealed, rows) = seal_code_table(
                spool,
                &format!("{artifact_name}.{}", table.as_str()),
                sub,
                table,
                opts,
            )?;
            Ok(ExtraArtifact {
                table,
                sealed,
                rows,
                file_name: code_table_file_name(main_name, main_ext, table, &ext),
            })
        })
        .collect()
}

/// The period a run covers: the subscription's period evaluated on the run's scheduled
/// date in its time zone.
pub fn run_period(
    sub: &Subscription,
    scheduled_at: DateTime<Utc>,
    last_delivered_to: Option<NaiveDate>,
) -> Option<Period> {
    let local = sub.schedule.local(scheduled_at).date_naive();
    sub.extract
        .period
        .map(|p| period::resolve(p, local, last_delivered_to))
}

/// The remote file name for a run.
pub fn file_name(
    sub: &Subscription,
    scheduled_at: DateTime<Utc>,
    period: Option<&Period>,
    format: Format,
) -> Result<String, JobError> {
    let ext = extension_of(sub, format);
    let ctx = NameContext {
        id: &sub.id,
        report: sub.extract.report.as_str(),
        ext: &ext,
        run: sub.schedule.local(scheduled_at).naive_local(),
        period_start: period
            .and_then(|p| p.from)
            .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight")),
        period_end: period.map(|p| p.to.and_hms_opt(0, 0, 0).expect("midnight")),
    };
    template::render(&sub.delivery.file_name, &ctx).map_err(JobError::Name)
}

/// Where artifacts are made: the register they read and the spool they are sealed into.
#[derive(Debug, Clone, Copy)]
pub struct Workshop<'a> {
    pub register: &'a Path,
    pub spool: &'a Path,
    /// Above this many rows xlsx falls back to dsv (Excel's limit unless lowered in tests).
    pub xlsx_row_limit: Option<u64>,
}

/// Generates and seals the extract of `sub` for the run at `scheduled_at` into the
/// workshop's spool, as `spool/<artifact_name>`.
pub fn generate_and_seal(
    at: Workshop,
    artifact_name: &str,
    sub: &Subscription,
    scheduled_at: DateTime<Utc>,
    last_delivered_to: Option<NaiveDate>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Artifact, JobError> {
    let Workshop {
        register,
        spool,
        xlsx_row_limit,
    } = at;
    if sub.extract.report == ReportKind::CodeTables {
        return seal_code_tables_only(spool, artifact_name, sub, scheduled_at, last_delivered_to);
    }
    if !register.exists() {
        return Err(JobError::Register {
            path: register.display().to_string(),
            source: rusqlite::Error::InvalidPath(register.to_path_buf()),
        });
    }
    let conn = crate::register::schema::open_ro(register).map_err(|source| JobError::Register {
        path: register.display().to_string(),
        source,
    })?;
    let period = run_period(sub, scheduled_at, last_delivered_to);
    crate::seal::ensure_spool(spool)?;
    let mut opts = Options::new(spool);
    if let Some(l) = xlsx_row_limit {
        opts.xlsx_row_limit = l;
    }
    // Count and stream in one read transaction: both see the same register state.
    conn.execute_batch("BEGIN")?;
    let planned = extract::plan(&conn, &sub.extract, period.as_ref(), opts.xlsx_row_limit)
        .map_err(JobError::from)?;
    let format = planned.1;
    let name = file_name(sub, scheduled_at, period.as_ref(), format)?;
    // Rows are produced on this thread and sealed on another (both cores busy).
    let mut w = Piped::new(SealWriter::create(
        spool,
        artifact_name,
        &sub.encryption.recipients,
        sub.encryption.encrypt,
    )?);
    let outcome = match extract::run(
        &conn,
        &sub.extract,
        period.as_ref(),
        planned,
        &mut w,
        &opts,
        progress,
    ) {
        Ok(o) => o,
        // A sealing failure (full disk) shows upstream as a broken pipe: report the cause.
        Err(e) => {
            return Err(w
                .abandon()
                .map(JobError::Seal)
                .unwrap_or(JobError::Extract(e)))
        }
    };
    let sealed = w.finish()?;
    conn.execute_batch("COMMIT")?;
    let extras = seal_extras(
        spool,
        artifact_name,
        sub,
        &sub.extract.code_tables,
        &name,
        &extension_of(sub, format),
        &opts,
    )?;
    Ok(Artifact {
        sealed,
        rows: outcome.rows,
        format: outcome.format,
        fallback_note: outcome.fallback_note,
        period,
        columns: outcome.columns,
        file_name: name,
        extras,
    })
}

/// Report `code_tables`: no register read; the first table is the main artifact (named
/// like any code table, after the file-name template), the others are extras.
fn seal_code_tables_only(
    spool: &Path,
    artifact_name: &str,
    sub: &Subscription,
    scheduled_at: DateTime<Utc>,
    last_delivered_to: Option<NaiveDate>,
) -> Result<Artifact, JobError> {
    let (first, rest) = sub
        .extract
        .code_tables
        .split_first()
        .ok_or_else(|| JobError::Name("report code_tables lists no code table".into()))?;
    crate::seal::ensure_spool(spool)?;
    let opts = Options::new(spool);
    let period = run_period(sub, scheduled_at, last_delivered_to);
    let format = sub.extract.format;
    let base = file_name(sub, scheduled_at, period.as_ref(), format)?;
    let ext = extension_of(sub, format);
    let (sealed, rows) = seal_code_table(spool, artifact_name, sub, *first, &opts)?;
    let extras = seal_extras(spool, artifact_name, sub, rest, &base, &ext, &opts)?;
    Ok(Artifact {
        sealed,
        rows,
        format,
        fallback_note: None,
        period,
        columns: extract::code_table_fields()
            .into_iter()
            .map(|f| f.name)
            .collect(),
        file_name: code_table_file_name(&base, &ext, *first, &ext),
        extras,
    })
}

impl From<rusqlite::Error> for JobError {
    fn from(e: rusqlite::Error) -> Self {
        JobError::Extract(ExtractError::Sql(e))
    }
}
