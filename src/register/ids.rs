//! Norwegian identifiers: organisation numbers (placeholder until the register branch lands).

/// Organisation number: 9 digits, mod-11 check digit with weights 3,2,7,6,5,4,3,2.
pub fn valid_org_number(s: &str) -> bool {
    let d: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 9 || s.len() != 9 {
        return false;
    }
    let sum: u32 = [3, 2, 7, 6, 5, 4, 3, 2].iter().zip(&d).map(|(w, x)| w * x).sum();
    let k = 11 - sum % 11;
    let k = if k == 11 { 0 } else { k };
    k != 10 && k == d[8]
}
