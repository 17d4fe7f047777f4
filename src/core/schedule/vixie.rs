//! The operator's 5-field cron line (Vixie semantics) parsed and written out for the
//! `cron` crate: fields with their ranges and names, `@` aliases, weekday numbering, and
//! the either-day rule as two schedules (see the module above for the whole layer).

use std::str::FromStr;

/// A parsed cron line: the `cron` crate schedules whose wall-clock fire times, together,
/// are the line's.
#[derive(Debug, Clone)]
pub struct Cron {
    /// One schedule, or two (day of month, weekday) for Vixie's either-day rule.
    pub(super) parts: Vec<cron::Schedule>,
}

/// One field of a 5-field line: its name in messages, its range and its names, if any.
struct Field {
    name: &'static str,
    lo: u32,
    hi: u32,
    /// Names for `lo`, `lo + 1`, ...; matched case-insensitively.
    names: &'static [&'static str],
    /// What the range means, said after it (`0-7 (0 and 7 are Sunday)`).
    note: &'static str,
    /// Whether `?` may stand for `*` (the day fields, as in Quartz lines and croner).
    question_mark: bool,
}

const MINUTE: Field = Field {
    name: "minute",
    lo: 0,
    hi: 59,
    names: &[],
    note: "",
    question_mark: false,
};
const HOUR: Field = Field {
    name: "hour",
    lo: 0,
    hi: 23,
    names: &[],
    note: "",
    question_mark: false,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    lo: 1,
    hi: 31,
    names: &[],
    note: "",
    question_mark: true,
};
const MONTH: Field = Field {
    name: "month",
    lo: 1,
    hi: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    note: " or jan-dec",
    question_mark: false,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    lo: 0,
    hi: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    note: " (0 and 7 are Sunday) or sun-sat",
    question_mark: true,
};

/// The `@` aliases and the lines they stand for (Vixie's, `@reboot` aside).
const ALIASES: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// The values one field matches, as bits (bit `v` for value `v`), and whether it was `*`.
struct Values {
    bits: u64,
    star: bool,
}

impl Field {
    fn all(&self) -> u64 {
        (self.lo..=self.hi).fold(0, |b, v| b | 1 << v)
    }

    fn parse(&self, text: &str) -> Result<Values, String> {
        if text == "*" || (self.question_mark && text == "?") {
            return Ok(Values {
                bits: self.all(),
                star: true,
            });
        }
        let mut bits = 0;
        for item in text.split(',') {
            bits |= self.item(item)?;
        }
        Ok(Values { bits, star: false })
    }

    /// One list item: `*`, `5`, `mon`, `1-5`, `mon-fri`, `*/15`, `0-30/10`.
    fn item(&self, item: &str) -> Result<u64, String> {
        let name = self.name;
        if item.is_empty() {
            return Err(format!(
                "the {name} field has an empty list item; write values like 1,15"
            ));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                // All digits: a step too large for u32 is as good as u32::MAX.
                let step = number(step).ok_or_else(|| {
                    format!("the {name} field: the step in `{item}` is not a whole number")
                })?;
                if step == 0 {
                    return Err(format!(
                        "the {name} field: the step in `{item}` is 0; a step must be 1 or more"
                    ));
                }
                (base, step)
            }
            None => (item, 1),
        };
        let (from, to) = if base == "*" {
            (self.lo, self.hi)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (self.value(a)?, self.value(b)?);
            if a > b {
                return Err(format!(
                    "the {name} range `{base}` runs backwards; write the smaller value first"
                ));
            }
            (a, b)
        } else {
            let v = self.value(base)?;
            if item.contains('/') {
                return Err(format!(
                    "the {name} field: `{item}` steps from a single value; write `*/{step}` or a range like `{v}-{}/{step}`",
                    self.hi
                ));
            }
            (v, v)
        };
        Ok((from..=to)
            .step_by(step as usize)
            .fold(0, |b, v| b | 1 << v))
    }

    /// A number or a name within the field's range.
    fn value(&self, text: &str) -> Result<u32, String> {
        let (name, lo, hi, note) = (self.name, self.lo, self.hi, self.note);
        if let Some(v) = number(text) {
            if (lo..=hi).contains(&v) {
                return Ok(v);
            }
            return Err(format!(
                "the {name} field takes {lo}-{hi}{note}, not {text}"
            ));
        }
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(lo + i as u32);
        }
        Err(format!(
            "the {name} field takes {lo}-{hi}{note}, not `{text}`"
        ))
    }
}

/// A string of ASCII digits as a number (saturating at `u32::MAX`); anything else is not one.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u32::MAX))
}

/// The field's values as the `cron` crate writes them: `*`, or a list (shifted by `shift`).
fn cron_list(bits: u64, all: u64, shift: u32) -> String {
    if bits == all {
        return "*".into();
    }
    (0..64)
        .filter(|v| bits & 1 << v != 0)
        .map(|v| (v + shift).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a standard 5-field cron line or an `@alias` (`@daily`, `@weekly`, ...).
pub fn parse_cron(line: &str) -> Result<Cron, String> {
    let line = line.trim();
    let line = if line.starts_with('@') {
        ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(line))
            .map(|(_, l)| *l)
            .ok_or_else(|| {
                format!(
                    "unknown alias (the aliases are {})",
                    ALIASES
                        .iter()
                        .map(|(a, _)| *a)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?
    } else {
        line
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields[..] else {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        ));
    };
    let minute = MINUTE.parse(minute)?;
    let hour = HOUR.parse(hour)?;
    let dom = DAY_OF_MONTH.parse(dom)?;
    let month = MONTH.parse(month)?;
    let mut dow = DAY_OF_WEEK.parse(dow)?;
    // 7 is Sunday as well as 0; the `cron` crate numbers Sunday 1 ... Saturday 7.
    if dow.bits & 1 << 7 != 0 {
        dow.bits = (dow.bits & !(1 << 7)) | 1;
    }
    let sunday_to_saturday = (0..7).fold(0, |b, v| b | 1 << v);

    let (m, h, mo) = (
        cron_list(minute.bits, MINUTE.all(), 0),
        cron_list(hour.bits, HOUR.all(), 0),
        cron_list(month.bits, MONTH.all(), 0),
    );
    let d = cron_list(dom.bits, DAY_OF_MONTH.all(), 0);
    let w = cron_list(dow.bits, sunday_to_saturday, 1);
    let lines = if !dom.star && !dow.star {
        // Vixie: either day field matching is enough. `cron` requires both, so one
        // schedule per day field, the other left open.
        vec![
            format!("0 {m} {h} {d} {mo} *"),
            format!("0 {m} {h} * {mo} {w}"),
        ]
    } else {
        vec![format!("0 {m} {h} {d} {mo} {w}")]
    };
    let parts = lines
        .iter()
        .map(|l| {
            cron::Schedule::from_str(l)
                .map_err(|e| format!("`{l}` (its translation) was refused by the cron crate: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Cron { parts })
}
