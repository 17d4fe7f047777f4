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

use super::notify::Notifier;
use super::signal::Intent;
use crate::core::config::{DaemonConfig, Subscription};
use crate::loader::Loaded;
use crate::pipeline::delivery::Outcome;
use crate::store::{self, Run, RunFilter, RunState, Store};
use crate::telemetry;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
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

/// Where "now" comes from. The schedule works in UTC wall-clock time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// How long to really sleep for `span` of this clock's time (a demo clock may run
    /// faster than real time).
    fn real(&self, span: chrono::Duration) -> Duration {
        span.to_std().unwrap_or_default()
    }
}

/// The system's wall clock.
pub struct SystemClock;
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Tokio's clock mapped onto a UTC base: with `tokio::time::pause()` time advances only as
/// the runtime sleeps, so tests run days of schedule in milliseconds.
pub struct TokioClock {
    utc: DateTime<Utc>,
    at: Instant,
}

impl TokioClock {
    pub fn starting_at(utc: DateTime<Utc>) -> TokioClock {
        TokioClock {
            utc,
            at: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.utc + chrono::Duration::from_std(self.at.elapsed()).unwrap_or_default()
    }
}

/// Why a run is started.
#[derive(Debug, Clone)]
pub enum JobKind {
    /// A fire time came (or was caught up): create the run and deliver it.
    Fire { scheduled_at: DateTime<Utc> },
    /// Continue a run the store has (crash recovery).
    Resume { run: Box<Run> },
}

/// One run to do.
#[derive(Debug, Clone)]
pub struct Job {
    pub sub: Arc<Subscription>,
    pub daemon: Arc<DaemonConfig>,
    pub kind: JobKind,
}

impl Job {
    pub fn scheduled_at(&self) -> DateTime<Utc> {
        match &self.kind {
            JobKind::Fire { scheduled_at } => *scheduled_at,
            JobKind::Resume { run } => run.scheduled_at,
        }
    }

    /// The run's id (deterministic for a fire time).
    pub fn run_id(&self) -> String {
        match &self.kind {
            JobKind::Fire { scheduled_at } => store::run_id(&self.sub.id, *scheduled_at),
            JobKind::Resume { run } => run.id.clone(),
        }
    }
}

/// What a run ended with; `Err` is an error outside the delivery protocol (store, task).
pub type WorkResult = Result<Outcome, String>;

/// Does one run. The daemon's is [`super::DeliveryWork`]; tests pass closures.
pub trait Work: Send + Sync + 'static {
    /// Runs `job` to an end; should return [`Outcome::Interrupted`] soon after `cancel`.
    fn start(&self, job: Job, cancel: CancellationToken) -> BoxFuture<'static, WorkResult>;
}

impl<F, Fut> Work for F
where
    F: Fn(Job, CancellationToken) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = WorkResult> + Send + 'static,
{
    fn start(&self, job: Job, cancel: CancellationToken) -> BoxFuture<'static, WorkResult> {
        Box::pin(self(job, cancel))
    }
}

/// The host a run counts against for `max_per_host`.
pub fn host_of(sub: &Subscription) -> String {
    format!("{}:{}", sub.target.host, sub.target.port)
}

/// A subscription as the supervisor keeps it.
struct Entry {
    sub: Arc<Subscription>,
    /// Next fire time (the run's scheduled time) and when to start it (plus jitter).
    next: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// A run of it is queued or working.
    busy: bool,
    /// Its run holds a slot (working, or waiting between attempts); `busy && !running` is
    /// queued for a slot.
    running: bool,
    /// A fire time that came while busy (coalesced: the latest wins).
    pending: Option<DateTime<Utc>>,
    /// After an error outside the protocol, resume its active run at this time.
    resume_at: Option<DateTime<Utc>>,
    /// Its file failed validation at the last reload; this is the last good version.
    stale: bool,
}

struct Done {
    sub: String,
    host: String,
    run: String,
    result: WorkResult,
    seconds: f64,
}

/// Everything the supervisor needs; see [`super::run_with`].
pub struct Supervisor {
    pub(super) config_path: PathBuf,
    pub(super) daemon: Arc<DaemonConfig>,
    entries: BTreeMap<String, Entry>,
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
    status_file: Option<PathBuf>,
    started_at: DateTime<Utc>,
    next_housekeeping: DateTime<Utc>,
    dirty: bool,
    stopped: bool,
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

fn jittered(sub: &Subscription, t: DateTime<Utc>) -> DateTime<Utc> {
    // Checked: `check` bounds jitter_secs to a day, and no value may overflow here either.
    let j = sub.schedule.jitter_secs.min(i64::MAX as u64 - 1);
    if j == 0 {
        return t;
    }
    chrono::Duration::try_seconds(rand::random::<u64>().wrapping_rem(j + 1) as i64)
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(t)
}

fn next_fire(sub: &Subscription, after: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if !sub.enabled {
        return None;
    }
    guarded(sub, "the next fire time", || {
        sub.schedule
            .next_after(after)
            .map(|t| (t, jittered(sub, t)))
    })
}

/// Runs a schedule computation of one subscription; a panic in it (a bug: `check` bounds
/// every number) unschedules that subscription with an error in the log instead of taking
/// the daemon and every other subscription down.
fn guarded<T>(sub: &Subscription, what: &str, f: impl FnOnce() -> Option<T>) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            error!(subscription = %sub.id, file = %sub.source.display(),
                   "Computing {what} panicked; this subscription is not scheduled until the next reload. This is a bug: report it with the subscription file.");
            None
        }
    }
}

fn outcome_label(r: &WorkResult) -> &'static str {
    match r {
        Ok(Outcome::Delivered(_)) => "delivered",
        Ok(Outcome::AlreadyDelivered(_)) => "already_delivered",
        Ok(Outcome::NeedsAttention { .. }) => "needs_attention",
        Ok(Outcome::Failed { .. }) => "failed",
        Ok(Outcome::Interrupted { .. }) => "interrupted",
        Err(_) => "error",
    }
}

impl Supervisor {
    pub(super) fn new(
        config_path: PathBuf,
        daemon: Arc<DaemonConfig>,
        store: Arc<Mutex<Store>>,
        work: Arc<dyn Work>,
        clock: Arc<dyn Clock>,
        status_file: Option<PathBuf>,
    ) -> Supervisor {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let now = clock.now();
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
            status_file,
            started_at: now,
            next_housekeeping: now,
            dirty: true,
            stopped: false,
        }
    }

    /// The start: loads the subscriptions, queues every unfinished run of the store first
    /// (crash recovery), then the catch-up runs.
    pub(super) fn start(&mut self, loaded: Loaded) {
        let now = self.clock.now();
        let catch_up = self.apply(loaded, now);
        let unfinished = match lock(&self.store).unfinished_runs() {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "Cannot list unfinished runs; none resumed.");
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
    }

    /// The last scheduled time the store has a run for.
    fn last_scheduled(&self, sub: &str) -> Option<DateTime<Utc>> {
        let runs = lock(&self.store).list_runs(&RunFilter {
            subscription: Some(sub.into()),
            ..Default::default()
        });
        match runs {
            Ok(r) => r.iter().map(|r| r.scheduled_at).max(),
            Err(e) => {
                warn!(subscription = %sub, error = %e, "Cannot read the last run.");
                None
            }
        }
    }

    /// Installs a loaded configuration; returns the catch-up fires of new subscriptions.
    fn apply(&mut self, loaded: Loaded, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
        for p in &loaded.problems {
            warn!(file = %p.file.display(), line = p.line, column = p.column, problem = %p, "Subscription file is invalid.");
        }
        let old = &self.daemon;
        if old.state_db != loaded.daemon.state_db
            || old.metrics_listen != loaded.daemon.metrics_listen
        {
            warn!("state_db and metrics_listen changes take effect at the next restart.");
        }
        self.daemon = Arc::new(loaded.daemon);
        let mut entries = BTreeMap::new();
        let mut catch_up = Vec::new();
        for sub in loaded.subscriptions {
            let id = sub.id.clone();
            let sub = Arc::new(sub);
            match self.entries.remove(&id) {
                Some(mut e) => {
                    let same = e.sub.schedule.line == sub.schedule.line
                        && e.sub.schedule.tz == sub.schedule.tz
                        && e.sub.schedule.jitter_secs == sub.schedule.jitter_secs
                        && e.sub.enabled == sub.enabled;
                    if !same {
                        e.next = next_fire(&sub, now);
                        info!(subscription = %id, schedule = %sub.schedule.line, "Schedule changed.");
                    }
                    if e.stale {
                        info!(subscription = %id, "Subscription file is valid again.");
                    }
                    e.sub = sub;
                    e.stale = false;
                    entries.insert(id, e);
                }
                None => {
                    if sub.enabled && sub.schedule.catch_up == crate::core::schedule::CatchUp::Once
                    {
                        let since = self.last_scheduled(&id).unwrap_or(now);
                        if let Some(t) = guarded(&sub, "the missed fire time", || {
                            sub.schedule.last_missed(since, now)
                        }) {
                            catch_up.push((id.clone(), t));
                        }
                    }
                    let next = next_fire(&sub, now);
                    info!(subscription = %id, next = ?next.map(|n| store::fmt_ts(n.0)), enabled = sub.enabled, "Subscription loaded.");
                    entries.insert(
                        id,
                        Entry {
                            sub,
                            next,
                            busy: false,
                            running: false,
                            pending: None,
                            resume_at: None,
                            stale: false,
                        },
                    );
                }
            }
        }
        // A file that fails validation keeps its last good version running.
        for file in &loaded.failed_files {
            let ids: Vec<String> = self
                .entries
                .iter()
                .filter(|(_, e)| &e.sub.source == file)
                .map(|(id, _)| id.clone())
                .collect();
            for id in ids {
                if entries.contains_key(&id) {
                    continue;
                }
                let mut e = self.entries.remove(&id).expect("listed above");
                e.stale = true;
                warn!(subscription = %id, file = %file.display(), "Subscription file is invalid; its last good version keeps running.");
                entries.insert(id, e);
            }
        }
        for (id, e) in std::mem::take(&mut self.entries) {
            info!(subscription = %id, busy = e.busy, "Subscription removed.");
        }
        let before = self.queue.len();
        self.queue.retain(|j| {
            entries.contains_key(&j.sub.id) || matches!(j.kind, JobKind::Resume { .. })
        });
        if self.queue.len() != before {
            info!(
                dropped = before - self.queue.len(),
                "Queued runs of removed subscriptions dropped."
            );
        }
        self.entries = entries;
        self.dirty = true;
        catch_up
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

    /// A fire time of `id` came: queue it, or remember it while a run is busy.
    fn fire(&mut self, id: &str, t: DateTime<Utc>) {
        let Some(e) = self.entries.get_mut(id) else {
            return;
        };
        let run = store::run_id(id, t);
        if e.busy {
            if let Some(old) = e.pending.replace(t) {
                info!(subscription = %id, run = %run, replaced = %store::fmt_ts(old), "Fire coalesced with an earlier waiting one.");
            } else {
                info!(subscription = %id, run = %run, "Fire while a run is busy; it waits for that run.");
            }
            return;
        }
        e.busy = true;
        let sub = e.sub.clone();
        // An active run left by an earlier error or another process goes first.
        let active = lock(&self.store).active_run(id).ok().flatten();
        let kind = match active {
            Some(a) if a.scheduled_at != store::model::trunc_ts(t) => {
                e.pending = Some(t);
                info!(subscription = %id, run = %a.id, "An earlier run is still active; resuming it first.");
                JobKind::Resume { run: Box::new(a) }
            }
            _ => JobKind::Fire { scheduled_at: t },
        };
        info!(subscription = %id, run = %run, "Run queued.");
        self.queue.push_back(Job {
            sub,
            daemon: self.daemon.clone(),
            kind,
        });
        self.dirty = true;
    }

    fn fire_due(&mut self, now: DateTime<Utc>) {
        let due: Vec<(String, Option<DateTime<Utc>>, bool)> = self
            .entries
            .iter()
            .filter_map(|(id, e)| {
                let fire = e.next.filter(|n| n.1 <= now).map(|n| n.0);
                let resume = e.resume_at.is_some_and(|r| r <= now);
                (fire.is_some() || resume).then(|| (id.clone(), fire, resume))
            })
            .collect();
        for (id, fire, resume) in due {
            if resume {
                let e = self.entries.get_mut(&id).expect("listed");
                e.resume_at = None;
                let active = if e.busy {
                    None
                } else {
                    Some(lock(&self.store).active_run(&id))
                };
                if let Some(active) = active {
                    if let Ok(Some(run)) = active {
                        e.busy = true;
                        info!(subscription = %id, run = %run.id, "Resuming a run after an error.");
                        self.queue.push_back(Job {
                            sub: e.sub.clone(),
                            daemon: self.daemon.clone(),
                            kind: JobKind::Resume { run: Box::new(run) },
                        });
                    } else if let Some(t) = e.pending.take() {
                        self.fire(&id, t);
                    }
                }
            }
            if let Some(t) = fire {
                self.fire(&id, t);
                let e = self.entries.get_mut(&id).expect("listed");
                e.next = next_fire(&e.sub, t.max(now));
                self.dirty = true;
            }
        }
    }

    /// Starts queued runs, oldest first, while the limits allow.
    fn dispatch(&mut self) {
        let mut i = 0;
        while i < self.queue.len() && self.active < self.daemon.max_concurrent {
            let host = host_of(&self.queue[i].sub);
            if self.per_host.get(&host).copied().unwrap_or(0) >= self.daemon.max_per_host {
                i += 1;
                continue;
            }
            let job = self.queue.remove(i).expect("in range");
            self.spawn(job, host);
        }
    }

    fn spawn(&mut self, job: Job, host: String) {
        self.active += 1;
        *self.per_host.entry(host.clone()).or_default() += 1;
        self.dirty = true;
        let run = job.run_id();
        let sub = job.sub.id.clone();
        if let Some(e) = self.entries.get_mut(&sub) {
            e.running = true;
        }
        info!(subscription = %sub, run = %run, host = %host, active = self.active, "Run started.");
        let fut = self.work.start(job, self.cancel.clone());
        let tx = self.done_tx.clone();
        self.tracker.spawn(async move {
            let t0 = Instant::now();
            let result = match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                Ok(r) => r,
                Err(_) => Err("the run's task panicked".to_string()),
            };
            let _ = tx.send(Done {
                sub,
                host,
                run,
                result,
                seconds: t0.elapsed().as_secs_f64(),
            });
        });
    }

    fn finished(&mut self, d: Done) {
        self.active -= 1;
        if let Some(n) = self.per_host.get_mut(&d.host) {
            *n -= 1;
            if *n == 0 {
                self.per_host.remove(&d.host);
            }
        }
        self.dirty = true;
        let label = outcome_label(&d.result);
        let (bytes, rows) = match &d.result {
            Ok(Outcome::Delivered(r)) => (r.bytes, r.rows),
            _ => (0, 0),
        };
        telemetry::run_ended(&d.sub, label, bytes, rows, d.seconds);
        match &d.result {
            Ok(Outcome::Delivered(r)) | Ok(Outcome::AlreadyDelivered(r)) => {
                telemetry::last_success(&d.sub, r.delivered_at.timestamp());
                info!(subscription = %d.sub, run = %d.run, outcome = label, receipt = r.id, seconds = d.seconds, "Run finished.");
            }
            Ok(Outcome::NeedsAttention { reason, .. }) | Ok(Outcome::Failed { reason, .. }) => {
                warn!(subscription = %d.sub, run = %d.run, outcome = label, reason = %reason, "Run finished without delivery; `regdrop retry {}` after fixing the cause.", d.run);
            }
            Ok(Outcome::Interrupted { .. }) => {
                info!(subscription = %d.sub, run = %d.run, outcome = label, "Run interrupted; it resumes on the next start.");
            }
            Err(e) => {
                error!(subscription = %d.sub, run = %d.run, outcome = label, error = %e, "Run stopped by an error.");
            }
        }
        self.refresh_attention();
        let now = self.clock.now();
        let shutting_down = self.cancel.is_cancelled() || self.tracker.is_closed();
        let Some(e) = self.entries.get_mut(&d.sub) else {
            return;
        };
        e.busy = false;
        e.running = false;
        if shutting_down {
            return;
        }
        if d.result.is_err() {
            // The run may still be active in the store: resume it after the retry base. A
            // waiting fire waits for that (firing it now would resume the same run at once,
            // again and again while the error lasts).
            let wait = e.sub.retry.base.max(Duration::from_secs(1));
            e.resume_at = Some(
                chrono::Duration::from_std(wait)
                    .ok()
                    .and_then(|w| now.checked_add_signed(w))
                    .unwrap_or(now + chrono::Duration::seconds(1)),
            );
            return;
        }
        if let Some(t) = e.pending.take() {
            self.fire(&d.sub, t);
        }
    }

    fn refresh_attention(&self) {
        let n = lock(&self.store).list_runs(&RunFilter {
            states: vec![RunState::NeedsAttention],
            ..Default::default()
        });
        if let Ok(runs) = n {
            telemetry::needing_attention(runs.len());
        }
    }

    fn next_wake(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let mut t = self.next_housekeeping;
        for e in self.entries.values() {
            if let Some((_, due)) = e.next {
                t = t.min(due);
            }
            if let Some(r) = e.resume_at {
                t = t.min(r);
            }
        }
        t.max(now)
    }

    fn status_line(&self) -> String {
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
    fn publish(&mut self) {
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
                "subscriptions": subs,
            });
            if let Err(e) = write_atomic(path, &serde_json::to_vec_pretty(&doc).expect("json")) {
                warn!(file = %path.display(), error = %e, "Cannot write the status file.");
            }
        }
    }

    fn housekeeping(&mut self, now: DateTime<Utc>) {
        self.next_housekeeping =
            now + chrono::Duration::from_std(HOUSEKEEPING_EVERY).expect("fits");
        super::housekeeping::run(&self.store, &self.daemon, now);
    }

    /// The loop; returns after a shutdown intent or `shutdown` and the grace period.
    pub(super) async fn run(
        mut self,
        mut intents: mpsc::UnboundedReceiver<Intent>,
        shutdown: impl Future<Output = ()>,
    ) {
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
            self.dispatch();
            self.publish();
            let wake = self.next_wake(now);
            let nap = self.clock.real(wake - now).min(MAX_NAP);
            let deadline = Instant::now() + nap;
            tokio::select! {
                _ = &mut shutdown => {
                    info!("Shutdown requested.");
                    break;
                }
                intent = intents.recv(), if intents_open => match intent {
                    Some(Intent::Reload) => self.reload(),
                    Some(Intent::Shutdown) => {
                        info!("Shutdown requested.");
                        break;
                    }
                    None => intents_open = false,
                },
                Some(done) = done_rx.recv() => self.finished(done),
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => self.notifier.watchdog(),
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        self.stop(done_rx, intents, watchdog).await;
    }

    async fn stop(
        mut self,
        mut done_rx: mpsc::UnboundedReceiver<Done>,
        mut intents: mpsc::UnboundedReceiver<Intent>,
        mut watchdog: Option<tokio::time::Interval>,
    ) {
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
        let grace = tokio::time::sleep(self.daemon.shutdown_grace);
        tokio::pin!(grace);
        loop {
            if self.active == 0 {
                break;
            }
            tokio::select! {
                Some(done) = done_rx.recv() => self.finished(done),
                _ = &mut grace => {
                    warn!(running = self.active, "Grace period over; cancelling in-flight runs (they resume on the next start).");
                    break;
                }
                Some(Intent::Shutdown) = intents.recv() => {
                    warn!(running = self.active, "Second shutdown request; cancelling in-flight runs now.");
                    break;
                }
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => self.notifier.watchdog(),
            }
        }
        self.cancel.cancel();
        let wait = tokio::time::sleep(CANCEL_WAIT);
        tokio::pin!(wait);
        while self.active > 0 {
            tokio::select! {
                Some(done) = done_rx.recv() => self.finished(done),
                _ = &mut wait => {
                    warn!(running = self.active, "Runs did not stop in time; leaving them to be resumed.");
                    break;
                }
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => self.notifier.watchdog(),
            }
        }
        self.stopped = true;
        self.dirty = true;
        self.publish();
        info!("Daemon stopped.");
    }
}

/// Writes `bytes` to `path` via a temp file and rename (readers never see half a file).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
