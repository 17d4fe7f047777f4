//! `COPY`'s text format (the default of `COPY ... TO STDOUT` / `FROM STDIN`): one line a
//! row, fields separated by a tab, `\N` for NULL, and a backslash escaping `\`, tab,
//! newline, carriage return, backspace, form feed and vertical tab; on input also `\NNN`
//! (octal) and `\xHH` (hex) bytes, and any other escaped character as itself.
//!
//! Writing is [`push_field`]; reading is a [`RowReader`] fed the data in pieces as they
//! come (a piece may end inside a row or a character). It checks UTF-8 once per piece, not
//! once per value, and finds the bytes that matter (tab, newline, backslash) eight at a time
//! ([`Specials`]) instead of looking at every byte. (`memchr3_iter` was tried: with a match
//! every 25 bytes or so its per-call set-up cost more than the byte loop it replaced.)

/// Appends `v` as one field (no separator): `\N` for `None`, escaped text otherwise.
pub fn push_field(out: &mut Vec<u8>, v: Option<&str>) {
    let Some(s) = v else {
        out.extend_from_slice(b"\\N");
        return;
    };
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc = match c {
            b'\\' => b'\\',
            b'\t' => b't',
            b'\n' => b'n',
            b'\r' => b'r',
            0x08 => b'b',
            0x0c => b'f',
            0x0b => b'v',
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.push(b'\\');
        out.push(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

/// Why rows could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not COPY text of the expected shape (a wrong number of fields, a lone backslash).
    Unreadable(String),
    /// Field `field` (from 0) is not UTF-8.
    NotUtf8 { field: usize },
    /// The data ended inside a row.
    Truncated,
}

/// What a [`RowReader`] hands each row to: its number (from 1) and its values.
pub type Each<'a, E> = dyn FnMut(u64, &[Option<&str>]) -> Result<(), E> + 'a;

/// Reads rows of a fixed number of fields from COPY text handed over in pieces.
pub struct RowReader {
    /// Each field's unescaped bytes, when it had escapes.
    scratch: Vec<Vec<u8>>,
    /// The fields of the row at hand that had escapes (kept for its allocation).
    escaped: Vec<usize>,
    /// A row's values, kept for its allocation (empty between rows).
    values: Vec<Option<&'static str>>,
    /// The start of a row a piece ended in, up to the piece's end.
    carry: Vec<u8>,
    rows: u64,
}

impl RowReader {
    /// A reader of rows of `fields` fields.
    pub fn new(fields: usize) -> RowReader {
        RowReader {
            scratch: vec![Vec::new(); fields],
            escaped: Vec::new(),
            values: Vec::with_capacity(fields),
            carry: Vec::new(),
            rows: 0,
        }
    }

    /// Rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Reads the rows that end in `data` (the text after the previous piece) and hands each
    /// one's number (from 1) and values to `each`; the start of a row `data` ends in waits
    /// for the next piece. A [`Problem`] is made into the caller's error by `bad`, with the
    /// number of the row it is in.
    pub fn feed<E>(
        &mut self,
        mut data: &[u8],
        each: &mut Each<'_, E>,
        bad: &dyn Fn(u64, Problem) -> E,
    ) -> Result<(), E> {
        if !self.carry.is_empty() {
            let Some(i) = memchr::memchr(b'\n', data) else {
                self.carry.extend_from_slice(data);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&data[..=i]);
            data = &data[i + 1..];
            let done = self.lines(&line, each, bad);
            line.clear();
            self.carry = line;
            done?;
        }
        let whole = memchr::memrchr(b'\n', data).map_or(0, |i| i + 1);
        self.lines(&data[..whole], each, bad)?;
        self.carry.extend_from_slice(&data[whole..]);
        Ok(())
    }

    /// At the end of the data: the number of rows, or [`Problem::Truncated`] when it ended
    /// inside one.
    pub fn finish(&self) -> Result<u64, Problem> {
        match self.carry.is_empty() {
            true => Ok(self.rows),
            false => Err(Problem::Truncated),
        }
    }

    /// Whole lines (each ending in `\n`): checked for UTF-8 at once; when that fails, the
    /// rows before the first bad byte are read and the bad one's field is named.
    fn lines<E>(
        &mut self,
        lines: &[u8],
        each: &mut Each<'_, E>,
        bad: &dyn Fn(u64, Problem) -> E,
    ) -> Result<(), E> {
        if let Ok(text) = simdutf8::basic::from_utf8(lines) {
            return self.split(text, each, bad);
        }
        let valid = std::str::from_utf8(lines).map_or_else(|e| e.valid_up_to(), |_| lines.len());
        let row_start = memchr::memrchr(b'\n', &lines[..valid]).map_or(0, |i| i + 1);
        let before = std::str::from_utf8(&lines[..row_start]).expect("valid up to there");
        self.split(before, each, bad)?;
        let field = memchr::memchr_iter(b'\t', &lines[row_start..valid]).count();
        Err(bad(self.rows + 1, Problem::NotUtf8 { field }))
    }

    /// Splits `text`, whole lines, into rows: one scan for the bytes that matter (tab,
    /// newline, backslash); a backslash's next byte is never a separator. A row's values
    /// are slices of `text` as they are found; a row with an escaped value (rare: `\N` is
    /// not one) goes through [`RowReader::escaped_row`].
    fn split<E>(
        &mut self,
        text: &str,
        each: &mut Each<'_, E>,
        bad: &dyn Fn(u64, Problem) -> E,
    ) -> Result<(), E> {
        let b = text.as_bytes();
        let n = self.scratch.len();
        let mut values: Vec<Option<&str>> = Vec::with_capacity(n);
        let mut escaped = std::mem::take(&mut self.escaped);
        escaped.clear();
        let (mut start, mut this_escaped, mut skip_to) = (0, false, 0);
        for i in Specials::new(b) {
            if i < skip_to {
                continue;
            }
            if b[i] == b'\\' {
                if matches!(b.get(i + 1), None | Some(b'\n')) {
                    return Err(bad(
                        self.rows + 1,
                        Problem::Unreadable("a row ends in a lone backslash".into()),
                    ));
                }
                this_escaped = true;
                skip_to = i + 2;
                continue;
            }
            let field = values.len();
            if field == n {
                return Err(bad(
                    self.rows + 1,
                    Problem::Unreadable(format!("more than {n} fields in a row")),
                ));
            }
            let f = &b[start..i];
            values.push(if f == b"\\N" {
                None
            } else if this_escaped {
                unescape(f, &mut self.scratch[field]);
                escaped.push(field);
                None
            } else {
                // Tabs and newlines are ASCII: every range is on character boundaries.
                Some(&text[start..i])
            });
            this_escaped = false;
            start = i + 1;
            if b[i] == b'\n' {
                self.rows += 1;
                if values.len() != n {
                    return Err(bad(
                        self.rows,
                        Problem::Unreadable(format!(
                            "{} fields in a row, the query has {n}",
                            values.len()
                        )),
                    ));
                }
                match escaped.is_empty() {
                    true => each(self.rows, &values)?,
                    false => {
                        self.escaped_row(&values, &escaped, each, bad)?;
                        escaped.clear();
                    }
                }
                values.clear();
            }
        }
        self.escaped = escaped;
        debug_assert_eq!(start, b.len(), "whole lines");
        Ok(())
    }

    /// Hands a row to `each` whose fields `escaped` were unescaped into `scratch` (the
    /// others are in `raw`).
    fn escaped_row<E>(
        &mut self,
        raw: &[Option<&str>],
        escaped: &[usize],
        each: &mut Each<'_, E>,
        bad: &dyn Fn(u64, Problem) -> E,
    ) -> Result<(), E> {
        let mut values = reuse(std::mem::take(&mut self.values));
        values.extend_from_slice(raw);
        for &i in escaped {
            // Escapes may make any byte: checked value by value.
            values[i] = Some(
                std::str::from_utf8(&self.scratch[i])
                    .map_err(|_| bad(self.rows, Problem::NotUtf8 { field: i }))?,
            );
        }
        let done = each(self.rows, &values);
        self.values = reuse(values);
        done
    }
}

/// The positions of tab, newline and backslash in a text, in order: eight bytes at a time
/// as one `u64` (SWAR), whose matching bytes a few integer operations mark, without a
/// branch per byte.
struct Specials<'a> {
    b: &'a [u8],
    /// Where the next word starts.
    next: usize,
    /// The high bit of each matching byte of the word before `next`, not yet handed out.
    mask: u64,
}

impl<'a> Specials<'a> {
    fn new(b: &'a [u8]) -> Self {
        Specials {
            b,
            next: 0,
            mask: 0,
        }
    }
}

impl Iterator for Specials<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            let rest = self.b.get(self.next..).filter(|r| !r.is_empty())?;
            let word = match rest.first_chunk::<8>() {
                Some(w) => u64::from_le_bytes(*w),
                None => {
                    // The last bytes, padded with zeros (which match nothing).
                    let mut w = [0u8; 8];
                    w[..rest.len()].copy_from_slice(rest);
                    u64::from_le_bytes(w)
                }
            };
            self.mask = specials(word);
            self.next += 8;
        }
        let at = self.next - 8 + (self.mask.trailing_zeros() / 8) as usize;
        self.mask &= self.mask - 1;
        Some(at)
    }
}

/// The high bit of each byte of `w` that is a tab, a newline or a backslash.
fn specials(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const EACH: u64 = 0x0101_0101_0101_0101;
    // A byte of `x` is zero exactly when its high bit ends up set (no carries across bytes).
    let zero = |x: u64| !((x & LOW7).wrapping_add(LOW7) | x | LOW7);
    zero(w ^ (EACH * 0x09)) | zero(w ^ (EACH * 0x0a)) | zero(w ^ (EACH * 0x5c))
}

fn unescape(f: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < f.len() {
        let c = f[i];
        if c != b'\\' || i + 1 == f.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = f[i + 1];
        i += 2;
        match e {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut k = 0;
                while k < 2 && i < f.len() && (b'0'..=b'7').contains(&f[i]) {
                    v = v * 8 + u32::from(f[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if i < f.len() && f[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < f.len() && f[i].is_ascii_hexdigit() {
                    v = v * 16 + (f[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

/// An emptied vector for items of another lifetime, keeping its allocation (collecting an
/// empty vector into one of a same-sized item type reuses the buffer in place).
fn reuse<'a>(mut v: Vec<Option<&'_ str>>) -> Vec<Option<&'a str>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("empty")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rows = Vec<Vec<Option<String>>>;

    /// Every row of `pieces` (fed one after another) with `n` fields, or the first problem
    /// and the row it is in.
    fn read(pieces: &[&[u8]], n: usize) -> Result<Rows, (u64, Problem)> {
        let mut r = RowReader::new(n);
        let mut rows = Vec::new();
        let mut each = |row: u64, values: &[Option<&str>]| {
            assert_eq!(row, rows.len() as u64 + 1);
            rows.push(values.iter().map(|v| v.map(String::from)).collect());
            Ok(())
        };
        for p in pieces {
            r.feed(p, &mut each, &|row, p| (row, p))?;
        }
        let total = r.finish().map_err(|p| (r.rows() + 1, p))?;
        assert_eq!(total, rows.len() as u64);
        Ok(rows)
    }

    fn one(line: &[u8], n: usize) -> Vec<Option<String>> {
        let mut text = line.to_vec();
        text.push(b'\n');
        read(&[&text], n).unwrap().pop().unwrap()
    }

    fn problem(text: &[u8], n: usize) -> (u64, Problem) {
        read(&[text], n).unwrap_err()
    }

    #[test]
    fn every_hostile_value_round_trips() {
        let values: Vec<Option<&str>> = vec![
            None,
            Some(""),
            Some("\\N"),
            Some("a\tb"),
            Some("line\nbreak\r\n"),
            Some("back\\slash\\"),
            Some("'; DROP TABLE vehicle;--"),
            Some("\u{8}\u{c}\u{b}"),
            Some("æøå ¤ 🚗"),
            Some("\\"),
        ];
        let mut line = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            push_field(&mut line, *v);
        }
        assert!(!line.contains(&b'\n'));
        let back = one(&line, values.len());
        let want: Vec<Option<String>> = values.iter().map(|v| v.map(String::from)).collect();
        assert_eq!(back, want);
    }

    #[test]
    fn octal_and_hex_escapes_and_wrong_field_counts() {
        assert_eq!(
            one(b"\\101\\x42\\q\t\\N", 2),
            vec![Some("ABq".to_string()), None]
        );
        let unreadable = |t: &[u8]| match problem(t, 2) {
            (1, Problem::Unreadable(_)) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(t)),
        };
        unreadable(b"a\tb\tc\n");
        unreadable(b"a\n");
        unreadable(b"a\tb\\\n");
        assert_eq!(
            one(b"\t", 2),
            vec![Some(String::new()), Some(String::new())]
        );
        // The row number is the bad row's.
        assert!(matches!(
            problem(b"a\tb\nc\td\ne\n", 2),
            (3, Problem::Unreadable(_))
        ));
    }

    #[test]
    fn rows_cut_anywhere_into_pieces_read_the_same() {
        let mut text = Vec::new();
        let rows: Vec<[Option<&str>; 3]> = vec![
            [Some("æøå"), None, Some("tab\there")],
            [Some(""), Some("🚗 ¤"), Some("back\\slash")],
            [Some("\\N"), Some("x"), None],
            [Some("new\nline"), Some("é"), Some("")],
        ];
        for r in &rows {
            for (i, v) in r.iter().enumerate() {
                if i > 0 {
                    text.push(b'\t');
                }
                push_field(&mut text, *v);
            }
            text.push(b'\n');
        }
        let want: Rows = rows
            .iter()
            .map(|r| r.iter().map(|v| v.map(String::from)).collect())
            .collect();
        assert_eq!(read(&[&text], 3).unwrap(), want);
        // Every cut, also inside a character, an escape or a field, and in three pieces.
        for a in 0..=text.len() {
            assert_eq!(
                read(&[&text[..a], &text[a..]], 3).unwrap(),
                want,
                "cut at {a}"
            );
            for b in a..=text.len() {
                let pieces = [&text[..a], &text[a..b], &text[b..]];
                assert_eq!(read(&pieces, 3).unwrap(), want, "cut at {a}, {b}");
            }
        }
        // Ending inside a row is an error about the row after the last whole one.
        assert_eq!(
            read(&[&text[..text.len() - 1]], 3),
            Err((4, Problem::Truncated))
        );
    }

    #[test]
    fn specials_are_every_tab_newline_and_backslash_and_nothing_else() {
        // Every byte value, at every offset in and across words, and texts of every length
        // around a word's.
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, all.len() - start] {
                let b = &all[start..start + len];
                let want: Vec<usize> = (0..b.len())
                    .filter(|&i| matches!(b[i], b'\t' | b'\n' | b'\\'))
                    .collect();
                assert_eq!(Specials::new(b).collect::<Vec<_>>(), want, "{start} {len}");
            }
        }
        // Neighbours of the three (0x08, 0x0b, 0x5b, 0x5d, 0x89, 0xdc) are not matches.
        assert_eq!(
            specials(u64::from_le_bytes(*b"\x08\x0b[]\x89\xdc\x0a\x09")),
            0x8080 << 48
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_name_their_row_and_field() {
        // A raw bad byte in the third row's second field, in one piece or cut before it.
        let text = b"a\tb\nc\td\ne\tf\xff\n";
        assert_eq!(problem(text, 2), (3, Problem::NotUtf8 { field: 1 }));
        assert_eq!(
            read(&[&text[..9], &text[9..]], 2),
            Err((3, Problem::NotUtf8 { field: 1 }))
        );
        // Made by an escape (octal, hex): checked on its own.
        assert_eq!(
            problem(b"\\377\tx\n", 2),
            (1, Problem::NotUtf8 { field: 0 })
        );
        assert_eq!(
            problem(b"a\tb\nx\t\\xc3\n", 2),
            (2, Problem::NotUtf8 { field: 1 })
        );
        // A character cut by a piece's end is not an error.
        let s = "ø\tå\n".as_bytes();
        assert_eq!(
            read(&[&s[..1], &s[1..]], 2).unwrap(),
            vec![vec![Some("ø".to_string()), Some("å".to_string())]]
        );
    }
}
