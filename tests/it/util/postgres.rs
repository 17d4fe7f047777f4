//! Test harness: a throwaway PostgreSQL cluster (Debian's `postgresql`: `initdb` and
//! `postgres` from `/usr/lib/postgresql/<version>/bin`), one per test process, started on
//! first use on a free loopback port and a private Unix socket folder; each test takes a
//! database of its own ([`Postgres::fresh_database`]). Never skips: missing binaries fail the
//! test loudly with the package to install.
//!
//! PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` OS user
//! (created by the Debian package); as anyone else it runs as that user. The server gets
//! `SIGQUIT` (immediate shutdown) when the test process dies (`PR_SET_PDEATHSIG`), so no
//! postmaster outlives the tests; data folders of dead test processes are removed at the next
//! start.
//!
//! Authentication: `trust` for the superuser `postgres` and everyone on the socket, except the
//! role [`PW_ROLE`], which must log in over TCP with [`PW_PASSWORD`] (scram-sha-256), so tests
//! can see a wrong password refused.

use super::launch::Launch;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// A role that needs a password (for the "wrong password" tests).
pub const PW_ROLE: &str = "regdrop_pw";
pub const PW_PASSWORD: &str = "Pg-Correct-Horse-7";

/// The running cluster of this test process.
pub struct Postgres {
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The folder holding the server's Unix socket (`.s.PGSQL.PORT`).
    pub socket_dir: PathBuf,
    /// The data folder (its `log` file has the server's log).
    pub data_dir: PathBuf,
    bin: PathBuf,
    _child: Child,
}

static CLUSTER: OnceLock<Postgres> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(1);

/// The folder with `initdb`, `postgres` and `psql` of the newest installed PostgreSQL.
pub fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             apt-get install postgresql (scripts/test does this)"
        )
    })
}

/// The OS user the server runs as: `postgres` as root, else whoever runs the tests.
fn server_user() -> Option<(u32, u32)> {
    if !super::root::is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres")
        .expect("reading the user database")
        .unwrap_or_else(|| {
            panic!("no `postgres` OS user: apt-get install postgresql (it creates the user)")
        });
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// A command run as the server's user, with the parent-death signal when `pdeathsig`.
fn as_server_user(program: &Path, pdeathsig: bool) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = server_user() {
        cmd.uid(uid).gid(gid).env("HOME", "/tmp");
    }
    if pdeathsig {
        #[allow(unsafe_code)]
        // SAFETY: prctl(2) and getppid(2) are async-signal-safe and touch no memory of the
        // parent; the closure runs in the child after the uid change (which would clear the
        // setting if it came later), just before exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("test process gone"));
                }
                Ok(())
            });
        }
    }
    cmd
}

/// Removes data folders of test processes that are gone (their postmaster died with them).
fn sweep_stale(parent: &Path) {
    for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("regdrop-pg-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Postgres {
    /// The cluster of this test process, started on first use.
    pub fn get() -> &'static Postgres {
        CLUSTER.get_or_init(|| {
            // PR_SET_PDEATHSIG fires when the *thread* that started the server ends, not the
            // process: start it from a thread that lives as long as the test process.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("postgres-fixture".into())
                .spawn(move || {
                    let _ = tx.send(Postgres::start());
                    loop {
                        std::thread::park();
                    }
                })
                .expect("a thread for the PostgreSQL fixture");
            rx.recv()
                .expect("starting the PostgreSQL cluster failed (its panic is above)")
        })
    }

    fn start() -> Postgres {
        let bin = bin_dir();
        let parent = std::env::temp_dir();
        sweep_stale(&parent);
        let root = parent.join(format!("regdrop-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let data_dir = root.join("data");
        let socket_dir = root.join("sock");
        for d in [&root, &data_dir, &socket_dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        if let Some((uid, gid)) = server_user() {
            for d in [&root, &data_dir, &socket_dir] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
            }
        }
        let pwfile = root.join("pw");
        std::fs::write(&pwfile, "unused-superuser-password\n").unwrap();
        if let Some((uid, gid)) = server_user() {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let out = as_server_user(&bin.join("initdb"), false)
            .args(["-D"])
            .arg(&data_dir)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The password role over TCP first (first match wins), everyone else trusted.
        std::fs::write(
            data_dir.join("pg_hba.conf"),
            format!(
                "local all all trust\n\
                 host all {PW_ROLE} 127.0.0.1/32 scram-sha-256\n\
                 host all all 127.0.0.1/32 trust\n"
            ),
        )
        .unwrap();
        let log_path = data_dir.join("log");
        let log = || std::fs::read_to_string(data_dir.join("log")).unwrap_or_default();
        let (child, port) = Launch {
            name: "postgres",
            ready_means: "accept connections",
            within: Duration::from_secs(60),
            log: &log,
            port_taken: &|_, text| text.contains("Address already in use"),
        }
        .start(
            |port| {
                let logf = std::fs::File::create(&log_path).unwrap();
                if let Some((uid, gid)) = server_user() {
                    std::os::unix::fs::chown(&log_path, Some(uid), Some(gid)).unwrap();
                }
                as_server_user(&bin.join("postgres"), true)
                    .arg("-D")
                    .arg(&data_dir)
                    .args(["-p", &port.to_string(), "-k"])
                    .arg(&socket_dir)
                    .args([
                        "-c",
                        "listen_addresses=127.0.0.1",
                        // A test cluster: speed over durability, many test connections.
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=300",
                        "-c",
                        "shared_buffers=64MB",
                    ])
                    .stdin(Stdio::null())
                    .stdout(logf.try_clone().unwrap())
                    .stderr(logf)
                    .spawn()
                    .expect("starting postgres")
            },
            |_, port| {
                Command::new(bin.join("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                    .status()
                    .is_ok_and(|s| s.success())
            },
        );
        let pg = Postgres {
            port,
            socket_dir,
            data_dir,
            bin,
            _child: child,
        };
        pg.psql(
            "postgres",
            &format!("CREATE ROLE {PW_ROLE} LOGIN PASSWORD '{PW_PASSWORD}'"),
        );
        pg
    }

    /// Runs `sql` with `psql` as the superuser in `db`; returns its unaligned output
    /// (`-At`: one row per line, `|` between columns). Panics with the error on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("running psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new empty database owned by the superuser; returns its name (`t_<pid>_<n>`).
    pub fn fresh_database(&self) -> String {
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// `postgresql://postgres@127.0.0.1:PORT/DB` (TCP, trusted).
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The same database over the Unix socket: `postgresql://postgres@%2F...%2Fsock/DB`.
    pub fn socket_url(&self, db: &str) -> String {
        let dir = self.socket_dir.display().to_string().replace('/', "%2F");
        format!("postgresql://postgres@{dir}:{}/{db}", self.port)
    }

    /// A URL for [`PW_ROLE`] with `password` (right or wrong).
    pub fn password_url(&self, db: &str, password: &str) -> String {
        format!(
            "postgresql://{PW_ROLE}:{password}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("log")).unwrap_or_default()
    }
}

/// A fresh database's URL in one call: `(cluster, database name, url)`.
pub fn fresh() -> (&'static Postgres, String, String) {
    let pg = Postgres::get();
    let db = pg.fresh_database();
    let url = pg.url(&db);
    (pg, db, url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture itself: a database per call, the password role refused with a wrong
    /// password and let in with the right one, and both URLs reach the same server.
    #[test]
    fn cluster_starts_and_gives_databases() {
        let (pg, db, _url) = fresh();
        let other = pg.fresh_database();
        assert_ne!(db, other);
        pg.psql(&db, "CREATE TABLE t (x int); INSERT INTO t VALUES (7)");
        assert_eq!(pg.psql(&db, "SELECT x FROM t").trim(), "7");
        assert_eq!(
            pg.psql(
                &other,
                "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
            )
            .trim(),
            "0"
        );
        let try_login = |password: &str| {
            Command::new(pg.bin.join("psql"))
                .arg(pg.password_url("postgres", password))
                .args(["-X", "-At", "-c", "SELECT 1"])
                .output()
                .unwrap()
        };
        let wrong = try_login("wrong");
        assert!(!wrong.status.success());
        assert!(
            String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
            "{}",
            String::from_utf8_lossy(&wrong.stderr)
        );
        assert!(try_login(PW_PASSWORD).status.success(), "{}", pg.log());
        let via_socket = Command::new(pg.bin.join("psql"))
            .arg(pg.socket_url(&db))
            .args(["-X", "-At", "-c", "SELECT x FROM t"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&via_socket.stdout).trim(), "7");
    }
}
