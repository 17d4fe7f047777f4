//! Civil dates as day numbers since 1970-01-01 (proleptic Gregorian) and the register's
//! fixed "today" ([`AS_OF`]).

/// The synthetic register's "today" (`YYYYMMDD`): no date lies after it.
pub const AS_OF: (i32, u32, u32) = (2025, 6, 30);

/// Days since 1970-01-01 of a civil date.
pub(super) fn days(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub(super) fn civil(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The year of a day number.
pub(super) fn year_of(day: i32) -> i32 {
    civil(day).0
}

/// The day number of [`AS_OF`].
pub(super) fn as_of() -> i32 {
    days(AS_OF.0, AS_OF.1, AS_OF.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(civil(days(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil(days(1855, 1, 1)), (1855, 1, 1));
        for z in (-50_000..30_000).step_by(37) {
            let (y, m, d) = civil(z);
            assert_eq!(days(y, m, d), z);
        }
    }
}
