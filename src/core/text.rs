//! Text-file conventions shared by the importer and the writers: the `¤` separator,
//! encodings (UTF-8 or ISO-8859-1) and line endings. Pure.

use serde::Deserialize;

/// The authority's separator, U+00A4 CURRENCY SIGN (`C2 A4` in UTF-8, `A4` in ISO-8859-1).
pub const SEPARATOR: char = '\u{a4}';

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Encoding {
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "iso-8859-1")]
    Latin1,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Latin1 => "iso-8859-1",
        }
    }
    pub fn parse(s: &str) -> Option<Encoding> {
        match s.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "iso-8859-1" | "latin1" | "latin-1" | "iso8859-1" => Some(Encoding::Latin1),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    #[default]
    Lf,
    Crlf,
}

impl LineEnding {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Lf => b"\n",
            LineEnding::Crlf => b"\r\n",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "lf",
            LineEnding::Crlf => "crlf",
        }
    }
}

/// Decodes ISO-8859-1 bytes (every byte is the code point of the same value).
pub fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// Encodes `s` as ISO-8859-1 into `out`; returns the first character that has no
/// ISO-8859-1 form.
pub fn encode_latin1(s: &str, out: &mut Vec<u8>) -> Result<(), char> {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
        return Ok(());
    }
    for c in s.chars() {
        let cp = c as u32;
        if cp > 0xff {
            return Err(c);
        }
        out.push(cp as u8);
    }
    Ok(())
}

/// A string from a server (SFTP, SMTP, HTTP) made safe to print: control characters, escape sequences and
/// other non-printing characters become `\u{..}` escapes (NUL is `\0`), and the result is
/// cut at `max` characters (marked with `...`).
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 8));
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push_str("...");
            break;
        }
        match c {
            '\0' => out.push_str("\\0"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || is_invisible(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Bytes from a server as text: invalid UTF-8 is replaced, then [`clean`].
pub fn clean_bytes(b: &[u8], max: usize) -> String {
    clean(&String::from_utf8_lossy(b), max)
}

/// Characters that print as nothing or reorder text (bidi controls, zero-width).
fn is_invisible(c: char) -> bool {
    matches!(c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2069 | 0xfeff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_round_trip_and_refusal() {
        let mut out = Vec::new();
        encode_latin1("Bærum ¤ Ås", &mut out).unwrap();
        assert_eq!(out[1], 0xe6);
        assert!(out.contains(&0xa4));
        assert_eq!(decode_latin1(&out), "Bærum ¤ Ås");
        assert_eq!(encode_latin1("5 €", &mut Vec::new()), Err('€'));
    }
}
