//! Type approval and emissions: the national and EU approval numbers, type, variant and
//! version, the Euro norm, standing noise, particle filter, NOx, particles, CO₂ and
//! consumption.

use super::{Fuel, Vehicle};
use crate::register::generate::batch::Record;
use crate::register::generate::fields::{
    CO2, EURONORM, EU_HOVED, EU_TYPE, EU_VARIANT, EU_VERSJON, FORBRUK, MAALEMETODE, NGN, NOX_G,
    NOX_MG, PARTIKKEL, PARTIKKELFILTER, STANDSTOY, UNR,
};
use crate::register::generate::maker::Maker;
use crate::register::generate::tables::Kind;
use rand::Rng;

impl Maker {
    /// Approval numbers (vehicles with detailed data and unmotorised ones) and, for newer
    /// motorised vehicles, the EU version.
    pub(super) fn type_approval(&mut self, v: &Vehicle, detailed: bool, r: &mut Record<'_>) {
        let model_year = v.model_year;
        if detailed || !v.motorised() {
            r.set_fmt(
                NGN,
                format_args!(
                    "{:04}.{:03}/{}",
                    self.rng.gen_range(1..9999),
                    self.rng.gen_range(1..120),
                    model_year.min(v.year)
                ),
            );
            if model_year >= 1996 {
                let directive = match model_year {
                    ..=2000 => "98/14",
                    2001..=2008 => "2001/116",
                    2009..=2019 => "2007/46",
                    _ => "2018/858",
                };
                r.set_fmt(
                    EU_HOVED,
                    format_args!(
                        "e{}*{directive}*{:04}*{:02}",
                        self.rng.gen_range(1..14),
                        self.rng.gen_range(1..2000),
                        self.rng.gen_range(0..60)
                    ),
                );
            } else {
                r.set_fmt(
                    EU_HOVED,
                    format_args!("e16*NOR{model_year}*{:04}*00", self.rng.gen_range(1..1000)),
                );
            }
            let t: String = r.get(UNR).chars().skip(3).take(6).collect();
            r.set(EU_TYPE, &t);
            r.set_fmt(EU_VARIANT, format_args!("{}", self.rng.gen_range(1..40)));
        }
        if v.motorised() && model_year >= 2005 && detailed && self.chance(0.7) {
            let version = self.vin_chars(12);
            r.set(EU_VERSJON, &version);
        }
    }

    /// Euro norm and emission values (motorised vehicles); unmotorised ones have no
    /// particle filter.
    pub(super) fn emissions(&mut self, v: &Vehicle, detailed: bool, r: &mut Record<'_>) {
        if !v.motorised() {
            r.set(PARTIKKELFILTER, "0");
            return;
        }
        let (kind, fuel, model_year, electric) = (v.kind, v.fuel, v.model_year, v.electric());
        let heavy = v.is(&[Kind::Truck, Kind::Bus]);
        r.set(EURONORM, euro_norm(v));
        if detailed && (model_year >= 1980 || self.chance(0.3)) && !electric {
            r.set_fmt(STANDSTOY, format_args!("{}", self.rng.gen_range(68..95)));
        }
        let filter = fuel == Fuel::Diesel && model_year >= 2010;
        r.set(PARTIKKELFILTER, if filter { "1" } else { "0" });
        if !electric && model_year >= 2010 && !heavy && v.is(&[Kind::Car, Kind::Van]) {
            r.set_fmt(NOX_MG, format_args!("{:.1}", self.rng.gen_range(5.0..80.0)));
            if fuel == Fuel::Diesel {
                r.set_fmt(
                    PARTIKKEL,
                    format_args!("{:.2}", self.rng.gen_range(0.1..4.5)),
                );
            }
        }
        if heavy && model_year >= 2009 && !electric {
            r.set_fmt(NOX_G, format_args!("{:.2}", self.rng.gen_range(0.05..2.0)));
        }
        if v.is(&[Kind::Car, Kind::Van, Kind::Camper]) && model_year >= 2000 {
            let method = match model_year {
                ..=2017 => "NEDC",
                2018..=2020 => "NEDC,WLTP",
                _ => "WLTP",
            };
            r.set(MAALEMETODE, method);
            let co2: u32 = match fuel {
                Fuel::Electric => 0,
                Fuel::PluginHybrid => self.rng.gen_range(18..60),
                Fuel::Hybrid => self.rng.gen_range(85..125),
                _ => {
                    (self.rng.gen_range(110..230) - (model_year - 2000) * 3).max(90) as u32
                        + if kind == Kind::Car { 0 } else { 40 }
                }
            };
            r.set_fmt(CO2, format_args!("{co2}"));
            if co2 > 0 {
                let per_l = if fuel == Fuel::Diesel { 26.5 } else { 23.8 };
                r.set_fmt(FORBRUK, format_args!("{:.1}", co2 as f64 / per_l));
            } else {
                r.set(FORBRUK, "0");
            }
        } else if model_year < 2000 && detailed && self.chance(0.3) {
            r.set(MAALEMETODE, "ANNEN");
        }
    }
}

/// The Euro norm class of a motorised vehicle (`0` = electric, empty = none known).
fn euro_norm(v: &Vehicle) -> &'static str {
    if v.electric() {
        "0"
    } else if v.is(&[Kind::Truck, Kind::Bus]) {
        match v.model_year {
            ..=2005 => "",
            2006..=2008 => "4T",
            2009..=2013 => "5T",
            _ => "6T",
        }
    } else if v.is(&[Kind::Motorcycle, Kind::Moped, Kind::Tractor]) {
        ""
    } else {
        match v.model_year {
            ..=1992 => "",
            1993..=1996 => "1L",
            1997..=2000 => "2L",
            2001..=2005 => "3L",
            2006..=2009 => "4L",
            2010..=2014 => "5L",
            _ => "6L",
        }
    }
}
