//! Import of the authority's technical DSV dump: exact values, both encodings and line
//! endings, rejected rows with line numbers, header mapping by name.

use regdrop::core::catalog::{column_of, TECHNICAL};
use regdrop::core::text::{encode_latin1, Encoding};
use regdrop::register::{import, schema, ImportOptions, RegisterError};
use std::path::{Path, PathBuf};

const SAMPLE: &str = include_str!("../../data/MVR_TECH_DATA.sample.txt");

/// The sample's data rows split into fields. (The file holds 19 data rows after its header.)
fn sample_rows() -> Vec<Vec<String>> {
    SAMPLE
        .lines()
        .skip(1)
        .map(|l| l.split('¤').map(str::to_string).collect())
        .collect()
}

/// Every vehicle row as the 85 values in catalog order, NULL as "".
fn db_rows(db: &Path) -> Vec<Vec<String>> {
    let conn = schema::open_ro(db).unwrap();
    let cols: Vec<String> = TECHNICAL
        .iter()
        .map(|f| format!("coalesce({}, '')", column_of(f.0)))
        .collect();
    let mut st = conn
        .prepare(&format!(
            "SELECT {} FROM vehicle ORDER BY id",
            cols.join(", ")
        ))
        .unwrap();
    let rows = st
        .query_map([], |r| {
            (0..85)
                .map(|i| r.get::<_, String>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn run(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    encoding: Option<Encoding>,
) -> (
    PathBuf,
    Result<regdrop::register::ImportSummary, RegisterError>,
) {
    let file = dir.join(format!("{name}.txt"));
    std::fs::write(&file, bytes).unwrap();
    let db = dir.join(format!("{name}.sqlite"));
    let mut last = 0;
    let r = import(&db, &file, &ImportOptions { encoding }, &mut |b| {
        assert!(b >= last);
        last = b;
    });
    if r.is_ok() {
        assert_eq!(last, bytes.len() as u64, "progress ends at the file size");
    }
    (db, r)
}

#[test]
fn sample_imports_with_every_value_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (db, r) = run(dir.path(), "utf8", SAMPLE.as_bytes(), None);
    let s = r.unwrap();
    let expected = sample_rows();
    assert_eq!(expected.len(), 19);
    assert_eq!(s.rows, 19);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.encoding, Encoding::Utf8);
    assert_eq!(db_rows(&db), expected);
    // Empty values are NULL, not empty strings.
    let conn = schema::open_ro(&db).unwrap();
    let empties: i64 = conn
        .query_row(
            "SELECT count(*) FROM vehicle WHERE tekn_kjm_persj = ''",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(empties, 0);
    let nulls: i64 = conn
        .query_row(
            "SELECT count(*) FROM vehicle WHERE tekn_kjm_persj IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(nulls, 19);
    let meta: String = conn
        .query_row(
            "SELECT value FROM register_meta WHERE key = 'source'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(meta, "import");
}

#[test]
fn latin1_with_crlf_gives_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for line in SAMPLE.lines() {
        encode_latin1(line, &mut bytes).unwrap();
        bytes.extend_from_slice(b"\r\n");
    }
    assert!(bytes.contains(&0xa4) && !bytes.windows(2).any(|w| w == [0xc2, 0xa4]));
    let (db, r) = run(dir.path(), "latin1", &bytes, None);
    let s = r.unwrap();
    assert_eq!(s.encoding, Encoding::Latin1);
    assert_eq!(s.rows, 19);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert_eq!(db_rows(&db), sample_rows());

    // Non-ASCII letters survive the round trip; a UTF-8 file with a BOM is UTF-8.
    let text = SAMPLE.replacen("GAUPEN", "MJØRUD", 1);
    let mut latin = Vec::new();
    for line in text.lines() {
        encode_latin1(line, &mut latin).unwrap();
        latin.extend_from_slice(b"\r\n");
    }
    let (db, r) = run(dir.path(), "latin1-oe", &latin, None);
    assert_eq!(r.unwrap().encoding, Encoding::Latin1);
    assert_eq!(db_rows(&db)[0][14], "MJØRUD");
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(text.as_bytes());
    let (db, r) = run(dir.path(), "bom", &bom, None);
    let s = r.unwrap();
    assert_eq!((s.encoding, s.rows), (Encoding::Utf8, 19));
    assert_eq!(db_rows(&db)[0][14], "MJØRUD");
    // An explicit encoding overrides detection.
    let (_, r) = run(
        dir.path(),
        "forced",
        SAMPLE.as_bytes(),
        Some(Encoding::Utf8),
    );
    assert_eq!(r.unwrap().rows, 19);
}

#[test]
fn bad_rows_are_reported_with_line_numbers_and_the_rest_imported() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = SAMPLE.lines().map(str::to_string).collect();
    // Line 3: one field short. Line 6: TEKN_REG_F_G (5th field) is not YYYYMMDD.
    let short = lines[2].rsplit_once('¤').unwrap().0.to_string();
    lines[2] = short;
    let mut f: Vec<&str> = lines[5].split('¤').collect();
    f[4] = "1984-06-15";
    lines[5] = f.join("¤");
    // Line 8: invalid UTF-8; line 10: a date that does not exist.
    let mut f: Vec<String> = lines[9].split('¤').map(str::to_string).collect();
    f[75] = "20230231".into();
    lines[9] = f.join("¤");
    let mut bytes = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 7 {
            bytes.extend_from_slice(&l.as_bytes()[..10]);
            bytes.push(0xff);
            bytes.extend_from_slice(&l.as_bytes()[10..]);
        } else {
            bytes.extend_from_slice(l.as_bytes());
        }
        bytes.push(b'\n');
    }
    bytes.push(b'\n'); // a trailing blank line is skipped with a warning
    let (db, r) = run(dir.path(), "bad", &bytes, None);
    let s = r.unwrap();
    let lines_rejected: Vec<u64> = s.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines_rejected, vec![3, 6, 8, 10], "{:?}", s.rejected);
    assert!(
        s.rejected[0].reason.contains("84 fields"),
        "{}",
        s.rejected[0].reason
    );
    assert!(
        s.rejected[1].reason.contains("TEKN_REG_F_G")
            && s.rejected[1].reason.contains("1984-06-15")
    );
    assert!(
        s.rejected[2].reason.contains("UTF-8"),
        "{}",
        s.rejected[2].reason
    );
    assert!(
        s.rejected[3].reason.contains("TEKN_SISTE_PKK"),
        "{}",
        s.rejected[3].reason
    );
    assert_eq!(s.rows, 15);
    assert!(
        s.warnings.iter().any(|w| w.contains("blank")),
        "{:?}",
        s.warnings
    );
    let imported: Vec<String> = db_rows(&db).into_iter().map(|r| r[0].clone()).collect();
    let expected: Vec<String> = sample_rows()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| ![1, 4, 6, 8].contains(i))
        .map(|(_, r)| r[0].clone())
        .collect();
    assert_eq!(imported, expected);
}

#[test]
fn columns_are_mapped_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // Reverse the column order, drop TEKN_MODELL, add an unknown column.
    let mut text = String::new();
    for (i, line) in SAMPLE.lines().enumerate() {
        let mut f: Vec<&str> = line.split('¤').collect();
        f.remove(15);
        f.reverse();
        f.push(if i == 0 { "TEKN_EXTRA" } else { "x" });
        text.push_str(&f.join("¤"));
        text.push('\n');
    }
    let (db, r) = run(dir.path(), "mapped", text.as_bytes(), None);
    let s = r.unwrap();
    assert_eq!(s.rows, 19);
    assert_eq!(
        s.warnings
            .iter()
            .filter(|w| w.contains("TEKN_EXTRA"))
            .count(),
        1,
        "{:?}",
        s.warnings
    );
    let mut expected = sample_rows();
    for r in &mut expected {
        r[15] = String::new();
    }
    assert_eq!(db_rows(&db), expected);

    // Without TEKN_KJM the file is refused.
    let no_kjm: String = SAMPLE
        .lines()
        .map(|l| l.split_once('¤').unwrap().1.to_string() + "\n")
        .collect();
    let (_, r) = run(dir.path(), "nokjm", no_kjm.as_bytes(), None);
    assert!(
        matches!(r, Err(RegisterError::MissingColumn { ref column, .. }) if column == "TEKN_KJM"),
        "{r:?}"
    );
    let (_, r) = run(dir.path(), "empty", b"", None);
    assert!(matches!(r, Err(RegisterError::EmptyFile { .. })), "{r:?}");
}
