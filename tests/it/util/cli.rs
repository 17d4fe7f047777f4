//! Running the real `regdrop` binary and the reference `age-keygen` from tests.

use std::path::Path;
use std::process::{Command, Stdio};

/// What a command printed and how it ended.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
    /// stdout then stderr, for assertions and failure messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` to its end with no standard input.
pub fn run(cmd: &mut Command) -> Out {
    let out = cmd.stdin(Stdio::null()).output().expect("run the command");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The built binary, quiet logs.
pub fn regdrop() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regdrop"));
    c.env("REGDROP_LOG", "warn");
    c
}

/// The built binary with `--config DIR/regdrop.toml`.
pub fn regdrop_in(dir: &Path) -> Command {
    let mut c = regdrop();
    c.arg("--config").arg(dir.join("regdrop.toml"));
    c
}

/// Makes an age identity at `path` with the reference `age-keygen`; returns its recipient.
pub fn age_keygen(path: &Path) -> String {
    let made = run(Command::new("age-keygen").arg("-o").arg(path));
    assert!(
        made.ok(),
        "age-keygen failed (apt-get install age): {}",
        made.text()
    );
    let public = run(Command::new("age-keygen").arg("-y").arg(path));
    assert!(public.ok(), "{}", public.text());
    public.stdout.trim().to_string()
}

/// The daemon file every CLI test starts from: register, spool, state store and a `subs`
/// folder inside `dir`. `extra` is appended (more daemon keys).
pub fn write_config(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir.join("subs")).unwrap();
    std::fs::write(
        dir.join("regdrop.toml"),
        format!(
            "register = \"register.sqlite\"\nspool_dir = \"spool\"\nstate_db = \"state/regdrop.sqlite\"\nsubscriptions_dir = \"subs\"\n{extra}"
        ),
    )
    .unwrap();
}

/// The customer subscription `sub` of the `regdrop deliver` tests: `technical_owners` as
/// dsv sealed to `recipient`, key login as `user` into `remote` on `127.0.0.1:port`
/// pinned to `host_key`, a dated file name, 1 s retries up to `max_attempts`.
/// `extract_extra` closes the `[extract]` table (e.g. `code_tables = [..]`), `extra` the
/// file.
pub struct CustomerSub<'a> {
    pub port: u16,
    pub user: &'a str,
    pub host_key: &'a str,
    pub key: &'a Path,
    pub remote: &'a str,
    pub recipient: &'a str,
    pub extract_extra: &'a str,
    pub max_attempts: u32,
    pub extra: &'a str,
}

impl CustomerSub<'_> {
    pub fn toml(&self) -> String {
        format!(
            r#"id = "sub"
customer = "Kunde AS"
customer_org_number = "923609016"
case_number = "26/4242"
legal_basis = "test basis"
[schedule]
cron = "0 6 * * *"
[target]
host = "127.0.0.1"
port = {port}
username = "{user}"
host_keys = ["{host_key}"]
auth = {{ key_file = "{key}" }}
remote_dir = "{remote}"
connect_timeout_secs = 10
[extract]
report = "technical_owners"
format = "dsv"
{extract_extra}[encryption]
recipients = ["{rec}"]
[delivery]
file_name = "{{id}}_{{run:%Y%m%d}}.{{ext}}"
[retry]
base_secs = 1
cap_secs = 1
max_attempts = {max_attempts}
{extra}"#,
            port = self.port,
            user = self.user,
            host_key = self.host_key,
            key = self.key.display(),
            remote = self.remote,
            extract_extra = self.extract_extra,
            rec = self.recipient.trim(),
            max_attempts = self.max_attempts,
            extra = self.extra,
        )
    }
}
