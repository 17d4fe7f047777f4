//! Fault injection of the demo server ([`Faults`]), shared by all its connections: cut a
//! connection after N written bytes, hide the protocol extensions; counters of
//! connections, bytes written and cuts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Runtime fault-injection knobs and counters, shared by all connections.
#[derive(Debug, Default)]
pub struct Faults {
    /// (limit, bytes written since armed)
    fail_after: Mutex<Option<(u64, u64)>>,
    hide_extensions: AtomicBool,
    trips: AtomicU64,
    bytes_written: AtomicU64,
    connections: AtomicU64,
}

impl Faults {
    /// Arms (or with `None` disarms) the cut: once `n` more bytes have been written through
    /// WRITE requests (over all connections), the connection that crosses the limit writes
    /// only up to it, gets SSH_FX_CONNECTION_LOST and is disconnected. Fires once, then
    /// disarms itself, so a retry can succeed.
    pub fn set_fail_after_bytes(&self, n: Option<u64>) {
        *self.fail_after.lock().unwrap_or_else(|e| e.into_inner()) = n.map(|n| (n, 0));
    }

    /// Leaves `posix-rename@openssh.com` and `fsync@openssh.com` out of the version reply
    /// (and refuses them), to test a client's fallbacks.
    pub fn set_hide_extensions(&self, hide: bool) {
        self.hide_extensions.store(hide, Ordering::SeqCst);
    }

    /// How many times the byte limit cut a connection.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::SeqCst)
    }

    /// Bytes written to files so far (all connections).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far (to count a client's retries).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Accounts for a write of `len` bytes; returns how many may be written, and whether to
    /// cut the connection afterwards.
    pub(super) fn admit(&self, len: u64) -> (u64, bool) {
        let mut g = self.fail_after.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_mut() {
            Some((limit, done)) if *done + len >= *limit && len > 0 => {
                let allowed = limit.saturating_sub(*done);
                *g = None;
                self.trips.fetch_add(1, Ordering::SeqCst);
                (allowed, true)
            }
            Some((_, done)) => {
                *done += len;
                (len, false)
            }
            None => (len, false),
        }
    }
}

/// What the server's own code counts and asks.
impl Faults {
    /// Counts a written byte count (after [`admit`](Faults::admit)).
    pub(super) fn wrote(&self, n: u64) {
        self.bytes_written.fetch_add(n, Ordering::SeqCst);
    }

    /// Counts an accepted TCP connection.
    pub(super) fn connected(&self) {
        self.connections.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether the extensions are hidden ([`set_hide_extensions`](Faults::set_hide_extensions)).
    pub(super) fn hides_extensions(&self) -> bool {
        self.hide_extensions.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_limit_fires_once_at_the_byte() {
        let f = Faults::default();
        assert_eq!(f.admit(100), (100, false));
        f.set_fail_after_bytes(Some(250));
        assert_eq!(f.admit(100), (100, false));
        assert_eq!(f.admit(100), (100, false));
        assert_eq!(f.admit(100), (50, true));
        assert_eq!(f.admit(100), (100, false));
        assert_eq!(f.trips(), 1);
    }

    #[test]
    fn counters_count() {
        let f = Faults::default();
        f.connected();
        f.wrote(7);
        f.wrote(3);
        assert_eq!((f.connections(), f.bytes_written()), (1, 10));
        assert!(!f.hides_extensions());
        f.set_hide_extensions(true);
        assert!(f.hides_extensions());
    }
}
