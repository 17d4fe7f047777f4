//! Unit tests of the store on an in-memory database (file-level tests: `tests/it/store.rs`).

use super::*;
use crate::core::retry::Stage;
use chrono::TimeZone;

fn t(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
}

fn new_run(sub: &str, d: u32) -> NewRun {
    NewRun {
        subscription: sub.into(),
        scheduled_at: t(d, 6),
    }
}

fn artifact(bytes: u64) -> Artifact {
    Artifact {
        path: "spool/x.age".into(),
        file_name: "x.dsv.age".into(),
        plaintext_sha256: "a".repeat(64),
        ciphertext_sha256: "b".repeat(64),
        rows: 3,
        plaintext_bytes: 100,
        ciphertext_bytes: bytes,
        period_from: Some("2026-03-01".into()),
        period_to: Some("2026-03-08".into()),
        format: "dsv".into(),
        fallback_note: None,
    }
}

fn receipt_for(run: &Run, bytes: u64) -> NewReceipt {
    NewReceipt {
        run_id: run.id.clone(),
        subscription: run.subscription.clone(),
        customer: "ACME".into(),
        customer_org_number: None,
        case_number: Some("2026/1".into()),
        invoice_reference: None,
        report: "technical".into(),
        remote_host: "127.0.0.1".into(),
        remote_port: 22,
        host_key_fingerprint: "SHA256:x".into(),
        remote_path: "/in/x.dsv.age".into(),
        bytes,
        rows: 3,
        plaintext_sha256: "a".repeat(64),
        ciphertext_sha256: "b".repeat(64),
        personal_fields: vec![],
        legal_basis: None,
        recipients: vec!["age1abc".into()],
        started_at: run.scheduled_at,
        delivered_at: run.scheduled_at + chrono::Duration::minutes(1),
    }
}

#[test]
fn create_is_idempotent_and_one_active_run_per_subscription() {
    let s = Store::open_in_memory().unwrap();
    let a = s.create_run(&new_run("acme", 1)).unwrap();
    assert!(a.is_new());
    assert_eq!(a.run().id, "acme-20260301T060000Z");
    assert_eq!(a.run().state, RunState::Pending);
    let again = s.create_run(&new_run("acme", 1)).unwrap();
    assert_eq!(again, RunCreated::Exists(a.run().clone()));
    let err = s.create_run(&new_run("acme", 2)).unwrap_err();
    assert!(matches!(err, StoreError::ActiveRun { .. }));
    assert!(crate::core::retry::Classify::is_retryable(&err));
    // Another subscription is independent.
    assert!(s.create_run(&new_run("other", 2)).unwrap().is_new());
    s.set_state(&a.run().id, RunState::NeedsAttention, Some("auth refused"))
        .unwrap();
    assert!(s.create_run(&new_run("acme", 2)).unwrap().is_new());
    // Retrying the old run while the new one is active is refused.
    assert!(matches!(
        s.set_state(&a.run().id, RunState::Pending, None),
        Err(StoreError::ActiveRun { .. })
    ));
}

#[test]
fn delivered_only_through_a_receipt() {
    let s = Store::open_in_memory().unwrap();
    let r = s.create_run(&new_run("acme", 1)).unwrap().into_run();
    assert!(matches!(
        s.set_state(&r.id, RunState::Delivered, None),
        Err(StoreError::InvalidTransition { .. })
    ));
    let rec = s.commit_receipt(&receipt_for(&r, 10)).unwrap();
    assert_eq!(
        s.get_run(&r.id).unwrap().unwrap().state,
        RunState::Delivered
    );
    assert!(s.set_state(&r.id, RunState::Pending, None).is_err());
    assert!(s.begin_attempt(&r.id).is_err());
    assert_eq!(rec.attempts, 1);
}

#[test]
fn artifact_is_recorded_once_and_reused() {
    let s = Store::open_in_memory().unwrap();
    let r = s.create_run(&new_run("acme", 1)).unwrap().into_run();
    let sealed = s.record_artifact(&r.id, &artifact(50)).unwrap();
    assert_eq!(sealed.state, RunState::Sealed);
    assert_eq!(sealed.artifact, Some(artifact(50)));
    s.set_state(&r.id, RunState::Uploading, None).unwrap();
    assert_eq!(
        s.record_artifact(&r.id, &artifact(50)).unwrap().state,
        RunState::Uploading
    );
    assert!(s.record_artifact(&r.id, &artifact(51)).is_err());
    // A receipt for another file than the sealed one is refused.
    assert!(matches!(
        s.commit_receipt(&receipt_for(&r, 51)),
        Err(StoreError::Mismatch { .. })
    ));
    assert!(s.commit_receipt(&receipt_for(&r, 50)).is_ok());
}

#[test]
fn attempts_count_and_interrupted_ones_are_closed() {
    let s = Store::open_in_memory().unwrap();
    let r = s.create_run(&new_run("acme", 1)).unwrap().into_run();
    assert_eq!(s.begin_attempt(&r.id).unwrap(), 1);
    s.finish_attempt(
        &r.id,
        1,
        AttemptOutcome::Retryable,
        Some(Stage::Connect),
        Some("refused"),
    )
    .unwrap();
    assert!(s
        .finish_attempt(&r.id, 1, AttemptOutcome::Ok, None, None)
        .is_err());
    assert_eq!(s.begin_attempt(&r.id).unwrap(), 2);
    // Crash: attempt 2 never finished.
    assert_eq!(s.begin_attempt(&r.id).unwrap(), 3);
    let at = s.attempts(&r.id).unwrap();
    assert_eq!(at.len(), 3);
    assert_eq!(at[0].error_class.map(Stage::as_str), Some("connect"));
    assert_eq!(at[1].outcome, Some(AttemptOutcome::Retryable));
    assert_eq!(at[1].error_class.map(Stage::as_str), Some("interrupted"));
    assert_eq!(at[2].ended_at, None);
    let rec = s.commit_receipt(&receipt_for(&r, 10)).unwrap();
    assert_eq!(rec.attempts, 3);
}

#[test]
fn ids_continue_after_everything_was_purged() {
    let s = Store::open_in_memory().unwrap();
    let mut last = None;
    for d in 1..=3 {
        let r = s.create_run(&new_run("acme", d)).unwrap().into_run();
        last = Some(s.commit_receipt(&receipt_for(&r, 10)).unwrap());
    }
    let c = s.purge_older_than(t(20, 0)).unwrap();
    assert_eq!(c.receipts, 3);
    let rep = s.verify_chain().unwrap();
    assert!(rep.is_intact());
    assert_eq!(rep.head, last.as_ref().unwrap().hash);
    let r = s.create_run(&new_run("acme", 21)).unwrap().into_run();
    let next = s.commit_receipt(&receipt_for(&r, 10)).unwrap();
    assert_eq!(next.id, 4);
    assert_eq!(next.prev_hash, last.unwrap().hash);
    assert!(s.verify_chain().unwrap().is_intact());
}

#[test]
fn list_runs_filters() {
    let s = Store::open_in_memory().unwrap();
    for d in 1..=3 {
        let r = s.create_run(&new_run("acme", d)).unwrap().into_run();
        s.set_state(&r.id, RunState::Failed, Some("gave up"))
            .unwrap();
    }
    s.create_run(&new_run("other", 2)).unwrap();
    let f = RunFilter {
        subscription: Some("acme".into()),
        ..Default::default()
    };
    assert_eq!(s.list_runs(&f).unwrap().len(), 3);
    let f = RunFilter {
        since: Some(t(2, 0)),
        until: Some(t(3, 0)),
        ..Default::default()
    };
    assert_eq!(s.list_runs(&f).unwrap().len(), 2);
    let f = RunFilter {
        states: vec![RunState::Pending],
        ..Default::default()
    };
    assert_eq!(s.list_runs(&f).unwrap()[0].subscription, "other");
    assert_eq!(s.unfinished_runs().unwrap().len(), 1);
    let f = RunFilter {
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(s.list_runs(&f).unwrap().len(), 1);
}

#[test]
fn store_can_move_to_a_blocking_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
    assert_send::<StoreError>();
}
