//! One vehicle record, section by section in the order its values are drawn: what the
//! vehicle is (kind, first registration, fuel, make and model), then the record's fields
//! (identity, registration, type code, engine, weights and body, axles and tyres, type
//! approval and emissions, ownerships and inspections).
//!
//! The order of the calls in [`Maker::vehicle`] is the order of the random draws, which is
//! the register's content: keep it.

mod approval;
mod body;
mod engine;
mod identity;
mod make;
mod ownership;
mod registration;
mod tyres;

use super::batch::{Batch, Record};
use super::maker::{pick_weighted, Maker};
use super::tables::{Kind, TABLES};
use make::MakeModel;

/// What a vehicle runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fuel {
    Petrol,
    Diesel,
    Electric,
    /// Plug-in hybrid (off-vehicle charging).
    PluginHybrid,
    /// Full hybrid (not chargeable).
    Hybrid,
    /// No engine (trailers, caravans).
    None,
}

/// Where a vehicle's registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Registered,
    Deregistered,
    Scrapped,
    Exported,
}

impl Status {
    /// The authority's status code.
    fn code(self) -> &'static str {
        match self {
            Status::Registered => "REGISTRERT",
            Status::Deregistered => "AVREGISTRERT",
            Status::Scrapped => "VRAKET",
            Status::Exported => "UTFORT",
        }
    }
}

/// What a vehicle is: drawn before any of its fields is written.
struct Vehicle {
    id: u64,
    kind: Kind,
    status: Status,
    /// First registration in Norway (day number).
    first_no: i32,
    /// First registration anywhere (before `first_no` for used imports).
    first: i32,
    /// The year of `first_no`.
    year: i32,
    /// The year of `first`.
    model_year: i32,
    used_import: bool,
    fuel: Fuel,
    make: MakeModel,
}

impl Vehicle {
    fn electric(&self) -> bool {
        self.fuel == Fuel::Electric
    }

    fn motorised(&self) -> bool {
        self.kind.motorised()
    }

    /// Whether the vehicle is one of `kinds`.
    fn is(&self, kinds: &[Kind]) -> bool {
        kinds.contains(&self.kind)
    }
}

impl Maker {
    /// One vehicle with its ownerships, appended to `b`.
    pub(super) fn vehicle(&mut self, id: u64, b: &mut Batch) {
        let kind = pick_weighted(&mut self.rng, &TABLES.kinds);
        let dates = self.first_registration(kind);
        let fuel = self.fuel(kind, dates.model_year);
        let make = self.make_and_model(kind, fuel, dates.model_year);
        let v = Vehicle {
            id,
            kind,
            status: dates.status,
            first_no: dates.first_no,
            first: dates.first,
            year: dates.year,
            model_year: dates.model_year,
            used_import: dates.used_import,
            fuel,
            make,
        };

        let mut r = Record::new(b);
        let plate_type = self.identity(&v, &mut r);
        let end = self.registration(&v, &mut r);
        let tk = self.type_code(&v, plate_type, &mut r);
        // Older records often lack the technical details.
        let detailed = v.model_year >= 1995 || self.chance(0.4);
        self.engine(&v, detailed, &mut r);
        let total_weight = self.weights_and_dimensions(&v, tk, detailed, &mut r);
        self.body(&v, detailed, &mut r);
        self.axles(&v, tk, total_weight, detailed, &mut r);
        self.tyres(&v, total_weight, detailed, &mut r);
        self.type_approval(&v, detailed, &mut r);
        self.emissions(&v, detailed, &mut r);
        let history = self.ownership_history(&v, end, &mut r);
        self.inspections(&v, end, &mut r);
        self.ownership_rows(&v, end, &history, r.b);
        r.finish(id);
    }
}
