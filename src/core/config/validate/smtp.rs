//! The daemon file's `[smtp]` table (the outgoing mail server): host, port, TLS mode,
//! sender, trusted CA, timeout and login -> [`SmtpSpec`]. `tls = "none"` only for a
//! loopback host, so no password or extract ever crosses a network in clear.

use super::super::limits;
use super::super::raw_mail::{RawSmtp, RawSmtpAuth};
use super::types::SecretRef;
use super::Problem;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[smtp] timeout_secs`: 1 s to 10 min.
pub const SMTP_TIMEOUT_SECS: (u64, u64) = (1, 600);

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connect, then STARTTLS; a server that does not offer it is refused.
    StartTls,
    /// TLS from the first byte ("SMTPS", port 465).
    Implicit,
    /// No TLS: only for a loopback host (a local relay).
    None,
}

impl SmtpTls {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Implicit => "tls",
            SmtpTls::None => "none",
        }
    }
    fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

/// The login: a user name and where its password lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpAuthSpec {
    pub username: String,
    pub password: SecretRef,
}

/// A validated `[smtp]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSpec {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The sender as written (`Name <addr>` or `addr`), checked to parse as a mailbox.
    pub from: String,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub auth: Option<SmtpAuthSpec>,
}

/// Whether `host` names this machine only: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `s` is one mailbox (`addr` or `Name <addr>`), as the mail adapter will parse it.
pub fn is_mailbox(s: &str) -> bool {
    s.parse::<lettre::message::Mailbox>().is_ok()
}

/// `[smtp]`, or `None` with the problems pushed. Relative paths start at `secrets_dir`.
pub(super) fn validate_smtp(
    raw: &RawSmtp,
    secrets_dir: &Path,
    p: &mut Vec<Problem>,
) -> Option<SmtpSpec> {
    let before = p.len();
    let host = raw.host.trim();
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        p.push(Problem::new(
            "smtp.host",
            format!("`{}` is not a host name or IP address", raw.host),
        ));
    }
    let tls = match raw.tls.as_deref().unwrap_or("starttls") {
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Implicit,
        "none" => SmtpTls::None,
        other => {
            p.push(Problem::new(
                "smtp.tls",
                format!("`{other}` is not a TLS mode; write starttls (port 587), tls (port 465) or none (loopback only)"),
            ));
            SmtpTls::StartTls
        }
    };
    if tls == SmtpTls::None && !host.is_empty() && !is_loopback_host(host) {
        p.push(Problem::new(
            "smtp.tls",
            format!("tls = \"none\" sends mail and passwords in clear, so it is only allowed for a loopback host (127.0.0.1, ::1, localhost), not `{host}`; use starttls or tls"),
        ));
    }
    if raw.port == Some(0) {
        p.push(Problem::new(
            "smtp.port",
            "0 is not a port; write 1 to 65535 (587 for starttls, 465 for tls)",
        ));
    }
    if !is_mailbox(&raw.from) {
        p.push(Problem::new(
            "smtp.from",
            format!(
                "`{}` is not a sender address; write `name@domain` or `Name <name@domain>`",
                short(&raw.from)
            ),
        ));
    }
    let timeout = limits::in_range(
        "smtp.timeout_secs",
        raw.timeout_secs,
        SMTP_TIMEOUT_SECS,
        "seconds one SMTP command may take",
        p,
    )
    .unwrap_or(60);
    let auth = raw
        .auth
        .as_ref()
        .and_then(|a| validate_smtp_auth(a, secrets_dir, p));
    if p.len() > before {
        return None;
    }
    Some(SmtpSpec {
        host: host.to_string(),
        port: raw.port.unwrap_or(tls.default_port()),
        tls,
        from: raw.from.trim().to_string(),
        ca_file: raw.ca_file.as_ref().map(|f| secrets_dir.join(f)),
        timeout: Duration::from_secs(timeout),
        auth,
    })
}

fn validate_smtp_auth(
    a: &RawSmtpAuth,
    secrets_dir: &Path,
    p: &mut Vec<Problem>,
) -> Option<SmtpAuthSpec> {
    if a.password.is_some() {
        p.push(Problem::new(
            "smtp.auth.password",
            "secrets never go into configuration files; put the password in a 0600 file and set password_file, or use a systemd credential (password_credential)",
        ));
        return None;
    }
    if a.username.trim().is_empty() {
        p.push(Problem::new(
            "smtp.auth.username",
            "is empty; write the login name of the mail server",
        ));
    }
    let password = match (&a.password_file, &a.password_credential) {
        (Some(f), None) => SecretRef::File(secrets_dir.join(f)),
        (None, Some(c)) if !c.is_empty() && !c.contains('/') => SecretRef::Credential(c.clone()),
        (None, Some(c)) => {
            p.push(Problem::new(
                "smtp.auth.password_credential",
                format!("`{c}` is not a credential name (no `/`); it is the NAME of LoadCredential=NAME:PATH"),
            ));
            return None;
        }
        _ => {
            p.push(Problem::new(
                "smtp.auth",
                "give exactly one of password_file, password_credential",
            ));
            return None;
        }
    };
    Some(SmtpAuthSpec {
        username: a.username.trim().to_string(),
        password,
    })
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, message_at};
    use super::*;

    fn smtp(text: &str) -> (Option<SmtpSpec>, Vec<Problem>) {
        let raw: RawSmtp = toml::from_str(text).expect("an [smtp] table");
        let mut p = Vec::new();
        (validate_smtp(&raw, Path::new("/etc/regdrop"), &mut p), p)
    }

    #[test]
    fn defaults_are_starttls_on_587_without_login() {
        let (s, p) = smtp("host = \"smtp.example.no\"\nfrom = \"Uttrekk <uttrekk@example.no>\"");
        assert!(p.is_empty(), "{p:?}");
        let s = s.unwrap();
        assert_eq!((s.tls, s.port), (SmtpTls::StartTls, 587));
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert_eq!(s.auth, None);
        assert_eq!(s.from, "Uttrekk <uttrekk@example.no>");
    }

    #[test]
    fn implicit_tls_takes_465_and_the_login_from_a_file_or_credential() {
        let (s, p) = smtp(
            "host = \"smtp.example.no\"\nfrom = \"u@example.no\"\ntls = \"tls\"\nca_file = \"ca.pem\"\ntimeout_secs = 5\n\
             [auth]\nusername = \"regdrop\"\npassword_file = \"smtp.password\"",
        );
        assert!(p.is_empty(), "{p:?}");
        let s = s.unwrap();
        assert_eq!((s.tls, s.port), (SmtpTls::Implicit, 465));
        assert_eq!(s.ca_file.as_deref(), Some(Path::new("/etc/regdrop/ca.pem")));
        assert_eq!(
            s.auth.unwrap().password,
            SecretRef::File("/etc/regdrop/smtp.password".into())
        );
        let (s, _) = smtp(
            "host = \"h\"\nfrom = \"u@example.no\"\n[auth]\nusername = \"r\"\npassword_credential = \"smtp-pw\"",
        );
        assert_eq!(
            s.unwrap().auth.unwrap().password,
            SecretRef::Credential("smtp-pw".into())
        );
    }

    #[test]
    fn no_tls_is_only_for_loopback() {
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            let (s, p) = smtp(&format!(
                "host = \"{host}\"\nfrom = \"u@example.no\"\ntls = \"none\"\nport = 2525"
            ));
            assert!(p.is_empty(), "{host}: {p:?}");
            assert_eq!(s.unwrap().port, 2525);
        }
        let (s, p) = smtp("host = \"smtp.example.no\"\nfrom = \"u@example.no\"\ntls = \"none\"");
        assert_eq!(s, None);
        assert!(message_at(&p, "smtp.tls")
            .starts_with("tls = \"none\" sends mail and passwords in clear"));
    }

    #[test]
    fn every_problem_is_named_and_secrets_are_refused() {
        let (s, p) = smtp(
            "host = \"smtp example\"\nfrom = \"not an address\"\ntls = \"ssl\"\nport = 0\ntimeout_secs = 0\n\
             [auth]\nusername = \"r\"\npassword = \"hunter2\"",
        );
        assert_eq!(s, None);
        assert_eq!(
            keys(&p),
            [
                "smtp.host",
                "smtp.tls",
                "smtp.port",
                "smtp.from",
                "smtp.timeout_secs",
                "smtp.auth.password"
            ]
        );
        assert!(!format!("{p:?}").contains("hunter2"));
        let (_, p) = smtp("host = \"h\"\nfrom = \"u@example.no\"\n[auth]\nusername = \"r\"");
        assert_eq!(
            message_at(&p, "smtp.auth"),
            "give exactly one of password_file, password_credential"
        );
        let (_, p) = smtp("host = \"h\"\nfrom = \"u@example.no\"\n[auth]\nusername = \"r\"\npassword_credential = \"a/b\"");
        assert_eq!(keys(&p), ["smtp.auth.password_credential"]);
    }
}
