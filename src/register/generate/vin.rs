//! Chassis numbers: 17-character VINs with a valid check digit, and the short numbers of
//! older vehicles.

use super::maker::Maker;
use super::plates::PLATE_LETTERS;
use crate::core::ids;
use rand::Rng;

/// Characters allowed in a VIN (no I, O, Q); also used for engine codes and versions.
pub(super) const VIN_CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
/// The model-year character of a VIN (position 10), from 1980 in a 30-year cycle.
const VIN_YEARS: &[u8] = b"ABCDEFGHJKLMNPRSTVWXY123456789";

impl Maker {
    /// A VIN of a manufacturer prefix (`wmi`; random where missing) and model year.
    pub(super) fn vin(&mut self, wmi: &str, year: i32) -> String {
        let mut v = [b'0'; 17];
        let w = wmi.as_bytes();
        for (i, slot) in v.iter_mut().take(3).enumerate() {
            *slot = match w.get(i) {
                Some(&c) if ids::is_vin_char(c) => c,
                _ => VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())],
            };
        }
        for slot in v.iter_mut().take(8).skip(3) {
            *slot = VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())];
        }
        v[9] = VIN_YEARS[(year - 1980).rem_euclid(30) as usize];
        v[10] = VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())];
        for slot in v.iter_mut().skip(11) {
            *slot = b'0' + self.rng.gen_range(0..10);
        }
        v[8] = ids::vin_check_digit(&v).unwrap_or(b'0');
        String::from_utf8_lossy(&v).into_owned()
    }

    /// An old chassis number: 5-11 characters, mostly digits.
    pub(super) fn legacy_chassis(&mut self) -> String {
        let len = self.rng.gen_range(5..=11);
        let mut s = String::with_capacity(len);
        let letters = if self.chance(0.3) {
            self.rng.gen_range(1..4)
        } else {
            0
        };
        for i in 0..len {
            if i < letters {
                s.push(PLATE_LETTERS[self.rng.gen_range(0..PLATE_LETTERS.len())] as char);
            } else {
                s.push((b'0' + self.rng.gen_range(0..10)) as char);
            }
        }
        s
    }

    /// `len` random VIN characters (engine codes, type-approval versions).
    pub(super) fn vin_chars(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| VIN_CHARS[self.rng.gen_range(0..VIN_CHARS.len())] as char)
            .collect()
    }
}
