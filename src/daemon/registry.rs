//! This daemon's entry in the node registry (docs/design.md §8 "One name, one daemon"):
//! who this process is ([`this_instance`]: host, machine-id, boot id, pid namespace, pid,
//! process start), the start-time registration of its `[daemon] node` name (refused when
//! another live daemon holds it: [`DaemonError::NodeInUse`], exit 78), and whether a
//! process on this machine still runs ([`process_alive`]). The heartbeat is the
//! supervisor's half-lease tick (`supervisor::leases`).

use super::DaemonError;
use crate::core::config::DaemonConfig;
use crate::core::nodes::{Decision, Instance, NodeEntry, TakeOver};
use crate::store::Store;
use tracing::{info, warn};

/// Who this process is, with a fresh random instance id (one per daemon start).
pub fn this_instance() -> Instance {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let machine = Some(read("/etc/machine-id"))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| read("/var/lib/dbus/machine-id"));
    let pid = std::process::id();
    Instance {
        id: format!("{:032x}", rand::random::<u128>()),
        host: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().trim().to_string())
            .unwrap_or_default(),
        machine,
        // Hidden under systemd's ProcSubset=pid: then unknown (empty).
        boot: read("/proc/sys/kernel/random/boot_id"),
        pid_ns: std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        pid,
        proc_start: proc_start(pid).ok().flatten().unwrap_or(0),
    }
}

/// The start time (clock ticks after boot, field 22 of `/proc/PID/stat`) of process
/// `pid`; `None` when there is no such process.
fn proc_start(pid: u32) -> std::io::Result<Option<u64>> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // `pid (comm) state ...`: comm may hold spaces and parentheses; fields follow the last
    // `)`, the state being field 3.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    Ok(after
        .split_whitespace()
        .nth(22 - 3)
        .and_then(|f| f.parse().ok()))
}

/// Whether the process `pid` that started at `start` ticks still runs on this machine. A
/// process that cannot be looked at (another user's, hidden) counts as alive: a name is
/// never taken from a daemon that may be running.
pub fn process_alive(pid: u32, start: u64) -> bool {
    match proc_start(pid) {
        Ok(Some(s)) => s == start,
        Ok(None) => false,
        Err(_) => true,
    }
}

/// Registers `me` as this daemon's node name in `store`, or refuses to start when another
/// live daemon holds it. Returns the name.
pub(super) fn register(
    store: &mut Store,
    daemon: &DaemonConfig,
    me: &Instance,
) -> Result<String, DaemonError> {
    let name = crate::pipeline::delivery::node_name(daemon)
        .map_err(|e| DaemonError::NodeName(crate::core::errors::chain(&e)))?;
    let reg = store
        .register_node(&name, me, daemon.lease, process_alive)
        .map_err(|source| DaemonError::Store {
            path: daemon.state_db.to_string(),
            source,
        })?;
    let prev = reg.previous.as_ref();
    match reg.decision {
        Decision::Refuse => {
            let holder = prev.expect("refused by a holder").clone();
            return Err(DaemonError::NodeInUse(Box::new(InUse {
                holder,
                lease_secs: daemon.lease.as_secs(),
            })));
        }
        Decision::Free | Decision::Ours => {
            info!(node = %name, instance = %me.id, "Node name registered.");
        }
        Decision::TakeOver(why) => {
            let p = prev.expect("taken over from a holder");
            let why = match why {
                TakeOver::Stopped => "it stopped cleanly",
                TakeOver::Stale => "its heartbeat is older than lease_secs",
                TakeOver::DeadHere => "its process on this machine is gone",
                TakeOver::Rebooted => "this machine rebooted since",
            };
            info!(node = %name, instance = %me.id, previous_host = %p.instance.host,
                  previous_pid = p.instance.pid,
                  previous_heartbeat = %crate::store::fmt_ts(p.heartbeat_at),
                  "Node name registered; the daemon that had it is gone ({why}).");
        }
    }
    store.set_registration(&name, me);
    Ok(name)
}

/// Marks this daemon's clean stop in the registry (the name is free for the next start).
pub(super) fn stopped(store: &Store, name: &str, me: &Instance) {
    if let Err(e) = store.node_stopped(name, me) {
        warn!(node = %name, error = %crate::core::errors::Chain(&e),
              "Cannot mark this node stopped in the registry; a next start elsewhere waits lease_secs.");
    }
}

/// The daemon holding a name another start asked for.
#[derive(Debug)]
pub struct InUse {
    pub holder: NodeEntry,
    pub lease_secs: u64,
}

impl std::fmt::Display for InUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = &self.holder;
        write!(
            f,
            "node name {} is held by another running regdrop daemon (host {}, pid {}, started {}, last heartbeat {}); \
             give each node its own [daemon] node (README \"Running more than one node\"), or, if that daemon was just \
             stopped without a clean shutdown (power, network cut), start this one again once its heartbeat is older \
             than lease_secs ({} s)",
            h.name,
            h.instance.host,
            h.instance.pid,
            crate::store::fmt_ts(h.started_at),
            crate::store::fmt_ts(h.heartbeat_at),
            self.lease_secs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_is_not() {
        let me = this_instance();
        assert_eq!(me.pid, std::process::id());
        assert!(me.proc_start > 0, "{me:?}");
        assert!(process_alive(me.pid, me.proc_start));
        assert!(
            !process_alive(me.pid, me.proc_start + 1),
            "a later process with our pid"
        );
        assert_ne!(this_instance().id, me.id, "one instance id per start");
    }

    #[test]
    fn a_reaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = proc_start(pid).unwrap().unwrap_or(0);
        child.wait().unwrap();
        assert!(!process_alive(pid, start));
    }
}
