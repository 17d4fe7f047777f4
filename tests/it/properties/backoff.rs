//! Backoff delays stay within their ceiling, the cap and the deadline; the attempt limit and
//! permanent errors end the retries.

use super::cases;
use proptest::prelude::*;
use regdrop::core::retry::{ErrorClass, GiveUp, Next, RetryPolicy};
use std::time::Duration;

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (1u64..3600, 1.0f64..4.0, 0u64..7200, 1u32..20, 60u64..86_400).prop_map(
        |(base, factor, extra, max_attempts, deadline)| RetryPolicy {
            base: Duration::from_secs(base),
            factor,
            cap: Duration::from_secs(base + extra),
            max_attempts,
            deadline: Duration::from_secs(deadline),
        },
    )
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn backoff_stays_within_ceiling_cap_deadline_and_attempt_limit(
        p in policy(),
        attempt in 1u32..60,
        elapsed in 0u64..100_000,
        unit in 0.0f64..1.0,
    ) {
        prop_assert!(p.problem().is_none());
        let ceiling = p.ceiling(attempt);
        prop_assert!(ceiling <= p.cap);
        prop_assert!(p.ceiling(attempt + 1) >= ceiling, "the ceiling never shrinks");
        prop_assert!(p.ceiling(1) == p.base.min(p.cap));
        prop_assert!(p.delay(attempt, unit) <= ceiling);
        let elapsed = Duration::from_secs(elapsed);
        prop_assert_eq!(
            p.next(ErrorClass::Permanent, attempt, elapsed, unit),
            Next::GiveUp(GiveUp::Permanent)
        );
        match p.next(ErrorClass::Retryable, attempt, elapsed, unit) {
            Next::RetryAfter(wait) => {
                prop_assert!(attempt < p.max_attempts);
                prop_assert!(wait <= ceiling);
                prop_assert!(elapsed + wait <= p.deadline);
            }
            Next::GiveUp(GiveUp::Attempts) => prop_assert!(attempt >= p.max_attempts),
            Next::GiveUp(GiveUp::Deadline) => {
                prop_assert!(attempt < p.max_attempts);
                prop_assert!(elapsed + p.delay(attempt, unit) > p.deadline);
            }
            Next::GiveUp(GiveUp::Permanent) => prop_assert!(false, "retryable gave up as permanent"),
        }
    }
}
