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
/// `[daemon] lease_secs`: 5 s (heartbeats every lease/3 must fit) to an hour.
pub const LEASE_SECS: (u64, u64) = (5, 3_600);
/// `[daemon] node`: at most this many characters.
pub const NODE_NAME_MAX: usize = 64;
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

/// Property tests of the retry policy: every policy these limits allow, every attempt.
/// (Here, not beside `core::retry`, so the test does not turn the arrow around.)
#[cfg(test)]
mod backoff_props {
    use super::{
        RETRY_BASE_SECS, RETRY_CAP_SECS_MAX, RETRY_DEADLINE_SECS, RETRY_FACTOR, RETRY_MAX_ATTEMPTS,
    };
    use crate::core::retry::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// A number in `lo..=hi`, its ends drawn often (the extremes are where overflow hides).
    fn edgy(lo: u64, hi: u64) -> impl Strategy<Value = u64> {
        prop_oneof![1 => Just(lo), 1 => Just(hi), 3 => lo..=hi]
    }

    /// A policy that passes validation: overrides within the limits, cap not below base.
    fn policy() -> impl Strategy<Value = RetryPolicy> {
        let (f_lo, f_hi) = RETRY_FACTOR;
        (
            edgy(RETRY_BASE_SECS.0, RETRY_BASE_SECS.1),
            prop_oneof![1 => Just(f_lo), 1 => Just(f_hi), 3 => f_lo..=f_hi],
            edgy(RETRY_BASE_SECS.0, RETRY_CAP_SECS_MAX),
            edgy(RETRY_MAX_ATTEMPTS.0 as u64, RETRY_MAX_ATTEMPTS.1 as u64),
            edgy(RETRY_DEADLINE_SECS.0, RETRY_DEADLINE_SECS.1),
        )
            .prop_map(|(base, factor, cap, attempts, deadline)| {
                let o = RetryOverrides {
                    base_secs: Some(base.min(cap)),
                    factor: Some(factor),
                    cap_secs: Some(base.max(cap)),
                    max_attempts: Some(attempts as u32),
                    deadline_secs: Some(deadline),
                };
                let p = RetryPolicy::default().with(&o);
                let mut problems = vec![];
                super::retry_problems(&o, &p, &mut problems);
                assert!(problems.is_empty(), "{o:?}: {problems:?}");
                p
            })
    }

    /// A random number in [0, 1], as the daemon's RNG gives (1.0 included for the edge).
    fn unit() -> impl Strategy<Value = f64> {
        prop_oneof![1 => Just(0.0), 1 => Just(1.0), 4 => 0.0..1.0f64]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn delays_stay_within_the_policy_and_ceilings_never_shrink(
            p in policy(),
            unit in unit(),
            attempt in prop_oneof![1 => Just(u32::MAX), 6 => 1..=200u32],
        ) {
            let c = p.ceiling(attempt);
            prop_assert!(p.base <= c && c <= p.cap, "{p:?} attempt {attempt}: ceiling {c:?}");
            let d = p.delay(attempt, unit);
            prop_assert!(d <= c, "{p:?} attempt {attempt}: delay {d:?} over {c:?}");
            // Before jitter the delays grow with the attempt (then stay at the cap).
            prop_assert!(p.ceiling(attempt.saturating_add(1)) >= c);
            prop_assert!(p.ceiling(attempt.saturating_sub(1).max(1)) <= c);
        }

        #[test]
        fn a_run_never_exceeds_its_attempts_or_its_deadline(
            p in policy(),
            units in proptest::collection::vec(unit(), 100),
            // how long each attempt itself takes before it fails, in seconds
            took in proptest::collection::vec(0..=3_600u64, 100),
        ) {
            let (mut attempt, mut elapsed) = (1u32, Duration::ZERO);
            let end = loop {
                elapsed += Duration::from_secs(took[attempt as usize - 1]);
                match p.next(ErrorClass::Retryable, attempt, elapsed, units[attempt as usize - 1]) {
                    Next::RetryAfter(wait) => {
                        prop_assert!(wait <= p.cap);
                        elapsed += wait;
                        // Every attempt starts within the deadline.
                        prop_assert!(elapsed <= p.deadline, "{p:?}: attempt {} at {elapsed:?}", attempt + 1);
                        attempt += 1;
                        prop_assert!(attempt <= p.max_attempts, "{p:?}: attempt {attempt}");
                    }
                    Next::GiveUp(why) => break why,
                }
            };
            prop_assert!(attempt <= p.max_attempts);
            prop_assert!(end == GiveUp::Attempts || end == GiveUp::Deadline, "{end:?}");
            if end == GiveUp::Attempts {
                prop_assert_eq!(attempt, p.max_attempts);
            }
            // A permanent error stops at once, whatever the attempt.
            prop_assert_eq!(
                p.next(ErrorClass::Permanent, 1, Duration::ZERO, 0.5),
                Next::GiveUp(GiveUp::Permanent)
            );
        }

        #[test]
        fn extreme_elapsed_times_and_attempts_never_overflow(
            p in policy(),
            unit in unit(),
            attempt in prop_oneof![Just(1u32), Just(64), Just(65), Just(u32::MAX - 1), Just(u32::MAX), any::<u32>()],
            elapsed in prop_oneof![Just(Duration::ZERO), Just(Duration::MAX), any::<u64>().prop_map(Duration::from_secs)],
        ) {
            // Never panics; a retry always fits the deadline.
            if let Next::RetryAfter(wait) = p.next(ErrorClass::Retryable, attempt, elapsed, unit) {
                prop_assert!(elapsed.checked_add(wait).is_some_and(|t| t <= p.deadline));
            }
        }
    }
}
