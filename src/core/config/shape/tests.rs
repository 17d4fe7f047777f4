//! The shape check on small files: every problem at once, in words, and a repaired table
//! that deserializes.

use super::schema::{DAEMON, SUBSCRIPTION};
use super::*;
use crate::core::config::raw::{RawDaemon, RawSubscription};
use serde::de::IntoDeserializer;
use serde::Deserialize;

const GOOD: &str = "id = \"acme\"\ncustomer = \"ACME AS\"\n\
[schedule]\ncron = \"0 6 * * MON\"\n\
[target]\nhost = \"sftp.example.no\"\nusername = \"acme\"\nremote_dir = \"/in\"\n\
[target.auth]\nkey_file = \"acme.key\"\n\
[extract]\nreport = \"technical\"\n\
[encryption]\nrecipients = [\"age1x\"]\n";

/// (key, message) of every problem, and whether the repaired table deserializes.
fn run(text: &str) -> (Vec<(String, String)>, bool) {
    let mut doc = DeTable::parse(text).expect("TOML").into_inner();
    let p = check(&mut doc, &SUBSCRIPTION).problems;
    let spanned = Spanned::new(0..text.len(), doc);
    let ok = RawSubscription::deserialize(spanned.into_deserializer()).is_ok();
    (
        p.into_iter()
            .map(|p| (p.problem.key, p.problem.message))
            .collect(),
        ok,
    )
}

#[test]
fn a_good_file_has_no_problem() {
    assert_eq!(run(GOOD), (vec![], true));
}

#[test]
fn a_typo_and_a_quoted_port_are_both_reported() {
    let text = GOOD.replace("customer =", "custmer =").replace(
        "username = \"acme\"\n",
        "username = \"acme\"\nport = \"2222\"\n",
    );
    let (p, ok) = run(&text);
    assert!(ok, "the repaired table deserializes");
    let at = |k: &str| {
        p.iter()
            .find(|(key, _)| key == k)
            .unwrap_or_else(|| panic!("no problem at {k}: {p:?}"))
            .1
            .clone()
    };
    assert_eq!(at("custmer"), "unknown key; did you mean `customer`?");
    // Not also "customer is missing": the did-you-mean says it.
    assert!(!p.iter().any(|(k, _)| k == "customer"), "{p:?}");
    assert_eq!(
        at("target.port"),
        "expected a whole number 1-65535, found the text \"2222\"; write port = 2222 without quotes"
    );
    assert_eq!(p.len(), 2, "{p:?}");
}

#[test]
fn wrong_types_say_what_to_write() {
    let text = GOOD
        .replace(
            "[schedule]\n",
            "enabled = \"yes\"\n[schedule]\njitter_secs = -5\ncatch_up = \"onse\"\n",
        )
        .replace("recipients = [\"age1x\"]", "recipients = \"age1x\"")
        .replace("report = \"technical\"", "report = 7\nmake = 1");
    let (p, ok) = run(&text);
    assert!(ok);
    let msgs: Vec<String> = p.iter().map(|(k, m)| format!("{k}: {m}")).collect();
    let has = |s: &str| assert!(msgs.iter().any(|m| m == s), "no `{s}` in {msgs:#?}");
    has("enabled: expected true or false, found the text \"yes\"; write enabled = true");
    has("schedule.jitter_secs: expected a whole number 0 or more, found -5; write a number in that range");
    has("schedule.catch_up: `onse` is not one of \"once\", \"skip\"; did you mean \"once\"?");
    has("encryption.recipients: expected a list of texts in quotes, found the text \"age1x\"; write recipients = [\"age1x\"]");
    has("extract.report: expected text in quotes, found the whole number 7; write report = \"7\" in quotes");
    has("extract.make: unknown key here; `make` belongs in [extract.filter]: move it there");
}

#[test]
fn list_items_and_nested_tables_are_checked_item_by_item() {
    let text = GOOD.replace(
        "report = \"technical\"",
        "report = \"technical\"\nfilter = { make = [\"VOLVO\", 5750], seats = { min = \"2\" } }\nperiod = { from = \"2026-01-01\", to = 2026-01-31 }",
    );
    let (p, ok) = run(&text);
    assert!(ok);
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "extract.filter.make[1]",
            "extract.filter.seats.min",
            "extract.period.from"
        ],
        "{p:?}"
    );
    assert!(
        p[2].1.ends_with("write from = 2026-01-01 without quotes"),
        "{p:?}"
    );
}

#[test]
fn a_missing_key_is_reported_at_its_table() {
    let (p, ok) = run(&GOOD.replace("host = \"sftp.example.no\"\n", ""));
    assert!(ok);
    assert_eq!(
        p,
        [(
            "target.host".to_string(),
            "missing from [target]; add host = \"...\"".to_string()
        )]
    );
}

#[test]
fn a_missing_table_is_one_problem() {
    let text = GOOD.replace("[encryption]\nrecipients = [\"age1x\"]\n", "");
    let (p, ok) = run(&text);
    assert!(ok);
    assert_eq!(
        p,
        [(
            "encryption".to_string(),
            "missing from a subscription file (top level); add a [encryption] table".to_string()
        )]
    );
}

#[test]
fn covered_keys_are_the_reported_key_and_those_below_it() {
    let r = ["target.auth".to_string()];
    assert!(covered_by("target.auth", &r));
    assert!(covered_by("target.auth.key_file", &r));
    assert!(!covered_by("target.authx", &r));
    assert!(!covered_by("target", &r));
}

#[test]
fn the_daemon_file_is_checked_too() {
    let text = "spool = \"x\"\n[daemon]\nmax_concurrent = \"4\"\nuser = \"regdrop\"\n";
    let mut doc = DeTable::parse(text).unwrap().into_inner();
    let p = check(&mut doc, &DAEMON).problems;
    let keys: Vec<&str> = p.iter().map(|p| p.problem.key.as_str()).collect();
    assert_eq!(keys, ["spool", "daemon.max_concurrent"]);
    assert_eq!(
        p[0].problem.message,
        "unknown key; did you mean `spool_dir`?"
    );
    let raw = RawDaemon::deserialize(Spanned::new(0..1, doc).into_deserializer()).unwrap();
    assert_eq!(raw.daemon.user.as_deref(), Some("regdrop"));
}

#[test]
fn an_email_subscription_needs_no_target_and_its_table_is_checked() {
    let text = GOOD.replace(
        "[target]\nhost = \"sftp.example.no\"\nusername = \"acme\"\nremote_dir = \"/in\"\n\
[target.auth]\nkey_file = \"acme.key\"\n",
        "[email]\nto = \"ops@acme.example\"\nmax_byte = 5\n",
    );
    let (p, ok) = run(&text);
    assert!(ok, "the repaired table deserializes: {p:?}");
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["email.to", "email.max_byte"], "{p:?}");
    assert!(p[0].1.starts_with("expected a list of texts"), "{p:?}");
    assert_eq!(p[1].1, "unknown key; did you mean `max_bytes`?");
}

#[test]
fn webhooks_each_and_the_sms_fields_are_checked_in_the_daemon_file() {
    let text = "[smtp]\nhost = \"127.0.0.1\"\nfrom = \"a@b.example\"\nport = \"25\"\n\
[sms]\nurl = \"http://127.0.0.1:1/\"\nfields = { to = \"{number}\", n = 3 }\n\
[notify]\nemail = [\"ops@x.example\"]\n\
[[notify.webhook]]\nurl = \"http://127.0.0.1:2/\"\n\
[[notify.webhook]]\nulr = \"http://127.0.0.1:3/\"\ntimeout_secs = \"5\"\n";
    let mut doc = DeTable::parse(text).unwrap().into_inner();
    let p = check(&mut doc, &DAEMON).problems;
    let keys: Vec<&str> = p.iter().map(|p| p.problem.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "smtp.port",
            "sms.fields.n",
            "notify.webhook[1].ulr",
            "notify.webhook[1].timeout_secs"
        ],
        "{p:?}"
    );
    assert_eq!(p[2].problem.message, "unknown key; did you mean `url`?");
    RawDaemon::deserialize(Spanned::new(0..1, doc).into_deserializer())
        .expect("the repaired table deserializes");
}
