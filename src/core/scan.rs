//! Shared scans (docs/design.md §4, "Shared scans"): which runs may share one read of the
//! register. [`ScanKey`] is everything of a [`RunPlan`] that decides the register query
//! (report, columns, filters, period field and resolved period): two plans with equal keys
//! read the same rows in the same order. [`FormKey`] is everything that turns those rows
//! into plaintext bytes (format, encoding, line ending): members with equal keys of both
//! get byte-for-byte the same plaintext. [`solo_reason`] says why a plan does not join a
//! group; [`groups`] forms the groups. Pure.

use crate::core::catalog::{Field, PeriodField, ReportKind};
use crate::core::config::{Filter, Format, Transport};
use crate::core::period::Period;
use crate::core::plan::RunPlan;
use crate::core::text::{Encoding, LineEnding};

/// What decides the register query of a run. The register itself is not in it: a group is
/// formed inside one daemon, which reads one register.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanKey {
    pub report: ReportKind,
    pub columns: Vec<Field>,
    pub filter: Filter,
    /// The period and the date it applies to (`None`: the report has no period).
    pub period: Option<(PeriodField, Period)>,
}

/// What turns the rows into plaintext bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormKey {
    pub format: Format,
    pub encoding: Encoding,
    pub line_ending: LineEnding,
}

impl ScanKey {
    pub fn of(plan: &RunPlan) -> ScanKey {
        ScanKey {
            report: plan.extract.report,
            columns: plan.extract.columns.clone(),
            filter: plan.extract.filter.clone(),
            period: plan.period.map(|p| (plan.extract.period_field, p)),
        }
    }
}

impl FormKey {
    pub fn of(plan: &RunPlan) -> FormKey {
        FormKey {
            format: plan.extract.format,
            encoding: plan.extract.encoding,
            line_ending: plan.extract.line_ending,
        }
    }
}

/// Why `plan` runs on its own even when another run with the same query fires with it;
/// `None`: it may share a scan. xlsx builds a zip of its own per file (and may fall back
/// to dsv by row count), code tables are files beside the main one, e-mail runs seal in
/// their own attempt (passphrases are made per delivery), and report `code_tables` does not
/// read the register.
pub fn solo_reason(plan: &RunPlan) -> Option<&'static str> {
    if !plan.reads_register() {
        return Some("report code_tables does not read the register");
    }
    if !matches!(plan.extract.format, Format::Dsv | Format::Csv) {
        return Some("xlsx is built per file");
    }
    if !plan.planned_files().extras.is_empty() {
        return Some("code tables are delivered beside the report");
    }
    if matches!(plan.transport, Transport::Email(_)) || plan.encryption.passphrase {
        return Some("e-mail deliveries seal in their own attempt");
    }
    None
}

/// The groups among `plans`: indexes of plans with equal [`ScanKey`], each group of two or
/// more, in the order of their first member; plans that may not share ([`solo_reason`]) or
/// have no partner are left out (they run solo).
pub fn groups(plans: &[&RunPlan]) -> Vec<Vec<usize>> {
    let mut keyed: Vec<(ScanKey, Vec<usize>)> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        if solo_reason(p).is_some() {
            continue;
        }
        let key = ScanKey::of(p);
        match keyed.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => keyed.push((key, vec![i])),
        }
    }
    keyed
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.len() > 1)
        .collect()
}

/// `members` split by [`FormKey`]: each form once, with the indexes of its members, in the
/// order of their first member.
pub fn forms(plans: &[&RunPlan]) -> Vec<(FormKey, Vec<usize>)> {
    let mut out: Vec<(FormKey, Vec<usize>)> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let key = FormKey::of(p);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, m)) => m.push(i),
            None => out.push((key, vec![i])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::Subscription;
    use chrono::{DateTime, Utc};

    fn sub(id: &str, extract: &str) -> Subscription {
        crate::core::plan::test_subscription(id, extract, "")
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn plan(id: &str, extract: &str) -> RunPlan {
        RunPlan::new(&sub(id, extract), at("2026-11-25T05:00:00Z"), None).unwrap()
    }

    #[test]
    fn same_query_groups_and_a_different_filter_or_period_does_not() {
        let a = plan("a", "report = \"technical_owners\"");
        let b = plan("b", "report = \"technical_owners\"\nformat = \"csv\"");
        let c = plan(
            "c",
            "report = \"technical_owners\"\nencoding = \"iso-8859-1\"",
        );
        let d = plan(
            "d",
            "report = \"technical_owners\"\n[extract.filter]\nfuel = [\"5\"]",
        );
        let e = plan(
            "e",
            "report = \"first_registrations\"\nperiod = \"previous_day\"",
        );
        let f = plan(
            "f",
            "report = \"first_registrations\"\nperiod = \"previous_day\"",
        );
        let g = plan("g", "report = \"technical\"");
        let all = [&a, &b, &c, &d, &e, &f, &g];
        assert_eq!(groups(&all), vec![vec![0, 1, 2], vec![4, 5]]);
        assert_ne!(ScanKey::of(&a), ScanKey::of(&d));
        // The same period spec on another day is another query.
        let e2 = RunPlan::new(
            &sub(
                "e2",
                "report = \"first_registrations\"\nperiod = \"previous_day\"",
            ),
            at("2026-11-26T05:00:00Z"),
            None,
        )
        .unwrap();
        assert_ne!(ScanKey::of(&e), ScanKey::of(&e2));
    }

    #[test]
    fn forms_split_a_group_by_the_bytes_it_writes() {
        let a = plan("a", "report = \"technical\"");
        let b = plan("b", "report = \"technical\"\nformat = \"csv\"");
        let c = plan("c", "report = \"technical\"");
        let d = plan("d", "report = \"technical\"\nline_ending = \"crlf\"");
        let f = forms(&[&a, &b, &c, &d]);
        assert_eq!(
            f.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>(),
            vec![vec![0, 2], vec![1], vec![3]]
        );
        assert_eq!(f[0].0, FormKey::of(&a));
    }

    #[test]
    fn xlsx_and_code_tables_stay_solo() {
        let x = plan("x", "report = \"technical\"\nformat = \"xlsx\"");
        let t = plan("t", "report = \"technical\"\ncode_tables = [\"make\"]");
        let a = plan("a", "report = \"technical\"");
        assert!(solo_reason(&x).is_some());
        assert!(solo_reason(&t).is_some());
        assert_eq!(solo_reason(&a), None);
        assert!(groups(&[&x, &a, &t]).is_empty());
    }
}
