//! `regdrop init`: lays out a machine for the service in one step: /etc/regdrop (a config
//! `check` accepts, an empty subscriptions/ with the commented examples beside it, a 0700
//! secrets/), the state and cache folders, the systemd unit, the binary, the man page and
//! completions, and the static `regdrop` system user that owns the secrets and the state.
//! Idempotent: a path that exists is never overwritten, and every line says what was made
//! and what was kept.

use crate::cmd::cli::InitArgs as Args;
use anyhow::{bail, Context, Result};
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::process::{Command, ExitCode};

/// The service user and group (the unit's `User=`/`Group=`; owner of secrets/ and state).
pub const USER: &str = "regdrop";

/// The unit, as shipped in systemd/.
const UNIT: &str = include_str!("../../systemd/regdrop.service");

/// The commented subscription examples (subscriptions.example/), installed beside the
/// empty subscriptions/ so they are read, copied and edited, never loaded.
const EXAMPLES: [(&str, &str); 8] = [
    (
        "code_tables.toml",
        include_str!("../../subscriptions.example/code_tables.toml"),
    ),
    (
        "custom.toml",
        include_str!("../../subscriptions.example/custom.toml"),
    ),
    (
        "email_passphrase.toml",
        include_str!("../../subscriptions.example/email_passphrase.toml"),
    ),
    (
        "first_registrations.toml",
        include_str!("../../subscriptions.example/first_registrations.toml"),
    ),
    (
        "owners.toml",
        include_str!("../../subscriptions.example/owners.toml"),
    ),
    (
        "technical.toml",
        include_str!("../../subscriptions.example/technical.toml"),
    ),
    (
        "technical_open.toml",
        include_str!("../../subscriptions.example/technical_open.toml"),
    ),
    (
        "technical_owners.toml",
        include_str!("../../subscriptions.example/technical_owners.toml"),
    ),
];

/// The daemon config init writes: the paths of the unit's StateDirectory= and
/// CacheDirectory=, the subscriptions and secrets beside it.
pub const CONFIG: &str = r#"# regdrop daemon settings, laid out by `regdrop init`. Every key, its type and default:
# docs/config.md (or `man regdrop`). Relative paths are relative to this file.
# Validate with: regdrop check

# The register (SQLite): `regdrop register import MVR_TECH_DATA.txt` fills it.
register = "/var/lib/regdrop/register.sqlite"
# Sealed artifacts wait here for delivery (0700; real disk, not tmpfs).
spool_dir = "/var/cache/regdrop/spool"
# Runs, attempts and hash-chained receipts.
state_db = "/var/lib/regdrop/state/regdrop.sqlite"
# One *.toml file per subscription (`regdrop new-subscription` writes one; the commented
# examples are in subscriptions.example/, which is not read).
subscriptions_dir = "subscriptions"
# Passwords and keys named by relative paths in the subscriptions (owned by regdrop, 0700;
# each file 0600).
secrets_dir = "secrets"

[defaults]
timezone = "Europe/Oslo"

# Default retry policy (a subscription may override it in its own [retry]).
[retry]
base_secs = 30
factor = 2.0
cap_secs = 1800
max_attempts = 8
deadline_secs = 21600

[daemon]
max_concurrent = 4
max_per_host = 2
# Prometheus metrics (README "Logs and metrics"); any address, e.g. "0.0.0.0:9187" for a remote
# Prometheus: the endpoint has no TLS or login.
# metrics_listen = "127.0.0.1:9187"
shutdown_grace_secs = 60

[retention]
spool_grace_hours = 24
# 7 years of receipts.
receipts_days = 2557
"#;

/// Who owns a path: root (the default), or the service user.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Root,
    Service,
}

/// One thing init lays out.
enum Item {
    Dir {
        path: &'static str,
        mode: u32,
        owner: Owner,
    },
    File {
        path: String,
        mode: u32,
        body: Body,
    },
}

enum Body {
    Text(String),
    /// This binary (current_exe).
    Binary,
}

fn plan() -> Vec<Item> {
    let dir = |path, mode, owner| Item::Dir { path, mode, owner };
    let file = |path: &str, mode, body| Item::File {
        path: path.to_string(),
        mode,
        body,
    };
    let mut items = vec![
        dir("etc/regdrop", 0o755, Owner::Root),
        dir("etc/regdrop/subscriptions", 0o755, Owner::Root),
        dir("etc/regdrop/subscriptions.example", 0o755, Owner::Root),
        dir("etc/regdrop/secrets", 0o700, Owner::Service),
        dir("var/lib/regdrop", 0o700, Owner::Service),
        dir("var/cache/regdrop", 0o700, Owner::Service),
        file("etc/regdrop/regdrop.toml", 0o644, Body::Text(CONFIG.into())),
    ];
    for (name, text) in EXAMPLES {
        items.push(file(
            &format!("etc/regdrop/subscriptions.example/{name}"),
            0o644,
            Body::Text(text.into()),
        ));
    }
    items.push(file(
        "etc/systemd/system/regdrop.service",
        0o644,
        Body::Text(UNIT.into()),
    ));
    items.push(file("usr/bin/regdrop", 0o755, Body::Binary));
    items.push(file(
        "usr/share/man/man1/regdrop.1",
        0o644,
        Body::Text(super::docs::man_page()),
    ));
    for (shell, path) in [
        (
            clap_complete::Shell::Bash,
            "usr/share/bash-completion/completions/regdrop",
        ),
        (
            clap_complete::Shell::Zsh,
            "usr/share/zsh/vendor-completions/_regdrop",
        ),
        (
            clap_complete::Shell::Fish,
            "usr/share/fish/vendor_completions.d/regdrop.fish",
        ),
    ] {
        items.push(file(
            path,
            0o644,
            Body::Text(super::docs::completion(shell)),
        ));
    }
    items
}

/// The uid and gid of `name` in ROOT/etc/passwd, if it is there.
fn lookup_user(root: &Path, name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn group_exists(root: &Path, name: &str) -> bool {
    std::fs::read_to_string(root.join("etc/group"))
        .is_ok_and(|t| t.lines().any(|l| l.split(':').next() == Some(name)))
}

/// The `useradd` line of the service model (docs: systemd/README.md).
fn useradd(root: &Path) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    if root != Path::new("/") {
        args.extend(["--prefix".into(), root.display().to_string()]);
    }
    args.extend(
        [
            "--system",
            "--home-dir",
            "/var/lib/regdrop",
            "--shell",
            "/usr/sbin/nologin",
        ]
        .map(String::from),
    );
    // The group of the same name: made with the user, or joined when it exists already.
    if group_exists(root, USER) {
        args.extend(["--gid".into(), USER.into()]);
    } else {
        args.push("--user-group".into());
    }
    args.push(USER.into());
    args
}

fn is_root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe {
        libc::geteuid() == 0
    }
}

pub(super) fn run(args: &Args) -> Result<ExitCode> {
    let root = &args.root;
    let staging = root != Path::new("/");
    let root_user = is_root();
    if !staging && !root_user && !args.dry_run {
        bail!("regdrop init writes to /etc and /usr and creates a system user: run it as root (sudo regdrop init), with --dry-run to see what it would do, or with --root DIR to lay it out in a staging folder");
    }
    if staging && !args.dry_run {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    }
    let say = Say {
        dry_run: args.dry_run,
    };

    // 1. The user first, so the folders it owns can be given to it.
    let owner = user(args, root_user, &say)?;
    // 2. Folders and files, each only when missing.
    lay_out(args, owner, root_user, &say)?;
    // 3. What the operator does next.
    let config = root.join("etc/regdrop/regdrop.toml");
    println!();
    println!("Next:");
    println!(
        "  1. the register: regdrop register import MVR_TECH_DATA.txt (or `register generate` to try it)"
    );
    println!(
        "  2. a subscription: regdrop new-subscription (writes into /etc/regdrop/subscriptions/)"
    );
    println!("  3. regdrop --config {} check", config.display());
    if staging {
        println!(
            "  4. on the target machine: systemctl daemon-reload && systemctl enable --now regdrop"
        );
    } else {
        println!("  4. systemctl daemon-reload && systemctl enable --now regdrop");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one line of what init did (or, with --dry-run, would do).
struct Say {
    dry_run: bool,
}

impl Say {
    fn line(&self, verb: &str, what: &str) {
        let verb = match (self.dry_run, verb) {
            (true, "created") => "would create",
            (true, "ran") => "would run",
            (_, v) => v,
        };
        println!("{verb:<13} {what}");
    }
}

/// The service user: kept, created (`useradd`, or `useradd --prefix ROOT` into a staging
/// root that has an etc/passwd), or its command printed. Its uid and gid when it exists.
fn user(args: &Args, root_user: bool, say: &Say) -> Result<Option<(u32, u32)>> {
    let root = &args.root;
    let staging = root != Path::new("/");
    let cmd = useradd(root);
    let line = format!("useradd {}", cmd.join(" "));
    let mut owner = lookup_user(root, USER);
    let can = root_user && (!staging || root.join("etc/passwd").exists());
    if owner.is_some() {
        say.line("kept", &format!("user {USER} (exists)"));
    } else if can || (args.dry_run && !staging) {
        say.line("ran", &line);
        if !args.dry_run {
            let st = Command::new("useradd")
                .args(&cmd)
                .status()
                .with_context(|| format!("running {line}"))?;
            if !st.success() {
                bail!("`{line}` failed ({st}); create the user by hand and run regdrop init again");
            }
            owner = lookup_user(root, USER);
            if owner.is_none() {
                bail!(
                    "`{line}` succeeded but {USER} is not in {}/etc/passwd",
                    root.display()
                );
            }
        }
    } else {
        let why = if staging {
            "--root DIR without DIR/etc/passwd, or not root"
        } else {
            "not root"
        };
        let real = useradd(Path::new("/")).join(" ");
        say.line(
            "not done",
            &format!("user {USER} ({why}); where the service runs: useradd {real}"),
        );
    }

    Ok(owner)
}

/// Every folder and file of [`plan`] that is missing, with its mode (and owner, as root
/// with the user there).
fn lay_out(args: &Args, owner: Option<(u32, u32)>, root_user: bool, say: &Say) -> Result<()> {
    let root = &args.root;
    let mut unowned = Vec::new();
    for item in plan() {
        match item {
            Item::Dir {
                path,
                mode,
                owner: o,
            } => {
                let full = root.join(path);
                if full.exists() {
                    say.line("kept", &format!("{} (exists)", full.display()));
                    continue;
                }
                say.line("created", &format!("{}/ (mode {mode:o})", full.display()));
                if args.dry_run {
                    continue;
                }
                // Parents (var/, var/lib/) get the usual 0755; only the folder its mode.
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                DirBuilder::new()
                    .mode(mode)
                    .create(&full)
                    .with_context(|| format!("creating {}", full.display()))?;
                // The umask may have narrowed the mode; set it exactly.
                set_mode(&full, mode)?;
                if o == Owner::Service {
                    match (owner, root_user) {
                        (Some((uid, gid)), true) => {
                            std::os::unix::fs::chown(&full, Some(uid), Some(gid))
                                .with_context(|| format!("giving {} to {USER}", full.display()))?
                        }
                        _ => unowned.push(full.display().to_string()),
                    }
                }
            }
            Item::File { path, mode, body } => {
                let full = root.join(&path);
                if full.exists() {
                    say.line(
                        "kept",
                        &format!("{} (exists; not overwritten)", full.display()),
                    );
                    continue;
                }
                say.line("created", &format!("{} (mode {mode:o})", full.display()));
                if args.dry_run {
                    continue;
                }
                if let Some(dir) = full.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let bytes = match body {
                    Body::Text(t) => t.into_bytes(),
                    Body::Binary => {
                        let exe = std::env::current_exe().context("finding this binary")?;
                        std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?
                    }
                };
                // create_new: a file that appeared meanwhile is not overwritten either.
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&full)
                    .with_context(|| format!("creating {}", full.display()))?;
                f.write_all(&bytes)
                    .and_then(|()| f.sync_all())
                    .with_context(|| format!("writing {}", full.display()))?;
                set_mode(&full, mode)?;
            }
        }
    }
    if !unowned.is_empty() && !args.dry_run {
        println!(
            "not owned by {USER} (no such user here{}): {}; chown {USER}:{USER} them where the service runs",
            if root_user { "" } else { ", or not root" },
            unowned.join(", ")
        );
    }

    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_subscription_is_installed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("subscriptions.example");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded, "add the new example to init::EXAMPLES");
    }

    #[test]
    fn the_user_line_is_the_service_model() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            useradd(Path::new("/nonexistent-root")).join(" "),
            "--prefix /nonexistent-root --system --home-dir /var/lib/regdrop --shell /usr/sbin/nologin --user-group regdrop"
        );
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/group"), "regdrop:x:998:\n").unwrap();
        assert!(useradd(dir.path())
            .join(" ")
            .ends_with("--gid regdrop regdrop"));
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nregdrop:x:998:997::/var/lib/regdrop:/usr/sbin/nologin\n",
        )
        .unwrap();
        assert_eq!(lookup_user(dir.path(), USER), Some((998, 997)));
        assert_eq!(lookup_user(dir.path(), "nobody"), None);
    }
}
