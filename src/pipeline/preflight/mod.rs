//! `regdrop check`'s environment checks: what the next scheduled run will need, checked
//! now, for the user the service runs as. Secret files (exist, mode 0600 or stricter,
//! readable by the service user, and they load the way a login loads them), systemd
//! credentials, known_hosts files, the register (opens, right schema), the spool and state
//! folders (exist or can be created, writable). Every problem is placed at the key that
//! names the path, like a configuration problem.

mod access;

pub use access::{ServiceUser, DEFAULT_USER};

use crate::core::config::location::{DbLocation, PgUrl};
use crate::core::config::validate::Problem;
use crate::core::config::{AuthSpec, DaemonConfig, SecretRef, Subscription};
use crate::loader::{locate, Located};
use access::{access, nearest_existing, Access, Want};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the environment check found.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Located>,
    /// Things it could not check from here, said once each (systemd credentials outside
    /// the service).
    pub notes: Vec<String>,
}

/// Collects problems of one file, placing each at its key.
struct In<'a> {
    file: &'a Path,
    text: String,
    report: &'a mut Report,
}

impl In<'_> {
    fn push(&mut self, key: &str, message: String) {
        self.report
            .problems
            .push(locate(self.file, &self.text, Problem::new(key, message)));
    }
}

/// Checks the daemon file's paths (when `daemon_paths`) and every secret and known_hosts
/// file of `subs`, for `user`.
pub fn check(
    config_path: &Path,
    daemon: &DaemonConfig,
    subs: &[&Subscription],
    user: &ServiceUser,
    daemon_paths: bool,
) -> Report {
    let mut report = Report::default();
    if daemon_paths {
        let mut d = In {
            file: config_path,
            text: std::fs::read_to_string(config_path).unwrap_or_default(),
            report: &mut report,
        };
        register(&mut d, &daemon.register, user);
        folder(&mut d, "spool_dir", &daemon.spool_dir, user);
        state_db(&mut d, &daemon.state_db, user);
        if let Some(smtp) = daemon.smtp.as_ref().and_then(|m| m.auth.as_ref()) {
            secret_ref(
                &mut d,
                ["smtp.auth.password_file", "smtp.auth.password_credential"],
                &smtp.password,
                user,
            );
        }
        if let Some((_, r)) = daemon.sms.as_ref().and_then(|m| m.auth.as_ref()) {
            secret_ref(&mut d, ["sms.auth_file", "sms.auth_credential"], r, user);
        }
        for w in &daemon.notify.webhooks {
            if let Some((_, r)) = &w.auth {
                let keys = ["notify.webhook.auth_file", "notify.webhook.auth_credential"];
                secret_ref(&mut d, keys, r, user);
            }
        }
    }
    for s in subs {
        let mut f = In {
            file: &s.source,
            text: std::fs::read_to_string(&s.source).unwrap_or_default(),
            report: &mut report,
        };
        // An [email] subscription's secrets are the daemon file's ([smtp], [sms]).
        let Some(t) = s.target() else { continue };
        auth(&mut f, &t.auth, user);
        if let Some(k) = &t.known_hosts {
            readable(
                &mut f,
                "target.known_hosts",
                k,
                user,
                "the known_hosts file",
            );
        }
    }
    report
}

fn register(d: &mut In<'_>, location: &DbLocation, user: &ServiceUser) {
    let path = match location {
        DbLocation::Sqlite(path) => path,
        DbLocation::Postgres(url) => {
            // Connects with the URL's login, as an extract will, and looks for the tables;
            // then whether an extract can also read on more connections (a note if not:
            // it still works, on one).
            let checked = crate::extract::Register::open(location)
                .map_err(|e| format!("cannot be used: {}", crate::core::errors::chain(&e)))
                .and_then(|r| r.check_tables().map(|()| r));
            match checked {
                Err(e) => d.push("register", format!("the register {url} {e}")),
                Ok(r) => {
                    if let Err(why) = crate::extract::parallel::postgres::shareable(&r) {
                        d.report.notes.push(format!(
                            "the register {url}: extracts will read on one connection, more \
                             slowly, since {why} (docs/register.md)"
                        ));
                    }
                }
            }
            return;
        }
    };
    if !path.exists() {
        d.push(
            "register",
            format!(
                "the register {} does not exist; create it with `regdrop register import FILE` (or `regdrop register generate` for a test register), or fix the path",
                path.display()
            ),
        );
        return;
    }
    if !readable(d, "register", path, user, "the register") {
        return;
    }
    if let Err(e) = crate::register::schema::check(path) {
        d.push("register", format!("the register {} {e}", path.display()));
    }
}

/// A folder the service creates files in; missing is fine when it can be created.
fn folder(d: &mut In<'_>, key: &str, path: &Path, user: &ServiceUser) {
    let (at, exists) = if path.is_dir() {
        (path.to_path_buf(), true)
    } else if path.exists() {
        d.push(
            key,
            format!(
                "{} is not a folder; point {key} at a folder",
                path.display()
            ),
        );
        return;
    } else {
        match nearest_existing(path) {
            Some(p) => (p, false),
            None => return,
        }
    };
    if let Access::No(why) | Access::Unknown(why) = access(user, &at, Want::CreateIn) {
        let fix = format!(
            "create it for the service user: install -d -o {} -m 0700 {}",
            user.owner_arg().replace(':', " -g "),
            path.display()
        );
        let message = if exists {
            format!("the folder {}: {why}", path.display())
        } else {
            format!(
                "the folder {} does not exist and `{}` cannot create it ({why}); {fix}",
                path.display(),
                user.name
            )
        };
        d.push(key, message);
    }
}

fn state_db(d: &mut In<'_>, location: &DbLocation, user: &ServiceUser) {
    match location {
        DbLocation::Sqlite(path) => sqlite_state_db(d, path, user),
        DbLocation::Postgres(url) => postgres_state_db(d, url),
    }
}

/// Connects (as the daemon will, with the URL's login) and reads the schema version.
fn postgres_state_db(d: &mut In<'_>, url: &PgUrl) {
    use crate::store::migrations::LATEST_VERSION;
    match crate::store::probe_postgres(url) {
        Ok(p) if p.version > LATEST_VERSION => d.push(
            "state_db",
            format!(
                "the state database {url} has schema version {}, newer than this build ({LATEST_VERSION}): run the newer regdrop, or upgrade this one",
                p.version
            ),
        ),
        Ok(p) if p.version < LATEST_VERSION && !p.can_create => d.push(
            "state_db",
            format!(
                "the state database {url} needs its schema (version {} of {LATEST_VERSION}), and this login may not create tables: grant it CREATE on the schema, or migrate once as the database's owner",
                p.version
            ),
        ),
        Ok(_) => {}
        Err(e) => {
            let what = crate::core::errors::chain(&e);
            d.push(
                "state_db",
                match crate::store::pg_hint(&e) {
                    Some(hint) => format!("cannot use the state database {url}: {what}; {hint}"),
                    None => format!(
                        "cannot use the state database {url}: {what}; check the URL (postgresql://USER@HOST:PORT/DATABASE)"
                    ),
                },
            );
        }
    }
}

fn sqlite_state_db(d: &mut In<'_>, path: &Path, user: &ServiceUser) {
    // SQLite in WAL mode writes `-wal` and `-shm` files beside the database.
    if let Some(dir) = path.parent() {
        folder(d, "state_db", dir, user);
    }
    if path.exists() {
        match access(user, path, Want::ReadWrite) {
            Access::Yes => {}
            Access::No(why) | Access::Unknown(why) => {
                d.push(
                    "state_db",
                    format!("the state database {}: {why}", path.display()),
                );
            }
        }
    }
}

/// Whether `user` can read the existing file `path`; pushes the problem when not.
fn readable(d: &mut In<'_>, key: &str, path: &Path, user: &ServiceUser, what: &str) -> bool {
    if !path.exists() {
        d.push(
            key,
            format!(
                "{what} {} does not exist; create it or fix the path",
                path.display()
            ),
        );
        return false;
    }
    match access(user, path, Want::Read) {
        Access::Yes => true,
        Access::No(why) | Access::Unknown(why) => {
            d.push(key, format!("{what} {}: {why}", path.display()));
            false
        }
    }
}

/// The login secret of one subscription: its files, and then the secret loaded the way a
/// login loads it.
/// A password or token of the daemon file: a 0600 file the service user reads, or a
/// systemd credential.
/// `keys` names the file form and the credential form of the key.
fn secret_ref(d: &mut In<'_>, keys: [&str; 2], r: &SecretRef, user: &ServiceUser) {
    match r {
        SecretRef::File(p) => {
            secret(d, keys[0], p, user, Secret::Password);
        }
        SecretRef::Credential(name) => {
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
            credential(d, keys[1], name, dir.as_deref());
        }
    }
}

fn auth(f: &mut In<'_>, spec: &AuthSpec, user: &ServiceUser) {
    let cred_dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let (login, files_ok) = match spec {
        AuthSpec::PasswordFile(p) => {
            let ok = secret(f, "target.auth.password_file", p, user, Secret::Password);
            (crate::sftp::Auth::PasswordFile(p.clone()), ok)
        }
        AuthSpec::KeyFile {
            path,
            passphrase_file,
        } => {
            let mut ok = secret(f, "target.auth.key_file", path, user, Secret::Key);
            if let Some(pp) = passphrase_file {
                ok &= secret(
                    f,
                    "target.auth.passphrase_file",
                    pp,
                    user,
                    Secret::Passphrase,
                );
            }
            (
                crate::sftp::Auth::KeyFile {
                    path: path.clone(),
                    passphrase_file: passphrase_file.clone(),
                },
                ok,
            )
        }
        AuthSpec::PasswordCredential(name) => {
            let key = "target.auth.password_credential";
            let Some(p) = credential(f, key, name, cred_dir.as_deref()) else {
                return;
            };
            (crate::sftp::Auth::PasswordFile(p), true)
        }
        AuthSpec::KeyCredential {
            name,
            passphrase_file,
        } => {
            let mut ok = true;
            if let Some(pp) = passphrase_file {
                ok &= secret(
                    f,
                    "target.auth.passphrase_file",
                    pp,
                    user,
                    Secret::Passphrase,
                );
            }
            let Some(p) = credential(f, "target.auth.key_credential", name, cred_dir.as_deref())
            else {
                return;
            };
            (
                crate::sftp::Auth::KeyFile {
                    path: p,
                    passphrase_file: passphrase_file.clone(),
                },
                ok,
            )
        }
    };
    // Each file exists with the right mode and the service user may read it: load it as a
    // login would (a key that does not parse, a wrong passphrase, an empty password file).
    if files_ok {
        if let Err(e) = crate::sftp::check_credentials(&login) {
            let key = match spec {
                AuthSpec::PasswordFile(_) => "target.auth.password_file",
                AuthSpec::KeyFile { .. } => "target.auth.key_file",
                AuthSpec::PasswordCredential(_) => "target.auth.password_credential",
                AuthSpec::KeyCredential { .. } => "target.auth.key_credential",
            };
            f.push(key, e.to_string());
        }
    }
}

/// A systemd credential: in `$CREDENTIALS_DIRECTORY` when run by systemd, else a note that
/// the unit must load it.
fn credential(f: &mut In<'_>, key: &str, name: &str, dir: Option<&Path>) -> Option<PathBuf> {
    let Some(dir) = dir else {
        let note = format!(
            "{}: {key} = \"{name}\" is a systemd credential; it is not checked outside the service: the unit must load it with LoadCredential={name}:/etc/regdrop/secrets/{name}",
            f.file.display()
        );
        f.report.notes.push(note);
        return None;
    };
    let p = dir.join(name);
    if p.is_file() {
        Some(p)
    } else {
        f.push(
            key,
            format!(
                "the credential `{name}` is not in $CREDENTIALS_DIRECTORY ({}); add LoadCredential={name}:/etc/regdrop/secrets/{name} to the unit (systemctl edit regdrop) and restart it",
                dir.display()
            ),
        );
        None
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Secret {
    Password,
    Passphrase,
    Key,
}

/// A secret file: exists, is a file, mode 0600 or stricter, readable by the service user.
fn secret(f: &mut In<'_>, key: &str, path: &Path, user: &ServiceUser, kind: Secret) -> bool {
    let owner = user.owner_arg();
    let (o, g) = owner.split_once(':').unwrap_or((&owner, &owner));
    let create = match kind {
        Secret::Key => format!(
            "copy the private key there: install -o {o} -g {g} -m 0600 KEYFILE {}",
            path.display()
        ),
        Secret::Password | Secret::Passphrase => format!(
            "create it: install -o {o} -g {g} -m 0600 /dev/null {p}, then put the {} in it (one line): `sudoedit {p}`",
            if kind == Secret::Password { "password" } else { "passphrase" },
            p = path.display()
        ),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            f.push(key, format!("{} does not exist; {create}", path.display()));
            return false;
        }
        Err(e) => {
            f.push(
                key,
                format!(
                    "cannot look at {} ({e}); run the check as root (`sudo regdrop check`) or as the service user (`sudo -u {} regdrop check`)",
                    path.display(),
                    user.name
                ),
            );
            return false;
        }
    };
    if !meta.is_file() {
        f.push(key, format!("{} is not a file; {create}", path.display()));
        return false;
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        f.push(
            key,
            format!(
                "{} has mode {mode:04o}: group or others can read it, and the service refuses it; run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        );
        return false;
    }
    match access(user, path, Want::Read) {
        Access::Yes => true,
        Access::No(why) | Access::Unknown(why) => {
            f.push(key, format!("{}: {why}", path.display()));
            false
        }
    }
}
