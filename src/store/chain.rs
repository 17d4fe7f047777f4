//! The receipt hash chain: canonical serialisation, hashing and verification (pure).
//!
//! # The hash
//! `hash = hex(SHA-256(canonical(receipt)))`, where `canonical` is:
//!
//! ```text
//! "regdrop-receipt-v1\n"
//! then, for each field in this fixed order:
//!   id, run_id, subscription, customer, customer_org_number, case_number,
//!   invoice_reference, report, remote_host, remote_port, host_key_fingerprint,
//!   remote_path, bytes, rows, plaintext_sha256, ciphertext_sha256, personal_fields,
//!   legal_basis, recipients, attempts, started_at, delivered_at, prev_hash
//! the field name as u8 length + UTF-8 bytes, then its value:
//!   null        'N'
//!   integer     'I' + i64 big-endian
//!   text        'S' + u64 big-endian byte length + UTF-8 bytes
//!   text list   'L' + u64 big-endian count + each item as a text ('S' ...)
//! ```
//! A receipt with further files (code tables delivered in the same run) is hashed in
//! form v2: the magic is `"regdrop-receipt-v2\n"`, the same fields follow, and after
//! `prev_hash` comes `files`: `'F'` + u64 big-endian count, then per file the fields
//! name, remote_path, code_table, rows, bytes, sha256, plaintext_sha256 (name + value as
//! above). A receipt without further files keeps form v1, so every receipt written before
//! v2 existed still verifies; the form follows from the content, and adding, removing or
//! editing a file entry changes the hash either way.
//!
//! Form v3 (receipts from schema v4 on, which record how the delivery went out): magic
//! `"regdrop-receipt-v3\n"`, the v1 fields, then `files` as in v2 (always, count 0 when
//! none), then `transport`: `'T'` followed by kind, server, commit, fsync (integer 0/1)
//! and verify (name + value as above).
//!
//! Form v4 (e-mail deliveries, schema v6 on): magic `"regdrop-receipt-v4\n"`, everything
//! of v3, then after `verify` the mail: `email` `'E'` followed by message_id, to (a text
//! list) and passphrase_sms_to (text or null). SFTP receipts keep form v3.
//!
//! Timestamps are their stored text (`YYYY-MM-DDTHH:MM:SSZ`). Every field except `hash`
//! is covered, `prev_hash` included, so editing any column of a receipt changes its hash,
//! and deleting or reordering receipts breaks the next one's link. The first receipt's
//! `prev_hash` is 64 zeros ([`GENESIS`]). After retention deleted the oldest receipts,
//! the first kept one chains to the anchor recorded by the purge instead.
//!
//! Limits: the chain cannot tell that the newest receipts were deleted (nothing comes
//! after them); compare `head` with a copy kept elsewhere (e.g. logged per delivery).

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

// Defined in `error` (the leaf of the store files); re-exported here, where they were first.
pub use super::error::{BreakKind, BrokenLink};
use super::model::{fmt_ts, Receipt};

/// `prev_hash` of the first receipt ever.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const MAGIC: &[u8] = b"regdrop-receipt-v1\n";
const MAGIC_V2: &[u8] = b"regdrop-receipt-v2\n";
const MAGIC_V3: &[u8] = b"regdrop-receipt-v3\n";
const MAGIC_V4: &[u8] = b"regdrop-receipt-v4\n";

enum V<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    List(&'a [String]),
}

fn put(out: &mut Vec<u8>, name: &str, v: V<'_>) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    fn text(out: &mut Vec<u8>, s: &str) {
        out.push(b'S');
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    match v {
        V::Null => out.push(b'N'),
        V::Int(i) => {
            out.push(b'I');
            out.extend_from_slice(&i.to_be_bytes());
        }
        V::Text(s) => text(out, s),
        V::List(items) => {
            out.push(b'L');
            out.extend_from_slice(&(items.len() as u64).to_be_bytes());
            for s in items {
                text(out, s);
            }
        }
    }
}

fn opt(s: &Option<String>) -> V<'_> {
    s.as_deref().map_or(V::Null, V::Text)
}

/// The canonical bytes of a receipt (everything but `hash`; see the module docs).
pub fn canonical(r: &Receipt) -> Vec<u8> {
    let mut o = Vec::with_capacity(1024);
    o.extend_from_slice(match (&r.transport, r.files.is_empty()) {
        (Some(t), _) if t.email.is_some() => MAGIC_V4,
        (Some(_), _) => MAGIC_V3,
        (None, true) => MAGIC,
        (None, false) => MAGIC_V2,
    });
    put(&mut o, "id", V::Int(r.id));
    put(&mut o, "run_id", V::Text(&r.run_id));
    put(&mut o, "subscription", V::Text(&r.subscription));
    put(&mut o, "customer", V::Text(&r.customer));
    put(&mut o, "customer_org_number", opt(&r.customer_org_number));
    put(&mut o, "case_number", opt(&r.case_number));
    put(&mut o, "invoice_reference", opt(&r.invoice_reference));
    put(&mut o, "report", V::Text(&r.report));
    put(&mut o, "remote_host", V::Text(&r.remote_host));
    put(&mut o, "remote_port", V::Int(i64::from(r.remote_port)));
    put(
        &mut o,
        "host_key_fingerprint",
        V::Text(&r.host_key_fingerprint),
    );
    put(&mut o, "remote_path", V::Text(&r.remote_path));
    // Values above i64::MAX are refused on insert, so the cast is lossless here.
    put(&mut o, "bytes", V::Int(r.bytes as i64));
    put(&mut o, "rows", V::Int(r.rows as i64));
    put(&mut o, "plaintext_sha256", V::Text(&r.plaintext_sha256));
    put(&mut o, "ciphertext_sha256", V::Text(&r.ciphertext_sha256));
    put(&mut o, "personal_fields", V::List(&r.personal_fields));
    put(&mut o, "legal_basis", opt(&r.legal_basis));
    put(&mut o, "recipients", V::List(&r.recipients));
    put(&mut o, "attempts", V::Int(i64::from(r.attempts)));
    put(&mut o, "started_at", V::Text(&fmt_ts(r.started_at)));
    put(&mut o, "delivered_at", V::Text(&fmt_ts(r.delivered_at)));
    put(&mut o, "prev_hash", V::Text(&r.prev_hash));
    if !r.files.is_empty() || r.transport.is_some() {
        o.push(5);
        o.extend_from_slice(b"files");
        o.push(b'F');
        o.extend_from_slice(&(r.files.len() as u64).to_be_bytes());
        for f in &r.files {
            put(&mut o, "name", V::Text(&f.name));
            put(&mut o, "remote_path", V::Text(&f.remote_path));
            put(&mut o, "code_table", V::Text(&f.code_table));
            put(&mut o, "rows", V::Int(f.rows as i64));
            put(&mut o, "bytes", V::Int(f.bytes as i64));
            put(&mut o, "sha256", V::Text(&f.sha256));
            put(&mut o, "plaintext_sha256", V::Text(&f.plaintext_sha256));
        }
    }
    if let Some(t) = &r.transport {
        o.push(9);
        o.extend_from_slice(b"transport");
        o.push(b'T');
        put(&mut o, "kind", V::Text(&t.kind));
        put(&mut o, "server", V::Text(&t.server));
        put(&mut o, "commit", V::Text(&t.commit));
        put(&mut o, "fsync", V::Int(i64::from(t.fsync)));
        put(&mut o, "verify", V::Text(&t.verify));
        if let Some(e) = &t.email {
            o.push(5);
            o.extend_from_slice(b"email");
            o.push(b'E');
            put(&mut o, "message_id", V::Text(&e.message_id));
            put(&mut o, "to", V::List(&e.to));
            put(&mut o, "passphrase_sms_to", opt(&e.passphrase_sms_to));
        }
    }
    o
}

/// Lower-case hex SHA-256 of [`canonical`].
pub fn receipt_hash(r: &Receipt) -> String {
    hex::encode(Sha256::digest(canonical(r)))
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Receipts whose content and link were checked and found good.
    pub verified: u64,
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
    /// What the first kept receipt must chain to: [`GENESIS`] or the purge anchor.
    pub anchor: String,
    /// Id of the last receipt removed by retention, if any were.
    pub anchor_receipt_id: Option<i64>,
    /// Hash of the last receipt (the anchor when there are none).
    pub head: String,
    /// The first problem, if any; verification stops there.
    pub broken: Option<BrokenLink>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = match (self.first_id, self.last_id) {
            (Some(a), Some(b)) => format!("receipts {a}..={b}"),
            _ => "no receipts".to_string(),
        };
        let anchor = match self.anchor_receipt_id {
            Some(id) => format!("anchored at purged receipt {id}"),
            None => "from genesis".to_string(),
        };
        match &self.broken {
            None => write!(
                f,
                "chain intact: {} verified ({range}, {anchor}), head {}",
                self.verified, self.head
            ),
            Some(b) => write!(
                f,
                "chain BROKEN after {} good receipts ({anchor}): {b}",
                self.verified
            ),
        }
    }
}

/// Walks receipts in id order from `anchor`. A row that could not be read is passed as
/// `Err((id, detail))`.
pub fn verify_sequence<I>(anchor: &str, anchor_receipt_id: Option<i64>, rows: I) -> ChainReport
where
    I: IntoIterator<Item = Result<Receipt, (i64, String)>>,
{
    let mut report = ChainReport {
        verified: 0,
        first_id: None,
        last_id: None,
        anchor: anchor.to_string(),
        anchor_receipt_id,
        head: anchor.to_string(),
        broken: None,
    };
    let mut expected_prev = anchor.to_string();
    let mut previous_id = None;
    for row in rows {
        let id = match &row {
            Ok(r) => r.id,
            Err((id, _)) => *id,
        };
        report.first_id.get_or_insert(id);
        report.last_id = Some(id);
        let kind = match row {
            Err((_, detail)) => Some(BreakKind::Unreadable { detail }),
            Ok(r) => {
                let computed = receipt_hash(&r);
                if computed != r.hash {
                    Some(BreakKind::ContentChanged {
                        stored_hash: r.hash,
                        computed_hash: computed,
                    })
                } else if r.prev_hash != expected_prev {
                    Some(BreakKind::LinkBroken {
                        expected_prev: expected_prev.clone(),
                        found_prev: r.prev_hash,
                    })
                } else {
                    expected_prev = r.hash;
                    None
                }
            }
        };
        if let Some(kind) = kind {
            report.broken = Some(BrokenLink {
                receipt_id: id,
                previous_id,
                kind,
            });
            return report;
        }
        report.verified += 1;
        report.head = expected_prev.clone();
        previous_id = Some(id);
    }
    report
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    pub(crate) fn sample(id: i64, prev: &str) -> Receipt {
        let mut r = Receipt {
            id,
            run_id: format!("acme-2026010{id}T060000Z").into(),
            subscription: "acme".into(),
            customer: "ACME Parkering AS".into(),
            customer_org_number: Some("999888777".into()),
            case_number: Some("2026/0412".into()),
            invoice_reference: None,
            report: "owners".into(),
            remote_host: "127.0.0.1".into(),
            remote_port: 22,
            host_key_fingerprint: "SHA256:abc".into(),
            remote_path: format!("/incoming/acme_{id}.dsv.age"),
            bytes: 1000 + id as u64,
            rows: 10,
            plaintext_sha256: "a".repeat(64),
            ciphertext_sha256: "b".repeat(64),
            personal_fields: vec!["owner_name".into()],
            legal_basis: Some("§ 33".into()),
            recipients: vec!["age1xyz".into()],
            attempts: 1,
            started_at: Utc.with_ymd_and_hms(2026, 1, id as u32, 6, 0, 0).unwrap(),
            delivered_at: Utc.with_ymd_and_hms(2026, 1, id as u32, 6, 1, 0).unwrap(),
            files: vec![],
            transport: None,
            prev_hash: prev.into(),
            hash: String::new(),
        };
        r.hash = receipt_hash(&r);
        r
    }

    fn chain(n: i64) -> Vec<Receipt> {
        let mut out: Vec<Receipt> = Vec::new();
        for id in 1..=n {
            let prev = out.last().map_or(GENESIS.to_string(), |r| r.hash.clone());
            out.push(sample(id, &prev));
        }
        out
    }

    #[test]
    fn every_field_is_covered() {
        let base = sample(1, GENESIS);
        let h = receipt_hash(&base);
        type Edit = Box<dyn Fn(&mut Receipt)>;
        let edits: Vec<Edit> = vec![
            Box::new(|r| r.id = 9),
            Box::new(|r| r.remote_path.push('x')),
            Box::new(|r| r.bytes += 1),
            Box::new(|r| r.customer_org_number = None),
            Box::new(|r| r.invoice_reference = Some(String::new())),
            Box::new(|r| r.personal_fields.clear()),
            Box::new(|r| r.recipients.push("age1other".into())),
            Box::new(|r| r.remote_port = 2222),
            Box::new(|r| r.attempts = 2),
            Box::new(|r| r.delivered_at += chrono::Duration::seconds(1)),
            Box::new(|r| r.prev_hash = "1".repeat(64)),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut r = base.clone();
            edit(&mut r);
            assert_ne!(receipt_hash(&r), h, "edit {i} not covered");
        }
    }

    /// A one-file receipt hashes exactly as before v2 (this hash was computed by the v1
    /// code); further files switch to v2 and every part of them is covered.
    #[test]
    fn transport_is_covered_and_switches_to_v3() {
        let plain = sample(1, GENESIS);
        let mut with = plain.clone();
        with.transport = Some(super::super::model::Transport {
            kind: "sftp".into(),
            server: "SSH-2.0-OpenSSH_9.2p1".into(),
            commit: "hardlink".into(),
            fsync: true,
            verify: "size".into(),
            email: None,
        });
        assert!(canonical(&with).starts_with(MAGIC_V3));
        assert!(canonical(&plain).starts_with(MAGIC));
        let h = receipt_hash(&with);
        assert_ne!(h, receipt_hash(&plain));
        type Edit = Box<dyn Fn(&mut Receipt)>;
        let edits: Vec<Edit> = vec![
            Box::new(|r| r.transport.as_mut().unwrap().server.push('x')),
            Box::new(|r| r.transport.as_mut().unwrap().commit = "rename".into()),
            Box::new(|r| r.transport.as_mut().unwrap().fsync = false),
            Box::new(|r| r.transport.as_mut().unwrap().verify = "read-back".into()),
            Box::new(|r| r.transport.as_mut().unwrap().kind = "email".into()),
        ];
        for edit in edits {
            let mut r = with.clone();
            edit(&mut r);
            assert_ne!(receipt_hash(&r), h);
        }
    }

    fn email_of(r: &mut Receipt) -> &mut super::super::model::EmailSent {
        r.transport.as_mut().unwrap().email.as_mut().unwrap()
    }

    /// An e-mail receipt is form v4 and every part of the mail is covered; an SFTP
    /// receipt's v3 hash does not move.
    #[test]
    fn the_mail_is_covered_in_v4() {
        let mut sftp = sample(1, GENESIS);
        sftp.transport = Some(super::super::model::Transport {
            kind: "sftp".into(),
            server: "SSH-2.0-OpenSSH_9.2p1".into(),
            commit: "hardlink".into(),
            fsync: true,
            verify: "size".into(),
            email: None,
        });
        let v3 = receipt_hash(&sftp);
        let mut mail = sftp.clone();
        mail.transport.as_mut().unwrap().email = Some(super::super::model::EmailSent {
            message_id: "run.abc@vegvesen.example".into(),
            to: vec!["data@kunde.no".into()],
            passphrase_sms_to: Some("+47 ••• •• 123".into()),
        });
        assert!(canonical(&mail).starts_with(MAGIC_V4));
        assert!(canonical(&sftp).starts_with(MAGIC_V3));
        assert_eq!(receipt_hash(&sftp), v3);
        let h = receipt_hash(&mail);
        type Edit = Box<dyn Fn(&mut Receipt)>;
        let edits: Vec<Edit> = vec![
            Box::new(|r| email_of(r).message_id.push('x')),
            Box::new(|r| email_of(r).to.push("b@kunde.no".into())),
            Box::new(|r| email_of(r).passphrase_sms_to = None),
        ];
        for edit in edits {
            let mut r = mail.clone();
            edit(&mut r);
            assert_ne!(receipt_hash(&r), h);
        }
    }

    #[test]
    fn v1_receipts_keep_their_hash_and_files_are_covered() {
        let base = sample(1, GENESIS);
        assert!(canonical(&base).starts_with(b"regdrop-receipt-v1\n"));
        assert_eq!(
            receipt_hash(&base),
            "ef2103ea5d5529064184e57e2f8e0f9c07f172df8f99bfb4366ad38019fd77cc"
        );
        let mut with = base.clone();
        with.files.push(super::super::model::DeliveredFile {
            name: "a_merkekode.dsv.age".into(),
            remote_path: "/incoming/a_merkekode.dsv.age".into(),
            code_table: "make".into(),
            rows: 2147,
            bytes: 40_000,
            sha256: "c".repeat(64),
            plaintext_sha256: "d".repeat(64),
        });
        assert!(canonical(&with).starts_with(b"regdrop-receipt-v2\n"));
        let h = receipt_hash(&with);
        assert_ne!(h, receipt_hash(&base));
        type Edit = Box<dyn Fn(&mut Receipt)>;
        let edits: Vec<Edit> = vec![
            Box::new(|r| r.files[0].name.push('x')),
            Box::new(|r| r.files[0].remote_path.push('x')),
            Box::new(|r| r.files[0].code_table = "fuel".into()),
            Box::new(|r| r.files[0].rows += 1),
            Box::new(|r| r.files[0].bytes += 1),
            Box::new(|r| r.files[0].sha256 = "e".repeat(64)),
            Box::new(|r| r.files[0].plaintext_sha256 = "e".repeat(64)),
            Box::new(|r| {
                let f = r.files[0].clone();
                r.files.push(f)
            }),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut r = with.clone();
            edit(&mut r);
            assert_ne!(receipt_hash(&r), h, "file edit {i} not covered");
        }
    }

    #[test]
    fn null_empty_and_list_boundaries_differ() {
        // Length prefixes keep ["ab"] and ["a","b"] apart, and None apart from "".
        let mut a = sample(1, GENESIS);
        let mut b = a.clone();
        a.personal_fields = vec!["ab".into()];
        b.personal_fields = vec!["a".into(), "b".into()];
        assert_ne!(receipt_hash(&a), receipt_hash(&b));
        a.legal_basis = None;
        b.personal_fields = a.personal_fields.clone();
        b.legal_basis = Some(String::new());
        assert_ne!(receipt_hash(&a), receipt_hash(&b));
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(3);
        let rep = verify_sequence(GENESIS, None, c.clone().into_iter().map(Ok));
        assert!(rep.is_intact());
        assert_eq!(rep.verified, 3);
        assert_eq!(rep.head, c[2].hash);
        assert!(rep
            .to_string()
            .starts_with("chain intact: 3 verified (receipts 1..=3, from genesis)"));
    }

    #[test]
    fn edit_is_content_changed_and_deletion_is_link_broken() {
        let mut c = chain(4);
        c[1].bytes = 1;
        let rep = verify_sequence(GENESIS, None, c.into_iter().map(Ok));
        let b = rep.broken.unwrap();
        assert_eq!(b.receipt_id, 2);
        assert!(matches!(b.kind, BreakKind::ContentChanged { .. }));

        let mut c = chain(4);
        c.remove(1);
        let rep = verify_sequence(GENESIS, None, c.into_iter().map(Ok));
        let b = rep.broken.clone().unwrap();
        assert_eq!((b.receipt_id, b.previous_id), (3, Some(1)));
        assert!(matches!(b.kind, BreakKind::LinkBroken { .. }));
        assert!(b.to_string().contains("receipt 3: link to previous broken"));
        assert!(rep
            .to_string()
            .contains("chain BROKEN after 1 good receipts"));
    }

    #[test]
    fn anchor_replaces_genesis_after_purge() {
        let c = chain(4);
        let anchor = c[1].hash.clone();
        let kept: Vec<_> = c[2..].to_vec();
        assert!(verify_sequence(&anchor, Some(2), kept.clone().into_iter().map(Ok)).is_intact());
        let rep = verify_sequence(GENESIS, None, kept.into_iter().map(Ok));
        assert_eq!(rep.broken.unwrap().receipt_id, 3);
    }
}
