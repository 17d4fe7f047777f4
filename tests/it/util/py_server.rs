//! Starting one of the tests' Python servers (`tests/data/*.py`) on a free loopback port:
//! the script prints `READY <port>` once listening and exits 98 when the port is taken
//! (then another port is tried) or 97 when its Python package is missing (then the test
//! fails with the install line). Shared by [`super::smtp`], [`super::http_sink`] and
//! [`super::asyncssh`].

use super::launch::Launch;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PYTHON: &str = "python3";

/// `tests/data/NAME`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Runs `python3 tests/data/SCRIPT --port PORT ARGS...` (stderr to `log`) until it prints
/// `READY <port>`; `missing` is the install hint for exit 97.
pub fn start(
    name: &str,
    script_name: &str,
    args: &[std::ffi::OsString],
    log: &Path,
    missing: &str,
) -> (Child, u16) {
    let first_line = std::cell::RefCell::new(None::<std::sync::mpsc::Receiver<String>>);
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let launch = Launch {
        name,
        ready_means: "print READY",
        within: Duration::from_secs(20),
        log: &log_text,
        port_taken: &|status, text| match status.code() {
            Some(98) => true,
            Some(97) => panic!("{name}: {missing}\n{text}"),
            _ => false,
        },
    };
    launch.start(
        |port| {
            let logf = std::fs::File::create(log).unwrap();
            let mut child = Command::new(PYTHON)
                .arg(script(script_name))
                .arg("--port")
                .arg(port.to_string())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(logf)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {PYTHON}: {e}; run `apt-get install -y python3`")
                });
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            *first_line.borrow_mut() = Some(rx);
            child
        },
        |_, port| {
            let line = first_line
                .borrow()
                .as_ref()
                .and_then(|rx| rx.try_recv().ok());
            line.is_some_and(|l| l.trim() == format!("READY {port}"))
        },
    )
}
