//! Scripting regdrop, through the built binary against a real sshd: `--json` on `next`,
//! `agenda`, `status`, `receipts list`, `probe` and `hostkey scan` (one document, stable
//! names, UTC beside local times), `agenda`'s sorted list with time left and the last
//! result, and the documented exit codes (2 for usage, 78 for config).

use crate::util::cli::{regdrop, regdrop_in, run, Out};
use crate::util::daemon_env::{fast_retry, sub_toml, Env};
use crate::util::sshd::Sshd;

fn json(out: &Out) -> serde_json::Value {
    assert!(out.ok(), "{}", out.text());
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

/// A local RFC 3339 time with an offset, and the UTC one with `Z`, of the same instant.
fn assert_time(t: &serde_json::Value, utc: &str, local: &str) {
    assert_eq!(t["utc"], utc, "{t}");
    assert_eq!(t["local"], local, "{t}");
}

const AFTER: &str = "2026-12-02T00:00:00Z";

#[test]
fn json_documents_and_the_agenda_of_a_delivered_subscription() {
    let sshd = Sshd::start();
    let env = Env::new(20, "");
    let remote = sshd.remote_dir("ops");
    let sub = |id: &str, cron: &str| {
        sub_toml(
            id,
            cron,
            "skip",
            sshd.port,
            &sshd.host_pub,
            &sshd.user_key,
            &remote,
            &fast_retry(2),
        )
    };
    env.write_sub("early", &sub("early", "30 5 * * *"));
    env.write_sub("late", &sub("late", "0 6 * * *"));
    let cli = || {
        let mut c = regdrop_in(env.path());
        c.env("TZ", "Europe/Oslo");
        c
    };
    let delivered = run(cli().args(["deliver", "late", "--at", "2026-12-01T06:00:00Z"]));
    assert!(delivered.ok(), "{}", delivered.text());
    agenda_and_next(&cli);
    receipts_and_status(&cli, &remote);
    probe_and_scan(&cli, &sshd);
}

/// agenda: one list sorted by time, time left, local beside UTC, the last result; next.
fn agenda_and_next(cli: &dyn Fn() -> std::process::Command) {
    let text = run(cli().args(["agenda", "--after", AFTER]));
    assert!(text.ok(), "{}", text.text());
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NEXT (Europe/Oslo)"),
        "{}",
        text.stdout
    );
    assert!(
        lines[1].starts_with("2026-12-02 06:30 CET   5h 30min"),
        "{}",
        text.stdout
    );
    assert!(
        lines[1].contains("2026-12-02T05:30:00Z  early"),
        "{}",
        text.stdout
    );
    assert!(
        lines[2].starts_with("2026-12-02 07:00 CET   6h 0min"),
        "{}",
        text.stdout
    );
    assert!(
        lines[2].contains("late") && lines[2].ends_with("delivered"),
        "{}",
        text.stdout
    );
    let doc =
        json(&run(cli().args([
            "agenda", "--json", "--after", AFTER, "--within", "2d",
        ])));
    assert_eq!(doc["local_zone"], "Europe/Oslo");
    assert_eq!(doc["within_secs"], 2 * 86_400);
    let fires = doc["fires"].as_array().unwrap();
    let order: Vec<&str> = fires
        .iter()
        .map(|f| f["subscription"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["early", "late", "early", "late"], "{doc}");
    assert_time(
        &fires[0]["at"],
        "2026-12-02T05:30:00Z",
        "2026-12-02T06:30:00+01:00",
    );
    assert_eq!(fires[0]["left_secs"], 5 * 3600 + 1800);
    assert_eq!(fires[0]["last_run"], serde_json::Value::Null);
    assert_eq!(fires[1]["last_run"]["state"], "delivered");
    assert_eq!(fires[1]["last_run"]["id"], "late-20261201T060000Z");
    assert_eq!(doc["truncated"], false);
    let doc = json(&run(cli().args([
        "agenda", "--json", "--after", AFTER, "--within", "2d", "--count", "3",
    ])));
    assert_eq!(doc["fires"].as_array().unwrap().len(), 3);
    assert_eq!(doc["truncated"], true);

    // next: the subscription's zone, UTC and the machine's local time.
    let doc =
        json(&run(cli().args([
            "next", "late", "--json", "--count", "2", "--after", AFTER,
        ])));
    let s = &doc["subscriptions"][0];
    assert_eq!(
        (
            s["id"].as_str(),
            s["schedule"].as_str(),
            s["timezone"].as_str()
        ),
        (Some("late"), Some("0 6 * * *"), Some("UTC"))
    );
    assert_eq!(s["fires"][1]["utc"], "2026-12-03T06:00:00Z");
    assert_eq!(s["fires"][1]["local"], "2026-12-03T07:00:00+01:00");
    assert_eq!(s["fires"][1]["schedule_local"], "2026-12-03T06:00:00+00:00");
    let text = run(cli().args(["next", "late", "--count", "1", "--after", AFTER]));
    assert!(
        text.stdout
            .contains("2026-12-02T06:00:00Z   local 2026-12-02 07:00 CET"),
        "{}",
        text.stdout
    );
}

fn receipts_and_status(cli: &dyn Fn() -> std::process::Command, remote: &std::path::Path) {
    let doc = json(&run(cli().args(["receipts", "list", "--json"])));
    assert_eq!(doc["count"], 1);
    let r = &doc["receipts"][0];
    assert_eq!(r["subscription"], "late");
    assert_eq!(r["run_id"], "late-20261201T060000Z");
    assert_eq!(r["rows"], 20);
    assert!(
        r["remote_path"]
            .as_str()
            .unwrap()
            .starts_with(remote.to_str().unwrap()),
        "{r}"
    );
    let at = r["delivered_at"]["utc"].as_str().unwrap();
    let local =
        chrono::DateTime::parse_from_rfc3339(r["delivered_at"]["local"].as_str().unwrap()).unwrap();
    assert_eq!(
        local
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        at
    );
    assert_eq!(r["ciphertext_sha256"].as_str().unwrap().len(), 64);

    // status: the same times, and exit 0 with nothing to do.
    let doc = json(&run(cli().args(["status", "--json"])));
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["subscriptions"][1]["last_run"]["state"], "delivered");
    assert_time(
        &doc["subscriptions"][1]["last_run"]["scheduled_at"],
        "2026-12-01T06:00:00Z",
        "2026-12-01T07:00:00+01:00",
    );
}

/// probe and hostkey scan talk to the server.
fn probe_and_scan(cli: &dyn Fn() -> std::process::Command, sshd: &Sshd) {
    let text = run(cli().args(["probe", "late"]));
    assert!(text.ok(), "{}", text.text());
    for line in [
        "host:",
        "login:",
        "folder:",
        "test upload:",
        "strategy:",
        "commit:",
    ] {
        assert!(text.stdout.contains(line), "{line}: {}", text.stdout);
    }
    assert!(text.stdout.contains("exists, writable"), "{}", text.stdout);
    let doc = json(&run(cli().args(["probe", "late", "--json"])));
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["port"], sshd.port);
    assert!(
        doc["host_key_sha256"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:"),
        "{doc}"
    );
    assert_eq!(doc["folder"]["writable"], true);
    assert_eq!(doc["server"]["family"], "openssh", "{doc}");
    assert!(doc["commit"]["replace"]["path"].is_string(), "{doc}");
    let doc = json(&run(regdrop().args([
        "hostkey",
        "scan",
        &format!("127.0.0.1:{}", sshd.port),
        "--json",
    ])));
    assert_eq!(doc["port"], sshd.port);
    let keys = doc["keys"].as_array().unwrap();
    let host_key_type = sshd.host_pub.split_whitespace().next().unwrap();
    assert!(
        keys.iter().any(|k| k["type"] == host_key_type
            && sshd.host_pub.starts_with(k["line"].as_str().unwrap())),
        "{doc} vs {}",
        sshd.host_pub
    );
    assert!(keys
        .iter()
        .all(|k| k["fingerprint"].as_str().unwrap().starts_with("SHA256:")));
}

#[test]
fn exit_codes_are_the_documented_ones() {
    let env = Env::new(1, "");
    // 2: the command line is wrong (clap), or a flag's value cannot be used.
    let out = run(regdrop().args(["status", "--no-such-flag"]));
    assert_eq!(out.code, 2, "{}", out.text());
    let out = run(regdrop_in(env.path()).args(["resolve", "some-run"]));
    assert_eq!(out.code, 2, "--reason is required: {}", out.text());
    let out = run(regdrop_in(env.path()).args(["agenda", "--within", "5 fortnights"]));
    assert_eq!(out.code, 2, "{}", out.text());
    assert!(out.stderr.contains("--within"), "{}", out.stderr);
    // 0 on a quiet store, 1 for a run that does not exist.
    assert_eq!(run(regdrop_in(env.path()).arg("status")).code, 0);
    std::fs::create_dir_all(env.path().join("state")).unwrap();
    env.store();
    let out =
        run(regdrop_in(env.path()).args(["resolve", "nope-20261201T060000Z", "--reason", "x"]));
    assert_eq!(out.code, 1, "{}", out.text());
    // 78: the daemon config is invalid.
    std::fs::write(env.config(), "register = 5\n").unwrap();
    for cmd in [
        &["status"][..],
        &["agenda"],
        &["next"],
        &["receipts", "list"],
    ] {
        let out = run(regdrop_in(env.path()).args(cmd));
        assert_eq!(out.code, 78, "{cmd:?}: {}", out.text());
    }
}
