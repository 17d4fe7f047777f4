//! Property tests (proptest) through the public API, each against a small model:
//!
//! - a generated valid subscription, written by the renderer of `regdrop new-subscription`,
//!   parses and validates back to the same values;
//! - a schedule's fire times only move forward, and nothing fires between `t` and
//!   `next_after(t)`;
//! - backoff delays stay within their ceiling, the cap and the deadline, and the attempt
//!   limit and permanent errors end the retries;
//! - the receipt hash chain: after random appends and one random tampering of the SQLite
//!   file (a field edited, edited and re-hashed, a receipt deleted, two swapped) `verify`
//!   accepts exactly the chains the model says are intact and names the first broken link.
//!
//! Case counts are moderate so the suite stays fast; `PROPTEST_CASES` raises them.

use chrono::{DateTime, Duration as Days, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;
use regdrop::cmd::new_subscription::{render, Args};
use regdrop::core::codes::CodeTable;
use regdrop::core::config::validate::Inherited;
use regdrop::core::config::{AuthSpec, Filter, Format, PeriodSpec};
use regdrop::core::retry::{ErrorClass, GiveUp, Next, RetryPolicy};
use regdrop::core::schedule::{CatchUp, Schedule};
use regdrop::store::{
    chain, AttemptOutcome, BreakKind, NewReceipt, NewRun, Receipt, Store, GENESIS,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn cases(n: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n),
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------
// Config round trip.

/// Real public keys (any valid line will do: only the form is checked).
const HOST_KEYS: [&str; 3] = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKDYlSd4ADJFmX4UF80bP23PezMwnS0nt5XgSkiX1kSA",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEHAjPQxqTHZ9sHt8/BYaFMilwWahabj86zwO9pDIrOY",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBH6GbTXBVb4uQYmfsILRxjDKcGSwSLuYQ4u4QWY5NBPePNTq7/TLldtKe2gTzm2IqGG0ri964GrsFWvBU6Zg1tQ=",
];
const RECIPIENTS: [&str; 3] = [
    "age1pznx0uwx4cdjrzf6r2zyc849nhqyz0wmzefd2wyfpaysljzw4g6s8gv5c4",
    "age1h47aejyraw43kyt9el87wyk2pw4huenugl4zrej54mxgzqg72dvsux827q",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOkttc5Fi+InjVhC2pnL3a/VfgmzRKAeDBET252vsuJO",
];
const CRONS: [&str; 7] = [
    "0 6 * * MON",
    "30 5 1 * *",
    "*/15 * * * *",
    "@daily",
    "0 0 * * 0",
    "15 4 * * 1-5",
    "30 2 * * *",
];

/// A valid organisation number: 8 digits and their mod-11 check digit (remainder 1, for
/// which there is no check digit, is skipped).
fn org_number() -> impl Strategy<Value = String> {
    proptest::collection::vec(0u32..10, 8).prop_filter_map("no check digit", |d| {
        let w = [3, 2, 7, 6, 5, 4, 3, 2];
        let sum: u32 = d.iter().zip(w).map(|(a, b)| a * b).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return None,
            c => c,
        };
        Some(d.iter().chain([&check]).map(|x| x.to_string()).collect())
    })
}

/// A name with TOML's awkward characters inside (quotes, backslash, non-ASCII), no
/// surrounding blanks.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[A-Za-z0-9ÆØÅæøå]([A-Za-z0-9ÆØÅæøå .,&'\"\\\\/#-]{{0,{max}}}[A-Za-z0-9])?"
    ))
    .unwrap()
}

/// A make filter entry: a code or the (unique) name of one; and the code it means.
fn make_entries() -> Vec<(String, String)> {
    let rows = CodeTable::Make.rows();
    let mut out = Vec::new();
    for (code, name) in &rows {
        out.push((code.clone(), code.clone()));
        let unique = rows
            .iter()
            .filter(|(c, n)| n.eq_ignore_ascii_case(name) || c.eq_ignore_ascii_case(name))
            .count()
            == 1;
        if unique && name.trim() == name && !name.is_empty() {
            out.push((name.clone(), code.clone()));
        }
    }
    out
}

/// Reports without personal fields (no legal basis needed); the others get one.
const OPEN_REPORTS: [&str; 2] = ["technical", "technical_open"];
const REPORTS: [&str; 5] = [
    "technical",
    "technical_open",
    "technical_owners",
    "owners",
    "first_registrations",
];

#[derive(Debug, Clone)]
struct Generated {
    args: Args,
    host: String,
    port: u16,
    keys: Vec<(String, String)>,
    /// The make codes the make filter resolves to.
    make_codes: Vec<String>,
}

fn range_of(lo: i64, hi: i64) -> impl Strategy<Value = Option<(Option<i64>, Option<i64>)>> {
    prop_oneof![
        Just(None),
        (lo..hi, 0i64..30).prop_map(|(a, w)| Some((Some(a), Some(a + w)))),
        (lo..hi).prop_map(|a| Some((Some(a), None))),
        (lo..hi).prop_map(|b| Some((None, Some(b)))),
    ]
}

fn range_flag(r: Option<(Option<i64>, Option<i64>)>) -> Option<String> {
    r.map(|(a, b)| {
        format!(
            "{}..{}",
            a.map(|v| v.to_string()).unwrap_or_default(),
            b.map(|v| v.to_string()).unwrap_or_default()
        )
    })
}

fn subscription() -> impl Strategy<Value = Generated> {
    let makes = make_entries();
    let identity = (
        "[a-z0-9][a-z0-9-]{0,20}",
        text(30),
        proptest::option::of(org_number()),
        proptest::option::of("[0-9]{4}/[0-9]{4,6}"),
        proptest::option::of(text(20)),
        "[a-z]{1,10}(\\.[a-z]{1,8})?@[a-z]{1,10}\\.(no|com|org)",
        "(\\+47)?[49][0-9]{7}",
    );
    let target = (
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,6}){0,2}|[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        1u16..=u16::MAX,
        "[a-z_][a-z0-9_.-]{0,15}",
        proptest::sample::subsequence(HOST_KEYS.to_vec(), 1..=3),
        proptest::option::of("[a-z]{1,8}\\.key"),
        "\\.|/?[a-z0-9_]{1,8}(/[a-z0-9_]{1,8}){0,2}",
    );
    let extract = (
        proptest::sample::select(REPORTS.to_vec()),
        proptest::sample::select(vec!["dsv", "csv", "xlsx"]),
        proptest::sample::select(CRONS.to_vec()),
        proptest::option::of(prop_oneof![
            Just("previous_day".to_string()),
            Just("previous_week".to_string()),
            Just("previous_month".to_string()),
            Just("since_last_delivery".to_string()),
            (0i64..3000, 0i64..400).prop_map(|(from, len)| {
                let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
                let (a, b) = (d + Days::days(from), d + Days::days(from + len));
                format!("{a}..{b}")
            }),
        ]),
        proptest::sample::subsequence(
            CodeTable::ALL
                .iter()
                .map(|t| t.as_str().to_string())
                .collect::<Vec<_>>(),
            0..=3,
        ),
        proptest::collection::vec(proptest::sample::select(makes), 0..3),
        proptest::collection::vec("[0-9]{1,2}", 0..3),
        proptest::collection::vec("[0-9]{3}", 0..3),
        range_of(1950, 2030),
        range_of(1, 60),
    );
    let owners = (
        proptest::collection::vec("[0-9]{4}", 0..3),
        proptest::collection::vec("[0-9]{2}", 0..3),
        proptest::option::of(text(40)),
        any::<bool>(),
        proptest::sample::subsequence(RECIPIENTS.to_vec(), 1..=3),
    );
    (identity, target, extract, owners).prop_map(
        |(
            (id, customer, org, case, invoice, email, mobile),
            (host, port, username, keys, key_file, remote_dir),
            (report, format, cron, period, code_tables, makes, fuel, group, year, seats),
            (municipality, county, legal_basis, open, recipients),
        )| {
            let owner_report = matches!(report, "technical_owners" | "owners");
            let personal = !OPEN_REPORTS.contains(&report);
            let no_encryption = report == "technical_open" && open;
            let args = Args {
                id: Some(id),
                customer: Some(customer),
                org_number: org,
                case_number: case,
                invoice_reference: invoice,
                email: Some(email),
                mobile: Some(mobile),
                report: Some(report.to_string()),
                code_tables,
                make: makes.iter().map(|m| m.0.clone()).collect(),
                fuel,
                vehicle_group: group,
                first_registration_year: range_flag(year),
                seats: range_flag(seats),
                municipality: if owner_report { municipality } else { vec![] },
                county: if owner_report { county } else { vec![] },
                period,
                format: format.to_string(),
                legal_basis: if personal {
                    Some(legal_basis.unwrap_or_else(|| "Lov om X § 1".into()))
                } else {
                    legal_basis
                },
                cron: cron.to_string(),
                username: Some(username),
                remote_dir,
                recipient: if no_encryption {
                    vec![]
                } else {
                    recipients.into_iter().map(String::from).collect()
                },
                no_encryption,
                key_file,
                ..Args::default()
            };
            Generated {
                args,
                host,
                port,
                keys: keys
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| (k.to_string(), format!("SHA256:key{i}")))
                    .collect(),
                make_codes: makes.into_iter().map(|m| m.1).collect(),
            }
        },
    )
}

fn inherited() -> Inherited {
    Inherited {
        timezone: "Europe/Oslo".into(),
        retry: RetryPolicy::default(),
        secrets_dir: PathBuf::from("/etc/regdrop/secrets"),
    }
}

fn parse_range(s: &Option<String>) -> Option<(Option<i64>, Option<i64>)> {
    s.as_ref().map(|s| {
        let (a, b) = s.split_once("..").unwrap();
        (a.parse().ok(), b.parse().ok())
    })
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn a_rendered_subscription_parses_back_to_the_same_values(g in subscription()) {
        let a = &g.args;
        let text = render(a, &g.host, g.port, &g.keys).expect("render");
        let file = Path::new("generated.toml");
        let sub = regdrop::loader::subscription_from_str(file, &text, &inherited())
            .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"));
        prop_assert_eq!(Some(&sub.id), a.id.as_ref());
        prop_assert_eq!(Some(&sub.customer), a.customer.as_ref());
        prop_assert_eq!(&sub.customer_org_number, &a.org_number);
        prop_assert_eq!(&sub.case_number, &a.case_number);
        prop_assert_eq!(&sub.invoice_reference, &a.invoice_reference);
        prop_assert_eq!(&sub.legal_basis, &a.legal_basis);
        prop_assert_eq!(&sub.contact_email, &a.email);
        prop_assert_eq!(&sub.contact_mobile, &a.mobile);
        prop_assert_eq!(&sub.schedule.line, &a.cron);
        prop_assert_eq!(sub.schedule.tz.name(), "Europe/Oslo");
        let t = &sub.target;
        prop_assert_eq!((t.host.as_str(), t.port), (g.host.as_str(), g.port));
        prop_assert_eq!(Some(&t.username), a.username.as_ref());
        prop_assert_eq!(
            &t.host_keys,
            &g.keys.iter().map(|k| k.0.clone()).collect::<Vec<_>>()
        );
        prop_assert_eq!(&t.remote_dir, &a.remote_dir);
        let secrets = Path::new("/etc/regdrop/secrets");
        let auth = match &a.key_file {
            Some(k) => AuthSpec::KeyFile { path: secrets.join(k), passphrase_file: None },
            None => AuthSpec::PasswordFile(secrets.join(format!("{}.password", sub.id))),
        };
        prop_assert_eq!(&t.auth, &auth);
        let x = &sub.extract;
        prop_assert_eq!(Some(x.report.as_str()), a.report.as_deref());
        let format = match a.format.as_str() {
            "dsv" => Format::Dsv,
            "csv" => Format::Csv,
            _ => Format::Xlsx,
        };
        prop_assert_eq!(x.format, format);
        prop_assert_eq!(
            x.code_tables.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            a.code_tables.iter().map(String::as_str).collect::<Vec<_>>()
        );
        prop_assert_eq!(x.period.map(|p| p.describe()), a.period.clone());
        if let Some(PeriodSpec::Fixed { from, to }) = x.period {
            prop_assert!(from <= to);
        }
        let filter = Filter {
            first_registration_year: parse_range(&a.first_registration_year),
            make_codes: g.make_codes.clone(),
            model: vec![],
            vehicle_group: a.vehicle_group.clone(),
            fuel: a.fuel.clone(),
            hybrid_category: vec![],
            seats: parse_range(&a.seats),
            status: vec![],
            org_number: vec![],
            municipality: a.municipality.clone(),
            county: a.county.clone(),
        };
        prop_assert_eq!(&x.filter, &filter);
        prop_assert_eq!(sub.encryption.encrypt, !a.no_encryption);
        prop_assert_eq!(&sub.encryption.recipients, &a.recipient);
    }
}

// ---------------------------------------------------------------------------------------
// Schedules.

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2024-01-01 .. 2031-01-01, to the second.
    (1_704_067_200i64..1_925_078_400).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
}

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn fire_times_move_forward_and_nothing_fires_in_between(
        line in proptest::sample::select(CRONS.to_vec()),
        zone in proptest::sample::select(vec!["Europe/Oslo", "UTC", "America/New_York", "Australia/Lord_Howe"]),
        t in instant(),
        u in 0.0f64..1.0,
    ) {
        let s = Schedule::new(line, zone.parse().unwrap(), CatchUp::Once, 0).unwrap();
        let next = s.next_after(t).expect("a line that fires");
        prop_assert!(next > t, "{line} in {zone}: next_after({t}) = {next}");
        // Nothing fires in (t, next): from any point before `next` the next fire is `next`.
        let between = t + chrono::Duration::milliseconds(((next - t).num_milliseconds() as f64 * u) as i64);
        if between < next {
            prop_assert_eq!(s.next_after(between), Some(next), "from {}", between);
        }
        let times = s.upcoming(t, 6);
        prop_assert_eq!(times.len(), 6);
        prop_assert_eq!(times[0], next);
        for w in times.windows(2) {
            prop_assert!(w[0] < w[1], "{line} in {zone}: {times:?}");
        }
        // Catch-up looks back: the latest fire in (since, now] is at most now.
        if let Some(m) = s.last_missed(t - chrono::Duration::days(40), t) {
            prop_assert!(m <= t && m > t - chrono::Duration::days(40));
            prop_assert!(s.next_after(m).is_some_and(|n| n > m));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Backoff.

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (1u64..3600, 1.0f64..4.0, 0u64..7200, 1u32..20, 60u64..86_400).prop_map(
        |(base, factor, extra, max_attempts, deadline)| RetryPolicy {
            base: Duration::from_secs(base),
            factor,
            cap: Duration::from_secs(base + extra),
            max_attempts,
            deadline: Duration::from_secs(deadline),
        },
    )
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn backoff_stays_within_ceiling_cap_deadline_and_attempt_limit(
        p in policy(),
        attempt in 1u32..60,
        elapsed in 0u64..100_000,
        unit in 0.0f64..1.0,
    ) {
        prop_assert!(p.problem().is_none());
        let ceiling = p.ceiling(attempt);
        prop_assert!(ceiling <= p.cap);
        prop_assert!(p.ceiling(attempt + 1) >= ceiling, "the ceiling never shrinks");
        prop_assert!(p.ceiling(1) == p.base.min(p.cap));
        prop_assert!(p.delay(attempt, unit) <= ceiling);
        let elapsed = Duration::from_secs(elapsed);
        prop_assert_eq!(
            p.next(ErrorClass::Permanent, attempt, elapsed, unit),
            Next::GiveUp(GiveUp::Permanent)
        );
        match p.next(ErrorClass::Retryable, attempt, elapsed, unit) {
            Next::RetryAfter(wait) => {
                prop_assert!(attempt < p.max_attempts);
                prop_assert!(wait <= ceiling);
                prop_assert!(elapsed + wait <= p.deadline);
            }
            Next::GiveUp(GiveUp::Attempts) => prop_assert!(attempt >= p.max_attempts),
            Next::GiveUp(GiveUp::Deadline) => {
                prop_assert!(attempt < p.max_attempts);
                prop_assert!(elapsed + p.delay(attempt, unit) > p.deadline);
            }
            Next::GiveUp(GiveUp::Permanent) => prop_assert!(false, "retryable gave up as permanent"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The receipt chain against a model.

/// One column edit in SQL (always a different, still readable value) and whether a
/// forger could re-hash the row afterwards (not for the hash columns themselves).
const EDITS: [(&str, &str); 20] = [
    ("customer", "customer = customer || 'x'"),
    ("subscription", "subscription = subscription || 'x'"),
    ("report", "report = report || 'x'"),
    ("remote_host", "remote_host = remote_host || '.evil'"),
    (
        "host_key_fingerprint",
        "host_key_fingerprint = host_key_fingerprint || 'x'",
    ),
    ("remote_path", "remote_path = remote_path || '.old'"),
    (
        "plaintext_sha256",
        "plaintext_sha256 = plaintext_sha256 || '0'",
    ),
    (
        "ciphertext_sha256",
        "ciphertext_sha256 = ciphertext_sha256 || '0'",
    ),
    (
        "customer_org_number",
        "customer_org_number = coalesce(customer_org_number, '') || '1'",
    ),
    (
        "case_number",
        "case_number = coalesce(case_number, '') || '1'",
    ),
    (
        "invoice_reference",
        "invoice_reference = coalesce(invoice_reference, '') || '1'",
    ),
    (
        "legal_basis",
        "legal_basis = coalesce(legal_basis, '') || '1'",
    ),
    ("bytes", "bytes = bytes + 1"),
    ("rows", "rows = rows + 1"),
    ("remote_port", "remote_port = remote_port + 1"),
    ("attempts", "attempts = attempts + 1"),
    (
        "personal_fields",
        "personal_fields = json_insert(personal_fields, '$[#]', 'x')",
    ),
    (
        "recipients",
        "recipients = json_insert(recipients, '$[#]', 'x')",
    ),
    (
        "started_at",
        "started_at = strftime('%Y-%m-%dT%H:%M:%SZ', started_at, '+1 second')",
    ),
    (
        "delivered_at",
        "delivered_at = strftime('%Y-%m-%dT%H:%M:%SZ', delivered_at, '-1 second')",
    ),
];
/// Edits of the chain columns: the row no longer matches its stored hash.
const HASH_EDITS: [(&str, &str); 2] = [
    ("prev_hash", "prev_hash = (CASE substr(prev_hash, 1, 1) WHEN '0' THEN '1' ELSE '0' END) || substr(prev_hash, 2)"),
    ("hash", "hash = (CASE substr(hash, 1, 1) WHEN '0' THEN '1' ELSE '0' END) || substr(hash, 2)"),
];

#[derive(Debug, Clone)]
enum Tamper {
    Nothing,
    /// `EDITS[edit]` (or `HASH_EDITS[edit - EDITS.len()]`) on the `at`-th receipt.
    Edit {
        at: usize,
        edit: usize,
    },
    /// `EDITS[edit]` on the `at`-th receipt, then its hash recomputed.
    EditAndRehash {
        at: usize,
        edit: usize,
    },
    Delete {
        at: usize,
    },
    /// The ids of the `a`-th and `b`-th receipts exchanged (a < b).
    Swap {
        a: usize,
        b: usize,
    },
}

/// What verification must say: intact (with how many receipts), or broken at a receipt.
#[derive(Debug, PartialEq)]
enum Expect {
    Intact {
        verified: u64,
    },
    ContentChanged {
        at: usize,
        verified: u64,
    },
    LinkBroken {
        at: usize,
        previous: Option<usize>,
        verified: u64,
    },
}

/// The model: receipts `0..n` chained in order; which break `tamper` makes visible.
fn model(n: usize, tamper: &Tamper) -> Expect {
    let k = |i: usize| i as u64;
    match *tamper {
        Tamper::Nothing => Expect::Intact { verified: k(n) },
        Tamper::Edit { at, .. } => Expect::ContentChanged {
            at,
            verified: k(at),
        },
        // The newest receipt re-hashed: nothing comes after it to notice (a known limit;
        // compare the head with a copy kept elsewhere).
        Tamper::EditAndRehash { at, .. } if at + 1 == n => Expect::Intact { verified: k(n) },
        Tamper::EditAndRehash { at, .. } => Expect::LinkBroken {
            at: at + 1,
            previous: Some(at),
            verified: k(at + 1),
        },
        // The newest receipt deleted: the same known limit.
        Tamper::Delete { at } if at + 1 == n => Expect::Intact { verified: k(n - 1) },
        Tamper::Delete { at } => Expect::LinkBroken {
            at: at + 1,
            previous: at.checked_sub(1),
            verified: k(at),
        },
        // The first of the two places now holds a row whose content names another id.
        Tamper::Swap { a, .. } => Expect::ContentChanged {
            at: a,
            verified: k(a),
        },
    }
}

fn tamper(n: usize) -> BoxedStrategy<Tamper> {
    let edits = EDITS.len();
    let all = EDITS.len() + HASH_EDITS.len();
    let one = prop_oneof![
        1 => Just(Tamper::Nothing),
        3 => (0..n, 0..all).prop_map(|(at, edit)| Tamper::Edit { at, edit }),
        2 => (0..n, 0..edits).prop_map(|(at, edit)| Tamper::EditAndRehash { at, edit }),
        2 => (0..n).prop_map(|at| Tamper::Delete { at }),
    ];
    if n < 2 {
        return one.boxed();
    }
    let swap = (0..n - 1)
        .prop_flat_map(move |a| (Just(a), a + 1..n))
        .prop_map(|(a, b)| Tamper::Swap { a, b });
    prop_oneof![4 => one, 1 => swap].boxed()
}

#[derive(Debug, Clone)]
struct Delivery {
    subscription: &'static str,
    customer: String,
    org: Option<String>,
    bytes: u64,
    rows: u64,
    port: u16,
    personal: Vec<String>,
    recipients: Vec<String>,
}

fn delivery() -> impl Strategy<Value = Delivery> {
    (
        proptest::sample::select(vec!["acme", "bilco", "kommune-3"]),
        text(20),
        proptest::option::of("[0-9]{9}"),
        0u64..(1 << 40),
        0u64..5_000_000,
        1u16..65_000,
        proptest::collection::vec("[a-z_]{1,12}", 0..3),
        proptest::collection::vec("age1[a-z0-9]{10}", 1..3),
    )
        .prop_map(
            |(subscription, customer, org, bytes, rows, port, personal, recipients)| Delivery {
                subscription,
                customer,
                org,
                bytes,
                rows,
                port,
                personal,
                recipients,
            },
        )
}

/// Appends one receipt per delivery (each its own run, a day apart) through the store.
fn append(s: &Store, deliveries: &[Delivery]) -> Vec<Receipt> {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 6, 0, 0).unwrap();
    deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let at = t0 + Days::days(i as i64);
            let run = s
                .create_run(&NewRun {
                    subscription: d.subscription.into(),
                    scheduled_at: at,
                })
                .unwrap()
                .into_run();
            let n = s.begin_attempt(&run.id).unwrap();
            let r = s
                .commit_receipt(&NewReceipt {
                    run_id: run.id.clone(),
                    subscription: d.subscription.into(),
                    customer: d.customer.clone(),
                    customer_org_number: d.org.clone(),
                    case_number: None,
                    invoice_reference: None,
                    report: "technical".into(),
                    remote_host: "sftp.example.no".into(),
                    remote_port: d.port,
                    host_key_fingerprint: "SHA256:Zm9vYmFy".into(),
                    remote_path: format!("/in/{}.dsv.age", run.id),
                    bytes: d.bytes,
                    rows: d.rows,
                    plaintext_sha256: "a".repeat(64),
                    ciphertext_sha256: "b".repeat(64),
                    personal_fields: d.personal.clone(),
                    legal_basis: None,
                    recipients: d.recipients.clone(),
                    started_at: at + Days::minutes(1),
                    delivered_at: at + Days::minutes(2),
                })
                .unwrap();
            s.finish_attempt(&run.id, n, AttemptOutcome::Ok, None, None)
                .unwrap();
            r
        })
        .collect()
}

/// Tampers with the file as someone with the `sqlite3` shell could.
fn apply(path: &Path, s: &Store, receipts: &[Receipt], t: &Tamper) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("DROP TRIGGER IF EXISTS receipts_append_only")
        .unwrap();
    let id = |i: usize| receipts[i].id;
    let edit = |e: usize| {
        if e < EDITS.len() {
            EDITS[e].1
        } else {
            HASH_EDITS[e - EDITS.len()].1
        }
    };
    match *t {
        Tamper::Nothing => {}
        Tamper::Edit { at, edit: e } => {
            c.execute(
                &format!("UPDATE receipts SET {} WHERE id = ?1", edit(e)),
                [id(at)],
            )
            .unwrap();
        }
        Tamper::EditAndRehash { at, edit: e } => {
            c.execute(
                &format!("UPDATE receipts SET {} WHERE id = ?1", edit(e)),
                [id(at)],
            )
            .unwrap();
            let forged = chain::receipt_hash(&s.receipt(id(at)).unwrap().unwrap());
            c.execute(
                "UPDATE receipts SET hash = ?1 WHERE id = ?2",
                rusqlite::params![forged, id(at)],
            )
            .unwrap();
        }
        Tamper::Delete { at } => {
            c.execute("DELETE FROM receipts WHERE id = ?1", [id(at)])
                .unwrap();
        }
        Tamper::Swap { a, b } => {
            c.execute_batch(&format!(
                "BEGIN; UPDATE receipts SET id = -1 WHERE id = {a}; \
                 UPDATE receipts SET id = {a} WHERE id = {b}; \
                 UPDATE receipts SET id = {b} WHERE id = -1; COMMIT;",
                a = id(a),
                b = id(b)
            ))
            .unwrap();
        }
    }
}

fn chain_case() -> impl Strategy<Value = (Vec<Delivery>, Tamper)> {
    proptest::collection::vec(delivery(), 1..7).prop_flat_map(|d| {
        let n = d.len();
        (Just(d), tamper(n))
    })
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn verify_accepts_exactly_the_untampered_chain_and_names_the_first_broken_link(
        (deliveries, t) in chain_case()
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let s = Store::open(&path).unwrap();
        let receipts = append(&s, &deliveries);
        prop_assert_eq!(&receipts[0].prev_hash, GENESIS);
        for w in receipts.windows(2) {
            prop_assert_eq!(&w[1].prev_hash, &w[0].hash);
        }
        apply(&path, &s, &receipts, &t);
        let report = s.verify_chain().unwrap();
        let id = |i: usize| receipts[i].id;
        match model(receipts.len(), &t) {
            Expect::Intact { verified } => {
                prop_assert!(report.is_intact(), "{t:?}: {report}");
                prop_assert_eq!(report.verified, verified);
                let untouched = matches!(t, Tamper::Nothing)
                    || matches!(t, Tamper::Delete { .. });
                if untouched {
                    let head = match verified {
                        0 => GENESIS.to_string(),
                        v => receipts[v as usize - 1].hash.clone(),
                    };
                    prop_assert_eq!(&report.head, &head);
                } else {
                    prop_assert_ne!(&report.head, &receipts.last().unwrap().hash);
                }
            }
            Expect::ContentChanged { at, verified } => {
                let b = report.broken.clone().unwrap_or_else(|| panic!("{t:?} not detected: {report}"));
                prop_assert_eq!(b.receipt_id, id(at), "{:?}: {}", t, report);
                prop_assert!(matches!(b.kind, BreakKind::ContentChanged { .. }), "{t:?}: {b}");
                prop_assert_eq!(b.previous_id, at.checked_sub(1).map(id));
                prop_assert_eq!(report.verified, verified);
                let receipt_prefix = format!("receipt {}: content changed", id(at));
                prop_assert!(b.to_string().starts_with(&receipt_prefix), "{b}");
            }
            Expect::LinkBroken { at, previous, verified } => {
                let b = report.broken.clone().unwrap_or_else(|| panic!("{t:?} not detected: {report}"));
                prop_assert_eq!(b.receipt_id, id(at), "{:?}: {}", t, report);
                prop_assert!(matches!(b.kind, BreakKind::LinkBroken { .. }), "{t:?}: {b}");
                prop_assert_eq!(b.previous_id, previous.map(id));
                prop_assert_eq!(report.verified, verified);
                let receipt_prefix = format!("receipt {}: link to previous broken", id(at));
                prop_assert!(b.to_string().starts_with(&receipt_prefix), "{b}");
            }
        }
    }
}
