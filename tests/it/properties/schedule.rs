//! A schedule's fire times only move forward, and nothing fires between `t` and
//! `next_after(t)`; catch-up looks back no further than asked.

use super::{cases, CRONS};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use regdrop::core::schedule::{CatchUp, Schedule};

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2024-01-01 .. 2031-01-01, to the second.
    (1_704_067_200i64..1_925_078_400).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
}

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn fire_times_move_forward_and_nothing_fires_in_between(
        line in proptest::sample::select(CRONS.to_vec()),
        zone in proptest::sample::select(vec!["Europe/Oslo", "UTC", "America/New_York", "Australia/Lord_Howe"]),
        t in instant(),
        u in 0.0f64..1.0,
    ) {
        let s = Schedule::new(line, zone.parse().unwrap(), CatchUp::Once, 0).unwrap();
        let next = s.next_after(t).expect("a line that fires");
        prop_assert!(next > t, "{line} in {zone}: next_after({t}) = {next}");
        // Nothing fires in (t, next): from any point before `next` the next fire is `next`.
        let between = t + chrono::Duration::milliseconds(((next - t).num_milliseconds() as f64 * u) as i64);
        if between < next {
            prop_assert_eq!(s.next_after(between), Some(next), "from {}", between);
        }
        let times = s.upcoming(t, 6);
        prop_assert_eq!(times.len(), 6);
        prop_assert_eq!(times[0], next);
        for w in times.windows(2) {
            prop_assert!(w[0] < w[1], "{line} in {zone}: {times:?}");
        }
        // Catch-up looks back: the latest fire in (since, now] is at most now.
        if let Some(m) = s.last_missed(t - chrono::Duration::days(40), t) {
            prop_assert!(m <= t && m > t - chrono::Duration::days(40));
            prop_assert!(s.next_after(m).is_some_and(|n| n > m));
        }
    }
}
