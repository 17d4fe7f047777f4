//! Billing: `regdrop receipts export --format csv --month YYYY-MM` on a real state
//! file lists exactly the deliveries of that calendar month (in the configured time zone,
//! Europe/Oslo here), one line each, with the subscription's case number, customer, report,
//! rows, bytes and delivery time. Receipts are made through the store API from the loaded
//! subscriptions, with delivery times on both sides of each month boundary.

use chrono::{DateTime, Utc};
use regdrop::core::config::Subscription;
use regdrop::store::{NewReceipt, NewRun, Store};
use std::process::Command;

fn sub_file(id: &str, customer: &str, case: &str, invoice: &str) -> String {
    format!(
        r#"id = "{id}"
customer = "{customer}"
customer_org_number = "923609016"
case_number = "{case}"
invoice_reference = "{invoice}"
[schedule]
cron = "0 6 * * *"
[target]
host = "sftp.{id}.example"
username = "u"
host_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj"]
auth = {{ password_file = "{id}.password" }}
remote_dir = "/in"
[extract]
report = "technical"
[encryption]
recipients = ["age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r"]
"#
    )
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A delivered run of `sub`, its receipt built from the subscription as delivery does.
fn deliver(store: &Store, sub: &Subscription, delivered_at: DateTime<Utc>, rows: u64, bytes: u64) {
    let run = store
        .create_run(&NewRun {
            subscription: sub.id.clone(),
            scheduled_at: delivered_at - chrono::Duration::minutes(5),
        })
        .unwrap()
        .into_run();
    let n = store.begin_attempt(&run.id).unwrap();
    store
        .finish_attempt(&run.id, n, regdrop::store::AttemptOutcome::Ok, None, None)
        .unwrap();
    store
        .commit_receipt(&NewReceipt {
            run_id: run.id.clone(),
            subscription: sub.id.clone(),
            customer: sub.customer.clone(),
            customer_org_number: sub.customer_org_number.clone(),
            case_number: sub.case_number.clone(),
            invoice_reference: sub.invoice_reference.clone(),
            report: sub.extract.report.as_str().into(),
            remote_host: sub.target().unwrap().host.clone(),
            remote_port: sub.target().unwrap().port,
            host_key_fingerprint: "SHA256:test".into(),
            remote_path: format!("/in/{}.dsv.age", run.id),
            bytes,
            rows,
            plaintext_sha256: "a".repeat(64),
            ciphertext_sha256: "b".repeat(64),
            personal_fields: sub.personal_fields(),
            legal_basis: sub.legal_basis.clone(),
            recipients: sub
                .encryption
                .recipients
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            started_at: delivered_at - chrono::Duration::minutes(1),
            delivered_at,
        })
        .unwrap();
}

#[test]
fn monthly_export_lists_exactly_that_months_deliveries_with_case_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("subs")).unwrap();
    std::fs::write(
        d.join("regdrop.toml"),
        "state_db = \"state.sqlite\"\nsubscriptions_dir = \"subs\"\n[defaults]\ntimezone = \"Europe/Oslo\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("subs/a.toml"),
        sub_file("forsikring", "Forsikring ASA", "26/123456", "PO-4411"),
    )
    .unwrap();
    std::fs::write(
        d.join("subs/b.toml"),
        sub_file("bompenger", "Bom, Vei & Co AS", "26/654321", ""),
    )
    .unwrap();
    let loaded = regdrop::loader::load(&d.join("regdrop.toml")).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let a = loaded.subscription("forsikring").unwrap();
    let b = loaded.subscription("bompenger").unwrap();

    let store = Store::open(d.join("state.sqlite")).unwrap();
    // October 2026 in Oslo is [2026-09-30T22:00Z, 2026-10-31T23:00Z) (summer time ends 25 October).
    deliver(&store, a, ts("2026-09-30T21:59:59Z"), 1, 10); // 23:59:59 on 30 Sept in Oslo: September
    deliver(&store, b, ts("2026-09-30T22:00:00Z"), 2, 20); // 00:00 on 1 Oct in Oslo: October
    deliver(&store, a, ts("2026-10-15T04:01:00Z"), 3, 30); // October
    deliver(&store, b, ts("2026-10-31T22:59:59Z"), 4, 40); // 23:59:59 on 31 Oct in Oslo: October
    deliver(&store, a, ts("2026-10-31T23:00:00Z"), 5, 50); // 00:00 on 1 Nov in Oslo: November
    deliver(&store, b, ts("2026-11-20T05:00:00Z"), 6, 60); // November
    drop(store);

    let out = Command::new(env!("CARGO_BIN_EXE_regdrop"))
        .arg("--config")
        .arg(d.join("regdrop.toml"))
        .args([
            "receipts", "export", "--format", "csv", "--month", "2026-10",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rd = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    for c in [
        "case_number",
        "customer",
        "report",
        "rows",
        "bytes",
        "delivered_at",
        "invoice_reference",
        "customer_org_number",
    ] {
        assert!(header.iter().any(|h| h == c), "no column {c} in {header:?}");
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let lines: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    let got: Vec<(&str, &str, &str, &str, &str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                &l[col("delivered_at")],
                &l[col("case_number")],
                &l[col("customer")],
                &l[col("subscription")],
                &l[col("report")],
                &l[col("rows")],
                &l[col("bytes")],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "2026-09-30T22:00:00Z",
                "26/654321",
                "Bom, Vei & Co AS",
                "bompenger",
                "technical",
                "2",
                "20"
            ),
            (
                "2026-10-15T04:01:00Z",
                "26/123456",
                "Forsikring ASA",
                "forsikring",
                "technical",
                "3",
                "30"
            ),
            (
                "2026-10-31T22:59:59Z",
                "26/654321",
                "Bom, Vei & Co AS",
                "bompenger",
                "technical",
                "4",
                "40"
            ),
        ]
    );
    assert_eq!(&lines[1][col("invoice_reference")], "PO-4411");
    assert_eq!(&lines[1][col("customer_org_number")], "923609016");
    // CRLF line ends and RFC 4180 quoting of the customer name with a comma.
    assert!(text.contains("\"Bom, Vei & Co AS\""), "{text}");
    assert!(
        text.split('\n')
            .filter(|l| !l.is_empty())
            .all(|l| l.ends_with('\r')),
        "CRLF"
    );

    // The months around it hold the other deliveries, and nothing is counted twice.
    let count = |month: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_regdrop"))
            .arg("--config")
            .arg(d.join("regdrop.toml"))
            .args(["receipts", "export", "--format", "csv", "--month", month])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().lines().count() - 1
    };
    assert_eq!(
        (
            count("2026-09"),
            count("2026-10"),
            count("2026-11"),
            count("2026-12")
        ),
        (1, 3, 2, 0)
    );
}

/// A state file from before code tables (schema v2) migrates to v3 with its receipts
/// verifying unchanged; a receipt with further files chains after them and reads back.
#[test]
fn v2_state_files_migrate_and_receipts_with_files_chain_after_old_ones() {
    use regdrop::store::{chain, migrations, DeliveredFile, RunState};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        migrations::migrate_to(&conn, 2).unwrap();
        conn.execute(
            "INSERT INTO runs (id, subscription, scheduled_at, created_at, state, updated_at) VALUES \
             ('old-20261001T040000Z', 'old', '2026-10-01T04:00:00Z', '2026-10-01T04:00:00Z', 'delivered', '2026-10-01T04:01:00Z')",
            [],
        )
        .unwrap();
        let mut r = regdrop::store::Receipt {
            id: 1,
            run_id: "old-20261001T040000Z".into(),
            subscription: "old".into(),
            customer: "Old AS".into(),
            customer_org_number: None,
            case_number: Some("25/1".into()),
            invoice_reference: None,
            report: "technical".into(),
            remote_host: "h".into(),
            remote_port: 22,
            host_key_fingerprint: "SHA256:x".into(),
            remote_path: "/in/f".into(),
            bytes: 5,
            rows: 1,
            plaintext_sha256: "a".repeat(64),
            ciphertext_sha256: "b".repeat(64),
            personal_fields: vec![],
            legal_basis: None,
            recipients: vec![],
            attempts: 1,
            started_at: ts("2026-10-01T04:00:00Z"),
            delivered_at: ts("2026-10-01T04:01:00Z"),
            files: vec![],
            transport: None,
            prev_hash: chain::GENESIS.into(),
            hash: String::new(),
        };
        r.hash = chain::receipt_hash(&r);
        conn.execute(
            "INSERT INTO receipts (id, run_id, subscription, customer, case_number, report, remote_host, remote_port, \
             host_key_fingerprint, remote_path, bytes, rows, plaintext_sha256, ciphertext_sha256, personal_fields, \
             recipients, attempts, started_at, delivered_at, prev_hash, hash) VALUES \
             (1, ?1, 'old', 'Old AS', '25/1', 'technical', 'h', 22, 'SHA256:x', '/in/f', 5, 1, ?2, ?3, '[]', '[]', 1, \
              '2026-10-01T04:00:00Z', '2026-10-01T04:01:00Z', ?4, ?5)",
            rusqlite::params![r.run_id, r.plaintext_sha256, r.ciphertext_sha256, r.prev_hash, r.hash],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::LATEST_VERSION);
    assert!(store.verify_chain().unwrap().is_intact());
    let run = store
        .create_run(&NewRun {
            subscription: "new".into(),
            scheduled_at: ts("2026-10-02T04:00:00Z"),
        })
        .unwrap()
        .into_run();
    store.begin_attempt(&run.id).unwrap();
    let file = DeliveredFile {
        name: "n_merkekode.dsv.age".into(),
        remote_path: "/in/n_merkekode.dsv.age".into(),
        code_table: "make".into(),
        rows: 2147,
        bytes: 30_000,
        sha256: "c".repeat(64),
        plaintext_sha256: "d".repeat(64),
    };
    let new = NewReceipt {
        run_id: run.id.clone(),
        subscription: "new".into(),
        customer: "New AS".into(),
        customer_org_number: None,
        case_number: Some("26/2".into()),
        invoice_reference: None,
        report: "technical_open".into(),
        remote_host: "h".into(),
        remote_port: 22,
        host_key_fingerprint: "SHA256:x".into(),
        remote_path: "/in/n.dsv".into(),
        bytes: 100,
        rows: 3,
        plaintext_sha256: "a".repeat(64),
        ciphertext_sha256: "b".repeat(64),
        personal_fields: vec![],
        legal_basis: None,
        recipients: vec![],
        started_at: ts("2026-10-02T04:00:00Z"),
        delivered_at: ts("2026-10-02T04:01:00Z"),
    };
    let r = store
        .commit_receipt_with_files(&new, std::slice::from_ref(&file))
        .unwrap();
    assert_eq!(store.receipt(r.id).unwrap().unwrap().files, vec![file]);
    assert_eq!(
        (r.file_count(), r.total_rows(), r.total_bytes()),
        (2, 2150, 30_100)
    );
    assert_eq!(
        store.get_run(&run.id).unwrap().unwrap().state,
        RunState::Delivered
    );
    assert!(store.verify_chain().unwrap().is_intact());
    // Dropping the file list from the receipt is caught.
    store
        .connection()
        .execute_batch(
            "DROP TRIGGER receipts_append_only; UPDATE receipts SET files = NULL WHERE id = 2",
        )
        .unwrap();
    let rep = store.verify_chain().unwrap();
    assert_eq!(rep.broken.unwrap().receipt_id, 2);
}
