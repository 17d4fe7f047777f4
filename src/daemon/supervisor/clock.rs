//! Where the supervisor's "now" comes from ([`Clock`]): the system clock, or tokio's
//! (paused in tests, so days of schedule pass in milliseconds).

use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::time::Instant;

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
