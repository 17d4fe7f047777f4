//! Report definition + filters + period -> one SQL query over the register and its
//! parameters. Pure: builds text, runs nothing.

use crate::core::catalog::{Field, ReportKind, Role, Source};
use crate::core::config::{ExtractSpec, Filter};
use crate::core::period::Period;

/// A query ready to run: `SELECT <columns> ... ORDER BY v.id` and its text parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: String,
    /// `SELECT count(*)` with the same joins and conditions.
    pub count: String,
    pub params: Vec<Param>,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(s) => s.to_sql(),
            Param::Int(i) => i.to_sql(),
        }
    }
}

impl Query {
    /// The SELECT with its parameters written in as SQL literals, for operators
    /// (`regdrop preview --sql`) and for comparing with the `sqlite3` CLI.
    pub fn inline(&self) -> String {
        let mut out = self.select.clone();
        // Highest numbers first so ?1 does not eat the start of ?10.
        for (i, p) in self.params.iter().enumerate().rev() {
            let lit = match p {
                Param::Text(s) => format!("'{}'", s.replace('\'', "''")),
                Param::Int(n) => n.to_string(),
            };
            out = out.replace(&format!("?{}", i + 1), &lit);
        }
        out
    }
}

/// Builds the query for `spec` over `period` (if any).
pub fn build(spec: &ExtractSpec, period: Option<&Period>) -> Query {
    build_for(
        spec.report,
        &spec.columns,
        &spec.filter,
        period.map(|p| (spec.period_field.column(), p)),
    )
}

fn build_for(
    report: ReportKind,
    columns: &[Field],
    filter: &Filter,
    period: Option<(&str, &Period)>,
) -> Query {
    let mut joins = String::new();
    let mut roles: Vec<Role> = Vec::new();
    for f in columns {
        if let Source::Owner(r) = f.source {
            if !roles.contains(&r) {
                roles.push(r);
            }
        }
    }
    if report == ReportKind::Owners && !roles.contains(&Role::Eier) {
        roles.push(Role::Eier);
    }
    roles.sort_by_key(|r| Role::ALL.iter().position(|x| x == r));
    if columns.iter().any(|f| f.source == Source::Code) {
        joins.push_str(" LEFT JOIN code_vehicle_group kg ON kg.code = v.tekn_kjtgrp");
    }
    // The count needs only the joins the conditions use (the owner join of `owners`):
    // each other join would cost an index lookup per vehicle for nothing (at most one
    // current row per vehicle and role).
    let mut count_joins = String::new();
    for r in &roles {
        let a = format!("o_{}", r.as_str());
        let join = format!(
            " LEFT JOIN ownership {a} ON {a}.vehicle_id = v.id AND {a}.role = '{}' AND {a}.to_date IS NULL",
            r.as_str()
        );
        if report == ReportKind::Owners && *r == Role::Eier {
            count_joins.push_str(&join);
        }
        joins.push_str(&join);
    }

    let Where { conds, params } = conditions(report, filter, period);

    // Aliased to the report names, so any SQLite client prints the same header.
    let exprs: Vec<String> = columns
        .iter()
        .map(|f| format!("{} AS \"{}\"", f.sql, f.name))
        .collect();
    let wh = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    Query {
        select: format!(
            "SELECT {} FROM vehicle v{joins}{wh} ORDER BY v.id",
            exprs.join(", ")
        ),
        count: format!("SELECT count(*) FROM vehicle v{count_joins}{wh}"),
        params,
    }
}

/// The WHERE conditions of a report's filters and period, with their parameters in
/// placeholder order.
struct Where {
    conds: Vec<String>,
    params: Vec<Param>,
}

fn conditions(report: ReportKind, filter: &Filter, period: Option<(&str, &Period)>) -> Where {
    let mut params = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    if report == ReportKind::Owners {
        conds.push("o_eier.id IS NOT NULL".into());
    }
    let mut push = |v: Param| {
        params.push(v);
        format!("?{}", params.len())
    };
    let any_of = |expr: &str,
                  values: &[String],
                  conds: &mut Vec<String>,
                  push: &mut dyn FnMut(Param) -> String| {
        if !values.is_empty() {
            let ps: Vec<String> = values
                .iter()
                .map(|v| push(Param::Text(v.clone())))
                .collect();
            conds.push(format!("{expr} IN ({})", ps.join(", ")));
        }
    };
    if let Some((lo, hi)) = filter.first_registration_year {
        if let Some(lo) = lo {
            conds.push(format!(
                "v.tekn_reg_f_g >= {}",
                push(Param::Text(format!("{lo:04}0101")))
            ));
        }
        if let Some(hi) = hi {
            conds.push(format!(
                "v.tekn_reg_f_g <= {}",
                push(Param::Text(format!("{hi:04}1231")))
            ));
        }
    }
    any_of("v.tekn_merke", &filter.make_codes, &mut conds, &mut push);
    let models: Vec<String> = filter.model.iter().map(|m| m.to_uppercase()).collect();
    any_of("upper(v.tekn_modell)", &models, &mut conds, &mut push);
    any_of(
        "v.tekn_kjtgrp",
        &filter.vehicle_group,
        &mut conds,
        &mut push,
    );
    any_of(
        "v.tekn_hybrid_kategori",
        &filter.hybrid_category,
        &mut conds,
        &mut push,
    );
    any_of("v.tekn_reg_status", &filter.status, &mut conds, &mut push);
    if !filter.fuel.is_empty() {
        // Multi-valued: "1,5,5" holds fuel 5 when ",1,5,5," contains ",5,".
        let ors: Vec<String> = filter
            .fuel
            .iter()
            .map(|f| {
                format!(
                    "instr(',' || v.tekn_drivst || ',', {}) > 0",
                    push(Param::Text(format!(",{f},")))
                )
            })
            .collect();
        conds.push(format!("({})", ors.join(" OR ")));
    }
    if let Some((lo, hi)) = filter.seats {
        conds.push("v.tekn_sitteplasser_totalt IS NOT NULL".into());
        if let Some(lo) = lo {
            conds.push(format!(
                "CAST(v.tekn_sitteplasser_totalt AS INTEGER) >= {}",
                push(Param::Int(lo))
            ));
        }
        if let Some(hi) = hi {
            conds.push(format!(
                "CAST(v.tekn_sitteplasser_totalt AS INTEGER) <= {}",
                push(Param::Int(hi))
            ));
        }
    }
    if filter.has_owner_filter() {
        // `owners` filters on the owner it shows; other reports on any current role.
        let role = if report == ReportKind::Owners {
            " AND o.role = 'eier'"
        } else {
            ""
        };
        let mut inner = vec![format!("o.vehicle_id = v.id AND o.to_date IS NULL{role}")];
        any_of("o.org_number", &filter.org_number, &mut inner, &mut push);
        any_of(
            "o.municipality",
            &filter.municipality,
            &mut inner,
            &mut push,
        );
        any_of(
            "substr(o.municipality, 1, 2)",
            &filter.county,
            &mut inner,
            &mut push,
        );
        conds.push(format!(
            "EXISTS (SELECT 1 FROM ownership o WHERE {})",
            inner.join(" AND ")
        ));
    }
    if let Some((col, p)) = period {
        let (from, to) = p.bounds();
        if let Some(from) = from {
            conds.push(format!("v.{col} >= {}", push(Param::Text(from))));
        }
        conds.push(format!("v.{col} <= {}", push(Param::Text(to))));
    }
    Where { conds, params }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::ReportKind;

    fn spec(report: ReportKind, filter: Filter) -> (ReportKind, Vec<Field>, Filter) {
        (report, report.columns().unwrap(), filter)
    }

    #[test]
    fn technical_without_filters_is_a_plain_scan() {
        let (r, c, f) = spec(ReportKind::Technical, Filter::default());
        let q = build_for(r, &c, &f, None);
        assert!(q.select.starts_with(
            "SELECT v.tekn_kjm AS \"TEKN_KJM\", v.tekn_kjm_persj AS \"TEKN_KJM_PERSJ\","
        ));
        assert!(q.select.ends_with("FROM vehicle v ORDER BY v.id"));
        assert!(q.params.is_empty());
    }

    #[test]
    fn filters_become_parameters() {
        let f = Filter {
            first_registration_year: Some((Some(2015), Some(2020))),
            make_codes: vec!["4360".into()],
            fuel: vec!["5".into()],
            seats: Some((Some(2), None)),
            county: vec!["03".into()],
            ..Filter::default()
        };
        let (r, c, f) = spec(ReportKind::Owners, f);
        let q = build_for(r, &c, &f, None);
        assert!(q.select.contains("LEFT JOIN ownership o_eier"));
        assert!(q.select.contains("o_eier.id IS NOT NULL"));
        assert!(q.select.contains("EXISTS (SELECT 1 FROM ownership o WHERE o.vehicle_id = v.id AND o.to_date IS NULL AND o.role = 'eier'"));
        assert_eq!(q.params[0], Param::Text("20150101".into()));
        assert_eq!(q.params[1], Param::Text("20201231".into()));
        assert!(q.params.contains(&Param::Text(",5,".into())));
        assert!(q.params.contains(&Param::Int(2)));
        assert!(
            q.count.contains("LEFT JOIN ownership o_eier"),
            "owners counts owned vehicles"
        );
    }

    #[test]
    fn counts_skip_joins_no_condition_uses() {
        let (r, c, f) = spec(ReportKind::TechnicalOwners, Filter::default());
        let q = build_for(r, &c, &f, None);
        assert!(q.select.contains("LEFT JOIN ownership o_leasingtaker"));
        assert_eq!(q.count, "SELECT count(*) FROM vehicle v");
    }
}
