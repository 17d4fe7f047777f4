//! The register on PostgreSQL (real server from the fixture): the same seed generated into
//! SQLite and into PostgreSQL gives byte-identical extracts for every report, several
//! filters and periods and every format; hostile filter values select exactly what SQLite
//! selects; `regdrop extract` from a PostgreSQL register seals what age decrypts to the
//! SQLite result; a refused connection is a clear retryable error with no artifact.

use crate::util::{self, postgres};
use regdrop::core::catalog::ReportKind;
use regdrop::core::config::location::DbLocation;
use regdrop::core::config::raw::RawSubscription;
use regdrop::core::config::validate::{validate_subscription, Inherited};
use regdrop::core::config::Subscription;
use regdrop::core::retry::{Classify, ErrorClass};
use regdrop::extract::{self, Options, Register};
use regdrop::register;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const AGE: &str = "age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r";
const HOSTKEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj";
const SEED: u64 = 11;
pub(super) const VEHICLES: u64 = 2500;

pub(super) fn sub(extract: &str) -> Subscription {
    let text = format!(
        "id = \"t\"\ncustomer = \"Test\"\nlegal_basis = \"test\"\n[schedule]\ncron = \"0 6 * * *\"\n\
         [target]\nhost = \"127.0.0.1\"\nusername = \"u\"\nhost_keys = [\"{HOSTKEY}\"]\n\
         auth = {{ key_file = \"k\" }}\nremote_dir = \"/in\"\n[extract]\n{extract}\n\
         [encryption]\nrecipients = [\"{AGE}\"]\n"
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

/// The same seed in a SQLite file and in a PostgreSQL database (built once).
pub(super) struct Pair {
    _dir: tempfile::TempDir,
    pub(super) sqlite: DbLocation,
    pub(super) pg: DbLocation,
    pub(super) db: String,
}

pub(super) fn pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.sqlite");
        let opts = register::GenerateOptions {
            vehicles: VEHICLES,
            seed: SEED,
        };
        let a = register::generate(&file, &opts, &mut |_| {}).unwrap();
        let (_, db, url) = postgres::fresh();
        let pg = DbLocation::from_config(&url, Path::new(""));
        let b = register::generate_postgres(pg.postgres().unwrap(), &opts, &mut |_| {}).unwrap();
        assert_eq!((a.vehicles, a.ownerships), (b.vehicles, b.ownerships));
        Pair {
            _dir: dir,
            sqlite: DbLocation::Sqlite(file),
            pg,
            db,
        }
    })
}

/// The extract of `s` (at the fixed run time) from `at`: bytes and rows.
fn run(at: &DbLocation, s: &Subscription) -> (Vec<u8>, u64) {
    let period = regdrop::core::plan::run_period(s, "2026-11-25T05:00:00Z".parse().unwrap(), None);
    let register = Register::open(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    let snap = register.snapshot().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path());
    let planned = extract::plan(&snap, &s.extract, period.as_ref(), opts.xlsx_row_limit).unwrap();
    let mut out = Vec::new();
    let o = extract::run(
        &snap,
        &s.extract,
        period.as_ref(),
        planned,
        &mut out,
        &opts,
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("{at}: {}", regdrop::core::errors::chain(&e)));
    snap.end().unwrap();
    (out, o.rows)
}

/// The cells of an xlsx workbook's sheet, as text.
fn cells(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{open_workbook, Reader, Xlsx};
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.xlsx");
    std::fs::write(&f, bytes).unwrap();
    let mut wb: Xlsx<_> = open_workbook(&f).unwrap();
    let range = wb.worksheet_range("Uttrekk").unwrap();
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// Asserts both registers give the same extract for `body`; returns its rows.
fn same(body: &str) -> u64 {
    let p = pair();
    let s = sub(body);
    let (a, ra) = run(&p.sqlite, &s);
    let (b, rb) = run(&p.pg, &s);
    assert_eq!(ra, rb, "{body}: row counts differ");
    if s.extract.format == regdrop::core::config::Format::Xlsx && a != b {
        // The workbook's zip may differ in metadata: compare what a reader sees.
        assert_eq!(cells(&a), cells(&b), "{body}: workbooks differ");
    } else {
        assert!(
            a == b,
            "{body}: the extracts differ\nsqlite: {}\npostgres: {}",
            String::from_utf8_lossy(&a[..a.len().min(600)]),
            String::from_utf8_lossy(&b[..b.len().min(600)])
        );
    }
    ra
}

#[test]
fn every_report_filter_period_and_format_is_byte_identical_to_sqlite() {
    let custom = "columns = [\"TEKN_KJM\", \"TEKN_MERKENAVN\", \"KJTGRP_NAVN\", \"EIER_NAVN\", \"EIER_FYLKENR\", \"LEASINGTAKER_ORGNR\", \"MEDEIER_FODSELSDATO\"]";
    let filters = [
        "",
        "filter = { make = [\"TOYOTA\", \"volvo\"], fuel = [\"1\", \"5\"] }",
        "filter = { seats = { min = 2, max = 5 }, status = [\"REGISTRERT\"] }",
        // Owner filters: for the reports that show owners (below).
        "filter = { county = [\"03\", \"46\"], seats = { max = 5 } }",
        "filter = { first_registration_year = { min = 2012, max = 2020 }, vehicle_group = [\"101\"] }\nperiod = { from = 2014-01-01, to = 2019-12-31 }",
        "period = \"since_last_delivery\"\nperiod_field = \"scrapped\"",
    ];
    let mut checked = 0;
    for report in ReportKind::ALL {
        if report == ReportKind::CodeTables {
            continue;
        }
        let cols = if report == ReportKind::Custom {
            custom
        } else {
            ""
        };
        for format in ["dsv", "csv", "xlsx"] {
            for filter in filters {
                let shows_owners = matches!(
                    report,
                    ReportKind::TechnicalOwners | ReportKind::Owners | ReportKind::Custom
                );
                if filter.contains("county") && !shows_owners {
                    continue;
                }
                let body = format!(
                    "report = \"{}\"\nformat = \"{format}\"\n{cols}\n{filter}",
                    report.as_str()
                );
                same(&body);
                checked += 1;
            }
        }
    }
    // Encodings and line endings go through the writers the same way, once.
    let rows =
        same("report = \"technical_owners\"\nencoding = \"iso-8859-1\"\nline_ending = \"crlf\"");
    assert_eq!(rows, VEHICLES);
    assert_eq!(checked, 6 * 3 * filters.len() - 3 * 3);
}

#[test]
fn hostile_filter_values_select_exactly_what_sqlite_selects() {
    let p = pair();
    // Quotes, backslashes, comment and statement separators, a newline, placeholders: none
    // of them may change the query. A real model and status keep rows in the answer.
    let model: String = rusqlite::Connection::open(p.sqlite.sqlite_path().unwrap())
        .unwrap()
        .query_row(
            "SELECT tekn_modell FROM vehicle WHERE tekn_modell IS NOT NULL ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let hostile = [
        "x'); DROP TABLE vehicle;--",
        "O'Brien\\",
        "a\\'b",
        "line\nbreak",
        "$1",
        "?1",
        "' OR '1'='1",
        "\\'; SELECT pg_sleep(5); --",
    ];
    let list = |real: &str| {
        let mut v: Vec<String> = hostile.iter().map(|h| format!("{h:?}")).collect();
        v.push(format!("{real:?}"));
        v.join(", ")
    };
    let body = format!(
        "report = \"technical_owners\"\nfilter = {{ model = [{}], status = [{}] }}",
        list(&model),
        list("REGISTRERT")
    );
    let rows = same(&body);
    assert!(rows > 0 && rows < VEHICLES, "{rows}: {body}");
    // Only hostile values: nothing is selected, on both.
    let body = format!(
        "report = \"technical_owners\"\nfilter = {{ model = [{}] }}",
        list("NO SUCH MODEL")
    );
    assert_eq!(same(&body), 0, "{body}");
    let n = postgres::Postgres::get().psql(&p.db, "SELECT count(*) FROM vehicle");
    assert_eq!(
        n.trim(),
        VEHICLES.to_string(),
        "the vehicle table is intact"
    );
}

#[test]
fn preview_sql_on_a_postgresql_register_is_what_psql_runs() {
    let p = pair();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = p.pg.postgres().unwrap().expose().to_string();
    write_config(d, &format!("register = \"{url}\""));
    std::fs::write(
        d.join("subs/s.toml"),
        sub_file(
            "s",
            "technical_owners",
            "dsv",
            AGE,
            "filter = { make = [\"TOYOTA\"], fuel = [\"5\"], seats = { min = 2 } }",
        ),
    )
    .unwrap();
    let out = util::cli::run(util::cli::regdrop_in(d).args(["preview", "s", "--sql"]));
    assert!(out.ok(), "{}", out.text());
    let sql = out.stdout.trim().trim_end_matches(';').to_string();
    assert!(sql.contains("strpos(") && !sql.contains("?1"), "{sql}");
    // psql runs it and counts what regdrop counts.
    let psql_rows = postgres::Postgres::get()
        .psql(&p.db, &format!("SELECT count(*) FROM ({sql}) q"))
        .trim()
        .parse::<u64>()
        .unwrap();
    let (_, rows) = run(
        &p.pg,
        &sub("report = \"technical_owners\"\nfilter = { make = [\"TOYOTA\"], fuel = [\"5\"], seats = { min = 2 } }"),
    );
    assert_eq!(psql_rows, rows);
    assert!(rows > 0);
    // And preview itself reads the PostgreSQL register.
    let out = util::cli::run(util::cli::regdrop_in(d).args(["preview", "s", "--rows", "2"]));
    assert!(out.ok(), "{}", out.text());
    assert!(
        out.stdout.contains(&format!("{rows} rows")),
        "{}",
        out.text()
    );
}

pub(super) fn write_config(d: &Path, register: &str) {
    std::fs::create_dir_all(d.join("subs")).unwrap();
    std::fs::write(
        d.join("regdrop.toml"),
        format!("{register}\nspool_dir = \"spool\"\nstate_db = \"state/regdrop.sqlite\"\nsubscriptions_dir = \"subs\"\n"),
    )
    .unwrap();
}

fn sub_file(id: &str, report: &str, format: &str, rec: &str, extra: &str) -> String {
    format!(
        "id = \"{id}\"\ncustomer = \"C\"\nlegal_basis = \"test\"\n[schedule]\ncron = \"@daily\"\n[target]\nhost = \"127.0.0.1\"\nusername = \"u\"\nhost_keys = [\"{HOSTKEY}\"]\nauth = {{ key_file = \"k\" }}\nremote_dir = \"/in\"\n[extract]\nreport = \"{report}\"\nformat = \"{format}\"\n{extra}\n[encryption]\nrecipients = [\"{rec}\"]\n"
    )
}

fn age_decrypt(identity: &Path, file: &Path) -> Vec<u8> {
    let out = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .expect("age is installed (apt-get install age)");
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn a_sealed_extract_from_postgresql_decrypts_to_the_sqlite_result() {
    let p = pair();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let identity = d.join("age.key");
    let rec = util::cli::age_keygen(&identity);
    let url = p.pg.postgres().unwrap().expose().to_string();
    write_config(d, &format!("register = \"{url}\""));
    std::fs::write(
        d.join("subs/s.toml"),
        sub_file("s", "technical_owners", "dsv", rec.trim(), ""),
    )
    .unwrap();
    let out_file = d.join("out.age");
    let out = util::cli::run(
        util::cli::regdrop_in(d)
            .args(["extract", "s", "--out"])
            .arg(&out_file)
            .args(["--at", "2026-11-25T05:00:00Z"]),
    );
    assert!(out.ok(), "{}", out.text());
    // Closing the register's connection is quiet (no thread panics on the way out).
    assert!(!out.text().contains("panicked"), "{}", out.text());
    let plain = age_decrypt(&identity, &out_file);
    let (want, rows) = run(
        &p.sqlite,
        &sub("report = \"technical_owners\"\nformat = \"dsv\""),
    );
    assert_eq!(rows, VEHICLES);
    assert!(
        plain == want,
        "the decrypted PostgreSQL extract differs from SQLite's"
    );
}

#[test]
fn a_refused_connection_is_a_retryable_error_and_leaves_no_artifact() {
    // A port nothing listens on (the fixture's port + 1 is not the cluster's).
    let port = postgres::Postgres::get().port;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = closed.local_addr().unwrap().port();
    drop(closed);
    assert_ne!(free, port);
    let at = DbLocation::from_config(
        &format!("postgresql://reader:s3cret@127.0.0.1:{free}/register"),
        Path::new(""),
    );
    let spool = tempfile::tempdir().unwrap();
    let s = sub("report = \"technical_owners\"");
    let plan = regdrop::core::plan::RunPlan::new(&s, "2026-11-25T05:00:00Z".parse().unwrap(), None)
        .unwrap();
    let err = regdrop::pipeline::artifact::generate_and_seal(
        regdrop::pipeline::artifact::Workshop {
            register: &at,
            spool: spool.path(),
            xlsx_row_limit: None,
            passphrase: None,
        },
        "a",
        &plan,
        &mut |_, _| {},
    )
    .unwrap_err();
    let text = regdrop::core::errors::chain(&err);
    assert_eq!(err.class(), ErrorClass::Retryable, "{text}");
    assert!(text.contains("not reachable"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let left: Vec<PathBuf> = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // `regdrop check` says the same, and names the register.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_config(
        d,
        &format!("register = \"{}\"", at.postgres().unwrap().expose()),
    );
    let out = util::cli::run(util::cli::regdrop_in(d).arg("check"));
    assert!(!out.ok(), "{}", out.text());
    assert!(
        out.text()
            .contains("register: the register postgresql://reader:***@"),
        "{}",
        out.text()
    );
    assert!(!out.text().contains("s3cret"), "{}", out.text());
}

#[test]
fn check_finds_a_postgresql_register_without_its_tables() {
    let (_, _db, url) = postgres::fresh();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_config(d, &format!("register = \"{url}\""));
    let out = util::cli::run(util::cli::regdrop_in(d).arg("check"));
    assert!(!out.ok(), "{}", out.text());
    assert!(
        out.text().contains("has no `vehicle` table or view"),
        "{}",
        out.text()
    );
    // With the generated register it passes that check.
    let p = pair();
    write_config(
        d,
        &format!("register = \"{}\"", p.pg.postgres().unwrap().expose()),
    );
    let out = util::cli::run(util::cli::regdrop_in(d).arg("check"));
    assert!(!out.text().contains("register:"), "{}", out.text());
}

#[test]
fn hostile_text_in_the_register_comes_out_as_sqlite_gives_it() {
    // Values COPY's text format must escape, and ones it must not touch.
    let hostile = [
        "tab\there",
        "new\nline\r\n",
        "back\\slash \\N \\t \\\\",
        "\\N",
        "quote ' \" ; -- æøå 🚗",
        "\u{8}\u{b}\u{c}\u{7f}",
        "",
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.sqlite");
    let opts = register::GenerateOptions {
        vehicles: 60,
        seed: 2,
    };
    register::generate(&file, &opts, &mut |_| {}).unwrap();
    let (_, _db, url) = postgres::fresh();
    let pg = DbLocation::from_config(&url, Path::new(""));
    register::generate_postgres(pg.postgres().unwrap(), &opts, &mut |_| {}).unwrap();
    let lite = rusqlite::Connection::open(&file).unwrap();
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    for (i, h) in hostile.iter().enumerate() {
        let id = i as i64 + 1;
        lite.execute(
            "UPDATE vehicle SET tekn_modell = ?1, tekn_merkenavn = ?1 WHERE id = ?2",
            rusqlite::params![h, id],
        )
        .unwrap();
        client
            .execute(
                "UPDATE vehicle SET tekn_modell = $1, tekn_merkenavn = $1 WHERE id = $2",
                &[h, &id],
            )
            .unwrap();
    }
    drop(lite);
    drop(client);
    let sqlite = DbLocation::Sqlite(file);
    let custom = "report = \"custom\"\ncolumns = [\"TEKN_KJM\", \"TEKN_MODELL\", \"TEKN_MERKENAVN\", \"EIER_NAVN\"]";
    for format in ["csv", "xlsx"] {
        let s = sub(&format!("{custom}\nformat = \"{format}\""));
        let (a, ra) = run(&sqlite, &s);
        let (b, rb) = run(&pg, &s);
        assert_eq!((ra, rb), (60, 60));
        if format == "xlsx" && a != b {
            assert_eq!(cells(&a), cells(&b), "{format}");
        } else {
            assert!(
                a == b,
                "{format}:\n{}\n---\n{}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            );
        }
        if format == "csv" {
            let text = String::from_utf8(b).unwrap();
            assert!(text.contains(",tab\there,"), "{text}");
            assert!(text.contains("back\\slash \\N \\t \\\\"), "{text}");
        }
    }
}

/// A config folder delivering `sub` (technical_owners, dsv) from `register` to `sshd`.
fn deliver_setup(
    sshd: &util::sshd::Sshd,
    remote: &Path,
    register: &str,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let identity = d.join("age.key");
    let rec = util::cli::age_keygen(&identity);
    write_config(d, &format!("register = \"{register}\""));
    std::fs::write(
        d.join("subs/sub.toml"),
        util::cli::CustomerSub {
            port: sshd.port,
            user: &util::sshd::current_user(),
            host_key: &sshd.host_pub,
            key: &sshd.user_key,
            remote: &remote.display().to_string(),
            recipient: &rec,
            extract_extra: "",
            max_attempts: 2,
            extra: "",
        }
        .toml(),
    )
    .unwrap();
    (dir, identity)
}

fn receipts(d: &Path) -> String {
    let out = util::cli::run(util::cli::regdrop_in(d).args(["receipts", "list"]));
    assert!(out.ok(), "{}", out.text());
    out.stdout
}

#[test]
fn a_delivery_from_postgresql_arrives_and_a_refused_register_leaves_no_file_and_no_receipt() {
    let p = pair();
    let sshd = util::sshd::Sshd::start();
    // Delivered from the PostgreSQL register: the file decrypts to the SQLite extract.
    let remote = sshd.remote_dir("in");
    let url = p.pg.postgres().unwrap().expose().to_string();
    let (dir, identity) = deliver_setup(&sshd, &remote, &url);
    let d = dir.path();
    let out = util::cli::run(util::cli::regdrop_in(d).args([
        "deliver",
        "sub",
        "--at",
        "2026-11-25T06:00:00+01:00",
    ]));
    assert!(out.ok(), "{}", out.text());
    let file = remote.join("sub_20261125.dsv.age");
    let plain = age_decrypt(&identity, &file);
    let (want, _) = run(
        &p.sqlite,
        &sub("report = \"technical_owners\"\nformat = \"dsv\""),
    );
    assert!(
        plain == want,
        "the delivered file differs from the SQLite extract"
    );
    assert!(receipts(d).ends_with("1 receipt(s)\n"), "{}", receipts(d));

    // A register nobody listens for: retried, then failed; nothing on the server, no
    // receipt, nothing left in the spool.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = closed.local_addr().unwrap().port();
    drop(closed);
    let remote = sshd.remote_dir("in2");
    let (dir, _) = deliver_setup(
        &sshd,
        &remote,
        &format!("postgresql://postgres@127.0.0.1:{free}/register"),
    );
    let d = dir.path();
    let out = util::cli::run(util::cli::regdrop_in(d).args([
        "deliver",
        "sub",
        "--at",
        "2026-11-25T06:00:00+01:00",
    ]));
    assert!(!out.ok(), "{}", out.text());
    assert!(out.text().contains("not reachable"), "{}", out.text());
    assert!(
        util::files::ls(&remote).is_empty(),
        "{:?}",
        util::files::ls(&remote)
    );
    assert!(receipts(d).ends_with("0 receipt(s)\n"), "{}", receipts(d));
    let spool: Vec<_> = std::fs::read_dir(d.join("spool"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        spool.iter().all(|n| !n.to_string_lossy().contains("age")),
        "{spool:?}"
    );
}

/// Everything under `dir` (files and folders, relative), sorted; empty if it is not there.
pub(super) fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The register's connection cut by a proxy 256 KiB into the server's answer: past the
/// login, the BEGIN and the count (a few hundred bytes), in the middle of the COPY's data
/// (the extract is several times longer). The attempt fails retryably, leaves no artifact
/// in the spool, nothing (no file, no temporary file) in the customer's folder and no
/// receipt; the next attempt, through the proxy now healthy, delivers what SQLite gives.
#[test]
fn a_register_connection_cut_in_the_middle_of_a_copy_is_retried_and_leaves_nothing() {
    use crate::util::fault_proxy::{Faults, Proxy};
    const CUT: u64 = 256 * 1024;
    let p = pair();
    let pg = postgres::Postgres::get();
    let (want, _) = run(
        &p.sqlite,
        &sub("report = \"technical_owners\"\nformat = \"dsv\""),
    );
    assert!(want.len() as u64 > 3 * CUT, "{} bytes", want.len());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Only the first connection through each proxy is cut, server -> client.
    let cut_once = Faults {
        cut_back_after: Some(CUT),
        cut_connections: Some(1),
        ..Faults::default()
    };
    let via = |proxy: &Proxy| format!("postgresql://postgres@127.0.0.1:{}/{}", proxy.port, p.db);

    // The pipeline's own answer: a retryable error naming the register, nothing spooled.
    let proxy = rt.block_on(Proxy::with(0, pg.port, cut_once));
    let at = DbLocation::from_config(&via(&proxy), Path::new(""));
    let spool = tempfile::tempdir().unwrap();
    let s = sub("report = \"technical_owners\"");
    let plan = regdrop::core::plan::RunPlan::new(&s, "2026-11-25T05:00:00Z".parse().unwrap(), None)
        .unwrap();
    let mut rows_seen = 0;
    let err = regdrop::pipeline::artifact::generate_and_seal(
        regdrop::pipeline::artifact::Workshop {
            register: &at,
            spool: spool.path(),
            xlsx_row_limit: None,
            passphrase: None,
        },
        "a",
        &plan,
        &mut |done, _| rows_seen = rows_seen.max(done),
    )
    .unwrap_err();
    let text = regdrop::core::errors::chain(&err);
    assert_eq!(err.class(), ErrorClass::Retryable, "{text}");
    assert!(text.contains("PostgreSQL register"), "{text}");
    assert!(text.contains("cut in the middle"), "{text}");
    assert!(
        rows_seen < VEHICLES,
        "{rows_seen} rows came: the cut was not in the data"
    );
    assert_eq!(proxy.connections(), 1);
    assert!(tree(spool.path()).is_empty(), "{:?}", tree(spool.path()));
    drop(proxy);

    // A delivery by hand: the one attempt fails as retryable ("failed", not "needs
    // attention"), and leaves nothing anywhere; `regdrop retry` then delivers.
    let proxy = rt.block_on(Proxy::with(0, pg.port, cut_once));
    let sshd = util::sshd::Sshd::start();
    let remote = sshd.remote_dir("in");
    let (dir, identity) = deliver_setup(&sshd, &remote, &via(&proxy));
    let d = dir.path();
    let out = util::cli::run(util::cli::regdrop_in(d).args([
        "deliver",
        "sub",
        "--no-retry",
        "--at",
        "2026-11-25T06:00:00+01:00",
    ]));
    assert!(!out.ok(), "{}", out.text());
    assert!(
        out.text().contains("failed after its one attempt"),
        "{}",
        out.text()
    );
    assert!(out.text().contains("PostgreSQL register"), "{}", out.text());
    assert!(!out.text().contains("panicked"), "{}", out.text());
    assert_eq!(proxy.connections(), 1, "{}", out.text());
    assert!(
        util::files::ls(&remote).is_empty(),
        "{:?}",
        util::files::ls(&remote)
    );
    assert!(receipts(d).ends_with("0 receipt(s)\n"), "{}", receipts(d));
    // The run's lock file (spool/locks/RUN.lock) stays; it is not an artifact.
    let spooled: Vec<String> = tree(&d.join("spool"))
        .into_iter()
        .filter(|f| d.join("spool").join(f).is_file() && !f.starts_with("locks/"))
        .collect();
    assert!(spooled.is_empty(), "{spooled:?}");
    let run_id = out
        .text()
        .lines()
        .find_map(|l| Some(l.strip_prefix("run ")?.split(' ').next()?.to_string()))
        .unwrap_or_else(|| panic!("no run id in {}", out.text()));
    let out = util::cli::run(util::cli::regdrop_in(d).args(["retry", &run_id]));
    assert!(out.ok(), "{}", out.text());
    assert!(proxy.connections() >= 2, "the retry read through the proxy");
    // The file and its two sidecars, nothing left over from the cut attempt.
    assert_eq!(
        util::files::ls(&remote),
        [
            "sub_20261125.dsv.age",
            "sub_20261125.dsv.age.manifest.json",
            "sub_20261125.dsv.age.sha256"
        ]
    );
    let plain = age_decrypt(&identity, &remote.join("sub_20261125.dsv.age"));
    assert!(
        plain == want,
        "the delivered file differs from the SQLite extract"
    );
    assert!(receipts(d).ends_with("1 receipt(s)\n"), "{}", receipts(d));
}
