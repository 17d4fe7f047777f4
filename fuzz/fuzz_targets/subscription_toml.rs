//! Any bytes as a subscription file -> parsed and validated, as `check` and the daemon do;
//! an accepted file's schedule and retry numbers are then used as the daemon uses them.
//! Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regdrop::loader::{daemon_from_str, subscription_from_str};
use regdrop::core::retry::ErrorClass;
use std::path::Path;
use std::sync::OnceLock;

fn inherited() -> &'static regdrop::core::config::validate::Inherited {
    static I: OnceLock<regdrop::core::config::validate::Inherited> = OnceLock::new();
    I.get_or_init(|| {
        let text = include_str!("../../config.example.toml");
        daemon_from_str(Path::new("regdrop.toml"), text, Path::new("."))
            .expect("the example daemon file is valid")
            .inherited
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(sub) = subscription_from_str(Path::new("fuzz.toml"), text, inherited()) {
        let now: chrono::DateTime<chrono::Utc> = "2026-11-25T05:00:00Z".parse().unwrap();
        let _ = sub.schedule.upcoming(now, 3);
        let _ = sub.schedule.last_missed(now - chrono::Duration::days(400), now);
        for a in 1..=sub.retry.max_attempts.min(200) {
            let _ = sub.retry.next(ErrorClass::Retryable, a, sub.retry.deadline, 0.999);
        }
    }
});
