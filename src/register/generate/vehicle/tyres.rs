//! Axles and tyres: the number of axles and driven axles, tyre and rim sizes with their
//! service description, track widths and axle loads.

use super::Vehicle;
use crate::register::generate::batch::Record;
use crate::register::generate::fields::{
    AKSLER, AKSLER_DRIFT, DEKK_1, DEKK_2, DRIVST, FELG_1, FELG_2, HAST_1, HAST_2, INNP_1, INNP_2,
    LAST_1, LAST_2, MILI_1, MILI_2, SPOR_1, SPOR_2,
};
use crate::register::generate::maker::{pick, Maker};
use crate::register::generate::tables::{Kind, TABLES};
use rand::Rng;

impl Maker {
    /// Axles, and the driven axles of motorised vehicles with detailed data.
    pub(super) fn axles(
        &mut self,
        v: &Vehicle,
        tk: &str,
        total_weight: u32,
        detailed: bool,
        r: &mut Record<'_>,
    ) {
        let axles = match v.kind {
            Kind::Truck | Kind::HeavyTrailer => self.rng.gen_range(2..5),
            Kind::Bus => self.rng.gen_range(2..4),
            Kind::Trailer | Kind::Caravan => {
                if total_weight > 1500 && self.chance(0.5) {
                    2
                } else {
                    1
                }
            }
            _ => 2,
        };
        r.set_fmt(AKSLER, format_args!("{axles}"));
        if v.motorised() && detailed {
            // Four-wheel drive: off-road cars (M1G), cars with two electric motors, others.
            let driven = if v.kind == Kind::Car
                && (tk == "M1G" || r.get(DRIVST) == "5,5" || self.chance(0.15))
            {
                2
            } else {
                1
            };
            r.set_fmt(AKSLER_DRIFT, format_args!("{driven}"));
        }
    }

    /// Tyres: cars, vans and campers with detailed data get a size that fits the model
    /// year, with track widths and axle loads; trailers get a tyre size only.
    pub(super) fn tyres(
        &mut self,
        v: &Vehicle,
        total_weight: u32,
        detailed: bool,
        r: &mut Record<'_>,
    ) {
        if v.is(&[Kind::Car, Kind::Van, Kind::Camper]) && detailed {
            let tyres = &TABLES.car_tyres;
            let bias = ((v.model_year - 1985).clamp(0, 40) as usize * tyres.len()) / 45;
            let i = (bias + self.rng.gen_range(0..3)).min(tyres.len() - 1);
            let t = tyres[i];
            r.set(DEKK_1, t.tyre);
            r.copy(DEKK_2, DEKK_1);
            r.set(FELG_1, t.rim);
            r.copy(FELG_2, FELG_1);
            r.set(MILI_1, t.load_index);
            r.copy(MILI_2, MILI_1);
            r.set(HAST_1, t.speed_index);
            r.copy(HAST_2, HAST_1);
            r.set(INNP_1, t.press_in);
            r.copy(INNP_2, INNP_1);
            let track = self.rng.gen_range(1400..1650);
            r.set_fmt(SPOR_1, format_args!("{track}"));
            r.set_fmt(
                SPOR_2,
                format_args!("{}", track - self.rng.gen_range(0..30)),
            );
            let load_1 = total_weight / 2 + self.rng.gen_range(0..100);
            r.set_fmt(LAST_1, format_args!("{load_1}"));
            let load_2 = total_weight / 2 + self.rng.gen_range(0..150);
            r.set_fmt(LAST_2, format_args!("{load_2}"));
        } else if !v.motorised() {
            r.set(DEKK_1, pick::<&str>(&mut self.rng, &TABLES.trailer_tyres));
        }
    }
}
