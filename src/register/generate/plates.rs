//! Registration plates: the series a new plate is drawn from and the plates used so far
//! (every plate is unique within a register).

use crate::core::ids;
use rand::Rng;
use rand_pcg::Pcg64;

/// Letters used on plates (no I, M, O, Q, W; no Æ, Ø, Å).
pub(super) const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLNPRSTUVXYZ";

/// Which series a new plate is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlateSeries {
    /// Old shapes: A9999, A999 or 999999 (some vehicles from before 1972).
    Old,
    /// Two letters of an electric series (`EL`, `EK`, ...) and five digits.
    Electric,
    /// Two letters (not an electric series) and five digits: cars, vans, trucks, buses.
    FiveDigits,
    /// Two letters and four digits: trailers, motorcycles, tractors, ...
    FourDigits,
}

/// A set of small numbers.
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset(vec![0; bits.div_ceil(64)])
    }

    /// Sets a bit; false if it was already set.
    fn insert(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let was = self.0[w] & b != 0;
        self.0[w] |= b;
        !was
    }
}

/// The plates handed out so far, per shape.
pub(super) struct Plates {
    five: Bitset,
    four: Bitset,
    old: Bitset,
}

impl Plates {
    pub(super) fn new() -> Plates {
        Plates {
            five: Bitset::new(26 * 26 * 100_000),
            four: Bitset::new(26 * 26 * 10_000),
            old: Bitset::new(26 * 10_000 + 26 * 1_000 + 1_000_000),
        }
    }

    /// A new plate of `series`, unique within this register.
    pub(super) fn draw(&mut self, rng: &mut Pcg64, series: PlateSeries) -> String {
        let letters = PLATE_LETTERS;
        loop {
            if series == PlateSeries::Old {
                if let Some(s) = self.old_plate(rng) {
                    return s;
                }
                continue;
            }
            let (a, b) = if series == PlateSeries::Electric {
                let s = ids::ELECTRIC_SERIES[rng.gen_range(0..ids::ELECTRIC_SERIES.len())];
                (s.as_bytes()[0], s.as_bytes()[1])
            } else {
                let a = letters[rng.gen_range(0..letters.len())];
                let b = letters[rng.gen_range(0..letters.len())];
                if series == PlateSeries::FiveDigits
                    && a == b'E'
                    && ids::ELECTRIC_SERIES.iter().any(|s| s.as_bytes()[1] == b)
                {
                    continue; // electric series are for electric cars
                }
                (a, b)
            };
            let pair = (a - b'A') as usize * 26 + (b - b'A') as usize;
            if series == PlateSeries::FourDigits {
                let n = rng.gen_range(1000..10_000);
                if self.four.insert(pair * 10_000 + n) {
                    return format!("{}{}{n}", a as char, b as char);
                }
            } else {
                let n = rng.gen_range(10_000..100_000);
                if self.five.insert(pair * 100_000 + n) {
                    return format!("{}{}{n}", a as char, b as char);
                }
            }
        }
    }

    /// One try at an old plate: A9999, A999 or 999999; None if it was taken.
    fn old_plate(&mut self, rng: &mut Pcg64) -> Option<String> {
        let letters = PLATE_LETTERS;
        let r = rng.gen_range(0..10);
        let l = letters[rng.gen_range(0..letters.len())];
        let (key, s) = if r < 6 {
            let n = rng.gen_range(1000..10_000);
            (
                (l - b'A') as usize * 10_000 + n,
                format!("{}{n}", l as char),
            )
        } else if r < 8 {
            let n = rng.gen_range(100..1000);
            (
                260_000 + (l - b'A') as usize * 1_000 + n,
                format!("{}{n}", l as char),
            )
        } else {
            let n = rng.gen_range(100_000..1_000_000);
            (286_000 + n, format!("{n}"))
        };
        self.old.insert(key).then_some(s)
    }
}
