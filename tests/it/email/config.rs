//! `regdrop check` on the e-mail channel's tables: the example (`email_passphrase.toml`
//! with `[smtp]`/`[sms]` of `config.example.toml`) is valid, and each rule is reported at
//! its file, line and column.

use crate::util::cli::{regdrop, run};
use std::path::Path;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = std::fs::read_to_string(root.join("config.example.toml"))
        .unwrap()
        .replace("subscriptions.example", "subs");
    std::fs::write(dir.path().join("regdrop.toml"), cfg).unwrap();
    std::fs::create_dir(dir.path().join("subs")).unwrap();
    std::fs::copy(
        root.join("subscriptions.example/email_passphrase.toml"),
        dir.path().join("subs/email_passphrase.toml"),
    )
    .unwrap();
    dir
}

fn check(dir: &Path) -> (i32, String) {
    let out = run(regdrop()
        .arg("--config")
        .arg(dir.join("regdrop.toml"))
        .arg("check")
        // The rules of the files; the environment (register, secret files) is not here.
        .arg("--no-environment"));
    (out.code, out.text())
}

/// The 1-based line of the first line of `path` that holds `needle`.
fn line_of(path: &Path, needle: &str) -> usize {
    let s = std::fs::read_to_string(path).unwrap();
    s.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{} has no `{needle}`", path.display()))
        + 1
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_example_is_valid() {
    let dir = setup();
    let (code, out) = check(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 subscriptions valid"), "{out}");
}

#[test]
fn each_email_rule_is_reported_at_its_place() {
    let dir = setup();
    let sub = dir.path().join("subs/email_passphrase.toml");
    edit(&sub, "mobile = \"+47 912 34 567\"", "mobile = \"912\"");
    edit(
        &sub,
        "to = [\"Eksempel kommune data <data@kommune.example>\"]",
        "to = [\"data at kommune\"]",
    );
    edit(&sub, "max_bytes = 10485760", "max_bytes = 999999999");
    edit(
        &sub,
        "[delivery]\n",
        "[delivery]\nif_exists = \"overwrite\"\n",
    );
    let (code, out) = check(dir.path());
    assert_eq!(code, 78, "{out}");
    let has = |needle: &str| assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    has("email_passphrase.toml:23:7: email.to[0]: `data at kommune` is not an e-mail address");
    has("email.max_bytes: 999999999 is out of range");
    has("contact.mobile: `912` is not a mobile number");
    has("delivery.if_exists: if_exists is for SFTP targets");

    // The daemon file's tables.
    let cfg = dir.path().join("regdrop.toml");
    edit(
        &cfg,
        "host = \"127.0.0.1\"\nport = 25",
        "host = \"smtp.example.no\"\nport = 25",
    );
    edit(
        &cfg,
        "url = \"https://sms.gateway.example/v1/messages\"",
        "url = \"http://sms.gateway.example/v1/messages\"",
    );
    edit(
        &cfg,
        "fields = { to = \"{number}\",",
        "fields = { to = \"{nummer}\",",
    );
    let (code, out) = check(dir.path());
    assert_eq!(code, 78, "{out}");
    let has = |needle: &str| assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    let tls = line_of(&cfg, "tls = \"none\"");
    let url = line_of(&cfg, "url = \"http://sms.gateway.example");
    has(&format!(
        "regdrop.toml:{tls}:7: smtp.tls: tls = \"none\" sends mail and passwords in clear"
    ));
    has(&format!(
        "regdrop.toml:{url}:7: sms.url: plain http would send the passphrase in clear"
    ));
    has("sms.fields: no field holds `{number}`");
    has("sms.fields.to: `{nummer}` is not a placeholder");
}

#[test]
fn one_transport_exactly_and_passphrases_only_by_email() {
    let dir = setup();
    let sub = dir.path().join("subs/email_passphrase.toml");
    edit(
        &sub,
        "[email]\n",
        "[target]\nhost = \"sftp.example.no\"\nusername = \"u\"\nremote_dir = \"/in\"\nhost_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj\"]\nauth = { password_file = \"p\" }\n[email]\n",
    );
    let (code, out) = check(dir.path());
    assert_eq!(code, 78, "{out}");
    assert!(
        out.contains(
            "email: a subscription goes either to an SFTP [target] or by [email], not both"
        ),
        "{out}"
    );
    // Without [email]: a passphrase cannot go to an SFTP target.
    let s = std::fs::read_to_string(&sub).unwrap();
    let start = s.find("[email]\n").unwrap();
    let end = s.find("[extract]").unwrap();
    std::fs::write(&sub, format!("{}{}", &s[..start], &s[end..])).unwrap();
    let (code, out) = check(dir.path());
    assert_eq!(code, 78, "{out}");
    assert!(
        out.contains("encryption.mode: mode = \"passphrase\" is only for [email] deliveries"),
        "{out}"
    );
}
