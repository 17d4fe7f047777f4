//! Raw configuration -> validated, rich types. Pure: no file or network I/O. Collects every
//! problem of a file (not only the first), each with the key it concerns and a sentence
//! saying what to do.
//!
//! One file per TOML table, each with its unit tests: `daemon` (the daemon file),
//! `subscription` (top-level keys), `schedule`, `target`, `auth`, `extract`,
//! `filter`, `encryption` (with the personal-data rules), `delivery`, `smtp` (the daemon
//! file's mail server), `notify` (`[notify]` and a subscription's delivery notice); the
//! validated types are in `types`. This file holds the entry points and the [`Problem`] they
//! collect.

mod auth;
mod daemon;
mod delivery;
mod email;
mod encryption;
mod extract;
mod filter;
mod notify;
mod schedule;
mod smtp;
mod subscription;
mod target;
mod types;

pub use daemon::{node_name_problem, validate_daemon};
pub use email::{
    mask_mobile, normalize_mobile, render_subject, EmailSpec, SmsFormat, SmsSpec, EMAIL_MAX_BYTES,
    EMAIL_MAX_BYTES_DEFAULT,
};
pub use notify::{is_email_address, NotifySpec, WebhookSpec};
pub use smtp::{SmtpAuthSpec, SmtpSpec, SmtpTls};
pub use subscription::valid_id;
pub use target::{host_key_fingerprint, parse_host_key};
pub use types::{
    AuthSpec, CommitMode, DaemonConfig, DeliverySpec, EncryptionSpec, ExtractSpec, Filter, Format,
    IfExists, Inherited, Offers, PeriodSpec, SecretRef, Subscription, TargetSpec, TargetTuning,
    Transport, VerifyLevel,
};

use super::limits;
use super::raw::RawSubscription;
use std::path::Path;

/// One problem, tied to a key path (`target.host_keys[1]`) that the loader turns into a
/// line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Validates one subscription, collecting every problem, table by table in file order.
pub fn validate_subscription(
    raw: &RawSubscription,
    inherited: &Inherited,
    source: &Path,
) -> Result<Subscription, Vec<Problem>> {
    let mut p: Vec<Problem> = Vec::new();
    subscription::check_identity(raw, &mut p);
    let schedule = schedule::validate_schedule(&raw.schedule, &inherited.timezone, &mut p);
    let target = raw
        .target
        .as_ref()
        .map(|t| target::validate_target(t, inherited, &mut p));
    let extract = extract::validate_extract(&raw.extract, &mut p);
    let encryption = encryption::validate_encryption(
        &raw.encryption,
        raw.legal_basis.as_deref(),
        extract.as_ref(),
        &mut p,
    );
    let email = raw.email.as_ref().map(|e| {
        let has_period = raw.extract.period.is_some();
        email::validate_email(e, raw, &encryption, has_period, &mut p)
    });
    if encryption.passphrase && email.is_none() {
        p.push(Problem::new(
            "encryption.mode",
            "mode = \"passphrase\" is only for [email] deliveries (the passphrase goes by SMS); an SFTP [target] needs the customer's age recipients",
        ));
    }
    let transport = match (target, email) {
        (Some(t), None) => Some(Transport::Sftp(t)),
        (None, Some(e)) => Some(Transport::Email(e)),
        (Some(_), Some(_)) => {
            p.push(Problem::new(
                "email",
                "a subscription goes either to an SFTP [target] or by [email], not both; remove one of the two tables",
            ));
            None
        }
        (None, None) => {
            p.push(Problem::new(
                "target",
                "no [target] (SFTP) and no [email]: say where the files go",
            ));
            None
        }
    };
    let delivery = delivery::validate_delivery(&raw.delivery, &raw.id, extract.as_ref(), &mut p);
    let customer_notice = notify::customer_notice(raw, &mut p);
    channels_offered(raw, &encryption, customer_notice, inherited.offers, &mut p);
    let retry = inherited.retry.with(&raw.retry);
    limits::retry_problems(&raw.retry, &retry, &mut p);

    if !p.is_empty() {
        return Err(p);
    }
    let Some(schedule) = schedule else {
        return Err(vec![Problem::new(
            "schedule",
            "the schedule could not be built; check cron and timezone",
        )]);
    };
    let Some(transport) = transport else {
        return Err(vec![Problem::new(
            "target",
            "the transport could not be built",
        )]);
    };
    let Some(extract) = extract else {
        return Err(vec![Problem::new(
            "extract",
            "the extract could not be built; check the [extract] table",
        )]);
    };
    Ok(Subscription {
        id: raw.id.clone().into(),
        customer: raw.customer.trim().to_string(),
        customer_org_number: raw.customer_org_number.clone(),
        case_number: raw.case_number.clone(),
        invoice_reference: raw.invoice_reference.clone(),
        legal_basis: raw.legal_basis.clone().filter(|s| !s.trim().is_empty()),
        contact_email: raw.contact.as_ref().and_then(|c| c.email.clone()),
        contact_mobile: raw.contact.as_ref().and_then(|c| c.mobile.clone()),
        enabled: raw.enabled,
        schedule,
        transport,
        extract,
        encryption,
        delivery,
        customer_notice,
        retry,
        source: source.to_path_buf(),
    })
}

/// A subscription that sends through a channel the daemon file does not configure.
fn channels_offered(
    raw: &RawSubscription,
    encryption: &EncryptionSpec,
    notice: bool,
    offers: Offers,
    p: &mut Vec<Problem>,
) {
    if raw.email.is_some() && !offers.smtp {
        p.push(Problem::new(
            "email",
            "e-mail deliveries go through the [smtp] table of regdrop.toml, and there is none; add [smtp] (config.example.toml shows one) or deliver by SFTP with [target]",
        ));
    }
    if raw.email.is_some() && encryption.passphrase && !offers.sms {
        p.push(Problem::new(
            "encryption.mode",
            "the passphrase goes by SMS through the [sms] table of regdrop.toml, and there is none; add [sms] (config.example.toml shows one) or seal to the customer's age recipients",
        ));
    }
    if notice && !offers.smtp {
        p.push(Problem::new(
            "delivery.notice",
            "delivery notices go by e-mail through the [smtp] table of regdrop.toml, and there is none; add [smtp] or remove notice = true",
        ));
    }
}

/// What the tests of every table share: inputs and looking problems up by key.
#[cfg(test)]
pub(super) mod testing {
    use super::super::raw::{RawExtract, RawSubscription};
    use super::{ExtractSpec, Inherited, Problem};
    use crate::core::retry::RetryPolicy;

    /// An ed25519 OpenSSH public-key line.
    pub const HOST_KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    /// An age X25519 recipient.
    pub const AGE: &str = "age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r";

    pub fn inherited() -> Inherited {
        Inherited {
            timezone: "Europe/Oslo".into(),
            retry: RetryPolicy::default(),
            secrets_dir: "/etc/regdrop/secrets".into(),
            offers: super::Offers::ASSUMED,
        }
    }

    /// A valid subscription file, with `extra` added at its top level (before the tables).
    pub fn subscription(extra: &str) -> RawSubscription {
        let text = format!(
            "id = \"acme\"\ncustomer = \"ACME AS\"\n{extra}\n\
             [schedule]\ncron = \"0 6 * * MON\"\n\
             [target]\nhost = \"sftp.example.no\"\nusername = \"acme\"\nremote_dir = \"/in\"\nhost_keys = [\"{HOST_KEY}\"]\n\
             [target.auth]\nkey_file = \"acme.key\"\n\
             [extract]\nreport = \"technical\"\n\
             [encryption]\nrecipients = [\"{AGE}\"]\n"
        );
        toml::from_str(&text).expect("a subscription file")
    }

    /// A valid extract from an `[extract]` table.
    pub fn extract(toml_text: &str) -> ExtractSpec {
        let raw: RawExtract = toml::from_str(toml_text).expect("an [extract] table");
        let mut p = Vec::new();
        let x = super::extract::validate_extract(&raw, &mut p);
        assert!(p.is_empty(), "{p:?}");
        x.expect("an extract")
    }

    pub fn keys(p: &[Problem]) -> Vec<&str> {
        p.iter().map(|p| p.key.as_str()).collect()
    }

    /// The message of the one problem at `key`.
    pub fn message_at<'a>(p: &'a [Problem], key: &str) -> &'a str {
        let at: Vec<&Problem> = p.iter().filter(|p| p.key == key).collect();
        assert_eq!(at.len(), 1, "one problem at {key}: {p:?}");
        &at[0].message
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{inherited, keys, subscription};
    use super::*;

    #[test]
    fn a_minimal_subscription_is_valid() {
        let s =
            validate_subscription(&subscription(""), &inherited(), Path::new("acme.toml")).unwrap();
        assert_eq!(s.id, "acme");
        assert_eq!(s.customer, "ACME AS");
        assert!(s.enabled);
        assert_eq!(s.source, Path::new("acme.toml"));
        assert_eq!(s.schedule.line, "0 6 * * MON");
        assert_eq!(s.target().unwrap().host, "sftp.example.no");
        assert!(s.encryption.encrypt);
        assert_eq!(s.delivery.if_exists, IfExists::Fail);
        assert_eq!(s.retry, inherited().retry);
        assert!(s.personal_fields().is_empty());
    }

    #[test]
    fn top_level_keys_and_contact_are_taken_as_written() {
        let s = validate_subscription(
            &subscription(
                "case_number = \"2026/1\"\ninvoice_reference = \"PO-9\"\nlegal_basis = \"  \"\n\
                 contact = { email = \"a@acme.no\", mobile = \"+4799999999\" }",
            ),
            &inherited(),
            Path::new("acme.toml"),
        )
        .unwrap();
        assert_eq!(s.case_number.as_deref(), Some("2026/1"));
        assert_eq!(s.invoice_reference.as_deref(), Some("PO-9"));
        // A blank legal basis is none.
        assert_eq!(s.legal_basis, None);
        assert_eq!(s.contact_email.as_deref(), Some("a@acme.no"));
        assert_eq!(s.contact_mobile.as_deref(), Some("+4799999999"));
    }

    #[test]
    fn problems_of_every_table_are_collected_in_file_order() {
        let mut raw = subscription("");
        raw.id = "ACME".into();
        raw.schedule.cron = "0 0 30 2 *".into();
        raw.target.as_mut().unwrap().port = 0;
        raw.extract.format = "json".into();
        raw.encryption.recipients.clear();
        raw.delivery.if_exists = Some("replace".into());
        raw.retry.max_attempts = Some(0);
        let p = validate_subscription(&raw, &inherited(), Path::new("acme.toml")).unwrap_err();
        assert_eq!(
            keys(&p),
            [
                "id",
                "schedule.cron",
                "target.port",
                "extract.format",
                "encryption.recipients",
                "delivery.if_exists",
                "retry.max_attempts",
            ]
        );
    }
}
