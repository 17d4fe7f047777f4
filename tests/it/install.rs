//! Installing regdrop: `regdrop init` into a staging root (what `check` accepts, modes,
//! never overwriting, `--dry-run`; as root the service user in that root's passwd), and
//! `--version` naming the commit the binary was built from.

use crate::util::cli;
use std::process::Command;

#[test]
fn version_names_the_version_and_the_git_commit() {
    let out = cli::run(cli::regdrop().arg("--version"));
    assert!(out.ok(), "{}", out.text());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        out.stdout.trim(),
        format!("regdrop {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
}

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn init(root: &Path, extra: &[&str]) -> cli::Out {
    cli::run(
        cli::regdrop()
            .arg("init")
            .arg("--root")
            .arg(root)
            .args(extra),
    )
}

/// `regdrop check` of the installed config, offline when `check` has a switch for it (the
/// register and folders it names are the target machine's, not the staging root's).
fn check_installed(root: &Path) -> cli::Out {
    let config = root.join("etc/regdrop/regdrop.toml");
    let help = cli::run(cli::regdrop().args(["check", "--help"]));
    let mut c = cli::regdrop();
    c.arg("--config").arg(&config).arg("check");
    if help.stdout.contains("--no-environment") {
        c.arg("--no-environment");
    }
    cli::run(&mut c)
}

#[test]
fn init_lays_out_a_staging_root_that_check_accepts_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = init(&root, &[]);
    assert!(out.ok(), "{}", out.text());
    let etc = root.join("etc/regdrop");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));

    // The config points at the unit's state and cache folders and passes `check`.
    let config = std::fs::read_to_string(etc.join("regdrop.toml")).unwrap();
    assert!(config.contains("\"/var/lib/regdrop/"), "{config}");
    assert!(config.contains("\"/var/cache/regdrop/"), "{config}");
    let checked = check_installed(&root);
    assert!(checked.ok(), "{}", checked.text());
    assert!(
        checked.text().contains("0 subscriptions"),
        "{}",
        checked.text()
    );

    // An empty subscriptions/ that is loaded, the examples beside it as shipped.
    assert_eq!(
        std::fs::read_dir(etc.join("subscriptions"))
            .unwrap()
            .count(),
        0
    );
    let examples: Vec<_> = std::fs::read_dir(repo.join("subscriptions.example"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(examples.len() >= 7);
    for name in &examples {
        assert_eq!(
            std::fs::read(etc.join("subscriptions.example").join(name)).unwrap(),
            std::fs::read(repo.join("subscriptions.example").join(name)).unwrap(),
            "{name:?}"
        );
    }
    // Secrets and the service's folders closed to others.
    assert_eq!(mode(&etc.join("secrets")), 0o700);
    assert_eq!(mode(&root.join("var/lib/regdrop")), 0o700);
    assert_eq!(mode(&root.join("var/cache/regdrop")), 0o700);
    assert_eq!(mode(&root.join("var/lib")), 0o755);
    assert_eq!(mode(&etc.join("regdrop.toml")), 0o644);
    // The unit as shipped, the binary, the man page and completions.
    assert_eq!(
        std::fs::read_to_string(root.join("etc/systemd/system/regdrop.service")).unwrap(),
        std::fs::read_to_string(repo.join("systemd/regdrop.service")).unwrap()
    );
    assert_eq!(mode(&root.join("usr/bin/regdrop")), 0o755);
    let v = cli::run(Command::new(root.join("usr/bin/regdrop")).arg("--version"));
    assert!(v.ok() && v.stdout.starts_with("regdrop "), "{}", v.text());
    let man = std::fs::read_to_string(root.join("usr/share/man/man1/regdrop.1")).unwrap();
    assert!(man.starts_with(".ie") || man.contains(".TH"), "{man}");
    let bash = std::fs::read_to_string(root.join("usr/share/bash-completion/completions/regdrop"))
        .unwrap();
    assert!(bash.contains("deliver"), "{bash}");
    // The user: not created without root's passwd; the command is printed.
    assert!(
        out.stdout
            .contains("useradd --system --home-dir /var/lib/regdrop --shell /usr/sbin/nologin"),
        "{}",
        out.stdout
    );

    // An operator edits the config and removes an example: a second init keeps the edit,
    // puts the example back, and says which is which.
    let edited = config.replace("max_concurrent = 4", "max_concurrent = 2");
    std::fs::write(etc.join("regdrop.toml"), &edited).unwrap();
    let gone = etc.join("subscriptions.example/owners.toml");
    std::fs::remove_file(&gone).unwrap();
    let again = init(&root, &[]);
    assert!(again.ok(), "{}", again.text());
    assert_eq!(
        std::fs::read_to_string(etc.join("regdrop.toml")).unwrap(),
        edited
    );
    assert!(gone.exists());
    let line = |needle: &str| {
        again
            .stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line for {needle}:\n{}", again.stdout))
            .to_string()
    };
    assert!(line("regdrop.toml").starts_with("kept"), "{}", again.stdout);
    assert!(
        line("not overwritten").contains("regdrop.toml"),
        "{}",
        again.stdout
    );
    assert!(
        line("owners.toml").starts_with("created"),
        "{}",
        again.stdout
    );
    assert!(
        line("regdrop.service").starts_with("kept"),
        "{}",
        again.stdout
    );
}

#[test]
fn init_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = init(&root, &["--dry-run"]);
    assert!(out.ok(), "{}", out.text());
    assert!(!root.exists(), "{}", out.text());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("would create") && l.contains("regdrop.toml")),
        "{}",
        out.stdout
    );
}

#[test]
fn as_root_init_creates_the_service_user_in_the_root_it_lays_out() {
    if !crate::util::root::require("it runs useradd (into a staging root's etc/passwd)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    for f in ["passwd", "group", "shadow", "gshadow"] {
        std::fs::write(root.join("etc").join(f), "").unwrap();
    }
    let machine = std::fs::read_to_string("/etc/passwd").unwrap();
    let out = init(&root, &[]);
    assert!(out.ok(), "{}", out.text());
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("regdrop:"))
        .unwrap_or_else(|| panic!("no user:\n{passwd}\n{}", out.text()));
    let f: Vec<&str> = user.split(':').collect();
    assert_eq!(f[5], "/var/lib/regdrop", "{user}");
    assert_eq!(f[6], "/usr/sbin/nologin", "{user}");
    let (uid, gid): (u32, u32) = (f[2].parse().unwrap(), f[3].parse().unwrap());
    assert!(uid < 1000, "a system user: {user}");
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with(&format!("regdrop:x:{gid}:"))),
        "{group}"
    );
    // What the service owns, it owns.
    for p in [
        "etc/regdrop/secrets",
        "var/lib/regdrop",
        "var/cache/regdrop",
    ] {
        let m = std::fs::metadata(root.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
    }
    assert_eq!(mode(&root.join("etc/regdrop/secrets")), 0o700);
    // The machine itself was not touched.
    assert_eq!(std::fs::read_to_string("/etc/passwd").unwrap(), machine);
    // Again: the user is kept.
    let again = init(&root, &[]);
    assert!(again.ok(), "{}", again.text());
    assert!(
        again.stdout.contains("kept          user regdrop (exists)"),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/passwd")).unwrap(),
        passwd
    );
}

#[test]
fn init_on_the_machine_itself_needs_root_and_says_how_else() {
    let bin = env!("CARGO_BIN_EXE_regdrop");
    // As root, drop to nobody (setpriv, util-linux) so the refusal is what is tested.
    let mut c = if crate::util::root::is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        Command::new(bin)
    };
    let out = cli::run(c.arg("init").env("REGDROP_LOG", "warn"));
    assert_eq!(out.code, 1, "{}", out.text());
    assert!(out.stderr.contains("run it as root"), "{}", out.stderr);
    assert!(out.stderr.contains("--root DIR"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing done: {}", out.stdout);
}
