//! The reference documentation is the code's: docs/config.md names exactly the keys the
//! configuration types have (read from their serde derive), each example parses as its
//! key's type and a misspelt key does not; every flag and positional of the command line
//! has a help text; `regdrop man` and `regdrop completions` name every subcommand, and the
//! man page renders with `man -l` where man is installed.

use crate::util::cli;
use regdrop::core::config::raw::{
    RawAuth, RawContact, RawDaemon, RawDaemonRuntime, RawDefaults, RawDelivery, RawEncryption,
    RawExtract, RawFilter, RawNotify, RawRange, RawRetention, RawSchedule, RawSubscription,
    RawTarget, RawWebhook,
};
use regdrop::core::config::raw_mail::{RawEmail, RawSms, RawSmtp, RawSmtpAuth};
use regdrop::core::retry::RetryOverrides;
use std::collections::BTreeSet;
use std::path::Path;

/// The keys of the struct `T` as a config file writes them (serde's own list, after
/// renames: the same probe the shape check keeps its key map in step with).
fn keys_of<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    regdrop::core::config::shape::serde_fields::<T>().to_vec()
}

type Keys = fn() -> Vec<&'static str>;

/// Every table of the daemon file, by path ("" the top level), and its type.
const DAEMON_TABLES: &[(&str, Keys)] = &[
    ("", keys_of::<RawDaemon>),
    ("defaults", keys_of::<RawDefaults>),
    ("retry", keys_of::<RetryOverrides>),
    ("daemon", keys_of::<RawDaemonRuntime>),
    ("retention", keys_of::<RawRetention>),
    ("smtp", keys_of::<RawSmtp>),
    ("smtp.auth", keys_of::<RawSmtpAuth>),
    ("sms", keys_of::<RawSms>),
    ("notify", keys_of::<RawNotify>),
    ("notify.webhook", keys_of::<RawWebhook>),
];

/// Every table of a subscription file. A new table in the types is found by the doc test
/// (its key is documented as a `table` row) and must be added here.
const SUBSCRIPTION_TABLES: &[(&str, Keys)] = &[
    ("", keys_of::<RawSubscription>),
    ("contact", keys_of::<RawContact>),
    ("schedule", keys_of::<RawSchedule>),
    ("target", keys_of::<RawTarget>),
    ("target.auth", keys_of::<RawAuth>),
    ("email", keys_of::<RawEmail>),
    ("extract", keys_of::<RawExtract>),
    ("extract.filter", keys_of::<RawFilter>),
    (
        "extract.filter.first_registration_year",
        keys_of::<RawRange>,
    ),
    ("extract.filter.seats", keys_of::<RawRange>),
    ("encryption", keys_of::<RawEncryption>),
    ("delivery", keys_of::<RawDelivery>),
    ("retry", keys_of::<RetryOverrides>),
];

/// A documented key: its dotted path, type column and example (None for `—`).
struct Row {
    key: String,
    kind: String,
    example: Option<String>,
}

/// The rows of the `## HEADING` section of docs/config.md.
fn rows(heading: &str) -> Vec<Row> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md"))
        .unwrap();
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("docs/config.md has no `## {heading}`"));
    let section = &doc[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            assert_eq!(
                cells.len(),
                5,
                "a row has key, type, default, example, meaning: {l}"
            );
            let unquote = |s: &str| s.trim_matches('`').to_string();
            Row {
                key: unquote(cells[0]),
                kind: cells[1].to_string(),
                example: (cells[3] != "—").then(|| unquote(cells[3])),
            }
        })
        .collect()
}

fn expected(tables: &[(&str, Keys)]) -> BTreeSet<String> {
    tables
        .iter()
        .flat_map(|(prefix, keys)| {
            keys().into_iter().map(move |k| {
                if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                }
            })
        })
        .collect()
}

/// The doc's key set is the types' key set, and the doc's tables are the test's.
fn check_keys(heading: &str, tables: &[(&str, Keys)]) -> Vec<Row> {
    let rows = rows(heading);
    let documented: BTreeSet<String> = rows.iter().map(|r| r.key.clone()).collect();
    assert_eq!(documented.len(), rows.len(), "a key is documented twice");
    let want = expected(tables);
    let missing: Vec<_> = want.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&want).collect();
    assert!(
        missing.is_empty(),
        "docs/config.md ({heading}) does not document {missing:?}: add a row with type, default, example and meaning"
    );
    assert!(
        unknown.is_empty(),
        "docs/config.md ({heading}) names {unknown:?}, which the config types do not have"
    );
    let doc_tables: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.kind.starts_with("table"))
        .map(|r| r.key.as_str())
        .collect();
    let known: BTreeSet<&str> = tables
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(
        doc_tables, known,
        "the tables documented and the tables this test knows differ: add the new table's type to the list"
    );
    rows
}

/// `base` with `path = value` put in (tables made on the way).
fn with(base: &str, path: &str, value: toml::Value) -> String {
    let mut doc: toml::Table = toml::from_str(base).unwrap();
    let parts: Vec<&str> = path.split('.').collect();
    let mut t = &mut doc;
    for p in &parts[..parts.len() - 1] {
        let v = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        // A list of tables (`[[notify.webhook]]`): its first table.
        t = match v {
            toml::Value::Array(items) => items[0].as_table_mut().unwrap(),
            v => v.as_table_mut().unwrap(),
        };
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    toml::to_string(&doc).unwrap()
}

/// Each example parses as its key's type in a file of kind `T`, and the key misspelt is
/// refused.
fn check_examples<T: serde::de::DeserializeOwned>(rows: &[Row], base: &str) {
    toml::from_str::<T>(base).unwrap_or_else(|e| panic!("the base file: {e}"));
    for r in rows {
        let Some(example) = &r.example else {
            assert!(r.kind.starts_with("table"), "`{}` has no example", r.key);
            continue;
        };
        let value: toml::Table = toml::from_str(&format!("v = {example}"))
            .unwrap_or_else(|e| panic!("the example of `{}` is not TOML: {example}: {e}", r.key));
        let value = value["v"].clone();
        let file = with(base, &r.key, value.clone());
        if let Err(e) = toml::from_str::<T>(&file) {
            panic!(
                "the example of `{}` ({example}) is refused: {e}\n{file}",
                r.key
            );
        }
        let typo = format!("{}x", r.key);
        assert!(
            toml::from_str::<T>(&with(base, &typo, value)).is_err(),
            "a misspelt `{typo}` is accepted"
        );
    }
}

const SUBSCRIPTION_BASE: &str = r#"
id = "x"
customer = "c"
[schedule]
cron = "0 6 * * *"
[target]
host = "h"
username = "u"
remote_dir = "/"
auth = { key_file = "k" }
[extract]
report = "technical"
[encryption]
recipients = []
[email]
to = ["a@b.example"]
"#;

/// The daemon file's required keys of each optional table (the examples go in beside them).
const DAEMON_BASE: &str = r#"
[smtp]
host = "127.0.0.1"
from = "a@b.example"
auth = { username = "u" }
[sms]
url = "https://sms.example/"
fields = { to = "{number}", message = "{text}" }
[[notify.webhook]]
url = "https://hooks.example/"
"#;

#[test]
fn the_config_reference_documents_every_daemon_key_and_no_other() {
    let rows = check_keys("regdrop.toml", DAEMON_TABLES);
    check_examples::<RawDaemon>(&rows, DAEMON_BASE);
}

#[test]
fn the_config_reference_documents_every_subscription_key_and_no_other() {
    let rows = check_keys("A subscription file", SUBSCRIPTION_TABLES);
    check_examples::<RawSubscription>(&rows, SUBSCRIPTION_BASE);
}

#[test]
fn the_field_reader_sees_renamed_and_defaulted_keys() {
    // The keys as written in files: serde's names, not Rust's, including defaulted ones.
    let keys = keys_of::<RawSchedule>();
    assert_eq!(keys, ["cron", "timezone", "catch_up", "jitter_secs"]);
}

/// Every argument and subcommand under `cmd`, with its path, that has no help text.
fn without_help(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    for a in cmd.get_arguments() {
        let id = a.get_id().as_str();
        if a.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        if a.get_help().is_none() && a.get_long_help().is_none() {
            out.push(format!(
                "{path} {}",
                a.get_long().map_or(id.to_string(), |l| format!("--{l}"))
            ));
        }
    }
    for s in cmd.get_subcommands() {
        let p = format!("{path} {}", s.get_name());
        if s.get_name() != "help" && s.get_about().is_none() && s.get_long_about().is_none() {
            out.push(p.clone());
        }
        without_help(s, &p, out);
    }
}

#[test]
fn every_flag_positional_and_subcommand_has_a_help_text() {
    use clap::CommandFactory;
    let mut missing = Vec::new();
    without_help(&regdrop::cmd::cli::Cli::command(), "regdrop", &mut missing);
    assert!(
        missing.is_empty(),
        "these have no `///` help text: {missing:#?}"
    );
}

fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    regdrop::cmd::cli::Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect()
}

#[test]
fn the_man_page_names_every_subcommand_and_renders() {
    let out = cli::run(cli::regdrop().arg("man"));
    assert!(out.ok(), "{}", out.text());
    assert!(out.stdout.contains(".TH regdrop 1"), "{}", out.stdout);
    let subs = subcommands();
    assert!(subs.len() >= 15, "{subs:?}");
    for s in &subs {
        assert!(
            out.stdout
                .contains(&format!(".SH \"REGDROP {}\"", s.to_uppercase())),
            "no section for {s}"
        );
    }
    assert!(out.stdout.contains("no\\-retry") || out.stdout.contains("no-retry"));
    if std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: rendering with man (not installed)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("regdrop.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let shown = cli::run(
        std::process::Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"),
    );
    assert!(shown.ok(), "{}", shown.text());
    assert!(shown.stdout.contains("REGDROP DELIVER"), "{}", shown.stdout);
    assert!(!shown.stderr.contains("warning"), "{}", shown.stderr);
}

#[test]
fn completions_name_every_subcommand_for_each_shell() {
    let subs = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let out = cli::run(cli::regdrop().args(["completions", shell]));
        assert!(out.ok(), "{shell}: {}", out.text());
        for s in &subs {
            assert!(out.stdout.contains(s.as_str()), "{shell}: no {s}");
        }
    }
    let bad = cli::run(cli::regdrop().args(["completions", "tcsh"]));
    assert_eq!(bad.code, 2, "{}", bad.text());
}
