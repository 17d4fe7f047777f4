//! `regdrop new-subscription`: turns a customer's
//! request into a subscription file.
//!
//! The seed (000) says what a customer sends: which data, an e-mail address and a mobile
//! number, the SFTP server's DNS name or IP, the SFTP user name (the password comes by
//! SMS); for encrypted extracts the customer's age recipient. Each of these is a flag;
//! on a terminal (or with `--interactive`), a missing one is asked for, each answer checked
//! at once ([`prompt`]), and so are the login, the schedule and the period; otherwise the
//! command fails and lists every missing flag. The server's host keys are scanned and
//! pinned after a yes to their fingerprints (`--yes` for scripts), or given with
//! `--host-key` before the server is reachable. Secrets are never asked for: the file names a password
//! (or key) file, which the operator creates for the service user (`install -o regdrop -g
//! regdrop -m 0600`, the model of systemd/README.md).
//!
//! The file is validated exactly as `regdrop check` validates it before it is written, and
//! every choice in it carries a comment.

use crate::cmd::{Exit, EXIT_CONFIG};
use crate::core::config::raw::RawSubscription;
use crate::core::config::validate::{self, Inherited, Offers};
use anyhow::{anyhow, bail, Context, Result};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod prompt;
mod render;
use prompt::{complete, Asker};
pub use render::render;

/// Flags of `regdrop new-subscription`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Subscription id: lowercase letters, digits and `-` (also the file name).
    #[arg(long)]
    pub id: Option<String>,
    /// The customer's name, as it goes into receipts.
    #[arg(long)]
    pub customer: Option<String>,
    /// The customer's organisation number (9 digits).
    #[arg(long)]
    pub org_number: Option<String>,
    /// The authority's case number (saksnummer) for this release.
    #[arg(long)]
    pub case_number: Option<String>,
    /// The customer's invoice reference.
    #[arg(long)]
    pub invoice_reference: Option<String>,
    /// Contact e-mail of the customer's person responsible.
    #[arg(long)]
    pub email: Option<String>,
    /// Contact mobile number (the SFTP password comes by SMS from/to this number).
    #[arg(long)]
    pub mobile: Option<String>,
    /// Which data: technical, technical_owners, first_registrations, owners, custom,
    /// technical_open, code_tables.
    #[arg(long)]
    pub report: Option<String>,
    /// Columns of a custom report (comma-separated catalog names; `regdrop fields`).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Code tables to deliver beside the report, or alone with --report code_tables
    /// (make, vehicle_group, fuel, colour, euronorm, load_index, speed_index, ...).
    #[arg(long, value_delimiter = ',')]
    pub code_tables: Vec<String>,
    /// Filter: make codes or names (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub make: Vec<String>,
    /// Filter: models / trade names.
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    /// Filter: vehicle groups (tax codes, e.g. 101).
    #[arg(long, value_delimiter = ',')]
    pub vehicle_group: Vec<String>,
    /// Filter: fuel codes (e.g. 5 = electric).
    #[arg(long, value_delimiter = ',')]
    pub fuel: Vec<String>,
    /// Filter: hybrid categories.
    #[arg(long, value_delimiter = ',')]
    pub hybrid_category: Vec<String>,
    /// Filter: first-registration years, `MIN..MAX`, `MIN..` or `..MAX`.
    #[arg(long)]
    pub first_registration_year: Option<String>,
    /// Filter: total seats, `MIN..MAX`, `MIN..` or `..MAX`.
    #[arg(long)]
    pub seats: Option<String>,
    /// Filter (owner reports): owners' organisation numbers.
    #[arg(long, value_delimiter = ',')]
    pub owner_org_number: Vec<String>,
    /// Filter (owner reports): owners' municipality numbers (4 digits).
    #[arg(long, value_delimiter = ',')]
    pub municipality: Vec<String>,
    /// Filter (owner reports): owners' county numbers (2 digits).
    #[arg(long, value_delimiter = ',')]
    pub county: Vec<String>,
    /// previous_day, previous_week, previous_month, since_last_delivery or FROM..TO
    /// (dates). Default: the whole register each run.
    #[arg(long)]
    pub period: Option<String>,
    /// dsv (the authority's ¤ format), csv or xlsx.
    #[arg(long, default_value = "dsv")]
    pub format: String,
    /// The legal basis for personal data (required for reports with personal fields).
    #[arg(long)]
    pub legal_basis: Option<String>,
    /// When to deliver: a 5-field cron line [default: "0 6 * * MON"; asked when asking].
    #[arg(long)]
    pub cron: Option<String>,
    /// IANA time zone of the schedule [default: `[defaults] timezone` of regdrop.toml].
    #[arg(long)]
    pub timezone: Option<String>,
    /// The customer's SFTP server: DNS name or IP (HOST or HOST:PORT).
    #[arg(long)]
    pub host: Option<String>,
    /// SFTP port (default 22, or the port in --host).
    #[arg(long)]
    pub port: Option<u16>,
    /// The SFTP user name on the customer's server.
    #[arg(long)]
    pub username: Option<String>,
    /// Folder on the server the files go into (default: the login folder).
    #[arg(long, default_value = ".")]
    pub remote_dir: String,
    /// The customer's age recipient(s): `age1...` or an `ssh-ed25519 ...` line. Repeatable.
    #[arg(long)]
    pub recipient: Vec<String>,
    /// Deliver unencrypted (only reports without identifying or personal fields).
    #[arg(long)]
    pub no_encryption: bool,
    /// Log in with this private key file (relative to the secrets folder) instead of a
    /// password file `<id>.password`.
    #[arg(long, conflicts_with_all = ["password_credential", "key_credential"])]
    pub key_file: Option<String>,
    /// Log in with the password in this systemd credential (`LoadCredential=NAME:PATH`).
    #[arg(long, conflicts_with = "key_credential")]
    pub password_credential: Option<String>,
    /// Log in with the private key in this systemd credential.
    #[arg(long)]
    pub key_credential: Option<String>,
    /// Pin this host key (an OpenSSH public-key line the customer sent, `ssh-ed25519
    /// AAAA...`) instead of scanning the server: for onboarding before it is reachable.
    /// Repeatable.
    #[arg(long)]
    pub host_key: Vec<String>,
    /// Pin the scanned host keys without asking (scripts; check the printed fingerprints
    /// with the customer).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Ask for what is missing on standard input even when it is not a terminal (answers
    /// piped in, one a line).
    #[arg(long)]
    pub interactive: bool,
    /// Where to write the file [default: `<subscriptions folder>/<id>.toml`].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for the server during the host-key scan.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

/// Splits `HOST`, `HOST:PORT` or `[V6]:PORT`; `--port` wins.
fn host_port(host: &str, port: Option<u16>) -> Result<(String, u16)> {
    let (h, p) = if let Some(rest) = host.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| anyhow!("--host `{host}`: missing `]`"))?;
        (
            h.to_string(),
            p.strip_prefix(':').map(str::parse::<u16>).transpose()?,
        )
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (
                h.to_string(),
                Some(
                    p.parse::<u16>()
                        .with_context(|| format!("`{p}` is not a port"))?,
                ),
            ),
            _ => (host.to_string(), None),
        }
    };
    Ok((h, port.or(p).unwrap_or(22)))
}

/// The scanned keys to pin: (line, fingerprint).
pub type Pinned = Vec<(String, String)>;

/// The command.
pub fn run(config: Option<&Path>, mut a: Args) -> Result<ExitCode> {
    let asker = Asker {
        interactive: a.interactive || std::io::stdin().is_terminal(),
    };
    // The daemon config gives the subscriptions folder, the secrets folder, the default
    // time zone and the ids in use; without one (`--out` given) the defaults apply.
    let loaded = match (crate::cmd::load(config), &a.out) {
        (Ok(l), _) => Some(l),
        (Err(_), Some(_)) => None,
        (Err(e), None) => {
            return Err(
                e.context("no --out given, so the subscriptions folder of the config is needed")
            )
        }
    };
    let default_tz = loaded.as_ref().map_or_else(
        || "Europe/Oslo".to_string(),
        |l| l.daemon.inherited.timezone.clone(),
    );
    complete(&mut a, &asker, &default_tz)?;
    let id = a.id.clone().unwrap_or_default();
    let out = match &a.out {
        Some(o) => o.clone(),
        None => loaded
            .as_ref()
            .expect("loaded above")
            .daemon
            .subscriptions_dir
            .join(format!("{id}.toml")),
    };
    if out.exists() && !a.force {
        bail!(
            "{} exists; choose another --id or --out, or pass --force to replace it",
            out.display()
        );
    }
    if let Some(l) = &loaded {
        if let Some(other) = l
            .subscriptions
            .iter()
            .find(|s| s.id == id && s.source != out)
        {
            bail!(
                "id `{id}` is already used by {}; choose another --id",
                other.source.display()
            );
        }
    }

    let (host, port) = host_port(a.host.as_deref().unwrap_or_default(), a.port)?;
    let inherited = loaded
        .as_ref()
        .map(|l| l.daemon.inherited.clone())
        .unwrap_or_else(|| Inherited {
            timezone: "Europe/Oslo".into(),
            retry: crate::core::retry::RetryPolicy::default(),
            secrets_dir: PathBuf::from("."),
            offers: Offers::ASSUMED,
        });
    // Renders and validates as `regdrop check` does; problems are config errors (78).
    let checked = |keys: &Pinned| -> Result<String> {
        let text = render(&a, &host, port, keys)?;
        let raw: RawSubscription = toml::from_str(&text)
            .map_err(|e| anyhow!("internal: the written file does not parse: {e}"))?;
        match validate::validate_subscription(&raw, &inherited, &out) {
            Ok(_) => Ok(text),
            Err(problems) => {
                let lines: Vec<String> = problems
                    .into_iter()
                    .map(|p| crate::loader::locate(&out, &text, p).to_string())
                    .collect();
                Err(anyhow::Error::new(Exit {
                    code: EXIT_CONFIG,
                    message: format!(
                        "the subscription would be invalid, nothing written:\n{}",
                        lines.join("\n")
                    ),
                }))
            }
        }
    };
    // The request itself first (with a stand-in key), so a wrong request never contacts
    // the customer's server.
    const STAND_IN: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj";
    checked(&vec![(STAND_IN.to_string(), String::new())])?;

    let keys = host_keys(&a, &asker, &host, port)?;
    let text = checked(&keys)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, &text).with_context(|| format!("writing {}", out.display()))?;

    outln!("wrote {}", out.display());
    outln!("pinned host key(s) of {host}:{port}:");
    for (_, fp) in &keys {
        outln!("  {fp}");
    }
    let user = loaded
        .as_ref()
        .and_then(|l| l.daemon.service_user.clone())
        .unwrap_or_else(|| crate::pipeline::preflight::DEFAULT_USER.to_string());
    for line in secret_steps(&inherited.secrets_dir, &id, &a, &user) {
        outln!("{line}");
    }
    outln!("then: `sudo regdrop check` (as root it checks that `{user}` can read the secret), and `sudo -u {user} regdrop probe {id}` to test the login");
    Ok(ExitCode::SUCCESS)
}

/// The host keys to pin: the `--host-key` lines as given (offline onboarding), or the
/// server's, scanned and pinned only once their fingerprints are confirmed (a yes, or
/// `--yes`).
fn host_keys(a: &Args, asker: &Asker, host: &str, port: u16) -> Result<Pinned> {
    if !a.host_key.is_empty() {
        let mut keys = Pinned::new();
        let mut bad = Vec::new();
        for line in &a.host_key {
            match validate::host_key_fingerprint(line) {
                Ok(fp) => keys.push((
                    line.split_whitespace()
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" "),
                    fp,
                )),
                Err(e) => bad.push(format!("--host-key: {e}")),
            }
        }
        if !bad.is_empty() {
            return Err(anyhow::Error::new(Exit {
                code: EXIT_CONFIG,
                message: format!("{}; nothing written", bad.join("\n")),
            }));
        }
        eprintln!("Pinning the host key(s) given with --host-key (the server is not contacted).");
        return Ok(keys);
    }
    eprintln!("Scanning the host keys of {host}:{port} ...");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let keys: Pinned = rt
        .block_on(crate::sftp::scan_host_keys(
            host,
            port,
            Duration::from_secs(a.timeout_secs),
        ))
        .with_context(|| format!("scanning the host keys of {host}:{port}"))?
        .into_iter()
        .map(|k| (k.line, k.fingerprint))
        .collect();
    if keys.is_empty() {
        bail!("{host}:{port} offered no usable host key; check the address with the customer");
    }
    eprintln!("The server {host}:{port} offers these host keys; check the fingerprints with the customer:");
    for (line, fp) in &keys {
        let kind = line.split_whitespace().next().unwrap_or_default();
        eprintln!("  {kind:<20} {fp}");
    }
    if a.yes {
        return Ok(keys);
    }
    match asker.yes_no("Pin these keys (yes/no)")? {
        Some(true) => Ok(keys),
        Some(false) => bail!("host keys not pinned; nothing written (pin them later with --host-key LINE, from `regdrop hostkey scan`)"),
        None => bail!("the host keys of {host}:{port} were not confirmed (stdin is not a terminal): check the fingerprints above with the customer and run again with --yes, or give them with --host-key LINE; nothing written"),
    }
}

/// The commands that create the subscription's secret for the service user (the
/// service-user model of systemd/README.md: `user:user`, 0600, in the secrets folder), or
/// the unit's `LoadCredential=` line for a systemd credential.
fn secret_steps(secrets: &Path, id: &str, a: &Args, user: &str) -> Vec<String> {
    let mut out = Vec::new();
    let credential = |name: &str, what: &str, out: &mut Vec<String>| {
        let p = secrets.join(name);
        out.push(format!(
            "next: put the {what} in a root-owned 0600 file and hand it to the service as a systemd credential (regdrop never asks for secrets):"
        ));
        out.push(format!("  sudo install -m 0600 /dev/null {}", p.display()));
        out.push(format!("  sudoedit {}", p.display()));
        out.push(format!(
            "  systemctl edit regdrop   # add under [Service]: LoadCredential={name}:{}",
            p.display()
        ));
    };
    if let Some(name) = &a.password_credential {
        credential(name, "password the customer sends by SMS", &mut out);
        return out;
    }
    if let Some(name) = &a.key_credential {
        credential(name, "private key", &mut out);
        return out;
    }
    match &a.key_file {
        Some(k) => {
            let p = secrets.join(k);
            out.push(format!(
                "next: install the private key for the service user `{user}` (regdrop never asks for secrets):"
            ));
            out.push(format!(
                "  sudo install -o {user} -g {user} -m 0600 KEYFILE {}",
                p.display()
            ));
        }
        None => {
            let p = secrets.join(format!("{id}.password"));
            out.push(format!(
                "next: create the password file for the service user `{user}` and put the password the customer sends by SMS in it, one line (regdrop never asks for secrets):"
            ));
            out.push(format!(
                "  sudo install -o {user} -g {user} -m 0600 /dev/null {}",
                p.display()
            ));
            out.push(format!("  sudoedit {}", p.display()));
        }
    }
    out.push(
        "  (or keep the file root's and hand it over as a systemd credential: LoadCredential= in the unit, and password_credential/key_credential here; systemd/README.md)".into(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::render::{normal_mobile, period, range, valid_email};
    use super::*;

    #[test]
    fn ranges_periods_and_contacts() {
        assert_eq!(range("seats", "2..5").unwrap(), "{ min = 2, max = 5 }");
        assert_eq!(range("seats", "2..").unwrap(), "{ min = 2 }");
        assert_eq!(range("seats", "..9").unwrap(), "{ max = 9 }");
        assert_eq!(range("seats", "7").unwrap(), "{ min = 7, max = 7 }");
        assert!(range("seats", "..").is_err() && range("seats", "a..b").is_err());
        assert_eq!(period("previous_week").unwrap(), "\"previous_week\"");
        assert_eq!(
            period("2026-01-01..2026-01-31").unwrap(),
            "{ from = 2026-01-01, to = 2026-01-31 }"
        );
        assert!(period("last_year").is_err());
        assert!(
            valid_email("ola@kunde.no")
                && !valid_email("ola@kunde")
                && !valid_email("ola kunde.no")
        );
        assert_eq!(
            normal_mobile("+47 912 34 567").as_deref(),
            Some("+4791234567")
        );
        assert_eq!(normal_mobile("12ab"), None);
        assert_eq!(
            host_port("sftp.kunde.no:2222", None).unwrap(),
            ("sftp.kunde.no".into(), 2222)
        );
        assert_eq!(host_port("1.2.3.4", None).unwrap(), ("1.2.3.4".into(), 22));
        assert_eq!(
            host_port("[::1]:2200", Some(22)).unwrap(),
            ("::1".into(), 22)
        );
    }

    #[test]
    fn missing_flags_are_listed_without_a_terminal() {
        let mut a = Args {
            id: Some("x".into()),
            report: Some("owners".into()),
            ..Default::default()
        };
        let e = complete(&mut a, &Asker { interactive: false }, "Europe/Oslo")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "--customer, --legal-basis, --email, --mobile, --host, --username, --recipient"
            ),
            "{e}"
        );
    }
}
