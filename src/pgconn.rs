//! PostgreSQL plumbing shared by the state store and the register: the `postgresql://` URL
//! made into a connection (TLS through rustls, [`Target`]), a client on a thread of its own
//! ([`Worker`]), and what an error means: retry or not ([`class`]), lost connection
//! ([`connection_lost`]) and what an operator should do ([`hint`]). A URL without a password
//! takes it from a password file as libpq does ([`passfile`]).
//!
//! The sync `postgres` client runs a small tokio runtime of its own and panics when called
//! on a thread inside a tokio runtime (the daemon's tasks, their blocking threads), so a
//! client always lives on a plain OS thread and is handed closures.

use crate::core::config::location::PgUrl;
use crate::core::retry::ErrorClass;
use postgres::config::{Host, SslMode};
use postgres::{Client, NoTls};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

pub mod bulk;
pub mod copy_text;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect.
pub struct Target {
    /// tokio-postgres's (the sync client's is made from it).
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The URL without its password.
    pub shown: String,
}

impl Target {
    /// Reads `url`; `Err` says what is wrong with it.
    pub fn parse(url: &PgUrl) -> Result<Target, String> {
        let shown = url.to_string();
        let (base, query) = match url.expose().split_once('?') {
            Some((b, q)) => (b, q),
            None => (url.expose(), ""),
        };
        let mut sslmode = None;
        let mut rootcert = None;
        let mut pass_file = None;
        let mut rest = Vec::new();
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            match kv.split_once('=') {
                Some(("sslmode", v)) => sslmode = Some(v.to_ascii_lowercase()),
                Some(("sslrootcert", v)) => rootcert = Some(v.to_string()),
                Some(("passfile", v)) => pass_file = Some(passfile::percent_decoded(v)),
                _ => rest.push(kv),
            }
        }
        let text = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config: tokio_postgres::Config = text.parse().map_err(|e: postgres::Error| {
            format!("{e} (write postgresql://USER@HOST:PORT/DATABASE)")
        })?;
        if config.get_password().is_none() {
            if let Some(password) = passfile::password_for(&config, pass_file.as_deref())? {
                config.password(password);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("regdrop");
        }
        let unix_only = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
        let want_tls = match sslmode.as_deref() {
            None | Some("disable") => false,
            Some("require" | "verify-ca" | "verify-full") => true,
            Some(other) => {
                return Err(format!(
                    "sslmode={other} is not offered: write sslmode=verify-full (encrypted, \
                     certificate checked) or sslmode=disable (a Unix socket or loopback)"
                ))
            }
        };
        let tls = if want_tls && !unix_only {
            config.ssl_mode(SslMode::Require);
            Some(rustls_connector(rootcert.as_deref())?)
        } else {
            config.ssl_mode(SslMode::Disable);
            None
        };
        Ok(Target { config, tls, shown })
    }

    /// Connects (blocking; call it on a thread outside any tokio runtime).
    pub fn connect(&self) -> Result<Client, postgres::Error> {
        let config = postgres::Config::from(self.config.clone());
        match &self.tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        }
    }
}

/// libpq's password file: `passfile=PATH` in the URL, else `$PGPASSFILE`, else `~/.pgpass`
/// (only that default may be absent). Lines `host:port:database:user:password`, `*` matching
/// anything, `\:` and `\\` escapes, `#` comments; the first line that matches wins; a Unix
/// socket matches the host `localhost`. A file readable by group or others is refused (libpq
/// ignores it): a password must not be world-readable. Under systemd:
/// `LoadCredential=pgpass:/etc/regdrop/secrets/pgpass` and `Environment=PGPASSFILE=%d/pgpass`.
pub mod passfile {
    use postgres::config::Host;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// What a line must match.
    pub struct Wanted<'a> {
        pub host: &'a str,
        pub port: u16,
        pub database: &'a str,
        pub user: &'a str,
    }

    /// The password for `config` from its password file, if one has a line for it.
    pub fn password_for(
        config: &tokio_postgres::Config,
        explicit: Option<&str>,
    ) -> Result<Option<String>, String> {
        let (path, must_exist) = match explicit
            .map(str::to_string)
            .or_else(|| std::env::var("PGPASSFILE").ok().filter(|p| !p.is_empty()))
        {
            Some(p) => (PathBuf::from(p), true),
            None => match std::env::var_os("HOME") {
                Some(home) => (PathBuf::from(home).join(".pgpass"), false),
                None => return Ok(None),
            },
        };
        let Some(user) = config.get_user() else {
            return Ok(None);
        };
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.as_str(),
            _ => "localhost",
        };
        let wanted = Wanted {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            database: config.get_dbname().unwrap_or(user),
            user,
        };
        let shown = path.display();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(None),
            Err(e) => return Err(format!("password file {shown}: {e}")),
        };
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "password file {shown} is readable by group or others: chmod 0600 {shown}"
            ));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("password file {shown}: {e}"))?;
        Ok(lookup(&text, &wanted))
    }

    /// The password of the first line of `text` that matches `w`.
    pub fn lookup(text: &str, w: &Wanted<'_>) -> Option<String> {
        let port = w.port.to_string();
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(fields)
            .find(|f| {
                [w.host, port.as_str(), w.database, w.user]
                    .iter()
                    .zip(f.iter())
                    .all(|(want, got)| got == "*" || got == want)
            })
            .map(|mut f| f.pop().expect("five fields"))
    }

    /// A line's five fields, unescaped; `None` for a line with fewer.
    fn fields(line: &str) -> Option<Vec<String>> {
        let mut out = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.last_mut()?.push(chars.next().unwrap_or('\\')),
                ':' if out.len() < 5 => out.push(String::new()),
                c => out.last_mut()?.push(c),
            }
        }
        (out.len() == 5).then_some(out)
    }

    /// `%XX` decoded, as in the rest of a connection URL.
    pub fn percent_decoded(v: &str) -> String {
        let b = v.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b[i],
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (b'%', Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                (c, _, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const W: Wanted<'static> = Wanted {
            host: "db.example",
            port: 5432,
            database: "regdrop",
            user: "regdrop",
        };

        #[test]
        fn the_first_matching_line_wins_and_stars_match_anything() {
            let text = "# comment\nother:5432:regdrop:regdrop:no\n\
                        db.example:5432:register:regdrop:no\n\
                        db.example:*:regdrop:regdrop:yes\n*:*:*:*:later\n";
            assert_eq!(lookup(text, &W).as_deref(), Some("yes"));
            assert_eq!(lookup("*:*:*:*:any\n", &W).as_deref(), Some("any"));
            assert_eq!(lookup("db.example:5433:*:*:x\n", &W), None);
            assert_eq!(lookup("", &W), None);
        }

        #[test]
        fn escapes_colons_in_the_password_and_short_lines() {
            let text = "db.example:5432:regdrop:regdrop\n\
                        db\\.example:5432:regdrop:regdrop:a\\:b\\\\c:d\n";
            // The short first line is skipped; `\.` is `.`; the password keeps its colons.
            assert_eq!(lookup(text, &W).as_deref(), Some("a:b\\c:d"));
        }

        #[test]
        fn percent_decoding() {
            assert_eq!(percent_decoded("%2Frun%2Fpg%20pass"), "/run/pg pass");
            assert_eq!(percent_decoded("/plain/path%"), "/plain/path%");
        }
    }
}

/// rustls with ring, the system's roots and `sslrootcert`'s certificates.
fn rustls_connector(
    rootcert: Option<&str>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = rootcert {
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("sslrootcert={path}: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("sslrootcert={path}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("sslrootcert={path}: {e}"))?;
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted root certificates: install ca-certificates or give sslrootcert=FILE".into(),
        );
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Why a [`Worker`] call failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The driver's error with its cause ([`described`]).
    #[error("{}", described(.0))]
    Db(postgres::Error),
    /// The connection was lost while the server was answering (a COPY's data stopped
    /// coming): retried, whatever the I/O error says.
    #[error("{}", described(.0))]
    Lost(postgres::Error),
    /// Reading from the connection failed below the driver.
    #[error("reading from PostgreSQL: {0}")]
    Io(std::io::Error),
    /// The URL cannot be used as written.
    #[error("{url}: {why}")]
    Config { url: String, why: String },
    /// The client's thread is gone (a panic in a call, whose message is in the log).
    #[error("the PostgreSQL connection thread has stopped")]
    Thread,
}

/// A driver error as one line with its cause: for an error the server sent, its severity,
/// message, detail and hint (tokio-postgres shows only "db error" and keeps the server's
/// words as the cause); else the error and its causes ("error communicating with the
/// server: ...").
pub fn described(e: &postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return crate::core::errors::chain(e);
    };
    let mut line = format!("{}: {}", db.severity(), db.message());
    for (what, text) in [("detail", db.detail()), ("hint", db.hint())] {
        if let Some(t) = text {
            line.push_str(&format!(" ({what}: {})", t.replace('\n', " ")));
        }
    }
    line
}

impl WorkerError {
    /// `"; <what to do>"` when [`hint`] knows, else nothing: to end a message with.
    pub fn hint_suffix(&self, used: Use) -> String {
        match self {
            WorkerError::Db(e) => hint(e, used).map(|h| format!("; {h}")).unwrap_or_default(),
            WorkerError::Lost(_) => format!("; {CUT_HINT}"),
            _ => String::new(),
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            WorkerError::Db(e) => class(e),
            WorkerError::Lost(_) => ErrorClass::Retryable,
            WorkerError::Io(_) => ErrorClass::Retryable,
            WorkerError::Config { .. } => ErrorClass::Permanent,
            WorkerError::Thread => ErrorClass::Retryable,
        }
    }
}

impl WorkerError {
    /// `e` from a connection that was up and answering: [`WorkerError::Lost`] when it says
    /// the connection went (no error from the server itself), else [`WorkerError::Db`].
    pub fn midway(e: postgres::Error) -> WorkerError {
        match e.code().is_none() && connection_lost(&e) {
            true => WorkerError::Lost(e),
            false => WorkerError::Db(e),
        }
    }
}

impl From<postgres::Error> for WorkerError {
    fn from(e: postgres::Error) -> Self {
        WorkerError::Db(e)
    }
}

impl From<std::io::Error> for WorkerError {
    /// The postgres crate hands its own errors back inside `io::Error` (COPY readers and
    /// writers): unwrapped again here.
    fn from(e: std::io::Error) -> Self {
        if e.get_ref().is_some_and(|i| i.is::<postgres::Error>()) {
            if let Some(Ok(pe)) = e.into_inner().map(|i| i.downcast::<postgres::Error>()) {
                return WorkerError::Db(*pe);
            }
            return WorkerError::Thread;
        }
        WorkerError::Io(e)
    }
}

/// A client a [`Worker`] holds: made from a [`Target`] on the worker's own thread.
pub trait Session: Sized + 'static {
    /// Connects (blocking, on a thread outside any tokio runtime).
    fn open(target: &Target) -> Result<Self, WorkerError>;
}

impl Session for Client {
    fn open(target: &Target) -> Result<Self, WorkerError> {
        Ok(target.connect()?)
    }
}

type Job<C> = Box<dyn FnOnce(&mut C) + Send>;

/// One connection on a thread of its own; [`Worker::call`] runs a closure with the client
/// there and waits for its answer, [`Worker::submit`] runs one without waiting (it answers
/// through a channel of its own, e.g. a stream of COPY data). Dropping the worker closes the
/// connection. The client is the sync `postgres` one ([`Worker::connect`]) or the
/// [`bulk::BulkClient`] ([`Worker::connect_bulk`]).
pub struct Worker<C: Session = Client> {
    jobs: Option<mpsc::Sender<Job<C>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shown: String,
}

impl Worker<Client> {
    /// Starts the thread and connects (a wrong URL, password or database fails here).
    pub fn connect(url: &PgUrl) -> Result<Worker, WorkerError> {
        Worker::start(url)
    }
}

impl Worker<bulk::BulkClient> {
    /// As [`Worker::connect`], with a [`bulk::BulkClient`].
    pub fn connect_bulk(url: &PgUrl) -> Result<Worker<bulk::BulkClient>, WorkerError> {
        Worker::start(url)
    }
}

impl<C: Session> Worker<C> {
    fn start(url: &PgUrl) -> Result<Worker<C>, WorkerError> {
        let target = Target::parse(url).map_err(|why| WorkerError::Config {
            url: url.to_string(),
            why,
        })?;
        let shown = target.shown.clone();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), WorkerError>>(1);
        let (jobs, rx) = mpsc::channel::<Job<C>>();
        let thread = std::thread::Builder::new()
            .name("regdrop-pg-worker".into())
            .spawn(move || {
                let mut client = match C::open(&target) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in rx {
                    if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut client))).is_err() {
                        // The caller got no answer; its channel tells it so.
                        return;
                    }
                }
            })
            .map_err(|_| WorkerError::Thread)?;
        ready_rx.recv().map_err(|_| WorkerError::Thread)??;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
            shown,
        })
    }

    /// The URL without its password.
    pub fn target(&self) -> &str {
        &self.shown
    }

    /// Runs `f` with the client and returns its answer.
    pub fn call<R: Send + 'static, E: Into<WorkerError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut C) -> Result<R, E> + Send + 'static,
    ) -> Result<R, WorkerError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(move |c| {
            let _ = tx.send(f(c).map_err(Into::into));
        })?;
        rx.recv().map_err(|_| WorkerError::Thread)?
    }

    /// Queues `f` and returns at once.
    pub fn submit(&self, f: impl FnOnce(&mut C) + Send + 'static) -> Result<(), WorkerError> {
        self.jobs
            .as_ref()
            .ok_or(WorkerError::Thread)?
            .send(Box::new(f))
            .map_err(|_| WorkerError::Thread)
    }
}

impl<C: Session> Drop for Worker<C> {
    fn drop(&mut self) {
        // Closing the channel ends the thread once its job is done, which closes the
        // connection.
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether `e` means the connection is gone (closed, I/O, or the server said so).
pub fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03")
        }
        None => io_cause(e).is_some(),
    }
}

/// The I/O error under `e`, if any.
pub fn io_cause(e: &postgres::Error) -> Option<&std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = c.source();
    }
    None
}

const CUT_HINT: &str = "the connection was cut in the middle of the server's answer (a restart, a failover or a network cut); the next attempt connects again";

/// Whether the server's side of the connection ended in the middle of a message (a
/// restart, a failover, a network cut while it was answering): tokio-util's framing below
/// the driver says so with an `Other` I/O error of its own.
pub fn cut_mid_message(e: &postgres::Error) -> bool {
    io_cause(e).is_some_and(|io| {
        io.kind() == std::io::ErrorKind::Other && io.to_string() == "bytes remaining on stream"
    })
}

/// Class of a PostgreSQL error: a lost (also in the middle of an answer) or refused connection, a server shutting down or not
/// yet up, a serialization failure, a deadlock, a lock or statement timeout and too many
/// connections can pass; a constraint violation, a wrong password, a missing database or
/// table, a permission problem and everything else need someone to act.
pub fn class(e: &postgres::Error) -> ErrorClass {
    if e.is_closed() {
        return ErrorClass::Retryable;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        return if c.starts_with("08")
            || c.starts_with("53")
            || matches!(
                c,
                "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03" | "57014"
            ) {
            ErrorClass::Retryable
        } else {
            ErrorClass::Permanent
        };
    }
    if cut_mid_message(e) {
        return ErrorClass::Retryable;
    }
    use std::io::ErrorKind as K;
    match io_cause(e).map(std::io::Error::kind) {
        Some(
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::TimedOut
            | K::UnexpectedEof
            | K::Interrupted
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NotFound,
        ) => ErrorClass::Retryable,
        // A TLS failure (an unknown certificate) is I/O too, but needs an operator.
        _ => ErrorClass::Permanent,
    }
}

/// What a database is used for, which decides the hint's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// `state_db`: regdrop creates and writes its tables.
    StateDb,
    /// `register`: regdrop reads the register's tables (or views).
    Register,
}

/// What an operator should do about `e`, when the error says.
pub fn hint(e: &postgres::Error, used: Use) -> Option<&'static str> {
    if let Some(code) = e.code() {
        return match (code.code(), used) {
            ("28P01" | "28000", Use::StateDb) => Some(
                "the server refused the login: check the user and password in state_db (~/.pgpass and PGPASSWORD are not read) and the server's pg_hba.conf",
            ),
            ("28P01" | "28000", Use::Register) => Some(
                "the server refused the login: check the user and password in register (~/.pgpass and PGPASSWORD are not read) and the server's pg_hba.conf",
            ),
            ("3D000", Use::StateDb) => Some(
                "the database does not exist: create it (createdb -O USER DATABASE) or fix the name in state_db",
            ),
            ("3D000", Use::Register) => Some(
                "the database does not exist: fix the name in register, or create it and load it with `regdrop register generate|import --register URL`",
            ),
            ("42501", Use::StateDb) => Some(
                "the user may not do this: grant it CREATE on the database's public schema (or own the database)",
            ),
            ("42501", Use::Register) => Some(
                "the user may not read the register: GRANT USAGE on its schema and SELECT on its tables or views (docs/register.md)",
            ),
            ("42P01" | "42703", Use::Register) => Some(
                "the register lacks a table or column regdrop reads: load it with `regdrop register generate|import --register URL`, or map the real register with views (docs/register.md)",
            ),
            ("53300", _) => {
                Some("the server has no connection slot left: raise max_connections or wait")
            }
            ("57P03", _) => Some("the server is starting up or shutting down: wait and try again"),
            _ => None,
        };
    }
    if cut_mid_message(e) {
        return Some(CUT_HINT);
    }
    if io_cause(e).is_some() || e.is_closed() {
        return Some(
            "the server is not reachable: is PostgreSQL running and listening on that host and port (pg_isready), and does a firewall let it through?",
        );
    }
    None
}
