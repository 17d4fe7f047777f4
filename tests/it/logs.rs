//! Logs and metrics as the ecosystem reads them, from the real `regdrop` binary: syslog
//! priorities on every line when stderr is the journal's stream ($JOURNAL_STREAM), plain
//! field values, flat JSON objects, `regdrop_build_info` and the process series on the
//! metrics endpoint.

use crate::util::daemon_env::{sub_toml, wait_for_or, Env, WRONG_KEY};
use crate::util::free_port;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_regdrop");

/// `dev:ino` of `file`, as systemd writes $JOURNAL_STREAM for the stream it hands a service.
fn dev_ino(file: &Path) -> String {
    let m = std::fs::metadata(file).unwrap();
    format!("{}:{}", m.dev(), m.ino())
}

/// Runs `regdrop --config CONFIG ARGS` to its end with stderr into `log` (created first,
/// so $JOURNAL_STREAM can name it: `journal` true sets it to that file, `Some(other)` to
/// another file's); returns the exit code and what it logged.
fn run_logged(config: &Path, args: &[&str], log: &Path, journal: Option<&str>) -> (i32, String) {
    let err = std::fs::File::create(log).unwrap();
    let mut c = Command::new(BIN);
    c.arg("--config")
        .arg(config)
        .args(args)
        .env("REGDROP_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET");
    if let Some(j) = journal {
        c.env("JOURNAL_STREAM", j);
    }
    let st = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .status()
        .unwrap();
    (
        st.code().unwrap_or(-1),
        std::fs::read_to_string(log).unwrap(),
    )
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A daemon config `regdrop run` refuses (exit 78) after its start line.
fn invalid_config(dir: &Path) -> std::path::PathBuf {
    crate::util::cli::write_config(dir, "[daemon]\nmax_concurrent = 0\n");
    dir.join("regdrop.toml")
}

#[test]
fn in_the_journal_every_line_carries_its_priority_and_elsewhere_none() {
    let dir = tempfile::tempdir().unwrap();
    let config = invalid_config(dir.path());
    let log = dir.path().join("stderr.log");
    // Create the file first so its inode is known; run_logged truncates, not replaces.
    std::fs::write(&log, "").unwrap();
    let stream = dev_ino(&log);
    let (code, text) = run_logged(&config, &["run"], &log, Some(&stream));
    assert_eq!(code, 78, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("regdrop daemon starting.")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<3>error: ") && l.contains("daemon.max_concurrent")),
        "{text}"
    );
    assert!(lines.iter().all(|l| l.starts_with('<')), "{text}");
    // The journal stamps lines itself: no timestamp of our own.
    assert!(!text.contains("Z  INFO"), "{text}");

    // Not the journal: the variable names another file, or is absent.
    let other = dir.path().join("other");
    std::fs::write(&other, "").unwrap();
    for j in [Some(dev_ino(&other)), None] {
        let (code, text) = run_logged(&config, &["run"], &log, j.as_deref());
        assert_eq!(code, 78, "{text}");
        assert!(!text.contains("<6>") && !text.contains("<3>"), "{text}");
        assert!(
            text.contains("\nerror: ") || text.starts_with("error: "),
            "{text}"
        );
    }
}

#[test]
fn json_log_lines_are_flat_objects() {
    let dir = tempfile::tempdir().unwrap();
    let config = invalid_config(dir.path());
    let log = dir.path().join("stderr.log");
    let (code, text) = run_logged(&config, &["--log-format", "json", "run"], &log, None);
    assert_eq!(code, 78, "{text}");
    let start: serde_json::Value = serde_json::from_str(
        text.lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON line:\n{text}")),
    )
    .unwrap();
    assert_eq!(start["message"], "regdrop daemon starting.", "{start}");
    assert_eq!(start["level"], "INFO", "{start}");
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"), "{start}");
    assert!(
        start["commit"].as_str().is_some_and(|c| !c.is_empty()),
        "{start}"
    );
    assert_eq!(
        start["config"],
        config.display().to_string(),
        "the fields sit at the top level: {start}"
    );
    assert!(start.get("fields").is_none(), "{start}");
    assert!(start.get("span").is_none(), "{start}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_exports_build_info_and_process_metrics_and_logs_plain_values() {
    let metrics = free_port();
    let env = Env::new(10, &format!("metrics_listen = \"127.0.0.1:{metrics}\"\n"));
    let key = env.path().join("nokey");
    let remote = env.path().join("remote");
    // One valid subscription that never fires while the test runs, one broken file.
    env.write_sub(
        "plain",
        &sub_toml(
            "plain",
            "0 6 1 1 *",
            "skip",
            free_port(),
            WRONG_KEY,
            &key,
            &remote,
            "",
        ),
    );
    env.write_sub("broken", "id = \"broken\"\ncustomr = \"typo\"\n");
    let log = env.path().join("daemon.log");
    std::fs::write(&log, "").unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(env.config())
        .arg("run")
        .env("REGDROP_LOG", "info")
        .env("JOURNAL_STREAM", dev_ino(&log))
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    let body = wait_for_or(
        30,
        "the metrics endpoint with the process series",
        || http_get(metrics, "/metrics").filter(|b| b.contains("process_start_time_seconds")),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    )
    .await;
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert!(
        body.contains(&format!(
            "regdrop_build_info{{version=\"{}\",commit=\"{commit}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    for series in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let value: f64 = body
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series}:\n{body}"));
        assert!(value >= 0.0, "{series} {value}");
    }
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let code = wait_for_or(
        30,
        "the daemon to stop",
        || child.try_wait().unwrap(),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    )
    .await;
    assert_eq!(code.code(), Some(0));

    let text = std::fs::read_to_string(&log).unwrap();
    // Priorities: the start line is info, the broken file a warning.
    assert!(
        text.lines()
            .any(|l| l.starts_with("<6>") && l.contains("regdrop daemon starting.")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("<4>") && l.contains("Subscription file is invalid.")),
        "{text}"
    );
    // Plain values: the next fire time as a time, the signal by name; no Rust debug text.
    let loaded = text
        .lines()
        .find(|l| l.contains("Subscription loaded."))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(loaded.contains(" next=20"), "{loaded}");
    assert!(
        text.lines()
            .any(|l| l.contains("Signal received.") && l.contains("intent=shutdown")),
        "{text}"
    );
    for debug in ["Some(", "None", "\\\"", "intent=Shutdown"] {
        assert!(!text.contains(debug), "`{debug}` in the log:\n{text}");
    }
}
