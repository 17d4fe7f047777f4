//! Report periods: a configured period (relative or fixed) evaluated against a run's
//! scheduled time in the subscription's time zone. Pure: the same run always gets the same
//! period.

use crate::core::config::PeriodSpec;
use chrono::{Datelike, Duration, NaiveDate};

/// A resolved period, both ends inclusive; `from = None` means "from the beginning".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
}

impl Period {
    /// `YYYYMMDD` bounds as stored in the register.
    pub fn bounds(&self) -> (Option<String>, String) {
        (
            self.from.map(|d| d.format("%Y%m%d").to_string()),
            self.to.format("%Y%m%d").to_string(),
        )
    }
}

/// Evaluates `spec` for a run scheduled on `run_date` (local date in the subscription's
/// zone). `last_delivered_to` is the end of the period of the last delivered run, for
/// `since_last_delivery`.
pub fn resolve(
    spec: PeriodSpec,
    run_date: NaiveDate,
    last_delivered_to: Option<NaiveDate>,
) -> Period {
    let yesterday = run_date - Duration::days(1);
    match spec {
        PeriodSpec::PreviousDay => Period {
            from: Some(yesterday),
            to: yesterday,
        },
        PeriodSpec::PreviousWeek => {
            // ISO weeks, Monday to Sunday: the full week before the run's week.
            let monday =
                run_date - Duration::days(run_date.weekday().num_days_from_monday() as i64);
            Period {
                from: Some(monday - Duration::days(7)),
                to: monday - Duration::days(1),
            }
        }
        PeriodSpec::PreviousMonth => {
            let first_this = run_date.with_day(1).expect("day 1 exists");
            let last_prev = first_this - Duration::days(1);
            Period {
                from: Some(last_prev.with_day(1).expect("day 1 exists")),
                to: last_prev,
            }
        }
        PeriodSpec::SinceLastDelivery => Period {
            from: last_delivered_to.map(|d| (d + Duration::days(1)).min(yesterday)),
            to: yesterday,
        },
        PeriodSpec::Fixed { from, to } => Period {
            from: Some(from),
            to,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn relative_periods() {
        // 2026-11-25 is a Wednesday.
        let run = d("2026-11-25");
        assert_eq!(
            resolve(PeriodSpec::PreviousDay, run, None),
            Period {
                from: Some(d("2026-11-24")),
                to: d("2026-11-24")
            }
        );
        assert_eq!(
            resolve(PeriodSpec::PreviousWeek, run, None),
            Period {
                from: Some(d("2026-11-16")),
                to: d("2026-11-22")
            }
        );
        assert_eq!(
            resolve(PeriodSpec::PreviousWeek, d("2026-11-23"), None),
            Period {
                from: Some(d("2026-11-16")),
                to: d("2026-11-22")
            }
        );
        assert_eq!(
            resolve(PeriodSpec::PreviousMonth, d("2026-03-01"), None),
            Period {
                from: Some(d("2026-02-01")),
                to: d("2026-02-28")
            }
        );
        assert_eq!(
            resolve(PeriodSpec::PreviousMonth, d("2026-01-15"), None),
            Period {
                from: Some(d("2025-12-01")),
                to: d("2025-12-31")
            }
        );
        assert_eq!(
            resolve(PeriodSpec::SinceLastDelivery, run, None),
            Period {
                from: None,
                to: d("2026-11-24")
            }
        );
        assert_eq!(
            resolve(PeriodSpec::SinceLastDelivery, run, Some(d("2026-11-20"))),
            Period {
                from: Some(d("2026-11-21")),
                to: d("2026-11-24")
            }
        );
        let fixed = PeriodSpec::Fixed {
            from: d("2020-01-01"),
            to: d("2020-12-31"),
        };
        assert_eq!(
            resolve(fixed, run, None).bounds(),
            (Some("20200101".into()), "20201231".into())
        );
    }
}
