//! The generator's tables, parsed once from `data/generator_*` (see `data/README.md`): vehicle
//! kinds, makes and models, model years, electric-car makes and shares, early electric cars,
//! colours, tyres, words for personal plates and trades in organisation names.

use crate::register::refdata::{csv_rows, list};
use std::collections::HashMap;
use std::sync::LazyLock;

const KIND_CSV: &str = include_str!("../../../data/generator_kind.csv");
const MAKE_CSV: &str = include_str!("../../../data/generator_make.csv");
const EV_MAKE_CSV: &str = include_str!("../../../data/generator_ev_make.csv");
const MODEL_YEARS_CSV: &str = include_str!("../../../data/generator_model_years.csv");
const EARLY_EV_CSV: &str = include_str!("../../../data/generator_early_ev.csv");
const EV_SHARE_CSV: &str = include_str!("../../../data/generator_ev_share.csv");
const COLOUR_CSV: &str = include_str!("../../../data/generator_colour.csv");
const TYRE_CSV: &str = include_str!("../../../data/generator_tyre.csv");
const PERSONAL_PLATE_TXT: &str = include_str!("../../../data/generator_personal_plate.txt");
const TRADE_TXT: &str = include_str!("../../../data/generator_trade.txt");

/// What kind of vehicle a record is; each kind has its own makes and shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Car,
    Van,
    Camper,
    Truck,
    Bus,
    Trailer,
    Caravan,
    HeavyTrailer,
    Motorcycle,
    Moped,
    Tractor,
}

impl Kind {
    pub(super) const ALL: [Kind; 11] = [
        Kind::Car,
        Kind::Van,
        Kind::Camper,
        Kind::Truck,
        Kind::Bus,
        Kind::Trailer,
        Kind::Caravan,
        Kind::HeavyTrailer,
        Kind::Motorcycle,
        Kind::Moped,
        Kind::Tractor,
    ];

    /// The name in the `kind` columns of the data files.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Car => "car",
            Kind::Van => "van",
            Kind::Camper => "camper",
            Kind::Truck => "truck",
            Kind::Bus => "bus",
            Kind::Trailer => "trailer",
            Kind::Caravan => "caravan",
            Kind::HeavyTrailer => "heavy_trailer",
            Kind::Motorcycle => "motorcycle",
            Kind::Moped => "moped",
            Kind::Tractor => "tractor",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the kind has an engine (trailers and caravans do not).
    pub(super) fn motorised(self) -> bool {
        !matches!(self, Kind::Trailer | Kind::Caravan | Kind::HeavyTrailer)
    }
}

/// A make of one kind: its code and name (as in `data/merkekode.csv`), weight among the
/// kind's makes, VIN manufacturer prefix (empty = random) and models.
#[derive(Debug)]
pub(super) struct Make {
    pub(super) code: &'static str,
    pub(super) name: &'static str,
    pub(super) weight: u32,
    pub(super) wmi: &'static str,
    pub(super) models: Vec<&'static str>,
    pub(super) electric_models: Vec<&'static str>,
}

/// An electric car from before the modern ones, for model years from `first_year` on.
#[derive(Debug)]
pub(super) struct EarlyEv {
    pub(super) code: &'static str,
    pub(super) name: &'static str,
    pub(super) model: &'static str,
    pub(super) first_year: i32,
}

/// A car tyre with its rim and service description.
#[derive(Debug, Clone, Copy)]
pub(super) struct CarTyre {
    pub(super) tyre: &'static str,
    pub(super) rim: &'static str,
    pub(super) load_index: &'static str,
    pub(super) speed_index: &'static str,
    pub(super) press_in: &'static str,
}

/// All the generator's tables. Rows keep the order of their file: the weighted draws
/// depend on it.
#[derive(Debug)]
pub(super) struct Tables {
    /// Every kind with its weight in the register.
    pub(super) kinds: Vec<(Kind, u32)>,
    /// The makes of each kind, indexed by `Kind as usize`.
    makes: Vec<Vec<Make>>,
    /// Make codes of new electric cars with their weights.
    pub(super) ev_makes: Vec<(&'static str, u32)>,
    model_years: HashMap<&'static str, (i32, i32)>,
    /// Newest first.
    early_evs: Vec<EarlyEv>,
    /// (first year, share), oldest first.
    ev_shares: Vec<(i32, f64)>,
    /// Colour codes with their weights.
    pub(super) colours: Vec<(&'static str, u32)>,
    /// From small/old to large/new.
    pub(super) car_tyres: Vec<CarTyre>,
    pub(super) trailer_tyres: Vec<&'static str>,
    pub(super) personal_plates: Vec<&'static str>,
    pub(super) trades: Vec<&'static str>,
}

impl Tables {
    /// The makes of a kind.
    pub(super) fn makes(&self, kind: Kind) -> &[Make] {
        &self.makes[kind as usize]
    }

    /// Whether `model` was sold in `year` (models without listed years always were).
    pub(super) fn model_sold(&self, model: &str, year: i32) -> bool {
        self.model_years
            .get(model)
            .is_none_or(|&(from, to)| (from..=to).contains(&year))
    }

    /// The early electric car that stands in for a model year.
    pub(super) fn early_ev(&self, year: i32) -> &EarlyEv {
        self.early_evs
            .iter()
            .find(|e| e.first_year <= year)
            .unwrap_or(&self.early_evs[self.early_evs.len() - 1])
    }

    /// Share of electric cars among new registrations in a year.
    pub(super) fn ev_share(&self, year: i32) -> f64 {
        self.ev_shares
            .iter()
            .rev()
            .find(|s| s.0 <= year)
            .unwrap_or(&self.ev_shares[0])
            .1
    }
}

/// The parsed tables (parsed on first use).
pub(super) static TABLES: LazyLock<Tables> = LazyLock::new(parse);

/// The rows of `text` (from `file`), each checked to have `columns` fields.
fn rows(
    file: &'static str,
    text: &'static str,
    columns: usize,
) -> impl Iterator<Item = Vec<&'static str>> {
    csv_rows(text).inspect(move |r| {
        assert_eq!(r.len(), columns, "data/{file}: row {r:?}");
    })
}

fn number<T: std::str::FromStr>(file: &str, s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| panic!("data/{file}: {s:?} is not a number"))
}

/// A year column; empty means `empty`.
fn year(file: &str, s: &str, empty: i32) -> i32 {
    if s.is_empty() {
        empty
    } else {
        number(file, s)
    }
}

fn kind(file: &str, s: &str) -> Kind {
    Kind::from_name(s).unwrap_or_else(|| panic!("data/{file}: unknown kind {s:?}"))
}

/// A `|`-separated list; empty means none.
fn names(s: &'static str) -> Vec<&'static str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('|').map(str::trim).collect()
    }
}

fn parse() -> Tables {
    let f = "generator_kind.csv";
    let kinds = rows(f, KIND_CSV, 2)
        .map(|r| (kind(f, r[0]), number(f, r[1])))
        .collect();
    let f = "generator_make.csv";
    let mut makes: Vec<Vec<Make>> = Kind::ALL.iter().map(|_| Vec::new()).collect();
    for r in rows(f, MAKE_CSV, 7) {
        makes[kind(f, r[0]) as usize].push(Make {
            code: r[1],
            name: r[2],
            weight: number(f, r[3]),
            wmi: r[4],
            models: names(r[5]),
            electric_models: names(r[6]),
        });
    }
    let f = "generator_ev_make.csv";
    let ev_makes = rows(f, EV_MAKE_CSV, 3)
        .map(|r| (r[0], number(f, r[2])))
        .collect();
    let f = "generator_model_years.csv";
    let mut model_years = HashMap::new();
    for r in rows(f, MODEL_YEARS_CSV, 3) {
        // The first row of a model counts.
        model_years
            .entry(r[0])
            .or_insert((year(f, r[1], i32::MIN), year(f, r[2], i32::MAX)));
    }
    let f = "generator_early_ev.csv";
    let mut early_evs: Vec<EarlyEv> = rows(f, EARLY_EV_CSV, 4)
        .map(|r| EarlyEv {
            code: r[0],
            name: r[1],
            model: r[2],
            first_year: year(f, r[3], i32::MIN),
        })
        .collect();
    early_evs.sort_by_key(|e| std::cmp::Reverse(e.first_year));
    let f = "generator_ev_share.csv";
    let mut ev_shares: Vec<(i32, f64)> = rows(f, EV_SHARE_CSV, 2)
        .map(|r| (year(f, r[0], i32::MIN), number(f, r[1])))
        .collect();
    ev_shares.sort_by_key(|s| s.0);
    let f = "generator_colour.csv";
    let colours = rows(f, COLOUR_CSV, 2)
        .map(|r| (r[0], number(f, r[1])))
        .collect();
    let f = "generator_tyre.csv";
    let (mut car_tyres, mut trailer_tyres) = (Vec::new(), Vec::new());
    for r in rows(f, TYRE_CSV, 6) {
        match r[0] {
            "car" => car_tyres.push(CarTyre {
                tyre: r[1],
                rim: r[2],
                load_index: r[3],
                speed_index: r[4],
                press_in: r[5],
            }),
            "trailer" => trailer_tyres.push(r[1]),
            other => panic!("data/{f}: unknown use {other:?}"),
        }
    }
    Tables {
        kinds,
        makes,
        ev_makes,
        model_years,
        early_evs,
        ev_shares,
        colours,
        car_tyres,
        trailer_tyres,
        personal_plates: list(PERSONAL_PLATE_TXT).collect(),
        trades: list(TRADE_TXT).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::schema;
    use std::collections::HashSet;

    fn codes(text: &str) -> HashSet<(String, String)> {
        schema::parse_code_csv(text).into_iter().collect()
    }

    /// The first column of a code table with notes before its header.
    fn keys(text: &'static str) -> HashSet<&'static str> {
        csv_rows(text).map(|r| r[0]).collect()
    }

    #[test]
    fn makes_exist_in_the_code_table() {
        let t = &*TABLES;
        let codes = codes(schema::CODE_TABLES[0].1);
        for kind in Kind::ALL {
            let makes = t.makes(kind);
            assert!(!makes.is_empty(), "{kind:?}");
            let unique: HashSet<&str> = makes.iter().map(|m| m.code).collect();
            assert_eq!(unique.len(), makes.len(), "make codes of {kind:?}");
            for m in makes {
                assert!(
                    codes.contains(&(m.code.to_string(), m.name.to_string())),
                    "{} {}",
                    m.code,
                    m.name
                );
                assert!(
                    !m.models.is_empty() || !m.electric_models.is_empty(),
                    "{}",
                    m.name
                );
            }
        }
        for e in &t.early_evs {
            assert!(
                codes.contains(&(e.code.to_string(), e.name.to_string())),
                "{} {}",
                e.code,
                e.name
            );
        }
        assert!(
            t.model_sold("GOLF", 1990) && !t.model_sold("ID.3", 2015) && t.model_sold("NOPE", 1900)
        );
        for (code, _) in &t.ev_makes {
            let m = t.makes(Kind::Car).iter().find(|m| m.code == *code);
            let m = m.expect(code);
            assert!(
                !m.electric_models.is_empty(),
                "{code} has no electric models"
            );
        }
        // The make column of the electric-car makes is the car make's name.
        for r in csv_rows(EV_MAKE_CSV) {
            let m = t.makes(Kind::Car).iter().find(|m| m.code == r[0]).unwrap();
            assert_eq!(m.name, r[1], "generator_ev_make.csv {}", r[0]);
        }
    }

    #[test]
    fn every_kind_has_a_weight_and_the_draw_tables_are_usable() {
        let t = &*TABLES;
        for kind in Kind::ALL {
            let n = t.kinds.iter().filter(|k| k.0 == kind).count();
            assert_eq!(n, 1, "{kind:?}");
        }
        assert!(t.kinds.iter().map(|k| k.1).sum::<u32>() > 0);
        assert!(t.colours.iter().map(|c| c.1).sum::<u32>() > 0);
        assert!(t.ev_makes.iter().map(|c| c.1).sum::<u32>() > 0);
        assert!(!t.car_tyres.is_empty() && !t.trailer_tyres.is_empty());
        assert!(!t.personal_plates.is_empty() && !t.trades.is_empty());
        for w in &t.personal_plates {
            assert!(
                !w.is_empty() && w.len() <= 7 && w.bytes().all(|b| b.is_ascii_uppercase()),
                "{w}"
            );
        }
    }

    #[test]
    fn codes_of_colours_and_tyres_exist() {
        let t = &*TABLES;
        let colours = keys(include_str!("../../../data/farge.csv"));
        for (c, _) in &t.colours {
            assert!(colours.contains(c), "colour {c}");
        }
        let loads = keys(include_str!("../../../data/belastningsindeks.csv"));
        let speeds = keys(include_str!("../../../data/hastighetsindeks.csv"));
        for tyre in &t.car_tyres {
            assert!(loads.contains(tyre.load_index), "{tyre:?}");
            assert!(speeds.contains(tyre.speed_index), "{tyre:?}");
        }
    }

    #[test]
    fn year_tables() {
        let t = &*TABLES;
        assert_eq!(t.ev_share(1990), 0.002);
        assert_eq!(t.ev_share(2010), 0.002);
        assert_eq!(t.ev_share(2012), 0.03);
        assert_eq!(t.ev_share(2024), 0.89);
        assert_eq!(t.ev_share(2030), 0.95);
        assert_eq!(t.early_ev(1999).name, "THINK");
        assert_eq!(t.early_ev(1998).name, "BUDDY");
        assert_eq!(t.early_ev(1900).name, "BUDDY");
    }
}
