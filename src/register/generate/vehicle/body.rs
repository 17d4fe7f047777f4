//! Weights, dimensions and body: total and own weight, towing, length and width, doors,
//! colour, bodywork and seats.

use super::Vehicle;
use crate::register::generate::batch::Record;
use crate::register::generate::fields::{
    BEL_H, BREDDE, DORER, EGENVEKT, FARGE, LENGDE, PABYGG, SETER_FORAN, SETER_TOT, TAKLAST, THV_M,
    THV_U, TOTVEKT, VOGNTOGVEKT,
};
use crate::register::generate::maker::{pick, pick_weighted, Maker};
use crate::register::generate::tables::{Kind, TABLES};
use rand::Rng;

/// Towing weights with brakes (kg).
const TOW_WITH_BRAKE: [u32; 9] = [750, 1200, 1300, 1500, 1600, 1800, 2000, 2100, 2500];
/// Towing weights without brakes (kg).
const TOW_WITHOUT_BRAKE: [u32; 5] = [400, 500, 600, 650, 750];
/// Largest load on the tow bar (kg).
const TOW_BAR_LOAD: [u32; 5] = [50, 75, 80, 90, 100];
/// Largest roof load of cars (kg).
const ROOF_LOAD: [u32; 3] = [75, 80, 100];
/// Doors of cars (five doors most often).
const CAR_DOORS: [u32; 5] = [3, 4, 5, 5, 5];
/// Colour codes of trailers and caravans.
const TRAILER_COLOURS: [&str; 3] = ["05", "11", "01"];
/// Bodywork of trucks and vans.
const BODYWORK: [&str; 4] = ["SKAP", "LASTEPLAN", "TIPP", "KRANBIL"];

/// Weights (kg) and dimensions (mm) drawn for a vehicle.
struct Size {
    total: u32,
    own: u32,
    length: u32,
    width: u32,
}

impl Maker {
    /// Weights, towing and dimensions; returns the total weight.
    pub(super) fn weights_and_dimensions(
        &mut self,
        v: &Vehicle,
        tk: &str,
        detailed: bool,
        r: &mut Record<'_>,
    ) -> u32 {
        let Size {
            total: tot,
            own,
            length,
            width,
        } = self.size(v, tk);
        let own = own.min(tot.saturating_sub(50)).max(50);
        if detailed || v.kind == Kind::Trailer {
            r.set_fmt(TOTVEKT, format_args!("{tot}"));
            r.set_fmt(EGENVEKT, format_args!("{own}"));
        }
        let towing = v.is(&[Kind::Car, Kind::Van, Kind::Camper]) && detailed;
        if towing && self.chance(0.8) {
            let with_brake = *pick(&mut self.rng, &TOW_WITH_BRAKE);
            r.set_fmt(THV_M, format_args!("{with_brake}"));
            let without = *pick(&mut self.rng, &TOW_WITHOUT_BRAKE);
            r.set_fmt(THV_U, format_args!("{without}"));
            r.set_fmt(VOGNTOGVEKT, format_args!("{}", tot + with_brake));
            let bar = *pick(&mut self.rng, &TOW_BAR_LOAD);
            r.set_fmt(BEL_H, format_args!("{bar}"));
            if v.kind == Kind::Car {
                let roof = *pick(&mut self.rng, &ROOF_LOAD);
                r.set_fmt(TAKLAST, format_args!("{roof}"));
            }
        }
        if detailed || !v.motorised() {
            r.set_fmt(LENGDE, format_args!("{length}"));
            r.set_fmt(BREDDE, format_args!("{width}"));
        }
        tot
    }

    /// Total and own weight, length and width by kind (trailers by technical code).
    fn size(&mut self, v: &Vehicle, tk: &str) -> Size {
        let rng = &mut self.rng;
        let (total, own, length, width) = match v.kind {
            Kind::Car => {
                let own = if v.electric() {
                    rng.gen_range(1500..2500)
                } else {
                    rng.gen_range(850..1900)
                };
                (
                    own + rng.gen_range(400..600),
                    own,
                    rng.gen_range(3600..5100),
                    rng.gen_range(1600..2000),
                )
            }
            Kind::Van => {
                let own = rng.gen_range(1300..2500);
                (
                    if rng.gen_bool(0.7) { 3500 } else { own + 800 },
                    own,
                    rng.gen_range(4300..6900),
                    rng.gen_range(1750..2100),
                )
            }
            Kind::Camper => (
                rng.gen_range(3300..4500),
                rng.gen_range(2800..3400),
                rng.gen_range(5900..7600),
                rng.gen_range(2200..2350),
            ),
            Kind::Truck => {
                let tot = rng.gen_range(7500..32_000);
                (
                    tot,
                    tot / 2 - rng.gen_range(0..2000),
                    rng.gen_range(6500..12_000),
                    2550,
                )
            }
            Kind::Bus => (
                rng.gen_range(5000..19_500),
                rng.gen_range(4000..12_500),
                rng.gen_range(7000..13_800),
                2550,
            ),
            Kind::Trailer if tk == "O1" => (
                rng.gen_range(500..751),
                rng.gen_range(90..260),
                rng.gen_range(3000..4500),
                rng.gen_range(1300..1800),
            ),
            Kind::Trailer => (
                rng.gen_range(1000..3501),
                rng.gen_range(280..800),
                rng.gen_range(3500..6800),
                rng.gen_range(1500..2300),
            ),
            Kind::Caravan => (
                rng.gen_range(1200..2500),
                rng.gen_range(900..1800),
                rng.gen_range(5500..8500),
                rng.gen_range(2100..2550),
            ),
            Kind::HeavyTrailer => (
                rng.gen_range(10_000..39_000),
                rng.gen_range(4000..9000),
                rng.gen_range(7000..13_600),
                2550,
            ),
            Kind::Motorcycle => (
                rng.gen_range(300..560),
                rng.gen_range(130..380),
                rng.gen_range(1900..2600),
                rng.gen_range(700..1000),
            ),
            Kind::Moped => (
                rng.gen_range(180..280),
                rng.gen_range(70..120),
                rng.gen_range(1600..2000),
                rng.gen_range(600..750),
            ),
            Kind::Tractor => (
                rng.gen_range(3000..14_000),
                rng.gen_range(1500..8000),
                rng.gen_range(3000..5500),
                rng.gen_range(1600..2600),
            ),
        };
        Size {
            total,
            own,
            length,
            width,
        }
    }

    /// Doors, colour, bodywork and seats.
    pub(super) fn body(&mut self, v: &Vehicle, detailed: bool, r: &mut Record<'_>) {
        let motorised = v.motorised();
        if v.is(&[Kind::Car, Kind::Van]) && v.model_year >= 2000 && self.chance(0.5) {
            let doors = if v.kind == Kind::Van {
                4
            } else {
                *pick(&mut self.rng, &CAR_DOORS)
            };
            r.set_fmt(DORER, format_args!("{doors}"));
        }
        if motorised && (v.model_year >= 1990 || self.chance(0.4)) {
            let c = pick_weighted(&mut self.rng, &TABLES.colours);
            if self.chance(0.01) {
                r.set_fmt(FARGE, format_args!("{c},99"));
            } else {
                r.set(FARGE, c);
            }
        } else if !motorised && self.chance(0.3) {
            r.set(FARGE, pick::<&str>(&mut self.rng, &TRAILER_COLOURS));
        }
        if v.is(&[Kind::Truck, Kind::Van]) && self.chance(0.2) {
            r.set(PABYGG, pick::<&str>(&mut self.rng, &BODYWORK));
        }
        let (front, total) = self.seats(v.kind);
        if total > 0 && (detailed || v.kind == Kind::Car) {
            r.set_fmt(SETER_FORAN, format_args!("{front}"));
            r.set_fmt(SETER_TOT, format_args!("{total}"));
        }
    }

    /// Seats in front and in all (0 for trailers).
    fn seats(&mut self, kind: Kind) -> (u32, u32) {
        match kind {
            Kind::Car => (
                2,
                if self.chance(0.08) {
                    7
                } else if self.chance(0.03) {
                    4
                } else {
                    5
                },
            ),
            Kind::Van => (
                if self.chance(0.6) { 2 } else { 3 },
                if self.chance(0.2) { 5 } else { 2 },
            ),
            Kind::Camper => (2, 4),
            Kind::Truck => (2, 2),
            Kind::Bus => (2, self.rng.gen_range(17..70)),
            Kind::Motorcycle => (1, 2),
            Kind::Moped => (1, if self.chance(0.5) { 2 } else { 1 }),
            Kind::Tractor => (1, 1),
            Kind::Trailer | Kind::Caravan | Kind::HeavyTrailer => (0, 0),
        }
    }
}
