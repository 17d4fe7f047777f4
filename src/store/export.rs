//! Billing exports of receipts: CSV (RFC 4180) and JSON, one line per delivery.
//!
//! # Columns (CSV header and JSON keys, in this order)
//! | column | meaning |
//! |---|---|
//! | `receipt_id` | the receipt's number in the chain |
//! | `delivered_at` | when the file was complete on the server, UTC `YYYY-MM-DDTHH:MM:SSZ` |
//! | `case_number` | the authority's case number for the subscription (empty if none) |
//! | `customer` | customer name |
//! | `customer_org_number` | customer's organisation number (empty if none) |
//! | `invoice_reference` | the customer's invoice reference (empty if none) |
//! | `subscription` | subscription id |
//! | `report` | report kind (`technical`, `owners`, ...) |
//! | `rows` | data rows delivered |
//! | `bytes` | bytes delivered (the encrypted file) |
//! | `run_id` | the run that delivered it |
//! | `remote_host` | server the file went to |
//! | `remote_path` | final path on that server |
//! | `plaintext_sha256` | SHA-256 of the extract before encryption |
//! | `ciphertext_sha256` | SHA-256 of the delivered file (what the `.sha256` sidecar says) |
//! | `receipt_hash` | the receipt's chain hash, to quote in a dispute |
//! | `files` | files delivered by the run: 1, plus one per code table delivered beside it |
//! | `total_rows` | data rows of every file of the run (`rows` plus the code tables') |
//! | `total_bytes` | bytes of every file of the run (sidecars not counted) |
//!
//! CSV: comma separated, CRLF line ends, a header line, fields quoted when they hold a
//! comma, quote, CR or LF. JSON: an array with one object per line; absent values are
//! `null`, numbers are numbers.

use serde::Serialize;
use std::io::Write;

use super::error::Result;
use super::model::{fmt_ts, Receipt};

/// One billing line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillingLine {
    pub receipt_id: i64,
    pub delivered_at: String,
    pub case_number: Option<String>,
    pub customer: String,
    pub customer_org_number: Option<String>,
    pub invoice_reference: Option<String>,
    pub subscription: String,
    pub report: String,
    pub rows: u64,
    pub bytes: u64,
    pub run_id: String,
    pub remote_host: String,
    pub remote_path: String,
    pub plaintext_sha256: String,
    pub ciphertext_sha256: String,
    pub receipt_hash: String,
    pub files: u64,
    pub total_rows: u64,
    pub total_bytes: u64,
}

/// The CSV header, in column order.
pub const COLUMNS: [&str; 19] = [
    "receipt_id",
    "delivered_at",
    "case_number",
    "customer",
    "customer_org_number",
    "invoice_reference",
    "subscription",
    "report",
    "rows",
    "bytes",
    "run_id",
    "remote_host",
    "remote_path",
    "plaintext_sha256",
    "ciphertext_sha256",
    "receipt_hash",
    "files",
    "total_rows",
    "total_bytes",
];

impl From<&Receipt> for BillingLine {
    fn from(r: &Receipt) -> Self {
        BillingLine {
            receipt_id: r.id,
            delivered_at: fmt_ts(r.delivered_at),
            case_number: r.case_number.clone(),
            customer: r.customer.clone(),
            customer_org_number: r.customer_org_number.clone(),
            invoice_reference: r.invoice_reference.clone(),
            subscription: r.subscription.to_string(),
            report: r.report.clone(),
            rows: r.rows,
            bytes: r.bytes,
            run_id: r.run_id.to_string(),
            remote_host: r.remote_host.clone(),
            remote_path: r.remote_path.clone(),
            plaintext_sha256: r.plaintext_sha256.clone(),
            ciphertext_sha256: r.ciphertext_sha256.clone(),
            receipt_hash: r.hash.clone(),
            files: r.file_count(),
            total_rows: r.total_rows(),
            total_bytes: r.total_bytes(),
        }
    }
}

impl BillingLine {
    fn fields(&self) -> [String; 19] {
        let o = |s: &Option<String>| s.clone().unwrap_or_default();
        [
            self.receipt_id.to_string(),
            self.delivered_at.clone(),
            o(&self.case_number),
            self.customer.clone(),
            o(&self.customer_org_number),
            o(&self.invoice_reference),
            self.subscription.clone(),
            self.report.clone(),
            self.rows.to_string(),
            self.bytes.to_string(),
            self.run_id.clone(),
            self.remote_host.clone(),
            self.remote_path.clone(),
            self.plaintext_sha256.clone(),
            self.ciphertext_sha256.clone(),
            self.receipt_hash.clone(),
            self.files.to_string(),
            self.total_rows.to_string(),
            self.total_bytes.to_string(),
        ]
    }
}

/// RFC 4180 quoting of one field.
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn csv_line<W: Write>(w: &mut W, fields: impl IntoIterator<Item = impl AsRef<str>>) -> Result<()> {
    let line: Vec<String> = fields
        .into_iter()
        .map(|f| csv_field(f.as_ref()).into_owned())
        .collect();
    w.write_all(line.join(",").as_bytes())?;
    w.write_all(b"\r\n")?;
    Ok(())
}

/// Writes the header and one line per receipt; returns the number of lines after the header.
pub fn write_csv<W: Write>(mut w: W, receipts: &[Receipt]) -> Result<u64> {
    csv_line(&mut w, COLUMNS)?;
    for r in receipts {
        csv_line(&mut w, BillingLine::from(r).fields())?;
    }
    w.flush()?;
    Ok(receipts.len() as u64)
}

/// Writes a JSON array, one object per line; returns the number of objects.
pub fn write_json<W: Write>(mut w: W, receipts: &[Receipt]) -> Result<u64> {
    w.write_all(b"[")?;
    for (i, r) in receipts.iter().enumerate() {
        w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut w, &BillingLine::from(r))?;
    }
    w.write_all(b"\n]\n")?;
    w.flush()?;
    Ok(receipts.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chain::tests::sample;
    use crate::store::chain::GENESIS;

    #[test]
    fn quoting_follows_rfc4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("ACME, Inc"), "\"ACME, Inc\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
    }

    #[test]
    fn csv_has_header_and_one_line_per_receipt() {
        let mut r = sample(1, GENESIS);
        r.customer = "ACME, Parkering AS".into();
        let mut out = Vec::new();
        assert_eq!(
            write_csv(&mut out, &[r.clone(), sample(2, &r.hash)]).unwrap(),
            2
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert!(lines[1].starts_with("1,2026-01-01T06:01:00Z,2026/0412,\"ACME, Parkering AS\",999888777,,acme,owners,10,1001,"));
        assert_eq!(lines.len(), 4); // header, two lines, empty after the last CRLF
    }

    #[test]
    fn json_is_an_array_of_objects_one_per_line() {
        let r = sample(1, GENESIS);
        let mut out = Vec::new();
        write_json(&mut out, &[r.clone(), sample(2, &r.hash)]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["case_number"], "2026/0412");
        assert_eq!(v[0]["invoice_reference"], serde_json::Value::Null);
        assert_eq!(v[1]["bytes"], 1002);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 4);
        let mut empty = Vec::new();
        write_json(&mut empty, &[]).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&empty).unwrap(),
            serde_json::json!([])
        );
    }
}
