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
