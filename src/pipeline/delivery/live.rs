//! The shared-scan members this process is sealing, or sealed moments ago (docs/design.md
//! §4, "Shared scans"), as their runs find them: a member's run that starts while its
//! scan seals joins it (it shares the scan's run lock, and the scan leaves the run's lease
//! to it), its first attempt uploads the spool file as it grows ([`super::stream`]), and no
//! attempt of it goes on before the scan has ended for it. A run that starts after its
//! scan finds the sealer's figures, so its first attempt does not read the file again
//! ([`crate::core::fresh`]).

use super::DeliveryError;
use crate::core::fresh::Fresh;
use crate::core::identity::RunId;
use crate::sftp::Growing;
use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The members of this process's shared scans (one per process, in [`super::Ctx`]).
#[derive(Default)]
pub struct Sealing {
    runs: Mutex<HashMap<RunId, Entry>>,
}

enum Entry {
    /// Its scan runs: the scan's lock of the run, and whether the run joined.
    Sealing {
        live: Arc<Live>,
        lock: Arc<File>,
        joined: bool,
    },
    /// Sealed moments ago, and recorded.
    Sealed(Fresh),
}

/// A member being sealed, as its joined run sees it.
pub(super) struct Live {
    /// The growing spool file, for the first attempt that uploads it.
    source: Mutex<Option<Growing>>,
    /// Set once the scan has ended for the member (its artifact recorded, or its error).
    ended: tokio::sync::watch::Sender<bool>,
    error: Mutex<Option<DeliveryError>>,
}

/// A run that joined its scan: the scan's lock of it, and the member.
pub(super) struct Joined {
    pub lock: Arc<File>,
    pub live: Arc<Live>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sealing {
    /// A member whose scan starts: its run lock (taken by the scan) and its growing file.
    pub(super) fn publish(&self, run: RunId, lock: File, source: Growing) {
        let live = Arc::new(Live {
            source: Mutex::new(Some(source)),
            ended: tokio::sync::watch::channel(false).0,
            error: Mutex::new(None),
        });
        guard(&self.runs).insert(
            run,
            Entry::Sealing {
                live,
                lock: Arc::new(lock),
                joined: false,
            },
        );
    }

    /// The run's delivery starts while its scan seals it: from here its lease is the run's
    /// own and the scan's end is told to it ([`Live::ended`]). `None` when no scan of this
    /// process seals it.
    pub(super) fn join(&self, run: &RunId) -> Option<Joined> {
        match guard(&self.runs).get_mut(run) {
            Some(Entry::Sealing { live, lock, joined }) => {
                *joined = true;
                Some(Joined {
                    lock: lock.clone(),
                    live: live.clone(),
                })
            }
            _ => None,
        }
    }

    /// The scan ended for `run`: sealed and recorded (`Ok`, the sealer's figures) or not.
    /// A joined run is told (and gets the error as its attempt's); else `unjoined` runs,
    /// before any delivery can join (the scan lets go of the run's lease), the scan's lock
    /// of the run is dropped, and the error comes back to the scan. Nothing when `run` was
    /// not published.
    pub(super) fn end(
        &self,
        run: &RunId,
        result: Result<Fresh, DeliveryError>,
        unjoined: impl FnOnce(),
    ) -> Result<(), DeliveryError> {
        let mut runs = guard(&self.runs);
        let Some(Entry::Sealing { live, lock, joined }) = runs.remove(run) else {
            return result.map(|_| ());
        };
        let result = match result {
            Ok(f) => {
                runs.insert(run.clone(), Entry::Sealed(f));
                Ok(())
            }
            Err(e) => Err(e),
        };
        if joined {
            if let Err(e) = result {
                *guard(&live.error) = Some(e);
            }
            live.ended.send_replace(true);
            return Ok(());
        }
        unjoined();
        drop(lock);
        result
    }

    /// The sealer's figures of `run`, when this process sealed it moments ago (once).
    pub(super) fn take_fresh(&self, run: &RunId) -> Option<Fresh> {
        let mut runs = guard(&self.runs);
        match runs.get(run) {
            Some(Entry::Sealed(_)) => match runs.remove(run) {
                Some(Entry::Sealed(f)) => Some(f),
                _ => None,
            },
            _ => None,
        }
    }
}

impl Live {
    /// The growing spool file, to the first that asks.
    pub(super) fn take_source(&self) -> Option<Growing> {
        guard(&self.source).take()
    }

    /// Waits for the scan's end for this member: `Ok` when its artifact is recorded, its
    /// error (once) when not; `None` on `cancel`.
    pub(super) async fn ended(
        &self,
        cancel: &CancellationToken,
    ) -> Option<Result<(), DeliveryError>> {
        let mut rx = self.ended.subscribe();
        tokio::select! {
            _ = cancel.cancelled() => return None,
            r = rx.wait_for(|e| *e) => if r.is_err() { return None },
        }
        Some(match guard(&self.error).take() {
            Some(e) => Err(e),
            None => Ok(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fresh::Stamp;
    use crate::sftp::Growth;

    fn source() -> Growing {
        Growing {
            file: tokio::sync::oneshot::channel().1,
            growth: tokio::sync::watch::channel(Growth::Written(0)).1,
        }
    }

    fn fresh() -> Fresh {
        Fresh {
            bytes: 1,
            sha256: "00".into(),
            stamp: Stamp {
                len: 1,
                modified: std::time::SystemTime::UNIX_EPOCH,
                inode: 1,
            },
        }
    }

    fn lock() -> File {
        tempfile::tempfile().unwrap()
    }

    #[tokio::test]
    async fn a_joined_run_is_told_the_end_and_gets_the_figures_afterwards() {
        let s = Sealing::default();
        let run = RunId::from("r1");
        s.publish(run.clone(), lock(), source());
        let j = s.join(&run).expect("joined");
        assert!(j.live.take_source().is_some());
        assert!(j.live.take_source().is_none(), "one follower");
        let mut let_go = false;
        s.end(&run, Ok(fresh()), || let_go = true).unwrap();
        assert!(!let_go, "a joined run keeps its lease");
        let cancel = CancellationToken::new();
        assert!(matches!(j.live.ended(&cancel).await, Some(Ok(()))));
        assert_eq!(s.take_fresh(&run), Some(fresh()));
        assert_eq!(s.take_fresh(&run), None, "once");
        assert!(s.join(&run).is_none(), "nothing to join once sealed");
    }

    #[tokio::test]
    async fn a_joined_run_gets_the_sealing_error_once() {
        let s = Sealing::default();
        let run = RunId::from("r2");
        s.publish(run.clone(), lock(), source());
        let j = s.join(&run).unwrap();
        s.end(&run, Err(DeliveryError::Spool("disk full".into())), || {})
            .expect("told to the run, not to the scan");
        let cancel = CancellationToken::new();
        assert!(matches!(
            j.live.ended(&cancel).await,
            Some(Err(DeliveryError::Spool(_)))
        ));
        assert!(matches!(j.live.ended(&cancel).await, Some(Ok(()))));
        assert_eq!(s.take_fresh(&run), None);
    }

    #[tokio::test]
    async fn an_unjoined_run_is_let_go_and_its_error_is_the_scans() {
        let s = Sealing::default();
        let run = RunId::from("r3");
        s.publish(run.clone(), lock(), source());
        let mut let_go = false;
        let r = s.end(&run, Err(DeliveryError::Spool("x".into())), || {
            let_go = true
        });
        assert!(let_go);
        assert!(matches!(r, Err(DeliveryError::Spool(_))));
        assert!(s.join(&run).is_none());
    }

    #[tokio::test]
    async fn waiting_stops_on_cancel() {
        let s = Sealing::default();
        let run = RunId::from("r4");
        s.publish(run.clone(), lock(), source());
        let j = s.join(&run).unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(j.live.ended(&cancel).await.is_none());
    }
}
