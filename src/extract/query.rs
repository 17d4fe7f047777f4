//! Report definition + filters + period -> one SQL query over the register and its
//! parameters. Pure: builds text, runs nothing.

use crate::core::catalog::{Field, ReportKind, Role, Source};
use crate::core::config::{ExtractSpec, Filter};
use crate::core::period::Period;

/// The SQL engine a query is written for. One builder writes both; they differ only in
/// placeholders (`?N` / `$N`), `instr` / `strpos`, and the integer cast (SQLite's `CAST(x AS
/// INTEGER)` reads a leading number and gives 0 for none; PostgreSQL's would fail, so it
/// reads the same leading number with a pattern), and the owner joins of a block's query
/// ([`Query::ranged`]). Text columns are `COLLATE "C"` on PostgreSQL, so comparisons,
/// `upper` and `ORDER BY` behave as SQLite's byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect of the register at `location`.
    pub fn of(location: &crate::core::config::location::DbLocation) -> Dialect {
        match location {
            crate::core::config::location::DbLocation::Sqlite(_) => Dialect::Sqlite,
            crate::core::config::location::DbLocation::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// A query ready to run: `SELECT <columns> ... ORDER BY v.id` and its text parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: String,
    /// `SELECT count(*)` with the same joins and conditions.
    pub count: String,
    /// The select restricted to one block of vehicles, `lo <= v.id < hi`: the two bounds
    /// are the placeholders after `params` (a parallel extract reads block by block). On
    /// PostgreSQL the owner joins carry the bounds too.
    pub ranged: String,
    pub params: Vec<Param>,
    pub dialect: Dialect,
}

/// A parameter that cannot be written as an SQL literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a filter value holds a NUL character, which the register's text cannot hold: {0:?}")]
pub struct NulInValue(pub String);

/// A parameter as an SQL literal: an integer as its digits, text in single quotes with
/// each quote doubled and nothing else changed. The one place values are written into SQL
/// (PostgreSQL's `COPY (SELECT ...)` takes no bind parameters). Safe for both engines as
/// long as backslashes are not escapes: SQLite never treats them so, and the PostgreSQL
/// register sets `standard_conforming_strings = on` in its transaction. NUL is refused
/// (neither engine's text holds it; PostgreSQL would end the string there).
pub fn literal(p: &Param) -> Result<String, NulInValue> {
    match p {
        Param::Int(n) => Ok(n.to_string()),
        Param::Text(s) => {
            if s.contains('\0') {
                return Err(NulInValue(s.clone()));
            }
            let mut out = String::with_capacity(s.len() + 2);
            out.push('\'');
            for c in s.chars() {
                if c == '\'' {
                    out.push('\'');
                }
                out.push(c);
            }
            out.push('\'');
            Ok(out)
        }
    }
}

/// `sql` with each placeholder (`?N` or `$N`, outside quoted text) replaced by the literal of
/// `params[N-1]`, in one pass: a value that looks like a placeholder or a quote is never read
/// again as SQL.
pub fn render(sql: &str, params: &[Param]) -> Result<String, NulInValue> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    let (mut i, mut start) = (0, 0);
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                i += 1;
            }
            None if c == b'\'' || c == b'"' => {
                quote = Some(c);
                i += 1;
            }
            None if (c == b'?' || c == b'$') && b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let n: usize = sql[i + 1..j].parse().unwrap_or(0);
                // A number that is not one of ours is left as written.
                if let Some(p) = n.checked_sub(1).and_then(|k| params.get(k)) {
                    out.push_str(&sql[start..i]);
                    out.push_str(&literal(p)?);
                    start = j;
                }
                i = j;
            }
            None => i += 1,
        }
    }
    out.push_str(&sql[start..]);
    Ok(out)
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
    /// The SELECT with its parameters written in as SQL literals ([`render`]): what the
    /// PostgreSQL register runs in `COPY (...) TO STDOUT`, what `regdrop preview --sql`
    /// prints, and what the `sqlite3` or `psql` CLI runs to compare.
    pub fn inline(&self) -> Result<String, NulInValue> {
        render(&self.select, &self.params)
    }

    /// The count with its parameters written in.
    pub fn inline_count(&self) -> Result<String, NulInValue> {
        render(&self.count, &self.params)
    }

    /// The select of the block `from <= v.id < to` with its parameters written in (what a
    /// parallel read of a PostgreSQL register runs in `COPY (...) TO STDOUT`).
    pub fn inline_ranged(&self, from: i64, to: i64) -> Result<String, NulInValue> {
        let mut params = self.params.clone();
        params.extend([Param::Int(from), Param::Int(to)]);
        render(&self.ranged, &params)
    }
}

/// Builds the query for `spec` over `period` (if any), for `dialect`.
pub fn build(spec: &ExtractSpec, period: Option<&Period>, dialect: Dialect) -> Query {
    build_for(
        spec.report,
        &spec.columns,
        &spec.filter,
        period.map(|p| (spec.period_field.column(), p)),
        dialect,
    )
}

fn build_for(
    report: ReportKind,
    columns: &[Field],
    filter: &Filter,
    period: Option<(&str, &Period)>,
    dialect: Dialect,
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
    let Where { conds, params } = conditions(report, filter, period, dialect);
    let mark = match dialect {
        Dialect::Sqlite => '?',
        Dialect::Postgres => '$',
    };
    let (lo, hi) = (params.len() + 1, params.len() + 2);

    let mut count_joins = String::new();
    let mut ranged_joins = joins.clone();
    for r in &roles {
        let a = format!("o_{}", r.as_str());
        let on = format!(
            " LEFT JOIN ownership {a} ON {a}.vehicle_id = v.id AND {a}.role = '{}' AND {a}.to_date IS NULL",
            r.as_str()
        );
        if report == ReportKind::Owners && *r == Role::Eier {
            count_joins.push_str(&on);
        }
        joins.push_str(&on);
        ranged_joins.push_str(&on);
        // PostgreSQL does not carry the block's bounds over to the join by itself: with
        // them it reads the block's ownerships in one index range and merges (5.3 s per
        // million rows of technical_owners), without them it looks each vehicle's up
        // (8.3 s). SQLite looks each up either way.
        if dialect == Dialect::Postgres {
            ranged_joins.push_str(&format!(
                " AND {a}.vehicle_id >= {mark}{lo} AND {a}.vehicle_id < {mark}{hi}"
            ));
        }
    }

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
    let range = format!("v.id >= {mark}{lo} AND v.id < {mark}{hi}");
    let ranged_wh = match conds.is_empty() {
        true => format!(" WHERE {range}"),
        false => format!("{wh} AND {range}"),
    };
    Query {
        select: format!(
            "SELECT {} FROM vehicle v{joins}{wh} ORDER BY v.id",
            exprs.join(", ")
        ),
        ranged: format!(
            "SELECT {} FROM vehicle v{ranged_joins}{ranged_wh} ORDER BY v.id",
            exprs.join(", ")
        ),
        count: format!("SELECT count(*) FROM vehicle v{count_joins}{wh}"),
        params,
        dialect,
    }
}

/// The WHERE conditions of a report's filters and period, with their parameters in
/// placeholder order.
struct Where {
    conds: Vec<String>,
    params: Vec<Param>,
}

fn conditions(
    report: ReportKind,
    filter: &Filter,
    period: Option<(&str, &Period)>,
    dialect: Dialect,
) -> Where {
    let mut params = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    if report == ReportKind::Owners {
        conds.push("o_eier.id IS NOT NULL".into());
    }
    let mark = match dialect {
        Dialect::Sqlite => '?',
        Dialect::Postgres => '$',
    };
    let mut push = |v: Param| {
        params.push(v);
        format!("{mark}{}", params.len())
    };
    // SQLite's CAST(x AS INTEGER): the leading (signed) integer of the text, 0 for none.
    let as_integer = |col: &str| match dialect {
        Dialect::Sqlite => format!("CAST({col} AS INTEGER)"),
        Dialect::Postgres => {
            format!("coalesce(substring({col} from '^[[:space:]]*([+-]?[0-9]+)')::bigint, 0)")
        }
    };
    let contains = match dialect {
        Dialect::Sqlite => "instr",
        Dialect::Postgres => "strpos",
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
                    "{contains}(',' || v.tekn_drivst || ',', {}) > 0",
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
                "{} >= {}",
                as_integer("v.tekn_sitteplasser_totalt"),
                push(Param::Int(lo))
            ));
        }
        if let Some(hi) = hi {
            conds.push(format!(
                "{} <= {}",
                as_integer("v.tekn_sitteplasser_totalt"),
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
        let q = build_for(r, &c, &f, None, Dialect::Sqlite);
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
        let q = build_for(r, &c, &f, None, Dialect::Sqlite);
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
    fn literals_double_quotes_and_keep_everything_else() {
        let t = |s: &str| literal(&Param::Text(s.into())).unwrap();
        assert_eq!(t("TOYOTA"), "'TOYOTA'");
        assert_eq!(t("O'Brien"), "'O''Brien'");
        assert_eq!(t("'"), "''''");
        assert_eq!(t("a\\b"), "'a\\b'", "a backslash stays one backslash");
        assert_eq!(t("\\'"), "'\\'''");
        assert_eq!(
            t("x'); DROP TABLE vehicle;--"),
            "'x''); DROP TABLE vehicle;--'"
        );
        assert_eq!(t("line\nbreak"), "'line\nbreak'");
        assert_eq!(t(""), "''");
        assert_eq!(literal(&Param::Int(-7)).unwrap(), "-7");
        assert_eq!(
            literal(&Param::Int(i64::MAX)).unwrap(),
            "9223372036854775807"
        );
        assert!(literal(&Param::Text("a\0b".into())).is_err());
    }

    #[test]
    fn render_replaces_placeholders_once_and_never_inside_quotes() {
        let params = vec![
            Param::Text("$2 ?2 '".into()),
            Param::Int(5),
            Param::Text("x".into()),
        ];
        let sql = "a = $1 AND b >= $2 AND c IN ($3, '$1', \"$2\") AND d = $4";
        assert_eq!(
            render(sql, &params).unwrap(),
            "a = '$2 ?2 ''' AND b >= 5 AND c IN ('x', '$1', \"$2\") AND d = $4"
        );
        // ?10 is the tenth parameter, not the first followed by 0.
        let ten: Vec<Param> = (1..=10).map(Param::Int).collect();
        assert_eq!(render("?10 ?1", &ten).unwrap(), "10 1");
    }

    #[test]
    fn the_postgresql_dialect_differs_only_where_sqlite_does() {
        let f = Filter {
            fuel: vec!["5".into()],
            seats: Some((Some(2), Some(9))),
            make_codes: vec!["4360".into()],
            ..Filter::default()
        };
        let (r, c, f) = spec(ReportKind::TechnicalOwners, f);
        let lite = build_for(r, &c, &f, None, Dialect::Sqlite);
        let pg = build_for(r, &c, &f, None, Dialect::Postgres);
        assert_eq!(lite.params, pg.params);
        assert!(lite.select.contains("instr(") && pg.select.contains("strpos("));
        assert!(pg.select.contains("$1") && !pg.select.contains("?1"));
        let cast = "coalesce(substring(v.tekn_sitteplasser_totalt from '^[[:space:]]*([+-]?[0-9]+)')::bigint, 0)";
        assert!(pg.select.contains(&format!("{cast} >= $")), "{}", pg.select);
        let same = |s: &str| {
            s.replace("strpos(", "instr(")
                .replace('$', "?")
                .replace(cast, "CAST(v.tekn_sitteplasser_totalt AS INTEGER)")
        };
        assert_eq!(same(&pg.select), lite.select);
        assert_eq!(same(&pg.count), lite.count);
        // The blocks of a parallel read: on PostgreSQL the owner joins carry the bounds.
        let n = pg.params.len();
        let bounds = |a: &str| {
            format!(
                " AND {a}.vehicle_id >= ${} AND {a}.vehicle_id < ${}",
                n + 1,
                n + 2
            )
        };
        let mut pg_ranged = pg.ranged.clone();
        for a in ["o_eier", "o_medeier", "o_leasingtaker"] {
            assert!(pg_ranged.contains(&bounds(a)), "{a}: {}", pg.ranged);
            pg_ranged = pg_ranged.replace(&bounds(a), "");
        }
        assert_eq!(same(&pg_ranged), lite.ranged);
        let block = pg.inline_ranged(1, 17).unwrap();
        assert!(
            block.contains("o_eier.vehicle_id >= 1 AND o_eier.vehicle_id < 17"),
            "{block}"
        );
        assert!(
            block.contains("v.id >= 1 AND v.id < 17 ORDER BY v.id"),
            "{block}"
        );
        assert!(pg.inline().unwrap().contains("'4360'"));
    }

    #[test]
    fn counts_skip_joins_no_condition_uses() {
        let (r, c, f) = spec(ReportKind::TechnicalOwners, Filter::default());
        let q = build_for(r, &c, &f, None, Dialect::Sqlite);
        assert!(q.select.contains("LEFT JOIN ownership o_leasingtaker"));
        assert_eq!(q.count, "SELECT count(*) FROM vehicle v");
    }
}
