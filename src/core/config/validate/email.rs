//! The e-mail channel's tables: a subscription's `[email]` (recipients, subject template,
//! size limit) with the rules that tie it to `[encryption]`, `[contact]` and `[delivery]`
//! -> [`EmailSpec`]; and the daemon file's `[sms]` (the SMS gateway for passphrases) ->
//! [`SmsSpec`].

use super::super::limits;
use super::super::raw::{RawDelivery, RawSubscription};
use super::super::raw_mail::{RawEmail, RawSms};
use super::super::template::{self, NameContext};
use super::smtp::{is_loopback_host, is_mailbox};
use super::types::{EncryptionSpec, SecretRef};
use super::Problem;
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default `[email] max_bytes`: 10 MiB.
pub const EMAIL_MAX_BYTES_DEFAULT: u64 = 10 * 1024 * 1024;
/// `[email] max_bytes`: 1 KiB to 50 MiB (mail servers rarely take more, base64 adds a third).
pub const EMAIL_MAX_BYTES: (u64, u64) = (1024, 50 * 1024 * 1024);
/// `[sms] timeout_secs`.
pub const SMS_TIMEOUT_SECS: (u64, u64) = (1, 300);
const DEFAULT_SUBJECT: &str = "Uttrekk fra kjøretøyregisteret: {id} {run:%Y-%m-%d}";

/// A validated `[email]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSpec {
    /// Recipients as written (each parses as a mailbox).
    pub to: Vec<String>,
    /// The subject template (checked on a sample run).
    pub subject: String,
    pub max_bytes: u64,
    /// With `[encryption] mode = "passphrase"`: the contact mobile the passphrase goes to,
    /// without spaces (`+4799999999`).
    pub sms_to: Option<String>,
}

/// How the SMS request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsFormat {
    Json,
    Form,
}

/// A validated `[sms]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsSpec {
    pub url: String,
    pub format: SmsFormat,
    /// Field name -> template with `{number}` and `{text}`.
    pub fields: Vec<(String, String)>,
    /// The credential header: its name and where its value lives.
    pub auth: Option<(String, SecretRef)>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl SmsSpec {
    /// The fields with `{number}` and `{text}` filled in.
    pub fn render(&self, number: &str, text: &str) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.replace("{number}", number).replace("{text}", text),
                )
            })
            .collect()
    }
}

/// A mobile number as SMS gateways take it: `+` and digits, spaces removed; `None` when it
/// is not one (8 to 15 digits).
pub fn normalize_mobile(s: &str) -> Option<String> {
    let n: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = n.strip_prefix('+').unwrap_or(&n);
    (digits.len() >= 8 && digits.len() <= 15 && digits.chars().all(|c| c.is_ascii_digit()))
        .then_some(n)
}

/// A mobile number as receipts and logs show it: the country code and the last three
/// digits (`+4799999123` -> `+47 ••• •• 123`).
pub fn mask_mobile(n: &str) -> String {
    let digits: Vec<char> = n.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(3)..].iter().collect();
    if n.starts_with('+') && digits.len() > 5 {
        format!("+{}{} ••• •• {tail}", digits[0], digits[1])
    } else {
        format!("••• •• {tail}")
    }
}

/// The subject of a run (the template with the run's values).
pub fn render_subject(template: &str, ctx: &NameContext<'_>) -> Result<String, String> {
    template::render_text(template, ctx)
}

/// `[email]` and the rules tying it to the rest of the subscription.
pub(super) fn validate_email(
    e: &RawEmail,
    raw: &RawSubscription,
    encryption: &EncryptionSpec,
    has_period: bool,
    p: &mut Vec<Problem>,
) -> EmailSpec {
    if e.to.is_empty() {
        p.push(Problem::new(
            "email.to",
            "no recipient; write the customer's address, e.g. to = [\"data@kunde.no\"]",
        ));
    }
    for (i, t) in e.to.iter().enumerate() {
        if !is_mailbox(t) {
            p.push(Problem::new(
                format!("email.to[{i}]"),
                format!(
                    "`{t}` is not an e-mail address; write `name@domain` or `Name <name@domain>`"
                ),
            ));
        }
    }
    let subject = e.subject.clone().unwrap_or_else(|| DEFAULT_SUBJECT.into());
    let sample = |d: u32| {
        NaiveDate::from_ymd_opt(2026, 12, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
    };
    let ctx = NameContext {
        id: &raw.id,
        report: &raw.extract.report,
        ext: "dsv.age",
        run: sample(31),
        period_start: has_period.then(|| sample(1)),
        period_end: has_period.then(|| sample(30)),
    };
    match render_subject(&subject, &ctx) {
        Ok(s) if s.trim().is_empty() => p.push(Problem::new(
            "email.subject",
            "the subject is empty; write one, e.g. \"Uttrekk {id} {run:%Y-%m-%d}\"",
        )),
        Ok(s) if s.contains(['\r', '\n']) => p.push(Problem::new(
            "email.subject",
            "the subject has a line break; write it on one line",
        )),
        Ok(_) => {}
        Err(m) => p.push(Problem::new("email.subject", m)),
    }
    let max_bytes = limits::in_range(
        "email.max_bytes",
        e.max_bytes,
        EMAIL_MAX_BYTES,
        "the largest attachment total in bytes (larger extracts go by SFTP)",
        p,
    )
    .unwrap_or(EMAIL_MAX_BYTES_DEFAULT);
    let sms_to = if encryption.passphrase {
        match raw.contact.as_ref().and_then(|c| c.mobile.as_deref()) {
            None => {
                p.push(Problem::new(
                    "encryption.mode",
                    "mode = \"passphrase\" sends the passphrase by SMS: add contact = { mobile = \"+47...\" } with the customer's contact mobile",
                ));
                None
            }
            Some(m) => match normalize_mobile(m) {
                Some(n) => Some(n),
                None => {
                    p.push(Problem::new(
                        "contact.mobile",
                        format!("`{m}` is not a mobile number; write it with the country code, e.g. +47 999 99 999"),
                    ));
                    None
                }
            },
        }
    } else {
        None
    };
    sftp_only_keys(&raw.delivery, p);
    EmailSpec {
        to: e.to.iter().map(|t| t.trim().to_string()).collect(),
        subject,
        max_bytes,
        sms_to,
    }
}

/// `[delivery]` keys that only mean something on an SFTP server.
fn sftp_only_keys(d: &RawDelivery, p: &mut Vec<Problem>) {
    for (key, set) in [
        ("if_exists", d.if_exists.is_some()),
        ("verify", d.verify.is_some()),
        ("manifest", d.manifest.is_some()),
        ("done_marker", d.done_marker.is_some()),
    ] {
        if set {
            p.push(Problem::new(
                format!("delivery.{key}"),
                format!("{key} is for SFTP targets; an [email] delivery attaches the files (with their .sha256 in the mail body): remove it"),
            ));
        }
    }
}

/// `[sms]`, or `None` with the problems pushed. Relative paths start at `secrets_dir`.
pub(super) fn validate_sms(
    raw: &RawSms,
    secrets_dir: &Path,
    p: &mut Vec<Problem>,
) -> Option<SmsSpec> {
    let before = p.len();
    if let Some(problem) = url_problem(&raw.url) {
        p.push(Problem::new("sms.url", problem));
    }
    let format = match raw.format.as_deref().unwrap_or("json") {
        "json" => SmsFormat::Json,
        "form" => SmsFormat::Form,
        other => {
            p.push(Problem::new(
                "sms.format",
                format!("`{other}` is not a format; write json or form"),
            ));
            SmsFormat::Json
        }
    };
    let all: String = raw.fields.values().cloned().collect::<Vec<_>>().join(" ");
    for ph in ["{number}", "{text}"] {
        if !all.contains(ph) {
            p.push(Problem::new("sms.fields", format!("no field holds `{ph}`; e.g. fields = {{ to = \"{{number}}\", message = \"{{text}}\" }}")));
        }
    }
    for (k, v) in &raw.fields {
        let mut rest = v.as_str();
        while let Some(i) = rest.find('{') {
            let after = &rest[i..];
            let end = after.find('}').map_or(after.len(), |e| e + 1);
            let ph = &after[..end];
            if ph != "{number}" && ph != "{text}" {
                p.push(Problem::new(
                    format!("sms.fields.{k}"),
                    format!("`{ph}` is not a placeholder; use {{number}} or {{text}}"),
                ));
            }
            rest = &after[end..];
        }
    }
    let auth = match (&raw.auth_file, &raw.auth_credential) {
        (None, None) => None,
        (Some(f), None) => Some(SecretRef::File(secrets_dir.join(f))),
        (None, Some(c)) if !c.is_empty() && !c.contains('/') => {
            Some(SecretRef::Credential(c.clone()))
        }
        (None, Some(c)) => {
            p.push(Problem::new("sms.auth_credential", format!("`{c}` is not a credential name (no `/`); it is the NAME of LoadCredential=NAME:PATH")));
            None
        }
        (Some(_), Some(_)) => {
            p.push(Problem::new(
                "sms.auth_file",
                "give one of auth_file, auth_credential",
            ));
            None
        }
    };
    let header = raw
        .auth_header
        .clone()
        .unwrap_or_else(|| "Authorization".into());
    if header.is_empty()
        || !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        p.push(Problem::new(
            "sms.auth_header",
            format!("`{header}` is not a header name"),
        ));
    }
    let timeout = limits::in_range(
        "sms.timeout_secs",
        raw.timeout_secs,
        SMS_TIMEOUT_SECS,
        "seconds the gateway request may take",
        p,
    )
    .unwrap_or(30);
    if p.len() > before {
        return None;
    }
    Some(SmsSpec {
        url: raw.url.trim().to_string(),
        format,
        fields: raw
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        auth: auth.map(|a| (header, a)),
        ca_file: raw.ca_file.as_ref().map(|f| secrets_dir.join(f)),
        timeout: Duration::from_secs(timeout),
    })
}

/// `https://HOST...`, or `http://` to a loopback host (the same rule as the HTTP adapter's).
fn url_problem(url: &str) -> Option<String> {
    let Some((scheme, rest)) = url.trim().split_once("://") else {
        return Some("not a URL; write https://host/path".into());
    };
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = auth.rsplit('@').next().unwrap_or(auth);
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    match scheme.to_ascii_lowercase().as_str() {
        _ if host.is_empty() => Some("the URL has no host; write https://host/path".into()),
        "https" => None,
        "http" if is_loopback_host(host) => None,
        "http" => Some(
            "plain http would send the passphrase in clear; use https (http only for a loopback host)".into(),
        ),
        _ => Some("not an http(s) URL; write https://host/path".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{inherited, keys, message_at};
    use super::super::validate_subscription;
    use super::*;

    /// A passphrase e-mail subscription with `extra` at its top level and `email` in [email].
    fn sub(extra: &str, email: &str, encryption: &str) -> RawSubscription {
        toml::from_str(&format!(
            "id = \"k\"\ncustomer = \"K\"\n{extra}\n[schedule]\ncron = \"0 6 * * *\"\n\
             [email]\nto = [\"data@kunde.no\"]\n{email}\n\
             [extract]\nreport = \"technical\"\n[encryption]\n{encryption}\n"
        ))
        .unwrap()
    }

    fn check(raw: &RawSubscription) -> Result<super::super::Subscription, Vec<Problem>> {
        validate_subscription(raw, &inherited(), Path::new("k.toml"))
    }

    #[test]
    fn a_passphrase_subscription_takes_the_mobile_without_spaces() {
        let s = check(&sub(
            "contact = { mobile = \"+47 912 34 567\" }",
            "",
            "mode = \"passphrase\"",
        ))
        .unwrap();
        assert!(s.encryption.passphrase && s.encryption.encrypt);
        assert!(s.target().is_none());
        let super::super::Transport::Email(e) = &s.transport else {
            panic!("not e-mail")
        };
        assert_eq!(e.sms_to.as_deref(), Some("+4791234567"));
        assert_eq!(e.max_bytes, EMAIL_MAX_BYTES_DEFAULT);
        assert_eq!(e.subject, DEFAULT_SUBJECT);
    }

    #[test]
    fn a_channel_the_daemon_file_lacks_is_refused_at_check() {
        let raw = sub(
            "contact = { mobile = \"+4791234567\", email = \"a@b.example\" }",
            "",
            "mode = \"passphrase\"",
        );
        let mut inh = inherited();
        inh.offers = super::super::Offers {
            smtp: false,
            sms: false,
        };
        let p = validate_subscription(&raw, &inh, Path::new("k.toml")).unwrap_err();
        assert_eq!(keys(&p), ["email", "encryption.mode"]);
        assert!(message_at(&p, "email").contains("add [smtp]"));
        assert!(message_at(&p, "encryption.mode").contains("add [sms]"));
        inh.offers.smtp = true;
        let p = validate_subscription(&raw, &inh, Path::new("k.toml")).unwrap_err();
        assert_eq!(keys(&p), ["encryption.mode"]);
        inh.offers.sms = true;
        assert!(validate_subscription(&raw, &inh, Path::new("k.toml")).is_ok());
    }

    #[test]
    fn a_passphrase_needs_a_mobile_and_no_recipients() {
        let p = check(&sub("", "", "mode = \"passphrase\"")).unwrap_err();
        assert!(message_at(&p, "encryption.mode").contains("add contact = { mobile"));
        let p = check(&sub(
            "contact = { mobile = \"+4791234567\" }",
            "",
            "mode = \"passphrase\"\nrecipients = [\"age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r\"]",
        ))
        .unwrap_err();
        assert_eq!(keys(&p), ["encryption.recipients"]);
    }

    #[test]
    fn recipients_subject_and_size_are_checked() {
        let p = check(&sub(
            "",
            "subject = \"{nope}\"\nmax_bytes = 10",
            "recipients = [\"age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r\"]",
        ))
        .unwrap_err();
        assert_eq!(keys(&p), ["email.subject", "email.max_bytes"]);
        let mut raw = sub("", "", "mode = \"none\"");
        raw.email.as_mut().unwrap().to = vec!["x".into()];
        raw.extract.report = "technical_open".into();
        let p = check(&raw).unwrap_err();
        assert!(message_at(&p, "email.to[0]").contains("is not an e-mail address"));
    }

    #[test]
    fn numbers_are_masked_to_country_code_and_last_three() {
        assert_eq!(mask_mobile("+4791234567"), "+47 ••• •• 567");
        assert_eq!(mask_mobile("91234567"), "••• •• 567");
        assert_eq!(
            normalize_mobile("+47 912 34 567").as_deref(),
            Some("+4791234567")
        );
        assert_eq!(normalize_mobile("912"), None);
        assert_eq!(normalize_mobile("+47 9123456a"), None);
    }

    #[test]
    fn the_sms_table_needs_both_placeholders_and_https() {
        let raw: RawSms = toml::from_str(
            "url = \"https://sms.example/send\"\nfields = { to = \"{number}\", text = \"{text}\", from = \"SVV\" }\nauth_file = \"t\"",
        )
        .unwrap();
        let mut p = Vec::new();
        let s = validate_sms(&raw, Path::new("/etc/regdrop"), &mut p).unwrap();
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            s.auth,
            Some((
                "Authorization".into(),
                SecretRef::File("/etc/regdrop/t".into())
            ))
        );
        let rendered = s.render("+4791234567", "Passord: x");
        assert!(rendered.contains(&("to".into(), "+4791234567".into())));
        assert!(rendered.contains(&("text".into(), "Passord: x".into())));
        let raw: RawSms =
            toml::from_str("url = \"http://sms.example/send\"\nfields = { to = \"{number}\" }")
                .unwrap();
        let mut p = Vec::new();
        assert!(validate_sms(&raw, Path::new("/"), &mut p).is_none());
        assert_eq!(keys(&p), ["sms.url", "sms.fields"]);
        let raw: RawSms = toml::from_str(
            "url = \"http://127.0.0.1:9/x\"\nfields = { to = \"{number}\", m = \"{text}\" }",
        )
        .unwrap();
        let mut p = Vec::new();
        assert!(
            validate_sms(&raw, Path::new("/"), &mut p).is_some(),
            "{p:?}"
        );
    }
}
