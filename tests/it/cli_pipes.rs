//! The printing commands end quietly when the reader goes away (`regdrop status | head`),
//! as Unix tools do: no panic, no "Broken pipe" error.

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
fn status_fields_and_next_end_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    for args in [&["status"][..], &["fields"], &["next"]] {
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
