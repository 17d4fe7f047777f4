//! `regdrop new-subscription` with flags against a real OpenSSH sshd writes a
//! subscription file that `regdrop check` accepts, pins the sshd's own host key, keeps the
//! contact details, comments every choice, and delivers; without a terminal, missing flags
//! are an error naming each of them. Its questions (answers piped to stdin) re-ask a wrong
//! answer, ask for the login, schedule and period, and pin a scanned key only after a yes;
//! `--host-key` onboards without the server.

use crate::util::{self, sshd::Sshd};
use std::path::Path;

fn regdrop(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = util::cli::run(util::cli::regdrop_in(dir).args(args));
    (out.code, out.stdout, out.stderr)
}

fn config(d: &Path) {
    util::cli::write_config(d, "secrets_dir = \"secrets\"\n");
}

#[test]
#[allow(clippy::too_many_lines)] // one operator story, step by step, from flags to a delivered file
fn new_subscription_with_flags_passes_check_pins_the_servers_key_and_delivers() {
    let sshd = Sshd::start();
    let remote = sshd.remote_dir("inn");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d);
    let identity = d.join("age.key");
    let rec = util::cli::age_keygen(&identity);
    let host = format!("127.0.0.1:{}", sshd.port);
    let user = util::sshd::current_user();
    let (code, out, err) = regdrop(
        d,
        &[
            "new-subscription",
            "--id",
            "kunde-elbil",
            "--customer",
            "Kunde \"Elbil\" AS",
            "--org-number",
            "923609016",
            "--case-number",
            "26/812345",
            "--invoice-reference",
            "FAKT-9",
            "--report",
            "technical_open",
            "--fuel",
            "5",
            "--first-registration-year",
            "2020..",
            "--code-tables",
            "make,fuel",
            "--email",
            "ola.nordmann@kunde.example",
            "--mobile",
            "+47 912 34 567",
            "--host",
            &host,
            "--username",
            &user,
            "--remote-dir",
            remote.to_str().unwrap(),
            "--recipient",
            rec.trim(),
            "--key-file",
            sshd.user_key.to_str().unwrap(),
            // The fingerprints are checked below; a script says yes up front.
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let file = d.join("subs/kunde-elbil.toml");
    assert!(out.contains(&format!("wrote {}", file.display())), "{out}");
    assert!(
        out.contains(&sshd.host_fingerprint()),
        "prints the fingerprint to check: {out}"
    );
    // The secret goes to the service user (systemd/README.md): regdrop:regdrop, 0600.
    assert!(
        out.contains(&format!(
            "sudo install -o regdrop -g regdrop -m 0600 KEYFILE {}",
            sshd.user_key.display()
        )),
        "{out}"
    );

    // `regdrop check` accepts it.
    let (code, out, err) = regdrop(d, &["check", "--no-environment"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 subscriptions valid"), "{out}");

    // The pinned key is the sshd's host key (type and key data; the comment is not part).
    let text = std::fs::read_to_string(&file).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let pinned: Vec<&str> = v["target"]["host_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let want: Vec<&str> = sshd.host_pub.split_whitespace().take(2).collect();
    assert_eq!(pinned.len(), 1, "{pinned:?}");
    assert_eq!(
        pinned[0].split_whitespace().take(2).collect::<Vec<_>>(),
        want
    );
    assert_eq!(v["target"]["port"].as_integer(), Some(sshd.port as i64));
    assert_eq!(
        v["contact"]["email"].as_str(),
        Some("ola.nordmann@kunde.example")
    );
    assert_eq!(v["contact"]["mobile"].as_str(), Some("+4791234567"));
    assert_eq!(v["case_number"].as_str(), Some("26/812345"));
    assert_eq!(v["customer"].as_str(), Some("Kunde \"Elbil\" AS"));
    assert_eq!(
        v["extract"]["filter"]["fuel"].as_array().unwrap()[0].as_str(),
        Some("5")
    );
    // A comment line for every choice: each key line is preceded by a comment somewhere above
    // in its section, and the secret is a file reference.
    for key in [
        "id =",
        "customer =",
        "case_number =",
        "cron =",
        "host =",
        "username =",
        "host_keys =",
        "auth =",
        "remote_dir =",
        "report =",
        "code_tables =",
        "format =",
        "fuel =",
        "first_registration_year =",
        "recipients =",
    ] {
        let i = text
            .lines()
            .position(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no `{key}` in\n{text}"));
        let prev = text.lines().nth(i - 1).unwrap();
        assert!(
            prev.starts_with('#')
                || prev.starts_with(key.split(' ').next().unwrap())
                || text
                    .lines()
                    .nth(i.saturating_sub(2))
                    .unwrap()
                    .starts_with('#'),
            "`{key}` has no comment:\n{text}"
        );
    }
    assert!(!text.contains("password ="), "no secret in the file");

    // It delivers: the generated file is a working subscription.
    let (code, out, err) = regdrop(
        d,
        &["register", "generate", "--vehicles", "500", "--seed", "3"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = regdrop(
        d,
        &[
            "deliver",
            "kunde-elbil",
            "--at",
            "2026-11-23T06:00:00+01:00",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let names = util::files::ls(&remote);
    assert!(
        names.iter().any(|n| n.ends_with("_merkekode.dsv.age")),
        "{names:?}"
    );
    let (_, out, _) = regdrop(d, &["receipts", "export", "--format", "csv"]);
    assert!(out.contains("26/812345"), "{out}");

    // The same id again is refused unless --force.
    let (code, _, err) = regdrop(
        d,
        &[
            "new-subscription",
            "--id",
            "kunde-elbil",
            "--customer",
            "X",
            "--report",
            "code_tables",
            "--code-tables",
            "fuel",
            "--email",
            "a@b.no",
            "--mobile",
            "91234567",
            "--host",
            &host,
            "--username",
            "u",
            "--no-encryption",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("exists"), "{err}");
}

#[test]
fn missing_flags_without_a_terminal_are_listed_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d);
    let (code, out, err) = regdrop(
        d,
        &[
            "new-subscription",
            "--id",
            "kunde",
            "--report",
            "owners",
            "--host",
            "127.0.0.1",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(
            "missing --customer, --legal-basis, --email, --mobile, --username, --recipient"
        ),
        "{err}"
    );
    assert!(util::files::ls(&d.join("subs")).is_empty());
    // A request that cannot be a valid subscription (unencrypted plates) is refused as a
    // config error before the server is contacted (nothing listens on port 1).
    let (code, out, err) = regdrop(
        d,
        &[
            "new-subscription",
            "--id",
            "kunde",
            "--customer",
            "K AS",
            "--report",
            "technical",
            "--email",
            "a@b.no",
            "--mobile",
            "91234567",
            "--host",
            "127.0.0.1:1",
            "--username",
            "u",
            "--no-encryption",
        ],
    );
    assert_eq!(code, 78, "{out}{err}");
    assert!(
        err.contains("encryption.mode: this report holds identifying or personal fields"),
        "{err}"
    );
    assert!(!err.contains("Scanning"), "{err}");
    assert!(util::files::ls(&d.join("subs")).is_empty());
}

/// Runs `new-subscription --interactive` with `answers` on stdin (one a line).
fn asked(dir: &Path, args: &[&str], answers: &[&str]) -> (i32, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = util::cli::regdrop_in(dir)
        .arg("new-subscription")
        .arg("--interactive")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = answers.join("\n");
    input.push('\n');
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every question, in order, with a wrong answer first where there can be one: each wrong
/// answer is refused at once, with why, and asked again; nothing typed before is lost.
#[test]
fn prompts_check_each_answer_at_once_and_pin_only_after_a_yes() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d);
    let rec = util::cli::age_keygen(&d.join("age.key"));
    let host = format!("127.0.0.1:{}", sshd.port);
    let user = util::sshd::current_user();
    let answers = |confirm: &'static str| -> Vec<String> {
        [
            "Bad Id",
            "kunde-p",  // id
            "Kunde AS", // customer
            "ownerz",
            "technical", // report
            "nope",
            "ola@kunde.no", // e-mail
            "12ab",
            "91234567", // mobile
            &host,
            &user,
            "age1nope",
            rec.trim(),
            "5",
            "2", // login: a key file
            "",  // its default name, kunde-p_ed25519
            "0 25 * * *",
            "0 0 30 2 *",
            "30 5 * * 1-5", // cron
            "Europe/Olso",
            "UTC", // time zone
            "last_year",
            "previous_day", // period
            "maybe",
            confirm, // pin?
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let a = answers("no");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out, err) = asked(d, &[], &a);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("host keys not pinned; nothing written"),
        "{err}"
    );
    assert!(
        util::files::ls(&d.join("subs")).is_empty(),
        "a no writes nothing"
    );
    for refusal in [
        "`Bad Id` is not a valid id",
        "`ownerz` is not a report",
        "`nope` is not an e-mail address",
        "`12ab` is not a phone number",
        "answer 1, 2, 3 or 4",
        "`0 25 * * *`: the hour field takes 0-23, not 25; try again",
        "`0 0 30 2 *` never fires",
        "`Europe/Olso` is not an IANA time zone name",
        "--period `last_year`",
        "please type yes or no",
    ] {
        assert!(err.contains(refusal), "no `{refusal}` in:\n{err}");
    }
    assert!(
        err.contains("age1nope"),
        "the bad recipient is refused: {err}"
    );
    // The schedule is shown back: three fire times, weekdays at 05:30 UTC.
    assert_eq!(err.matches(" 05:30 UTC   (").count(), 3, "{err}");
    assert!(err.contains(&sshd.host_fingerprint()), "{err}");

    let a = answers("yes");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out, err) = asked(d, &[], &a);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(d.join("subs/kunde-p.toml")).unwrap();
    for want in [
        "cron = \"30 5 * * 1-5\"",
        "timezone = \"UTC\"",
        "period = \"previous_day\"",
        "auth = { key_file = \"kunde-p_ed25519\" }",
        "email = \"ola@kunde.no\"",
        "mobile = \"91234567\"",
    ] {
        assert!(text.contains(want), "no `{want}` in:\n{text}");
    }
    let (code, out, err) = regdrop(d, &["check", "--no-environment"]);
    assert_eq!(code, 0, "{out}{err}");

    // Input that ends early loses nothing on disk and says where it stopped.
    let (code, _, err) = asked(
        d,
        &["--out", d.join("x.toml").to_str().unwrap()],
        &["kunde-x"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("input ended before `Customer name` was answered"),
        "{err}"
    );
    assert!(!d.join("x.toml").exists());
}

/// `--host-key` pins the key the customer sent without contacting the server (nothing
/// listens on port 1); a scan without a terminal needs `--yes`; a bad line is refused.
#[test]
fn host_key_flag_onboards_before_the_server_is_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d);
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    let base = [
        "new-subscription",
        "--id",
        "offline",
        "--customer",
        "K AS",
        "--report",
        "code_tables",
        "--code-tables",
        "fuel",
        "--email",
        "a@b.no",
        "--mobile",
        "91234567",
        "--host",
        "127.0.0.1:1",
        "--username",
        "u",
        "--no-encryption",
        "--password-credential",
        "offline-pw",
    ];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        regdrop(d, &v)
    };
    let (code, out, err) = with(&["--host-key", "ssh-ed25519 AAAAnope"]);
    assert_eq!(code, 78, "{out}{err}");
    assert!(err.contains("--host-key: "), "{err}");
    assert!(!err.contains("Scanning"), "{err}");
    let (code, out, err) = with(&["--host-key", key]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("Scanning"), "not contacted: {err}");
    assert!(
        out.contains("SHA256:"),
        "prints the fingerprint of the given key: {out}"
    );
    assert!(out.contains("LoadCredential=offline-pw:"), "{out}");
    let text = std::fs::read_to_string(d.join("subs/offline.toml")).unwrap();
    assert!(text.contains(&format!("host_keys = [\"{key}\"]")), "{text}");
    assert!(
        text.contains("auth = { password_credential = \"offline-pw\" }"),
        "{text}"
    );
    let (code, out, err) = regdrop(d, &["check", "--no-environment"]);
    assert_eq!(code, 0, "{out}{err}");
}
