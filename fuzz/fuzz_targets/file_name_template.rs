//! Any text as a `[delivery] file_name` template -> rendered for a run; a rendered name
//! must be one plain, safe path component. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regdrop::core::config::template::{check_name, render, NameContext};

fuzz_target!(|data: &[u8]| {
    let Ok(template) = std::str::from_utf8(data) else { return };
    let ctx = NameContext {
        id: "acme",
        report: "owners",
        ext: "dsv.age",
        run: "2026-11-23T06:00:00".parse().unwrap(),
        period_start: Some("2026-11-16T00:00:00".parse().unwrap()),
        period_end: Some("2026-11-22T00:00:00".parse().unwrap()),
    };
    if let Ok(name) = render(template, &ctx) {
        assert!(check_name(&name).is_ok(), "render returned an unsafe name {name:?}");
        assert!(!name.contains('/') && !name.starts_with('.') && !name.trim().is_empty());
    }
});
