//! Identity: the plate (by kind, age and fuel), a personal plate now and then, the plate
//! type, and the chassis number (a VIN for most newer vehicles).

use super::{Status, Vehicle};
use crate::register::generate::batch::Record;
use crate::register::generate::fields::{KJM, KJM_FARGE, KJM_PERSJ, UNR};
use crate::register::generate::maker::{pick, Maker};
use crate::register::generate::plates::PlateSeries;
use crate::register::generate::tables::{Kind, TABLES};
use rand::Rng;

impl Maker {
    /// Plate, personal plate, plate type and chassis number; returns the plate type.
    pub(super) fn identity(&mut self, v: &Vehicle, r: &mut Record<'_>) -> &'static str {
        let five = v.is(&[Kind::Car, Kind::Van, Kind::Camper, Kind::Truck, Kind::Bus]);
        let old_plate = v.model_year < 1972 && self.chance(0.5);
        let e_series = v.electric() && v.kind == Kind::Car && self.chance(0.93);
        let series = if old_plate {
            PlateSeries::Old
        } else if e_series {
            PlateSeries::Electric
        } else if five {
            PlateSeries::FiveDigits
        } else {
            PlateSeries::FourDigits
        };
        let plate = self.plates.draw(&mut self.rng, series);
        r.set(KJM, &plate);
        if v.status == Status::Registered
            && v.kind == Kind::Car
            && v.year >= 2017
            && self.chance(0.004)
        {
            let w = *pick(&mut self.rng, &TABLES.personal_plates);
            let s = if w.len() < 6 && self.chance(0.5) {
                format!("{w}{}", self.rng.gen_range(1..10))
            } else {
                w.to_string()
            };
            r.set(KJM_PERSJ, &s);
        }
        let plate_type = self.plate_type(v);
        r.set(KJM_FARGE, plate_type);
        // VINs became the rule in the 1980s; trailers and tractors often keep short numbers.
        // Tuned so that about 63 % of the register has a 17-character VIN.
        let vin_p = match v.model_year {
            ..=1980 => 0.0,
            1981..=1989 => 0.3,
            1990..=1999 => 0.55,
            2000..=2009 => 0.8,
            _ => 0.93,
        } * if v.is(&[Kind::Trailer, Kind::Tractor, Kind::Caravan]) {
            0.5
        } else {
            1.0
        };
        let unr = if self.chance(vin_p) {
            self.vin(v.make.wmi, v.model_year)
        } else {
            self.legacy_chassis()
        };
        r.set(UNR, &unr);
        plate_type
    }

    /// The plate type (the colour of the plate): veterans, class 2 vans, off-road tractors
    /// and a few special series; ordinary for the rest.
    fn plate_type(&mut self, v: &Vehicle) -> &'static str {
        let veteran =
            v.status == Status::Registered && self.today - v.first > 30 * 365 && self.chance(0.4);
        if veteran {
            "VETERAN"
        } else if v.kind == Kind::Van && self.chance(0.2) {
            "VAREBIL_KLASSE_2"
        } else if v.kind == Kind::Tractor && self.chance(0.1) {
            "UTENFOR_OFFENTLIG_VEG"
        } else {
            match self.rng.gen_range(0..10_000) {
                0..=4 => "SVALBARD",
                5..=6 => "AMBASSADE",
                7 => "RALLY_TRIAL_ENDURO",
                _ => "ORDINART",
            }
        }
    }
}
