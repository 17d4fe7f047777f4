//! Make and model: a make of the vehicle's kind (by weight; electric vehicles from the
//! makes with electric models), a model sold in its model year, the long tail of rare car
//! makes, and the early electric cars.

use super::Fuel;
use crate::register::generate::maker::{pick_make, pick_weighted, Maker};
use crate::register::generate::plates::PLATE_LETTERS;
use crate::register::generate::tables::{Kind, Make, TABLES};
use rand::Rng;

/// The make and model of a vehicle.
pub(super) struct MakeModel {
    pub(super) code: String,
    pub(super) name: String,
    pub(super) model: String,
    /// The VIN manufacturer prefix (empty = random).
    pub(super) wmi: &'static str,
}

impl Maker {
    /// A make and a model for a new vehicle.
    pub(super) fn make_and_model(&mut self, kind: Kind, fuel: Fuel, model_year: i32) -> MakeModel {
        let electric = fuel == Fuel::Electric;
        if kind == Kind::Car && !electric && self.chance(0.015) {
            return self.rare_car();
        }
        let m = self.make(kind, electric);
        let models = if electric && !m.electric_models.is_empty() {
            &m.electric_models
        } else if !m.models.is_empty() {
            &m.models
        } else {
            &m.electric_models
        };
        // A few tries for a model sold in that year; early electric cars that no listed
        // model fits become the Norwegian THINK or BUDDY.
        let mut model = models[self.rng.gen_range(0..models.len())];
        for _ in 0..5 {
            if TABLES.model_sold(model, model_year) {
                break;
            }
            model = models[self.rng.gen_range(0..models.len())];
        }
        if electric && kind == Kind::Car && !TABLES.model_sold(model, model_year) {
            let e = TABLES.early_ev(model_year);
            MakeModel {
                code: e.code.to_string(),
                name: e.name.to_string(),
                model: e.model.to_string(),
                wmi: "",
            }
        } else {
            MakeModel {
                code: m.code.to_string(),
                name: m.name.to_string(),
                model: model.to_string(),
                wmi: m.wmi,
            }
        }
    }

    /// The long tail: any make of the authority's table, with a made-up model.
    fn rare_car(&mut self) -> MakeModel {
        let (code, name) = self.all_makes[self.rng.gen_range(0..self.all_makes.len())].clone();
        let model = format!(
            "{}{}",
            PLATE_LETTERS[self.rng.gen_range(0..PLATE_LETTERS.len())] as char,
            self.rng.gen_range(1..999)
        );
        MakeModel {
            code,
            name,
            model,
            wmi: "",
        }
    }

    /// A make of `kind`: electric cars by the electric-car weights, other electric vehicles
    /// among the makes with electric models (all equally likely), the rest by weight.
    fn make(&mut self, kind: Kind, electric: bool) -> &'static Make {
        let table = TABLES.makes(kind);
        if kind == Kind::Car && electric {
            let code = pick_weighted(&mut self.rng, &TABLES.ev_makes);
            table.iter().find(|m| m.code == code).unwrap_or(&table[0])
        } else if electric {
            let evs: Vec<&Make> = table
                .iter()
                .filter(|m| !m.electric_models.is_empty())
                .collect();
            if evs.is_empty() {
                pick_make(&mut self.rng, table)
            } else {
                evs[self.rng.gen_range(0..evs.len())]
            }
        } else {
            pick_make(&mut self.rng, table)
        }
    }
}
