//! What the supervisor tells: the one-line status (systemd STATUS, `READY`), the queue
//! gauge, and the status file `regdrop status` reads.

use super::Supervisor;
use crate::store;
use crate::telemetry;
use std::path::Path;
use tracing::warn;

impl Supervisor {
    pub(super) fn status_line(&self) -> String {
        let next = self
            .entries
            .iter()
            .filter_map(|(id, e)| e.next.map(|n| (n.0, id)))
            .min();
        let mut s = format!(
            "{} subscriptions, {} running, {} queued",
            self.entries.len(),
            self.active,
            self.queue.len()
        );
        if let Some((t, id)) = next {
            s += &format!(", next: {id} at {}", store::fmt_ts(t));
        }
        s
    }

    /// Gauges, systemd STATUS and the status file, after something changed.
    pub(super) fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        telemetry::queue_depth(self.queue.len());
        self.notifier.status(&self.status_line());
        if let Some(path) = &self.status_file {
            let subs: Vec<serde_json::Value> = self
                .entries
                .iter()
                .map(|(id, e)| {
                    serde_json::json!({
                        "id": id,
                        "source": e.sub.source.display().to_string(),
                        "next_fire": e.next.map(|n| store::fmt_ts(n.0)),
                        "busy": e.busy,
                        "state": if e.running { "running" } else if e.busy { "queued" } else { "idle" },
                        "waiting_fire": e.pending.map(store::fmt_ts),
                        "stale": e.stale,
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "pid": std::process::id(),
                "stopped": self.stopped,
                "started_at": store::fmt_ts(self.started_at),
                "updated_at": store::fmt_ts(self.clock.now()),
                "running": self.active,
                "queued": self.queue.len(),
                "invalid_files": self.invalid_files,
                "subscriptions": subs,
            });
            if let Err(e) = write_atomic(path, &serde_json::to_vec_pretty(&doc).expect("json")) {
                warn!(file = %path.display(), error = %e, "Cannot write the status file.");
            }
        }
    }
}

/// Writes `bytes` to `path` via a temp file and rename (readers never see half a file).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
