//! The questions `new-subscription` asks for what the flags left out (on a terminal, or on
//! piped standard input with `--interactive`): each answer is checked at once and asked
//! again when it is wrong, so nothing typed is lost; the schedule is shown back as its next
//! fire times, and scanned host keys are pinned only after a yes.

use super::render::{is_personal, normal_mobile, period, valid_email};
use super::{host_port, Args};
use crate::core::catalog::{self, ReportKind};
use crate::core::codes::CodeTable;
use crate::core::config::Recipient;
use crate::core::schedule::{self, CatchUp, Schedule};
use anyhow::{anyhow, bail, Result};
use std::io::{BufRead, Write};

/// The cron line when neither a flag nor an answer gives one.
pub const DEFAULT_CRON: &str = "0 6 * * MON";

/// Asks on standard input; `None` for every question when it may not ask.
pub struct Asker {
    pub interactive: bool,
}

impl Asker {
    /// Asks until `check` accepts the answer (an empty answer is `default`, when there is
    /// one); each refusal is said and the question asked again.
    pub fn ask<T>(
        &self,
        label: &str,
        default: Option<&str>,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        if !self.interactive {
            return Ok(None);
        }
        loop {
            match default {
                Some(d) if !d.is_empty() => eprint!("{label} [{d}]: "),
                _ => eprint!("{label}: "),
            }
            std::io::stderr().flush()?;
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line)? == 0 {
                eprintln!();
                bail!("input ended before `{label}` was answered; nothing written");
            }
            let mut v = line.trim();
            if v.is_empty() {
                match default {
                    Some(d) => v = d,
                    None => continue,
                }
            }
            match check(v) {
                Ok(t) => return Ok(Some(t)),
                Err(e) => eprintln!("  {e}; try again"),
            }
        }
    }

    /// A yes/no question (like ssh's), asked until the answer is one of them.
    pub fn yes_no(&self, label: &str) -> Result<Option<bool>> {
        self.ask(label, None, |v| match v.to_ascii_lowercase().as_str() {
            "yes" | "y" => Ok(true),
            "no" | "n" => Ok(false),
            _ => Err("please type yes or no".into()),
        })
    }
}

fn non_empty(what: &'static str) -> impl Fn(&str) -> Result<String, String> {
    move |v: &str| {
        if v.trim().is_empty() {
            Err(format!("{what} cannot be empty"))
        } else {
            Ok(v.trim().to_string())
        }
    }
}

fn id(v: &str) -> Result<String, String> {
    if crate::core::config::validate::valid_id(v) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "`{v}` is not a valid id: use 1-63 lowercase letters, digits and `-`, starting with a letter or digit"
        ))
    }
}

fn report(v: &str) -> Result<String, String> {
    ReportKind::parse(v)
        .map(|_| v.to_string())
        .ok_or_else(|| format!("`{v}` is not a report: technical, technical_owners, first_registrations, owners, custom, technical_open or code_tables"))
}

fn split(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn columns(v: &str) -> Result<Vec<String>, String> {
    let c = split(v);
    match c.iter().find(|c| catalog::field(c).is_none()) {
        Some(bad) => Err(format!(
            "`{bad}` is not a field; `regdrop fields` lists them"
        )),
        None if c.is_empty() => Err("name at least one column".into()),
        None => Ok(c),
    }
}

fn code_tables(v: &str) -> Result<Vec<String>, String> {
    let c = split(v);
    match c.iter().find(|c| CodeTable::parse(c).is_none()) {
        Some(bad) => Err(format!("`{bad}` is not a code table (make, vehicle_group, fuel, colour, euronorm, load_index, speed_index, technical_code, status)")),
        None if c.is_empty() => Err("name at least one code table".into()),
        None => Ok(c),
    }
}

fn email(v: &str) -> Result<String, String> {
    if valid_email(v) {
        Ok(v.to_string())
    } else {
        Err(format!("`{v}` is not an e-mail address"))
    }
}

fn mobile(v: &str) -> Result<String, String> {
    normal_mobile(v).ok_or_else(|| format!("`{v}` is not a phone number (8-15 digits, optional +)"))
}

fn host(v: &str) -> Result<String, String> {
    host_port(v, None)
        .map(|_| v.to_string())
        .map_err(|e| format!("`{v}`: {e}"))
}

fn recipient(v: &str) -> Result<String, String> {
    Recipient::parse(v)
        .map(|_| v.to_string())
        .map_err(|e| e.to_string())
}

/// The ways to log in, as the auth question offers them.
const AUTH_CHOICES: &str = "1) password file (the customer sends the password by SMS)  2) private key file  3) systemd credential holding the password  4) systemd credential holding the key";

/// Fills the missing values (asking when it may) and checks the contact details; errors
/// name every missing flag at once.
pub fn complete(a: &mut Args, asker: &Asker, default_tz: &str) -> Result<()> {
    let mut missing: Vec<&str> = Vec::new();
    macro_rules! need {
        ($field:ident, $flag:literal, $label:literal, $check:expr) => {
            if a.$field.as_deref().is_none_or(|s| s.trim().is_empty()) {
                a.$field = asker.ask($label, None, $check)?;
                if a.$field.is_none() {
                    missing.push($flag);
                }
            }
        };
    }
    need!(
        id,
        "--id",
        "Subscription id (lowercase letters, digits, -)",
        id
    );
    need!(
        customer,
        "--customer",
        "Customer name",
        non_empty("the name")
    );
    need!(report, "--report", "Which data (technical, technical_owners, first_registrations, owners, custom, technical_open, code_tables)", report);
    let kind = a.report.as_deref().and_then(ReportKind::parse);
    if kind == Some(ReportKind::Custom) && a.columns.is_empty() {
        match asker.ask(
            "Columns (comma-separated; `regdrop fields` lists them)",
            None,
            columns,
        )? {
            Some(c) => a.columns = c,
            None => missing.push("--columns"),
        }
    }
    if kind == Some(ReportKind::CodeTables) && a.code_tables.is_empty() {
        match asker.ask("Code tables (comma-separated: make, vehicle_group, fuel, colour, euronorm, load_index, speed_index)", None, code_tables)? {
            Some(c) => a.code_tables = c,
            None => missing.push("--code-tables"),
        }
    }
    if is_personal(kind, &a.columns) {
        need!(
            legal_basis,
            "--legal-basis",
            "Legal basis for the personal data (law and agreement)",
            non_empty("the legal basis")
        );
    }
    need!(email, "--email", "Contact e-mail", email);
    need!(mobile, "--mobile", "Contact mobile number", mobile);
    need!(
        host,
        "--host",
        "SFTP server (DNS name or IP, optionally :PORT)",
        host
    );
    need!(
        username,
        "--username",
        "SFTP user name",
        non_empty("the user name")
    );
    if !a.no_encryption && a.recipient.is_empty() {
        match asker.ask(
            "Customer's age recipient (age1... or ssh-ed25519 ...)",
            None,
            recipient,
        )? {
            Some(r) => a.recipient.push(r),
            None => missing.push("--recipient"),
        }
    }
    if !missing.is_empty() {
        bail!(
            "missing {}; give them as flags (stdin is not a terminal, so nothing can be asked; --interactive asks on it anyway)",
            missing.join(", ")
        );
    }
    ask_optional(a, asker, default_tz)?;
    if let Some(e) = &a.email {
        if !valid_email(e) {
            bail!("--email `{e}` is not an e-mail address");
        }
    }
    if let Some(m) = &a.mobile {
        a.mobile = Some(normal_mobile(m).ok_or_else(|| {
            anyhow!("--mobile `{m}` is not a phone number (8-15 digits, optional +)")
        })?);
    }
    Ok(())
}

/// What has a default but is worth asking about when asking: the login, the schedule and
/// the period.
fn ask_optional(a: &mut Args, asker: &Asker, default_tz: &str) -> Result<()> {
    if !asker.interactive {
        return Ok(());
    }
    let id = a.id.clone().unwrap_or_default();
    if a.key_file.is_none() && a.password_credential.is_none() && a.key_credential.is_none() {
        eprintln!("How does regdrop log in? {AUTH_CHOICES}");
        let choice = asker.ask("Login", Some("1"), |v| match v {
            "1" | "2" | "3" | "4" => Ok(v.to_string()),
            _ => Err("answer 1, 2, 3 or 4".into()),
        })?;
        match choice.as_deref() {
            Some("2") => {
                a.key_file = asker.ask(
                    "Private key file (relative to the secrets folder)",
                    Some(&format!("{id}_ed25519")),
                    non_empty("the key file"),
                )?;
            }
            Some("3") => {
                a.password_credential = asker.ask(
                    "Credential name (LoadCredential=NAME:...)",
                    Some(&format!("{id}-password")),
                    credential,
                )?;
            }
            Some("4") => {
                a.key_credential = asker.ask(
                    "Credential name (LoadCredential=NAME:...)",
                    Some(&format!("{id}-key")),
                    credential,
                )?;
            }
            _ => {}
        }
    }
    if a.cron.is_none() {
        a.cron = asker.ask(
            "When to deliver (5-field cron: minute hour day-of-month month day-of-week)",
            Some(DEFAULT_CRON),
            |v| cron(v, default_tz).map(|_| v.to_string()),
        )?;
    }
    if a.timezone.is_none() {
        a.timezone = asker.ask("Time zone (IANA)", Some(default_tz), |v| {
            schedule::parse_tz(v).map(|_| v.to_string())
        })?;
    }
    let line = a.cron.as_deref().unwrap_or(DEFAULT_CRON);
    let tz = a.timezone.as_deref().unwrap_or(default_tz);
    if let Ok(s) = cron(line, tz) {
        eprintln!("  `{line}` in {tz} fires next at:");
        for t in s.upcoming(chrono::Utc::now(), 3) {
            eprintln!(
                "    {}   ({})",
                s.local(t).format("%a %Y-%m-%d %H:%M %Z"),
                t.format("%Y-%m-%dT%H:%M:%SZ")
            );
        }
    }
    if a.period.is_none() {
        a.period = asker
            .ask("Period each run covers (previous_day, previous_week, previous_month, since_last_delivery, FROM..TO; `all` for the whole register)", Some("all"), |v| {
                if v == "all" {
                    Ok(None)
                } else {
                    period(v).map(|_| Some(v.to_string())).map_err(|e| format!("{e:#}"))
                }
            })?
            .flatten();
    }
    Ok(())
}

fn credential(v: &str) -> Result<String, String> {
    if v.contains('/') || v.contains(char::is_whitespace) {
        Err(format!("`{v}` is not a credential name (no `/` or spaces)"))
    } else {
        Ok(v.to_string())
    }
}

/// The schedule of a cron line in a zone, refused when it never fires.
fn cron(line: &str, tz: &str) -> Result<Schedule, String> {
    schedule::parse_cron(line).map_err(|e| format!("`{line}`: {e}"))?;
    let tz = schedule::parse_tz(tz)?;
    let s = Schedule::new(line, tz, CatchUp::Once, 0)?;
    if s.upcoming(chrono::Utc::now(), 1).is_empty() {
        return Err(format!(
            "`{line}` never fires (no date matches it, like 30 February)"
        ));
    }
    Ok(s)
}
