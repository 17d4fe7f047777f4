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
