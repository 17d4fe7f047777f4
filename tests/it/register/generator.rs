//! The synthetic generator: deterministic, valid identifiers, allowed plate shapes, clean
//! values, consistent dates and ownerships.

use regdrop::core::ids::{self, PlateShape};
use regdrop::register::{generate, schema, GenerateOptions};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

const N: u64 = 2_000;

fn make(dir: &Path, name: &str, seed: u64) -> std::path::PathBuf {
    let db = dir.join(name);
    let mut last = 0;
    let s = generate(&db, &GenerateOptions { vehicles: N, seed }, &mut |n| {
        assert!(n >= last);
        last = n;
    })
    .unwrap();
    assert_eq!(s.vehicles, N);
    assert_eq!(last, N);
    assert!(s.ownerships >= N, "{s:?}");
    db
}

/// Hash of every value of both tables, in id order.
fn checksum(conn: &Connection) -> u64 {
    let mut h = DefaultHasher::new();
    for sql in [
        "SELECT * FROM vehicle ORDER BY id",
        "SELECT * FROM ownership ORDER BY id",
    ] {
        let mut st = conn.prepare(sql).unwrap();
        let cols = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for i in 0..cols {
                match r.get_ref(i).unwrap() {
                    ValueRef::Null => 0u8.hash(&mut h),
                    ValueRef::Integer(v) => v.hash(&mut h),
                    ValueRef::Text(t) => t.hash(&mut h),
                    other => panic!("unexpected value {other:?}"),
                }
            }
        }
    }
    h.finish()
}

fn strings(conn: &Connection, sql: &str) -> Vec<String> {
    let mut st = conn.prepare(sql).unwrap();
    let v = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
    v.map(Result::unwrap).collect()
}

#[test]
fn same_seed_same_register_and_everything_valid() {
    let dir = tempfile::tempdir().unwrap();
    let a = make(dir.path(), "a.sqlite", 42);
    let b = make(dir.path(), "b.sqlite", 42);
    let c = make(dir.path(), "c.sqlite", 43);
    let ca = schema::open_ro(&a).unwrap();
    let sum = checksum(&ca);
    assert_eq!(
        sum,
        checksum(&schema::open_ro(&b).unwrap()),
        "same seed, same content"
    );
    assert_ne!(
        sum,
        checksum(&schema::open_ro(&c).unwrap()),
        "another seed, other content"
    );
    // Generating again into the same file replaces the content.
    drop(ca);
    let again = make(dir.path(), "a.sqlite", 42);
    let conn = schema::open_ro(&again).unwrap();
    assert_eq!(sum, checksum(&conn));

    let meta: Vec<String> = strings(
        &conn,
        "SELECT key || '=' || value FROM register_meta ORDER BY key",
    );
    for want in ["source=generated", "seed=42", "vehicles=2000"] {
        assert!(meta.iter().any(|m| m == want), "{meta:?}");
    }
    assert!(meta.iter().any(|m| m.starts_with("generated_at=")));
    let jm: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jm, "wal");

    // Organisation numbers and national identity numbers are valid.
    let orgs = strings(
        &conn,
        "SELECT org_number FROM ownership WHERE org_number IS NOT NULL",
    );
    assert!(!orgs.is_empty());
    for o in &orgs {
        assert!(ids::is_valid_org_number(o), "{o}");
    }
    let mut st = conn
        .prepare(
            "SELECT national_id, birth_date, from_date FROM ownership WHERE org_number IS NULL",
        )
        .unwrap();
    let people: Vec<(String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(people.len() > 1000);
    for (nid, birth, from) in &people {
        assert!(ids::is_valid_fnr(nid), "{nid}");
        assert_eq!(
            ids::birth_date(nid).as_deref(),
            Some(birth.as_str()),
            "{nid}"
        );
        assert!(birth < from, "born {birth}, owner from {from}");
    }
    // Every value of every table is free of the separator and line breaks.
    for table in ["vehicle", "ownership"] {
        let mut st = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let cols = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for i in 0..cols {
                if let ValueRef::Text(t) = r.get_ref(i).unwrap() {
                    let t = std::str::from_utf8(t).unwrap();
                    assert!(!t.contains(['¤', '\r', '\n']), "{table}: {t:?}");
                    assert!(!t.is_empty(), "{table}: empty string instead of NULL");
                }
            }
        }
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one pass over the generated register checking each rule in turn
fn plates_dates_and_ownerships_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let db = make(dir.path(), "r.sqlite", 7);
    let conn = schema::open_ro(&db).unwrap();
    let mut st = conn
        .prepare(
            "SELECT tekn_kjm, tekn_unr, tekn_drivst, tekn_kjtgrp, tekn_reg_f_g, tekn_reg_f_g_n,
                    tekn_reg_eierskifte_dato, tekn_reg_eier_dato, tekn_avreg_dato, tekn_vraket_dato,
                    tekn_reg_status, tekn_merke, tekn_merkenavn, tekn_tknavn, tekn_siste_pkk, tekn_neste_pkk
             FROM vehicle",
        )
        .unwrap();
    let mut shapes = std::collections::HashMap::new();
    let mut vins = 0;
    let mut rows = st.query([]).unwrap();
    let mut plates = std::collections::HashSet::new();
    while let Some(r) = rows.next().unwrap() {
        let g = |i: usize| r.get::<_, Option<String>>(i).unwrap();
        let plate = g(0).unwrap();
        assert!(plates.insert(plate.clone()), "duplicate plate {plate}");
        let shape = ids::plate_shape(&plate).unwrap_or_else(|| panic!("bad plate {plate}"));
        *shapes.entry(shape).or_insert(0u64) += 1;
        let fuel = g(2).unwrap_or_default();
        if ids::is_electric_series(&plate) {
            assert!(fuel.split(',').all(|f| f == "5"), "{plate} has fuel {fuel}");
            assert_eq!(g(3).as_deref(), Some("101"), "{plate}");
        }
        let unr = g(1).unwrap();
        if unr.len() == 17 {
            assert!(ids::is_vin(&unr), "{unr}");
            vins += 1;
        } else {
            assert!((5..=11).contains(&unr.len()), "{unr}");
        }
        for i in [4, 5, 6, 7, 8, 9, 14, 15] {
            if let Some(d) = g(i) {
                assert!(ids::is_date(&d), "{plate}: {d}");
                assert!(
                    i == 15 || d.as_str() <= "20250630",
                    "{plate}: {d} after the as-of date"
                );
            }
        }
        let (fg, fgn) = (g(4).unwrap(), g(5).unwrap());
        assert!(fg <= fgn, "{plate}: {fg} > {fgn}");
        if let Some(change) = g(6) {
            assert!(fgn <= change, "{plate}: owner change {change} before {fgn}");
        }
        if let (Some(change), Some(owner)) = (g(6), g(7)) {
            assert!(change <= owner, "{plate}: {change} > {owner}");
        }
        let status = g(10).unwrap();
        match status.as_str() {
            "VRAKET" => assert!(g(9).is_some_and(|d| d >= fgn), "{plate}"),
            "AVREGISTRERT" => assert!(g(8).is_some_and(|d| d >= fgn), "{plate}"),
            "REGISTRERT" | "UTFORT" => {}
            s => panic!("status {s}"),
        }
        if let (Some(last), Some(next)) = (g(14), g(15)) {
            assert!(last < next);
        }
        let tk = g(13).unwrap();
        let grp = g(3).unwrap();
        let ok = match grp.as_str() {
            "101" | "106" | "313" => tk.starts_with("M1"),
            "301" | "310" | "311" => tk == "N1",
            "320" => tk == "N2" || tk == "N3",
            "201" => tk == "M2" || tk == "M3",
            "709" => tk.starts_with('O'),
            "601" => tk == "L3e" || tk == "L1e",
            "401" => tk == "T1",
            _ => false,
        };
        assert!(ok, "{plate}: group {grp} with {tk}");
    }
    let n = N as f64;
    let five = *shapes.get(&PlateShape::TwoLettersFiveDigits).unwrap_or(&0) as f64 / n;
    let four = *shapes.get(&PlateShape::TwoLettersFourDigits).unwrap_or(&0) as f64 / n;
    assert!((0.6..0.8).contains(&five), "AA99999 share {five}");
    assert!((0.2..0.38).contains(&four), "AA9999 share {four}");
    let vin_share = vins as f64 / n;
    assert!((0.5..0.78).contains(&vin_share), "VIN share {vin_share}");

    // Makes come from the code table; municipalities from the municipality table.
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM vehicle v LEFT JOIN code_make m ON m.code = v.tekn_merke
             WHERE m.name IS NULL OR m.name <> v.tekn_merkenavn",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM ownership o LEFT JOIN code_municipality k ON k.code = o.municipality
             WHERE k.code IS NULL OR o.postal_code IS NULL OR o.address IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);

    // Registered and deregistered vehicles have exactly one current owner; scrapped ones none.
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM vehicle v WHERE
               (SELECT count(*) FROM ownership o WHERE o.vehicle_id = v.id AND o.role = 'eier' AND o.to_date IS NULL)
               <> (CASE WHEN v.tekn_reg_status IN ('REGISTRERT', 'AVREGISTRERT') THEN 1 ELSE 0 END)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM ownership WHERE to_date IS NOT NULL AND to_date < from_date",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
    // Lessors are organisations.
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM ownership l JOIN ownership o ON o.vehicle_id = l.vehicle_id
               AND o.role = 'eier' AND o.to_date IS NULL
             WHERE l.role = 'leasingtaker' AND l.to_date IS NULL AND o.org_number IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
    let share = |role: &str| -> f64 {
        let c: i64 = conn
            .query_row(
                "SELECT count(DISTINCT vehicle_id) FROM ownership WHERE role = ?1 AND to_date IS NULL",
                [role],
                |r| r.get(0),
            )
            .unwrap();
        c as f64 / n
    };
    let (co, lessee) = (share("medeier"), share("leasingtaker"));
    assert!((0.05..0.16).contains(&co), "co-owners {co}");
    assert!((0.04..0.13).contains(&lessee), "lessees {lessee}");
    let history: i64 = conn
        .query_row(
            "SELECT count(*) FROM ownership WHERE to_date IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(history > 200, "{history}");

    let s = regdrop::register::stats(&db).unwrap();
    assert_eq!(s.vehicles, N);
    assert_eq!(s.top_makes.len(), 10);
    let text = s.to_string();
    assert!(
        text.contains("REGISTRERT") && text.contains("eier"),
        "{text}"
    );
}
