//! `regdrop check` looks at what the next run will need, for the service user: secret
//! files (exist, 0600, readable, load the way a login loads them), systemd credentials, the
//! register (opens, right schema), the spool and state folders. `--no-environment` skips it.

use crate::util;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn check(dir: &Path, args: &[&str]) -> util::cli::Out {
    util::cli::run(util::cli::regdrop_in(dir).arg("check").args(args))
}

fn whoami() -> (String, String) {
    let id = |flag: &str| {
        let out = util::cli::run(Command::new("id").arg(flag));
        assert!(out.ok(), "{}", out.text());
        out.stdout.trim().to_string()
    };
    (id("-un"), id("-gn"))
}

/// A subscription `id` logging in with `auth` (a TOML inline table).
fn sub(id: &str, auth: &str) -> String {
    format!(
        "id = \"{id}\"\ncustomer = \"Kunde AS\"\n[schedule]\ncron = \"0 6 * * *\"\n\
         [target]\nhost = \"127.0.0.1\"\nusername = \"kunde\"\n\
         host_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\"]\n\
         auth = {auth}\nremote_dir = \"/in\"\n\
         [extract]\nreport = \"technical\"\n\
         [encryption]\nrecipients = [\"age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r\"]\n"
    )
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A config for the current user as the service user, a password and a key subscription,
/// and nothing of what they need yet.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (me, _) = whoami();
    util::cli::write_config(
        d,
        &format!("secrets_dir = \"secrets\"\n[daemon]\nuser = \"{me}\"\n"),
    );
    std::fs::create_dir(d.join("secrets")).unwrap();
    std::fs::write(
        d.join("subs/pw.toml"),
        sub("pw", "{ password_file = \"pw.password\" }"),
    )
    .unwrap();
    std::fs::write(
        d.join("subs/key.toml"),
        sub(
            "key",
            "{ key_file = \"key_ed25519\", passphrase_file = \"key.passphrase\" }",
        ),
    )
    .unwrap();
    dir
}

#[test]
fn missing_and_open_secrets_a_bad_key_and_a_missing_register_fail_check() {
    let dir = setup();
    let d = dir.path();
    let (me, group) = whoami();
    let out = check(d, &[]);
    assert_eq!(out.code, 78, "{}", out.text());
    let text = out.text();
    let has =
        |text: &str, needle: &str| assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    has(&text, "regdrop.toml:1:12: register: the register ");
    has(
        &text,
        "does not exist; create it with `regdrop register import FILE`",
    );
    has(
        &text,
        &format!(
            "subs/pw.toml:9:26: target.auth.password_file: {}/secrets/pw.password does not exist; create it: install -o {me} -g {group} -m 0600 /dev/null",
            d.display()
        ),
    );
    has(&text, "target.auth.key_file: ");
    has(&text, "target.auth.passphrase_file: ");
    has(
        &text,
        &format!("environment checked for the service user `{me}` ([daemon] user)"),
    );
    // The TOML alone is fine.
    let out = check(d, &["--no-environment"]);
    assert_eq!(out.code, 0, "{}", out.text());

    // A register, an open password file, a key file that is not a key.
    let out = util::cli::run(util::cli::regdrop_in(d).args([
        "register",
        "generate",
        "--vehicles",
        "20",
        "--seed",
        "1",
    ]));
    assert!(out.ok(), "{}", out.text());
    write(&d.join("secrets/pw.password"), "hunter2\n", 0o644);
    write(&d.join("secrets/key_ed25519"), "not a key\n", 0o600);
    write(&d.join("secrets/key.passphrase"), "sesam\n", 0o600);
    let text = check(d, &[]).text();
    assert!(!text.contains(": register:"), "{text}");
    has(&text, "pw.password has mode 0644: group or others can read it, and the service refuses it; run `chmod 600 ");
    has(&text, "target.auth.key_file: private key file ");
    has(&text, "cannot be loaded");
    assert!(
        !text.contains("hunter2") && !text.contains("sesam"),
        "a secret was echoed:\n{text}"
    );

    // Fixed: 0600 password, a real passphrase-protected key: ok.
    write(&d.join("secrets/pw.password"), "hunter2\n", 0o600);
    std::fs::remove_file(d.join("secrets/key_ed25519")).unwrap();
    let made = util::cli::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "sesam", "-f"])
            .arg(d.join("secrets/key_ed25519")),
    );
    assert!(made.ok(), "{}", made.text());
    let out = check(d, &[]);
    assert_eq!(out.code, 0, "{}", out.text());
    assert!(
        out.stdout
            .contains("2 subscriptions valid; environment checked"),
        "{}",
        out.stdout
    );

    // A wrong passphrase is found now, not at 06:00.
    write(&d.join("secrets/key.passphrase"), "wrong\n", 0o600);
    let out = check(d, &[]);
    assert_eq!(out.code, 78, "{}", out.text());
    has(&out.text(), "target.auth.key_file: private key file ");
    write(&d.join("secrets/key.passphrase"), "sesam\n", 0o600);

    // A register that is not a database; a spool that is a file.
    std::fs::write(d.join("register.sqlite"), "not sqlite").unwrap();
    std::fs::write(d.join("spool"), "").unwrap();
    let text = check(d, &["--json"]).stdout;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["kind"], "environment", "{p}");
            p["key"].as_str().unwrap()
        })
        .collect();
    assert_eq!(keys, ["register", "spool_dir"], "{v:#}");
    has(&text, "is not a register database");
    assert_eq!(v["environment"]["service_user"], me.as_str());
    assert_eq!(v["summary"]["environment_problems"], 2);
}

#[test]
fn a_systemd_credential_is_looked_up_in_the_credentials_directory() {
    let dir = setup();
    let d = dir.path();
    std::fs::remove_file(d.join("subs/key.toml")).unwrap();
    std::fs::write(
        d.join("subs/pw.toml"),
        sub("pw", "{ password_credential = \"kunde-pw\" }"),
    )
    .unwrap();
    let out = util::cli::run(util::cli::regdrop_in(d).args([
        "register",
        "generate",
        "--vehicles",
        "20",
        "--seed",
        "1",
    ]));
    assert!(out.ok(), "{}", out.text());
    // Outside systemd: a note saying the unit must load it; not a problem.
    let out = check(d, &[]);
    assert_eq!(out.code, 0, "{}", out.text());
    assert!(
        out.stdout.contains("note: ") && out.stdout.contains("LoadCredential=kunde-pw:"),
        "{}",
        out.stdout
    );
    // Under systemd without it: a problem saying what to add to the unit.
    let creds = d.join("creds");
    std::fs::create_dir(&creds).unwrap();
    let run = |creds: &Path| {
        util::cli::run(
            util::cli::regdrop_in(d)
                .arg("check")
                .env("CREDENTIALS_DIRECTORY", creds),
        )
    };
    let out = run(&creds);
    assert_eq!(out.code, 78, "{}", out.text());
    assert!(
        out.stdout.contains("target.auth.password_credential: the credential `kunde-pw` is not in $CREDENTIALS_DIRECTORY"),
        "{}",
        out.stdout
    );
    write(&creds.join("kunde-pw"), "hunter2\n", 0o400);
    let out = run(&creds);
    assert_eq!(out.code, 0, "{}", out.text());
}

/// A throwaway system user, removed when dropped.
struct TempUser(String);

impl TempUser {
    fn new() -> TempUser {
        let name = format!("rdchk{}", std::process::id() % 100_000);
        let _ = Command::new("userdel")
            .arg(&name)
            .stderr(std::process::Stdio::null())
            .status();
        let st = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(&name)
            .status()
            .expect("useradd");
        assert!(st.success(), "useradd {name} failed");
        TempUser(name)
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

fn chown(user: &str, path: &Path) {
    let st = Command::new("chown")
        .arg(format!("{user}:{user}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The service-user model (systemd/README.md): the unit runs as its own user, so a secret
/// file root created with 0600 is unreadable at 06:00. `check` (as root) says so, naming
/// the file, the user and the `chown`; once the file is the service user's, it passes.
#[test]
fn a_root_owned_secret_fails_check_for_the_service_user_and_its_own_passes() {
    if !util::root::require(
        "it creates a system user (useradd) and gives files to it (chown), like the install",
    ) {
        return;
    }
    let user = TempUser::new();
    let dir = setup();
    let d = dir.path();
    std::fs::remove_file(d.join("subs/key.toml")).unwrap();
    // Like /etc/regdrop and /var/lib/regdrop: the folders above are open to the user; the
    // secrets folder, spool and state are its own.
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    util::cli::write_config(
        d,
        &format!(
            "secrets_dir = \"secrets\"\n[daemon]\nuser = \"{}\"\n",
            user.0
        ),
    );
    let out = util::cli::run(util::cli::regdrop_in(d).args([
        "register",
        "generate",
        "--vehicles",
        "20",
        "--seed",
        "1",
    ]));
    assert!(out.ok(), "{}", out.text());
    std::fs::set_permissions(
        d.join("register.sqlite"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    for folder in ["secrets", "spool", "state"] {
        std::fs::create_dir_all(d.join(folder)).unwrap();
        std::fs::set_permissions(d.join(folder), std::fs::Permissions::from_mode(0o700)).unwrap();
        chown(&user.0, &d.join(folder));
    }
    let pw = d.join("secrets/pw.password");
    write(&pw, "hunter2\n", 0o600); // root-owned, as `sudo sh -c 'echo ... > FILE'` leaves it

    let out = check(d, &[]);
    assert_eq!(out.code, 78, "{}", out.text());
    let want = format!(
        "target.auth.password_file: {p}: it is owned by root:root with mode 0600: the service user `{u}` cannot read it; run `chown {u}:{u} {p}`",
        p = pw.display(),
        u = user.0
    );
    assert!(
        out.stdout.contains(&want),
        "missing `{want}` in:\n{}",
        out.text()
    );

    chown(&user.0, &pw);
    let out = check(d, &[]);
    assert_eq!(out.code, 0, "{}", out.text());
    assert!(
        out.stdout.contains(&format!(
            "for the service user `{}` ([daemon] user)",
            user.0
        )),
        "{}",
        out.stdout
    );

    // A spool the user cannot write (root's) is found as well.
    let spool = d.join("spool");
    chown("root", &spool);
    let out = check(d, &[]);
    assert_eq!(out.code, 78, "{}", out.text());
    assert!(
        out.stdout.contains("spool_dir: the folder "),
        "{}",
        out.stdout
    );
}
