//! The receipt hash chain against a model: after random appends and one random tampering of
//! the SQLite file (a field edited, edited and re-hashed, a receipt deleted, two swapped)
//! `verify` accepts exactly the chains the model says are intact and names the first
//! broken link.

use super::{cases, text};
use chrono::{Duration as Days, TimeZone, Utc};
use proptest::prelude::*;
use regdrop::store::{
    chain, AttemptOutcome, BreakKind, NewReceipt, NewRun, Receipt, Store, GENESIS,
};
use std::path::Path;

/// One column edit in SQL (always a different, still readable value) and whether a
/// forger could re-hash the row afterwards (not for the hash columns themselves).
const EDITS: [(&str, &str); 20] = [
    ("customer", "customer = customer || 'x'"),
    ("subscription", "subscription = subscription || 'x'"),
    ("report", "report = report || 'x'"),
    ("remote_host", "remote_host = remote_host || '.evil'"),
    (
        "host_key_fingerprint",
        "host_key_fingerprint = host_key_fingerprint || 'x'",
    ),
    ("remote_path", "remote_path = remote_path || '.old'"),
    (
        "plaintext_sha256",
        "plaintext_sha256 = plaintext_sha256 || '0'",
    ),
    (
        "ciphertext_sha256",
        "ciphertext_sha256 = ciphertext_sha256 || '0'",
    ),
    (
        "customer_org_number",
        "customer_org_number = coalesce(customer_org_number, '') || '1'",
    ),
    (
        "case_number",
        "case_number = coalesce(case_number, '') || '1'",
    ),
    (
        "invoice_reference",
        "invoice_reference = coalesce(invoice_reference, '') || '1'",
    ),
    (
        "legal_basis",
        "legal_basis = coalesce(legal_basis, '') || '1'",
    ),
    ("bytes", "bytes = bytes + 1"),
    ("rows", "rows = rows + 1"),
    ("remote_port", "remote_port = remote_port + 1"),
    ("attempts", "attempts = attempts + 1"),
    (
        "personal_fields",
        "personal_fields = json_insert(personal_fields, '$[#]', 'x')",
    ),
    (
        "recipients",
        "recipients = json_insert(recipients, '$[#]', 'x')",
    ),
    (
        "started_at",
        "started_at = strftime('%Y-%m-%dT%H:%M:%SZ', started_at, '+1 second')",
    ),
    (
        "delivered_at",
        "delivered_at = strftime('%Y-%m-%dT%H:%M:%SZ', delivered_at, '-1 second')",
    ),
];
/// Edits of the chain columns: the row no longer matches its stored hash.
const HASH_EDITS: [(&str, &str); 2] = [
    ("prev_hash", "prev_hash = (CASE substr(prev_hash, 1, 1) WHEN '0' THEN '1' ELSE '0' END) || substr(prev_hash, 2)"),
    ("hash", "hash = (CASE substr(hash, 1, 1) WHEN '0' THEN '1' ELSE '0' END) || substr(hash, 2)"),
];

#[derive(Debug, Clone)]
enum Tamper {
    Nothing,
    /// `EDITS[edit]` (or `HASH_EDITS[edit - EDITS.len()]`) on the `at`-th receipt.
    Edit {
        at: usize,
        edit: usize,
    },
    /// `EDITS[edit]` on the `at`-th receipt, then its hash recomputed.
    EditAndRehash {
        at: usize,
        edit: usize,
    },
    Delete {
        at: usize,
    },
    /// The ids of the `a`-th and `b`-th receipts exchanged (a < b).
    Swap {
        a: usize,
        b: usize,
    },
}

/// What verification must say: intact (with how many receipts), or broken at a receipt.
#[derive(Debug, PartialEq)]
enum Expect {
    Intact {
        verified: u64,
    },
    ContentChanged {
        at: usize,
        verified: u64,
    },
    LinkBroken {
        at: usize,
        previous: Option<usize>,
        verified: u64,
    },
}

/// The model: receipts `0..n` chained in order; which break `tamper` makes visible.
fn model(n: usize, tamper: &Tamper) -> Expect {
    let k = |i: usize| i as u64;
    match *tamper {
        Tamper::Nothing => Expect::Intact { verified: k(n) },
        Tamper::Edit { at, .. } => Expect::ContentChanged {
            at,
            verified: k(at),
        },
        // The newest receipt re-hashed: nothing comes after it to notice (a known limit;
        // compare the head with a copy kept elsewhere).
        Tamper::EditAndRehash { at, .. } if at + 1 == n => Expect::Intact { verified: k(n) },
        Tamper::EditAndRehash { at, .. } => Expect::LinkBroken {
            at: at + 1,
            previous: Some(at),
            verified: k(at + 1),
        },
        // The newest receipt deleted: the same known limit.
        Tamper::Delete { at } if at + 1 == n => Expect::Intact { verified: k(n - 1) },
        Tamper::Delete { at } => Expect::LinkBroken {
            at: at + 1,
            previous: at.checked_sub(1),
            verified: k(at),
        },
        // The first of the two places now holds a row whose content names another id.
        Tamper::Swap { a, .. } => Expect::ContentChanged {
            at: a,
            verified: k(a),
        },
    }
}

fn tamper(n: usize) -> BoxedStrategy<Tamper> {
    let edits = EDITS.len();
    let all = EDITS.len() + HASH_EDITS.len();
    let one = prop_oneof![
        1 => Just(Tamper::Nothing),
        3 => (0..n, 0..all).prop_map(|(at, edit)| Tamper::Edit { at, edit }),
        2 => (0..n, 0..edits).prop_map(|(at, edit)| Tamper::EditAndRehash { at, edit }),
        2 => (0..n).prop_map(|at| Tamper::Delete { at }),
    ];
    if n < 2 {
        return one.boxed();
    }
    let swap = (0..n - 1)
        .prop_flat_map(move |a| (Just(a), a + 1..n))
        .prop_map(|(a, b)| Tamper::Swap { a, b });
    prop_oneof![4 => one, 1 => swap].boxed()
}

#[derive(Debug, Clone)]
struct Delivery {
    subscription: &'static str,
    customer: String,
    org: Option<String>,
    bytes: u64,
    rows: u64,
    port: u16,
    personal: Vec<String>,
    recipients: Vec<String>,
}

fn delivery() -> impl Strategy<Value = Delivery> {
    (
        proptest::sample::select(vec!["acme", "bilco", "kommune-3"]),
        text(20),
        proptest::option::of("[0-9]{9}"),
        0u64..(1 << 40),
        0u64..5_000_000,
        1u16..65_000,
        proptest::collection::vec("[a-z_]{1,12}", 0..3),
        proptest::collection::vec("age1[a-z0-9]{10}", 1..3),
    )
        .prop_map(
            |(subscription, customer, org, bytes, rows, port, personal, recipients)| Delivery {
                subscription,
                customer,
                org,
                bytes,
                rows,
                port,
                personal,
                recipients,
            },
        )
}

/// Appends one receipt per delivery (each its own run, a day apart) through the store.
fn append(s: &Store, deliveries: &[Delivery]) -> Vec<Receipt> {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 6, 0, 0).unwrap();
    deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let at = t0 + Days::days(i as i64);
            let run = s
                .create_run(&NewRun {
                    subscription: d.subscription.into(),
                    scheduled_at: at,
                })
                .unwrap()
                .into_run();
            let n = s.begin_attempt(&run.id).unwrap();
            let r = s
                .commit_receipt(&NewReceipt {
                    run_id: run.id.clone(),
                    subscription: d.subscription.into(),
                    customer: d.customer.clone(),
                    customer_org_number: d.org.clone(),
                    case_number: None,
                    invoice_reference: None,
                    report: "technical".into(),
                    remote_host: "sftp.example.no".into(),
                    remote_port: d.port,
                    host_key_fingerprint: "SHA256:Zm9vYmFy".into(),
                    remote_path: format!("/in/{}.dsv.age", run.id),
                    bytes: d.bytes,
                    rows: d.rows,
                    plaintext_sha256: "a".repeat(64),
                    ciphertext_sha256: "b".repeat(64),
                    personal_fields: d.personal.clone(),
                    legal_basis: None,
                    recipients: d.recipients.clone(),
                    started_at: at + Days::minutes(1),
                    delivered_at: at + Days::minutes(2),
                })
                .unwrap();
            s.finish_attempt(&run.id, n, AttemptOutcome::Ok, None, None)
                .unwrap();
            r
        })
        .collect()
}

/// Tampers with the file as someone with the `sqlite3` shell could.
fn apply(path: &Path, s: &Store, receipts: &[Receipt], t: &Tamper) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("DROP TRIGGER IF EXISTS receipts_append_only")
        .unwrap();
    let id = |i: usize| receipts[i].id;
    let edit = |e: usize| {
        if e < EDITS.len() {
            EDITS[e].1
        } else {
            HASH_EDITS[e - EDITS.len()].1
        }
    };
    match *t {
        Tamper::Nothing => {}
        Tamper::Edit { at, edit: e } => {
            c.execute(
                &format!("UPDATE receipts SET {} WHERE id = ?1", edit(e)),
                [id(at)],
            )
            .unwrap();
        }
        Tamper::EditAndRehash { at, edit: e } => {
            c.execute(
                &format!("UPDATE receipts SET {} WHERE id = ?1", edit(e)),
                [id(at)],
            )
            .unwrap();
            let forged = chain::receipt_hash(&s.receipt(id(at)).unwrap().unwrap());
            c.execute(
                "UPDATE receipts SET hash = ?1 WHERE id = ?2",
                rusqlite::params![forged, id(at)],
            )
            .unwrap();
        }
        Tamper::Delete { at } => {
            c.execute("DELETE FROM receipts WHERE id = ?1", [id(at)])
                .unwrap();
        }
        Tamper::Swap { a, b } => {
            c.execute_batch(&format!(
                "BEGIN; UPDATE receipts SET id = -1 WHERE id = {a}; \
                 UPDATE receipts SET id = {a} WHERE id = {b}; \
                 UPDATE receipts SET id = {b} WHERE id = -1; COMMIT;",
                a = id(a),
                b = id(b)
            ))
            .unwrap();
        }
    }
}

fn chain_case() -> impl Strategy<Value = (Vec<Delivery>, Tamper)> {
    proptest::collection::vec(delivery(), 1..7).prop_flat_map(|d| {
        let n = d.len();
        (Just(d), tamper(n))
    })
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn verify_accepts_exactly_the_untampered_chain_and_names_the_first_broken_link(
        (deliveries, t) in chain_case()
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let s = Store::open(&path).unwrap();
        let receipts = append(&s, &deliveries);
        prop_assert_eq!(&receipts[0].prev_hash, GENESIS);
        for w in receipts.windows(2) {
            prop_assert_eq!(&w[1].prev_hash, &w[0].hash);
        }
        apply(&path, &s, &receipts, &t);
        let report = s.verify_chain().unwrap();
        let id = |i: usize| receipts[i].id;
        match model(receipts.len(), &t) {
            Expect::Intact { verified } => {
                prop_assert!(report.is_intact(), "{t:?}: {report}");
                prop_assert_eq!(report.verified, verified);
                let untouched = matches!(t, Tamper::Nothing)
                    || matches!(t, Tamper::Delete { .. });
                if untouched {
                    let head = match verified {
                        0 => GENESIS.to_string(),
                        v => receipts[v as usize - 1].hash.clone(),
                    };
                    prop_assert_eq!(&report.head, &head);
                } else {
                    prop_assert_ne!(&report.head, &receipts.last().unwrap().hash);
                }
            }
            Expect::ContentChanged { at, verified } => {
                let b = report.broken.clone().unwrap_or_else(|| panic!("{t:?} not detected: {report}"));
                prop_assert_eq!(b.receipt_id, id(at), "{:?}: {}", t, report);
                prop_assert!(matches!(b.kind, BreakKind::ContentChanged { .. }), "{t:?}: {b}");
                prop_assert_eq!(b.previous_id, at.checked_sub(1).map(id));
                prop_assert_eq!(report.verified, verified);
                let receipt_prefix = format!("receipt {}: content changed", id(at));
                prop_assert!(b.to_string().starts_with(&receipt_prefix), "{b}");
            }
            Expect::LinkBroken { at, previous, verified } => {
                let b = report.broken.clone().unwrap_or_else(|| panic!("{t:?} not detected: {report}"));
                prop_assert_eq!(b.receipt_id, id(at), "{:?}: {}", t, report);
                prop_assert!(matches!(b.kind, BreakKind::LinkBroken { .. }), "{t:?}: {b}");
                prop_assert_eq!(b.previous_id, previous.map(id));
                prop_assert_eq!(report.verified, verified);
                let receipt_prefix = format!("receipt {}: link to previous broken", id(at));
                prop_assert!(b.to_string().starts_with(&receipt_prefix), "{b}");
            }
        }
    }
}
