//! A run's artifact: the extract of a [`RunPlan`] from the register through the writer and
//! age into the spool, with the code tables beside it. Used by `extract`, `deliver` and the
//! daemon alike, so all of them produce the same artifact.

use crate::core::codes::CodeTable;
use crate::core::config::location::DbLocation;
use crate::core::config::Format;
use crate::core::period::Period;
use crate::core::plan::{PlanError, PlannedTable, RunPlan};
use crate::core::retry::{Classify, ErrorClass, Stage};
use crate::extract::source::OpenError;
use crate::extract::{self, ExtractError, Options, Register};
use crate::seal::{Key, Piped, SealError, SealWriter, Sealed};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot open the register {location} (create it with `regdrop register generate` or `regdrop register import`)")]
    Register {
        /// The file, or the URL without its password.
        location: String,
        source: OpenError,
    },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl Classify for JobError {
    fn class(&self) -> ErrorClass {
        match self {
            // Busy or a full disk may pass; not a database, corrupt, missing, wrong schema
            // will not.
            JobError::Register { source, .. } => source.class(),
            JobError::Extract(e) => e.class(),
            JobError::Seal(e) => e.class(),
            JobError::Plan(_) => ErrorClass::Permanent,
        }
    }
}

impl JobError {
    /// A short label for the attempts table: where the run stopped.
    pub fn label(&self) -> Stage {
        match self {
            JobError::Register { .. } => Stage::Register,
            JobError::Extract(ExtractError::Sql(_) | ExtractError::Postgres(_)) => Stage::Register,
            JobError::Extract(ExtractError::Io(_)) => Stage::Spool,
            JobError::Extract(_) => Stage::Extract,
            JobError::Seal(SealError::Spool { .. } | SealError::Write { .. }) => Stage::Spool,
            JobError::Seal(SealError::NoRecipients) => Stage::Config,
            JobError::Plan(_) => Stage::FileName,
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
    /// The remote file name the plan gives for the format the extract came out in.
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

/// Where artifacts are made: the register they read and the spool they are sealed into.
#[derive(Debug, Clone, Copy)]
pub struct Workshop<'a> {
    pub register: &'a DbLocation,
    pub spool: &'a Path,
    /// Above this many rows xlsx falls back to dsv (Excel's limit unless lowered in tests).
    pub xlsx_row_limit: Option<u64>,
    /// `[encryption] mode = "passphrase"`: the passphrase made for this delivery, which
    /// every file of the run is sealed with (instead of the plan's recipients).
    pub passphrase: Option<&'a age::secrecy::SecretString>,
}

/// What the files of `plan` are sealed to in `at`.
fn key_of<'a>(
    plan: &'a RunPlan,
    passphrase: Option<&'a age::secrecy::SecretString>,
) -> Result<Key<'a>, JobError> {
    if plan.encryption.passphrase {
        return passphrase
            .map(Key::Passphrase)
            .ok_or(JobError::Seal(SealError::NoRecipients));
    }
    Ok(if plan.encryption.encrypt {
        Key::Recipients(&plan.encryption.recipients)
    } else {
        Key::Plain
    })
}

/// Seals one code table into `spool/<artifact_name>`.
fn seal_code_table(
    spool: &Path,
    artifact_name: &str,
    key: Key<'_>,
    plan: &RunPlan,
    table: CodeTable,
    opts: &Options<'_>,
) -> Result<(Sealed, u64), JobError> {
    let mut w = SealWriter::create_with(spool, artifact_name, key)?;
    let outcome = extract::write_code_table(table, &plan.extract, &mut w, opts)?;
    Ok((w.finish()?, outcome.rows))
}

/// Seals every planned table as `spool/<artifact_name>.<table>`.
fn seal_extras(
    spool: &Path,
    artifact_name: &str,
    key: Key<'_>,
    plan: &RunPlan,
    tables: &[PlannedTable],
    opts: &Options<'_>,
) -> Result<Vec<ExtraArtifact>, JobError> {
    let mut done: Vec<ExtraArtifact> = Vec::with_capacity(tables.len());
    for t in tables {
        let name = format!("{artifact_name}.{}", t.table.as_str());
        match seal_code_table(spool, &name, key, plan, t.table, opts) {
            Ok((sealed, rows)) => done.push(ExtraArtifact {
                table: t.table,
                sealed,
                rows,
                file_name: t.file_name.clone(),
            }),
            // None of a failed run's files stays in the spool.
            Err(e) => {
                done.iter().for_each(|x| discard(&x.sealed.path));
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// Removes a sealed file of a run that failed after sealing it (best effort: a leftover is
/// overwritten by the next attempt's file of the same name).
fn discard(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a sealed file of a failed run");
    }
}

/// Generates and seals the extract of `plan` into the workshop's spool, as
/// `spool/<artifact_name>`.
pub fn generate_and_seal(
    at: Workshop<'_>,
    artifact_name: &str,
    plan: &RunPlan,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Artifact, JobError> {
    generate_and_seal_followed(at, artifact_name, plan, progress, None)
}

/// Upload while sealing: what the sealing of the main file tells a reader that follows
/// the spool file as it grows (`delivery::stream`). Code tables are not followed.
pub struct Follow {
    /// Given a reader of the spool file once it is made.
    pub opened: Box<dyn FnOnce(std::fs::File) + Send>,
    /// Told after every write how many ciphertext bytes the spool file holds.
    pub written: crate::seal::OnWritten,
}

/// [`generate_and_seal`], the main file followed by `follow` while it is sealed.
pub fn generate_and_seal_followed(
    at: Workshop<'_>,
    artifact_name: &str,
    plan: &RunPlan,
    progress: &mut dyn FnMut(u64, u64),
    follow: Option<Follow>,
) -> Result<Artifact, JobError> {
    let Workshop {
        register,
        spool,
        xlsx_row_limit,
        passphrase,
    } = at;
    let key = key_of(plan, passphrase)?;
    if !plan.reads_register() {
        return seal_code_tables_only(spool, artifact_name, key, plan);
    }
    let source = Register::open(register).map_err(|source| JobError::Register {
        location: register.to_string(),
        source,
    })?;
    crate::seal::ensure_spool(spool)?;
    let mut opts = Options::new(spool);
    if let Some(l) = xlsx_row_limit {
        opts.xlsx_row_limit = l;
    }
    // Count and stream in one snapshot: both see the same register state.
    let snap = source.snapshot()?;
    let planned = extract::plan(
        &snap,
        &plan.extract,
        plan.period.as_ref(),
        opts.xlsx_row_limit,
    )
    .map_err(JobError::from)?;
    let files = plan.files(planned.1);
    // Rows are produced on this thread and sealed on another (both cores busy).
    let mut sealer = SealWriter::create_with(spool, artifact_name, key)?;
    if let Some(f) = follow {
        (f.opened)(sealer.follow(f.written)?);
    }
    let mut w = Piped::new(sealer);
    let outcome = match extract::run(
        &snap,
        &plan.extract,
        plan.period.as_ref(),
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
    // The read ends before the file is final: a failed COMMIT (a PostgreSQL register's
    // connection lost at the last moment) abandons the pipe, which removes the file (and
    // waits for that, so nothing is left when the error comes back).
    if let Err(e) = snap.end() {
        let _ = w.abandon();
        return Err(e.into());
    }
    tracing::debug!(
        rows = outcome.rows,
        readers = outcome.readers,
        "Register read."
    );
    let sealed = w.finish()?;
    let extras = seal_extras(spool, artifact_name, key, plan, &files.extras, &opts)
        .inspect_err(|_| discard(&sealed.path))?;
    Ok(Artifact {
        sealed,
        rows: outcome.rows,
        format: outcome.format,
        fallback_note: outcome.fallback_note,
        period: plan.period,
        columns: outcome.columns,
        file_name: files.main.clone(),
        extras,
    })
}

/// Report `code_tables`: no register read; the first table is the main artifact, the
/// others are extras (the plan names them all).
fn seal_code_tables_only(
    spool: &Path,
    artifact_name: &str,
    key: Key<'_>,
    plan: &RunPlan,
) -> Result<Artifact, JobError> {
    let format = plan.extract.format;
    let files = plan.files(format);
    let first = files.main_table.ok_or(PlanError::NoCodeTable)?;
    crate::seal::ensure_spool(spool)?;
    let opts = Options::new(spool);
    let (sealed, rows) = seal_code_table(spool, artifact_name, key, plan, first, &opts)?;
    let extras = seal_extras(spool, artifact_name, key, plan, &files.extras, &opts)?;
    Ok(Artifact {
        sealed,
        rows,
        format,
        fallback_note: None,
        period: plan.period,
        columns: extract::code_table_fields()
            .into_iter()
            .map(|f| f.name)
            .collect(),
        file_name: files.main.clone(),
        extras,
    })
}

impl From<rusqlite::Error> for JobError {
    fn from(e: rusqlite::Error) -> Self {
        JobError::Extract(ExtractError::Sql(e))
    }
}
