//! Import of the authority's technical DSV dump (`MVR_TECH_DATA`): a header line of `TEKN_*`
//! names, `¤`-separated values without quoting, UTF-8 or ISO-8859-1, LF or CRLF.
//!
//! Streaming: one line at a time through a `BufRead`. Columns are mapped by name (any order,
//! subset or superset of the 85 fields); unknown columns are reported once as a warning;
//! `TEKN_KJM` is required. Rows that cannot be read (wrong field count, invalid UTF-8 in a
//! UTF-8 file, a malformed date) are reported with their line number and reason; good rows
//! are inserted with values exactly as written (empty -> NULL). Rows are appended to the
//! `vehicle` table; import a full dump into a fresh database.

use super::schema;
use super::RegisterError;
use crate::core::catalog::{column_of, FieldKind, TECHNICAL};
use crate::core::ids;
use crate::core::text::{decode_latin1, Encoding};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// How to read the dump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// `None` detects the encoding from the header line: valid UTF-8 with `C2 A4` (or a BOM)
    /// is UTF-8, otherwise `A4` bytes mean ISO-8859-1.
    pub encoding: Option<Encoding>,
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows inserted.
    pub rows: u64,
    pub rejected: Vec<Rejected>,
    /// Things that did not stop the import (unknown columns, skipped blank lines).
    pub warnings: Vec<String>,
    /// The encoding used (given or detected).
    pub encoding: Encoding,
}

/// At most this many rejected rows are listed one by one; the rest are counted in a warning.
pub const MAX_REJECTED_LISTED: usize = 10_000;
/// Rows per transaction.
const ROWS_PER_TX: u64 = 50_000;

/// Decides the encoding from the header line's bytes (BOM already removed).
pub fn detect_encoding(header: &[u8], had_bom: bool) -> Encoding {
    if had_bom {
        return Encoding::Utf8;
    }
    let utf8 = std::str::from_utf8(header).is_ok();
    if utf8 && header.windows(2).any(|w| w == [0xc2, 0xa4]) {
        Encoding::Utf8
    } else if header.contains(&0xa4) {
        Encoding::Latin1
    } else {
        Encoding::Utf8
    }
}

/// Removes a trailing `\n` and then a trailing `\r`.
fn trim_eol(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
}

/// Decodes one line; `Err` names the problem.
fn decode(bytes: &[u8], enc: Encoding) -> Result<std::borrow::Cow<'_, str>, String> {
    match enc {
        Encoding::Utf8 => std::str::from_utf8(bytes)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1)),
        Encoding::Latin1 => {
            if bytes.is_ascii() {
                // ASCII is the same in both; avoids a copy.
                Ok(std::borrow::Cow::Borrowed(
                    std::str::from_utf8(bytes).unwrap_or_default(),
                ))
            } else {
                Ok(std::borrow::Cow::Owned(decode_latin1(bytes)))
            }
        }
    }
}

/// Imports the dump at `file` into the register at `db` (created if missing). `progress` is
/// called with the number of bytes read so far.
pub fn import(
    db: &Path,
    file: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary, RegisterError> {
    let mut dump = Dump::open(file, opts)?;
    let sql = insert_sql(&dump.used);
    let conn = schema::open_rw(db)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -131_072i64)?;
    conn.execute_batch("BEGIN")?;
    let mut rows = 0u64;
    let read = {
        let mut stmt = conn.prepare(&sql)?;
        dump.rows(progress, &mut |values| {
            for (k, v) in values.iter().enumerate() {
                match v {
                    None => stmt.raw_bind_parameter(k + 1, rusqlite::types::Null)?,
                    Some(v) => stmt.raw_bind_parameter(k + 1, *v)?,
                }
            }
            stmt.raw_execute()?;
            rows += 1;
            if rows.is_multiple_of(ROWS_PER_TX) {
                conn.execute_batch("COMMIT; BEGIN")?;
            }
            Ok(())
        })?
    };
    conn.execute_batch("COMMIT")?;
    conn.execute_batch(schema::INDEXES)?;
    {
        let mut st =
            conn.prepare("INSERT OR REPLACE INTO register_meta (key, value) VALUES (?1, ?2)")?;
        for (k, v) in import_meta(file, &read) {
            st.execute([k, v.as_str()])?;
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(read.summary)
}

/// [`import`] into a PostgreSQL register: the schema if missing, then every good row in one
/// `COPY vehicle ... FROM STDIN` streamed as the file is read, the indexes and the metadata,
/// all in one transaction (an interrupted import leaves the register as it was). Vehicle ids
/// go on from the largest, as SQLite's do.
pub fn import_postgres(
    url: &crate::core::config::location::PgUrl,
    file: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary, RegisterError> {
    use super::pg;
    let mut dump = Dump::open(file, opts)?;
    let w = pg::connect(url)?;
    pg::batch(&w, "BEGIN; SET LOCAL client_min_messages = warning")?;
    pg::create_schema(&w)?;
    let mut next_id = pg::max_vehicle_id(&w)?;
    let sql = format!(
        "COPY vehicle (id, {}) FROM STDIN",
        dump.used
            .iter()
            .map(|&(_, t, _)| column_of(TECHNICAL[t].0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Batches of rows go to the server while the next ones are read.
    let mut pending: Option<pg::Pending> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(COPY_BATCH + 4096);
    let mut id = String::new();
    let send = |buf: &mut Vec<u8>, pending: &mut Option<pg::Pending>| {
        if let Some(p) = pending.take() {
            p.wait()?;
        }
        let data = std::mem::replace(buf, Vec::with_capacity(COPY_BATCH + 4096));
        *pending = Some(pg::copy_in_background(&w, vec![(sql.clone(), data)])?);
        Ok::<(), RegisterError>(())
    };
    let read = dump.rows(progress, &mut |values| {
        next_id += 1;
        id.clear();
        id.push_str(&next_id.to_string());
        let mut row: Vec<Option<&str>> = Vec::with_capacity(values.len() + 1);
        row.push(Some(&id));
        row.extend_from_slice(values);
        pg::push_row(&mut buf, &row);
        if buf.len() >= COPY_BATCH {
            send(&mut buf, &mut pending)?;
        }
        Ok(())
    })?;
    if !buf.is_empty() {
        send(&mut buf, &mut pending)?;
    }
    if let Some(p) = pending.take() {
        p.wait()?;
    }
    pg::batch(&w, schema::INDEXES)?;
    pg::put_meta(&w, import_meta(file, &read))?;
    pg::batch(&w, "COMMIT; ANALYZE vehicle;")?;
    Ok(read.summary)
}

/// Bytes of COPY text sent to PostgreSQL at a time by an import.
const COPY_BATCH: usize = 4 << 20;

/// Takes one good row's values (empty -> `None`) into the register.
type Insert<'a> = dyn FnMut(&[Option<&str>]) -> Result<(), RegisterError> + 'a;

/// An open dump whose header has been read and mapped.
struct Dump {
    file: std::path::PathBuf,
    reader: BufReader<File>,
    names: Vec<String>,
    /// File columns that are inserted, in order: (file column, field, is a date).
    used: Vec<(usize, usize, bool)>,
    warnings: Vec<String>,
    encoding: Encoding,
    bytes_read: u64,
}

/// What reading the rows of a dump gave.
struct Read {
    summary: ImportSummary,
    rejected_total: u64,
}

impl Dump {
    fn open(file: &Path, opts: &ImportOptions) -> Result<Dump, RegisterError> {
        let io_err = |source| RegisterError::Io {
            path: file.to_path_buf(),
            source,
        };
        let f = File::open(file).map_err(io_err)?;
        let mut reader = BufReader::with_capacity(1 << 20, f);
        let mut line: Vec<u8> = Vec::with_capacity(4096);
        let bytes_read = reader.read_until(b'\n', &mut line).map_err(io_err)? as u64;
        if bytes_read == 0 {
            return Err(RegisterError::EmptyFile {
                path: file.to_path_buf(),
            });
        }
        let had_bom = line.starts_with(&[0xef, 0xbb, 0xbf]);
        if had_bom {
            line.drain(..3);
        }
        trim_eol(&mut line);
        let encoding = opts
            .encoding
            .unwrap_or_else(|| detect_encoding(&line, had_bom));
        let header = decode(&line, encoding).map_err(|reason| RegisterError::BadHeader {
            path: file.to_path_buf(),
            reason,
        })?;
        let names: Vec<String> = header
            .split('\u{a4}')
            .map(|s| s.trim().to_string())
            .collect();
        let (targets, warnings) = map_header(file, &names)?;
        let used: Vec<(usize, usize, bool)> = targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (i, t, TECHNICAL[t].2 == FieldKind::Date)))
            .collect();
        Ok(Dump {
            file: file.to_path_buf(),
            reader,
            names,
            used,
            warnings,
            encoding,
            bytes_read,
        })
    }

    /// Reads every row after the header; each good row's used values (empty -> `None`) go
    /// to `insert`, bad rows are listed with their line and reason.
    fn rows(
        &mut self,
        progress: &mut dyn FnMut(u64),
        insert: &mut Insert<'_>,
    ) -> Result<Read, RegisterError> {
        let file = self.file.clone();
        let io_err = |source| RegisterError::Io {
            path: file.clone(),
            source,
        };
        let (names, used, encoding) = (&self.names, &self.used, self.encoding);
        let mut line: Vec<u8> = Vec::with_capacity(4096);
        let mut bytes_read = self.bytes_read;
        let mut rows = 0u64;
        let mut rejected = Vec::new();
        let mut rejected_total = 0u64;
        let mut blank = 0u64;
        let mut line_no = 1u64;
        let mut last_progress = 0u64;
        let mut row: Vec<Option<&str>> = Vec::with_capacity(used.len());
        progress(bytes_read);
        loop {
            line.clear();
            let n = self.reader.read_until(b'\n', &mut line).map_err(io_err)?;
            if n == 0 {
                break;
            }
            bytes_read += n as u64;
            line_no += 1;
            trim_eol(&mut line);
            if line.is_empty() {
                blank += 1;
                continue;
            }
            let mut reject = |reason: String| {
                rejected_total += 1;
                if rejected.len() < MAX_REJECTED_LISTED {
                    rejected.push(Rejected {
                        line: line_no,
                        reason,
                    });
                }
            };
            let text = match decode(&line, encoding) {
                Ok(t) => t,
                Err(reason) => {
                    reject(reason);
                    continue;
                }
            };
            let values: Vec<&str> = text.split('\u{a4}').collect();
            if values.len() != names.len() {
                reject(format!(
                    "{} fields, the header has {}",
                    values.len(),
                    names.len()
                ));
                continue;
            }
            if let Some(&(i, t, _)) = used
                .iter()
                .find(|&&(i, _, date)| date && !values[i].is_empty() && !ids::is_date(values[i]))
            {
                reject(format!(
                    "{} is not a YYYYMMDD date: {:?}",
                    TECHNICAL[t].0, values[i]
                ));
                continue;
            }
            let mut r = reuse(std::mem::take(&mut row));
            r.extend(
                used.iter()
                    .map(|&(i, _, _)| Some(values[i]).filter(|v| !v.is_empty())),
            );
            insert(&r)?;
            row = reuse(r);
            rows += 1;
            if bytes_read - last_progress >= 1 << 20 {
                progress(bytes_read);
                last_progress = bytes_read;
            }
        }
        progress(bytes_read);
        self.bytes_read = bytes_read;
        let mut warnings = std::mem::take(&mut self.warnings);
        if blank > 0 {
            warnings.push(format!("skipped {blank} blank line(s)"));
        }
        if rejected_total > rejected.len() as u64 {
            warnings.push(format!(
                "{rejected_total} rows rejected; only the first {} are listed",
                rejected.len()
            ));
        }
        Ok(Read {
            summary: ImportSummary {
                rows,
                rejected,
                warnings,
                encoding,
            },
            rejected_total,
        })
    }
}

/// An emptied vector for items of another lifetime, keeping its allocation.
fn reuse<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter().map(|_| unreachable!("empty")).collect()
}

/// Maps the header's column names onto the catalog's technical fields: for each file
/// column the field it fills, if known, and warnings about unknown and missing columns.
fn map_header(
    file: &Path,
    names: &[String],
) -> Result<(Vec<Option<usize>>, Vec<String>), RegisterError> {
    let mut warnings = Vec::new();
    // For each file column: the catalog index it fills, if known.
    let mut targets: Vec<Option<usize>> = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let t = TECHNICAL.iter().position(|f| f.0 == name.as_str());
        if let Some(t) = t {
            if targets.contains(&Some(t)) {
                return Err(RegisterError::BadHeader {
                    path: file.to_path_buf(),
                    reason: format!("column {name} appears twice (again as column {})", i + 1),
                });
            }
        } else {
            unknown.push(if name.is_empty() {
                format!("(empty name, column {})", i + 1)
            } else {
                name.clone()
            });
        }
        targets.push(t);
    }
    if !targets.contains(&Some(0)) {
        return Err(RegisterError::MissingColumn {
            path: file.to_path_buf(),
            column: TECHNICAL[0].0.to_string(),
        });
    }
    if !unknown.is_empty() {
        warnings.push(format!(
            "ignored {} unknown column(s): {}",
            unknown.len(),
            unknown.join(", ")
        ));
    }
    let missing = TECHNICAL.len() - targets.iter().flatten().count();
    if missing > 0 {
        warnings.push(format!(
            "{missing} of the 85 technical columns are missing; they stay empty"
        ));
    }
    Ok((targets, warnings))
}

/// The INSERT of the used file columns `(file column, field, is_date)`.
fn insert_sql(used: &[(usize, usize, bool)]) -> String {
    format!(
        "INSERT INTO vehicle ({}) VALUES ({})",
        used.iter()
            .map(|&(_, t, _)| column_of(TECHNICAL[t].0))
            .collect::<Vec<_>>()
            .join(", "),
        (1..=used.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The `register_meta` rows saying where the register came from.
fn import_meta(file: &Path, read: &Read) -> Vec<(&'static str, String)> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    vec![
        ("source", "import".to_string()),
        ("imported_file", file_name),
        ("imported_rows", read.summary.rows.to_string()),
        ("imported_rejected", read.rejected_total.to_string()),
        (
            "imported_encoding",
            read.summary.encoding.as_str().to_string(),
        ),
        ("imported_at", now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_encodings() {
        assert_eq!(detect_encoding("A¤B".as_bytes(), false), Encoding::Utf8);
        assert_eq!(detect_encoding(b"A\xa4B", false), Encoding::Latin1);
        assert_eq!(detect_encoding(b"TEKN_KJM", false), Encoding::Utf8);
        assert_eq!(detect_encoding(b"TEKN_KJM", true), Encoding::Utf8);
        // Latin-1 text that happens to contain C2 A4 but is not valid UTF-8 elsewhere.
        assert_eq!(
            detect_encoding(b"\xc2\xa4\xe6\xa4", false),
            Encoding::Latin1
        );
    }

    #[test]
    fn trims_line_endings() {
        let mut l = b"a\xa4b\r\n".to_vec();
        trim_eol(&mut l);
        assert_eq!(l, b"a\xa4b");
        let mut l = b"a\n".to_vec();
        trim_eol(&mut l);
        assert_eq!(l, b"a");
        assert_eq!(decode(b"\xe6", Encoding::Latin1).unwrap(), "æ");
        assert!(decode(b"\xe6", Encoding::Utf8).is_err());
    }
}
