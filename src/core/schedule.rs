//! Schedules: a 5-field cron line (Vixie semantics) in an IANA time zone -> fire times in
//! UTC, with defined daylight-saving behaviour and catch-up after downtime. Pure.
//!
//! Cron evaluation uses `croner` (POSIX/Vixie: 0 or 7 = Sunday, 1 = Monday; day-of-month OR
//! day-of-week when both are restricted; `@daily` aliases). The `cron` crate of the design
//! card takes 6/7-field Quartz lines, numbers Sunday 1 and skips or doubles jobs at DST
//! changes, so it is not used.
//!
//! DST rules (tested below for Europe/Oslo):
//! - a wall-clock time that does not exist on the spring-forward day fires once, at the
//!   first instant after the gap (02:30 -> 03:00 local);
//! - a wall-clock time that occurs twice on the fall-back day fires once (the first time).

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::Deserialize;

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

/// Parses a standard 5-field cron line or an `@alias` (`@daily`, `@weekly`, ...).
pub fn parse_cron(line: &str) -> Result<Cron, String> {
    let fields = line.split_whitespace().count();
    if !line.trim_start().starts_with('@') && fields != 5 {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(line)
        .map_err(|e| e.to_string())
}

/// Parses an IANA time-zone name (`Europe/Oslo`, `UTC`).
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("`{name}` is not an IANA time zone name (e.g. Europe/Oslo)"))
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
        let local = after.with_timezone(&self.tz);
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        let utc = next.with_timezone(&Utc);
        // croner works in wall-clock time: on the fall-back day the repeated hour can
        // yield a time not after `after` in real time. Step past it.
        if utc <= after {
            return self.next_after_wall(after);
        }
        Some(utc)
    }

    fn next_after_wall(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = after;
        for _ in 0..4 {
            t += chrono::Duration::minutes(61);
            let local = t.with_timezone(&self.tz);
            let n = self
                .cron
                .find_next_occurrence(&local, false)
                .ok()?
                .with_timezone(&Utc);
            if n > after {
                return Some(n);
            }
        }
        None
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
        let local = now.with_timezone(&self.tz);
        let prev = self
            .cron
            .find_previous_occurrence(&local, true)
            .ok()?
            .with_timezone(&Utc);
        (prev > since && prev <= now).then_some(prev)
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
                    *start += chrono::Duration::minutes(13);
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
}
