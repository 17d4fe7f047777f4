//! The `[extract.filter]` table: year and seat ranges, makes (by code or by name through
//! the make table), vehicle groups, fuels, statuses and the owner filters (organisation
//! numbers, municipalities, counties) -> [`Filter`].

use super::super::raw::{RawFilter, RawRange};
use super::types::Filter;
use super::Problem;

/// The filter; every wrong entry is a problem at its own index.
pub(super) fn validate_filter(f: &RawFilter, p: &mut Vec<Problem>) -> Filter {
    let range = |r: &Option<RawRange>, key: &str, p: &mut Vec<Problem>| {
        r.map(|r| {
            if let (Some(a), Some(b)) = (r.min, r.max) {
                if a > b {
                    p.push(Problem::new(
                        format!("extract.filter.{key}"),
                        format!("min {a} is above max {b}"),
                    ));
                }
            }
            (r.min, r.max)
        })
    };
    let makes = crate::core::codes::CodeTable::Make.rows();
    let mut make_codes = Vec::new();
    for (i, m) in f.make.iter().enumerate() {
        let m = m.trim();
        if let Some((code, _)) = makes
            .iter()
            .find(|(c, n)| c == m || n.eq_ignore_ascii_case(m))
        {
            make_codes.push(code.clone());
        } else {
            let hint = makes
                .iter()
                .find(|(_, n)| n.to_ascii_uppercase().starts_with(&m.to_ascii_uppercase()))
                .map(|(c, n)| format!(" (did you mean {n} = {c}?)"))
                .unwrap_or_default();
            p.push(Problem::new(
                format!("extract.filter.make[{i}]"),
                format!("`{m}` is neither a make code nor a make name of the make table{hint}"),
            ));
        }
    }
    let digits = |list: &Vec<String>, key: &str, len: Option<usize>, p: &mut Vec<Problem>| {
        for (i, v) in list.iter().enumerate() {
            let ok = !v.is_empty()
                && v.chars().all(|c| c.is_ascii_digit())
                && len.is_none_or(|l| v.len() == l);
            if !ok {
                let what = match len {
                    Some(l) => format!("{l} digits"),
                    None => "digits".into(),
                };
                p.push(Problem::new(
                    format!("extract.filter.{key}[{i}]"),
                    format!("`{v}` must be {what} (quote it to keep leading zeros)"),
                ));
            }
        }
    };
    digits(&f.vehicle_group, "vehicle_group", None, p);
    digits(&f.fuel, "fuel", None, p);
    digits(&f.municipality, "municipality", Some(4), p);
    digits(&f.county, "county", Some(2), p);
    for (i, o) in f.org_number.iter().enumerate() {
        if !crate::core::ids::is_valid_org_number(o) {
            p.push(Problem::new(
                format!("extract.filter.org_number[{i}]"),
                format!("`{o}` is not a valid organisation number (9 digits, mod-11)"),
            ));
        }
    }
    Filter {
        first_registration_year: range(&f.first_registration_year, "first_registration_year", p),
        make_codes,
        model: f.model.clone(),
        vehicle_group: f.vehicle_group.clone(),
        fuel: f.fuel.clone(),
        hybrid_category: f.hybrid_category.clone(),
        seats: range(&f.seats, "seats", p),
        status: f.status.iter().map(|s| s.to_ascii_uppercase()).collect(),
        org_number: f.org_number.clone(),
        municipality: f.municipality.clone(),
        county: f.county.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, message_at};
    use super::*;

    fn filter(toml_text: &str) -> (Filter, Vec<Problem>) {
        let raw: RawFilter = toml::from_str(toml_text).expect("an [extract.filter] table");
        let mut p = Vec::new();
        (validate_filter(&raw, &mut p), p)
    }

    #[test]
    fn no_filter_restricts_nothing() {
        let (f, p) = filter("");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(f, Filter::default());
        assert!(!f.has_owner_filter());
    }

    #[test]
    fn makes_resolve_by_code_or_name_and_statuses_are_uppercased() {
        let (f, p) = filter(
            "make = [\"5750\", \" tesla \"]\nstatus = [\"registrert\"]\n\
             first_registration_year = { min = 2010 }\nseats = { min = 2, max = 9 }\n\
             vehicle_group = [\"101\"]\nfuel = [\"5\"]\nmunicipality = [\"0301\"]\ncounty = [\"03\"]\norg_number = [\"974760673\"]",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(f.make_codes, ["5750", "4360"]);
        assert_eq!(f.status, ["REGISTRERT"]);
        assert_eq!(f.first_registration_year, Some((Some(2010), None)));
        assert_eq!(f.seats, Some((Some(2), Some(9))));
        assert!(f.has_owner_filter());
    }

    #[test]
    fn an_unknown_make_is_refused_with_a_hint() {
        let (_, p) = filter("make = [\"5750\", \"VOLKSW\", \"Zzyzx\"]");
        assert_eq!(
            keys(&p),
            ["extract.filter.make[1]", "extract.filter.make[2]"]
        );
        assert_eq!(
            message_at(&p, "extract.filter.make[1]"),
            "`VOLKSW` is neither a make code nor a make name of the make table (did you mean VOLKSWAGEN = 5750?)"
        );
        assert_eq!(
            message_at(&p, "extract.filter.make[2]"),
            "`Zzyzx` is neither a make code nor a make name of the make table"
        );
    }

    #[test]
    fn codes_are_digits_of_their_length() {
        let (_, p) = filter(
            "vehicle_group = [\"1a\"]\nfuel = [\"\"]\nmunicipality = [\"301\"]\ncounty = [\"3\"]",
        );
        assert_eq!(
            keys(&p),
            [
                "extract.filter.vehicle_group[0]",
                "extract.filter.fuel[0]",
                "extract.filter.municipality[0]",
                "extract.filter.county[0]"
            ]
        );
        assert_eq!(
            message_at(&p, "extract.filter.vehicle_group[0]"),
            "`1a` must be digits (quote it to keep leading zeros)"
        );
        assert_eq!(
            message_at(&p, "extract.filter.municipality[0]"),
            "`301` must be 4 digits (quote it to keep leading zeros)"
        );
        assert_eq!(
            message_at(&p, "extract.filter.county[0]"),
            "`3` must be 2 digits (quote it to keep leading zeros)"
        );
    }

    #[test]
    fn org_numbers_and_ranges_are_checked() {
        let (_, p) = filter(
            "org_number = [\"974760673\", \"123\"]\nfirst_registration_year = { min = 2020, max = 2010 }\nseats = { min = 9, max = 2 }",
        );
        assert_eq!(
            keys(&p),
            [
                "extract.filter.org_number[1]",
                "extract.filter.first_registration_year",
                "extract.filter.seats"
            ]
        );
        assert_eq!(
            message_at(&p, "extract.filter.org_number[1]"),
            "`123` is not a valid organisation number (9 digits, mod-11)"
        );
        assert_eq!(
            message_at(&p, "extract.filter.first_registration_year"),
            "min 2020 is above max 2010"
        );
    }
}
