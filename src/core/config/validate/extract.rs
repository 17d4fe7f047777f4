//! The `[extract]` table: the report, its columns (catalog fields), format, period and
//! period field, the code tables delivered beside it, and the rules that tie them together
//! -> [`ExtractSpec`]. `[extract.filter]` is [`super::filter`].

use super::super::raw::{RawExtract, RawPeriod};
use super::filter::validate_filter;
use super::types::{ExtractSpec, Filter, Format, PeriodSpec};
use super::Problem;
use crate::core::catalog::{self, Field, PeriodField, ReportKind};
use crate::core::codes::CodeTable;
use chrono::NaiveDate;

/// The extract, or `None` when any of its problems was found.
pub(super) fn validate_extract(x: &RawExtract, p: &mut Vec<Problem>) -> Option<ExtractSpec> {
    let before = p.len();
    let report = ReportKind::parse(&x.report);
    if report.is_none() {
        p.push(Problem::new(
            "extract.report",
            format!(
                "`{}` is not a report; use one of {}",
                x.report,
                ReportKind::ALL.map(|k| k.as_str()).join(", ")
            ),
        ));
    }
    let columns = columns(report, x.columns.as_deref(), p);
    let format = format(&x.format, p);
    let period = x.period.as_ref().and_then(|raw| period(raw, p));
    let period_field = period_field(x, report, p);
    let filter = validate_filter(&x.filter, p);
    let code_tables = code_tables(&x.code_tables, p);
    report_rules(x, report, &columns, &filter, p);
    if p.len() > before {
        return None;
    }
    Some(ExtractSpec {
        report: report?,
        code_tables,
        columns,
        format,
        encoding: x.encoding,
        line_ending: x.line_ending,
        period,
        period_field,
        filter,
    })
}

/// `columns`: a custom report's list of catalog names; the other reports have their own.
fn columns(
    report: Option<ReportKind>,
    cols: Option<&[String]>,
    p: &mut Vec<Problem>,
) -> Vec<Field> {
    let all = catalog::all_fields();
    match (report, cols) {
        (Some(ReportKind::Custom), None) => {
            p.push(Problem::new(
                "extract.columns",
                "a custom report needs a columns list (catalog names like \"TEKN_KJM\")",
            ));
            vec![]
        }
        (Some(ReportKind::Custom), Some(cols)) => {
            if cols.is_empty() {
                p.push(Problem::new("extract.columns", "the columns list is empty"));
            }
            let mut out = Vec::new();
            for (i, c) in cols.iter().enumerate() {
                match all.iter().find(|f| &f.name == c) {
                    Some(f) if out.iter().any(|o: &Field| o.name == f.name) => {
                        p.push(Problem::new(
                            format!("extract.columns[{i}]"),
                            format!("`{c}` is listed twice"),
                        ))
                    }
                    Some(f) => out.push(f.clone()),
                    None => p.push(Problem::new(
                        format!("extract.columns[{i}]"),
                        format!(
                            "`{c}` is not a field of the catalog; `regdrop fields` lists them{}",
                            suggest(c, &all)
                        ),
                    )),
                }
            }
            out
        }
        (Some(k), Some(_)) => {
            p.push(Problem::new(
                "extract.columns",
                format!(
                    "the `{}` report has fixed columns; use report = \"custom\" to choose columns",
                    k.as_str()
                ),
            ));
            vec![]
        }
        (Some(k), None) => k.columns().unwrap_or_default(),
        (None, _) => vec![],
    }
}

fn suggest(name: &str, all: &[Field]) -> String {
    let up = name.to_ascii_uppercase();
    match all.iter().find(|f| f.name == up || f.name.ends_with(&up)) {
        Some(f) => format!(" (did you mean `{}`?)", f.name),
        None => String::new(),
    }
}

/// `format`: dsv, csv or xlsx.
fn format(word: &str, p: &mut Vec<Problem>) -> Format {
    match word {
        "dsv" => Format::Dsv,
        "csv" => Format::Csv,
        "xlsx" => Format::Xlsx,
        other => {
            p.push(Problem::new(
                "extract.format",
                format!("`{other}` is not a format; use \"dsv\", \"csv\" or \"xlsx\""),
            ));
            Format::Dsv
        }
    }
}

/// `period`: a relative period's word, or a fixed `{ from, to }` of plain dates.
fn period(raw: &RawPeriod, p: &mut Vec<Problem>) -> Option<PeriodSpec> {
    match raw {
        RawPeriod::Relative(s) => match s.as_str() {
            "previous_day" => Some(PeriodSpec::PreviousDay),
            "previous_week" => Some(PeriodSpec::PreviousWeek),
            "previous_month" => Some(PeriodSpec::PreviousMonth),
            "since_last_delivery" => Some(PeriodSpec::SinceLastDelivery),
            other => {
                p.push(Problem::new(
                    "extract.period",
                    format!("`{other}` is not a period; use previous_day, previous_week, previous_month, since_last_delivery or {{ from = 2026-01-01, to = 2026-01-31 }}"),
                ));
                None
            }
        },
        RawPeriod::Fixed { from, to } => {
            let d = |v: &toml::value::Datetime, key: &str, p: &mut Vec<Problem>| match (
                &v.date, &v.time,
            ) {
                (Some(d), None) => {
                    NaiveDate::from_ymd_opt(d.year as i32, d.month as u32, d.day as u32)
                }
                _ => {
                    p.push(Problem::new(
                        format!("extract.period.{key}"),
                        "write a plain date like 2026-01-31 (no time)",
                    ));
                    None
                }
            };
            match (d(from, "from", p), d(to, "to", p)) {
                (Some(f), Some(t)) if f <= t => Some(PeriodSpec::Fixed { from: f, to: t }),
                (Some(_), Some(_)) => {
                    p.push(Problem::new(
                        "extract.period.to",
                        "the period ends before it starts",
                    ));
                    None
                }
                _ => None,
            }
        }
    }
}

/// `period_field`: the date the period applies to (the report's own by default).
fn period_field(x: &RawExtract, report: Option<ReportKind>, p: &mut Vec<Problem>) -> PeriodField {
    let field = match &x.period_field {
        None => report
            .map(|r| r.default_period_field())
            .unwrap_or(PeriodField::FirstRegistrationNorway),
        Some(s) => PeriodField::parse(s).unwrap_or_else(|| {
            p.push(Problem::new(
                "extract.period_field",
                format!(
                    "`{s}` is not a date field; use one of {}",
                    PeriodField::ALL.map(|f| f.as_str()).join(", ")
                ),
            ));
            PeriodField::FirstRegistrationNorway
        }),
    };
    if x.period_field.is_some() && x.period.is_none() {
        p.push(Problem::new(
            "extract.period_field",
            "period_field has no effect without a period",
        ));
    }
    field
}

/// `code_tables`: each a known table, none twice.
fn code_tables(names: &[String], p: &mut Vec<Problem>) -> Vec<CodeTable> {
    let mut code_tables = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match CodeTable::parse(name) {
            Some(t) if code_tables.contains(&t) => p.push(Problem::new(
                format!("extract.code_tables[{i}]"),
                format!("`{name}` is listed twice"),
            )),
            Some(t) => code_tables.push(t),
            None => p.push(Problem::new(
                format!("extract.code_tables[{i}]"),
                format!(
                    "`{name}` is not a code table; use one of {}",
                    CodeTable::ALL.map(|t| t.as_str()).join(", ")
                ),
            )),
        }
    }
    code_tables
}

/// What the report allows: code tables alone go whole (no filter, no period), owner
/// filters need owner columns.
fn report_rules(
    x: &RawExtract,
    report: Option<ReportKind>,
    columns: &[Field],
    filter: &Filter,
    p: &mut Vec<Problem>,
) {
    if report == Some(ReportKind::CodeTables) {
        if x.code_tables.is_empty() {
            p.push(Problem::new(
                "extract.code_tables",
                "report code_tables needs the tables to deliver, e.g. code_tables = [\"make\", \"fuel\"]",
            ));
        }
        if *filter != Filter::default() {
            p.push(Problem::new(
                "extract.filter",
                "code tables are delivered whole; remove the filter",
            ));
        }
        if x.period.is_some() {
            p.push(Problem::new(
                "extract.period",
                "code tables have no period; remove it",
            ));
        }
    }
    let has_owner_cols = columns
        .iter()
        .any(|f| matches!(f.source, catalog::Source::Owner(_)));
    if filter.has_owner_filter() && !has_owner_cols && report.is_some() {
        p.push(Problem::new(
            "extract.filter",
            "org_number, municipality and county filter on owners; use report technical_owners or owners (or owner columns in a custom report)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, message_at};
    use super::*;
    use crate::core::text::{Encoding, LineEnding};

    fn extract(toml_text: &str) -> (Option<ExtractSpec>, Vec<Problem>) {
        let raw: RawExtract = toml::from_str(toml_text).expect("an [extract] table");
        let mut p = Vec::new();
        (validate_extract(&raw, &mut p), p)
    }

    fn problems(toml_text: &str) -> Vec<Problem> {
        let (x, p) = extract(toml_text);
        assert!(x.is_none(), "{toml_text}: no problem found");
        p
    }

    #[test]
    fn a_report_alone_takes_its_columns_and_the_defaults() {
        let (x, p) = extract("report = \"technical\"");
        assert!(p.is_empty(), "{p:?}");
        let x = x.unwrap();
        assert_eq!(x.report, ReportKind::Technical);
        assert_eq!(
            x.columns.iter().map(|f| &f.name).collect::<Vec<_>>(),
            ReportKind::Technical
                .columns()
                .unwrap()
                .iter()
                .map(|f| &f.name)
                .collect::<Vec<_>>()
        );
        assert_eq!(x.format, Format::Dsv);
        assert_eq!(
            (x.encoding, x.line_ending),
            (Encoding::default(), LineEnding::default())
        );
        assert_eq!(x.period, None);
        assert_eq!(x.period_field, ReportKind::Technical.default_period_field());
        assert!(x.code_tables.is_empty());
        assert_eq!(x.filter, Filter::default());
    }

    #[test]
    fn a_custom_report_takes_its_columns_in_order() {
        let (x, p) = extract(
            "report = \"custom\"\ncolumns = [\"TEKN_KJM\", \"EIER_NAVN\"]\nformat = \"xlsx\"\n\
             period = { from = 2026-01-01, to = 2026-01-31 }\nperiod_field = \"ownership\"\n\
             code_tables = [\"make\", \"fuel\"]",
        );
        assert!(p.is_empty(), "{p:?}");
        let x = x.unwrap();
        assert_eq!(
            x.columns
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
            ["TEKN_KJM", "EIER_NAVN"]
        );
        assert_eq!(x.format, Format::Xlsx);
        assert_eq!(
            x.period,
            Some(PeriodSpec::Fixed {
                from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                to: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            })
        );
        assert_eq!(x.period_field, PeriodField::parse("ownership").unwrap());
        assert_eq!(x.code_tables, [CodeTable::Make, CodeTable::Fuel]);
    }

    #[test]
    fn every_relative_period_word_is_known() {
        for (word, spec) in [
            ("previous_day", PeriodSpec::PreviousDay),
            ("previous_week", PeriodSpec::PreviousWeek),
            ("previous_month", PeriodSpec::PreviousMonth),
            ("since_last_delivery", PeriodSpec::SinceLastDelivery),
        ] {
            let (x, p) = extract(&format!("report = \"technical\"\nperiod = \"{word}\""));
            assert!(p.is_empty(), "{p:?}");
            assert_eq!(x.unwrap().period, Some(spec));
        }
    }

    #[test]
    fn an_unknown_report_names_the_reports() {
        let p = problems("report = \"everything\"");
        assert_eq!(keys(&p), ["extract.report"]);
        assert_eq!(
            message_at(&p, "extract.report"),
            format!(
                "`everything` is not a report; use one of {}",
                ReportKind::ALL.map(|k| k.as_str()).join(", ")
            )
        );
    }

    #[test]
    fn columns_rules() {
        let p = problems("report = \"custom\"");
        assert_eq!(
            message_at(&p, "extract.columns"),
            "a custom report needs a columns list (catalog names like \"TEKN_KJM\")"
        );
        let p = problems("report = \"custom\"\ncolumns = []");
        assert_eq!(
            message_at(&p, "extract.columns"),
            "the columns list is empty"
        );
        let p = problems("report = \"technical\"\ncolumns = [\"TEKN_KJM\"]");
        assert_eq!(
            message_at(&p, "extract.columns"),
            "the `technical` report has fixed columns; use report = \"custom\" to choose columns"
        );
        let p = problems(
            "report = \"custom\"\ncolumns = [\"TEKN_KJM\", \"TEKN_KJM\", \"kjm\", \"NOPE\"]",
        );
        assert_eq!(
            keys(&p),
            [
                "extract.columns[1]",
                "extract.columns[2]",
                "extract.columns[3]"
            ]
        );
        assert_eq!(
            message_at(&p, "extract.columns[1]"),
            "`TEKN_KJM` is listed twice"
        );
        assert_eq!(
            message_at(&p, "extract.columns[2]"),
            "`kjm` is not a field of the catalog; `regdrop fields` lists them (did you mean `TEKN_KJM`?)"
        );
        assert_eq!(
            message_at(&p, "extract.columns[3]"),
            "`NOPE` is not a field of the catalog; `regdrop fields` lists them"
        );
    }

    #[test]
    fn format_and_period_rules() {
        let p = problems("report = \"technical\"\nformat = \"json\"");
        assert_eq!(
            message_at(&p, "extract.format"),
            "`json` is not a format; use \"dsv\", \"csv\" or \"xlsx\""
        );
        let p = problems("report = \"technical\"\nperiod = \"yesterday\"");
        assert_eq!(
            message_at(&p, "extract.period"),
            "`yesterday` is not a period; use previous_day, previous_week, previous_month, since_last_delivery or { from = 2026-01-01, to = 2026-01-31 }"
        );
        let p = problems(
            "report = \"technical\"\nperiod = { from = 2026-01-01T00:00:00, to = 2026-01-31 }",
        );
        assert_eq!(
            message_at(&p, "extract.period.from"),
            "write a plain date like 2026-01-31 (no time)"
        );
        let p = problems("report = \"technical\"\nperiod = { from = 2026-02-01, to = 2026-01-31 }");
        assert_eq!(
            message_at(&p, "extract.period.to"),
            "the period ends before it starts"
        );
    }

    #[test]
    fn period_field_rules() {
        let p = problems(
            "report = \"technical\"\nperiod = \"previous_day\"\nperiod_field = \"birthday\"",
        );
        assert_eq!(
            message_at(&p, "extract.period_field"),
            format!(
                "`birthday` is not a date field; use one of {}",
                PeriodField::ALL.map(|f| f.as_str()).join(", ")
            )
        );
        let p = problems("report = \"technical\"\nperiod_field = \"ownership\"");
        assert_eq!(
            message_at(&p, "extract.period_field"),
            "period_field has no effect without a period"
        );
    }

    #[test]
    fn code_table_rules() {
        let p = problems("report = \"technical\"\ncode_tables = [\"make\", \"make\", \"colours\"]");
        assert_eq!(
            keys(&p),
            ["extract.code_tables[1]", "extract.code_tables[2]"]
        );
        assert_eq!(
            message_at(&p, "extract.code_tables[1]"),
            "`make` is listed twice"
        );
        assert_eq!(
            message_at(&p, "extract.code_tables[2]"),
            format!(
                "`colours` is not a code table; use one of {}",
                CodeTable::ALL.map(|t| t.as_str()).join(", ")
            )
        );
        let p = problems(
            "report = \"code_tables\"\nperiod = \"previous_day\"\n[filter]\nfuel = [\"5\"]",
        );
        assert_eq!(
            keys(&p),
            ["extract.code_tables", "extract.filter", "extract.period"]
        );
        assert_eq!(
            message_at(&p, "extract.code_tables"),
            "report code_tables needs the tables to deliver, e.g. code_tables = [\"make\", \"fuel\"]"
        );
        assert_eq!(
            message_at(&p, "extract.filter"),
            "code tables are delivered whole; remove the filter"
        );
        assert_eq!(
            message_at(&p, "extract.period"),
            "code tables have no period; remove it"
        );
        let (x, p) = extract("report = \"code_tables\"\ncode_tables = [\"fuel\"]");
        assert!(p.is_empty(), "{p:?}");
        assert!(x.unwrap().columns.is_empty());
    }

    #[test]
    fn owner_filters_need_owner_columns() {
        let p = problems("report = \"technical\"\n[filter]\ncounty = [\"03\"]");
        assert_eq!(
            message_at(&p, "extract.filter"),
            "org_number, municipality and county filter on owners; use report technical_owners or owners (or owner columns in a custom report)"
        );
        let (_, p) = extract("report = \"owners\"\n[filter]\ncounty = [\"03\"]");
        assert!(p.is_empty(), "{p:?}");
    }
}
