//! Schedules: a 5-field cron line (Vixie semantics) in an IANA time zone -> fire times in
//! UTC, with defined daylight-saving behaviour and catch-up after downtime. Pure.
//!
//! A thin layer over the design card's `cron` crate. That crate takes 6/7-field Quartz-like
//! lines (seconds first), numbers Sunday 1, fires only on days that match BOTH the
//! day-of-month and the day-of-week field, and resolves times in a zone without our DST
//! rules. So this module:
//! 1. parses the operator's line itself ([`parse_cron`]): minute hour day-of-month month
//!    day-of-week, 0 or 7 = Sunday, names (`mon`, `jan`), ranges, steps, lists and `@`
//!    aliases, with an error that names the field and its range;
//! 2. writes each field out as an explicit list in the `cron` crate's syntax (seconds `0`
//!    first, weekdays shifted by one). When both day fields are restricted (neither is `*`)
//!    Vixie fires on a day that matches EITHER, so the line becomes two `cron` schedules, one
//!    with the day of month and weekday `*`, one with day of month `*` and the weekday, and
//!    the earlier of their fire times wins;
//! 3. lets `cron` iterate wall-clock times (naive local times, handed to it as UTC so that
//!    no zone moves them) and resolves each wall-clock time in the IANA zone here. (`cron`
//!    knows the years 1970-2100: there are no fire times outside them.)
//!
//! DST rules (tested below for Europe/Oslo, and against a minute-by-minute model): a
//! wall-clock time fires at the first instant the zone's clock reaches it. So
//! - a wall-clock time that does not exist on the spring-forward day fires once, at the
//!   first instant after the gap (02:30 -> 03:00 local);
//! - a wall-clock time that occurs twice on the fall-back day fires once (the first time).
//!
//! Both hold for every line, `*/15 * * * *` as much as `30 2 * * *`: a gap's times fire
//! together at its end, and the repeated hour does not fire again (a run's local time, and
//! with it its file name, never comes twice).

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

mod vixie;
pub use vixie::{parse_cron, Cron};

/// What to do with fire times missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Forget missed fire times; wait for the next one.
    Skip,
    /// Run once, for the most recent missed fire time.
    #[default]
    Once,
}

/// Parses an IANA time-zone name (`Europe/Oslo`, `UTC`).
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("`{name}` is not an IANA time zone name (e.g. Europe/Oslo)"))
}

/// How far the clock can stand above a zone's current wall-clock time when it has just
/// been turned back: the most tzdata holds since 1970 is 7 hours (Antarctica/Vostok, 1994).
/// [`Schedule::last_missed`] looks this far above "now", then checks forward.
const CLOCK_BACK_MAX: Duration = Duration::hours(8);

/// The longest spring-forward gap searched for its end (Pacific/Apia and Kwajalein skipped
/// a whole day).
const GAP_MAX_MINUTES: u32 = 2 * 24 * 60;

/// The first instant at which the zone's clock reaches the wall-clock time `wall`: the
/// instant itself, the first of two on the fall-back day, or for a time inside a
/// spring-forward gap the first instant after the gap.
fn first_instant(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let earliest = |w: NaiveDateTime| tz.from_local_datetime(&w).earliest();
    if let Some(t) = earliest(wall) {
        return Some(t.with_timezone(&Utc));
    }
    // In a spring-forward gap: find the minute in which it ends, then its first second
    // (gaps end on a whole minute, so that is the minute's start).
    let mut in_gap = wall;
    for _ in 0..GAP_MAX_MINUTES {
        let mut end = in_gap + Duration::minutes(1);
        if earliest(end).is_some() {
            while end - Duration::seconds(1) > in_gap
                && earliest(end - Duration::seconds(1)).is_some()
            {
                end -= Duration::seconds(1);
            }
            return earliest(end).map(|t| t.with_timezone(&Utc));
        }
        in_gap = end;
    }
    None
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub line: String,
    cron: Cron,
    pub tz: Tz,
    pub catch_up: CatchUp,
    /// Upper bound of a random delay added to each fire time (spreads load).
    pub jitter_secs: u64,
}

impl Schedule {
    pub fn new(line: &str, tz: Tz, catch_up: CatchUp, jitter_secs: u64) -> Result<Self, String> {
        Ok(Schedule {
            line: line.to_string(),
            cron: parse_cron(line)?,
            tz,
            catch_up,
            jitter_secs,
        })
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // The first instant of a wall-clock time never decreases as the wall-clock time
        // grows, so each part's first wall-clock time whose instant is after `after` gives
        // that part's next fire time. Wall-clock times up to the local time of `after` are
        // reached by then; on the fall-back day some above it are too (their first instant
        // was in the first pass of the repeated hour), and are stepped over.
        let wall = self.local(after).naive_local();
        self.cron
            .parts
            .iter()
            .filter_map(|part| {
                part.after(&wall.and_utc())
                    .filter_map(|t| first_instant(self.tz, t.naive_utc()))
                    .find(|&t| t > after)
            })
            .min()
    }

    /// The next `count` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count);
        let mut t = after;
        while out.len() < count {
            match self.next_after(t) {
                Some(n) => {
                    out.push(n);
                    t = n;
                }
                None => break,
            }
        }
        out
    }

    /// The most recent fire time in `(since, now]`, if any: what catch-up `once` runs.
    pub fn last_missed(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Walk wall-clock times down from the highest the clock can have reached by `now`
        // to the first one reached by then.
        let top = self.local(now).naive_local() + CLOCK_BACK_MAX + Duration::seconds(1);
        let mut last = self
            .cron
            .parts
            .iter()
            .filter_map(|part| {
                part.after(&top.and_utc())
                    .rev()
                    .filter_map(|t| first_instant(self.tz, t.naive_utc()))
                    .find(|&t| t <= now)
            })
            .max()?;
        // Should a zone ever turn its clock back further than CLOCK_BACK_MAX, step forward.
        while let Some(t) = self.next_after(last).filter(|&t| t <= now) {
            last = t;
        }
        (last > since).then_some(last)
    }

    /// Shows a UTC time in the schedule's zone.
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<Tz> {
        self.tz.from_utc_datetime(&t.naive_utc())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn oslo(line: &str) -> Schedule {
        Schedule::new(line, parse_tz("Europe/Oslo").unwrap(), CatchUp::Once, 0).unwrap()
    }
    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn rejects_quartz_lines_and_bad_zones() {
        assert!(parse_cron("0 0 6 * * MON").is_err());
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("@daily").is_ok());
        assert!(parse_tz("Europe/Olso").is_err());
    }

    #[test]
    fn vixie_weekdays_and_or_rule() {
        // 2026-11-29 is a Sunday: 0 and 7 both mean Sunday.
        let s0 = oslo("0 6 * * 0");
        let s7 = oslo("0 6 * * 7");
        let after = utc("2026-11-25T00:00:00Z");
        assert_eq!(s0.next_after(after), Some(utc("2026-11-29T05:00:00Z")));
        assert_eq!(s7.next_after(after), Some(utc("2026-11-29T05:00:00Z")));
        // 1 = Monday.
        assert_eq!(
            oslo("0 6 * * 1").next_after(after),
            Some(utc("2026-11-30T05:00:00Z"))
        );
        // dom OR dow: the 1st of the month or any Friday (2026-11-27 is a Friday).
        assert_eq!(
            oslo("0 6 1 * 5").next_after(after),
            Some(utc("2026-11-27T05:00:00Z"))
        );
    }

    #[test]
    fn spring_forward_fires_once_after_the_gap() {
        // 2026-03-29: 02:00 -> 03:00 in Europe/Oslo. 02:30 does not exist.
        let s = oslo("30 2 * * *");
        let times = s.upcoming(utc("2026-03-27T12:00:00Z"), 3);
        assert_eq!(
            times,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST, first instant after the gap
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
            ]
        );
    }

    #[test]
    fn fall_back_fires_once() {
        // 2026-10-25: 03:00 -> 02:00 in Europe/Oslo. 02:30 occurs twice.
        let s = oslo("30 2 * * *");
        let times = s.upcoming(utc("2026-10-24T12:00:00Z"), 3);
        assert_eq!(times.len(), 3);
        assert_eq!(times[0], utc("2026-10-25T00:30:00Z")); // first 02:30 (CEST)
        assert_eq!(times[1], utc("2026-10-26T01:30:00Z")); // next day, CET
        assert_eq!(times[2], utc("2026-10-27T01:30:00Z"));
    }

    #[test]
    fn next_is_strictly_after_and_monotonic() {
        // A deterministic sweep over many start times and lines (a property test without
        // a framework: every start minute of several days, several lines).
        let lines = [
            "*/7 * * * *",
            "30 2 * * *",
            "0 6 * * MON",
            "15 1-3 * * *",
            "@hourly",
        ];
        for line in lines {
            let s = oslo(line);
            let mut t = utc("2026-03-28T20:00:00Z");
            let end = utc("2026-03-30T04:00:00Z");
            let mut t2 = utc("2026-10-24T20:00:00Z");
            let end2 = utc("2026-10-26T04:00:00Z");
            for (start, stop) in [(&mut t, end), (&mut t2, end2)] {
                let mut prev: Option<DateTime<Utc>> = None;
                while *start < stop {
                    let n = s.next_after(*start).unwrap();
                    assert!(n > *start, "{line}: {n} not after {start}");
                    if let Some(p) = prev {
                        assert!(n >= p, "{line}: not monotonic {p} -> {n}");
                    }
                    prev = Some(n);
                    *start += Duration::minutes(13);
                }
            }
        }
    }

    #[test]
    fn catch_up_finds_the_most_recent_missed_time() {
        let s = oslo("0 6 * * *");
        let since = utc("2026-11-20T12:00:00Z");
        let now = utc("2026-11-25T09:00:00Z");
        assert_eq!(s.last_missed(since, now), Some(utc("2026-11-25T05:00:00Z")));
        assert_eq!(s.last_missed(utc("2026-11-25T06:00:00Z"), now), None);
    }

    #[test]
    fn translates_into_the_cron_crates_syntax() {
        let sources = |line: &str| -> Vec<String> {
            parse_cron(line)
                .unwrap()
                .parts
                .iter()
                .map(|p| p.source().to_string())
                .collect()
        };
        // Seconds first; Sunday is 1 there, whether written 0, 7 or `sun`.
        assert_eq!(sources("0 6 * * 0"), ["0 0 6 * * 1"]);
        assert_eq!(sources("0 6 * * 7"), ["0 0 6 * * 1"]);
        assert_eq!(sources("0 6 * * SUN"), ["0 0 6 * * 1"]);
        assert_eq!(sources("0 0 * * fri-7"), ["0 0 0 * * 1,6,7"]);
        assert_eq!(
            sources("*/20 9-17/4 * jan,Dec mon-fri"),
            ["0 0,20,40 9,13,17 * 1,12 2,3,4,5,6"]
        );
        // Both day fields restricted: one schedule per field (Vixie's either-day rule).
        assert_eq!(sources("0 6 1 * 5"), ["0 0 6 1 * *", "0 0 6 * * 6"]);
        // One of them `*` (or `?`): both must match, as in the cron crate.
        assert_eq!(sources("0 6 ? * 5"), ["0 0 6 * * 6"]);
        assert_eq!(sources("0 6 1-7 * *"), ["0 0 6 1,2,3,4,5,6,7 * *"]);
        assert_eq!(sources("@weekly"), ["0 0 0 * * 1"]);
        assert_eq!(sources("@HOURLY"), ["0 0 * * * *"]);
    }

    #[test]
    fn errors_name_the_field_and_its_range() {
        let err = |line: &str| parse_cron(line).unwrap_err();
        assert_eq!(err("0 24 * * *"), "the hour field takes 0-23, not 24");
        assert_eq!(err("60 * * * *"), "the minute field takes 0-59, not 60");
        assert_eq!(
            err("0 0 32 * *"),
            "the day-of-month field takes 1-31, not 32"
        );
        assert_eq!(err("0 0 0 * *"), "the day-of-month field takes 1-31, not 0");
        assert_eq!(
            err("0 0 * 13 *"),
            "the month field takes 1-12 or jan-dec, not 13"
        );
        assert_eq!(
            err("0 0 * * 8"),
            "the day-of-week field takes 0-7 (0 and 7 are Sunday) or sun-sat, not 8"
        );
        assert_eq!(
            err("0 0 * * funday"),
            "the day-of-week field takes 0-7 (0 and 7 are Sunday) or sun-sat, not `funday`"
        );
        assert_eq!(
            err("0 0 L * *"),
            "the day-of-month field takes 1-31, not `L`"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "the minute field: the step in `*/0` is 0; a step must be 1 or more"
        );
        assert_eq!(
            err("5/15 * * * *"),
            "the minute field: `5/15` steps from a single value; write `*/15` or a range like `5-59/15`"
        );
        assert_eq!(
            err("0 17-9 * * *"),
            "the hour range `17-9` runs backwards; write the smaller value first"
        );
        assert_eq!(
            err("0 1,,2 * * *"),
            "the hour field has an empty list item; write values like 1,15"
        );
        assert_eq!(
            err("0 7 1 *"),
            "expected 5 fields (minute hour day-of-month month day-of-week), found 4"
        );
        assert!(err("@reboot").starts_with("unknown alias (the aliases are @yearly, "));
        // `?` is `*` only in the day fields.
        assert!(err("? * * * *").starts_with("the minute field"));
    }

    #[test]
    fn an_interval_line_follows_the_same_dst_rules() {
        let s = oslo("*/20 * * * *");
        // Spring forward: 02:00, 02:20 and 02:40 do not exist and fire together at 03:00.
        assert_eq!(
            s.upcoming(utc("2026-03-29T00:30:00Z"), 3),
            [
                utc("2026-03-29T00:40:00Z"), // 01:40 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST
                utc("2026-03-29T01:20:00Z"), // 03:20 CEST
            ]
        );
        // Fall back: 02:00-02:40 fire in the first pass only.
        assert_eq!(
            s.upcoming(utc("2026-10-24T23:50:00Z"), 5),
            [
                utc("2026-10-25T00:00:00Z"), // 02:00 CEST
                utc("2026-10-25T00:20:00Z"),
                utc("2026-10-25T00:40:00Z"),
                utc("2026-10-25T02:00:00Z"), // 03:00 CET
                utc("2026-10-25T02:20:00Z"),
            ]
        );
        // Catch-up inside the repeated hour finds the first pass's time.
        assert_eq!(
            s.last_missed(utc("2026-10-24T00:00:00Z"), utc("2026-10-25T01:30:00Z")),
            Some(utc("2026-10-25T00:40:00Z"))
        );
    }

    #[test]
    fn half_hour_dst_and_a_skipped_day() {
        let zone = |name| parse_tz(name).unwrap();
        // Lord Howe: 02:00 -> 02:30 on 2026-10-04 (+10:30 -> +11); 02:15 fires at 02:30.
        let s = Schedule::new("15 2 * * *", zone("Australia/Lord_Howe"), CatchUp::Once, 0).unwrap();
        assert_eq!(
            s.upcoming(utc("2026-10-02T12:00:00Z"), 3),
            [
                utc("2026-10-02T15:45:00Z"), // 02:15 +10:30
                utc("2026-10-03T15:30:00Z"), // 02:30 +11, first instant after the gap
                utc("2026-10-04T15:15:00Z"), // 02:15 +11
            ]
        );
        // Samoa skipped 2011-12-30 altogether: that day's 06:00 fires at 00:00 on the 31st.
        let s = Schedule::new("0 6 * * *", zone("Pacific/Apia"), CatchUp::Once, 0).unwrap();
        assert_eq!(
            s.upcoming(utc("2011-12-29T12:00:00Z"), 3),
            [
                utc("2011-12-29T16:00:00Z"), // 29th 06:00 -10
                utc("2011-12-30T10:00:00Z"), // 31st 00:00 +14
                utc("2011-12-30T16:00:00Z"), // 31st 06:00 +14
            ]
        );
    }
}

// Property tests (proptest) against a minute-by-minute model: schedule/props.rs.
#[cfg(test)]
mod props;
