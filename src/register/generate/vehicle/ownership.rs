//! Ownerships: whether a vehicle is leased, the dates of its changes of owner (the record's
//! owner-change fields), and one ownership row per owner with co-owners and lessees.

use super::{Kind, Status, Vehicle};
use crate::register::generate::batch::{Batch, Record, Role};
use crate::register::generate::fields::{REG_EIER, REG_EIERSKIFTE};
use crate::register::generate::maker::Maker;
use crate::register::generate::owners::{Holding, OrgPool};
use rand::Rng;

/// The owners of a vehicle over time, drawn before the rows are written.
pub(super) struct History {
    leased: bool,
    /// Chance that an owner is an organisation.
    org_p: f64,
    /// Change dates (the first is the first registration in Norway), strictly increasing.
    starts: Vec<i32>,
    /// When the current owner was registered.
    current_from: i32,
}

impl Maker {
    /// Leasing, the changes of owner and the owner-change fields.
    pub(super) fn ownership_history(
        &mut self,
        v: &Vehicle,
        end: i32,
        r: &mut Record<'_>,
    ) -> History {
        let today = self.today;
        let first_no = v.first_no;
        let lessee_p = match (v.status, today - first_no) {
            (Status::Registered, a) if a < 4 * 365 && v.is(&[Kind::Car, Kind::Van]) => 0.55,
            (Status::Registered, a) if a < 8 * 365 => 0.18,
            _ => 0.0,
        };
        let leased = self.chance(lessee_p);
        let org_p = match v.kind {
            Kind::Truck | Kind::Bus | Kind::HeavyTrailer => 0.95,
            Kind::Van => 0.55,
            Kind::Tractor => 0.25,
            _ => 0.12,
        };
        let span_end = if v.status == Status::Registered {
            today
        } else {
            end
        };
        let mut previous = 0;
        if span_end - first_no > 2 * 365 && self.chance(0.45) {
            previous = self
                .rng
                .gen_range(1..=((span_end - first_no) / (3 * 365)).clamp(1, 4));
        }
        // Change dates: strictly increasing between first registration and span end.
        let mut starts = vec![first_no];
        for k in 0..previous {
            let lo = *starts.last().unwrap_or(&first_no) + 30;
            let hi = first_no
                + ((span_end - first_no) as i64 * (k as i64 + 1) / (previous as i64 + 1)) as i32;
            let d = self.date_between(lo.min(span_end - 1), hi.max(lo).min(span_end - 1));
            starts.push(d.max(lo.min(span_end)));
        }
        let current_change = *starts.last().unwrap_or(&first_no);
        let current_from = (current_change + self.rng.gen_range(0..8)).min(span_end);
        if previous > 0 || self.chance(0.7) {
            r.set_date(REG_EIERSKIFTE, current_change);
        }
        if !(v.status == Status::Deregistered && self.chance(0.3)) {
            r.set_date(REG_EIER, current_from);
        }
        History {
            leased,
            org_p,
            starts,
            current_from,
        }
    }

    /// One owner row per period of `h` (the last one current unless the vehicle was
    /// scrapped or exported), with co-owners of people and the lessee of a leased vehicle.
    pub(super) fn ownership_rows(&mut self, v: &Vehicle, end: i32, h: &History, b: &mut Batch) {
        let starts = &h.starts;
        for (k, &start) in starts.iter().enumerate() {
            let from = if k + 1 == starts.len() {
                h.current_from
            } else {
                start + self.rng.gen_range(0..5)
            };
            let to = if k + 1 < starts.len() {
                Some(starts[k + 1])
            } else if matches!(v.status, Status::Registered | Status::Deregistered) {
                None
            } else {
                Some(end)
            };
            let current = to.is_none();
            let holding = |role| Holding {
                vehicle: v.id,
                role,
                from,
                to,
            };
            let owner_is_org = (current && h.leased) || self.chance(h.org_p);
            let addr = if owner_is_org {
                let pool = if current && h.leased {
                    OrgPool::Lessors
                } else {
                    OrgPool::Owners
                };
                self.owner_org(b, holding(Role::Owner), pool)
            } else {
                self.owner_person(b, holding(Role::Owner), None)
            };
            let co_owner_p = if current { 0.17 } else { 0.08 };
            if !owner_is_org && self.chance(co_owner_p) {
                self.owner_person(b, holding(Role::CoOwner), Some(addr));
            }
            if current && h.leased {
                if self.chance(0.7) {
                    self.owner_person(b, holding(Role::Lessee), None);
                } else {
                    self.owner_org(b, holding(Role::Lessee), OrgPool::Owners);
                }
            }
        }
    }
}
