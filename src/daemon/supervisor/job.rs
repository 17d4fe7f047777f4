//! What the supervisor hands to the work it does: one [`Job`] (a fire or a resume), the
//! [`Work`] trait that does it, and the host a run counts against.

use crate::core::config::{DaemonConfig, Subscription};
use crate::core::identity::RunId;
use crate::core::scan::ScanKey;
pub use crate::pipeline::delivery::host_of;
use crate::pipeline::delivery::{DeliveryError, Outcome};
use crate::store::{self, Run};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    pub fn run_id(&self) -> RunId {
        match &self.kind {
            JobKind::Fire { scheduled_at } => store::run_id(&self.sub.id, *scheduled_at),
            JobKind::Resume { run } => run.id.clone(),
        }
    }
}

/// What a run ended with; `Err` is an error outside the delivery protocol (the store
/// failing, a task that died).
pub type WorkResult = Result<Outcome, DeliveryError>;

/// Does one run. The daemon's is [`crate::daemon::DeliveryWork`]; tests pass closures.
pub trait Work: Send + Sync + 'static {
    /// Runs `job` to an end; should return [`Outcome::Interrupted`] soon after `cancel`.
    fn start(&self, job: Job, cancel: CancellationToken) -> BoxFuture<'static, WorkResult>;

    /// The register query of a fire, when its run may share a scan with others
    /// (`groups`). The default: none (every run seals alone).
    fn scan_key(&self, _job: &Job) -> Option<ScanKey> {
        None
    }

    /// Seals the runs of `jobs` (fires with one [`ScanKey`]) from one scan. They wait
    /// until `started` is called (the scan is about to read the register; not at all when
    /// no scan starts) or the returned future ends; each then runs through [`Work::start`]
    /// as usual and joins the scan that seals it (uploading while it seals), finds its
    /// artifact sealed, or, when it could not join, seals it alone.
    fn seal_group(
        &self,
        _jobs: Vec<Job>,
        _cancel: CancellationToken,
        _started: Box<dyn FnOnce() + Send>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
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
