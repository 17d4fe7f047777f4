//! The supervisor: one task that owns the timetable, the queue and the slots.
//!
//! It sleeps until the earliest next fire time (or housekeeping, or at most [`MAX_NAP`] to
//! notice wall-clock jumps) and wakes early when a run ends, on an [`Intent`] or on
//! shutdown; there is no polling. When a subscription fires it is queued; queued runs start
//! in FIFO order as soon as both the global limit (`max_concurrent`) and the limit of the
//! run's host (`max_per_host`, host = `host:port`) allow; a run blocked by its host does
//! not hold up runs to other hosts. A subscription has at most one run queued or working:
//! a fire that comes meanwhile is remembered (the latest one wins) and queued when the run
//! ends.
//!
//! The work itself is injected ([`Work`]) and so is the clock ([`Clock`]), so tests drive
//! the supervisor with `tokio::time::pause()` and a fake work function, without network.
//!
//! Files: `clock`, `job` (what a run is given), `timetable` (subscriptions and their
//! next fire times, the queue's input), `groups` (queued fires with one register query
//! sealed from one shared scan), `slots` (starting queued runs and their ends),
//! `status` (what it tells systemd and `regdrop status`), `leases` (taking over runs no
//! node holds); this file holds the loop.

mod clock;
mod groups;
mod job;
mod leases;
mod slots;
mod status;
mod timetable;

pub use clock::{Clock, SystemClock, TokioClock};
pub use job::{host_of, Job, JobKind, Work, WorkResult};

use super::alerts::{Alerts, Outbox};
use super::notify::Notifier;
use super::signal::Intent;
use crate::core::config::DaemonConfig;
use crate::core::identity::SubscriptionId;
use crate::loader::Loaded;
use crate::store::{self, Store};
use chrono::{DateTime, Utc};
use slots::Done;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timetable::Entry;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// The longest the supervisor sleeps without looking at the wall clock again (suspend,
/// NTP steps). Not polling: one wake-up per 5 minutes when nothing is due.
pub const MAX_NAP: Duration = Duration::from_secs(300);
/// Housekeeping (spool + retention) runs at start and then this often.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How long to wait for cancelled runs to wind down after the grace period.
pub const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// Everything the supervisor needs; see [`super::run_with`].
pub struct Supervisor {
    pub(super) config_path: PathBuf,
    pub(super) daemon: Arc<DaemonConfig>,
    entries: BTreeMap<SubscriptionId, Entry>,
    queue: VecDeque<Job>,
    active: usize,
    per_host: HashMap<String, usize>,
    store: Arc<Mutex<Store>>,
    work: Arc<dyn Work>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: Option<mpsc::UnboundedReceiver<Done>>,
    notifier: Notifier,
    /// Operator alerts and customer notices (docs/design.md §8).
    alerts: Alerts,
    status_file: Option<PathBuf>,
    started_at: DateTime<Utc>,
    next_housekeeping: DateTime<Utc>,
    /// When to look for runs no node holds next ([`leases`]).
    next_takeover: DateTime<Utc>,
    dirty: bool,
    stopped: bool,
    /// Subscription files that failed validation at the last load.
    invalid_files: usize,
    /// Shared scans under way, and the fires they hold.
    groups: groups::Groups,
    /// This daemon's node name and instance in the registry: heartbeat every half lease.
    registration: Option<(String, crate::core::nodes::Instance)>,
    /// Set when another instance took the node name: the loop ends, runs are cancelled.
    evicted: Option<crate::core::nodes::NodeEntry>,
}

pub(super) use crate::store::lock;

/// What ended one wait of the loop ([`Supervisor::wait`]).
enum Woke<T> {
    /// A run ended (boxed: an outcome carries its receipt).
    Done(Box<Done>),
    /// The systemd watchdog was due and has been answered.
    Watchdog,
    /// What the caller waited for besides.
    Other(T),
}

/// What the running loop waits for besides runs ending.
enum Wake {
    Shutdown,
    Intent(Option<Intent>),
    /// The nap until the next fire time (or [`MAX_NAP`]) is over.
    Nap,
}

/// Why the grace period ends early or on time.
enum GraceEnd {
    Over,
    SecondShutdown,
}

impl Supervisor {
    pub(super) fn new(
        config_path: PathBuf,
        daemon: Arc<DaemonConfig>,
        store: Arc<Mutex<Store>>,
        work: Arc<dyn Work>,
        clock: Arc<dyn Clock>,
        status_file: Option<PathBuf>,
        outbox: Arc<dyn Outbox>,
    ) -> Supervisor {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let now = clock.now();
        let alerts = Alerts::new(daemon.notify.clone(), store.clone(), outbox);
        Supervisor {
            config_path,
            daemon,
            entries: BTreeMap::new(),
            queue: VecDeque::new(),
            active: 0,
            per_host: HashMap::new(),
            store,
            work,
            clock,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            done_tx,
            done_rx: Some(done_rx),
            notifier: Notifier,
            alerts,
            status_file,
            started_at: now,
            next_housekeeping: now,
            next_takeover: now,
            dirty: true,
            stopped: false,
            invalid_files: 0,
            groups: groups::Groups::default(),
            registration: None,
            evicted: None,
        }
    }

    /// The node name this daemon registered as ([`super::registry`]): its heartbeat is
    /// the half-lease tick, and the loop ends when another instance takes the name.
    pub(super) fn register_as(&mut self, name: String, me: crate::core::nodes::Instance) {
        self.registration = Some((name, me));
    }

    /// The start: loads the subscriptions, queues every unfinished run of the store first
    /// (crash recovery), then the catch-up runs.
    pub(super) fn start(&mut self, loaded: Loaded) {
        let now = self.clock.now();
        let catch_up = self.apply(loaded, now);
        let unfinished = match lock(&self.store).unfinished_runs() {
            Ok(r) => r,
            Err(e) => {
                error!(error = %crate::core::errors::Chain(&e), "Cannot list unfinished runs; none resumed.");
                vec![]
            }
        };
        for run in unfinished {
            let Some(e) = self.entries.get_mut(&run.subscription) else {
                warn!(subscription = %run.subscription, run = %run.id, state = %run.state,
                      "Unfinished run of a subscription that is not loaded; it stays as it is until the subscription is back.");
                continue;
            };
            if e.busy {
                continue; // a second active run cannot exist (store index); be safe
            }
            e.busy = true;
            info!(subscription = %run.subscription, run = %run.id, state = %run.state, "Resuming an unfinished run.");
            self.queue.push_back(Job {
                sub: e.sub.clone(),
                daemon: self.daemon.clone(),
                kind: JobKind::Resume { run: Box::new(run) },
            });
        }
        for (id, t) in catch_up {
            info!(subscription = %id, scheduled_at = %store::fmt_ts(t), "Catching up a fire time missed while down.");
            self.fire(&id, t);
        }
        let subs = self
            .entries
            .iter()
            .map(|(id, e)| (id.clone(), e.sub.clone()))
            .collect();
        let next: BTreeMap<SubscriptionId, DateTime<Utc>> = self
            .entries
            .iter()
            .filter_map(|(id, e)| Some((id.clone(), e.next?.0)))
            .collect();
        self.alerts.start(&subs, |id| next.get(id).copied(), now);
    }

    /// Re-reads the configuration (SIGHUP).
    fn reload(&mut self) {
        self.notifier.reloading();
        info!(config = %self.config_path.display(), "Reloading configuration.");
        match crate::loader::load(&self.config_path) {
            Err(fatal) => {
                error!(problems = %fatal, "The daemon config is invalid; keeping the running configuration.")
            }
            Ok(loaded) => {
                let now = self.clock.now();
                let catch_up = self.apply(loaded, now);
                for (id, t) in catch_up {
                    self.fire(&id, t);
                }
                info!(
                    subscriptions = self.entries.len(),
                    "Configuration reloaded."
                );
            }
        }
        self.notifier.ready(&self.status_line());
    }

    fn housekeeping(&mut self, now: DateTime<Utc>) {
        self.next_housekeeping =
            now + chrono::Duration::from_std(HOUSEKEEPING_EVERY).expect("fits");
        super::housekeeping::run(&self.store, &self.daemon, now);
    }

    /// Waits until a run ends, `other` completes, or the systemd watchdog is due (which it
    /// answers): the one place the loop feeds the watchdog, while running, during the grace
    /// period and while cancelled runs wind down.
    async fn wait<T>(
        &self,
        done_rx: &mut mpsc::UnboundedReceiver<Done>,
        watchdog: &mut Option<Interval>,
        other: impl Future<Output = T>,
    ) -> Woke<T> {
        tokio::select! {
            Some(done) = done_rx.recv() => Woke::Done(Box::new(done)),
            v = other => Woke::Other(v),
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                self.notifier.watchdog();
                Woke::Watchdog
            }
        }
    }

    /// The loop; returns after a shutdown intent or `shutdown` and the grace period, or
    /// with the daemon that took this one's node name (its runs cancelled at once).
    pub(super) async fn run(
        mut self,
        mut intents: mpsc::UnboundedReceiver<Intent>,
        shutdown: impl Future<Output = ()>,
    ) -> Option<crate::core::nodes::NodeEntry> {
        tokio::pin!(shutdown);
        let mut done_rx = self.done_rx.take().expect("run once");
        let mut intents_open = true;
        let mut watchdog = self.notifier.watchdog_interval().map(tokio::time::interval);
        self.refresh_attention();
        self.notifier.ready(&self.status_line());
        info!(
            subscriptions = self.entries.len(),
            queued = self.queue.len(),
            "Daemon ready."
        );
        loop {
            let now = self.clock.now();
            if self.next_housekeeping <= now {
                self.housekeeping(now);
            }
            self.fire_due(now);
            self.take_over(now);
            if self.evicted.is_some() {
                break;
            }
            self.form_groups();
            self.dispatch();
            // From the store each wake-up: `regdrop resolve` changes it from outside.
            self.refresh_attention();
            self.publish();
            let wake = self.next_wake(now);
            let nap = self.clock.real(wake - now).min(MAX_NAP);
            let deadline = Instant::now() + nap;
            let other = async {
                tokio::select! {
                    _ = &mut shutdown => Wake::Shutdown,
                    intent = intents.recv(), if intents_open => Wake::Intent(intent),
                    _ = tokio::time::sleep_until(deadline) => Wake::Nap,
                }
            };
            match self.wait(&mut done_rx, &mut watchdog, other).await {
                Woke::Done(done) => self.finished(*done),
                Woke::Watchdog | Woke::Other(Wake::Nap) => {}
                Woke::Other(Wake::Intent(Some(Intent::Reload))) => self.reload(),
                // The loop's next turn recomputes the gauges and the status file.
                Woke::Other(Wake::Intent(Some(Intent::Refresh))) => self.dirty = true,
                Woke::Other(Wake::Intent(None)) => intents_open = false,
                Woke::Other(Wake::Shutdown | Wake::Intent(Some(Intent::Shutdown))) => {
                    info!("Shutdown requested.");
                    break;
                }
            }
        }
        self.stop(done_rx, intents, watchdog).await
    }

    async fn stop(
        mut self,
        mut done_rx: mpsc::UnboundedReceiver<Done>,
        mut intents: mpsc::UnboundedReceiver<Intent>,
        mut watchdog: Option<Interval>,
    ) -> Option<crate::core::nodes::NodeEntry> {
        self.notifier.stopping();
        let dropped = self.queue.len();
        self.queue.clear();
        self.tracker.close();
        self.dirty = true;
        self.publish();
        info!(
            running = self.active,
            dropped_queued = dropped,
            grace_secs = self.daemon.shutdown_grace.as_secs(),
            "Stopping: no new runs; waiting for in-flight runs."
        );
        // Evicted: no grace, the runs stop now (their commits are fenced anyway).
        let grace = tokio::time::sleep(if self.evicted.is_some() {
            Duration::ZERO
        } else {
            self.daemon.shutdown_grace
        });
        tokio::pin!(grace);
        loop {
            if self.active == 0 {
                break;
            }
            let other = async {
                tokio::select! {
                    _ = &mut grace => GraceEnd::Over,
                    Some(Intent::Shutdown) = intents.recv() => GraceEnd::SecondShutdown,
                }
            };
            match self.wait(&mut done_rx, &mut watchdog, other).await {
                Woke::Done(done) => self.finished(*done),
                Woke::Watchdog => {}
                Woke::Other(GraceEnd::Over) => {
                    warn!(running = self.active, "Grace period over; cancelling in-flight runs (they resume on the next start).");
                    break;
                }
                Woke::Other(GraceEnd::SecondShutdown) => {
                    warn!(
                        running = self.active,
                        "Second shutdown request; cancelling in-flight runs now."
                    );
                    break;
                }
            }
        }
        self.cancel.cancel();
        let cancel_wait = tokio::time::sleep(CANCEL_WAIT);
        tokio::pin!(cancel_wait);
        while self.active > 0 {
            match self
                .wait(&mut done_rx, &mut watchdog, &mut cancel_wait)
                .await
            {
                Woke::Done(done) => self.finished(*done),
                Woke::Watchdog => {}
                Woke::Other(()) => {
                    warn!(
                        running = self.active,
                        "Runs did not stop in time; leaving them to be resumed."
                    );
                    break;
                }
            }
        }
        self.alerts.shutdown().await;
        self.stopped = true;
        self.dirty = true;
        self.publish();
        info!("Daemon stopped.");
        self.evicted
    }
}
