//! Property tests (proptest) through the public API, each against a small model:
//!
//! - a generated valid subscription, written by the renderer of `regdrop new-subscription`,
//!   parses and validates back to the same values;
//! - a schedule's fire times only move forward, and nothing fires between `t` and
//!   `next_after(t)`;
//! - backoff delays stay within their ceiling, the cap and the deadline, and the attempt
//!   limit and permanent errors end the retries;
//! - the receipt hash chain: after random appends and one random tampering of the SQLite
//!   file (a field edited, edited and re-hashed, a receipt deleted, two swapped) `verify`
//!   accepts exactly the chains the model says are intact and names the first broken link.
//!
//! Case counts are moderate so the suite stays fast; `PROPTEST_CASES` raises them.

use proptest::prelude::*;
use proptest::test_runner::Config;

mod backoff;
mod config_round_trip;
mod receipt_chain;
mod schedule;

/// `n` cases, or `PROPTEST_CASES`.
pub fn cases(n: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n),
        ..Config::default()
    }
}

/// Cron lines of every kind (a DST-sensitive `30 2 * * *` among them).
pub const CRONS: [&str; 7] = [
    "0 6 * * MON",
    "30 5 1 * *",
    "*/15 * * * *",
    "@daily",
    "0 0 * * 0",
    "15 4 * * 1-5",
    "30 2 * * *",
];

/// A name with TOML's awkward characters inside (quotes, backslash, non-ASCII), no
/// surrounding blanks.
pub fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[A-Za-z0-9ÆØÅæøå]([A-Za-z0-9ÆØÅæøå .,&'\"\\\\/#-]{{0,{max}}}[A-Za-z0-9])?"
    ))
    .unwrap()
}
