//! The subscription file `regdrop new-subscription` writes: every choice with a comment, and
//! the checks of the values typed at the prompts.

use super::{Args, Pinned};
use crate::core::catalog::{self, ReportKind};
use anyhow::{anyhow, bail, Context, Result};

/// TOML string literal.
pub(super) fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(super) fn list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

/// `MIN..MAX`, `MIN..`, `..MAX` or `N` -> `{ min = .., max = .. }`.
pub(super) fn range(flag: &str, s: &str) -> Result<String> {
    let (lo, hi) = match s.split_once("..") {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let num = |v: &str| -> Result<Option<i64>> {
        if v.is_empty() {
            Ok(None)
        } else {
            v.parse().map(Some).map_err(|_| {
                anyhow!("--{flag} `{s}`: write MIN..MAX, MIN.. or ..MAX with whole numbers")
            })
        }
    };
    let parts: Vec<String> = [("min", num(lo)?), ("max", num(hi)?)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k} = {v}")))
        .collect();
    if parts.is_empty() {
        bail!("--{flag} `{s}` has neither a minimum nor a maximum");
    }
    Ok(format!("{{ {} }}", parts.join(", ")))
}

pub(super) fn period(s: &str) -> Result<String> {
    match s {
        "previous_day" | "previous_week" | "previous_month" | "since_last_delivery" => Ok(q(s)),
        _ => {
            let (a, b) = s
                .split_once("..")
                .ok_or_else(|| anyhow!("--period `{s}`: use previous_day, previous_week, previous_month, since_last_delivery or FROM..TO"))?;
            for d in [a, b] {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .with_context(|| format!("--period: `{d}` is not a date like 2026-01-31"))?;
            }
            Ok(format!("{{ from = {a}, to = {b} }}"))
        }
    }
}

pub(super) fn valid_email(s: &str) -> bool {
    let Some((user, domain)) = s.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
}

/// `+47 912 34 567` -> `+4791234567`; `None` unless 8-15 digits with an optional `+`.
pub(super) fn normal_mobile(s: &str) -> Option<String> {
    let t: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let digits = t.strip_prefix('+').unwrap_or(&t);
    (digits.len() >= 8 && digits.len() <= 15 && digits.chars().all(|c| c.is_ascii_digit()))
        .then_some(t)
}

/// Whether the chosen data holds personal fields (then a legal basis is needed).
pub(super) fn is_personal(report: Option<ReportKind>, columns: &[String]) -> bool {
    match report {
        Some(ReportKind::Custom) => columns
            .iter()
            .any(|c| catalog::field(c).is_some_and(|f| f.personal)),
        Some(k) => k.columns().unwrap_or_default().iter().any(|f| f.personal),
        None => false,
    }
}

/// Writes the subscription file text (pure). `a` must be complete.
pub fn render(a: &Args, host: &str, port: u16, keys: &Pinned) -> Result<String> {
    let id = a.id.as_deref().unwrap_or_default();
    let report = a.report.as_deref().unwrap_or_default();
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line(format!(
        "# Subscription `{id}`, written by `regdrop new-subscription` from the customer's request."
    ));
    line("# Check it with `regdrop check`; every line can be edited by hand.".into());
    line("# Unique id: used in file names, receipts and `regdrop deliver ID`.".into());
    line(format!("id = {}", q(id)));
    line("# The customer's name as it goes into receipts and the billing export.".into());
    line(format!(
        "customer = {}",
        q(a.customer.as_deref().unwrap_or_default())
    ));
    match &a.org_number {
        Some(o) => {
            line("# The customer's organisation number (mod-11 checked).".into());
            line(format!("customer_org_number = {}", q(o)));
        }
        None => line(
            "# customer_org_number = \"\"   # not given: the customer's organisation number".into(),
        ),
    }
    match &a.case_number {
        Some(c) => {
            line(
                "# The authority's case number (saksnummer): on every receipt and billing line."
                    .into(),
            );
            line(format!("case_number = {}", q(c)));
        }
        None => line(
            "# case_number = \"\"   # not given yet: the authority's case number, for billing"
                .into(),
        ),
    }
    match &a.invoice_reference {
        Some(r) => {
            line("# The customer's invoice reference.".into());
            line(format!("invoice_reference = {}", q(r)));
        }
        None => line(
            "# invoice_reference = \"\"   # not given: the customer's invoice reference".into(),
        ),
    }
    if let Some(l) = &a.legal_basis {
        line("# The legal basis for releasing personal data (law and agreement).".into());
        line(format!("legal_basis = {}", q(l)));
    }
    line(String::new());
    line("# The customer's person responsible, as given in the request.".into());
    line("[contact]".into());
    line(format!(
        "email = {}",
        q(a.email.as_deref().unwrap_or_default())
    ));
    line(format!(
        "mobile = {}",
        q(a.mobile.as_deref().unwrap_or_default())
    ));
    line(String::new());
    line("[schedule]".into());
    let cron = a.cron.as_deref().unwrap_or(super::prompt::DEFAULT_CRON);
    match &a.timezone {
        Some(tz) => {
            line(format!("# When to deliver (5-field cron, in {tz})."));
            line(format!("cron = {}", q(cron)));
            line(format!("timezone = {}", q(tz)));
        }
        None => {
            line(
                "# When to deliver (5-field cron, in the default time zone of regdrop.toml)."
                    .into(),
            );
            line(format!("cron = {}", q(cron)));
        }
    }
    line(String::new());
    line("[target]".into());
    line("# The customer's SFTP server and port.".into());
    line(format!("host = {}", q(host)));
    line(format!("port = {port}"));
    line("# The SFTP user name the customer gave.".into());
    line(format!(
        "username = {}",
        q(a.username.as_deref().unwrap_or_default())
    ));
    line(format!("# Pinned host keys, scanned from {host}:{port}; check these fingerprints with the customer:"));
    for (_, fp) in keys {
        line(format!("#   {fp}"));
    }
    line(format!(
        "host_keys = {}",
        list(&keys.iter().map(|k| k.0.clone()).collect::<Vec<_>>())
    ));
    match (&a.key_file, &a.password_credential, &a.key_credential) {
        (Some(k), _, _) => {
            line(format!("# Log in with the private key in {k} (secrets folder, mode 0600; never in this file)."));
            line(format!("auth = {{ key_file = {} }}", q(k)));
        }
        (None, Some(c), _) => {
            line(format!("# The password is the systemd credential {c} (LoadCredential={c}:FILE in the unit)."));
            line(format!("auth = {{ password_credential = {} }}", q(c)));
        }
        (None, None, Some(c)) => {
            line(format!("# The private key is the systemd credential {c} (LoadCredential={c}:FILE in the unit)."));
            line(format!("auth = {{ key_credential = {} }}", q(c)));
        }
        (None, None, None) => {
            line(format!(
                "# The password the customer sends by SMS goes into {id}.password (secrets folder, mode 0600; never in this file)."
            ));
            line(format!(
                "auth = {{ password_file = {} }}",
                q(&format!("{id}.password"))
            ));
        }
    }
    line("# Folder on the server the files go into (\".\" = the login folder).".into());
    line(format!("remote_dir = {}", q(&a.remote_dir)));
    line(String::new());
    line(extract_section(a, report)?);
    line(String::new());
    line("[encryption]".into());
    if a.no_encryption {
        line("# Unencrypted, as asked: allowed only for data without identifying or personal fields.".into());
        line("mode = \"none\"".into());
    } else {
        line("# Encrypted with age to the customer's recipient(s).".into());
        line(format!("recipients = {}", list(&a.recipient)));
    }
    Ok(o)
}

/// The `[extract]` table (and `[extract.filter]`) of the file.
fn extract_section(a: &Args, report: &str) -> Result<String> {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line("[extract]".into());
    line("# Which data the customer asked for.".into());
    line(format!("report = {}", q(report)));
    if !a.columns.is_empty() {
        line("# The columns of the custom report.".into());
        line(format!("columns = {}", list(&a.columns)));
    }
    if !a.code_tables.is_empty() {
        line("# Code tables delivered as files of their own in the same run.".into());
        line(format!("code_tables = {}", list(&a.code_tables)));
    }
    line("# File format: dsv (the authority's ¤ format), csv or xlsx.".into());
    line(format!("format = {}", q(&a.format)));
    match &a.period {
        Some(p) => {
            line("# Which vehicles each run covers.".into());
            line(format!("period = {}", period(p)?));
        }
        None => line("# No period: every run delivers the whole (filtered) register.".into()),
    }
    let mut filters: Vec<(&str, String, &str)> = Vec::new();
    for (key, v, what) in [
        ("make", &a.make, "makes (code or name)"),
        ("model", &a.model, "models"),
        ("vehicle_group", &a.vehicle_group, "vehicle groups"),
        ("fuel", &a.fuel, "fuel codes"),
        ("hybrid_category", &a.hybrid_category, "hybrid categories"),
        (
            "org_number",
            &a.owner_org_number,
            "owners' organisation numbers",
        ),
        ("municipality", &a.municipality, "owners' municipalities"),
        ("county", &a.county, "owners' counties"),
    ] {
        if !v.is_empty() {
            filters.push((key, list(v), what));
        }
    }
    if let Some(y) = &a.first_registration_year {
        filters.push((
            "first_registration_year",
            range("first-registration-year", y)?,
            "first-registration years",
        ));
    }
    if let Some(s) = &a.seats {
        filters.push(("seats", range("seats", s)?, "total seats"));
    }
    if filters.is_empty() {
        line("# No filter: every vehicle of the report.".into());
    } else {
        line(String::new());
        line("[extract.filter]".into());
        for (key, value, what) in filters {
            line(format!("# Only these {what}."));
            line(format!("{key} = {value}"));
        }
    }
    // The caller's `line` ends the last line.
    o.pop();
    Ok(o)
}
