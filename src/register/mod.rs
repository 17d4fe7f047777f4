//! The register source: the SQLite schema, import of the authority's technical DSV dump, the
//! synthetic generator, identifier rules and summary statistics.
//!
//! # Modules
//! - [`schema`]: tables, indexes, code tables (`data/*.csv`), opening read-write/read-only.
//! - [`pg`]: the same register on PostgreSQL: schema, `COPY` loads, metadata.
//! - [`ids`] (pure): organisation numbers, fødselsnumre/D-numbers and birth dates, plate
//!   shapes, VINs.
//! - [`refdata`] (pure): embedded municipalities, postal codes, names and street names used
//!   for synthetic people and organisations.
//! - [`generate`]: a deterministic, realistic synthetic register (`--vehicles N --seed S`)
//!   fast enough for the real fleet's size (4 million vehicles).
//! - [`import`]: streaming loader for the authority's `¤`-separated technical dump
//!   (UTF-8 or ISO-8859-1, LF or CRLF); unreadable rows are reported with line number and
//!   reason, never dropped silently.
//! - [`stats`]: counts for operators (`regdrop register stats`).
//!
//! All technical values are stored as TEXT exactly as the authority writes them; NULL means
//! an empty field. Only ownership rows with `to_date IS NULL` are current.

pub mod generate;
pub mod import;
pub mod pg;
pub mod refdata;
pub mod schema;
pub mod stats;

pub use generate::{generate, generate_postgres, GenerateOptions, GenerateSummary};
pub use import::{import, import_postgres, ImportOptions, ImportSummary, Rejected};
pub use stats::{stats, RegisterStats};

use std::path::PathBuf;

impl From<crate::pgconn::WorkerError> for RegisterError {
    fn from(e: crate::pgconn::WorkerError) -> Self {
        RegisterError::Postgres(e)
    }
}

/// Everything that can go wrong in the register adapter.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// SQLite refused an operation.
    #[error("register database")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL register failed (the text ends with what to do, when known).
    #[error("the PostgreSQL register: {}{}", .0, .0.hint_suffix(crate::pgconn::Use::Register))]
    Postgres(crate::pgconn::WorkerError),
    /// Reading an input file failed.
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The dump has no header line.
    #[error("{path}: the file is empty (no header line)")]
    EmptyFile { path: PathBuf },
    /// The dump's header lacks a column the register needs.
    #[error("{path}: header has no {column} column")]
    MissingColumn { path: PathBuf, column: String },
    /// The dump's header cannot be read (not UTF-8 when UTF-8 was chosen, duplicate names).
    #[error("{path}: bad header: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    /// Options that cannot be honoured.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The generator's worker thread stopped unexpectedly.
    #[error("generator thread failed: {0}")]
    Worker(String),
}
