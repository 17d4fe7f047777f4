//! Extracts against real registers: the authority's format round trip on the real sample,
//! every filter and period kind on a generated register (checked against an oracle computed
//! from the unfiltered extract), xlsx read back with calamine, the xlsx fallback decision.

use regdrop::core::config::location::DbLocation;
use regdrop::core::config::raw::RawSubscription;
use regdrop::core::config::validate::{validate_subscription, Inherited};
use regdrop::core::config::Subscription;
use regdrop::core::period::Period;
use regdrop::core::text::{decode_latin1, encode_latin1};
use regdrop::extract::{self, Options};
use regdrop::register::{self, schema};
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

const AGE: &str = "age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r";
const HOSTKEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj";

/// A validated subscription around an `[extract]` body.
pub(super) fn sub(extract: &str) -> Subscription {
    let text = format!(
        r#"id = "t"
customer = "Test"
legal_basis = "test"
[schedule]
cron = "0 6 * * *"
[target]
host = "127.0.0.1"
username = "u"
host_keys = ["{HOSTKEY}"]
auth = {{ key_file = "k" }}
remote_dir = "/in"
[extract]
{extract}
[encryption]
recipients = ["{AGE}"]
"#
    );
    let raw: RawSubscription = toml::from_str(&text).unwrap();
    let inh = Inherited {
        timezone: "Europe/Oslo".into(),
        retry: Default::default(),
        secrets_dir: ".".into(),
        offers: regdrop::core::config::validate::Offers::ASSUMED,
    };
    validate_subscription(&raw, &inh, Path::new("t.toml")).unwrap_or_else(|p| panic!("{p:?}"))
}

/// Runs an extract into memory; returns the output bytes and the row count.
fn run(db: &Path, s: &Subscription, period: Option<&Period>) -> (Vec<u8>, u64) {
    let register = open(db);
    let snap = register.snapshot().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path());
    let planned = extract::plan(&snap, &s.extract, period, opts.xlsx_row_limit).unwrap();
    let mut out = Vec::new();
    let o = extract::run(
        &snap,
        &s.extract,
        period,
        planned,
        &mut out,
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    (out, o.rows)
}

/// The register file at `db`, opened as extracts open it.
pub(super) fn open(db: &Path) -> extract::Register {
    extract::Register::open(&DbLocation::Sqlite(db.to_path_buf())).unwrap()
}

/// Parses a UTF-8 LF DSV into header + rows of name -> value.
fn parse_dsv(bytes: &[u8]) -> Vec<HashMap<String, String>> {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('¤').collect();
    lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split('¤').map(String::from))
                .collect()
        })
        .collect()
}

fn sample() -> &'static str {
    include_str!("../../data/MVR_TECH_DATA.sample.txt")
}

#[test]
fn technical_report_round_trips_the_authority_sample_utf8_lf() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("MVR_TECH_DATA.txt");
    std::fs::write(&file, sample()).unwrap();
    let db = dir.path().join("r.sqlite");
    let s = register::import(&db, &file, &Default::default(), &mut |_| {}).unwrap();
    // The sample holds 19 vehicles; its last line has no line break.
    assert_eq!(s.rows, 19);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    let (out, rows) = run(&db, &sub("report = \"technical\"\nformat = \"dsv\""), None);
    assert_eq!(rows, 19);
    // Byte for byte: same header, same values, same order (every line terminated).
    assert_eq!(String::from_utf8(out).unwrap(), format!("{}\n", sample()));
}

#[test]
fn technical_report_round_trips_the_authority_sample_latin1_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let mut latin = Vec::new();
    encode_latin1(&format!("{}\n", sample()).replace('\n', "\r\n"), &mut latin).unwrap();
    assert!(latin.contains(&0xa4) && !latin.windows(2).any(|w| w == [0xc2, 0xa4]));
    let file = dir.path().join("MVR_TECH_DATA.txt");
    std::fs::write(&file, &latin).unwrap();
    let db = dir.path().join("r.sqlite");
    let s = register::import(&db, &file, &Default::default(), &mut |_| {}).unwrap();
    assert_eq!(
        (s.rows, s.encoding),
        (19, regdrop::core::text::Encoding::Latin1)
    );
    let spec = sub("report = \"technical\"\nformat = \"dsv\"\nencoding = \"iso-8859-1\"\nline_ending = \"crlf\"");
    let (out, _) = run(&db, &spec, None);
    assert_eq!(decode_latin1(&out), decode_latin1(&latin));
    assert_eq!(out, latin);
}

/// A generated register shared by the filter tests (built once).
fn generated() -> &'static Path {
    static DB: OnceLock<(tempfile::TempDir, std::path::PathBuf)> = OnceLock::new();
    &DB.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gen.sqlite");
        register::generate(
            &db,
            &register::GenerateOptions {
                vehicles: 6000,
                seed: 42,
            },
            &mut |_| {},
        )
        .unwrap();
        (dir, db)
    })
    .1
}

/// Everything (technical_owners, no filter) as the oracle.
fn oracle() -> &'static Vec<HashMap<String, String>> {
    static ALL: OnceLock<Vec<HashMap<String, String>>> = OnceLock::new();
    ALL.get_or_init(|| parse_dsv(&run(generated(), &sub("report = \"technical_owners\""), None).0))
}

/// Checks that `extract` selects exactly the plates `keep` selects from the oracle, and
/// that the filter really narrows (some rows, not all).
fn narrows(extract_body: &str, keep: impl Fn(&HashMap<String, String>) -> bool) {
    let s = sub(&format!("report = \"technical_owners\"\n{extract_body}"));
    let period = regdrop::core::plan::run_period(&s, "2026-11-25T05:00:00Z".parse().unwrap(), None);
    let got: Vec<String> = parse_dsv(&run(generated(), &s, period.as_ref()).0)
        .iter()
        .map(|r| r["TEKN_KJM"].clone())
        .collect();
    let want: Vec<String> = oracle()
        .iter()
        .filter(|r| keep(r))
        .map(|r| r["TEKN_KJM"].clone())
        .collect();
    assert!(
        !want.is_empty(),
        "{extract_body}: the oracle selects nothing; pick another value"
    );
    assert!(
        want.len() < oracle().len(),
        "{extract_body}: the oracle selects everything"
    );
    assert_eq!(got, want, "{extract_body}");
}

fn within(v: &str, from: &str, to: &str) -> bool {
    !v.is_empty() && v >= from && v <= to
}

fn year(d: &str) -> i64 {
    d.get(..4).and_then(|y| y.parse().ok()).unwrap_or(-1)
}

#[test]
fn every_filter_narrows_correctly() {
    narrows(
        "filter = { first_registration_year = { min = 2015, max = 2018 } }",
        |r| (2015..=2018).contains(&year(&r["TEKN_REG_F_G"])),
    );
    narrows(
        "filter = { first_registration_year = { max = 1990 } }",
        |r| !r["TEKN_REG_F_G"].is_empty() && year(&r["TEKN_REG_F_G"]) <= 1990,
    );
    narrows("filter = { make = [\"TESLA\"] }", |r| {
        r["TEKN_MERKE"] == "4360"
    });
    narrows("filter = { make = [\"5750\", \"volvo\"] }", |r| {
        r["TEKN_MERKE"] == "5750" || r["TEKN_MERKE"] == "5800"
    });
    let model = oracle()
        .iter()
        .find(|r| r["TEKN_MERKE"] == "4360" && !r["TEKN_MODELL"].is_empty())
        .unwrap()["TEKN_MODELL"]
        .clone();
    narrows(
        &format!("filter = {{ model = [\"{}\"] }}", model.to_lowercase()),
        |r| r["TEKN_MODELL"].eq_ignore_ascii_case(&model),
    );
    narrows("filter = { vehicle_group = [\"101\"] }", |r| {
        r["TEKN_KJTGRP"] == "101"
    });
    narrows("filter = { fuel = [\"5\"] }", |r| {
        r["TEKN_DRIVST"].split(',').any(|f| f == "5")
    });
    narrows("filter = { fuel = [\"1\", \"2\"] }", |r| {
        r["TEKN_DRIVST"].split(',').any(|f| f == "1" || f == "2")
    });
    let hybrid = oracle()
        .iter()
        .map(|r| r["TEKN_HYBRID_KATEGORI"].clone())
        .find(|h| !h.is_empty())
        .unwrap();
    narrows(
        &format!("filter = {{ hybrid_category = [\"{hybrid}\"] }}"),
        |r| r["TEKN_HYBRID_KATEGORI"] == hybrid,
    );
    let seats = |r: &HashMap<String, String>| r["TEKN_SITTEPLASSER_TOTALT"].parse::<i64>().ok();
    narrows("filter = { seats = { min = 2, max = 5 } }", |r| {
        seats(r).is_some_and(|s| (2..=5).contains(&s))
    });
    narrows("filter = { seats = { min = 7 } }", |r| {
        seats(r).is_some_and(|s| s >= 7)
    });
    narrows("filter = { status = [\"VRAKET\"] }", |r| {
        r["TEKN_REG_STATUS"] == "VRAKET"
    });
    // Owner filters: any current role (owner, co-owner, lessee).
    let roles = ["EIER", "MEDEIER", "LEASINGTAKER"];
    let org = oracle()
        .iter()
        .find_map(|r| Some(r["LEASINGTAKER_ORGNR"].clone()).filter(|o| !o.is_empty()))
        .unwrap();
    narrows(&format!("filter = {{ org_number = [\"{org}\"] }}"), |r| {
        roles.iter().any(|p| r[&format!("{p}_ORGNR")] == org)
    });
    let kommune = oracle()
        .iter()
        .map(|r| r["EIER_KOMMUNENR"].clone())
        .find(|k| !k.is_empty())
        .unwrap();
    narrows(
        &format!("filter = {{ municipality = [\"{kommune}\"] }}"),
        |r| {
            roles
                .iter()
                .any(|p| r[&format!("{p}_KOMMUNENR")] == kommune)
        },
    );
    narrows("filter = { county = [\"03\", \"46\"] }", |r| {
        roles.iter().any(|p| {
            r[&format!("{p}_KOMMUNENR")].starts_with("03")
                || r[&format!("{p}_KOMMUNENR")].starts_with("46")
        })
    });
    // Filters combine with AND.
    narrows(
        "filter = { make = [\"TOYOTA\"], status = [\"REGISTRERT\"] }",
        |r| r["TEKN_MERKE"] == "5480" && r["TEKN_REG_STATUS"] == "REGISTRERT",
    );
}

#[test]
fn every_period_kind_narrows_correctly() {
    // The run is scheduled 2026-11-25 06:00 Oslo (a Wednesday). Periods apply to the date
    // of first registration in Norway unless period_field says otherwise.
    let d = |r: &HashMap<String, String>, f: &str| r[f].clone();
    narrows("period = { from = 2020-01-01, to = 2020-12-31 }", |r| {
        within(&d(r, "TEKN_REG_F_G_N"), "20200101", "20201231")
    });
    narrows(
        "period = { from = 2019-03-01, to = 2019-03-31 }\nperiod_field = \"first_registration\"",
        |r| within(&d(r, "TEKN_REG_F_G"), "20190301", "20190331"),
    );
    narrows(
        "period = \"since_last_delivery\"\nperiod_field = \"scrapped\"",
        |r| {
            let v = d(r, "TEKN_VRAKET_DATO");
            !v.is_empty() && v.as_str() <= "20261124"
        },
    );
    narrows(
        "period = { from = 2024-01-01, to = 2025-06-30 }\nperiod_field = \"deregistered\"",
        |r| within(&d(r, "TEKN_AVREG_DATO"), "20240101", "20250630"),
    );
    narrows(
        "period = { from = 2025-01-01, to = 2025-12-31 }\nperiod_field = \"ownership\"",
        |r| within(&d(r, "TEKN_REG_EIER_DATO"), "20250101", "20251231"),
    );
}

#[test]
fn relative_periods_select_the_right_days() {
    // A synthetic register has few vehicles on one given day; check the relative periods
    // on a tiny hand-made register instead, where each day is known.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("days.sqlite");
    let conn = schema::open_rw(&db).unwrap();
    let days = [
        "20261124", "20261123", "20261122", "20261116", "20261115", "20261031", "20261001",
        "20260930", "20261125",
    ];
    for (i, day) in days.iter().enumerate() {
        conn.execute(
            "INSERT INTO vehicle (tekn_kjm, tekn_reg_f_g_n) VALUES (?1, ?2)",
            [format!("AB1000{i}"), day.to_string()],
        )
        .unwrap();
    }
    drop(conn);
    let plates = |period: &str| -> Vec<String> {
        let s = sub(&format!(
            "report = \"first_registrations\"\nperiod = \"{period}\""
        ));
        let p = regdrop::core::plan::run_period(&s, "2026-11-25T05:00:00Z".parse().unwrap(), None);
        parse_dsv(&run(&db, &s, p.as_ref()).0)
            .iter()
            .map(|r| r["TEKN_REG_F_G_N"].clone())
            .collect()
    };
    assert_eq!(plates("previous_day"), ["20261124"]);
    assert_eq!(plates("previous_week"), ["20261122", "20261116"]);
    assert_eq!(plates("previous_month"), ["20261031", "20261001"]);
    assert_eq!(
        plates("since_last_delivery").len(),
        8,
        "everything before the run day"
    );
}

#[test]
fn xlsx_reads_back_with_a_real_reader() {
    use calamine::{open_workbook, Data, Reader, Xlsx};
    let s = sub(
        "report = \"first_registrations\"\nformat = \"xlsx\"\nfilter = { make = [\"TOYOTA\"] }",
    );
    let (bytes, rows) = run(generated(), &s, None);
    assert!(rows > 10);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.xlsx");
    std::fs::write(&f, bytes).unwrap();
    let mut wb: Xlsx<_> = open_workbook(&f).unwrap();
    let range = wb.worksheet_range("Uttrekk").unwrap();
    assert_eq!(range.height() as u64, rows + 1);
    let header: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        header,
        [
            "TEKN_KJM",
            "TEKN_REG_F_G_N",
            "KJTGRP_NAVN",
            "TEKN_KJTGRP",
            "TEKN_MERKENAVN",
            "TEKN_MERKE",
            "TEKN_MODELL",
            "TEKN_UNR"
        ]
    );
    for r in range.rows().skip(1) {
        assert_eq!(r[4], Data::String("TOYOTA".into()));
        assert_eq!(
            r[5],
            Data::String("5480".into()),
            "codes keep their leading zeros as text"
        );
    }
}

#[test]
fn xlsx_falls_back_to_dsv_above_the_row_limit() {
    let s = sub("report = \"first_registrations\"\nformat = \"xlsx\"");
    let register = open(generated());
    let snap = register.snapshot().unwrap();
    let (total, format, note) = extract::plan(&snap, &s.extract, None, 100).unwrap();
    assert!(total > 100);
    assert_eq!(format, regdrop::core::config::Format::Dsv);
    assert!(note.unwrap().contains("exceed the xlsx limit of 100"));
    let (_, format, note) = extract::plan(&snap, &s.extract, None, total).unwrap();
    assert_eq!((format, note), (regdrop::core::config::Format::Xlsx, None));
    // Through the whole pipeline, the artifact is then really a DSV.
    let dir = tempfile::tempdir().unwrap();
    let art = regdrop::pipeline::artifact::generate_and_seal(
        regdrop::pipeline::artifact::Workshop {
            register: &DbLocation::Sqlite(generated().to_path_buf()),
            spool: dir.path(),
            xlsx_row_limit: Some(100),
            passphrase: None,
        },
        "a",
        &regdrop::core::plan::RunPlan::new(&s, "2026-11-25T05:00:00Z".parse().unwrap(), None)
            .unwrap(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(art.format, regdrop::core::config::Format::Dsv);
    assert!(art.file_name.ends_with(".dsv.age"), "{}", art.file_name);
    assert_eq!(art.rows, total);
}
