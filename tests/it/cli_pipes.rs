//! The printing commands end quietly when the reader goes away (`regdrop status | head`),
//! as Unix tools do: no panic, no "Broken pipe" error. Commands that only read end by
//! SIGPIPE; those that talk to a server keep SIGPIPE ignored and end with 141.

use crate::util::cli::{regdrop_in, write_config};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

/// Runs `args` with its standard output closed before it writes anything.
fn run_with_closed_stdout(
    dir: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, Option<i32>, String) {
    let mut child = regdrop_in(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start regdrop");
    // The reader is gone at once: every write of the command meets a closed pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for regdrop");
    (
        out.status.code(),
        out.status.signal(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn reading_commands_end_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["fields"],
        &["next"],
        &["next", "--json"],
        &["agenda"],
        &["agenda", "--json"],
        &["receipts", "list"],
        &["receipts", "list", "--json"],
        &["receipts", "verify"],
        &["receipts", "export"],
        &["man"],
        &["completions", "bash"],
        &["init", "--dry-run", "--root", "staging"],
    ] {
        let (code, signal, stderr) = run_with_closed_stdout(dir.path(), args);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert!(
            signal == Some(libc::SIGPIPE) || code == Some(0),
            "{args:?} ends by SIGPIPE or succeeds, got code {code:?} signal {signal:?}: {stderr}"
        );
    }
}

#[test]
fn commands_that_talk_to_a_server_end_quietly_with_141_on_a_closed_pipe() {
    let sshd = crate::util::sshd::Sshd::start();
    let env = crate::util::daemon_env::Env::new(5, "");
    let remote = sshd.remote_dir("pipes");
    env.write_sub(
        "s",
        &crate::util::daemon_env::sshd_sub(
            "s",
            "0 6 * * *",
            "skip",
            &sshd,
            sshd.port,
            &remote,
            "base_secs = 1",
        ),
    );
    let scan = format!("127.0.0.1:{}", sshd.port);
    for args in [
        &["hostkey", "scan", scan.as_str()][..],
        &["hostkey", "scan", scan.as_str(), "--json"],
        &["probe", "s"],
        &["probe", "s", "--json"],
    ] {
        let (code, signal, stderr) = run_with_closed_stdout(env.path(), args);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert_eq!((code, signal), (Some(141), None), "{args:?}: {stderr}");
    }
}
