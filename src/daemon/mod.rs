//! The daemon (`regdrop run`): loads the configuration, opens the state store, resumes
//! every unfinished run, then lets the [`supervisor`] fire subscriptions on their schedules
//! until a shutdown intent. Signals arrive as [`signal::Intent`]s; systemd hears from
//! [`notify`]; metrics go to [`crate::telemetry`]; [`housekeeping`] runs daily; operators
//! and customers hear about runs through [`alerts`]; [`registry`] keeps one live daemon
//! per node name.
//!
//! Shutdown is a parameter (as in mini-redis): [`run`] takes any future, so the CLI passes
//! "never" (signals decide) and code that wants the daemon for N seconds passes a sleep
//! ([`run_for`]).

pub mod alerts;
pub mod housekeeping;
pub mod notify;
pub mod registry;
pub mod signal;
pub mod supervisor;

pub use signal::Intent;
pub use supervisor::{Clock, Job, JobKind, SystemClock, TokioClock, Work, WorkResult};

use crate::core::config::location::DbLocation;
use crate::core::config::DaemonConfig;
use crate::core::identity::SubscriptionId;
use crate::loader::FatalConfig;
use crate::pipeline::delivery::{self, Ctx, Observer};
use crate::store::{Store, StoreError};
use futures::future::BoxFuture;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The daemon config cannot be used (exit 78).
    #[error("{0}")]
    Config(FatalConfig),
    #[error("state store {path}")]
    Store { path: String, source: StoreError },
    #[error("{what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// Two daemons on one state store would deliver every run twice.
    #[error("another regdrop daemon (pid {pid}) is running on {state_db}; stop it first (to run several nodes on one store, give each its own [daemon] node and spool_dir: README \"Running more than one node\")")]
    AlreadyRunning { pid: u64, state_db: String },
    /// This node's name cannot be used (the host name, its default, is not a valid one).
    #[error("{0}")]
    NodeName(String),
    /// Another live daemon holds this daemon's node name: its leases would be this one's
    /// (exit 78, as a configuration that cannot run: no restart loop).
    #[error("{0}")]
    NodeInUse(Box<registry::InUse>),
    /// While running, this daemon's node name was taken by another daemon instance (its
    /// heartbeat had lapsed): it stopped without committing anything more (exit 1, so
    /// systemd restarts it into the start-time check).
    #[error("node name {node} was taken by another regdrop daemon (host {host}, pid {pid}, started {started}) while this one ran; it stopped without committing anything more. Give each node its own [daemon] node")]
    NodeTaken {
        node: String,
        host: String,
        pid: u32,
        started: String,
    },
    /// Two daemons on one spool folder would work on the same files.
    #[error("another regdrop daemon (pid {pid}) uses the spool folder {spool}; stop it first, or give this node a spool_dir of its own")]
    SpoolInUse { pid: u64, spool: String },
}

/// What [`run_with`] can be given instead of the production defaults.
pub struct Options {
    /// Does each run; default [`DeliveryWork`].
    pub work: Option<Arc<dyn Work>>,
    /// Default [`SystemClock`].
    pub clock: Arc<dyn Clock>,
    /// Intents from elsewhere (tests); with `signals` they are merged.
    pub intents: Option<mpsc::UnboundedReceiver<Intent>>,
    /// Listen to SIGHUP/SIGTERM/SIGINT.
    pub signals: bool,
    /// Serve `metrics_listen` (only one exporter per process).
    pub metrics: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            work: None,
            clock: Arc::new(SystemClock),
            intents: None,
            signals: true,
            metrics: true,
        }
    }
}

/// The daemon as `regdrop run` runs it: signals, metrics, real deliveries. Returns after
/// SIGTERM/SIGINT or when `shutdown` completes, once in-flight runs finished or the grace
/// period cancelled them.
pub async fn run(
    config_path: PathBuf,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    run_with(config_path, shutdown, Options::default()).await
}

/// Runs the daemon for `how_long` (demos, tests), without signal handlers.
pub async fn run_for(config_path: PathBuf, how_long: Duration) -> Result<(), DaemonError> {
    let opts = Options {
        signals: false,
        ..Options::default()
    };
    run_with(config_path, tokio::time::sleep(how_long), opts).await
}

/// [`run`] with injected parts.
pub async fn run_with(
    config_path: PathBuf,
    shutdown: impl Future<Output = ()>,
    opts: Options,
) -> Result<(), DaemonError> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), commit = env!("REGDROP_COMMIT"), config = %config_path.display(), "regdrop daemon starting.");
    let loaded = crate::loader::load(&config_path).map_err(DaemonError::Config)?;
    let daemon = Arc::new(loaded.daemon.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    // Held until this function returns; the kernel lets go if the process dies.
    let _only_daemon = lock_state(&daemon)?;
    // Signals are handled from here on: a SIGTERM while the store cannot be reached ends
    // the wait cleanly; other intents then are passed on once the supervisor runs.
    let (tx, mut rx) = mpsc::unbounded_channel();
    if opts.signals {
        signal::forward(tx.clone()).map_err(|source| DaemonError::Io {
            what: "installing signal handlers".into(),
            source,
        })?;
    }
    if let Some(mut more) = opts.intents {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(i) = more.recv().await {
                if tx.send(i).is_err() {
                    return;
                }
            }
        });
    }
    let replay_tx = tx.clone();
    drop(tx);
    // The endpoint comes first: while the store cannot be reached, it says so
    // (`regdrop_state_db_up 0`) instead of looking like a daemon that is down.
    if opts.metrics {
        if let Some(addr) = daemon.metrics_listen {
            match crate::telemetry::install(addr)? {
                Some(serve) => {
                    tokio::spawn(serve);
                    tracing::info!(listen = %addr, "Metrics endpoint listening.");
                }
                None => tracing::info!("Metrics endpoint already running in this process."),
            }
        }
    }
    let mut replay = Vec::new();
    let opened = {
        let asked_to_stop = async {
            loop {
                match rx.recv().await {
                    Some(Intent::Shutdown) => return,
                    Some(other) => replay.push(other),
                    // `replay_tx` keeps the channel open.
                    None => std::future::pending::<()>().await,
                }
            }
        };
        let stop = async {
            tokio::select! {
                () = shutdown.as_mut() => {}
                () = asked_to_stop => {}
            }
        };
        open_store_waiting(&daemon.state_db, std::pin::pin!(stop)).await?
    };
    let Some(mut store) = opened else {
        return Ok(());
    };
    // One live daemon per node name (docs/design.md §8 "One name, one daemon").
    let me = registry::this_instance();
    let node = match registry::register(&mut store, &daemon, &me) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %crate::core::errors::Chain(&e), "Not starting: this node's name cannot be registered.");
            return Err(e);
        }
    };
    for intent in replay {
        let _ = replay_tx.send(intent);
    }
    drop(replay_tx);
    let store = Arc::new(Mutex::new(store));

    seed_last_success(&store);

    let work = opts.work.unwrap_or_else(|| {
        Arc::new(DeliveryWork {
            store: store.clone(),
            xlsx_row_limit: None,
            sealing: Default::default(),
        })
    });
    let status_file = Some(status_file(&daemon));
    let outbox = Arc::new(alerts::Adapters::new(&daemon));
    let mut sup = supervisor::Supervisor::new(
        config_path,
        daemon,
        store.clone(),
        work,
        opts.clock,
        status_file,
        outbox,
    );
    sup.register_as(node.clone(), me.clone());
    sup.start(loaded);
    match sup.run(rx, shutdown).await {
        None => {
            registry::stopped(&crate::store::lock(&store), &node, &me);
            Ok(())
        }
        Some(holder) => Err(DaemonError::NodeTaken {
            node,
            host: holder.instance.host,
            pid: holder.instance.pid,
            started: crate::store::fmt_ts(holder.started_at),
        }),
    }
}

/// The status file the daemon keeps beside a SQLite state store (read by `regdrop status`).
pub fn status_file_of(state_db: &Path) -> PathBuf {
    state_db.with_file_name("daemon-status.json")
}

/// Where this node's daemon keeps its lock and status files: beside a SQLite state store
/// of one node; in the spool folder with a PostgreSQL one, or a SQLite one shared by nodes
/// that each name themselves (`[daemon] node`): the database is shared, the files are this
/// node's.
fn node_file(daemon: &DaemonConfig, name: &str) -> PathBuf {
    match &daemon.state_db {
        DbLocation::Sqlite(p) if daemon.node.is_none() => p.with_file_name(name),
        _ => daemon.spool_dir.join(name),
    }
}

/// This node's daemon status file (read by `regdrop status`).
pub fn status_file(daemon: &DaemonConfig) -> PathBuf {
    node_file(daemon, "daemon-status.json")
}

/// The lock file this node's running daemon holds.
pub fn lock_file(daemon: &DaemonConfig) -> PathBuf {
    node_file(daemon, "daemon.lock")
}

/// The pid of this node's running daemon, when one is: its lock is held and its status
/// file names a live `regdrop` process (so a signal never reaches anything else, e.g. a
/// process that got the pid of a daemon gone long ago).
pub fn running_daemon(daemon: &DaemonConfig) -> Option<u32> {
    let file = std::fs::File::open(lock_file(daemon)).ok()?;
    match file.try_lock() {
        Err(std::fs::TryLockError::WouldBlock) => {}
        // Not held (we hold it now and let go on drop), or unknown: no daemon to talk to.
        _ => return None,
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(status_file(daemon)).ok()?).ok()?;
    if doc["stopped"].as_bool() == Some(true) {
        return None;
    }
    let pid = u32::try_from(doc["pid"].as_u64()?).ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim_end() == "regdrop").then_some(pid)
}

/// Takes `daemon.lock` ([`lock_file`]), or names the daemon that holds it: two daemons on
/// one SQLite store of one node, or on one spool, would work on the same runs. Nodes
/// sharing a store (PostgreSQL, or SQLite with `[daemon] node` set) each hold their own in
/// their spool, and leases share the runs out (docs/design.md §8).
fn lock_state(daemon: &DaemonConfig) -> Result<Vec<std::fs::File>, DaemonError> {
    let path = lock_file(daemon);
    let pid = || {
        // The holder's pid, as its status file says (0 when unknown).
        std::fs::read(status_file(daemon))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|doc| doc["pid"].as_u64())
            .unwrap_or(0)
    };
    let mut held = vec![try_lock(&path, || DaemonError::AlreadyRunning {
        pid: pid(),
        state_db: daemon.state_db.to_string(),
    })?];
    // Beside a SQLite store: the spool is locked too, so no second daemon with another
    // state file works on this spool's files.
    let spool_lock = daemon.spool_dir.join("daemon.lock");
    if spool_lock != path {
        held.push(try_lock(&spool_lock, || DaemonError::SpoolInUse {
            pid: pid(),
            spool: daemon.spool_dir.display().to_string(),
        })?);
    }
    Ok(held)
}

/// Takes the lock file at `path` (creating it and its folder), or `busy()` when another
/// process holds it.
fn try_lock(path: &Path, busy: impl FnOnce() -> DaemonError) -> Result<std::fs::File, DaemonError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| DaemonError::Io {
            what: format!("opening {}", path.display()),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(busy()),
        Err(std::fs::TryLockError::Error(source)) => Err(DaemonError::Io {
            what: format!("locking {}", path.display()),
            source,
        }),
    }
}

/// [`open_store`], and while a PostgreSQL store cannot be reached (server down, restarting,
/// failing over: a retryable error) waits and tries again, 1 s doubling to 30 s, instead of
/// exiting into a systemd restart loop; meanwhile systemd hears why (STATUS) and has its
/// start timeout extended, so a long outage at boot is not a failed start; `None` when
/// `shutdown` came first.
async fn open_store_waiting(
    location: &DbLocation,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<Store>, DaemonError> {
    use crate::core::retry::Classify;
    let mut wait = Duration::from_secs(1);
    loop {
        match open_store(location) {
            Ok(s) => {
                crate::telemetry::state_db_up(true);
                return Ok(Some(s));
            }
            Err(DaemonError::Store { source, .. })
                if location.postgres().is_some() && source.is_retryable() =>
            {
                crate::telemetry::state_db_up(false);
                notify::Notifier.waiting(
                    &format!(
                        "waiting for the state store {location}: {}; trying again in {} s",
                        crate::core::errors::Chain(&source),
                        wait.as_secs()
                    ),
                    wait + Duration::from_secs(60),
                );
                tracing::warn!(state_db = %location, error = %crate::core::errors::Chain(&source),
                    retry_in_secs = wait.as_secs(), "Cannot reach the state store; trying again.");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.as_mut() => return Ok(None),
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

fn open_store(location: &DbLocation) -> Result<Store, DaemonError> {
    let store_error = |source| DaemonError::Store {
        path: location.to_string(),
        source,
    };
    let DbLocation::Sqlite(path) = location else {
        return Store::open_location(location).map_err(store_error);
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
    }
    Store::open(path).map_err(store_error)
}

/// `last_success_timestamp_seconds` from the store's receipts, so a restart does not reset
/// the silent-stop alert; also every half lease (`supervisor::leases`), so a node shows the
/// deliveries other nodes made.
pub(crate) fn seed_last_success(store: &Mutex<Store>) {
    let s = crate::store::lock(store);
    match s.last_delivery_per_subscription() {
        Ok(rows) => {
            for (sub, at) in rows {
                if let Ok(t) = crate::store::parse_ts(&at) {
                    crate::telemetry::last_success(&sub, t.timestamp());
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %crate::core::errors::Chain(&e), "Cannot read the last receipts for metrics.")
        }
    }
}

/// The real work: [`delivery::deliver`] for a fire, [`delivery::deliver_run`] to resume.
pub struct DeliveryWork {
    pub store: Arc<Mutex<Store>>,
    pub xlsx_row_limit: Option<u64>,
    /// The runs its shared scans seal, which their deliveries join.
    pub sealing: Arc<delivery::Sealing>,
}

/// Counts retries for the metrics.
struct Counting {
    sub: SubscriptionId,
}

impl Observer for Counting {
    fn retry(&self, _run: &str, _attempt: u32, _wait: Duration, _error: &str) {
        crate::telemetry::retried(&self.sub);
    }
}

impl Work for DeliveryWork {
    fn start(&self, job: Job, cancel: CancellationToken) -> BoxFuture<'static, WorkResult> {
        let ctx = Ctx {
            daemon: job.daemon.clone(),
            store: self.store.clone(),
            cancel,
            xlsx_row_limit: self.xlsx_row_limit,
            sealing: self.sealing.clone(),
        };
        Box::pin(async move {
            let obs = Counting {
                sub: job.sub.id.clone(),
            };
            let r = match job.kind {
                JobKind::Fire { scheduled_at } => {
                    delivery::deliver(&ctx, &job.sub, scheduled_at, &obs).await
                }
                JobKind::Resume { run } => delivery::deliver_run(&ctx, &job.sub, *run, &obs).await,
            };
            r
        })
    }

    fn scan_key(&self, job: &Job) -> Option<crate::core::scan::ScanKey> {
        let JobKind::Fire { scheduled_at } = job.kind else {
            return None;
        };
        // Several nodes on one store (`[daemon] node` named): not built there yet. One
        // node's scan would claim every member's lease, and the other nodes would get none
        // of the group's runs.
        if job.daemon.node.is_some() {
            return None;
        }
        delivery::scan_key(
            &self.ctx(job, CancellationToken::new()),
            &job.sub,
            scheduled_at,
        )
    }

    fn seal_group(
        &self,
        jobs: Vec<Job>,
        cancel: CancellationToken,
        started: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<'static, ()> {
        let Some(first) = jobs.first() else {
            return Box::pin(async {});
        };
        let ctx = self.ctx(first, cancel);
        let members: Vec<_> = jobs
            .iter()
            .map(|j| (j.sub.clone(), j.scheduled_at()))
            .collect();
        Box::pin(async move {
            delivery::seal_group(&ctx, &members, started).await;
        })
    }
}

impl DeliveryWork {
    fn ctx(&self, job: &Job, cancel: CancellationToken) -> Ctx {
        Ctx {
            daemon: job.daemon.clone(),
            store: self.store.clone(),
            cancel,
            xlsx_row_limit: self.xlsx_row_limit,
            sealing: self.sealing.clone(),
        }
    }
}
