//! The top-level keys of a subscription file: `id`, `customer`, `customer_org_number`
//! (`case_number`, `invoice_reference` and `[contact]` are taken as written; `legal_basis`
//! is checked with the personal-data rules in [`super::encryption`]).

use super::super::raw::RawSubscription;
use super::Problem;

/// Problems of the subscription's identity keys.
pub(super) fn check_identity(raw: &RawSubscription, p: &mut Vec<Problem>) {
    if !valid_id(&raw.id) {
        p.push(Problem::new(
            "id",
            format!("`{}` is not a valid id; use 1-63 lowercase letters, digits and `-`, starting with a letter or digit", raw.id),
        ));
    }
    if raw.customer.trim().is_empty() {
        p.push(Problem::new(
            "customer",
            "the customer's name is empty; write the name that goes into receipts",
        ));
    }
    if let Some(org) = &raw.customer_org_number {
        if !crate::core::ids::is_valid_org_number(org) {
            p.push(Problem::new(
                "customer_org_number",
                format!("`{org}` is not a valid organisation number (9 digits, mod-11 check digit); copy it from Brønnøysundregistrene"),
            ));
        }
    }
}

/// Whether `id` is a subscription id: 1-63 lowercase letters, digits and `-`, not
/// starting with `-`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, message_at, subscription};
    use super::*;

    fn identity(id: &str, customer: &str, org: Option<&str>) -> Vec<Problem> {
        let mut raw = subscription("");
        raw.id = id.into();
        raw.customer = customer.into();
        raw.customer_org_number = org.map(String::from);
        let mut p = Vec::new();
        check_identity(&raw, &mut p);
        p
    }

    #[test]
    fn a_plain_identity_passes() {
        assert!(identity("acme-1", "ACME AS", None).is_empty());
        assert!(identity("9lives", "ACME AS", Some("974760673")).is_empty());
    }

    #[test]
    fn ids_are_lowercase_letters_digits_and_dashes() {
        assert!(valid_id("a"));
        assert!(valid_id(&"a".repeat(63)));
        for bad in ["", "-a", "Acme", "a_b", "a b", "æ", &"a".repeat(64)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        let p = identity("Acme", "ACME AS", None);
        assert_eq!(
            message_at(&p, "id"),
            "`Acme` is not a valid id; use 1-63 lowercase letters, digits and `-`, starting with a letter or digit"
        );
    }

    #[test]
    fn an_empty_customer_and_a_bad_org_number_are_refused() {
        let p = identity("acme", "  ", Some("974760674"));
        assert_eq!(keys(&p), ["customer", "customer_org_number"]);
        assert_eq!(
            message_at(&p, "customer"),
            "the customer's name is empty; write the name that goes into receipts"
        );
        assert_eq!(
            message_at(&p, "customer_org_number"),
            "`974760674` is not a valid organisation number (9 digits, mod-11 check digit); copy it from Brønnøysundregistrene"
        );
    }
}
