//! Bounds of every configured number that meets time arithmetic (fire times, backoff,
//! timeouts, retention). `check` refuses a value outside them with file:line:column, so no
//! configuration can overflow a date or a `Duration` in the daemon; the code does checked
//! arithmetic as well (a second line of defence, never the first). Pure.

use super::validate::Problem;
use crate::core::retry::{RetryOverrides, RetryPolicy};

/// `[schedule] jitter_secs`: at most a day.
pub const JITTER_SECS_MAX: u64 = 86_400;
/// `[target] connect_timeout_secs`: 1 s to 10 min.
pub const CONNECT_TIMEOUT_SECS: (u64, u64) = (1, 600);
/// `[retry] base_secs`: 1 s to a day (0 would retry in a hot loop).
pub const RETRY_BASE_SECS: (u64, u64) = (1, 86_400);
/// `[retry] factor`: 1.0 to 10.0.
pub const RETRY_FACTOR: (f64, f64) = (1.0, 10.0);
/// `[retry] cap_secs`: at most a day (and not below `base_secs`).
pub const RETRY_CAP_SECS_MAX: u64 = 86_400;
/// `[retry] max_attempts`: 1 to 100.
pub const RETRY_MAX_ATTEMPTS: (u32, u32) = (1, 100);
/// `[retry] deadline_secs`: 1 s to 30 days.
pub const RETRY_DEADLINE_SECS: (u64, u64) = (1, 30 * 86_400);
/// `[daemon] shutdown_grace_secs`: at most an hour (keep `TimeoutStopSec` above it).
pub const SHUTDOWN_GRACE_SECS_MAX: u64 = 3_600;
/// `[retention] spool_grace_hours`: at most a year.
pub const SPOOL_GRACE_HOURS_MAX: u64 = 8_760;
/// `[retention] receipts_days`: 1 day to 100 years.
pub const RECEIPTS_DAYS: (u64, u64) = (1, 36_500);

/// `value` within `lo..=hi`, else a problem at `key` saying the range and what the key does.
pub fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: Option<T>,
    range: (T, T),
    what: &str,
    p: &mut Vec<Problem>,
) {
    in_range(key, value, range, what, p);
}

/// [`check_range`], giving back the value when it is within its range.
pub fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: Option<T>,
    (lo, hi): (T, T),
    what: &str,
    p: &mut Vec<Problem>,
) -> Option<T> {
    let v = value?;
    if v >= lo && v <= hi {
        return Some(v);
    }
    p.push(Problem::new(
        key,
        format!("{v} is out of range; {what}: write a number from {lo} to {hi}"),
    ));
    None
}

/// `[target]` upload overrides (`channels`, `max_write`, `in_flight`) and `io_timeout_secs`.
pub const CHANNELS: (u64, u64) = (1, 16);
pub const MAX_WRITE: (u64, u64) = (1024, 261_120);
pub const IN_FLIGHT: (u64, u64) = (1, 1024);
pub const IO_TIMEOUT_SECS: (u64, u64) = (1, 3600);

/// Problems of a `[retry]` table (`prefix` is `retry`), each at its own key, then the
/// merged policy's consistency (`cap_secs` not below `base_secs`).
pub fn retry_problems(o: &RetryOverrides, merged: &RetryPolicy, p: &mut Vec<Problem>) {
    let before = p.len();
    check_range(
        "retry.base_secs",
        o.base_secs,
        RETRY_BASE_SECS,
        "the first retry delay in seconds",
        p,
    );
    if let Some(f) = o.factor {
        if !(f.is_finite() && f >= RETRY_FACTOR.0 && f <= RETRY_FACTOR.1) {
            p.push(Problem::new(
                "retry.factor",
                format!(
                    "{f} is out of range; the delay grows by this factor per attempt: write a number from {:.1} to {:.1}",
                    RETRY_FACTOR.0, RETRY_FACTOR.1
                ),
            ));
        }
    }
    check_range(
        "retry.cap_secs",
        o.cap_secs,
        (RETRY_BASE_SECS.0, RETRY_CAP_SECS_MAX),
        "the longest retry delay in seconds",
        p,
    );
    check_range(
        "retry.max_attempts",
        o.max_attempts,
        RETRY_MAX_ATTEMPTS,
        "attempts of one run, the first included",
        p,
    );
    check_range(
        "retry.deadline_secs",
        o.deadline_secs,
        RETRY_DEADLINE_SECS,
        "no new attempt starts this many seconds after the first",
        p,
    );
    if p.len() == before {
        if let Some(e) = merged.problem() {
            let key = if o.cap_secs.is_some() {
                "retry.cap_secs"
            } else {
                "retry"
            };
            p.push(Problem::new(
                key,
                format!("{e}; raise cap_secs or lower base_secs"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_inside_the_limits() {
        let d = RetryPolicy::default();
        let o = RetryOverrides {
            base_secs: Some(d.base.as_secs()),
            factor: Some(d.factor),
            cap_secs: Some(d.cap.as_secs()),
            max_attempts: Some(d.max_attempts),
            deadline_secs: Some(d.deadline.as_secs()),
        };
        let mut p = vec![];
        retry_problems(&o, &d, &mut p);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn nan_and_infinite_factors_are_refused() {
        for f in [f64::NAN, f64::INFINITY, 0.5, 1e300] {
            let o = RetryOverrides {
                factor: Some(f),
                ..Default::default()
            };
            let mut p = vec![];
            retry_problems(&o, &RetryPolicy::default().with(&o), &mut p);
            assert_eq!(p.len(), 1, "{f}: {p:?}");
            assert_eq!(p[0].key, "retry.factor");
        }
    }
}
