//! `regdrop register generate|import|stats --register postgresql://...` through the binary
//! against a real PostgreSQL: the same seed gives the same counts and content as SQLite, an
//! import loads what SQLite loads (latin-1 too) and a second one needs `--append` or
//! `--replace`, as with SQLite.

use crate::util::cli::{regdrop, run};
use crate::util::postgres;
use std::path::Path;

fn sqlite_count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every value of both tables in id order, as one text (SQLite and psql print the same).
const DUMP_SQL: [&str; 2] = [
    "SELECT count(*), count(DISTINCT tekn_kjm), max(id), sum(length(coalesce(tekn_merkenavn, ''))), sum(length(coalesce(tekn_drivst, ''))) FROM vehicle",
    "SELECT count(*), sum(vehicle_id), max(id), sum(length(coalesce(last_name, ''))), count(to_date) FROM ownership",
];

fn sqlite_row(db: &Path, sql: &str) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| {
        Ok((0..5)
            .map(|i| r.get::<_, i64>(i).map(|v| v.to_string()))
            .collect::<Result<Vec<_>, _>>()?
            .join("|"))
    })
    .unwrap()
}

#[test]
fn generate_into_postgresql_gives_the_sqlite_register_of_the_same_seed() {
    let (pg, db, url) = postgres::fresh();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.sqlite");
    for target in [file.to_str().unwrap(), url.as_str()] {
        let out = run(regdrop()
            .args([
                "register",
                "generate",
                "--vehicles",
                "1500",
                "--seed",
                "3",
                "--register",
            ])
            .arg(target));
        assert!(
            out.ok() && out.stdout.contains("generated 1500 vehicles"),
            "{}",
            out.text()
        );
    }
    for sql in DUMP_SQL {
        assert_eq!(pg.psql(&db, sql).trim(), sqlite_row(&file, sql), "{sql}");
    }
    let codes = pg.psql(&db, "SELECT count(*) FROM code_make");
    assert_eq!(
        codes.trim(),
        sqlite_count(&file, "SELECT count(*) FROM code_make").to_string()
    );
    // Generating again replaces the vehicles, as with SQLite.
    let out = run(regdrop()
        .args([
            "register",
            "generate",
            "--vehicles",
            "700",
            "--seed",
            "3",
            "--register",
        ])
        .arg(&url));
    assert!(out.ok(), "{}", out.text());
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM vehicle").trim(), "700");
    // Stats read it.
    let out = run(regdrop()
        .args(["register", "stats", "--register"])
        .arg(&url));
    assert!(out.ok(), "{}", out.text());
    assert!(
        out.stdout.contains("Vehicles") && out.stdout.contains("700"),
        "{}",
        out.text()
    );
    assert!(out.stdout.contains("seed"), "{}", out.text());
}

#[test]
fn import_into_postgresql_loads_what_sqlite_loads_and_guards_a_second_import() {
    let (pg, db, url) = postgres::fresh();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.sqlite");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/MVR_TECH_DATA.sample.txt");
    let import = |target: &str, extra: &[&str]| {
        run(regdrop()
            .args(["register", "import"])
            .arg(&sample)
            .arg("--register")
            .arg(target)
            .args(extra))
    };
    for target in [file.to_str().unwrap(), url.as_str()] {
        let out = import(target, &[]);
        assert!(
            out.ok() && out.stdout.contains("imported 19 rows"),
            "{}",
            out.text()
        );
    }
    let sql = DUMP_SQL[0];
    assert_eq!(pg.psql(&db, sql).trim(), sqlite_row(&file, sql));
    // Every column of every row is the same text.
    let conn = rusqlite::Connection::open(&file).unwrap();
    let want: Vec<String> = conn
        .prepare("SELECT id || '|' || coalesce(tekn_kjm, '') || '|' || coalesce(tekn_reg_f_g, '') || '|' || coalesce(tekn_modell, '') FROM vehicle ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let got = pg.psql(&db, "SELECT id || '|' || coalesce(tekn_kjm, '') || '|' || coalesce(tekn_reg_f_g, '') || '|' || coalesce(tekn_modell, '') FROM vehicle ORDER BY id");
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
    // A second import must say what to do with the vehicles there.
    let out = import(&url, &[]);
    assert!(!out.ok(), "{}", out.text());
    assert!(
        out.text()
            .contains("already holds 19 vehicles; pass --replace"),
        "{}",
        out.text()
    );
    let out = import(&url, &["--append"]);
    assert!(out.ok(), "{}", out.text());
    assert_eq!(
        pg.psql(&db, "SELECT count(*), max(id) FROM vehicle").trim(),
        "38|38"
    );
    let out = import(&url, &["--replace"]);
    assert!(out.ok(), "{}", out.text());
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM vehicle").trim(), "19");
    assert!(pg
        .psql(&db, "SELECT value FROM register_meta WHERE key = 'source'")
        .contains("import"));
}

#[test]
fn a_wrong_password_for_the_register_says_so_without_printing_it() {
    let pg = postgres::Postgres::get();
    let db = pg.fresh_database();
    let url = pg.password_url(&db, "Wrong-Horse-1");
    let out = run(regdrop()
        .args(["register", "generate", "--vehicles", "10", "--register"])
        .arg(&url));
    assert!(!out.ok(), "{}", out.text());
    assert!(out.text().contains("refused the login"), "{}", out.text());
    assert!(!out.text().contains("Wrong-Horse-1"), "{}", out.text());
}
