//! systemd notifications (`Type=notify`): READY, STATUS, RELOADING, STOPPING, the
//! watchdog keep-alive, and EXTEND_TIMEOUT while the daemon waits before READY. Every call is a no-op when `$NOTIFY_SOCKET` is unset (not under
//! systemd, tests); failures to send are logged once at debug level and otherwise ignored.

use sd_notify::NotifyState;
use std::time::Duration;

/// Sends notifications to systemd when it asked for them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notifier;

impl Notifier {
    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!(error = %e, "sd_notify failed.");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// Before READY, while the daemon waits (for its state store): says why, and gives
    /// systemd's start timeout `at_least` more, so a long database outage at boot is not a
    /// failed start (which `Restart=` and the start limit would turn into a stopped unit).
    pub fn waiting(&self, status: &str, at_least: Duration) {
        let usec = u32::try_from(at_least.as_micros()).unwrap_or(u32::MAX);
        self.send(&[
            NotifyState::ExtendTimeoutUsec(usec),
            NotifyState::Status(status),
        ]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading configuration"),
            ]),
            Err(_) => self.send(&[
                NotifyState::Reloading,
                NotifyState::Status("reloading configuration"),
            ]),
        }
    }

    pub fn stopping(&self) {
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: waiting for in-flight runs"),
        ]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC`, when systemd set it for us.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        sd_notify::watchdog_enabled()
            .map(|d| d / 2)
            .filter(|d| !d.is_zero())
    }
}
