//! Property tests: random 5-field lines, zones with 1-hour and 30-minute DST shifts, and
//! instants over several years (half of them near a DST change) against a model.

use super::*;
use chrono::{Datelike, Timelike};
use proptest::prelude::*;
use std::sync::OnceLock;

const ZONES: [&str; 4] = [
    "Europe/Oslo",
    "America/New_York",
    "UTC",
    "Australia/Lord_Howe",
];

/// One list item of a generated field.
#[derive(Debug, Clone)]
enum Item {
    Value(u32),
    Range(u32, u32),
    /// `*/s` (None) or `a-b/s`.
    Step(Option<(u32, u32)>, u32),
}

/// A generated field: `*`, or a list of items, written with names where `named`.
#[derive(Debug, Clone)]
struct Gen {
    items: Option<Vec<Item>>,
    named: bool,
}

/// A generated line: its text and its fields (minute hour dom month dow).
#[derive(Debug, Clone)]
struct Line {
    text: String,
    fields: [Gen; 5],
}

const BOUNDS: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];

fn item((lo, hi): (u32, u32)) -> impl Strategy<Value = Item> {
    let pair = move || (lo..=hi, lo..=hi).prop_map(|(a, b)| (a.min(b), a.max(b)));
    prop_oneof![
        3 => (lo..=hi).prop_map(Item::Value),
        2 => pair().prop_map(|(a, b)| Item::Range(a, b)),
        2 => (proptest::option::of(pair()), 1..=hi.max(2)).prop_map(|(r, s)| Item::Step(r, s)),
    ]
}

fn field(bounds: (u32, u32), star: u32) -> impl Strategy<Value = Gen> {
    prop_oneof![
        star => Just(None),
        4 => proptest::collection::vec(item(bounds), 1..=3).prop_map(Some),
    ]
    .prop_flat_map(|items| {
        any::<bool>().prop_map(move |named| Gen {
            items: items.clone(),
            named,
        })
    })
}

fn write(g: &Gen, index: usize) -> String {
    let name = |v: u32| -> String {
        match index {
            3 if g.named => [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ][v as usize - 1]
                .to_string(),
            4 if g.named && v < 7 => {
                ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][v as usize].to_string()
            }
            _ => v.to_string(),
        }
    };
    let Some(items) = &g.items else {
        return "*".into();
    };
    items
        .iter()
        .map(|i| match *i {
            Item::Value(v) => name(v),
            Item::Range(a, b) => format!("{}-{}", name(a), name(b)),
            Item::Step(None, s) => format!("*/{s}"),
            Item::Step(Some((a, b)), s) => format!("{}-{}/{s}", name(a), name(b)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn line() -> impl Strategy<Value = Line> {
    let fields = (
        field(BOUNDS[0], 1),
        field(BOUNDS[1], 2),
        field(BOUNDS[2], 4),
        field(BOUNDS[3], 8),
        field(BOUNDS[4], 4),
    );
    let alias = |text: &str, fields: [Option<u32>; 5]| Line {
        text: text.into(),
        fields: fields.map(|v| Gen {
            items: v.map(|v| vec![Item::Value(v)]),
            named: false,
        }),
    };
    prop_oneof![
        12 => fields.prop_map(|(a, b, c, d, e)| {
            let fields = [a, b, c, d, e];
            let text = (0..5).map(|i| write(&fields[i], i)).collect::<Vec<_>>().join(" ");
            Line { text, fields }
        }),
        1 => Just(alias("@hourly", [Some(0), None, None, None, None])),
        1 => Just(alias("@daily", [Some(0), Some(0), None, None, None])),
        1 => Just(alias("@weekly", [Some(0), Some(0), None, None, Some(0)])),
        1 => Just(alias("@monthly", [Some(0), Some(0), Some(1), None, None])),
    ]
}

/// The model: each field's values as a set, and the Vixie day rule.
struct Model {
    sets: [Vec<bool>; 5],
    dom_star: bool,
    dow_star: bool,
}

impl Model {
    fn of(line: &Line) -> Model {
        let sets = std::array::from_fn(|i| {
            let (lo, hi) = BOUNDS[i];
            let mut set = vec![false; 64];
            let mut put = |a: u32, b: u32, s: u32| {
                let mut v = a;
                while v <= b {
                    set[v as usize] = true;
                    v += s;
                }
            };
            match &line.fields[i].items {
                None => put(lo, hi, 1),
                Some(items) => {
                    for it in items {
                        match *it {
                            Item::Value(v) => put(v, v, 1),
                            Item::Range(a, b) => put(a, b, 1),
                            Item::Step(None, s) => put(lo, hi, s),
                            Item::Step(Some((a, b)), s) => put(a, b, s),
                        }
                    }
                }
            }
            if i == 4 && set[7] {
                set[0] = true;
            }
            set
        });
        Model {
            sets,
            dom_star: line.fields[2].items.is_none(),
            dow_star: line.fields[4].items.is_none(),
        }
    }

    fn matches(&self, w: NaiveDateTime) -> bool {
        let has = |i: usize, v: u32| self.sets[i][v as usize];
        let dom = has(2, w.day());
        let dow = has(4, w.weekday().num_days_from_sunday());
        let day = if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        };
        has(0, w.minute()) && has(1, w.hour()) && has(3, w.month()) && day
    }
}

fn wall(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    tz.from_utc_datetime(&t.naive_utc()).naive_local()
}

fn minute_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap()
}

/// Brute force, minute by minute: the clock's highest wall-clock time so far; a UTC
/// minute fires when it brings the clock to a new wall-clock minute (or, right after a
/// gap, past several) that the line matches. Fire times in `(t, end]`, and the instants
/// in it at which the clock was turned back.
fn reference(
    model: &Model,
    tz: Tz,
    t: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
    let one = Duration::minutes(1);
    let start = minute_floor(t);
    let mut peak = wall(tz, start - Duration::hours(26));
    let mut i = start - Duration::hours(26);
    while i <= start {
        peak = peak.max(wall(tz, i));
        i += one;
    }
    let (mut fires, mut turned_back) = (vec![], vec![]);
    while i <= end {
        let w = wall(tz, i);
        if w < wall(tz, i - one) {
            turned_back.push(i);
        }
        let mut reached = peak + one;
        let mut fire = false;
        while reached <= w {
            fire |= model.matches(reached);
            reached += one;
        }
        if fire {
            fires.push(i);
        }
        peak = peak.max(w);
        i += one;
    }
    (fires, turned_back)
}

/// Instants of DST changes per zone, 2024-2031 (to within six hours).
fn changes() -> &'static [Vec<DateTime<Utc>>] {
    static CHANGES: OnceLock<Vec<Vec<DateTime<Utc>>>> = OnceLock::new();
    CHANGES.get_or_init(|| {
        ZONES
            .iter()
            .map(|z| {
                let tz = parse_tz(z).unwrap();
                let offset = |t: DateTime<Utc>| wall(tz, t) - t.naive_utc();
                let mut t: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
                let mut out = vec![];
                while t.year() < 2031 {
                    let next = t + Duration::hours(6);
                    if offset(next) != offset(t) {
                        out.push(next);
                    }
                    t = next;
                }
                out
            })
            .collect()
    })
}

/// A zone and an instant: uniform over 2024-2030, or within 42 h before a DST change.
fn zone_and_instant() -> impl Strategy<Value = (usize, DateTime<Utc>)> {
    (0..ZONES.len(), any::<bool>(), any::<u64>()).prop_map(|(z, near, raw)| {
        let changes = &changes()[z];
        let base: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let t = if near && !changes.is_empty() {
            let c = changes[(raw % changes.len() as u64) as usize];
            c - Duration::seconds((raw / 7 % (42 * 3600)) as i64)
        } else {
            base + Duration::seconds((raw % (7 * 365 * 86_400)) as i64)
        };
        (z, t)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn next_fire_is_later_increasing_and_matches_local_time(
        line in line(),
        (z, t) in zone_and_instant(),
    ) {
        let tz = parse_tz(ZONES[z]).unwrap();
        let s = Schedule::new(&line.text, tz, CatchUp::Once, 0).unwrap();
        let model = Model::of(&line);
        let mut prev = t;
        for n in s.upcoming(t, 12) {
            prop_assert!(n > prev, "{}: {n} not after {prev}", line.text);
            prop_assert_eq!(s.next_after(n - Duration::seconds(1)), Some(n));
            // Its local time matches, or it ends a gap that skipped a matching time.
            let (before, at) = (wall(tz, n - Duration::minutes(1)), wall(tz, n));
            let mut w = before.min(at - Duration::minutes(1)) + Duration::minutes(1);
            let mut matched = false;
            while w <= at {
                matched |= model.matches(w);
                w += Duration::minutes(1);
            }
            prop_assert!(matched, "{} in {}: {n} ({at}) does not match", line.text, ZONES[z]);
            prev = n;
        }
    }

    #[test]
    fn agrees_with_a_minute_by_minute_reference(
        line in line(),
        (z, t) in zone_and_instant(),
    ) {
        let tz = parse_tz(ZONES[z]).unwrap();
        let s = Schedule::new(&line.text, tz, CatchUp::Once, 0).unwrap();
        let end = t + Duration::hours(48);
        let (want, turned_back) = reference(&Model::of(&line), tz, t, end);
        let mut got = vec![];
        let mut at = t;
        while let Some(n) = s.next_after(at).filter(|&n| n <= end) {
            got.push(n);
            at = n;
        }
        prop_assert_eq!(&got, &want, "{} in {} after {}", line.text, ZONES[z], t);
        // Catch-up: the most recent fire time up to a moment in the window, some of them
        // in the repeated wall-clock times after the clock was turned back.
        let repeated = turned_back.iter().flat_map(|&b| [b + Duration::minutes(10), b + Duration::minutes(25)]);
        for now in [t + Duration::hours(17), end].into_iter().chain(repeated).filter(|&n| n <= end) {
            let last = want.iter().rev().find(|&&f| f <= now).copied();
            prop_assert_eq!(s.last_missed(t, now), last, "{} in {} up to {}", line.text, ZONES[z], now);
        }
    }
}
