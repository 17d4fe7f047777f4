//! Synthetic owners: where people and organisations live, the pool of organisations
//! (fleet owners and leasing companies) and the ownership rows of people and organisations.

use super::batch::{
    Batch, OwnerRow, Range, Role, O_ADDR, O_BIRTH, O_FIRST, O_FROM, O_KOMMUNE, O_LAND, O_LAST,
    O_MIDDLE, O_NID, O_ORGNAME, O_ORGNR, O_POSTNR, O_POSTSTED, O_TO,
};
use super::dates::{civil, days};
use super::maker::{pick, Maker};
use super::tables::TABLES;
use crate::core::ids;
use crate::register::refdata::Municipality;
use rand::Rng;
use std::collections::HashSet;

/// Where someone lives: (index into `RefData::places`, index of its postal code).
pub(super) type Place = (usize, usize);

/// A pooled organisation (owners of fleets, leasing companies).
pub(super) struct Org {
    number: String,
    name: String,
    address: String,
    place: Place,
}

/// Which pool an organisation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OrgPool {
    /// Companies that own vehicles (transport, trades, taxis, ...).
    Owners,
    /// Leasing companies (owners of leased vehicles).
    Lessors,
}

/// The ownership a row is about: which vehicle, in what role, from when until when (None =
/// current).
#[derive(Debug, Clone, Copy)]
pub(super) struct Holding {
    pub(super) vehicle: u64,
    pub(super) role: Role,
    pub(super) from: i32,
    pub(super) to: Option<i32>,
}

impl Maker {
    /// A place, weighted by population.
    pub(super) fn place(&mut self) -> Place {
        let total = *self.place_cum.last().unwrap_or(&1);
        let r = self.rng.gen_range(0..total);
        let i = self.place_cum.partition_point(|&c| c <= r);
        let j = self.rng.gen_range(0..self.refd.places[i].postal.len());
        (i, j)
    }

    fn municipality(&self, p: Place) -> &'static Municipality {
        &self.refd.places[p.0]
    }

    fn street_address(&mut self) -> String {
        let street = *pick(&mut self.rng, &self.refd.streets);
        let n = if self.chance(0.7) {
            self.rng.gen_range(1..60)
        } else {
            self.rng.gen_range(1..250)
        };
        if self.chance(0.15) {
            let l = *pick(&mut self.rng, b"ABCD") as char;
            format!("{street} {n}{l}")
        } else {
            format!("{street} {n}")
        }
    }

    /// A new organisation of a pool, with an organisation number not in `numbers`.
    pub(super) fn org(&mut self, numbers: &mut HashSet<String>, pool: OrgPool) -> Org {
        let number = loop {
            let mut d = [0u8; 8];
            d[0] = if self.chance(0.9) { 9 } else { 8 };
            for x in d.iter_mut().skip(1) {
                *x = self.rng.gen_range(0..10);
            }
            if let Some(n) = ids::org_number_from(&d) {
                if numbers.insert(n.clone()) {
                    break n;
                }
            }
        };
        let place = self.place();
        let town = {
            let p = &self.municipality(place).postal[place.1].place;
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_string() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        };
        let s1 = *pick(&mut self.rng, &self.refd.surnames);
        let s2 = *pick(&mut self.rng, &self.refd.surnames);
        let name = match pool {
            OrgPool::Lessors => match self.rng.gen_range(0..4) {
                0 => format!("{s1} Finans AS"),
                1 => format!("{town} Leasing AS"),
                2 => format!("{s1} Bilfinans AS"),
                _ => format!("{s1} & {s2} Leasing AS"),
            },
            OrgPool::Owners => {
                let trade = *pick(&mut self.rng, &TABLES.trades);
                match self.rng.gen_range(0..10) {
                    0 => format!("{town} Taxi AS"),
                    1 => format!("{town} Bilutleie AS"),
                    2 => format!("{s1} & {s2} AS"),
                    3 => format!("{s1} {trade}"),
                    4 => format!("{town} {trade} AS"),
                    _ => format!("{s1} {trade} AS"),
                }
            }
        };
        let address = self.street_address();
        Org {
            number,
            name,
            address,
            place,
        }
    }

    /// Appends an organisation ownership row (an organisation of `pool`); returns the
    /// organisation's place.
    pub(super) fn owner_org(&mut self, b: &mut Batch, h: Holding, pool: OrgPool) -> Place {
        // Fleet owners are skewed: a few organisations own many vehicles.
        let pool = match pool {
            OrgPool::Lessors => &self.lessors,
            OrgPool::Owners => &self.orgs,
        };
        let u: f64 = self.rng.gen();
        let i = ((u * u * u) * pool.len() as f64) as usize;
        let org = &pool[i.min(pool.len() - 1)];
        let mut fields: [Range; 15] = [(0, 0); 15];
        fields[O_ORGNR] = b.put(&org.number);
        fields[O_ORGNAME] = b.put(&org.name);
        fields[O_ADDR] = b.put(&org.address);
        push_row(b, h, fields, &self.refd.places[org.place.0], org.place.1);
        org.place
    }

    /// Appends a person ownership row (living at `at`, or somewhere else); returns the
    /// person's place.
    pub(super) fn owner_person(&mut self, b: &mut Batch, h: Holding, at: Option<Place>) -> Place {
        // Born 18-88 years before the ownership starts, most often 30-60.
        let age_years = 18.0
            + 70.0 * {
                let a: f64 = self.rng.gen();
                let c: f64 = self.rng.gen();
                (a + c) / 2.0
            };
        let mut birth = h.from - (age_years * 365.25) as i32;
        let min_birth = days(1855, 1, 1);
        if birth < min_birth {
            birth = min_birth + self.rng.gen_range(0..3650);
        }
        let (y, mo, d) = civil(birth);
        let d_number = self.chance(0.02);
        let (lo, hi) = ids::individual_range(y as u32).unwrap_or((0, 499));
        let (nid, male) = loop {
            let ind = self.rng.gen_range(lo..=hi);
            if let Some(n) = ids::make_fnr(y as u32, mo, d, ind, d_number) {
                break (n, ind % 2 == 1);
            }
        };
        let first = if male {
            *pick(&mut self.rng, &self.refd.male_names)
        } else {
            *pick(&mut self.rng, &self.refd.female_names)
        };
        let last = *pick(&mut self.rng, &self.refd.surnames);
        let middle = if self.chance(0.15) {
            Some(*pick(&mut self.rng, &self.refd.surnames))
        } else {
            None
        };
        let place = match at {
            Some(p) => p,
            None => self.place(),
        };
        let address = self.street_address();
        let mut fields: [Range; 15] = [(0, 0); 15];
        fields[O_NID] = b.put(&nid);
        fields[O_FIRST] = b.put(first);
        if let Some(mid) = middle {
            fields[O_MIDDLE] = b.put(mid);
        }
        fields[O_LAST] = b.put(last);
        fields[O_BIRTH] = b.put_fmt(format_args!("{y:04}{mo:02}{d:02}"));
        fields[O_ADDR] = b.put(&address);
        push_row(b, h, fields, &self.refd.places[place.0], place.1);
        place
    }
}

/// Completes an ownership row with its postal address (postal code `postal` of `m`),
/// country and period, and appends it.
fn push_row(b: &mut Batch, h: Holding, mut fields: [Range; 15], m: &Municipality, postal: usize) {
    let p = &m.postal[postal];
    fields[O_POSTNR] = b.put(p.code);
    fields[O_POSTSTED] = b.put(p.place);
    fields[O_KOMMUNE] = b.put(m.number);
    fields[O_LAND] = b.put("NO");
    fields[O_FROM] = b.put_date(h.from);
    if let Some(t) = h.to {
        fields[O_TO] = b.put_date(t);
    }
    b.owners.push(OwnerRow {
        vehicle: h.vehicle,
        role: h.role,
        fields,
    });
}
