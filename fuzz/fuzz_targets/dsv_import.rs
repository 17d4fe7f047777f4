//! Any bytes as the authority's `¤` dump -> `register import` into a fresh register. Rows
//! it cannot read are rejected with a line number, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regdrop::register::import::{import, ImportOptions};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.txt");
    std::fs::write(&dump, data).unwrap();
    let db = dir.path().join("register.sqlite");
    if let Ok(summary) = import(&db, &dump, &ImportOptions::default(), &mut |_| {}) {
        for r in &summary.rejected {
            assert!(r.line >= 2, "a rejected row names its line: {r:?}");
        }
    }
});
