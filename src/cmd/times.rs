//! Times as the commands show them: UTC beside the machine's local time, for people and in
//! `--json` documents (`{"utc": "2026-12-02T05:00:00Z", "local": "2026-12-02T06:00:00+01:00"}`).
//!
//! The local zone is `$TZ` when it names an IANA zone, else the system's (`/etc/localtime`);
//! when neither gives a name, the offset chrono finds is used without one.

use chrono::{DateTime, FixedOffset, Local, Offset, TimeZone, Utc};
use serde::Serialize;

/// The machine's time zone.
#[derive(Debug, Clone, Copy)]
pub enum LocalZone {
    Named(chrono_tz::Tz),
    /// No IANA name found: chrono's own idea of local time.
    Unnamed,
}

impl LocalZone {
    pub fn detect() -> LocalZone {
        let named = std::env::var("TZ")
            .ok()
            .map(|tz| tz.trim_start_matches(':').to_string())
            .filter(|tz| !tz.is_empty())
            .or_else(|| iana_time_zone::get_timezone().ok())
            .and_then(|name| name.parse::<chrono_tz::Tz>().ok());
        match named {
            Some(tz) => LocalZone::Named(tz),
            None => LocalZone::Unnamed,
        }
    }

    /// The zone's name (`Europe/Oslo`), or `local` when it has none.
    pub fn name(self) -> String {
        match self {
            LocalZone::Named(tz) => tz.name().to_string(),
            LocalZone::Unnamed => "local".into(),
        }
    }

    /// `t` in this zone, as a fixed offset (for RFC 3339).
    pub fn fixed(self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            LocalZone::Named(tz) => {
                let l = t.with_timezone(&tz);
                l.with_timezone(&l.offset().fix())
            }
            LocalZone::Unnamed => t.with_timezone(&Local).fixed_offset(),
        }
    }

    /// `2026-12-02 06:00 CET` (the abbreviation, or the offset for an unnamed zone).
    pub fn short(self, t: DateTime<Utc>) -> String {
        match self {
            LocalZone::Named(tz) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
            LocalZone::Unnamed => t
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M %:z")
                .to_string(),
        }
    }
}

/// A time in a `--json` document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Time {
    /// RFC 3339 in UTC, whole seconds: `2026-12-02T05:00:00Z`.
    pub utc: String,
    /// RFC 3339 in the machine's zone: `2026-12-02T06:00:00+01:00`.
    pub local: String,
}

impl Time {
    pub fn new(t: DateTime<Utc>, zone: LocalZone) -> Time {
        Time {
            utc: crate::store::fmt_ts(t),
            local: zone.fixed(t).format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        }
    }
}

/// `t` in `tz` as RFC 3339 (a subscription's own zone).
pub fn rfc3339_in<Tz: TimeZone>(t: DateTime<Utc>, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let l = t.with_timezone(tz);
    l.fixed_offset().format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// How long until `t` for people, `systemctl list-timers` style: `3h 12min`, `2 days 4h`,
/// `45s`; `now` for a time that has come.
pub fn left(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    if secs <= 0 {
        return "now".into();
    }
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}min"),
        (0, h, m) => format!("{h}h {m}min"),
        (1, h, _) => format!("1 day {h}h"),
        (d, h, _) => format!("{d} days {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn local_times_carry_the_offset_of_their_date() {
        let oslo = LocalZone::Named(chrono_tz::Europe::Oslo);
        let winter = Time::new(utc("2026-12-02T05:00:00Z"), oslo);
        assert_eq!(winter.utc, "2026-12-02T05:00:00Z");
        assert_eq!(winter.local, "2026-12-02T06:00:00+01:00");
        let summer = Time::new(utc("2026-07-01T05:00:00Z"), oslo);
        assert_eq!(summer.local, "2026-07-01T07:00:00+02:00");
        assert_eq!(
            oslo.short(utc("2026-07-01T05:00:00Z")),
            "2026-07-01 07:00 CEST"
        );
        assert_eq!(oslo.name(), "Europe/Oslo");
    }

    #[test]
    fn time_left_reads_like_list_timers() {
        let now = utc("2026-12-02T05:00:00Z");
        let at = |s: i64| now + chrono::Duration::seconds(s);
        assert_eq!(left(now, now), "now");
        assert_eq!(left(now, at(-5)), "now");
        assert_eq!(left(now, at(45)), "45s");
        assert_eq!(left(now, at(600)), "10min");
        assert_eq!(left(now, at(3 * 3600 + 12 * 60 + 5)), "3h 12min");
        assert_eq!(left(now, at(86_400 + 2 * 3600)), "1 day 2h");
        assert_eq!(left(now, at(9 * 86_400)), "9 days 0h");
    }
}
