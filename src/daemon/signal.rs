//! Unix signals become intents: SIGHUP asks for a reload (systemd's `ExecReload` sends it),
//! SIGUSR1 for a fresh look at the store (`regdrop resolve` sends it, so the attention gauge
//! drops at once), SIGTERM and SIGINT ask for a graceful shutdown. The supervisor only ever sees [`Intent`]s,
//! so tests drive it through a channel without sending real signals.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedSender;

/// What the operator (or systemd) wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Re-read the daemon config and the subscriptions.
    Reload,
    /// Recompute what comes from the store (gauges, the status file) now.
    Refresh,
    /// Stop taking new runs, let in-flight ones finish within the grace period, exit.
    Shutdown,
}

/// Installs the handlers and forwards intents to `tx` until the receiver is gone.
pub fn forward(tx: UnboundedSender<Intent>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        loop {
            let (intent, name, means) = tokio::select! {
                _ = hup.recv() => (Intent::Reload, "SIGHUP", "reload"),
                _ = usr1.recv() => (Intent::Refresh, "SIGUSR1", "refresh"),
                _ = term.recv() => (Intent::Shutdown, "SIGTERM", "shutdown"),
                _ = int.recv() => (Intent::Shutdown, "SIGINT", "shutdown"),
            };
            tracing::info!(signal = %name, intent = %means, "Signal received.");
            if tx.send(intent).is_err() {
                return;
            }
        }
    }))
}
