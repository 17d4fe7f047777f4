//! The deterministic maker of rows: its state (one random stream, the places and
//! organisations owners are drawn from, the plates used so far) and the drawing helpers
//! every section uses.

use super::dates::as_of;
use super::owners::{Org, OrgPool};
use super::plates::Plates;
use super::tables::Make;
use crate::register::refdata::{refdata, RefData};
use crate::register::schema;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::collections::HashSet;

/// The deterministic maker of rows: the same seed and vehicle count give the same rows.
pub(super) struct Maker {
    pub(super) rng: Pcg64,
    pub(super) refd: &'static RefData,
    /// Cumulative weights of `refd.places` (where owners live).
    pub(super) place_cum: Vec<u32>,
    /// Organisations that own vehicles.
    pub(super) orgs: Vec<Org>,
    /// Leasing companies.
    pub(super) lessors: Vec<Org>,
    /// Every make of the authority's table (code, name): the long tail of cars.
    pub(super) all_makes: Vec<(String, String)>,
    pub(super) plates: Plates,
    /// The register's "today" as a day number.
    pub(super) today: i32,
}

impl Maker {
    pub(super) fn new(seed: u64, vehicles: u64) -> Maker {
        let mut rng = Pcg64::seed_from_u64(seed);
        let refd = refdata();
        let mut acc = 0;
        let place_cum = refd
            .places
            .iter()
            .map(|m| {
                acc += m.weight;
                acc
            })
            .collect();
        let all_makes = schema::parse_code_csv(schema::CODE_TABLES[0].1)
            .into_iter()
            .filter(|(c, n)| c.len() == 4 && !n.is_empty() && !n.contains(['¤', '\r', '\n']))
            .collect();
        let mut m = Maker {
            rng: Pcg64::seed_from_u64(0),
            refd,
            place_cum,
            orgs: Vec::new(),
            lessors: Vec::new(),
            all_makes,
            plates: Plates::new(),
            today: as_of(),
        };
        // Organisation pool first, from its own stream, so fleet owners are stable.
        m.rng = Pcg64::seed_from_u64(seed ^ 0x6f72_6773);
        let mut numbers = HashSet::new();
        let n_orgs = (vehicles / 40).clamp(50, 200_000) as usize;
        for i in 0..n_orgs + 40 {
            let pool = if i >= n_orgs {
                OrgPool::Lessors
            } else {
                OrgPool::Owners
            };
            let org = m.org(&mut numbers, pool);
            match pool {
                OrgPool::Lessors => m.lessors.push(org),
                OrgPool::Owners => m.orgs.push(org),
            }
        }
        std::mem::swap(&mut m.rng, &mut rng);
        m
    }

    /// True with probability `p` (clamped to 0..=1).
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    /// A day in `a..=b` (`a` if the range is empty).
    pub(super) fn date_between(&mut self, a: i32, b: i32) -> i32 {
        if b <= a {
            a
        } else {
            self.rng.gen_range(a..=b)
        }
    }
}

/// One of `items` by weight.
pub(super) fn pick_weighted<T: Copy>(rng: &mut Pcg64, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut r = rng.gen_range(0..total);
    for &(t, w) in items {
        if r < w {
            return t;
        }
        r -= w;
    }
    items[items.len() - 1].0
}

/// One of `makes` by weight (the first if all weigh nothing).
pub(super) fn pick_make<'a>(rng: &mut Pcg64, makes: &'a [Make]) -> &'a Make {
    let total: u32 = makes.iter().map(|m| m.weight).sum();
    let mut r = rng.gen_range(0..total.max(1));
    for m in makes {
        if r < m.weight {
            return m;
        }
        r -= m.weight;
    }
    &makes[0]
}

/// One of `items`, all equally likely.
pub(super) fn pick<'a, T>(rng: &mut Pcg64, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}
