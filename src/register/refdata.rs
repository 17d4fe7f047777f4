//! Embedded reference data for synthetic people and organisations (pure): municipalities
//! (`data/kommune.csv`, valid from 1 January 2024), a coarse postal-code table, approximate
//! populations, common first names, surnames and street names.
//!
//! `data/postnummer.csv` is a **coarse** mapping: the main postal codes and places of about
//! 170 municipalities that cover every county, not Posten's full register (some codes may be
//! post-box codes or belong to a neighbouring municipality in reality).
//! `data/kommune_innbyggere.csv` holds approximate populations in thousands (rounded, 2024),
//! used only as weights for where synthetic owners live.

use std::sync::OnceLock;

/// `kode;navn` of the municipalities valid from 1 January 2024 (357 rows).
pub const KOMMUNE_CSV: &str = include_str!("../../data/kommune.csv");
const POSTNUMMER_CSV: &str = include_str!("../../data/postnummer.csv");
const INNBYGGERE_CSV: &str = include_str!("../../data/kommune_innbyggere.csv");
const FORNAVN_TXT: &str = include_str!("../../data/fornavn.txt");
const ETTERNAVN_TXT: &str = include_str!("../../data/etternavn.txt");
const GATENAVN_TXT: &str = include_str!("../../data/gatenavn.txt");

/// One postal code of a municipality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostalCode {
    pub code: &'static str,
    pub place: &'static str,
}

/// A municipality where synthetic owners may live: its number, name, weight and postal codes.
#[derive(Debug, Clone)]
pub struct Municipality {
    pub number: &'static str,
    pub name: &'static str,
    /// Approximate inhabitants in thousands (a sampling weight).
    pub weight: u32,
    pub postal: Vec<PostalCode>,
}

/// All the embedded reference data, parsed once.
#[derive(Debug)]
pub struct RefData {
    /// Every municipality (number, name), sorted by number.
    pub municipalities: Vec<(&'static str, &'static str)>,
    /// The municipalities with postal codes and weights (where owners are placed).
    pub places: Vec<Municipality>,
    pub male_names: Vec<&'static str>,
    pub female_names: Vec<&'static str>,
    pub surnames: Vec<&'static str>,
    pub streets: Vec<&'static str>,
}

/// The rows of an embedded `;`-separated table: notes (`#` lines before the header) and the
/// header skipped, blank lines left out, fields trimmed.
pub(super) fn csv_rows(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(';').map(str::trim).collect())
}

/// The entries of an embedded list (one a line; `#` lines and blank lines left out).
pub(super) fn list(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

impl RefData {
    fn parse() -> RefData {
        let municipalities: Vec<(&str, &str)> = csv_rows(KOMMUNE_CSV)
            .filter(|r| r.len() == 2)
            .map(|r| (r[0], r[1]))
            .collect();
        let name_of = |n: &str| municipalities.iter().find(|m| m.0 == n).map(|m| m.1);
        let mut places: Vec<Municipality> = Vec::new();
        for r in csv_rows(INNBYGGERE_CSV).filter(|r| r.len() == 2) {
            let (Some(name), Ok(weight)) = (name_of(r[0]), r[1].parse::<u32>()) else {
                continue;
            };
            places.push(Municipality {
                number: r[0],
                name,
                weight,
                postal: Vec::new(),
            });
        }
        for r in csv_rows(POSTNUMMER_CSV).filter(|r| r.len() == 3) {
            if let Some(m) = places.iter_mut().find(|m| m.number == r[2]) {
                m.postal.push(PostalCode {
                    code: r[0],
                    place: r[1],
                });
            }
        }
        places.retain(|m| !m.postal.is_empty() && m.weight > 0);
        let mut male_names = Vec::new();
        let mut female_names = Vec::new();
        for l in list(FORNAVN_TXT) {
            match l.split_once(' ') {
                Some(("M", n)) => male_names.push(n),
                Some(("F", n)) => female_names.push(n),
                _ => {}
            }
        }
        RefData {
            municipalities,
            places,
            male_names,
            female_names,
            surnames: list(ETTERNAVN_TXT).collect(),
            streets: list(GATENAVN_TXT).collect(),
        }
    }
}

/// The parsed reference data (parsed on first use).
pub fn refdata() -> &'static RefData {
    static DATA: OnceLock<RefData> = OnceLock::new();
    DATA.get_or_init(RefData::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn municipalities_cover_every_county() {
        let r = refdata();
        assert_eq!(r.municipalities.len(), 357);
        let counties: Vec<&str> =
            crate::register::schema::parse_code_csv(include_str!("../../data/fylke.csv"))
                .into_iter()
                .map(|(c, _)| Box::leak(c.into_boxed_str()) as &str)
                .collect();
        for c in &counties {
            assert!(
                r.municipalities.iter().any(|m| m.0.starts_with(c)),
                "county {c}"
            );
            assert!(
                r.places.iter().any(|m| m.number.starts_with(c)),
                "places in {c}"
            );
        }
        for m in &r.municipalities {
            assert!(
                m.0.len() == 4 && m.0.bytes().all(|b| b.is_ascii_digit()),
                "{m:?}"
            );
            assert!(counties.contains(&&m.0[..2]), "{m:?}");
        }
        assert_eq!(
            r.municipalities.iter().find(|m| m.0 == "0301").unwrap().1,
            "Oslo"
        );
        assert_eq!(
            r.municipalities.iter().find(|m| m.0 == "4601").unwrap().1,
            "Bergen"
        );
        assert!(r.places.len() >= 60, "{}", r.places.len());
        for m in &r.places {
            for p in &m.postal {
                assert!(
                    p.code.len() == 4 && p.code.bytes().all(|b| b.is_ascii_digit()),
                    "{p:?}"
                );
                assert!(!p.place.is_empty());
            }
        }
    }

    #[test]
    fn names_are_there_and_clean() {
        let r = refdata();
        assert!(r.male_names.len() > 50 && r.female_names.len() > 50);
        assert!(r.surnames.len() > 100 && r.streets.len() > 80);
        for s in r
            .male_names
            .iter()
            .chain(&r.female_names)
            .chain(&r.surnames)
            .chain(&r.streets)
        {
            assert!(!s.contains(['¤', ';', '\r', '\n']), "{s}");
        }
    }
}
