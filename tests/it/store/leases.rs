//! Leases on both engines, through two store handles (two connections: two nodes): a claim
//! is exclusive until it expires, a lost lease cannot be renewed nor commit, expired runs
//! are listed for take-over, and per-host slots are bounded across handles.

use super::backend::{both, handle as node, Clock, TestDb};
use regdrop::store::*;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(10);

fn run(s: &Store, sub: &str, clock: &Clock) -> Run {
    s.create_run(&NewRun {
        subscription: sub.into(),
        scheduled_at: clock.now(),
    })
    .unwrap()
    .into_run()
}

fn claimed(c: Claim) -> Lease {
    match c {
        Claim::Claimed(l) => l,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn a_claim_is_exclusive_until_it_expires(db: &TestDb) {
    let clock = Clock::new();
    let (a, b) = (node(db, &clock), node(db, &clock));
    let r = run(&a, "acme", &clock);
    let lease = claimed(a.claim(&r.id, "node-a", TTL).unwrap());
    assert_eq!(lease.until, clock.now() + chrono::Duration::seconds(10));
    assert_eq!(
        b.claim(&r.id, "node-b", TTL).unwrap(),
        Claim::Held {
            node: "node-a".into(),
            until: Some(lease.until)
        }
    );
    // The holder may claim again (a restart of the same node).
    claimed(a.claim(&r.id, "node-a", TTL).unwrap());
    // Still held at the last second of the lease; expired one second later.
    clock.advance(10);
    assert!(matches!(
        b.claim(&r.id, "node-b", TTL).unwrap(),
        Claim::Held { .. }
    ));
    clock.advance(1);
    let taken = claimed(b.claim(&r.id, "node-b", TTL).unwrap());
    assert_eq!(taken.node, "node-b");
    let info = a.lease_of(&r.id).unwrap().unwrap();
    assert_eq!(info.node.as_deref(), Some("node-b"));
    assert!(info.live_at(clock.now()));
}

fn renew_after_loss_fails_and_a_fenced_node_cannot_commit(db: &TestDb) {
    let clock = Clock::new();
    let (mut a, mut b) = (node(db, &clock), node(db, &clock));
    a.set_node("node-a");
    b.set_node("node-b");
    let r = run(&a, "acme", &clock);
    claimed(a.claim(&r.id, "node-a", TTL).unwrap());
    clock.advance(5);
    let renewed = a.renew(&r.id, "node-a", TTL).unwrap();
    assert_eq!(renewed.until, clock.now() + chrono::Duration::seconds(10));
    // Expired: renewing fails even before anyone else claims.
    clock.advance(11);
    let e = a.renew(&r.id, "node-a", TTL).unwrap_err();
    assert!(
        matches!(e, StoreError::LeaseLost { holder: None, .. }),
        "{e:?}"
    );
    claimed(b.claim(&r.id, "node-b", TTL).unwrap());
    let e = a.renew(&r.id, "node-a", TTL).unwrap_err();
    assert!(
        matches!(&e, StoreError::LeaseLost { holder: Some(h), .. } if h == "node-b"),
        "{e:?}"
    );
    assert!(e.to_string().contains("node node-b holds it"), "{e}");
    // The fence: node A cannot record an artifact (nor discard one) any more; B can.
    let art = Artifact {
        path: "spool-b/x.age".into(),
        file_name: "x.dsv.age".into(),
        plaintext_sha256: "a".repeat(64),
        ciphertext_sha256: "b".repeat(64),
        rows: 3,
        plaintext_bytes: 100,
        ciphertext_bytes: 120,
        period_from: None,
        period_to: None,
        format: "dsv".into(),
        fallback_note: None,
    };
    assert!(matches!(
        a.record_artifact(&r.id, &art).unwrap_err(),
        StoreError::LeaseLost { .. }
    ));
    b.record_artifact(&r.id, &art).unwrap();
    assert!(matches!(
        a.discard_artifact(&r.id, "x").unwrap_err(),
        StoreError::LeaseLost { .. }
    ));
    let info = a.lease_of(&r.id).unwrap().unwrap();
    assert_eq!(info.sealed_by.as_deref(), Some("node-b"));
    // The receipt too: A is refused, B commits, and the run says B delivered it.
    let receipt = NewReceipt {
        run_id: r.id.clone(),
        subscription: r.subscription.clone(),
        customer: "ACME".into(),
        customer_org_number: None,
        case_number: None,
        invoice_reference: None,
        report: "technical".into(),
        remote_host: "127.0.0.1".into(),
        remote_port: 22,
        host_key_fingerprint: "SHA256:x".into(),
        remote_path: "/in/x.dsv.age".into(),
        bytes: 120,
        rows: 3,
        plaintext_sha256: "a".repeat(64),
        ciphertext_sha256: "b".repeat(64),
        personal_fields: vec![],
        legal_basis: None,
        recipients: vec!["age1abc".into()],
        started_at: clock.now(),
        delivered_at: clock.now(),
    };
    assert!(matches!(
        a.commit_delivery(&receipt, &[], None).unwrap_err(),
        StoreError::LeaseLost { .. }
    ));
    b.commit_delivery(&receipt, &[], None).unwrap();
    assert_eq!(a.receipt_for_run(&r.id).unwrap().map(|x| x.id), Some(1));
    let info = a.lease_of(&r.id).unwrap().unwrap();
    assert_eq!(info.delivered_by.as_deref(), Some("node-b"));
    assert_eq!(b.claim(&r.id, "node-b", TTL).unwrap(), Claim::Delivered);
    assert!(b.verify_chain().unwrap().broken.is_none());
}

fn expired_and_released_runs_are_listed_for_take_over(db: &TestDb) {
    let clock = Clock::new();
    let (a, b) = (node(db, &clock), node(db, &clock));
    let r1 = run(&a, "one", &clock);
    let r2 = run(&a, "two", &clock);
    let r3 = run(&a, "three", &clock);
    let ids = |v: Vec<Run>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    // Never claimed: all three.
    assert_eq!(ids(b.expired_runs().unwrap()).len(), 3);
    claimed(a.claim(&r1.id, "node-a", TTL).unwrap());
    claimed(a.claim(&r2.id, "node-a", Duration::from_secs(30)).unwrap());
    claimed(b.claim(&r3.id, "node-b", TTL).unwrap());
    assert!(b.expired_runs().unwrap().is_empty());
    clock.advance(11);
    assert_eq!(
        ids(b.expired_runs().unwrap()),
        vec![r1.id.clone(), r3.id.clone()]
    );
    b.renew(&r3.id, "node-b", TTL).unwrap_err();
    claimed(b.claim(&r3.id, "node-b", TTL).unwrap());
    assert_eq!(ids(b.expired_runs().unwrap()), vec![r1.id.clone()]);
    // Released: at once, not after the lease time; the last holder is still shown.
    assert!(a.release(&r2.id, "node-a").unwrap());
    assert!(!b.release(&r1.id, "node-b").unwrap());
    assert_eq!(
        ids(b.expired_runs().unwrap()),
        vec![r1.id.clone(), r2.id.clone()]
    );
    let info = b.lease_of(&r2.id).unwrap().unwrap();
    assert_eq!((info.node.as_deref(), info.until), (Some("node-a"), None));
    assert!(!info.live_at(clock.now()));
    let active = b.active_leases().unwrap();
    assert_eq!(active.len(), 3);
    assert!(active
        .iter()
        .any(|l| l.run == r3.id && l.live_at(clock.now())));
    // A finished run is never listed.
    b.set_state(&r3.id, RunState::NeedsAttention, Some("x"))
        .unwrap();
    clock.advance(60);
    assert_eq!(ids(b.expired_runs().unwrap()), vec![r1.id, r2.id]);
}

fn host_slots_are_bounded_across_nodes_and_expire(db: &TestDb) {
    let clock = Clock::new();
    let (a, b) = (node(db, &clock), node(db, &clock));
    let host = "sftp.example:22";
    let (r1, r2, r3) = (
        RunId::new("r1".to_string()),
        RunId::new("r2".to_string()),
        RunId::new("r3".to_string()),
    );
    assert!(a.acquire_host_slot(host, 2, &r1, "node-a", TTL).unwrap());
    assert!(b.acquire_host_slot(host, 2, &r2, "node-b", TTL).unwrap());
    assert!(!a.acquire_host_slot(host, 2, &r3, "node-a", TTL).unwrap());
    // Holding one already is a renewal, not a second slot.
    assert!(a.acquire_host_slot(host, 2, &r1, "node-a", TTL).unwrap());
    // Another host is not limited by this one.
    assert!(a
        .acquire_host_slot("other:22", 1, &r3, "node-a", TTL)
        .unwrap());
    assert_eq!(b.host_slots(host).unwrap().len(), 2);
    b.release_host_slot(host, &r2).unwrap();
    assert!(a.acquire_host_slot(host, 2, &r3, "node-a", TTL).unwrap());
    assert!(!b.acquire_host_slot(host, 2, &r2, "node-b", TTL).unwrap());
    // Node A dies: its slots expire with its leases.
    clock.advance(11);
    assert!(b.host_slots(host).unwrap().is_empty());
    assert!(b.acquire_host_slot(host, 2, &r2, "node-b", TTL).unwrap());
    assert_eq!(
        a.host_slots(host).unwrap(),
        vec![(r2.clone(), "node-b".to_string())]
    );
}

/// Both nodes race for the same fresh runs from threads: each run is claimed exactly once.
fn racing_claims_give_each_run_one_holder(db: &TestDb) {
    let clock = Clock::new();
    let a = node(db, &clock);
    let runs: Vec<RunId> = (0..20)
        .map(|i| run(&a, &format!("sub{i}"), &clock).id)
        .collect();
    let won: Vec<Vec<RunId>> = std::thread::scope(|sc| {
        let hs: Vec<_> = ["node-a", "node-b", "node-c"]
            .into_iter()
            .map(|n| {
                let s = node(db, &clock);
                let runs = runs.clone();
                sc.spawn(move || {
                    runs.iter()
                        .filter(|r| matches!(s.claim(r, n, TTL).unwrap(), Claim::Claimed(_)))
                        .cloned()
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<RunId> = won.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all.len(), runs.len(), "every run claimed exactly once");
    all.dedup();
    assert_eq!(all.len(), runs.len());
}

both!(
    a_claim_is_exclusive_until_it_expires,
    renew_after_loss_fails_and_a_fenced_node_cannot_commit,
    expired_and_released_runs_are_listed_for_take_over,
    host_slots_are_bounded_across_nodes_and_expire,
    racing_claims_give_each_run_one_holder,
);
