//! `regdrop deliver` for a person: `-q` leaves only errors, `--no-retry` makes one attempt
//! and stops with its reason, a retry wait is announced with its time and how to stop, and
//! no bar is drawn when there is nothing to count (at a terminal, through `script`'s
//! pseudo-terminal) or when stderr is not a terminal.

use crate::util::cli::{self, CustomerSub, Out};
use crate::util::daemon_env::WRONG_KEY;
use crate::util::free_port;
use std::path::Path;
use std::process::Command;

/// A config with a small register and one subscription `sub` whose server is down (a
/// loopback port nothing listens on: every attempt fails retryably at connect), with 1 s
/// retries up to `max_attempts`.
fn down_server(dir: &Path, max_attempts: u32) {
    cli::write_config(dir, "");
    let key = dir.join("id_ed25519");
    let made = cli::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    assert!(made.ok(), "{}", made.text());
    let rec = cli::age_keygen(&dir.join("age.key"));
    std::fs::write(
        dir.join("subs/sub.toml"),
        CustomerSub {
            port: free_port(),
            user: "nobody",
            host_key: WRONG_KEY,
            key: &key,
            remote: "/upload",
            recipient: &rec,
            extract_extra: "",
            max_attempts,
            extra: "",
        }
        .toml(),
    )
    .unwrap();
    let out = cli::run(cli::regdrop_in(dir).args(["register", "generate", "--vehicles", "200"]));
    assert!(out.ok(), "{}", out.text());
}

/// `regdrop ARGS` on `dir`'s config with the default log level (no $REGDROP_LOG).
fn regdrop(dir: &Path, args: &[&str]) -> Out {
    let mut c = cli::regdrop_in(dir);
    c.env_remove("REGDROP_LOG").args(args);
    cli::run(&mut c)
}

fn attempts(dir: &Path) -> Vec<regdrop::store::Attempt> {
    let store = regdrop::store::Store::open(dir.join("state/regdrop.sqlite")).unwrap();
    let runs = store
        .list_runs(&regdrop::store::RunFilter::default())
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    store.attempts(&runs[0].id).unwrap()
}

#[test]
fn quiet_leaves_only_errors_and_no_output_is_a_bar_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    down_server(dir.path(), 1);
    // Without -q (stderr is a pipe here, so the log lines are the record): INFO lines.
    let loud = regdrop(
        dir.path(),
        &["deliver", "sub", "--at", "2026-11-02T05:00:00Z"],
    );
    assert_eq!(loud.code, 1, "{}", loud.text());
    assert!(loud.stderr.contains(" INFO "), "{}", loud.stderr);
    // Nothing for a terminal: no escape sequences, no carriage returns, no bar.
    assert!(
        !loud.stderr.contains('\u{1b}') && !loud.stderr.contains('\r'),
        "{:?}",
        loud.stderr
    );
    assert!(!loud.stderr.contains("rows ("), "{}", loud.stderr);

    let quiet = regdrop(
        dir.path(),
        &["-q", "deliver", "sub", "--at", "2026-11-03T05:00:00Z"],
    );
    assert_eq!(quiet.code, 1, "{}", quiet.text());
    assert!(!quiet.stderr.contains(" INFO "), "{}", quiet.stderr);
    assert!(!quiet.stderr.contains(" WARN "), "{}", quiet.stderr);
    // No progress lines (`RUN: stage`), only the outcome and its reason.
    let lines: Vec<&str> = quiet.stderr.lines().collect();
    assert!(
        lines.iter().all(|l| !l.starts_with("sub-")),
        "{}",
        quiet.stderr
    );
    assert!(
        quiet.stderr.contains("failed") && quiet.stderr.contains("connect"),
        "{}",
        quiet.stderr
    );
}

#[test]
fn no_retry_makes_one_attempt_and_exits_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    // The policy would try 5 times.
    down_server(dir.path(), 5);
    let out = regdrop(
        dir.path(),
        &[
            "deliver",
            "sub",
            "--no-retry",
            "--at",
            "2026-11-02T05:00:00Z",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.text());
    let a = attempts(dir.path());
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        a[0].error_class.map(|c| c.as_str()),
        Some("connect"),
        "{a:?}"
    );
    assert!(
        out.stderr
            .contains("failed after its one attempt (--no-retry)"),
        "{}",
        out.stderr
    );
    // The reason is the attempt's own.
    let reason = a[0].message.clone().unwrap_or_default();
    assert!(
        !reason.is_empty() && out.stderr.contains(&reason),
        "{reason}\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("retrying at"), "{}", out.stderr);
}

#[test]
fn a_retry_wait_is_announced_with_its_time_and_how_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    down_server(dir.path(), 2);
    let out = regdrop(
        dir.path(),
        &["deliver", "sub", "--at", "2026-11-02T05:00:00Z"],
    );
    assert_eq!(out.code, 1, "{}", out.text());
    assert_eq!(attempts(dir.path()).len(), 2);
    let wait = out
        .stderr
        .lines()
        .find(|l| l.contains("retrying at "))
        .unwrap_or_else(|| panic!("no retry line:\n{}", out.stderr));
    let time = wait.split("retrying at ").nth(1).unwrap();
    assert!(
        chrono::NaiveTime::parse_from_str(&time[..8], "%H:%M:%S").is_ok(),
        "{wait}"
    );
    assert!(
        wait.contains("Ctrl-C stops") && wait.contains("--no-retry"),
        "{wait}"
    );
}

/// `script` (util-linux) runs a command on a pseudo-terminal and copies everything it
/// drew to our stdout.
fn on_a_terminal(dir: &Path, args: &str) -> String {
    let line = format!(
        "{} --config {} {args}",
        env!("CARGO_BIN_EXE_regdrop"),
        dir.join("regdrop.toml").display()
    );
    let out = cli::run(
        Command::new("script")
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .env_remove("REGDROP_LOG")
            .env("TERM", "xterm"),
    );
    assert_ne!(out.code, -1, "script failed: {}", out.text());
    out.stdout
}

#[test]
fn at_a_terminal_no_bar_is_drawn_when_there_is_nothing_to_count() {
    let dir = tempfile::tempdir().unwrap();
    down_server(dir.path(), 1);
    let screen = on_a_terminal(dir.path(), "deliver sub --at 2026-11-02T05:00:00Z");
    assert!(screen.contains("failed"), "{screen:?}");
    for empty in ["0/0", "0 B/0 B"] {
        assert!(!screen.contains(empty), "a bar at {empty}: {screen:?}");
    }
    // At a terminal the person gets the command's own lines, not INFO log lines too.
    assert!(!screen.contains(" INFO "), "{screen:?}");
}
