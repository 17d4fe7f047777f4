//! Registration: the status and first-registration dates of a vehicle, the registration
//! fields of its record (dates, status, used import, make and model), its type code and
//! vehicle group, and its periodic inspections (PKK).

use super::{Status, Vehicle};
use crate::register::generate::batch::Record;
use crate::register::generate::dates::year_of;
use crate::register::generate::fields::{
    AVREG, BRUKTIMP, KJTGRP, MERKE, MERKENAVN, MODELL, NESTE_PKK, REG_F_G, REG_F_G_N, REG_STATUS,
    SISTE_PKK, TKNAVN, TUK, UTFORT, VRAKET,
};
use crate::register::generate::maker::Maker;
use crate::register::generate::tables::Kind;
use rand::Rng;
use rand_pcg::Pcg64;

/// The status and first-registration dates drawn for a new vehicle.
pub(super) struct FirstRegistration {
    pub(super) status: Status,
    pub(super) first_no: i32,
    pub(super) first: i32,
    pub(super) year: i32,
    pub(super) model_year: i32,
    pub(super) used_import: bool,
}

/// Days since first registration of a vehicle of `status`.
fn age_days(rng: &mut Pcg64, status: Status) -> i32 {
    let u: f64 = rng.gen();
    let years = match status {
        Status::Registered if rng.gen_bool(0.92) => 28.0 * u.powf(1.4),
        Status::Registered => 28.0 + 50.0 * u * u,
        Status::Deregistered => 3.0 + 37.0 * u,
        Status::Scrapped | Status::Exported => {
            // Scrapped/exported: first registered 1955-2018, peak around 1990.
            let v: f64 = (u + rng.gen::<f64>() + rng.gen::<f64>()) / 3.0;
            (2025.5 - (1955.0 + 63.0 * v)).max(7.0)
        }
    };
    (years * 365.25) as i32 + rng.gen_range(0..30)
}

impl Maker {
    /// Status, first registration in Norway and (for used imports) abroad.
    pub(super) fn first_registration(&mut self, kind: Kind) -> FirstRegistration {
        let status = match self.rng.gen_range(0..1000) {
            0..=659 => Status::Registered,
            660..=779 => Status::Deregistered,
            780..=991 => Status::Scrapped,
            _ => Status::Exported,
        };
        let first_no = self.today - age_days(&mut self.rng, status).max(1);
        let year = year_of(first_no);
        let used_import = kind != Kind::Trailer
            && year >= 1960
            && self.chance(if kind == Kind::Car { 0.14 } else { 0.06 });
        let first = if used_import {
            first_no - self.rng.gen_range(200..4000)
        } else {
            first_no
        };
        FirstRegistration {
            status,
            first_no,
            first,
            year,
            model_year: year_of(first),
            used_import,
        }
    }

    /// Registration dates, status, used import, make and model; returns the day the
    /// registration ended (today for registered vehicles).
    pub(super) fn registration(&mut self, v: &Vehicle, r: &mut Record<'_>) -> i32 {
        let today = self.today;
        r.set_date(REG_F_G, v.first);
        r.set_date(REG_F_G_N, v.first_no);
        let end = match v.status {
            Status::Registered => today,
            _ => {
                let scrapped = v.status == Status::Scrapped;
                let lo = v.first_no + 365.min((today - v.first_no) / 2);
                let hi = if scrapped {
                    (v.first_no + 28 * 365).min(today)
                } else {
                    today
                };
                let min_life = if scrapped { 8 * 365 } else { 0 };
                self.date_between((v.first_no + min_life).min(hi).max(lo), hi)
            }
        };
        match v.status {
            Status::Deregistered => r.set_date(AVREG, end),
            Status::Scrapped => r.set_date(VRAKET, end),
            Status::Exported => r.set_date(UTFORT, end),
            Status::Registered => {}
        }
        r.set(REG_STATUS, v.status.code());
        r.set(BRUKTIMP, if v.used_import { "1" } else { "0" });
        r.set(MERKE, &v.make.code);
        r.set(MERKENAVN, &v.make.name);
        r.set(MODELL, &v.make.model);
        end
    }

    /// The technical code (EU class) and vehicle group; returns the technical code.
    pub(super) fn type_code(
        &mut self,
        v: &Vehicle,
        plate_type: &str,
        r: &mut Record<'_>,
    ) -> &'static str {
        let (tk, grp) = match v.kind {
            Kind::Car if self.chance(0.0005) => ("M1", "106"),
            Kind::Car if self.chance(0.05) => ("M1G", "101"),
            Kind::Car => ("M1", "101"),
            Kind::Van => {
                if plate_type == "VAREBIL_KLASSE_2" {
                    ("N1", "311")
                } else if self.chance(0.35) {
                    ("N1", "301")
                } else {
                    ("N1", "310")
                }
            }
            Kind::Camper => ("M1", "313"),
            Kind::Truck => (if self.chance(0.4) { "N2" } else { "N3" }, "320"),
            Kind::Bus => (if self.chance(0.2) { "M2" } else { "M3" }, "201"),
            Kind::Trailer => (if self.chance(0.6) { "O1" } else { "O2" }, "709"),
            Kind::Caravan => ("O2", "709"),
            Kind::HeavyTrailer => (if self.chance(0.3) { "O3" } else { "O4" }, "709"),
            Kind::Motorcycle => ("L3e", "601"),
            Kind::Moped => ("L1e", "601"),
            Kind::Tractor => ("T1", "401"),
        };
        r.set(TKNAVN, tk);
        r.set(TUK, "INGENKODE");
        r.set(KJTGRP, grp);
        tk
    }

    /// PKK (periodic inspection): cars and light vans after 4 years, then every 2; some
    /// deregistered cars keep their last one.
    pub(super) fn inspections(&mut self, v: &Vehicle, end: i32, r: &mut Record<'_>) {
        let today = self.today;
        let first = v.first;
        if v.status == Status::Registered
            && v.is(&[Kind::Car, Kind::Van, Kind::Camper, Kind::Motorcycle])
        {
            let first_pkk = first + 4 * 365;
            if first_pkk > today {
                r.set_date(NESTE_PKK, first_pkk);
            } else {
                let last = self.date_between((today - 730).max(first_pkk - 60), today - 1);
                r.set_date(SISTE_PKK, last);
                r.set_date(NESTE_PKK, last + 730 + self.rng.gen_range(0..30));
            }
        } else if v.status != Status::Registered
            && v.motorised()
            && v.kind == Kind::Car
            && today - first > 5 * 365
            && self.chance(0.5)
        {
            let last = self.date_between(first + 4 * 365, end.max(first + 4 * 365));
            r.set_date(SISTE_PKK, last.min(end));
        }
    }
}
