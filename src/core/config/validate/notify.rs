//! `[notify]` in the daemon file (operator e-mail addresses, webhooks, which events, how
//! often a message is tried) -> [`NotifySpec`], and a subscription's `[delivery] notice`
//! (a delivery notice to `[contact] email`).

use super::super::limits;
use super::super::raw::{RawNotify, RawSubscription, RawWebhook};
use super::types::SecretRef;
use super::Problem;
use crate::core::notice::Event;
use std::path::Path;
use std::time::Duration;

/// `[notify] attempts`: tries per message and recipient.
pub const ATTEMPTS: (u32, u32) = (1, 20);
/// `[notify] retry_base_secs`.
pub const RETRY_BASE_SECS: (u64, u64) = (1, 3600);
/// The longest wait between two tries of one message.
pub const RETRY_CAP: Duration = Duration::from_secs(600);
/// `[[notify.webhook]] timeout_secs`.
pub const WEBHOOK_TIMEOUT_SECS: (u64, u64) = (1, 120);

/// What `[notify]` asks for once validated. Empty (the default) sends nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySpec {
    /// Operator addresses (through `[smtp]`).
    pub email: Vec<String>,
    pub webhooks: Vec<WebhookSpec>,
    /// The operator events turned on.
    pub events: Vec<Event>,
    /// Tries per message and recipient.
    pub attempts: u32,
    /// Wait before the first retry; doubles, at most [`RETRY_CAP`].
    pub retry_base: Duration,
}

impl Default for NotifySpec {
    fn default() -> Self {
        NotifySpec {
            email: vec![],
            webhooks: vec![],
            events: Event::OPERATOR.to_vec(),
            attempts: 5,
            retry_base: Duration::from_secs(10),
        }
    }
}

impl NotifySpec {
    /// Whether any operator channel is configured.
    pub fn has_operator_channel(&self) -> bool {
        !self.email.is_empty() || !self.webhooks.is_empty()
    }

    /// The wait after try `n` (1-based) failed: base × 2^(n-1), at most [`RETRY_CAP`].
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        self.retry_base.saturating_mul(factor).min(RETRY_CAP)
    }
}

/// One webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    pub name: String,
    pub url: String,
    /// The header and where its value lives (never the value itself).
    pub auth: Option<(String, SecretRef)>,
    pub timeout: Duration,
}

/// Validates `[notify]`; relative secret files are resolved against `secrets_dir`.
pub(super) fn validate_notify(
    raw: &RawNotify,
    secrets_dir: &Path,
    p: &mut Vec<Problem>,
) -> NotifySpec {
    let mut spec = NotifySpec::default();
    for (i, a) in raw.email.iter().enumerate() {
        if is_email_address(a) {
            spec.email.push(a.trim().to_string());
        } else {
            p.push(Problem::new(
                format!("notify.email[{i}]"),
                format!("`{}` is not an e-mail address; write one address like drift@example.no per entry", shown(a)),
            ));
        }
    }
    for (i, w) in raw.webhook.iter().enumerate() {
        if let Some(w) = webhook(w, i, secrets_dir, p) {
            if spec.webhooks.iter().any(|o| o.name == w.name) {
                p.push(Problem::new(
                    format!("notify.webhook[{i}].name"),
                    format!(
                        "`{}` is the name of another webhook; give each its own name",
                        w.name
                    ),
                ));
            } else {
                spec.webhooks.push(w);
            }
        }
    }
    if let Some(events) = &raw.events {
        spec.events.clear();
        for (i, e) in events.iter().enumerate() {
            match Event::parse(e).filter(|e| !e.is_customer()) {
                Some(e) if !spec.events.contains(&e) => spec.events.push(e),
                Some(_) => {}
                None => p.push(Problem::new(
                    format!("notify.events[{i}]"),
                    format!(
                        "`{}` is not an operator event; use needs_attention, failed or recovered",
                        shown(e)
                    ),
                )),
            }
        }
    }
    if let Some(n) = limits::in_range(
        "notify.attempts",
        raw.attempts,
        ATTEMPTS,
        "tries per message and recipient",
        p,
    ) {
        spec.attempts = n;
    }
    if let Some(s) = limits::in_range(
        "notify.retry_base_secs",
        raw.retry_base_secs,
        RETRY_BASE_SECS,
        "seconds before the first retry of a message",
        p,
    ) {
        spec.retry_base = Duration::from_secs(s);
    }
    spec
}

fn webhook(
    w: &RawWebhook,
    i: usize,
    secrets_dir: &Path,
    p: &mut Vec<Problem>,
) -> Option<WebhookSpec> {
    let key = |k: &str| format!("notify.webhook[{i}].{k}");
    let before = p.len();
    let name = w
        .name
        .clone()
        .unwrap_or_else(|| format!("webhook-{}", i + 1));
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        p.push(Problem::new(
            key("name"),
            format!(
                "`{}` is not a name; use 1-63 letters, digits, `-` and `_`",
                shown(&name)
            ),
        ));
    }
    if let Err(why) = check_url(&w.url) {
        p.push(Problem::new(key("url"), why));
    }
    let secret = match (&w.auth_file, &w.auth_credential) {
        (Some(_), Some(_)) => {
            p.push(Problem::new(
                key("auth_file"),
                "give auth_file or auth_credential, not both",
            ));
            None
        }
        (Some(f), None) => Some(SecretRef::File(secrets_dir.join(f))),
        (None, Some(c)) => {
            if c.is_empty() || c.contains('/') {
                p.push(Problem::new(
                    key("auth_credential"),
                    format!("`{}` is not a credential name (no `/`); it is the NAME of LoadCredential=NAME:PATH", shown(c)),
                ));
            }
            Some(SecretRef::Credential(c.clone()))
        }
        (None, None) => None,
    };
    let header = w
        .auth_header
        .clone()
        .unwrap_or_else(|| "Authorization".into());
    if w.auth_header.is_some() && w.auth_file.is_none() && w.auth_credential.is_none() {
        p.push(Problem::new(
            key("auth_header"),
            "a header without its value; add auth_file or auth_credential",
        ));
    }
    if header.is_empty()
        || !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        p.push(Problem::new(
            key("auth_header"),
            format!(
                "`{}` is not an HTTP header name (letters, digits, `-`)",
                shown(&header)
            ),
        ));
    }
    let timeout = limits::in_range(
        &key("timeout_secs"),
        w.timeout_secs,
        WEBHOOK_TIMEOUT_SECS,
        "seconds one POST may take",
        p,
    )
    .unwrap_or(10);
    (p.len() == before).then(|| WebhookSpec {
        name,
        url: w.url.trim().to_string(),
        auth: secret.map(|s| (header, s)),
        timeout: Duration::from_secs(timeout),
    })
}

/// `https://`, or `http://` to a loopback host (as the HTTP adapter requires), a host, no
/// whitespace or control characters, no credentials in the URL (they go into `auth_file`).
fn check_url(url: &str) -> Result<(), String> {
    let u = url.trim();
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("`{}` is not an http:// or https:// URL", shown(u)))?;
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL holds a space or control character; percent-encode it".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("the URL holds a user name or password; put the credential in auth_file (or auth_credential) instead".into());
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(format!("`{}` names no host", shown(u)));
    }
    // The host without the port (IPv6 in brackets keeps its colons).
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if u.starts_with("http://") && !super::smtp::is_loopback_host(host) {
        return Err(format!(
            "`{}` is plain http to another machine; use https (http only for a loopback host)",
            shown(u)
        ));
    }
    Ok(())
}

/// A plain address `local@domain`: one `@`, no spaces, no control characters, no `<>,;`
/// (one address per entry; nothing that could become a second header).
pub fn is_email_address(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\'
                )
        })
}

/// `[delivery] notice`: true needs `[contact] email` to send to.
pub(super) fn customer_notice(raw: &RawSubscription, p: &mut Vec<Problem>) -> bool {
    if raw.delivery.notice != Some(true) {
        return false;
    }
    match raw.contact.as_ref().and_then(|c| c.email.as_deref()) {
        None => {
            p.push(Problem::new(
                "delivery.notice",
                "a delivery notice needs an address: add `contact = { email = \"...\" }`, or set notice = false",
            ));
            false
        }
        Some(a) if !is_email_address(a) => {
            p.push(Problem::new(
                "contact.email",
                format!(
                    "`{}` is not an e-mail address; delivery notices go to it",
                    shown(a)
                ),
            ));
            false
        }
        Some(_) => true,
    }
}

/// At most 60 characters of an operator's value, for a message.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(60)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 60 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, message_at, subscription};
    use super::*;

    fn notify(text: &str) -> (NotifySpec, Vec<Problem>) {
        let raw: crate::core::config::raw::RawDaemon = toml::from_str(text).expect("a daemon file");
        let mut p = Vec::new();
        let spec = validate_notify(&raw.notify, Path::new("/etc/regdrop/secrets"), &mut p);
        (spec, p)
    }

    #[test]
    fn no_table_sends_nothing_and_keeps_the_defaults() {
        let (spec, p) = notify("");
        assert!(p.is_empty());
        assert_eq!(spec, NotifySpec::default());
        assert!(!spec.has_operator_channel());
        assert_eq!(spec.events, Event::OPERATOR);
    }

    #[test]
    fn a_full_table_is_taken() {
        let (spec, p) = notify(
            "[notify]\nemail = [\"drift@example.no\", \"vakt@example.no\"]\nevents = [\"failed\", \"recovered\"]\n\
             attempts = 3\nretry_base_secs = 2\n\
             [[notify.webhook]]\nurl = \"https://chat.example.no/hooks/1\"\nauth_file = \"hook.token\"\n\
             [[notify.webhook]]\nname = \"pager\"\nurl = \"http://127.0.0.1:8080/alert\"\nauth_header = \"X-Token\"\nauth_credential = \"pager-token\"\ntimeout_secs = 3\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(spec.email, ["drift@example.no", "vakt@example.no"]);
        assert_eq!(spec.events, [Event::Failed, Event::Recovered]);
        assert_eq!(spec.attempts, 3);
        assert_eq!(spec.retry_base, Duration::from_secs(2));
        assert_eq!(spec.webhooks.len(), 2);
        assert_eq!(spec.webhooks[0].name, "webhook-1");
        assert_eq!(
            spec.webhooks[0].auth,
            Some((
                "Authorization".into(),
                SecretRef::File("/etc/regdrop/secrets/hook.token".into())
            ))
        );
        assert_eq!(spec.webhooks[0].timeout, Duration::from_secs(10));
        assert_eq!(spec.webhooks[1].name, "pager");
        assert_eq!(
            spec.webhooks[1].auth,
            Some((
                "X-Token".into(),
                SecretRef::Credential("pager-token".into())
            ))
        );
        assert_eq!(spec.webhooks[1].timeout, Duration::from_secs(3));
    }

    #[test]
    fn every_bad_value_is_named_at_its_key() {
        let (_, p) = notify(
            "[notify]\nemail = [\"drift@example.no\", \"not an address\", \"a@b.no, c@d.no\"]\nevents = [\"needs_attention\", \"delivered\", \"typo\"]\n\
             attempts = 0\nretry_base_secs = 4000\n\
             [[notify.webhook]]\nurl = \"http://chat.example.no/h\"\n\
             [[notify.webhook]]\nurl = \"https://user:pw@chat.example.no/h\"\n\
             [[notify.webhook]]\nname = \"a b\"\nurl = \"https://x.no\"\nauth_header = \"Bad Header\"\nauth_file = \"f\"\nauth_credential = \"c\"\ntimeout_secs = 0\n\
             [[notify.webhook]]\nname = \"dup\"\nurl = \"https://x.no\"\n\
             [[notify.webhook]]\nname = \"dup\"\nurl = \"https://y.no\"\nauth_header = \"X-Token\"\n",
        );
        assert_eq!(
            keys(&p),
            [
                "notify.email[1]",
                "notify.email[2]",
                "notify.webhook[0].url",
                "notify.webhook[1].url",
                "notify.webhook[2].name",
                "notify.webhook[2].auth_file",
                "notify.webhook[2].auth_header",
                "notify.webhook[2].timeout_secs",
                "notify.webhook[4].auth_header",
                "notify.events[1]",
                "notify.events[2]",
                "notify.attempts",
                "notify.retry_base_secs",
            ]
        );
        assert_eq!(
            message_at(&p, "notify.webhook[1].url"),
            "the URL holds a user name or password; put the credential in auth_file (or auth_credential) instead"
        );
        assert_eq!(
            message_at(&p, "notify.events[1]"),
            "`delivered` is not an operator event; use needs_attention, failed or recovered"
        );
        assert_eq!(
            message_at(&p, "notify.attempts"),
            "0 is out of range; tries per message and recipient: write a number from 1 to 20"
        );
    }

    #[test]
    fn two_webhooks_cannot_share_a_name() {
        let (spec, p) = notify(
            "[[notify.webhook]]\nname = \"a\"\nurl = \"https://x.no\"\n[[notify.webhook]]\nname = \"a\"\nurl = \"https://y.no\"\n",
        );
        assert_eq!(keys(&p), ["notify.webhook[1].name"]);
        assert_eq!(spec.webhooks.len(), 1);
    }

    #[test]
    fn addresses() {
        for ok in ["a@b.no", "drift.vakt+x@sub.example.no", " a@b.no "] {
            assert!(is_email_address(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "@b.no",
            "a@",
            "a@b",
            "a@.no",
            "a@b.",
            "a b@c.no",
            "a@b.no\r\nBcc: x@y.no",
            "a@b@c.no",
            "<a@b.no>",
            "a@b.no,c@d.no",
        ] {
            assert!(!is_email_address(bad), "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let spec = NotifySpec {
            retry_base: Duration::from_secs(10),
            ..NotifySpec::default()
        };
        assert_eq!(spec.backoff(1), Duration::from_secs(10));
        assert_eq!(spec.backoff(2), Duration::from_secs(20));
        assert_eq!(spec.backoff(4), Duration::from_secs(80));
        assert_eq!(spec.backoff(7), RETRY_CAP);
        assert_eq!(spec.backoff(u32::MAX), RETRY_CAP);
    }

    #[test]
    fn a_delivery_notice_needs_a_contact_address() {
        let mut p = Vec::new();
        assert!(!customer_notice(&subscription(""), &mut p));
        assert!(p.is_empty());

        let raw = subscription("contact = { email = \"it@acme.no\" }\n[delivery]\nnotice = true");
        assert!(customer_notice(&raw, &mut p));
        assert!(p.is_empty(), "{p:?}");

        let raw = subscription("[delivery]\nnotice = true");
        assert!(!customer_notice(&raw, &mut p));
        assert_eq!(keys(&p), ["delivery.notice"]);

        let mut p = Vec::new();
        let raw = subscription("contact = { email = \"it at acme\" }\n[delivery]\nnotice = true");
        assert!(!customer_notice(&raw, &mut p));
        assert_eq!(
            message_at(&p, "contact.email"),
            "`it at acme` is not an e-mail address; delivery notices go to it"
        );
    }
}
