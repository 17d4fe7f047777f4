//! Helpers for the daemon tests that use the real binary or a real sshd: a small register,
//! a config folder, polling.

use super::sshd::{current_user, Sshd};
use regdrop::store::{RunFilter, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes a register with `rows` vehicles (a few text columns filled with varied text).
pub fn make_register(path: &Path, rows: usize) {
    let conn = regdrop::register::schema::open_rw(path).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    {
        let mut st = conn
            .prepare(
                "INSERT INTO vehicle (tekn_kjm, tekn_unr, tekn_merkenavn, tekn_modell, tekn_reg_f_g, tekn_reg_status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .unwrap();
        for i in 0..rows {
            let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            st.execute((
                format!("EL{:05}", i % 100_000),
                format!("WVWZZZ{:011X}", x >> 20),
                ["TESLA", "VOLKSWAGEN", "TOYOTA", "VOLVO"][i % 4],
                format!(
                    "MODEL {:016x} {:016x} {:016x}",
                    x,
                    x.rotate_left(17),
                    x.rotate_left(33)
                ),
                format!("20{:02}{:02}{:02}", 10 + i % 15, 1 + i % 12, 1 + i % 28),
                format!(
                    "REGISTRERT {:032x}",
                    (x as u128) << 64 | x.rotate_left(7) as u128
                ),
            ))
            .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// A config folder: `regdrop.toml`, `subs/`, `register.sqlite`, state and spool inside.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new(rows: usize, extra_daemon: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("regdrop-daemon-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("subs")).unwrap();
        make_register(&d.join("register.sqlite"), rows);
        std::fs::write(
            d.join("regdrop.toml"),
            format!(
                "register = \"register.sqlite\"\nspool_dir = \"spool\"\nstate_db = \"state/regdrop.sqlite\"\n\
                 subscriptions_dir = \"subs\"\n[defaults]\ntimezone = \"UTC\"\n[daemon]\nmax_concurrent = 4\nmax_per_host = 2\n\
                 shutdown_grace_secs = 5\n{extra_daemon}"
            ),
        )
        .unwrap();
        Env { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("regdrop.toml")
    }

    pub fn write_sub(&self, id: &str, text: &str) {
        std::fs::write(self.path().join("subs").join(format!("{id}.toml")), text).unwrap();
    }

    pub fn store(&self) -> Store {
        Store::open(self.path().join("state/regdrop.sqlite")).unwrap()
    }

    /// Seeds a finished run at `at` so catch-up `once` fires the latest missed time now.
    pub fn seed_old_run(&self, sub: &str, at: chrono::DateTime<chrono::Utc>) {
        std::fs::create_dir_all(self.path().join("state")).unwrap();
        let s = self.store();
        let r = s
            .create_run(&regdrop::store::NewRun {
                subscription: sub.into(),
                scheduled_at: at,
            })
            .unwrap()
            .into_run();
        s.set_state(
            &r.id,
            regdrop::store::RunState::Failed,
            Some("seeded by the test"),
        )
        .unwrap();
    }

    pub fn runs(&self, sub: &str) -> Vec<regdrop::store::Run> {
        self.store()
            .list_runs(&RunFilter {
                subscription: Some(sub.into()),
                ..Default::default()
            })
            .unwrap()
    }
}

/// A host key no test server holds (a subscription pinned to it never gets past the handshake).
pub const WRONG_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj";

/// A `[retry]` body with 1 s waits (no growth) and `max_attempts`.
pub fn fast_retry(max_attempts: u32) -> String {
    format!("base_secs = 1\nfactor = 1.0\ncap_secs = 1\nmax_attempts = {max_attempts}")
}

/// [`sub_toml`] for `sshd`'s host key and user key, reached through `port` (the server's
/// own or a proxy's in front of it).
pub fn sshd_sub(
    id: &str,
    cron: &str,
    catch_up: &str,
    sshd: &Sshd,
    port: u16,
    remote_dir: &Path,
    retry: &str,
) -> String {
    sub_toml(
        id,
        cron,
        catch_up,
        port,
        &sshd.host_pub,
        &sshd.user_key,
        remote_dir,
        retry,
    )
}

/// A subscription delivering `technical` as dsv to `127.0.0.1:port`.
#[allow(clippy::too_many_arguments)]
pub fn sub_toml(
    id: &str,
    cron: &str,
    catch_up: &str,
    port: u16,
    host_key: &str,
    key_file: &Path,
    remote_dir: &Path,
    retry: &str,
) -> String {
    format!(
        "id = \"{id}\"\ncustomer = \"Test {id} AS\"\n[schedule]\ncron = \"{cron}\"\ncatch_up = \"{catch_up}\"\n\
         [target]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"{user}\"\nhost_keys = [\"{host_key}\"]\n\
         auth = {{ key_file = \"{key}\" }}\nremote_dir = \"{remote}\"\nconnect_timeout_secs = 5\n\
         [extract]\nreport = \"technical\"\nformat = \"dsv\"\n\
         [encryption]\nrecipients = [\"age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r\"]\n\
         [retry]\n{retry}\n",
        user = current_user(),
        key = key_file.display(),
        remote = remote_dir.display(),
    )
}

/// Starts the daemon in-process on `env`'s config with `opts` until the returned sender
/// fires (or is dropped); the handle ends when the daemon has shut down.
pub fn start_daemon(
    env: &Env,
    opts: regdrop::daemon::Options,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = env.config();
    let h = tokio::spawn(async move {
        regdrop::daemon::run_with(
            cfg,
            async move {
                let _ = rx.await;
            },
            opts,
        )
        .await
        .unwrap();
    });
    (tx, h)
}

/// Polls `f` every 20 ms until it returns `Some`, or panics with `what` after `secs`.
pub async fn wait_for<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_or(secs, what, f, String::new).await
}

/// [`wait_for`] that adds `context()` (e.g. the daemon's logs) to the panic.
pub async fn wait_for_or<T>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}\n{}", context());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
