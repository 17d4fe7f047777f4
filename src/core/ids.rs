//! Identifier rules of the register (pure): organisation numbers (mod 11), fødselsnumre and
//! D-numbers (two mod-11 check digits, century from the individual number), plate shapes and
//! VINs. Used to validate imported data and to make valid synthetic identifiers.

/// Weights of the organisation-number check digit (over the first 8 digits).
const ORG_WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
/// Weights of the first fødselsnummer check digit (over the first 9 digits).
const K1_WEIGHTS: [u32; 9] = [3, 7, 6, 1, 8, 9, 4, 5, 2];
/// Weights of the second fødselsnummer check digit (over the first 10 digits).
const K2_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

/// `11 - (sum mod 11)`, 11 gives 0, 10 means "no valid check digit".
fn mod11(digits: &[u8], weights: &[u32]) -> Option<u8> {
    let sum: u32 = digits
        .iter()
        .zip(weights)
        .map(|(&d, &w)| u32::from(d) * w)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        k => Some(k as u8),
    }
}

/// Digits of `s` if it consists of exactly `n` ASCII digits.
fn digits_of(s: &str, n: usize) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() != n || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().map(|c| c - b'0').collect())
}

/// The check digit for the first 8 digits of an organisation number, or `None` when no
/// check digit exists (those 8 digits can never start a valid number).
pub fn org_check_digit(first8: &[u8; 8]) -> Option<u8> {
    mod11(first8, &ORG_WEIGHTS)
}

/// Completes 8 digits (each 0-9) to a valid 9-digit organisation number, if possible.
pub fn org_number_from(first8: &[u8; 8]) -> Option<String> {
    let k = org_check_digit(first8)?;
    let mut s: String = first8.iter().map(|d| char::from(b'0' + d)).collect();
    s.push(char::from(b'0' + k));
    Some(s)
}

/// A valid organisation number: 9 digits with the right mod-11 check digit.
pub fn is_valid_org_number(s: &str) -> bool {
    let Some(d) = digits_of(s, 9) else {
        return false;
    };
    mod11(&d[..8], &ORG_WEIGHTS) == Some(d[8])
}

/// The two check digits of a fødselsnummer's first 9 digits, if they exist.
pub fn fnr_check_digits(first9: &[u8; 9]) -> Option<(u8, u8)> {
    let k1 = mod11(first9, &K1_WEIGHTS)?;
    let mut ten = [0u8; 10];
    ten[..9].copy_from_slice(first9);
    ten[9] = k1;
    let k2 = mod11(&ten, &K2_WEIGHTS)?;
    Some((k1, k2))
}

/// The full four-digit year for a two-digit year and an individual number (000-999), by the
/// authority's ranges; `None` for combinations that are never issued.
pub fn century_year(yy: u32, individual: u32) -> Option<u32> {
    match individual {
        0..=499 => Some(1900 + yy),
        500..=749 if yy >= 54 => Some(1800 + yy),
        500..=999 if yy < 40 => Some(2000 + yy),
        900..=999 if yy >= 40 => Some(1900 + yy),
        _ => None,
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// Birth date (`YYYYMMDD`) of a fødselsnummer or D-number (day + 40). Checks the date and
/// the century rule, not the check digits (see [`is_valid_fnr`]).
pub fn birth_date(fnr: &str) -> Option<String> {
    let d = digits_of(fnr, 11)?;
    let num = |a: usize, b: usize| u32::from(d[a]) * 10 + u32::from(d[b]);
    let mut day = num(0, 1);
    if day > 40 {
        day -= 40; // D-number
    }
    let month = num(2, 3);
    let yy = num(4, 5);
    let individual = u32::from(d[6]) * 100 + u32::from(d[7]) * 10 + u32::from(d[8]);
    let year = century_year(yy, individual)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(format!("{year:04}{month:02}{day:02}"))
}

/// A valid fødselsnummer or D-number: 11 digits, a real birth date under the century rule,
/// and both check digits right.
pub fn is_valid_fnr(s: &str) -> bool {
    let Some(d) = digits_of(s, 11) else {
        return false;
    };
    let first9: [u8; 9] = d[..9].try_into().expect("9 digits");
    birth_date(s).is_some() && fnr_check_digits(&first9) == Some((d[9], d[10]))
}

/// Makes a fødselsnummer (or D-number) for a birth date and an individual number, if the
/// combination is issuable and has check digits. `individual` must suit the year's century
/// (see [`century_year`]); callers retry with another individual number on `None`.
pub fn make_fnr(
    year: u32,
    month: u32,
    day: u32,
    individual: u32,
    d_number: bool,
) -> Option<String> {
    if individual > 999 || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    if day > days_in_month(year, month) || century_year(year % 100, individual) != Some(year) {
        return None;
    }
    let dd = if d_number { day + 40 } else { day };
    let yy = year % 100;
    let first9 = [
        (dd / 10) as u8,
        (dd % 10) as u8,
        (month / 10) as u8,
        (month % 10) as u8,
        (yy / 10) as u8,
        (yy % 10) as u8,
        (individual / 100) as u8,
        (individual / 10 % 10) as u8,
        (individual % 10) as u8,
    ];
    let (k1, k2) = fnr_check_digits(&first9)?;
    let mut s: String = first9.iter().map(|d| char::from(b'0' + d)).collect();
    s.push(char::from(b'0' + k1));
    s.push(char::from(b'0' + k2));
    Some(s)
}

/// The individual-number range (inclusive) normally used for persons born in `year`.
pub fn individual_range(year: u32) -> Option<(u32, u32)> {
    match year {
        1854..=1899 => Some((500, 749)),
        1900..=1999 => Some((0, 499)),
        2000..=2039 => Some((500, 999)),
        _ => None,
    }
}

/// The shapes a Norwegian plate (`TEKN_KJM`, written without a space) can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlateShape {
    /// Two letters + 10000-99999 (cars; `EL`/`EK`/`EV`/... series for electric cars).
    TwoLettersFiveDigits,
    /// Two letters + 1000-9999 (trailers, motorcycles, tractors, ...).
    TwoLettersFourDigits,
    /// Old shape: one letter + 1000-9999.
    LetterFourDigits,
    /// Old shape: one letter + 100-999.
    LetterThreeDigits,
    /// Old shape: six digits.
    SixDigits,
}

/// Plate series reserved for electric cars.
pub const ELECTRIC_SERIES: [&str; 9] = ["EL", "EK", "EV", "EB", "EC", "ED", "EE", "EF", "EH"];

/// The shape of a plate, accepting the lookup API's form with one space (`EK 39085`).
/// Letters are A-Z (no Æ, Ø, Å); numbers have no leading zero.
pub fn plate_shape(plate: &str) -> Option<PlateShape> {
    let compact: String = match plate.split_once(' ') {
        Some((a, b)) if !b.contains(' ') => format!("{a}{b}"),
        Some(_) => return None,
        None => plate.to_string(),
    };
    let b = compact.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let rest = &b[letters..];
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) || rest[0] == b'0' {
        return None;
    }
    match (letters, rest.len()) {
        (2, 5) => Some(PlateShape::TwoLettersFiveDigits),
        (2, 4) => Some(PlateShape::TwoLettersFourDigits),
        (1, 4) => Some(PlateShape::LetterFourDigits),
        (1, 3) => Some(PlateShape::LetterThreeDigits),
        (0, 6) => Some(PlateShape::SixDigits),
        _ => None,
    }
}

/// True if the plate belongs to an electric-car series (`EL12345`, `EK 39085`).
pub fn is_electric_series(plate: &str) -> bool {
    plate_shape(plate) == Some(PlateShape::TwoLettersFiveDigits)
        && ELECTRIC_SERIES.contains(&&plate[..2])
}

/// Characters a VIN may contain: digits and A-Z except I, O, Q.
pub fn is_vin_char(c: u8) -> bool {
    c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'O' | b'Q'))
}

/// A 17-character VIN without I, O or Q. The position-9 check digit is only mandatory in
/// North America, so it is not enforced.
pub fn is_vin(s: &str) -> bool {
    s.len() == 17 && s.bytes().all(is_vin_char)
}

/// The North-American check digit (position 9) for a 17-character VIN, ignoring whatever is
/// in position 9; `None` if a character is not allowed in VINs.
pub fn vin_check_digit(vin: &[u8; 17]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let mut sum = 0u32;
    for (i, &c) in vin.iter().enumerate() {
        if i == 8 {
            continue;
        }
        if !is_vin_char(c) {
            return None;
        }
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'H' => u32::from(c - b'A') + 1,
            b'J'..=b'N' => u32::from(c - b'J') + 1,
            b'P' => 7,
            b'R'..=b'Z' => u32::from(c - b'R') + 2,
            _ => return None,
        };
        sum += v * WEIGHTS[i];
    }
    Some(match sum % 11 {
        10 => b'X',
        r => b'0' + r as u8,
    })
}

/// True for a `YYYYMMDD` date that exists in the calendar.
pub fn is_date(s: &str) -> bool {
    let Some(d) = digits_of(s, 8) else {
        return false;
    };
    let n = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (y, m, day) = (n(0..4), n(4..6), n(6..8));
    (1..=12).contains(&m) && day >= 1 && day <= days_in_month(y, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_numbers() {
        // Published organisation numbers (Brønnøysund, Statens vegvesen, DNB Bank).
        for n in ["974760673", "971032081", "984851006"] {
            assert!(is_valid_org_number(n), "{n}");
        }
        assert!(!is_valid_org_number("974760674"));
        assert!(!is_valid_org_number("97476067"));
        assert!(!is_valid_org_number("97476067a"));
        assert!(!is_valid_org_number(""));
        assert_eq!(
            org_number_from(&[9, 7, 4, 7, 6, 0, 6, 7]).as_deref(),
            Some("974760673")
        );
        // Every 8-digit prefix either completes to a valid number or has no check digit.
        let mut none = 0;
        for i in 0..1000u32 {
            let p = [
                9,
                1,
                0,
                0,
                0,
                (i / 100) as u8,
                (i / 10 % 10) as u8,
                (i % 10) as u8,
            ];
            match org_number_from(&p) {
                Some(s) => assert!(is_valid_org_number(&s), "{s}"),
                None => none += 1,
            }
        }
        assert!(none > 50 && none < 150, "{none}");
    }

    #[test]
    fn fnr_check_digits_and_birth_dates() {
        let f = make_fnr(1990, 1, 1, 123, false);
        if let Some(f) = &f {
            assert!(is_valid_fnr(f), "{f}");
            assert_eq!(birth_date(f).as_deref(), Some("19900101"));
        }
        // 01010750160: individual number 501 with YY 07 means born 2007.
        assert!(is_valid_fnr("01010750160"));
        assert_eq!(birth_date("01010750160").as_deref(), Some("20070101"));
        assert!(is_valid_fnr("15076500565"));
        assert_eq!(birth_date("15076500565").as_deref(), Some("19650715"));
        assert!(!is_valid_fnr("01010750161"));
        assert!(!is_valid_fnr("0101075016"));
        assert!(!is_valid_fnr("3201075016x"));
    }

    #[test]
    fn century_rules() {
        assert_eq!(century_year(85, 0), Some(1985));
        assert_eq!(century_year(85, 499), Some(1985));
        assert_eq!(century_year(60, 500), Some(1860));
        assert_eq!(century_year(60, 749), Some(1860));
        assert_eq!(century_year(10, 500), Some(2010));
        assert_eq!(century_year(39, 999), Some(2039));
        assert_eq!(century_year(45, 950), Some(1945));
        assert_eq!(century_year(45, 600), None);
        assert_eq!(century_year(45, 800), None);
        assert_eq!(century_year(60, 800), None);
    }

    #[test]
    fn generated_numbers_round_trip() {
        let mut made = 0;
        for (year, month, day) in [
            (1938, 2, 28),
            (1965, 12, 31),
            (2004, 2, 29),
            (1880, 7, 4),
            (1999, 6, 15),
        ] {
            let (lo, hi) = individual_range(year).unwrap();
            for ind in lo..=hi {
                for d_number in [false, true] {
                    if let Some(f) = make_fnr(year, month, day, ind, d_number) {
                        made += 1;
                        assert!(is_valid_fnr(&f), "{f}");
                        assert_eq!(birth_date(&f), Some(format!("{year:04}{month:02}{day:02}")));
                        if d_number {
                            assert!(f.as_bytes()[0] >= b'4', "{f}");
                        }
                    }
                }
            }
        }
        assert!(made > 3000, "{made}");
        assert_eq!(make_fnr(2003, 2, 29, 600, false), None);
        assert_eq!(
            make_fnr(1985, 1, 1, 600, false),
            None,
            "wrong century for 600"
        );
        assert!(birth_date("31029912345").is_none(), "31 February");
        assert!(birth_date("01130012345").is_none(), "month 13");
    }

    #[test]
    fn plates() {
        use PlateShape::*;
        assert_eq!(plate_shape("ND52471"), Some(TwoLettersFiveDigits));
        assert_eq!(plate_shape("EK 39085"), Some(TwoLettersFiveDigits));
        assert_eq!(plate_shape("YN6601"), Some(TwoLettersFourDigits));
        assert_eq!(plate_shape("A1234"), Some(LetterFourDigits));
        assert_eq!(plate_shape("A123"), Some(LetterThreeDigits));
        assert_eq!(plate_shape("123456"), Some(SixDigits));
        for bad in [
            "",
            "ND0247",
            "ND524711",
            "ØK12345",
            "nd52471",
            "ND 52 471",
            "ABC1234",
            "AB",
        ] {
            assert_eq!(plate_shape(bad), None, "{bad}");
        }
        assert!(is_electric_series("EL12345"));
        assert!(is_electric_series("EK 39085"));
        assert!(!is_electric_series("EA12345"));
        assert!(!is_electric_series("EL1234"));
    }

    #[test]
    fn vins_and_dates() {
        assert!(!is_vin("WOLOTGF35Y2259530"), "O is not allowed");
        assert!(is_vin("TMBGJ61Z8A2027688"));
        assert!(is_vin("JMZBA125200180687"));
        assert!(!is_vin("JMZBA12520018068"));
        assert!(!is_vin("JMZBA1252001806I7"));
        // The textbook example 1M8GDM9AXKP042788 has check digit X.
        let v: [u8; 17] = *b"1M8GDM9AXKP042788";
        assert_eq!(vin_check_digit(&v), Some(b'X'));
        assert!(is_date("20240229"));
        assert!(!is_date("20230229"));
        assert!(!is_date("2024022"));
        assert!(!is_date("20241301"));
    }
}
