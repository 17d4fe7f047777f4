//! The node registry's rules (docs/design.md §8 "One name, one daemon"): whether a daemon
//! starting under a `[daemon] node` name may take it ([`decide`]), and how a registered
//! name reads in `regdrop status` ([`NodeEntry::state`]). No I/O: whether a process on this
//! machine is alive is asked of the caller.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// Where and as what a daemon runs: enough to tell, on its own machine, whether it is
/// still alive after its heartbeat went quiet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Random per daemon start: two starts never share one.
    pub id: String,
    /// The host name, as an operator reads it.
    pub host: String,
    /// `/etc/machine-id` (empty when unknown): the machine across reboots.
    pub machine: String,
    /// The kernel's boot id: this boot of the machine.
    pub boot: String,
    /// The pid namespace (`pid:[N]`): where `pid` means this process.
    pub pid_ns: String,
    pub pid: u32,
    /// The process's start time in clock ticks after boot: with `pid`, this process and no
    /// later one that got its pid.
    pub proc_start: u64,
}

/// A name in the registry: who holds it, since when, and its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub name: String,
    pub instance: Instance,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Set by a clean stop: the name is free at once.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// How a registered name looks at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Heartbeat within the lease: a daemon runs under this name.
    Alive,
    /// No heartbeat for longer than the lease: the daemon died or lost the store.
    Stale,
    /// The daemon stopped cleanly.
    Stopped,
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeState::Alive => "alive",
            NodeState::Stale => "stale",
            NodeState::Stopped => "stopped",
        })
    }
}

impl NodeEntry {
    /// Alive while the last heartbeat is at most `lease` old at `now`.
    pub fn state(&self, now: DateTime<Utc>, lease: Duration) -> NodeState {
        if self.stopped_at.is_some() {
            return NodeState::Stopped;
        }
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        if now.signed_duration_since(self.heartbeat_at) > lease {
            NodeState::Stale
        } else {
            NodeState::Alive
        }
    }
}

/// Why a starting daemon may take a name another instance had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeOver {
    /// The holder stopped cleanly.
    Stopped,
    /// The holder's heartbeat is older than the lease.
    Stale,
    /// The holder ran on this machine in this boot, and its process is gone (`kill -9`,
    /// a crash, then a restart).
    DeadHere,
    /// The holder ran on this machine before it rebooted.
    Rebooted,
}

/// What a daemon starting as a name does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody had the name: register.
    Free,
    /// This instance holds it already.
    Ours,
    /// Take the name over from a holder that is gone.
    TakeOver(TakeOver),
    /// Another live daemon holds the name: do not start.
    Refuse,
}

/// Whether `me` may take the name `held` is registered as at `now`. `alive(pid,
/// proc_start)` is asked only about a holder in this machine's boot and pid namespace,
/// where a pid means something: whether that process still runs.
pub fn decide(
    held: Option<&NodeEntry>,
    me: &Instance,
    now: DateTime<Utc>,
    lease: Duration,
    alive: impl FnOnce(u32, u64) -> bool,
) -> Decision {
    let Some(h) = held else {
        return Decision::Free;
    };
    let other = &h.instance;
    if other.id == me.id {
        return Decision::Ours;
    }
    match h.state(now, lease) {
        NodeState::Stopped => return Decision::TakeOver(TakeOver::Stopped),
        NodeState::Stale => return Decision::TakeOver(TakeOver::Stale),
        NodeState::Alive => {}
    }
    // The same machine: its machine-id and host name. The same boot, when both know it
    // (systemd's ProcSubset=pid hides the boot id). A pid means this holder's process only
    // in this machine's (or this kernel's) pid namespace.
    let same_machine = same_machine(other, me);
    let boots_known = !me.boot.is_empty() && !other.boot.is_empty();
    let same_ns = !me.pid_ns.is_empty() && other.pid_ns == me.pid_ns;
    if same_machine && boots_known && other.boot != me.boot {
        return Decision::TakeOver(TakeOver::Rebooted);
    }
    let same_kernel = same_machine || (boots_known && other.boot == me.boot);
    if same_kernel && same_ns {
        if alive(other.pid, other.proc_start) {
            Decision::Refuse
        } else {
            Decision::TakeOver(TakeOver::DeadHere)
        }
    } else {
        Decision::Refuse
    }
}

/// Whether two instances run on one machine: its machine-id (known) and host name.
fn same_machine(a: &Instance, b: &Instance) -> bool {
    !b.machine.is_empty() && a.machine == b.machine && a.host == b.host
}

/// Whether a delivery by hand (`regdrop deliver`, `regdrop retry`) as `me` must not run
/// under the name `held` is registered as: a live daemon on another machine holds it (a
/// copied configuration, whose leases would read as this machine's and be taken over). A
/// daemon under the name on this machine is the same node: the run's lock in the spool
/// keeps the two from working on one run.
pub fn held_elsewhere(
    held: Option<&NodeEntry>,
    me: &Instance,
    now: DateTime<Utc>,
    lease: Duration,
) -> bool {
    held.is_some_and(|h| {
        h.instance.id != me.id
            && h.state(now, lease) == NodeState::Alive
            && !same_machine(&h.instance, me)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const LEASE: Duration = Duration::from_secs(30);

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 6, 0, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    fn inst(id: &str) -> Instance {
        Instance {
            id: id.into(),
            host: "regdrop-1".into(),
            machine: "m1".into(),
            boot: "b1".into(),
            pid_ns: "pid:[1]".into(),
            pid: 100,
            proc_start: 5000,
        }
    }

    fn entry(i: Instance, heartbeat: i64) -> NodeEntry {
        NodeEntry {
            name: "node-a".into(),
            instance: i,
            started_at: t(0),
            heartbeat_at: t(heartbeat),
            stopped_at: None,
        }
    }

    fn never(_: u32, _: u64) -> bool {
        panic!("no process to look at")
    }

    #[test]
    fn a_free_name_or_our_own_is_taken() {
        let me = inst("me");
        assert_eq!(decide(None, &me, t(0), LEASE, never), Decision::Free);
        let mine = entry(me.clone(), 0);
        assert_eq!(
            decide(Some(&mine), &me, t(10), LEASE, never),
            Decision::Ours
        );
    }

    #[test]
    fn a_live_holder_elsewhere_is_refused_until_its_heartbeat_is_older_than_the_lease() {
        let me = inst("me");
        let mut other = inst("other");
        other.host = "regdrop-2".into();
        other.machine = "m2".into();
        other.boot = "b2".into();
        let e = entry(other, 0);
        assert_eq!(decide(Some(&e), &me, t(30), LEASE, never), Decision::Refuse);
        assert_eq!(
            decide(Some(&e), &me, t(31), LEASE, never),
            Decision::TakeOver(TakeOver::Stale)
        );
        assert_eq!(e.state(t(30), LEASE), NodeState::Alive);
        assert_eq!(e.state(t(31), LEASE), NodeState::Stale);
    }

    #[test]
    fn a_stopped_holder_is_taken_over_at_once() {
        let mut e = entry(inst("other"), 0);
        e.stopped_at = Some(t(1));
        assert_eq!(e.state(t(2), LEASE), NodeState::Stopped);
        assert_eq!(
            decide(Some(&e), &inst("me"), t(2), LEASE, never),
            Decision::TakeOver(TakeOver::Stopped)
        );
    }

    #[test]
    fn on_this_machine_the_holders_process_decides() {
        let me = inst("me");
        let mut other = inst("other");
        other.pid = 42;
        other.proc_start = 777;
        let e = entry(other, 0);
        let asked = std::cell::Cell::new(None);
        let dead = |pid, start| {
            asked.set(Some((pid, start)));
            false
        };
        assert_eq!(
            decide(Some(&e), &me, t(1), LEASE, dead),
            Decision::TakeOver(TakeOver::DeadHere)
        );
        assert_eq!(
            asked.get(),
            Some((42, 777)),
            "asked about the holder's process"
        );
        assert_eq!(
            decide(Some(&e), &me, t(1), LEASE, |_, _| true),
            Decision::Refuse
        );
    }

    #[test]
    fn a_holder_of_an_earlier_boot_of_this_machine_is_gone() {
        let me = inst("me");
        let mut other = inst("other");
        other.boot = "b0".into();
        let e = entry(other.clone(), 0);
        assert_eq!(
            decide(Some(&e), &me, t(1), LEASE, never),
            Decision::TakeOver(TakeOver::Rebooted)
        );
        // Another machine with the same host name (a cloned VM without its own
        // machine-id is not told apart; one with its own is): not a reboot.
        other.machine = "m2".into();
        let e = entry(other.clone(), 0);
        assert_eq!(decide(Some(&e), &me, t(1), LEASE, never), Decision::Refuse);
        // No machine id known here: never guessed to be a reboot.
        let mut me2 = me.clone();
        me2.machine = String::new();
        other.machine = String::new();
        let e = entry(other, 0);
        assert_eq!(decide(Some(&e), &me2, t(1), LEASE, never), Decision::Refuse);
    }

    #[test]
    fn without_boot_ids_the_process_on_this_machine_still_decides() {
        let mut me = inst("me");
        me.boot = String::new();
        let mut other = inst("other");
        other.boot = String::new();
        let e = entry(other, 0);
        assert_eq!(
            decide(Some(&e), &me, t(1), LEASE, |_, _| false),
            Decision::TakeOver(TakeOver::DeadHere)
        );
        assert_eq!(
            decide(Some(&e), &me, t(1), LEASE, |_, _| true),
            Decision::Refuse
        );
    }

    #[test]
    fn another_pid_namespace_of_this_boot_is_not_looked_into() {
        // A container on the same kernel: its pids are not ours to probe.
        let me = inst("me");
        let mut other = inst("other");
        other.pid_ns = "pid:[2]".into();
        let e = entry(other, 0);
        assert_eq!(decide(Some(&e), &me, t(1), LEASE, never), Decision::Refuse);
    }

    #[test]
    fn a_delivery_by_hand_runs_beside_this_machines_daemon_but_not_under_another_machines_name() {
        let me = inst("by-hand");
        let mut held = entry(inst("daemon"), 10);
        // No registration, or this machine's live daemon: go on.
        assert!(!held_elsewhere(None, &me, t(20), LEASE));
        assert!(!held_elsewhere(Some(&held), &me, t(20), LEASE));
        // Another machine's live daemon (another machine-id, or the same id on another
        // host, a cloned image): refuse.
        held.instance.machine = "m2".into();
        assert!(held_elsewhere(Some(&held), &me, t(20), LEASE));
        held.instance.machine = "m1".into();
        held.instance.host = "regdrop-2".into();
        assert!(held_elsewhere(Some(&held), &me, t(20), LEASE));
        // ... unless its heartbeat is older than the lease, or it stopped.
        assert!(!held_elsewhere(Some(&held), &me, t(41), LEASE));
        held.stopped_at = Some(t(15));
        assert!(!held_elsewhere(Some(&held), &me, t(20), LEASE));
        // This machine's machine-id unknown: no machine is known to be this one.
        let mut blind = me.clone();
        blind.machine = String::new();
        let held = entry(inst("daemon"), 10);
        assert!(held_elsewhere(Some(&held), &blind, t(20), LEASE));
    }
}
