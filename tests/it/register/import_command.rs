//! `regdrop register import` through the binary: importing into a register that already
//! holds vehicles needs `--append` or `--replace` (the same dump twice must not double every
//! vehicle); unreadable rows are listed with their line numbers and the command fails.

use crate::util::cli::{regdrop, run};
use std::path::Path;

fn vehicles(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM vehicle", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_second_import_must_say_append_or_replace() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/MVR_TECH_DATA.sample.txt");
    let import = |extra: &[&str]| {
        run(regdrop()
            .args(["register", "import"])
            .arg(&sample)
            .arg("--register")
            .arg(&db)
            .args(extra))
    };
    let out = import(&[]);
    assert!(
        out.ok() && out.stdout.contains("imported 19 rows"),
        "{}",
        out.text()
    );
    let out = import(&[]);
    assert!(!out.ok(), "{}", out.text());
    assert!(
        out.text()
            .contains("already holds 19 vehicles; pass --replace"),
        "{}",
        out.text()
    );
    assert_eq!(vehicles(&db), 19, "nothing imported twice");
    assert!(import(&["--append"]).ok());
    assert_eq!(vehicles(&db), 38);
    assert!(import(&["--replace"]).ok());
    assert_eq!(vehicles(&db), 19);
}

#[test]
fn unreadable_rows_are_listed_by_line_and_fail_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../data/MVR_TECH_DATA.sample.txt");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[3] = lines[3].replacen('¤', "", 1); // one field short
    lines[5] = lines[5].replacen("19", "X9", 1); // a date that is not a date
    let file = dir.path().join("dump.txt");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let db = dir.path().join("r.sqlite");
    let out = run(regdrop()
        .args(["register", "import"])
        .arg(&file)
        .arg("--register")
        .arg(&db));
    assert!(!out.ok(), "{}", out.text());
    assert!(
        out.stderr.contains("dump.txt:4: rejected:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("dump.txt:6: rejected:"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("imported 17 rows"), "{}", out.stdout);
    assert_eq!(vehicles(&db), 17);
}
