//! The state store on both engines: runs survive a reopen, receipts chain, tampering and
//! deletion are caught, retention keeps the chain verifiable, and the billing export lists
//! exactly one month.

use super::backend::{both, TestDb};
use chrono::{DateTime, TimeZone, Utc};
use regdrop::core::errors::chain as text_of;
use regdrop::core::retry::Classify;
use regdrop::store::*;

pub fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

pub fn receipt_for(run: &Run, delivered_at: DateTime<Utc>) -> NewReceipt {
    NewReceipt {
        run_id: run.id.clone(),
        subscription: run.subscription.clone(),
        customer: "ACME Parkering AS".into(),
        customer_org_number: Some("999888777".into()),
        case_number: Some("2026/0412".into()),
        invoice_reference: Some("PO-77".into()),
        report: "owners".into(),
        remote_host: "sftp.acme.example".into(),
        remote_port: 22,
        host_key_fingerprint: "SHA256:Zm9vYmFy".into(),
        remote_path: format!("/incoming/{}.dsv.age", run.id),
        bytes: 4096,
        rows: 12,
        plaintext_sha256: "a".repeat(64),
        ciphertext_sha256: "b".repeat(64),
        personal_fields: vec!["owner_name".into(), "owner_address".into()],
        legal_basis: Some("Parking regulation § 33".into()),
        recipients: vec!["age1qqqq".into()],
        started_at: delivered_at - chrono::Duration::minutes(2),
        delivered_at,
    }
}

/// Creates a run for `sub` at `at` and delivers it at `at + 1 min`.
pub fn deliver(s: &Store, sub: &str, at: DateTime<Utc>) -> Receipt {
    let run = s
        .create_run(&NewRun {
            subscription: sub.into(),
            scheduled_at: at,
        })
        .unwrap()
        .into_run();
    let n = s.begin_attempt(&run.id).unwrap();
    let r = s
        .commit_receipt(&receipt_for(&run, at + chrono::Duration::minutes(1)))
        .unwrap();
    s.finish_attempt(&run.id, n, AttemptOutcome::Ok, None, None)
        .unwrap();
    r
}

fn runs_are_created_once_and_resumed_after_reopen(db: &TestDb) {
    let at = ts(2026, 11, 23, 5, 0, 0);
    let id = {
        let s = db.open();
        let run = s
            .create_run(&NewRun {
                subscription: "acme".into(),
                scheduled_at: at,
            })
            .unwrap()
            .into_run();
        s.record_artifact(
            &run.id,
            &Artifact {
                path: "spool/acme.age".into(),
                file_name: "acme_20261123.dsv.age".into(),
                plaintext_sha256: "a".repeat(64),
                ciphertext_sha256: "b".repeat(64),
                rows: 12,
                plaintext_bytes: 3000,
                ciphertext_bytes: 4096,
                period_from: Some("2026-11-16".into()),
                period_to: Some("2026-11-22".into()),
                format: "dsv".into(),
                fallback_note: None,
            },
        )
        .unwrap();
        s.set_state(&run.id, RunState::Uploading, Some("attempt 1"))
            .unwrap();
        s.begin_attempt(&run.id).unwrap();
        run.id
        // dropped here: the "crash"
    };
    let s = db.open();
    let unfinished = s.unfinished_runs().unwrap();
    assert_eq!(unfinished.len(), 1);
    let run = &unfinished[0];
    assert_eq!(run.id, id);
    assert_eq!(run.id, "acme-20261123T050000Z");
    assert_eq!(run.state, RunState::Uploading);
    assert_eq!(run.artifact.as_ref().unwrap().ciphertext_bytes, 4096);
    assert_eq!(s.active_run(&"acme".into()).unwrap().unwrap().id, id);
    // The scheduler firing the same time again gets the same run back.
    let again = s
        .create_run(&NewRun {
            subscription: "acme".into(),
            scheduled_at: at,
        })
        .unwrap();
    assert!(matches!(again, RunCreated::Exists(ref r) if r.id == id));
    // Resume: next attempt is 2, the interrupted one is closed.
    assert_eq!(s.begin_attempt(&id).unwrap(), 2);
    let r = s.commit_receipt(&receipt_for(run, at)).unwrap();
    assert_eq!(r.attempts, 2);
    assert!(s.unfinished_runs().unwrap().is_empty());
    assert_eq!(s.active_run(&"acme".into()).unwrap(), None);
}

fn one_run_per_subscription_and_scheduled_time_even_in_raw_sql(db: &TestDb) {
    let s = db.open();
    let at = ts(2026, 1, 5, 6, 0, 0);
    let run = s
        .create_run(&NewRun {
            subscription: "acme".into(),
            scheduled_at: at,
        })
        .unwrap();
    s.set_state(&run.run().id, RunState::Failed, Some("test"))
        .unwrap();
    let err = s
        .connection()
        .execute(
            "INSERT INTO runs (id, subscription, scheduled_at, created_at, state, updated_at) \
             VALUES ('other-id', 'acme', ?1, ?1, 'failed', ?1)",
            [fmt_ts(at)],
        )
        .unwrap_err();
    // The message names the store; the cause (the engine's unique constraint) is in the
    // chain, printed once.
    let text = text_of(&err);
    assert!(text.to_lowercase().contains("unique"), "{text}");
    assert!(!err.is_retryable(), "a constraint violation is permanent");
}

fn commit_receipt_is_idempotent_and_never_makes_two(db: &TestDb) {
    let s = db.open();
    let run = s
        .create_run(&NewRun {
            subscription: "acme".into(),
            scheduled_at: ts(2026, 2, 2, 6, 0, 0),
        })
        .unwrap()
        .into_run();
    let nr = receipt_for(&run, ts(2026, 2, 2, 6, 1, 0));
    let a = s.commit_receipt(&nr).unwrap();
    let b = s.commit_receipt(&nr).unwrap();
    assert_eq!(a, b);
    // Reopened (a restarted daemon resuming the run) it is still the same receipt.
    drop(s);
    let s = db.open();
    assert_eq!(s.commit_receipt(&nr).unwrap(), a);
    let n: i64 = s
        .connection()
        .query_row("SELECT COUNT(*) FROM receipts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        s.get_run(&run.id).unwrap().unwrap().state,
        RunState::Delivered
    );
    assert_eq!(s.receipt_for_run(&run.id).unwrap(), Some(a.clone()));
    assert_eq!(s.receipt(a.id).unwrap(), Some(a));
    // Even raw SQL cannot add a second receipt for the run.
    let err = s
        .connection()
        .execute(
            "INSERT INTO receipts SELECT id + 1, run_id, subscription, customer, \
             customer_org_number, case_number, invoice_reference, report, remote_host, \
             remote_port, host_key_fingerprint, remote_path, bytes, rows, plaintext_sha256, \
             ciphertext_sha256, personal_fields, legal_basis, recipients, attempts, started_at, \
             delivered_at, prev_hash, hash, files, transport FROM receipts",
            [],
        )
        .unwrap_err();
    let text = text_of(&err);
    assert!(text.to_lowercase().contains("unique"), "{text}");
    assert!(!err.is_retryable(), "{text}");
}

fn chain_verifies_and_tampered_bytes_name_the_receipt(db: &TestDb) {
    let s = db.open();
    let mut receipts = Vec::new();
    for d in 1..=5 {
        receipts.push(deliver(&s, "acme", ts(2026, 3, d, 6, 0, 0)));
    }
    assert_eq!(receipts[0].prev_hash, GENESIS);
    for w in receipts.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    let rep = s.verify_chain().unwrap();
    assert!(rep.is_intact(), "{rep:?}");
    assert_eq!(
        (rep.verified, rep.head.as_str()),
        (5, receipts[4].hash.as_str())
    );

    // The trigger refuses edits...
    let err = s
        .connection()
        .execute("UPDATE receipts SET bytes = 1 WHERE id = 3", [])
        .unwrap_err();
    assert!(text_of(&err).contains("append-only"), "{}", text_of(&err));
    // ...but someone with the sqlite3 shell or psql can drop it: verify must still catch
    // the edit.
    db.drop_append_only_trigger(&s);
    db.tamper(&s, "UPDATE receipts SET bytes = bytes + 1 WHERE id = 3");
    let rep = s.verify_chain().unwrap();
    let b = rep.broken.expect("tamper not detected");
    assert_eq!(b.receipt_id, 3);
    assert!(matches!(b.kind, BreakKind::ContentChanged { .. }));
    assert!(
        b.to_string().starts_with("receipt 3: content changed"),
        "{b}"
    );
    assert_eq!(rep.verified, 2);
}

fn tampered_remote_path_and_rehashed_row_are_detected(db: &TestDb) {
    let s = db.open();
    for d in 1..=4 {
        deliver(&s, "acme", ts(2026, 3, d, 6, 0, 0));
    }
    db.drop_append_only_trigger(&s);
    db.tamper(
        &s,
        "UPDATE receipts SET remote_path = '/elsewhere/x' WHERE id = 2",
    );
    let b = s.verify_chain().unwrap().broken.unwrap();
    assert_eq!(b.receipt_id, 2);
    assert!(matches!(b.kind, BreakKind::ContentChanged { .. }));

    // A forger who also recomputes the edited row's hash breaks the next link instead.
    let mut forged = s.receipt(2).unwrap().unwrap();
    forged.hash = chain::receipt_hash(&forged);
    s.connection()
        .execute("UPDATE receipts SET hash = ?1 WHERE id = 2", [&forged.hash])
        .unwrap();
    let b = s.verify_chain().unwrap().broken.unwrap();
    assert_eq!((b.receipt_id, b.previous_id), (3, Some(2)));
    assert!(matches!(b.kind, BreakKind::LinkBroken { .. }));

    // An unreadable edit (a timestamp that is no timestamp) is reported, not a crash.
    let db2 = TestDb::new(db.engine);
    let s2 = db2.open();
    deliver(&s2, "acme", ts(2026, 3, 1, 6, 0, 0));
    db2.drop_append_only_trigger(&s2);
    db2.tamper(
        &s2,
        "UPDATE receipts SET delivered_at = 'yesterday' WHERE id = 1",
    );
    let b = s2.verify_chain().unwrap().broken.unwrap();
    assert_eq!(b.receipt_id, 1);
    assert!(matches!(b.kind, BreakKind::Unreadable { .. }));
}

fn deleting_a_middle_receipt_is_detected(db: &TestDb) {
    let s = db.open();
    for d in 1..=5 {
        deliver(&s, "acme", ts(2026, 3, d, 6, 0, 0));
    }
    db.tamper(&s, "DELETE FROM receipts WHERE id = 3");
    let rep = s.verify_chain().unwrap();
    let b = rep.broken.unwrap();
    assert_eq!((b.receipt_id, b.previous_id), (4, Some(2)));
    assert!(matches!(b.kind, BreakKind::LinkBroken { .. }));
    assert!(
        b.to_string().contains("receipt 4: link to previous broken"),
        "{b}"
    );

    // Deleting the very first receipt (without retention) is caught too.
    let db2 = TestDb::new(db.engine);
    let s = db2.open();
    for d in 1..=2 {
        deliver(&s, "acme", ts(2026, 3, d, 6, 0, 0));
    }
    db2.tamper(&s, "DELETE FROM receipts WHERE id = 1");
    let b = s.verify_chain().unwrap().broken.unwrap();
    assert_eq!((b.receipt_id, b.previous_id), (2, None));
}

fn purge_keeps_verify_green_for_what_remains(db: &TestDb) {
    let s = db.open().with_clock(|| ts(2026, 6, 1, 0, 0, 0));
    let mut all = Vec::new();
    for (m, d) in [(1, 10), (1, 20), (2, 10), (3, 5), (3, 25), (4, 1)] {
        all.push(deliver(&s, "acme", ts(2026, m, d, 6, 0, 0)));
    }
    // A failed run with an attempt in January, and an active run that must survive.
    let failed = s
        .create_run(&NewRun {
            subscription: "beta".into(),
            scheduled_at: ts(2026, 1, 3, 6, 0, 0),
        })
        .unwrap()
        .into_run();
    s.set_state(&failed.id, RunState::Failed, Some("gave up"))
        .unwrap();
    let active = s
        .create_run(&NewRun {
            subscription: "gamma".into(),
            scheduled_at: ts(2026, 1, 4, 6, 0, 0),
        })
        .unwrap()
        .into_run();
    // Attempts carry the store clock; make the ones to purge old by hand.
    s.connection()
        .execute(
            "INSERT INTO attempts (run_id, n, started_at, ended_at, outcome) VALUES \
             (?1, 1, '2026-01-03T06:00:00Z', '2026-01-03T06:01:00Z', 'permanent'), \
             (?2, 1, '2026-01-04T06:00:00Z', NULL, NULL)",
            [&failed.id, &active.id],
        )
        .unwrap();
    s.connection()
        .execute(
            "UPDATE runs SET updated_at = '2026-01-05T00:00:00Z' WHERE id = ?1",
            [&failed.id],
        )
        .unwrap();

    let counts = s.purge_older_than(ts(2026, 3, 1, 0, 0, 0)).unwrap();
    assert_eq!(counts.receipts, 3);
    assert_eq!(
        counts.attempts, 1,
        "only the finished run's old attempt goes"
    );
    assert_eq!(
        counts.runs, 1,
        "the failed run with nothing left goes; delivered runs with receipts stay"
    );
    let kept = s.receipts(&ReceiptFilter::default()).unwrap();
    assert_eq!(kept.iter().map(|r| r.id).collect::<Vec<_>>(), vec![4, 5, 6]);
    let rep = s.verify_chain().unwrap();
    assert!(rep.is_intact(), "{rep:?}");
    assert_eq!(rep.anchor, all[2].hash);
    assert_eq!(rep.anchor_receipt_id, Some(3));
    assert_eq!(rep.verified, 3);
    assert!(s.get_run(&active.id).unwrap().is_some());
    assert_eq!(s.attempts(&active.id).unwrap().len(), 1);

    // Still verifiable after reopening, and new receipts chain on.
    drop(s);
    let s = db.open();
    deliver(&s, "acme", ts(2026, 5, 1, 6, 0, 0));
    assert!(s.verify_chain().unwrap().is_intact());
    // Purging again is idempotent; the anchor moves forward.
    assert_eq!(
        s.purge_older_than(ts(2026, 3, 1, 0, 0, 0))
            .unwrap()
            .receipts,
        0
    );
    assert_eq!(
        s.purge_older_than(ts(2026, 3, 30, 0, 0, 0))
            .unwrap()
            .receipts,
        2
    );
    let rep = s.verify_chain().unwrap();
    assert!(rep.is_intact());
    assert_eq!((rep.anchor_receipt_id, rep.verified), (Some(5), 2));

    // An edit to the first kept receipt after a purge is still named.
    db.drop_append_only_trigger(&s);
    db.tamper(&s, "UPDATE receipts SET rows = 0 WHERE id = 6");
    assert_eq!(s.verify_chain().unwrap().broken.unwrap().receipt_id, 6);
}

fn purge_refuses_to_destroy_evidence_of_tampering(db: &TestDb) {
    let s = db.open();
    for m in 1..=3 {
        deliver(&s, "acme", ts(2026, m, 1, 6, 0, 0));
    }
    db.drop_append_only_trigger(&s);
    db.tamper(
        &s,
        "UPDATE receipts SET customer = 'someone else' WHERE id = 1",
    );
    let err = s.purge_older_than(ts(2026, 2, 15, 0, 0, 0)).unwrap_err();
    assert!(
        matches!(err, StoreError::ChainBroken(ref b) if b.receipt_id == 1),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(s.receipts(&ReceiptFilter::default()).unwrap().len(), 3);
}

fn billing_export_for_a_month_lists_exactly_that_month(db: &TestDb) {
    let s = db.open();
    // deliver() delivers one minute after the scheduled time.
    let cases = [
        ("acme", ts(2026, 1, 31, 23, 29, 0)), // 23:30 UTC Jan 31: January (UTC), February (Oslo)
        ("acme", ts(2026, 2, 1, 5, 59, 0)),
        ("beta", ts(2026, 2, 15, 12, 0, 0)),
        ("acme", ts(2026, 2, 28, 23, 58, 59)), // 23:59:59
        ("acme", ts(2026, 2, 28, 23, 59, 0)),  // 00:00:00 March 1: March
        ("beta", ts(2026, 3, 10, 6, 0, 0)),
    ];
    let mut ids = Vec::new();
    for (sub, at) in cases {
        ids.push(deliver(&s, sub, at).id);
    }
    let (y, m) = parse_month("2026-02").unwrap();
    let feb = ReceiptFilter::month(y, m, &Utc).unwrap();
    let mut out = Vec::new();
    assert_eq!(s.export_csv(&mut out, &feb).unwrap(), 3);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], export::COLUMNS.join(","));
    assert_eq!(lines.len(), 4, "{text}");
    let listed: Vec<i64> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[1], ids[2], ids[3]]);
    for l in &lines[1..] {
        assert!(
            l.contains(",2026/0412,ACME Parkering AS,999888777,PO-77,"),
            "{l}"
        );
        assert!(l.contains(",owners,12,4096,"), "{l}");
    }
    assert!(lines[3].starts_with(&format!("{},2026-02-28T23:59:59Z,", ids[3])));

    // The same month counted in Oslo time takes the Jan 31 23:30 UTC delivery and the
    // 28 Feb 23:00+ ones go to March.
    let feb_oslo = ReceiptFilter::month(2026, 2, &chrono_tz::Europe::Oslo).unwrap();
    let oslo: Vec<i64> = s
        .receipts(&feb_oslo)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(oslo, vec![ids[0], ids[1], ids[2]]);

    // Per subscription, as JSON.
    let mut out = Vec::new();
    assert_eq!(
        s.export_json(&mut out, &feb.clone().subscription("beta"))
            .unwrap(),
        1
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v[0]["receipt_id"], ids[2]);
    assert_eq!(v[0]["case_number"], "2026/0412");
    assert_eq!(v[0]["subscription"], "beta");
}

both!(
    runs_are_created_once_and_resumed_after_reopen,
    one_run_per_subscription_and_scheduled_time_even_in_raw_sql,
    commit_receipt_is_idempotent_and_never_makes_two,
    chain_verifies_and_tampered_bytes_name_the_receipt,
    tampered_remote_path_and_rehashed_row_are_detected,
    deleting_a_middle_receipt_is_detected,
    purge_keeps_verify_green_for_what_remains,
    purge_refuses_to_destroy_evidence_of_tampering,
    billing_export_for_a_month_lists_exactly_that_month,
);
