//! The `[schedule]` table: `cron`, `timezone` (default from the daemon file), `catch_up`,
//! `jitter_secs` -> a [`Schedule`] that fires at least once.

use super::super::limits;
use super::super::raw::RawSchedule;
use super::Problem;
use crate::core::schedule::{self, Schedule};
use chrono::NaiveDate;

/// The schedule, or `None` (with the problems pushed) when it cannot be built.
pub(super) fn validate_schedule(
    raw: &RawSchedule,
    default_tz: &str,
    p: &mut Vec<Problem>,
) -> Option<Schedule> {
    let tz_name = raw
        .timezone
        .clone()
        .unwrap_or_else(|| default_tz.to_string());
    let tz = match schedule::parse_tz(&tz_name) {
        Ok(tz) => Some(tz),
        Err(e) => {
            p.push(Problem::new("schedule.timezone", e));
            None
        }
    };
    let sched = match schedule::parse_cron(&raw.cron) {
        // A field's error names the field and its range: fix that field. Anything else
        // (4 fields, an unknown alias) gets the shape of a line.
        Err(e) if e.starts_with("the ") => {
            p.push(Problem::new(
                "schedule.cron",
                format!("`{}`: {e}; fix that field (the fields are minute hour day-of-month month day-of-week)", raw.cron),
            ));
            None
        }
        Err(e) => {
            p.push(Problem::new(
                "schedule.cron",
                format!("`{}` is not a cron line: {e}; write 5 fields like \"0 6 * * MON\" or an alias like \"@daily\"", raw.cron),
            ));
            None
        }
        Ok(_) => tz.and_then(|tz| Schedule::new(&raw.cron, tz, raw.catch_up, raw.jitter_secs).ok()),
    };
    // A 5-field line repeats within 28 years, so a line with no fire time after a fixed
    // date has none at all (`0 0 30 2 *`).
    if let Some(s) = &sched {
        let from = NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a date")
            .and_utc();
        if s.next_after(from).is_none() {
            p.push(Problem::new(
                "schedule.cron",
                format!("`{}` never fires (no date matches it, like 30 February); fix the day and month fields", raw.cron),
            ));
        }
    }
    limits::check_range(
        "schedule.jitter_secs",
        Some(raw.jitter_secs),
        (0, limits::JITTER_SECS_MAX),
        "the random delay added to each fire time, in seconds",
        p,
    );
    sched
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, message_at};
    use super::*;

    fn schedule(toml_text: &str) -> (Option<Schedule>, Vec<Problem>) {
        let raw: RawSchedule = toml::from_str(toml_text).expect("a [schedule] table");
        let mut p = Vec::new();
        (validate_schedule(&raw, "Europe/Oslo", &mut p), p)
    }

    #[test]
    fn a_cron_line_alone_takes_the_daemon_time_zone() {
        let (s, p) = schedule("cron = \"0 6 * * MON\"");
        assert!(p.is_empty(), "{p:?}");
        let s = s.unwrap();
        assert_eq!(s.line, "0 6 * * MON");
        assert_eq!(s.tz, chrono_tz::Europe::Oslo);
        assert_eq!(s.jitter_secs, 0);
    }

    #[test]
    fn an_own_time_zone_and_jitter_are_kept() {
        let (s, p) = schedule("cron = \"@daily\"\ntimezone = \"UTC\"\njitter_secs = 60");
        assert!(p.is_empty(), "{p:?}");
        let s = s.unwrap();
        assert_eq!(s.tz, chrono_tz::UTC);
        assert_eq!(s.jitter_secs, 60);
    }

    #[test]
    fn a_bad_time_zone_leaves_no_schedule() {
        let (s, p) = schedule("cron = \"@daily\"\ntimezone = \"Europe/Bergen\"");
        assert!(s.is_none());
        assert_eq!(
            message_at(&p, "schedule.timezone"),
            "`Europe/Bergen` is not an IANA time zone name (e.g. Europe/Oslo)"
        );
    }

    #[test]
    fn a_line_that_is_not_cron_says_what_to_write() {
        let (s, p) = schedule("cron = \"every morning\"");
        assert!(s.is_none());
        assert_eq!(keys(&p), ["schedule.cron"]);
        let m = message_at(&p, "schedule.cron");
        assert!(m.starts_with("`every morning` is not a cron line: "), "{m}");
        assert!(
            m.ends_with("; write 5 fields like \"0 6 * * MON\" or an alias like \"@daily\""),
            "{m}"
        );
    }

    #[test]
    fn a_bad_field_is_named_with_its_range() {
        let (s, p) = schedule("cron = \"0 25 * * *\"");
        assert!(s.is_none());
        assert_eq!(
            message_at(&p, "schedule.cron"),
            "`0 25 * * *`: the hour field takes 0-23, not 25; fix that field (the fields are minute hour day-of-month month day-of-week)"
        );
    }

    #[test]
    fn a_line_that_never_fires_is_refused() {
        let (_, p) = schedule("cron = \"0 0 30 2 *\"");
        assert_eq!(
            message_at(&p, "schedule.cron"),
            "`0 0 30 2 *` never fires (no date matches it, like 30 February); fix the day and month fields"
        );
    }

    #[test]
    fn jitter_is_at_most_a_day() {
        let (_, p) = schedule("cron = \"@daily\"\njitter_secs = 86401");
        assert_eq!(
            message_at(&p, "schedule.jitter_secs"),
            "86401 is out of range; the random delay added to each fire time, in seconds: write a number from 0 to 86400"
        );
    }
}
