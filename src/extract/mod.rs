//! Extracts: run a report over the register and stream its rows through a writer
//! (`dsv` | `csv` | `xlsx`) into any `Write` (in a delivery: the sealing pipeline).

pub mod parallel;
pub mod query;
pub mod source;
pub mod writers;

use crate::core::catalog::Field;
use crate::core::config::{ExtractSpec, Format};
use crate::core::period::Period;
use crate::core::retry::{Classify, ErrorClass};
pub use source::{Register, Snapshot};
use std::io::Write;
use std::path::Path;
use writers::XLSX_MAX_DATA_ROWS;

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("register query failed (check that the register file is a regdrop register: `regdrop register stats`)")]
    Sql(#[from] rusqlite::Error),
    /// The PostgreSQL register failed (the cause says how; a lost connection retries).
    #[error("the PostgreSQL register: {}{}", .0, .0.hint_suffix(crate::pgconn::Use::Register))]
    Postgres(crate::pgconn::WorkerError),
    #[error(transparent)]
    Nul(#[from] query::NulInValue),
    #[error("row {row}, field {field}: {problem}")]
    Value {
        row: u64,
        field: String,
        problem: String,
    },
    #[error("writing the extract")]
    Io(#[from] std::io::Error),
    #[error("building the workbook: {0}")]
    Xlsx(String),
}

impl Classify for ExtractError {
    fn class(&self) -> ErrorClass {
        match self {
            ExtractError::Sql(e) => sqlite_class(e),
            ExtractError::Postgres(e) => e.class(),
            ExtractError::Io(_) => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        }
    }
}

/// Whether a register error can pass: busy, locked, out of memory or disk, an I/O error
/// retry; a file that is not a database, is corrupt or truncated, is missing or has the
/// wrong schema (`no such table`) needs an operator.
pub fn sqlite_class(e: &rusqlite::Error) -> ErrorClass {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(
            C::DatabaseBusy | C::DatabaseLocked | C::DiskFull | C::OutOfMemory | C::SystemIoFailure,
        ) => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
}

/// Knobs of an extract run.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// Above this many data rows an xlsx extract falls back to dsv. Excel's limit by
    /// default; lowered in tests.
    pub xlsx_row_limit: u64,
    /// Where xlsx keeps its temporary sheet data (the 0700 spool folder).
    pub tempdir: &'a Path,
    /// Readers of a dsv or csv extract ([`parallel`]: threads on a SQLite register,
    /// connections to a PostgreSQL one); 1 reads on the calling thread. One per core (at
    /// most [`parallel::MAX_THREADS`]) by default.
    pub threads: usize,
    /// Extracts of fewer rows read on one thread. Lowered in tests.
    pub parallel_min_rows: u64,
    /// Rows per block of a parallel read of a PostgreSQL register
    /// ([`parallel::postgres::BLOCK_ROWS`]; a read of one block reads on one connection).
    /// Lowered in tests.
    pub pg_block_rows: u64,
}

/// Below this many rows an extract reads on one thread (a few blocks' worth).
pub const PARALLEL_MIN_ROWS: u64 = 8 * parallel::BLOCK_ROWS;

impl<'a> Options<'a> {
    pub fn new(tempdir: &'a Path) -> Self {
        Options {
            xlsx_row_limit: XLSX_MAX_DATA_ROWS,
            tempdir,
            threads: parallel::default_threads(),
            parallel_min_rows: PARALLEL_MIN_ROWS,
            pg_block_rows: parallel::postgres::BLOCK_ROWS,
        }
    }
}

/// What an extract produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub rows: u64,
    /// The format actually written (xlsx falls back to dsv above the row limit).
    pub format: Format,
    /// Says why the format differs from the subscription's, when it does.
    pub fallback_note: Option<String>,
    pub columns: Vec<String>,
    /// The threads that read the register's rows ([`parallel`]; 1: the calling thread).
    pub readers: usize,
}

/// Counts the rows an extract will have (in `snap`, the read its rows will come from), and
/// decides the format.
pub fn plan(
    snap: &Snapshot<'_>,
    spec: &ExtractSpec,
    period: Option<&Period>,
    limit: u64,
) -> Result<(u64, Format, Option<String>), ExtractError> {
    let q = query::build(spec, period, snap.dialect());
    let total = snap.count(&q)?;
    if spec.format == Format::Xlsx && total > limit {
        let note = format!(
            "{total} rows exceed the xlsx limit of {limit} data rows; delivered as dsv (¤-separated) instead"
        );
        return Ok((total, Format::Dsv, Some(note)));
    }
    Ok((total, spec.format, None))
}

/// The file extension of a format.
pub fn extension(format: Format) -> &'static str {
    format.as_str()
}

/// Runs the extract into `out` in `snap` (the read [`plan`] counted in). `progress(rows_done,
/// rows_total)` is called now and then.
pub fn run<W: Write + Send>(
    snap: &Snapshot<'_>,
    spec: &ExtractSpec,
    period: Option<&Period>,
    planned: (u64, Format, Option<String>),
    out: W,
    opts: &Options<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, ExtractError> {
    let (total, format, fallback_note) = planned;
    let q = query::build(spec, period, snap.dialect());
    let mut out = out;
    if parallel::pays(format, opts.threads, total, opts.parallel_min_rows) {
        if let Some((rows, readers)) =
            run_parallel(snap, &q, spec, format, total, &mut out, opts, progress)?
        {
            progress(rows, total);
            return Ok(Outcome {
                rows,
                format,
                fallback_note,
                columns: spec.columns.iter().map(|f| f.name.clone()).collect(),
                readers,
            });
        }
    }
    let mut writer = writers::any(format, out, spec.encoding, spec.line_ending, opts.tempdir)?;
    writer.header(&spec.columns)?;
    let rows = snap.stream(
        &q,
        &spec.columns,
        |row, values| writer.row(row, values),
        total,
        progress,
    )?;
    writer.finish()?;
    progress(rows, total);
    Ok(Outcome {
        rows,
        format,
        fallback_note,
        columns: spec.columns.iter().map(|f| f.name.clone()).collect(),
        readers: 1,
    })
}

/// [`run`] on [`parallel`] readers: the header here, the rows from the readers. `None`:
/// nothing written, read on one thread.
#[allow(clippy::too_many_arguments)]
fn run_parallel<W: Write>(
    snap: &Snapshot<'_>,
    q: &query::Query,
    spec: &ExtractSpec,
    format: Format,
    total: u64,
    out: &mut W,
    opts: &Options<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<(u64, usize)>, ExtractError> {
    let mut header = Vec::new();
    {
        let mut w = writers::text(format, &mut header, spec.encoding, spec.line_ending);
        w.header(&spec.columns)?;
        w.finish()?;
    }
    // The readers open their connections first: only a read they can share writes anything.
    let mut started = false;
    let mut sink = HeaderFirst {
        out: &mut *out,
        header: &header,
        started: &mut started,
    };
    let split = parallel::Split {
        threads: opts.threads,
        pg_block_rows: opts.pg_block_rows,
    };
    let rows = parallel::stream(snap, q, spec, format, split, total, &mut sink, progress)?;
    if rows.is_some() {
        sink.start()?;
        out.flush().map_err(ExtractError::Io)?;
    }
    Ok(rows)
}

/// A writer that puts `header` before the first bytes.
struct HeaderFirst<'a, W: Write> {
    out: &'a mut W,
    header: &'a [u8],
    started: &'a mut bool,
}

impl<W: Write> HeaderFirst<'_, W> {
    fn start(&mut self) -> std::io::Result<()> {
        if !*self.started {
            *self.started = true;
            self.out.write_all(self.header)?;
        }
        Ok(())
    }
}

impl<W: Write> Write for HeaderFirst<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.start()?;
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The two columns of a delivered code table.
pub fn code_table_fields() -> Vec<Field> {
    [("kode", "Kode"), ("navn", "Navn")]
        .into_iter()
        .map(|(name, title)| Field {
            name: name.to_string(),
            title,
            kind: crate::core::catalog::FieldKind::Text,
            source: crate::core::catalog::Source::Code,
            personal: false,
            identifying: false,
            sql: String::new(),
        })
        .collect()
}

/// Writes one code table (`kode`, `navn`) in the subscription's format, encoding and line
/// ending into `out`. xlsx keeps codes as text (leading zeros).
pub fn write_code_table<W: Write + Send>(
    table: crate::core::codes::CodeTable,
    spec: &ExtractSpec,
    out: W,
    opts: &Options<'_>,
) -> Result<Outcome, ExtractError> {
    let fields = code_table_fields();
    let mut writer = writers::any(
        spec.format,
        out,
        spec.encoding,
        spec.line_ending,
        opts.tempdir,
    )?;
    writer.header(&fields)?;
    let mut rows = 0;
    for (code, name) in table.rows() {
        rows += 1;
        writer.row(rows, &[Some(&code), Some(&name)])?;
    }
    writer.finish()?;
    Ok(Outcome {
        rows,
        format: spec.format,
        fallback_note: None,
        columns: fields.into_iter().map(|f| f.name).collect(),
        readers: 1,
    })
}

/// Runs `q` in `snap` and hands each row's values (as text) to `each`.
pub fn stream_rows(
    snap: &Snapshot<'_>,
    q: &query::Query,
    columns: &[Field],
    each: impl FnMut(u64, &[Option<&str>]) -> Result<(), ExtractError>,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, ExtractError> {
    snap.stream(q, columns, each, total, progress)
}

/// A preview: the row count and the first `limit` rows as text, personal fields masked.
pub fn preview(
    snap: &Snapshot<'_>,
    spec: &ExtractSpec,
    period: Option<&Period>,
    limit: usize,
) -> Result<(u64, Vec<Vec<String>>), ExtractError> {
    let (total, _, _) = plan(snap, spec, period, u64::MAX)?;
    let mut q = query::build(spec, period, snap.dialect());
    q.select.push_str(&format!(" LIMIT {limit}"));
    let mut out = Vec::new();
    snap.stream(
        &q,
        &spec.columns,
        |_, values| {
            out.push(
                values
                    .iter()
                    .zip(&spec.columns)
                    .map(|(v, f)| match v {
                        None => String::new(),
                        Some(s) if f.personal && !s.is_empty() => mask(s),
                        Some(s) => s.to_string(),
                    })
                    .collect(),
            );
            Ok(())
        },
        total,
        &mut |_, _| {},
    )?;
    Ok((total, out))
}

/// Masks a personal value: first character, then `*` for the rest.
pub fn mask(s: &str) -> String {
    let mut c = s.chars();
    let first = c.next().map(String::from).unwrap_or_default();
    format!("{first}{}", "*".repeat(c.count().min(8)))
}
