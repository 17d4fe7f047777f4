//! Fuel and engine: what a vehicle runs on (by kind and model year) and the engine fields
//! of its record (engine code, power, displacement, fuel codes, gearbox, hybrid category).

use super::{Fuel, Vehicle};
use crate::register::generate::batch::Record;
use crate::register::generate::fields::{
    DRIVST, GIRKASSE, HYBRID, HYBRID_KAT, MOTORKODE, MOTORYTELSE, SLAGVOLUM,
};
use crate::register::generate::maker::{pick, Maker};
use crate::register::generate::tables::{Kind, TABLES};
use rand::Rng;

/// Displacements (cm³) of car, van and camper engines.
const CAR_CC: [u32; 14] = [
    998, 1197, 1390, 1498, 1560, 1598, 1798, 1968, 1984, 1995, 1998, 2198, 2487, 2993,
];
/// Displacements (cm³) of motorcycle engines.
const MC_CC: [u32; 9] = [124, 249, 599, 689, 898, 1170, 1254, 1584, 1868];
/// Displacements (cm³) of truck and bus engines.
const HEAVY_CC: [u32; 5] = [7698, 10_837, 12_777, 12_742, 16_120];

impl Maker {
    /// What a new vehicle of `kind` and `model_year` runs on.
    pub(super) fn fuel(&mut self, kind: Kind, model_year: i32) -> Fuel {
        match kind {
            Kind::Car => {
                let ev = TABLES.ev_share(model_year);
                let r: f64 = self.rng.gen();
                if r < ev {
                    Fuel::Electric
                } else if model_year >= 2013 && r < ev + 0.18 {
                    Fuel::PluginHybrid
                } else if model_year >= 2005 && r < ev + 0.28 {
                    Fuel::Hybrid
                } else if ((2000..=2018).contains(&model_year) && self.chance(0.55))
                    || (model_year < 2000 && self.chance(0.12))
                {
                    Fuel::Diesel
                } else {
                    Fuel::Petrol
                }
            }
            Kind::Van | Kind::Bus | Kind::Truck => {
                let ev = match model_year {
                    ..=2015 => 0.0,
                    2016..=2019 => 0.04,
                    2020..=2022 => 0.2,
                    _ => 0.4,
                } * if kind == Kind::Van { 1.0 } else { 0.4 };
                if self.chance(ev) {
                    Fuel::Electric
                } else if model_year >= 1985 || self.chance(0.5) {
                    Fuel::Diesel
                } else {
                    Fuel::Petrol
                }
            }
            Kind::Camper | Kind::Tractor => Fuel::Diesel,
            Kind::Motorcycle | Kind::Moped => {
                if model_year >= 2018 && self.chance(if kind == Kind::Moped { 0.25 } else { 0.03 })
                {
                    Fuel::Electric
                } else {
                    Fuel::Petrol
                }
            }
            Kind::Trailer | Kind::Caravan | Kind::HeavyTrailer => Fuel::None,
        }
    }

    /// The engine fields (motorised vehicles; engine code and power only when `detailed`)
    /// and the hybrid fields (every vehicle).
    pub(super) fn engine(&mut self, v: &Vehicle, detailed: bool, r: &mut Record<'_>) {
        if v.motorised() {
            self.power(v, detailed, r);
            if !v.electric() {
                self.displacement(v, r);
            }
            self.fuel_codes(v, r);
            self.gearbox(v, r);
        }
        match v.fuel {
            Fuel::PluginHybrid => {
                r.set(HYBRID, "1");
                r.set(HYBRID_KAT, "OVC");
            }
            Fuel::Hybrid => {
                r.set(HYBRID, "1");
                r.set(HYBRID_KAT, "NOVC");
            }
            _ => {
                r.set(HYBRID, "9");
                r.set(HYBRID_KAT, if v.model_year < 1990 { "Z" } else { "X" });
            }
        }
    }

    /// Engine power (kW, drawn for every motorised vehicle) and, when `detailed`, the
    /// engine code and the power field.
    fn power(&mut self, v: &Vehicle, detailed: bool, r: &mut Record<'_>) {
        let kw: f64 = match (v.kind, v.fuel) {
            (Kind::Car, Fuel::Electric) => self.rng.gen_range(60.0..390.0),
            (Kind::Car, _) => {
                self.rng.gen_range(45.0..140.0) + (v.model_year - 1970).max(0) as f64 * 0.8
            }
            (Kind::Van | Kind::Camper, _) => self.rng.gen_range(60.0..150.0),
            (Kind::Truck | Kind::Bus, _) => self.rng.gen_range(150.0..480.0),
            (Kind::Motorcycle, _) => self.rng.gen_range(10.0..150.0),
            (Kind::Moped, _) => self.rng.gen_range(1.0..4.0),
            _ => self.rng.gen_range(40.0..220.0),
        };
        if detailed {
            // An i32 draw (not usize): the type decides how the stream is read.
            let len: i32 = self.rng.gen_range(3..7);
            let code = self.vin_chars(len as usize);
            r.set(MOTORKODE, &code);
            if v.kind == Kind::Moped || kw.fract() > 0.7 {
                r.set_fmt(MOTORYTELSE, format_args!("{:.1}", kw));
            } else {
                r.set_fmt(MOTORYTELSE, format_args!("{}", kw as u32));
            }
        }
    }

    /// Displacement of a combustion engine.
    fn displacement(&mut self, v: &Vehicle, r: &mut Record<'_>) {
        let cc = match v.kind {
            Kind::Moped => 49,
            Kind::Motorcycle => *pick(&mut self.rng, &MC_CC),
            Kind::Truck | Kind::Bus => *pick(&mut self.rng, &HEAVY_CC),
            _ => *pick(&mut self.rng, &CAR_CC),
        };
        r.set_fmt(SLAGVOLUM, format_args!("{cc}"));
    }

    /// The fuel codes (`5,5` = electric with two motors; plug-in hybrids list both fuels).
    fn fuel_codes(&mut self, v: &Vehicle, r: &mut Record<'_>) {
        let drivst = match v.fuel {
            Fuel::Petrol => "1",
            Fuel::Diesel => "2",
            Fuel::Electric => {
                if v.kind == Kind::Car && self.chance(0.35) {
                    "5,5"
                } else {
                    "5"
                }
            }
            Fuel::PluginHybrid => {
                if self.chance(0.25) {
                    "1,5,5"
                } else if self.chance(0.1) {
                    "2,5"
                } else {
                    "1,5"
                }
            }
            Fuel::Hybrid => "1,5",
            Fuel::None => "",
        };
        r.set(DRIVST, drivst);
    }

    fn gearbox(&mut self, v: &Vehicle, r: &mut Record<'_>) {
        let model_year = v.model_year;
        let gear = if v.electric() || matches!(v.fuel, Fuel::Hybrid | Fuel::PluginHybrid) {
            "Automat"
        } else if model_year < 1990 && self.chance(0.5) {
            ""
        } else if self.chance(if model_year >= 2015 { 0.65 } else { 0.2 }) {
            "Automat"
        } else {
            "Manuell"
        };
        r.set(GIRKASSE, gear);
    }
}
