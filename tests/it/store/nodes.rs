//! The node registry on both engines (schema 9), through two store handles (two
//! daemons): a free name is registered and heartbeats; a live holder is refused, a stale,
//! stopped or dead-here one is taken over; the instance it was taken from sees so at its
//! next heartbeat and can neither claim, renew nor commit.

use super::backend::{both, handle, Clock, TestDb};
use regdrop::core::nodes::{Decision, Instance, NodeState, TakeOver};
use regdrop::store::*;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(10);

fn instance(id: &str, host: &str, pid: u32) -> Instance {
    Instance {
        id: id.into(),
        host: host.into(),
        machine: format!("machine-of-{host}"),
        boot: format!("boot-of-{host}"),
        pid_ns: "pid:[4026531836]".into(),
        pid,
        proc_start: 1000 + u64::from(pid),
    }
}

fn no_probe(_: u32, _: u64) -> bool {
    panic!("the holder is on another machine: no process to look at")
}

fn a_free_name_is_registered_and_heartbeats(db: &TestDb) {
    let clock = Clock::new();
    let s = handle(db, &clock);
    let me = instance("i1", "host-1", 41);
    let r = s.register_node("node-a", &me, LEASE, no_probe).unwrap();
    assert_eq!(r.decision, Decision::Free);
    assert_eq!(r.previous, None);
    let e = s.node_entry("node-a").unwrap().unwrap();
    assert_eq!(e.instance, me);
    assert_eq!((e.started_at, e.heartbeat_at), (clock.now(), clock.now()));
    assert_eq!(e.stopped_at, None);
    clock.advance(5);
    assert_eq!(s.node_heartbeat("node-a", &me).unwrap(), None);
    let e = s.node_entry("node-a").unwrap().unwrap();
    assert_eq!(e.heartbeat_at, clock.now());
    assert_eq!(e.started_at, clock.now() - chrono::Duration::seconds(5));
    assert_eq!(e.state(clock.now(), LEASE), NodeState::Alive);
    // Registering again as the same instance keeps the start time.
    let again = s.register_node("node-a", &me, LEASE, no_probe).unwrap();
    assert_eq!(again.decision, Decision::Ours);
    assert_eq!(
        s.node_entry("node-a").unwrap().unwrap().started_at,
        e.started_at
    );
    // Another name is another row.
    let other = instance("i2", "host-2", 42);
    s.register_node("node-b", &other, LEASE, no_probe).unwrap();
    let names: Vec<String> = s.nodes().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["node-a", "node-b"]);
}

fn a_live_holder_elsewhere_is_refused_and_a_stale_one_taken_over(db: &TestDb) {
    let clock = Clock::new();
    let (a, b) = (handle(db, &clock), handle(db, &clock));
    let first = instance("first", "host-1", 41);
    let second = instance("second", "host-2", 77);
    a.register_node("node-a", &first, LEASE, no_probe).unwrap();
    // Within the lease of the last heartbeat: refused, nothing written.
    clock.advance(10);
    let r = b.register_node("node-a", &second, LEASE, no_probe).unwrap();
    assert_eq!(r.decision, Decision::Refuse);
    assert_eq!(r.previous.as_ref().unwrap().instance, first);
    assert_eq!(b.node_entry("node-a").unwrap().unwrap().instance, first);
    // The first keeps its heartbeat: still refused later.
    a.node_heartbeat("node-a", &first).unwrap();
    clock.advance(10);
    assert_eq!(
        b.register_node("node-a", &second, LEASE, no_probe)
            .unwrap()
            .decision,
        Decision::Refuse
    );
    // No heartbeat for longer than the lease: stale, taken over.
    clock.advance(1);
    let r = b.register_node("node-a", &second, LEASE, no_probe).unwrap();
    assert_eq!(r.decision, Decision::TakeOver(TakeOver::Stale));
    let e = a.node_entry("node-a").unwrap().unwrap();
    assert_eq!(e.instance, second);
    assert_eq!(e.started_at, clock.now());
}

fn a_clean_stop_frees_the_name_at_once(db: &TestDb) {
    let clock = Clock::new();
    let (a, b) = (handle(db, &clock), handle(db, &clock));
    let first = instance("first", "host-1", 41);
    let second = instance("second", "host-2", 77);
    a.register_node("node-a", &first, LEASE, no_probe).unwrap();
    assert!(a.node_stopped("node-a", &first).unwrap());
    assert_eq!(
        a.node_entry("node-a")
            .unwrap()
            .unwrap()
            .state(clock.now(), LEASE),
        NodeState::Stopped
    );
    let r = b.register_node("node-a", &second, LEASE, no_probe).unwrap();
    assert_eq!(r.decision, Decision::TakeOver(TakeOver::Stopped));
    assert_eq!(b.node_entry("node-a").unwrap().unwrap().stopped_at, None);
    // The old instance's stop does not touch the new holder.
    assert!(!a.node_stopped("node-a", &first).unwrap());
    assert_eq!(b.node_entry("node-a").unwrap().unwrap().stopped_at, None);
}

fn on_this_machine_a_dead_holder_is_taken_over_and_a_live_one_refused(db: &TestDb) {
    let clock = Clock::new();
    let (a, b) = (handle(db, &clock), handle(db, &clock));
    let killed = instance("killed", "host-1", 41);
    let restarted = instance("restarted", "host-1", 42);
    a.register_node("node-a", &killed, LEASE, no_probe).unwrap();
    clock.advance(1);
    // Alive (another daemon on this machine with the same name): refused.
    let mut asked = None;
    let r = b
        .register_node("node-a", &restarted, LEASE, |pid, start| {
            asked = Some((pid, start));
            true
        })
        .unwrap();
    assert_eq!(r.decision, Decision::Refuse);
    assert_eq!(asked, Some((41, 1041)), "asked about the holder's process");
    // Gone (`kill -9`, then a restart): taken over within the lease.
    let r = b
        .register_node("node-a", &restarted, LEASE, |_, _| false)
        .unwrap();
    assert_eq!(r.decision, Decision::TakeOver(TakeOver::DeadHere));
    assert_eq!(b.node_entry("node-a").unwrap().unwrap().instance, restarted);
}

fn the_instance_a_name_was_taken_from_stops_claiming_and_committing(db: &TestDb) {
    let clock = Clock::new();
    let (mut a, mut b) = (handle(db, &clock), handle(db, &clock));
    let first = instance("first", "host-1", 41);
    let second = instance("second", "host-2", 77);
    a.register_node("node-a", &first, LEASE, no_probe).unwrap();
    a.set_registration("node-a", &first);
    a.set_node("node-a");
    let r1 = a
        .create_run(&NewRun {
            subscription: "acme".into(),
            scheduled_at: clock.now(),
        })
        .unwrap()
        .into_run();
    assert!(matches!(
        a.claim(&r1.id, "node-a", LEASE).unwrap(),
        Claim::Claimed(_)
    ));
    // A's heartbeat lapses (a stall, the store out of reach); B starts as node-a.
    clock.advance(11);
    let r = b.register_node("node-a", &second, LEASE, no_probe).unwrap();
    assert_eq!(r.decision, Decision::TakeOver(TakeOver::Stale));
    b.set_registration("node-a", &second);
    b.set_node("node-a");
    // A's next heartbeat names B.
    let holder = a.node_heartbeat("node-a", &first).unwrap().expect("taken");
    assert_eq!(holder.instance, second);
    // A can neither claim, renew nor commit, though the lease's node name is its own.
    let taken = |e: StoreError| matches!(e, StoreError::NodeTaken { ref host, pid: 77, .. } if host == "host-2");
    assert!(taken(a.claim(&r1.id, "node-a", LEASE).unwrap_err()));
    assert!(taken(a.renew(&r1.id, "node-a", LEASE).unwrap_err()));
    assert!(taken(
        a.acquire_host_slot("h:22", 2, &r1.id, "node-a", LEASE)
            .unwrap_err()
    ));
    let art = Artifact {
        path: "spool/x.age".into(),
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
    let e = a.record_artifact(&r1.id, &art).unwrap_err();
    assert!(e.to_string().contains("host host-2, pid 77"), "{e}");
    assert!(taken(e));
    assert!(a.get_run(&r1.id).unwrap().unwrap().artifact.is_none());
    // B, the holder now, claims and commits.
    assert!(matches!(
        b.claim(&r1.id, "node-a", LEASE).unwrap(),
        Claim::Claimed(_)
    ));
    b.record_artifact(&r1.id, &art).unwrap();
    // A's clean stop leaves B's registration alone.
    assert!(!a.node_stopped("node-a", &first).unwrap());
    assert_eq!(b.node_heartbeat("node-a", &second).unwrap(), None);
}

fn check_reads_the_registry_without_changing_the_store(db: &TestDb) {
    let clock = Clock::new();
    let s = handle(db, &clock);
    assert_eq!(peek_node(&db.location, "node-a").unwrap(), None);
    let me = instance("i1", "host-1", 41);
    s.register_node("node-a", &me, LEASE, no_probe).unwrap();
    let seen = peek_node(&db.location, "node-a").unwrap().unwrap();
    assert_eq!(seen.instance, me);
}

both!(
    a_free_name_is_registered_and_heartbeats,
    a_live_holder_elsewhere_is_refused_and_a_stale_one_taken_over,
    a_clean_stop_frees_the_name_at_once,
    on_this_machine_a_dead_holder_is_taken_over_and_a_live_one_refused,
    the_instance_a_name_was_taken_from_stops_claiming_and_committing,
    check_reads_the_registry_without_changing_the_store,
);
