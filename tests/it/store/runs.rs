//! Runs, attempts, artifacts, resolutions and notifications on both engines: the state
//! machine, one active run per subscription, attempt numbering, and what is refused.

use super::backend::{both, TestDb};
use chrono::{DateTime, TimeZone, Utc};
use regdrop::core::notice::Event;
use regdrop::core::retry::Stage;
use regdrop::store::*;

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

fn create_is_idempotent_and_one_active_run_per_subscription(db: &TestDb) {
    let s = db.open();
    let a = s.create_run(&new_run("acme", 1)).unwrap();
    assert!(a.is_new());
    assert_eq!(a.run().id, "acme-20260301T060000Z");
    assert_eq!(a.run().state, RunState::Pending);
    let again = s.create_run(&new_run("acme", 1)).unwrap();
    assert_eq!(again, RunCreated::Exists(a.run().clone()));
    let err = s.create_run(&new_run("acme", 2)).unwrap_err();
    assert!(matches!(err, StoreError::ActiveRun { .. }));
    assert!(regdrop::core::retry::Classify::is_retryable(&err));
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

fn delivered_only_through_a_receipt(db: &TestDb) {
    let s = db.open();
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

fn artifact_is_recorded_once_and_reused(db: &TestDb) {
    let s = db.open();
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

fn attempts_count_and_interrupted_ones_are_closed(db: &TestDb) {
    let s = db.open();
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

fn ids_continue_after_everything_was_purged(db: &TestDb) {
    let s = db.open();
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

fn list_runs_filters(db: &TestDb) {
    let s = db.open();
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

// Resolutions (regdrop resolve) and notifications.

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, 6, 0, 0).unwrap()
}

fn run_in(s: &Store, sub: &str, d: u32, state: RunState) -> RunId {
    let r = s
        .create_run(&NewRun {
            subscription: sub.into(),
            scheduled_at: day(d),
        })
        .unwrap()
        .into_run();
    if state != RunState::Pending {
        s.set_state(&r.id, state, Some("host key changed")).unwrap();
    }
    r.id
}

fn resolve(s: &Store, run: &RunId, reason: &str) -> Result<Resolution> {
    s.resolve_run(&NewResolution {
        run_id: run.clone(),
        os_user: "kari".into(),
        resolved_by: Some("Kari Nordmann".into()),
        reason: reason.into(),
    })
}

fn a_resolved_run_no_longer_needs_attention_and_is_never_run_again(db: &TestDb) {
    let s = db
        .open()
        .with_clock(|| Utc.with_ymd_and_hms(2026, 3, 9, 8, 0, 0).unwrap());
    let na = run_in(&s, "acme", 1, RunState::NeedsAttention);
    let failed = run_in(&s, "other", 1, RunState::Failed);
    let ids = |s: &Store| -> Vec<RunId> {
        s.unresolved_runs(&[RunState::NeedsAttention, RunState::Failed])
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(&s), vec![na.clone(), failed.clone()]);
    assert_eq!(s.runs_needing_attention().unwrap().len(), 1);
    let r = resolve(&s, &na, "  customer sent the file by hand  ").unwrap();
    assert_eq!(r.state, RunState::NeedsAttention);
    assert_eq!(r.reason, "customer sent the file by hand");
    assert_eq!(r.os_user, "kari");
    assert_eq!(r.resolved_by.as_deref(), Some("Kari Nordmann"));
    assert_eq!(
        r.resolved_at,
        Utc.with_ymd_and_hms(2026, 3, 9, 8, 0, 0).unwrap()
    );
    assert_eq!(s.resolution(&na).unwrap(), Some(r.clone()));
    assert_eq!(ids(&s), vec![failed.clone()]);
    assert!(s.runs_needing_attention().unwrap().is_empty());
    // The first decision stands: a second one is refused and names the first.
    match resolve(&s, &na, "something else") {
        Err(StoreError::AlreadyResolved(first)) => assert_eq!(*first, r),
        other => panic!("expected AlreadyResolved, got {other:?}"),
    }
    // A closed run cannot be made active again (retry), but the run itself is kept.
    assert!(matches!(
        s.set_state(&na, RunState::Pending, None),
        Err(StoreError::InvalidTransition { .. })
    ));
    assert_eq!(
        s.get_run(&na).unwrap().unwrap().state,
        RunState::NeedsAttention
    );
    resolve(&s, &failed, "subscription ended").unwrap();
    assert!(ids(&s).is_empty());
    assert_eq!(s.resolutions().unwrap().len(), 2);
    // Nobody edits a resolution behind the store's back either.
    assert!(s
        .connection()
        .execute("UPDATE run_resolutions SET reason = 'x'", [])
        .is_err());
}

fn only_waiting_runs_with_a_reason_can_be_resolved(db: &TestDb) {
    let s = db.open();
    let na = run_in(&s, "acme", 1, RunState::NeedsAttention);
    assert!(matches!(
        resolve(&s, &na, " \n "),
        Err(StoreError::Invalid(_))
    ));
    let pending = run_in(&s, "other", 1, RunState::Pending);
    let e = resolve(&s, &pending, "why not").unwrap_err();
    assert!(matches!(e, StoreError::NotResolvable { .. }), "{e:?}");
    assert!(e.to_string().contains("being worked on"), "{e}");
    assert!(matches!(
        resolve(&s, &"acme-20990101T000000Z".into(), "x"),
        Err(StoreError::NoSuchRun(_))
    ));
    assert!(s.resolutions().unwrap().is_empty());
}

fn retention_removes_a_resolved_run_with_its_resolution_and_keeps_open_ones(db: &TestDb) {
    let s = db
        .open()
        .with_clock(|| Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap());
    let closed = run_in(&s, "acme", 1, RunState::NeedsAttention);
    let open = run_in(&s, "other", 1, RunState::NeedsAttention);
    resolve(&s, &closed, "handled by phone").unwrap();
    s.purge_older_than(Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap())
        .unwrap();
    assert!(s.get_run(&closed).unwrap().is_none());
    assert!(s.resolutions().unwrap().is_empty());
    assert!(s.get_run(&open).unwrap().is_some());
}

fn notice(run: &str, event: Event, recipient: &str) -> NewNotification {
    NewNotification {
        run_id: RunId::new(run),
        subscription: "acme".into(),
        event,
        channel: Channel::Email,
        recipient: recipient.into(),
        subject: "s".into(),
        body: "b".into(),
    }
}

fn a_notification_is_recorded_once_per_run_event_and_recipient(db: &TestDb) {
    let s = db.open();
    let first = s
        .record_notifications(&[
            notice("acme-1", Event::NeedsAttention, "a@x.no"),
            notice("acme-1", Event::NeedsAttention, "b@x.no"),
        ])
        .unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|n| n.state == NoticeState::Pending));
    // The same again (a restart, a resumed run): nothing new.
    let again = s
        .record_notifications(&[
            notice("acme-1", Event::NeedsAttention, "a@x.no"),
            notice("acme-1", Event::NeedsAttention, "c@x.no"),
        ])
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|n| n.recipient.as_str())
            .collect::<Vec<_>>(),
        ["c@x.no"]
    );
    assert!(s
        .notified(&RunId::new("acme-1"), Event::NeedsAttention)
        .unwrap());
    assert!(!s.notified(&RunId::new("acme-1"), Event::Failed).unwrap());
}

fn tries_move_the_state_and_pending_ones_are_listed(db: &TestDb) {
    let s = db.open();
    let n = s
        .record_notifications(&[notice("acme-1", Event::Failed, "a@x.no")])
        .unwrap()
        .remove(0);
    s.notification_tried(&n, NoticeState::Pending, Some("421 busy"))
        .unwrap();
    let p = s.pending_notifications().unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].tries, p[0].last_error.as_deref()),
        (1, Some("421 busy"))
    );
    s.notification_tried(&n, NoticeState::Sent, None).unwrap();
    assert!(s.pending_notifications().unwrap().is_empty());
    let all = s.notifications_of(&RunId::new("acme-1")).unwrap();
    assert_eq!((all[0].state, all[0].tries), (NoticeState::Sent, 2));
}

fn the_last_operator_event_ignores_customer_notices(db: &TestDb) {
    let s = db.open();
    let sub: SubscriptionId = "acme".into();
    assert_eq!(s.last_operator_event(&sub).unwrap(), None);
    s.record_notifications(&[notice("acme-1", Event::NeedsAttention, "a@x.no")])
        .unwrap();
    s.record_notifications(&[notice("acme-2", Event::Delivered, "contact")])
        .unwrap();
    assert_eq!(
        s.last_operator_event(&sub).unwrap(),
        Some(Event::NeedsAttention)
    );
    s.record_notifications(&[notice("acme-2", Event::Recovered, "a@x.no")])
        .unwrap();
    assert_eq!(s.last_operator_event(&sub).unwrap(), Some(Event::Recovered));
}

both!(
    create_is_idempotent_and_one_active_run_per_subscription,
    delivered_only_through_a_receipt,
    artifact_is_recorded_once_and_reused,
    attempts_count_and_interrupted_ones_are_closed,
    ids_continue_after_everything_was_purged,
    list_runs_filters,
    a_resolved_run_no_longer_needs_attention_and_is_never_run_again,
    only_waiting_runs_with_a_reason_can_be_resolved,
    retention_removes_a_resolved_run_with_its_resolution_and_keeps_open_ones,
    a_notification_is_recorded_once_per_run_event_and_recipient,
    tries_move_the_state_and_pending_ones_are_listed,
    the_last_operator_event_ignores_customer_notices,
);
