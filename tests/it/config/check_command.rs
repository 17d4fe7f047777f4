//! `regdrop check` on real files: every problem of every file with file:line:column, exit 78,
//! and the personal-data rules.

use crate::util;
use std::path::Path;

fn regdrop(config: &Path, args: &[&str]) -> (i32, String) {
    let out = util::cli::run(util::cli::regdrop().arg("--config").arg(config).args(args));
    (out.code, out.text())
}

/// A config folder with the example subscriptions copied into `subs/`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = std::fs::read_to_string(root.join("config.example.toml"))
        .unwrap()
        .replace("subscriptions.example", "subs");
    std::fs::write(dir.path().join("regdrop.toml"), cfg).unwrap();
    std::fs::create_dir(dir.path().join("subs")).unwrap();
    for e in std::fs::read_dir(root.join("subscriptions.example")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join("subs").join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join("subs").join(file);
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.contains(from), "{file} has no `{from}`");
    std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn examples_are_valid() {
    let dir = setup();
    let (code, out) = regdrop(
        &dir.path().join("regdrop.toml"),
        &["check", "--no-environment"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("8 subscriptions valid"), "{out}");
}

#[test]
fn every_problem_of_every_file_is_reported_with_its_place() {
    let dir = setup();
    let d = dir.path();
    // owners.toml: no legal basis (line 6 is legal_basis in the example).
    edit(
        d,
        "owners.toml",
        "legal_basis = \"Parkeringsforskriften § 33; avtale 2026-0099\"\n",
        "",
    );
    // first_registrations.toml: a 4-field cron line AND an unknown make AND a bad recipient.
    edit(
        d,
        "first_registrations.toml",
        "cron = \"0 7 1 * *\"",
        "cron = \"0 7 1 *\"",
    );
    edit(
        d,
        "first_registrations.toml",
        "make = [\"TESLA\"]",
        "make = [\"TESSLA\"]",
    );
    edit(
        d,
        "first_registrations.toml",
        "recipients = [\"ssh-ed25519",
        "recipients = [\"age1nope\", \"ssh-ed25519",
    );
    // technical.toml: a file name template escaping the folder, and a wrong time zone.
    edit(
        d,
        "technical.toml",
        "file_name = \"MVR_TECH_DATA_",
        "file_name = \"../MVR_TECH_DATA_",
    );
    edit(
        d,
        "technical.toml",
        "timezone = \"Europe/Oslo\"",
        "timezone = \"Europe/Olso\"",
    );
    // custom.toml: a syntax error.
    edit(d, "custom.toml", "username = \"elbil\"", "username = elbil");
    // A new file duplicating an id.
    let dup = std::fs::read_to_string(d.join("subs/technical_owners.toml")).unwrap();
    std::fs::write(d.join("subs/zz_dup.toml"), dup).unwrap();

    let (code, out) = regdrop(&d.join("regdrop.toml"), &["check", "--no-environment"]);
    assert_eq!(code, 78, "{out}");
    let has = |needle: &str| assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    has("subs/owners.toml:1:1: legal_basis: this extract discloses personal data");
    has("subs/first_registrations.toml:7:8: schedule.cron:");
    has("subs/first_registrations.toml:22:20: extract.filter.make[0]: `TESSLA`");
    has("subs/first_registrations.toml:25:15: encryption.recipients[0]: `age1nope`");
    has("subs/technical.toml:10:12: schedule.timezone:");
    has("subs/technical.toml:34:13: delivery.file_name:");
    has("subs/custom.toml:12:12: string values must be quoted");
    has("subs/zz_dup.toml:2:6: id: id `bompenger-owners` is already used");
    // The valid one still loads.
    has("4 subscription(s) valid");
}

#[test]
fn personal_data_needs_legal_basis_recipients_and_encryption() {
    let dir = setup();
    let d = dir.path();
    edit(
        d,
        "owners.toml",
        "legal_basis = \"Parkeringsforskriften § 33; avtale 2026-0099\"",
        "legal_basis = \"  \"",
    );
    edit(
        d,
        "owners.toml",
        "recipients = [\"age1",
        "mode = \"none\"\nrecipients = [] # \"age1",
    );
    edit(
        d,
        "owners.toml",
        "auth = { password_file = \"parkering.password\" }",
        "auth = { password = \"hunter2\" }",
    );
    let (code, out) = regdrop(&d.join("regdrop.toml"), &["check", "--no-environment"]);
    assert_eq!(code, 78, "{out}");
    assert!(
        out.contains("owners.toml:6:15: legal_basis: this extract discloses personal data"),
        "{out}"
    );
    assert!(
        out.contains("encryption.mode: this report holds identifying or personal fields"),
        "{out}"
    );
    assert!(
        out.contains("target.auth.password: secrets never go into subscription files"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "a secret was echoed:\n{out}");
}

/// The `[target]` upload overrides: out-of-range numbers and an unknown commit mode are each
/// reported at their key; values within range are accepted.
#[test]
fn target_upload_overrides_are_checked() {
    let dir = setup();
    let d = dir.path();
    edit(
        d,
        "technical.toml",
        "[target]\n",
        "[target]\nchannels = 0\nmax_write = 300000\nin_flight = 8\ncommit = \"sometimes\"\nio_timeout_secs = 0\n",
    );
    let (code, out) = regdrop(&d.join("regdrop.toml"), &["check", "--no-environment"]);
    assert_eq!(code, 78, "{out}");
    for key in [
        "target.channels",
        "target.max_write",
        "target.commit",
        "target.io_timeout_secs",
    ] {
        assert!(out.contains(key), "{key} not reported:\n{out}");
    }
    assert!(!out.contains("target.in_flight"), "{out}");
    assert!(out.contains("\"race-free\""), "{out}");

    let dir = setup();
    let d = dir.path();
    edit(
        d,
        "technical.toml",
        "[target]\n",
        "[target]\nchannels = 1\nmax_write = 32768\nin_flight = 1\ncommit = \"race-free\"\nio_timeout_secs = 600\nfsync = false\nposix_rename = false\n",
    );
    let (code, out) = regdrop(&d.join("regdrop.toml"), &["check", "--no-environment"]);
    assert_eq!(code, 0, "{out}");
}

/// The operator's three mistakes in one file (a misspelt key, a quoted port, an hour out of
/// range) are all reported, each at its place, in words, with what to write instead.
#[test]
fn a_typo_a_quoted_port_and_a_bad_cron_field_are_all_reported_in_words() {
    let dir = setup();
    let d = dir.path();
    edit(d, "technical.toml", "customer = ", "custmer = ");
    edit(d, "technical.toml", "port = 22", "port = \"2222\"");
    edit(
        d,
        "technical.toml",
        "cron = \"0 5 * * MON\"",
        "cron = \"0 25 * * *\"",
    );
    let (code, out) = regdrop(&d.join("regdrop.toml"), &["check", "--no-environment"]);
    assert_eq!(code, 78, "{out}");
    let has = |needle: &str| assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    has("subs/technical.toml:3:1: custmer: unknown key; did you mean `customer`?");
    has("subs/technical.toml:15:8: target.port: expected a whole number 1-65535, found the text \"2222\"; write port = 2222 without quotes");
    has("subs/technical.toml:9:8: schedule.cron: `0 25 * * *`: the hour field takes 0-23, not 25; fix that field");
    // No Rust in the words, and the typo is not reported a second time as a missing key.
    for rust in [
        "invalid type",
        "expected u16",
        "Component error",
        "missing field",
    ] {
        assert!(!out.contains(rust), "`{rust}` in:\n{out}");
    }
    assert!(!out.contains(": customer: "), "{out}");
    has(&format!(
        "3 problem(s) in 1 file(s); {} subscription(s) valid",
        examples() - 1
    ));
}

/// `check --json`: one document with every problem (file, line, column, key, message,
/// hint, kind) and a summary; `check FILE` checks only that file.
#[test]
fn check_json_and_check_one_file() {
    let dir = setup();
    let d = dir.path();
    edit(d, "technical.toml", "port = 22", "port = \"2222\"");
    edit(d, "owners.toml", "customer = ", "custmer = ");
    let out = util::cli::run(
        util::cli::regdrop()
            .arg("--config")
            .arg(d.join("regdrop.toml"))
            .args(["check", "--no-environment", "--json"]),
    );
    assert_eq!(out.code, 78, "{}", out.text());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(v["ok"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{v:#}");
    let port = problems
        .iter()
        .find(|p| p["key"] == "target.port")
        .expect("the port problem");
    assert!(port["file"]
        .as_str()
        .unwrap()
        .ends_with("subs/technical.toml"));
    assert_eq!(port["line"], 15);
    assert_eq!(port["column"], 8);
    assert_eq!(port["kind"], "config");
    assert_eq!(
        port["message"],
        "expected a whole number 1-65535, found the text \"2222\""
    );
    assert_eq!(port["hint"], "write port = 2222 without quotes");
    assert_eq!(v["summary"]["subscriptions_valid"], examples() - 2);
    assert_eq!(v["summary"]["subscription_files"], examples());
    assert_eq!(v["summary"]["files_with_problems"], 2);
    assert_eq!(v["environment"]["checked"], false);

    // One file: only its problems, and it alone is counted.
    let (code, out) = regdrop(
        &d.join("regdrop.toml"),
        &[
            "check",
            "--no-environment",
            d.join("subs/technical.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 78, "{out}");
    assert!(out.contains("target.port"), "{out}");
    assert!(!out.contains("custmer"), "{out}");
    let (code, out) = regdrop(
        &d.join("regdrop.toml"),
        &[
            "check",
            "--no-environment",
            d.join("subs/code_tables.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(1 subscriptions valid"), "{out}");
}

/// How many example subscriptions `subscriptions.example/` has (the setup copies them all).
fn examples() -> usize {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("subscriptions.example"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count()
}
