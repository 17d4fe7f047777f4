//! The inputs of the `cargo fuzz` targets (fuzz/), covered in the normal suite by seeded
//! random and mutated inputs: file-name templates and the `¤` import parser (subscription
//! TOML: [`crate::config::mutated_files`]). Nothing may panic; rendered names are always safe.

use rand::{Rng, SeedableRng};
use regdrop::core::config::template::{check_name, render, NameContext};
use regdrop::register::import::{import, ImportOptions};

const PIECES: &[&str] = &[
    "{id}", "{report}", "{ext}", "{run}", "{run:%Y%m%d}", "{run:%}", "{run:%Q}", "{run:%Y/%m}",
    "{period_start:%Y}", "{period_end}", "{", "}", "{{", "}}", "{nope}", "{id:x}", ":", "%",
    "/", "\\", ".", "..", " ", "\t", "\u{0}", "¤", "æ", "🚗", "a", "_", "-", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

#[test]
fn random_file_name_templates_never_panic_and_render_only_safe_names() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
    let ctx = NameContext {
        id: "acme",
        report: "owners",
        ext: "dsv.age",
        run: "2026-11-23T06:00:00".parse().unwrap(),
        period_start: Some("2026-11-16T00:00:00".parse().unwrap()),
        period_end: None,
    };
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let t: String = (0..rng.gen_range(0..8))
            .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
            .collect();
        match std::panic::catch_unwind(|| render(&t, &ctx)) {
            Ok(Ok(name)) => {
                ok += 1;
                assert!(check_name(&name).is_ok(), "{t:?} -> {name:?}");
                assert!(!name.contains('/') && !name.starts_with('.') && name.trim() == name);
            }
            Ok(Err(e)) => {
                refused += 1;
                assert!(!e.is_empty());
            }
            Err(_) => panic!("render panicked on {t:?}"),
        }
    }
    assert!(ok > 0 && refused > 0, "{ok} {refused}");
}

#[test]
fn mutated_dsv_dumps_never_panic_the_import() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // A small valid dump: the fields regdrop knows, a few rows, then mutated.
    let header = "TEKN_KJM¤TEKN_UNR¤TEKN_MERKENAVN¤TEKN_REG_F_G¤TEKN_DRIVST";
    let rows = [
        "AB12345¤WVWZZZ1JZXW000001¤VOLKSWAGEN¤20200101¤1,5",
        "EL10000¤5YJ3E7EB0KF000001¤TESLA¤20191231¤5",
    ];
    let good = format!("{header}\n{}\n", rows.join("\n")).into_bytes();
    let _ = root;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(12);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..60 {
        let mut data = good.clone();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..=data.len());
            match rng.gen_range(0..5) {
                0 => data.truncate(at),
                1 => data.insert(at, [0xa4, 0xc2, b'\n', b'\r', 0xff, 0][rng.gen_range(0..6)]),
                2 => {
                    if at < data.len() {
                        data.remove(at);
                    }
                }
                3 => data.splice(at..at, "¤¤¤".bytes()).for_each(drop),
                _ => data
                    .splice(at..at, std::iter::repeat_n(b'9', rng.gen_range(1..300)))
                    .for_each(drop),
            }
        }
        let dump = dir.path().join(format!("d{i}.txt"));
        std::fs::write(&dump, &data).unwrap();
        let db = dir.path().join(format!("r{i}.sqlite"));
        let r =
            std::panic::catch_unwind(|| import(&db, &dump, &ImportOptions::default(), &mut |_| {}));
        match r {
            Ok(Ok(s)) => assert!(s.rejected.iter().all(|r| r.line >= 2), "{s:?}"),
            Ok(Err(e)) => assert!(!e.to_string().is_empty()),
            Err(_) => panic!("import panicked on {:?}", String::from_utf8_lossy(&data)),
        }
    }
}
