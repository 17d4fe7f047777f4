//! Logs and metrics as the ecosystem reads them, from the real `regdrop` binary: syslog
//! priorities on every line when stderr is the journal's stream ($JOURNAL_STREAM), plain
//! field values, flat JSON objects, `regdrop_build_info` and the process series on the
//! metrics endpoint; the alert rules and the Grafana dashboard in `systemd/` pass
//! `promtool` and query only series the daemon exports.

use crate::util::daemon_env::{sub_toml, wait_for_or, Env, WRONG_KEY};
use crate::util::free_port;
use crate::util::http_get;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_regdrop");

/// The process series the daemon exports (metrics-process); the daemon test below finds
/// each on the live endpoint, the dashboard test allows only these beside regdrop's own.
const PROCESS_SERIES: [&str; 8] = [
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_threads",
];

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
    for series in PROCESS_SERIES {
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

/// Every `regdrop_*` series name src/telemetry.rs records or describes.
fn regdrop_series() -> Vec<String> {
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/telemetry.rs"))
            .unwrap();
    let mut names: Vec<String> = src
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("regdrop_") && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(String::from)
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 8, "{names:?}");
    names
}

/// The series names a PromQL expression queries (`regdrop_*` and `process_*`; a
/// histogram's `_bucket`/`_sum`/`_count` counted as the histogram).
fn queried(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("regdrop_") || w.starts_with("process_"))
        .map(|w| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| w.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
                .unwrap_or(w)
                .to_string()
        })
        .collect()
}

fn promtool(args: &[&str]) -> crate::util::cli::Out {
    let mut c = Command::new("promtool");
    c.args(args);
    let out = c.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("promtool: {e} (apt-get install prometheus; scripts/test installs it)")
    });
    crate::util::cli::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_alert_rules_pass_promtool_and_query_only_exported_series() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/regdrop.rules.yml");
    let out = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(out.code == 0, "{}", out.text());
    let text = std::fs::read_to_string(&rules).unwrap();
    let known = regdrop_series();
    let mut alerts = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(a) = line.strip_prefix("- alert: ") {
            alerts.push(a.to_string());
        }
        if let Some(expr) = line.strip_prefix("expr: ") {
            for name in queried(expr) {
                assert!(
                    known.contains(&name) || PROCESS_SERIES.contains(&name.as_str()),
                    "the rules query `{name}`, which the daemon does not export ({known:?})"
                );
            }
        }
    }
    // The alerts the README promises.
    for a in [
        "RegdropRunNeedsAttention",
        "RegdropNoDeliveryFor26h",
        "RegdropDaemonDown",
        "RegdropStateStoreUnreachable",
        "RegdropSubscriptionFilesInvalid",
    ] {
        assert!(alerts.iter().any(|x| x == a), "no alert {a}: {alerts:?}");
    }
}

#[test]
fn the_dashboard_queries_only_exported_series_in_valid_promql() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/regdrop.dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let known = regdrop_series();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut seen = std::collections::BTreeSet::new();
    for e in &exprs {
        for name in queried(e) {
            assert!(
                known.contains(&name) || PROCESS_SERIES.contains(&name.as_str()),
                "the dashboard queries `{name}`, which the daemon does not export ({known:?})"
            );
            seen.insert(name);
        }
    }
    // Every series regdrop exports has a panel.
    for k in &known {
        assert!(seen.contains(k), "no panel shows {k}");
    }
    // The expressions parse: promtool checks them as recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        rules += &format!(
            "      - record: dashboard:panel{i}\n        expr: {}\n",
            serde_json::to_string(e).unwrap()
        );
    }
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(&file, rules).unwrap();
    let out = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(out.code == 0, "{}", out.text());
}
