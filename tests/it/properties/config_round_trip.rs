//! A generated valid subscription, written by the renderer of `regdrop new-subscription`
//! (`regdrop::cmd::new_subscription::render`), parses and validates back to the same values.

use super::{cases, text, CRONS};
use chrono::Duration as Days;
use proptest::prelude::*;
use regdrop::cmd::new_subscription::{render, Args};
use regdrop::core::codes::CodeTable;
use regdrop::core::config::validate::Inherited;
use regdrop::core::config::{AuthSpec, Filter, Format, PeriodSpec};
use regdrop::core::retry::RetryPolicy;
use std::path::{Path, PathBuf};

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
                cron: Some(cron.to_string()),
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
        offers: regdrop::core::config::validate::Offers::ASSUMED,
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
        prop_assert_eq!(Some(sub.id.as_str()), a.id.as_deref());
        prop_assert_eq!(Some(&sub.customer), a.customer.as_ref());
        prop_assert_eq!(&sub.customer_org_number, &a.org_number);
        prop_assert_eq!(&sub.case_number, &a.case_number);
        prop_assert_eq!(&sub.invoice_reference, &a.invoice_reference);
        prop_assert_eq!(&sub.legal_basis, &a.legal_basis);
        prop_assert_eq!(&sub.contact_email, &a.email);
        prop_assert_eq!(&sub.contact_mobile, &a.mobile);
        prop_assert_eq!(Some(&sub.schedule.line), a.cron.as_ref());
        prop_assert_eq!(sub.schedule.tz.name(), "Europe/Oslo");
        let t = sub.target().unwrap();
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
