//! Streaming row writers: `dsv` (the authority's `¤` format, no quoting), `csv` (RFC 4180)
//! and `xlsx` (constant-memory workbook). Encoding and line ending per subscription. A
//! value that cannot be written faithfully is an error naming the row and the field.

use super::ExtractError;
use crate::core::catalog::{Field, FieldKind};
use crate::core::config::Format;
use crate::core::text::{encode_latin1, Encoding, LineEnding, SEPARATOR};
use std::io::Write;
use std::path::Path;

/// Excel's limit: 1,048,576 rows including the header.
pub const XLSX_MAX_DATA_ROWS: u64 = 1_048_575;

/// One output format's writer. Rows are numbered from 1 (the first data row).
pub trait RowWriter {
    /// Takes the columns (for the names in errors) without writing a header: a block of a
    /// parallel extract continues a file whose header is already written.
    fn columns(&mut self, fields: &[Field]);
    /// Takes the columns and writes the header.
    fn header(&mut self, fields: &[Field]) -> Result<(), ExtractError>;
    fn row(&mut self, row: u64, values: &[Option<&str>]) -> Result<(), ExtractError>;
    fn finish(self: Box<Self>) -> Result<(), ExtractError>;
}

/// The dsv or csv writer for `format` into `out`: the forms a block of a parallel read and a
/// shared scan write (neither takes xlsx; the callers check that first).
pub fn text<'a, W: Write + 'a>(
    format: Format,
    out: W,
    enc: Encoding,
    eol: LineEnding,
) -> Box<dyn RowWriter + 'a> {
    match format {
        Format::Dsv => Box::new(DsvWriter::new(out, enc, eol)),
        Format::Csv => Box::new(CsvWriter::new(out, enc, eol)),
        Format::Xlsx => unreachable!("xlsx is never written in blocks or by a shared scan"),
    }
}

/// The writer for `format` into `out`; xlsx spills its worksheet into `tempdir`.
pub fn any<'a, W: Write + Send + 'a>(
    format: Format,
    out: W,
    enc: Encoding,
    eol: LineEnding,
    tempdir: &Path,
) -> Result<Box<dyn RowWriter + 'a>, ExtractError> {
    match format {
        Format::Xlsx => Ok(Box::new(XlsxWriter::new(out, tempdir)?)),
        text_format => Ok(text(text_format, out, enc, eol)),
    }
}

fn value_error(row: u64, field: &str, problem: impl Into<String>) -> ExtractError {
    ExtractError::Value {
        row,
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Finds a character DSV cannot carry: `¤`, CR or LF.
fn dsv_forbidden(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr3(b'\n', b'\r', 0xA4, &b[from..]) {
        let i = from + i;
        match b[i] {
            b'\n' | b'\r' => return Some("a line break"),
            // 0xA4 is the second byte of `¤` (C2 A4) or of another character.
            _ if i > 0 && b[i - 1] == 0xC2 => return Some("the separator `¤`"),
            _ => from = i + 1,
        }
    }
    None
}

fn encode(
    enc: Encoding,
    s: &str,
    out: &mut Vec<u8>,
    row: u64,
    field: &str,
) -> Result<(), ExtractError> {
    match enc {
        Encoding::Utf8 => {
            out.extend_from_slice(s.as_bytes());
            Ok(())
        }
        Encoding::Latin1 => encode_latin1(s, out).map_err(|c| {
            value_error(
                row,
                field,
                format!(
                    "`{c}` (U+{:04X}) has no ISO-8859-1 form; deliver this subscription as utf-8",
                    c as u32
                ),
            )
        }),
    }
}

/// The authority's DSV: `¤` between values, no quoting, empty for missing.
pub struct DsvWriter<W: Write> {
    out: W,
    enc: Encoding,
    eol: LineEnding,
    sep: Vec<u8>,
    names: Vec<String>,
    buf: Vec<u8>,
}

impl<W: Write> DsvWriter<W> {
    pub fn new(out: W, enc: Encoding, eol: LineEnding) -> Self {
        let mut sep = Vec::new();
        encode_latin1(&SEPARATOR.to_string(), &mut sep).expect("¤ is latin1");
        if enc == Encoding::Utf8 {
            sep = SEPARATOR.to_string().into_bytes();
        }
        DsvWriter {
            out,
            enc,
            eol,
            sep,
            names: Vec::new(),
            buf: Vec::with_capacity(DSV_WRITE + 4096),
        }
    }
}

/// Rows are gathered into writes of about this size (one call down the sealing chain per
/// 64 KiB instead of one per row).
const DSV_WRITE: usize = 64 * 1024;

impl<W: Write> DsvWriter<W> {
    /// Appends one line to `buf` the quick way: values encoded back to back, then one pass
    /// over the line proves it clean, i.e. no CR or LF, and no byte 0xA4 other than the
    /// separators' (in UTF-8, `¤` is C2 A4; in ISO-8859-1, A4). False (and `buf` as before)
    /// when a value cannot be encoded or holds a 0xA4 byte: [`Self::line_checked`] then
    /// decides, value by value, with the error naming the field.
    fn line_fast(&mut self, values: &[Option<&str>]) -> bool {
        let start = self.buf.len();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.buf.extend_from_slice(&self.sep);
            }
            if let Some(s) = v {
                match self.enc {
                    Encoding::Utf8 => self.buf.extend_from_slice(s.as_bytes()),
                    Encoding::Latin1 => {
                        if encode_latin1(s, &mut self.buf).is_err() {
                            self.buf.truncate(start);
                            return false;
                        }
                    }
                }
            }
        }
        let line = &self.buf[start..];
        // Both are SIMD scans of the whole line (memchr's `count` is vectorised too).
        let a4 = memchr::memchr_iter(0xA4, line).count();
        let breaks = usize::from(memchr::memchr2(b'\n', b'\r', line).is_some());
        if breaks == 0 && a4 == values.len().saturating_sub(1) {
            return true;
        }
        self.buf.truncate(start);
        false
    }

    /// Appends one line to `buf` checking each value on its own (the first bad value, in
    /// column order, is the error).
    fn line_checked(&mut self, row: u64, values: &[Option<&str>]) -> Result<(), ExtractError> {
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.buf.extend_from_slice(&self.sep);
            }
            if let Some(s) = v {
                if let Some(what) = dsv_forbidden(s) {
                    return Err(value_error(row, &self.names[i], format!("the value contains {what}, which DSV cannot carry; fix the register value or deliver as csv")));
                }
                encode(self.enc, s, &mut self.buf, row, &self.names[i])?;
            }
        }
        Ok(())
    }
}

impl<W: Write> RowWriter for DsvWriter<W> {
    fn columns(&mut self, fields: &[Field]) {
        self.names = fields.iter().map(|f| f.name.clone()).collect();
    }

    fn header(&mut self, fields: &[Field]) -> Result<(), ExtractError> {
        self.columns(fields);
        let names: Vec<Option<&str>> = fields.iter().map(|f| Some(f.name.as_str())).collect();
        self.row(0, &names)
    }

    fn row(&mut self, row: u64, values: &[Option<&str>]) -> Result<(), ExtractError> {
        if !self.line_fast(values) {
            let start = self.buf.len();
            if let Err(e) = self.line_checked(row, values) {
                self.buf.truncate(start);
                return Err(e);
            }
        }
        self.buf.extend_from_slice(self.eol.bytes());
        if self.buf.len() >= DSV_WRITE {
            self.out.write_all(&self.buf).map_err(ExtractError::Io)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExtractError> {
        self.out.write_all(&self.buf).map_err(ExtractError::Io)?;
        self.buf.clear();
        self.out.flush().map_err(ExtractError::Io)
    }
}

/// RFC 4180 CSV: `,` separator, fields quoted when needed, `""` for a quote.
pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
    enc: Encoding,
    names: Vec<String>,
    fields: Vec<Vec<u8>>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W, enc: Encoding, eol: LineEnding) -> Self {
        let term = match eol {
            LineEnding::Lf => csv::Terminator::Any(b'\n'),
            LineEnding::Crlf => csv::Terminator::CRLF,
        };
        let out = csv::WriterBuilder::new()
            .terminator(term)
            .flexible(false)
            .from_writer(out);
        CsvWriter {
            out,
            enc,
            names: Vec::new(),
            fields: Vec::new(),
        }
    }
}

impl<W: Write> RowWriter for CsvWriter<W> {
    fn columns(&mut self, fields: &[Field]) {
        self.names = fields.iter().map(|f| f.name.clone()).collect();
        self.fields = vec![Vec::new(); fields.len()];
    }

    fn header(&mut self, fields: &[Field]) -> Result<(), ExtractError> {
        self.columns(fields);
        let names: Vec<Option<&str>> = fields.iter().map(|f| Some(f.name.as_str())).collect();
        self.row(0, &names)
    }

    fn row(&mut self, row: u64, values: &[Option<&str>]) -> Result<(), ExtractError> {
        for (i, v) in values.iter().enumerate() {
            self.fields[i].clear();
            if let Some(s) = v {
                encode(self.enc, s, &mut self.fields[i], row, &self.names[i])?;
            }
        }
        self.out
            .write_record(&self.fields)
            .map_err(|e| ExtractError::Io(e.into()))
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExtractError> {
        self.out.flush().map_err(ExtractError::Io)
    }
}

/// An Excel workbook, one sheet, header in bold; numbers as numbers, everything else as
/// text. Constant memory: rows go to a temporary file inside the (0700) spool folder,
/// unlinked at creation, and the zip is written at the end.
pub struct XlsxWriter<W: Write + Send> {
    wb: rust_xlsxwriter::Workbook,
    out: Option<W>,
    kinds: Vec<FieldKind>,
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> ExtractError {
    ExtractError::Xlsx(e.to_string())
}

impl<W: Write + Send> XlsxWriter<W> {
    pub fn new(out: W, tempdir: &Path) -> Result<Self, ExtractError> {
        let mut wb = rust_xlsxwriter::Workbook::new();
        wb.set_tempdir(tempdir).map_err(xlsx_err)?;
        wb.set_zip_compression_level(3);
        wb.use_zip_large_file(true);
        wb.add_worksheet_with_constant_memory()
            .map_err(xlsx_err)?
            .set_name("Uttrekk")
            .map_err(xlsx_err)?;
        Ok(XlsxWriter {
            wb,
            out: Some(out),
            kinds: Vec::new(),
        })
    }
}

impl<W: Write + Send> RowWriter for XlsxWriter<W> {
    fn columns(&mut self, fields: &[Field]) {
        self.kinds = fields.iter().map(|f| f.kind).collect();
    }

    fn header(&mut self, fields: &[Field]) -> Result<(), ExtractError> {
        self.columns(fields);
        let bold = rust_xlsxwriter::Format::new().set_bold();
        let ws = self.wb.worksheet_from_index(0).map_err(xlsx_err)?;
        for (c, f) in fields.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, &f.name, &bold)
                .map_err(xlsx_err)?;
        }
        Ok(())
    }

    fn row(&mut self, row: u64, values: &[Option<&str>]) -> Result<(), ExtractError> {
        if row > XLSX_MAX_DATA_ROWS {
            return Err(ExtractError::Xlsx(format!(
                "row {row} is beyond Excel's {XLSX_MAX_DATA_ROWS} data rows"
            )));
        }
        let ws = self.wb.worksheet_from_index(0).map_err(xlsx_err)?;
        for (c, v) in values.iter().enumerate() {
            let Some(s) = v else { continue };
            let number = match self.kinds[c] {
                FieldKind::Integer | FieldKind::Decimal => {
                    s.parse::<f64>().ok().filter(|n| n.is_finite())
                }
                _ => None,
            };
            // Keep leading zeros and long digit strings as text.
            let number = number.filter(|_| {
                !(s.len() > 1 && s.starts_with('0') && !s.starts_with("0.")) && s.len() < 16
            });
            match number {
                Some(n) => ws.write_number(row as u32, c as u16, n).map(|_| ()),
                None => ws.write_string(row as u32, c as u16, *s).map(|_| ()),
            }
            .map_err(xlsx_err)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExtractError> {
        let out = self.out.take().expect("finish once");
        self.wb.save_to_writer(out).map_err(xlsx_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog;

    fn fields(names: &[&str]) -> Vec<Field> {
        names.iter().map(|n| catalog::field(n).unwrap()).collect()
    }

    #[test]
    fn dsv_utf8_and_latin1_crlf() {
        let f = fields(&["TEKN_KJM", "TEKN_MERKENAVN", "TEKN_DEKK_1"]);
        let mut out = Vec::new();
        let mut w = Box::new(DsvWriter::new(&mut out, Encoding::Utf8, LineEnding::Lf));
        w.header(&f).unwrap();
        w.row(1, &[Some("AB12345"), Some("CITROËN"), Some("4.00 X 8\"")])
            .unwrap();
        w.row(2, &[Some("EL10000"), None, Some("")]).unwrap();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TEKN_KJM¤TEKN_MERKENAVN¤TEKN_DEKK_1\nAB12345¤CITROËN¤4.00 X 8\"\nEL10000¤¤\n"
        );
        let mut out = Vec::new();
        let mut w = Box::new(DsvWriter::new(&mut out, Encoding::Latin1, LineEnding::Crlf));
        w.header(&f[..2]).unwrap();
        w.row(1, &[Some("AB1"), Some("Ø")]).unwrap();
        w.finish().unwrap();
        assert_eq!(out, b"TEKN_KJM\xa4TEKN_MERKENAVN\r\nAB1\xa4\xd8\r\n");
    }

    #[test]
    fn dsv_refuses_separator_and_line_breaks_naming_row_and_field() {
        let f = fields(&["TEKN_KJM", "TEKN_MODELL"]);
        for bad in ["A¤B", "A\nB", "A\rB"] {
            let mut w = Box::new(DsvWriter::new(Vec::new(), Encoding::Utf8, LineEnding::Lf));
            w.header(&f).unwrap();
            match w.row(7, &[Some("X"), Some(bad)]) {
                Err(ExtractError::Value { row, field, .. }) => {
                    assert_eq!((row, field.as_str()), (7, "TEKN_MODELL"))
                }
                other => panic!("{other:?}"),
            }
        }
        // Other characters whose UTF-8 form holds 0xA4 are fine (Ĥ = C4 A4).
        let mut w = Box::new(DsvWriter::new(Vec::new(), Encoding::Utf8, LineEnding::Lf));
        w.header(&f).unwrap();
        w.row(1, &[Some("Ĥ"), Some("ok")]).unwrap();
    }

    #[test]
    fn dsv_quick_check_hands_doubtful_lines_to_the_careful_one() {
        let f = fields(&["TEKN_KJM", "TEKN_MODELL", "TEKN_MERKENAVN"]);
        let run = |enc, values: &[Option<&str>]| {
            let mut out = Vec::new();
            let mut w = Box::new(DsvWriter::new(&mut out, enc, LineEnding::Lf));
            w.header(&f).unwrap();
            let r = w.row(5, values).map(|_| ());
            w.finish().unwrap();
            (r, out)
        };
        // A 0xA4 byte inside a value that is not `¤` (ä = C3 A4) is fine in both encodings.
        let (r, out) = run(Encoding::Utf8, &[Some("Mälar"), Some("ä"), None]);
        r.unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("\nMälar¤ä¤\n"));
        let (r, out) = run(Encoding::Latin1, &[Some("Mälar"), None, Some("x")]);
        r.unwrap();
        assert!(out.ends_with(b"\nM\xe4lar\xa4\xa4x\n"));
        // `¤` in a value is refused in ISO-8859-1 too (it encodes to the separator's byte).
        let (r, out) = run(Encoding::Latin1, &[Some("A"), Some("B¤C"), None]);
        match r {
            Err(ExtractError::Value { row: 5, field, .. }) => assert_eq!(field, "TEKN_MODELL"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            out, b"TEKN_KJM\xa4TEKN_MODELL\xa4TEKN_MERKENAVN\n",
            "nothing of the bad row"
        );
        // Two bad values: the first in column order is the error, as before.
        let (r, _) = run(Encoding::Latin1, &[Some("€"), Some("B¤C"), None]);
        assert!(matches!(r, Err(ExtractError::Value { ref field, .. }) if field == "TEKN_KJM"));
        let (r, _) = run(Encoding::Latin1, &[Some("A\nB"), Some("€"), None]);
        match r {
            Err(ExtractError::Value { field, problem, .. }) => {
                assert_eq!(field, "TEKN_KJM");
                assert!(problem.contains("line break"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dsv_gathered_writes_keep_every_row_in_order() {
        // Well past one 64 KiB write, with rows of every kind mixed in.
        let f = fields(&["TEKN_KJM", "TEKN_MODELL"]);
        let mut out = Vec::new();
        let mut w = Box::new(DsvWriter::new(&mut out, Encoding::Utf8, LineEnding::Crlf));
        w.header(&f).unwrap();
        let mut want = String::from("TEKN_KJM¤TEKN_MODELL\r\n");
        for i in 1..=20_000u64 {
            let model = match i % 3 {
                0 => None,
                1 => Some(format!("Ĥä{i}")),
                _ => Some(format!("M{i}")),
            };
            let kjm = format!("AB{i:05}");
            w.row(i, &[Some(&kjm), model.as_deref()]).unwrap();
            want.push_str(&format!("{kjm}¤{}\r\n", model.unwrap_or_default()));
        }
        w.finish().unwrap();
        assert!(want.len() > 4 * DSV_WRITE);
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn latin1_refuses_unmappable() {
        let f = fields(&["TEKN_KJM"]);
        let mut w = Box::new(DsvWriter::new(Vec::new(), Encoding::Latin1, LineEnding::Lf));
        w.header(&f).unwrap();
        assert!(matches!(
            w.row(3, &[Some("€")]),
            Err(ExtractError::Value { row: 3, .. })
        ));
    }

    #[test]
    fn csv_quotes_per_rfc4180() {
        let f = fields(&["TEKN_KJM", "TEKN_DEKK_1"]);
        let mut out = Vec::new();
        let mut w = Box::new(CsvWriter::new(&mut out, Encoding::Utf8, LineEnding::Crlf));
        w.header(&f).unwrap();
        w.row(1, &[Some("AB1"), Some("4.00 X 8\", 6,5J")]).unwrap();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TEKN_KJM,TEKN_DEKK_1\r\nAB1,\"4.00 X 8\"\", 6,5J\"\r\n"
        );
    }
}
