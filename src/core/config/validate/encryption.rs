//! The `[encryption]` table (`mode`, `recipients`) and the personal-data rules that tie it
//! and the top-level `legal_basis` to the extract: personal columns need a legal basis,
//! identifying or personal columns always go out encrypted -> [`EncryptionSpec`].

use super::super::raw::RawEncryption;
use super::super::Recipient;
use super::types::{EncryptionSpec, ExtractSpec};
use super::Problem;

/// The encryption; `extract` is `None` when the extract had problems of its own (the
/// personal-data rules are then left until it is right).
pub(super) fn validate_encryption(
    raw: &RawEncryption,
    legal_basis: Option<&str>,
    extract: Option<&ExtractSpec>,
    p: &mut Vec<Problem>,
) -> EncryptionSpec {
    let passphrase = raw.mode.as_deref() == Some("passphrase");
    let encrypt = match raw.mode.as_deref() {
        None | Some("age") | Some("passphrase") => true,
        Some("none") => false,
        Some(other) => {
            p.push(Problem::new(
                "encryption.mode",
                format!("`{other}` is not a mode; use \"age\" (default), \"passphrase\" (e-mail, by SMS) or \"none\""),
            ));
            true
        }
    };
    let mut recipients = Vec::new();
    for (i, r) in raw.recipients.iter().enumerate() {
        match Recipient::parse(r) {
            Ok(r) => recipients.push(r),
            Err(e) => p.push(Problem::new(
                format!("encryption.recipients[{i}]"),
                e.to_string(),
            )),
        }
    }
    if let Some(x) = extract {
        needs_legal_basis(x, legal_basis, p);
        if !encrypt {
            needs_encryption(x, p);
        }
    }
    if passphrase && !raw.recipients.is_empty() {
        p.push(Problem::new(
            "encryption.recipients",
            "mode = \"passphrase\" is for customers without an age key; with recipients, remove the mode (the file is encrypted to them and no SMS is sent)",
        ));
    }
    if encrypt && !passphrase && raw.recipients.is_empty() {
        p.push(Problem::new(
            "encryption.recipients",
            "no age recipient; add the customer's `age1...` key or `ssh-ed25519 ...` public key",
        ));
    }
    EncryptionSpec {
        recipients,
        encrypt,
        passphrase,
    }
}

/// The personal-data columns of the extract, in column order.
fn personal(x: &ExtractSpec) -> Vec<&str> {
    x.columns
        .iter()
        .filter(|f| f.personal)
        .map(|f| f.name.as_str())
        .collect()
}

/// Personal columns need a `legal_basis`.
fn needs_legal_basis(x: &ExtractSpec, legal_basis: Option<&str>, p: &mut Vec<Problem>) {
    let personal = personal(x);
    if !personal.is_empty() && legal_basis.map(str::trim).unwrap_or("").is_empty() {
        p.push(Problem::new(
            "legal_basis",
            format!(
                "this extract discloses personal data ({}{}); write the customer's legal basis (law and agreement) in legal_basis, or drop the personal columns",
                personal.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                if personal.len() > 3 { ", ..." } else { "" }
            ),
        ));
    }
}

/// Identifying or personal columns never go out unencrypted.
fn needs_encryption(x: &ExtractSpec, p: &mut Vec<Problem>) {
    let identifying = x.columns.iter().any(|f| f.identifying);
    if identifying || !personal(x).is_empty() {
        p.push(Problem::new(
            "encryption.mode",
            "this report holds identifying or personal fields, which always go out encrypted; remove mode = \"none\" and give age recipients",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{extract, keys, message_at, AGE};
    use super::*;

    fn encryption(
        toml_text: &str,
        legal_basis: Option<&str>,
        x: Option<&ExtractSpec>,
    ) -> (EncryptionSpec, Vec<Problem>) {
        let raw: RawEncryption = toml::from_str(toml_text).expect("an [encryption] table");
        let mut p = Vec::new();
        (validate_encryption(&raw, legal_basis, x, &mut p), p)
    }

    #[test]
    fn age_recipients_are_kept_trimmed() {
        let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ me@host";
        let (e, p) = encryption(
            &format!("recipients = [\" {AGE} \", \"{ssh}\"]"),
            None,
            None,
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            e,
            EncryptionSpec {
                recipients: vec![AGE.parse().unwrap(), ssh.parse().unwrap()],
                encrypt: true,
                passphrase: false,
            }
        );
    }

    #[test]
    fn recipients_are_checked_one_by_one() {
        let (e, p) = encryption(
            &format!(
                "recipients = [\"{AGE}\", \"bob@example.no\", \"age1qqqq\", \"{}\"]",
                "x".repeat(50)
            ),
            None,
            None,
        );
        assert_eq!(e.recipients, [AGE]);
        assert_eq!(
            keys(&p),
            [
                "encryption.recipients[1]",
                "encryption.recipients[2]",
                "encryption.recipients[3]"
            ]
        );
        assert_eq!(
            message_at(&p, "encryption.recipients[1]"),
            "`bob@example.no` is not an age recipient; use an `age1...` key (from `age-keygen -y`) or an `ssh-ed25519`/`ssh-rsa` public-key line"
        );
        assert_eq!(
            message_at(&p, "encryption.recipients[2]"),
            "`age1qqqq` does not parse as an age recipient; check it was copied whole"
        );
        // Long values are cut to 40 characters in the message.
        assert!(message_at(&p, "encryption.recipients[3]")
            .starts_with(&format!("`{}...` is not", "x".repeat(40))));
    }

    #[test]
    fn encryption_needs_a_recipient_and_a_known_mode() {
        let (_, p) = encryption("", None, None);
        assert_eq!(
            message_at(&p, "encryption.recipients"),
            "no age recipient; add the customer's `age1...` key or `ssh-ed25519 ...` public key"
        );
        let (e, p) = encryption("mode = \"rot13\"", None, None);
        assert!(e.encrypt);
        assert_eq!(keys(&p), ["encryption.mode", "encryption.recipients"]);
        assert_eq!(
            message_at(&p, "encryption.mode"),
            "`rot13` is not a mode; use \"age\" (default), \"passphrase\" (e-mail, by SMS) or \"none\""
        );
    }

    #[test]
    fn open_data_may_go_out_unencrypted() {
        let open = extract("report = \"technical_open\"");
        let (e, p) = encryption("mode = \"none\"", None, Some(&open));
        assert!(p.is_empty(), "{p:?}");
        assert!(!e.encrypt);
    }

    #[test]
    fn identifying_columns_always_go_out_encrypted() {
        let plates = extract("report = \"custom\"\ncolumns = [\"TEKN_KJM\"]");
        let (_, p) = encryption("mode = \"none\"", None, Some(&plates));
        assert_eq!(
            message_at(&p, "encryption.mode"),
            "this report holds identifying or personal fields, which always go out encrypted; remove mode = \"none\" and give age recipients"
        );
    }

    #[test]
    fn personal_columns_need_a_legal_basis() {
        let owners = extract(
            "report = \"custom\"\ncolumns = [\"EIER_NAVN\", \"EIER_FODSELSDATO\", \"MEDEIER_NAVN\", \"LEASINGTAKER_NAVN\"]",
        );
        let recipients = format!("recipients = [\"{AGE}\"]");
        for basis in [None, Some("  ")] {
            let (_, p) = encryption(&recipients, basis, Some(&owners));
            assert_eq!(keys(&p), ["legal_basis"]);
            assert_eq!(
                message_at(&p, "legal_basis"),
                "this extract discloses personal data (EIER_NAVN, EIER_FODSELSDATO, MEDEIER_NAVN, ...); write the customer's legal basis (law and agreement) in legal_basis, or drop the personal columns"
            );
        }
        let (_, p) = encryption(&recipients, Some("vegtrafikkloven § 47"), Some(&owners));
        assert!(p.is_empty(), "{p:?}");
    }
}
