//! The commands: each takes parsed arguments, wires config and adapters, prints for a
//! person, and returns an exit code. `main` only parses, sets up logging and calls `run`.

/// `println!` for the commands that keep SIGPIPE ignored (they talk to the network, where a
/// closed socket must be an error, not a signal): when the reader of stdout went away
/// (`regdrop probe SUB | head -3`), the command ends quietly with 141 (128 + SIGPIPE, what
/// the shell shows for the printing commands) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cmd::out_line(format_args!($($arg)*))
    };
}

mod agenda;
mod check;
pub mod cli;
pub mod daemon;
mod deliver;
pub mod demo;
mod demo_server;
mod docs;
mod extract;
pub mod init;
pub mod logging;
pub mod new_subscription;
mod receipts;
mod register;
mod resolve;
mod status;
mod times;

use crate::cmd::cli::{Cli, Command, HostkeyCmd};
use crate::core::config;
use crate::core::config::location::DbLocation;
use crate::loader::Loaded;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::process::ExitCode;

/// `regdrop --version`: the crate version and the git commit it was built from (build.rs;
/// "unknown" outside a git checkout).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("REGDROP_COMMIT"), ")");

/// Exit code for configuration errors: systemd's `RestartPreventExitStatus=78` (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code when the reader of stdout went away (128 + SIGPIPE, as after the signal).
pub const EXIT_CLOSED_PIPE: u8 = 141;
/// Exit code for a usage error (what clap uses for a wrong command line, and ours for a
/// flag value that cannot be used).
pub const EXIT_USAGE: u8 = 2;

/// A failure that maps to a specific exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check::check(cli.config.as_deref(), &args),
        Command::NewSubscription(args) => new_subscription::run(cli.config.as_deref(), *args),
        Command::Fields => {
            check::fields();
            Ok(ExitCode::SUCCESS)
        }
        Command::Next {
            sub,
            count,
            after,
            json,
        } => agenda::next(
            cli.config.as_deref(),
            sub.as_deref(),
            count,
            after.as_deref(),
            json,
        ),
        Command::Agenda {
            count,
            within,
            after,
            json,
        } => agenda::agenda(
            cli.config.as_deref(),
            &agenda::AgendaArgs {
                within: within.as_deref(),
                count,
                after: after.as_deref(),
                json,
            },
        ),
        Command::Preview { sub, rows, at, sql } => {
            extract::preview(cli.config.as_deref(), &sub, rows, at.as_deref(), sql)
        }
        Command::Extract {
            sub,
            out,
            at,
            passphrase_file,
        } => extract::extract(
            cli.config.as_deref(),
            &sub,
            &out,
            at.as_deref(),
            passphrase_file.as_deref(),
        ),
        Command::Register(cmd) => register::register(cli.config.as_deref(), cmd),
        Command::Run => daemon::run(cli.config.as_deref()),
        Command::Retry { run } => daemon::retry(cli.config.as_deref(), &run),
        Command::Status { json } => status::status(cli.config.as_deref(), json),
        Command::Resolve { runs, reason, by } => {
            resolve::resolve(cli.config.as_deref(), &runs, &reason, by.as_deref())
        }
        Command::Deliver { sub, at, no_retry } => deliver::deliver(
            cli.config.as_deref(),
            &sub,
            at.as_deref(),
            deliver::Manual {
                no_retry,
                quiet: cli.quiet,
            },
        ),
        Command::Probe { sub, json } => deliver::probe(cli.config.as_deref(), &sub, json),
        Command::Hostkey(HostkeyCmd::Scan {
            addr,
            timeout_secs,
            json,
        }) => deliver::hostkey_scan(&addr, timeout_secs, json),
        Command::Receipts(cmd) => receipts::receipts(cli.config.as_deref(), cmd),
        Command::Demo {
            dir,
            vehicles,
            cycles,
        } => {
            demo::run(&demo::DemoOptions {
                dir,
                vehicles,
                cycles,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoServer {
            root,
            listen,
            user,
            authorized_key,
            password_file,
            host_key,
        } => demo_server::demo_server(root, listen, user, authorized_key, password_file, host_key),
        Command::Init(args) => init::run(&args),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man => docs::man(),
    }
}

/// What [`outln!`] calls.
pub(crate) fn out_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(EXIT_CLOSED_PIPE.into());
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Opens the state store (creating a SQLite file's folder).
pub fn open_store(loaded: &Loaded) -> Result<Store> {
    let location = &loaded.daemon.state_db;
    if let Some(dir) = location.sqlite_path().and_then(Path::parent) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    open_location(location)
}

/// Opens the store at `location`; a PostgreSQL error that says what to do carries it.
pub(super) fn open_location(location: &DbLocation) -> Result<Store> {
    Store::open_location(location).map_err(|e| {
        let what = format!("opening the state store {location}");
        match crate::store::pg_hint(&e) {
            Some(hint) => anyhow::Error::new(e).context(format!("{what} ({hint})")),
            None => anyhow::Error::new(e).context(what),
        }
    })
}

/// Opens the state store when it exists (commands that only read it: a fresh install
/// has no SQLite file yet, which is not an error; a PostgreSQL store is always there).
pub(super) fn open_existing_store(state_db: &DbLocation) -> Result<Option<Store>> {
    if state_db.sqlite_path().is_some_and(|p| !p.exists()) {
        return Ok(None);
    }
    open_location(state_db).map(Some)
}

/// Refuses a delivery by hand under a node name a live daemon on another machine holds
/// (a copied configuration): its leases would read as this machine's. Exit 78, with who
/// holds the name and what to do. This machine's own daemon is the same node: fine.
pub(crate) fn refuse_name_held_elsewhere(loaded: &Loaded, store: &Store) -> Result<()> {
    let daemon = &loaded.daemon;
    let name = crate::pipeline::delivery::node_name(daemon)?;
    let held = store
        .node_entry(&name)
        .with_context(|| format!("reading node `{name}` in the state store's registry"))?;
    let me = crate::daemon::registry::this_instance();
    if !crate::core::nodes::held_elsewhere(held.as_ref(), &me, Utc::now(), daemon.lease) {
        return Ok(());
    }
    let h = held.expect("held elsewhere");
    Err(anyhow::Error::new(Exit {
        code: EXIT_CONFIG,
        message: format!(
            "node name `{name}` is held by a regdrop daemon running on another machine (host {}, pid {}, \
             last heartbeat {}): a delivery by hand here would act as that node. Give this machine \
             its own [daemon] node (README \"Running more than one node\"), or deliver from {}",
            h.instance.host,
            h.instance.pid,
            crate::store::fmt_ts(h.heartbeat_at),
            h.instance.host
        ),
    }))
}

/// Loads the config; a broken daemon file is a config error (exit 78).
pub fn load(flag: Option<&Path>) -> Result<Loaded> {
    let path = crate::loader::default_path(flag);
    crate::loader::load(&path).map_err(|e| {
        anyhow::Error::new(Exit {
            code: EXIT_CONFIG,
            message: e.to_string(),
        })
    })
}

/// Loads the config and finds one valid subscription; its problems are printed when it is
/// invalid.
pub(crate) fn subscription<'a>(loaded: &'a Loaded, id: &str) -> Result<&'a config::Subscription> {
    if let Some(s) = loaded.subscription(id) {
        return Ok(s);
    }
    let own: Vec<String> = loaded
        .problems
        .iter()
        .filter(|p| {
            std::fs::read_to_string(&p.file).is_ok_and(|t| t.contains(&format!("\"{id}\"")))
        })
        .map(|p| p.to_string())
        .collect();
    if !own.is_empty() {
        return Err(anyhow::Error::new(Exit {
            code: EXIT_CONFIG,
            message: format!("subscription `{id}` is invalid:\n{}", own.join("\n")),
        }));
    }
    let known: Vec<&str> = loaded.subscriptions.iter().map(|s| s.id.as_str()).collect();
    bail!(
        "no subscription `{id}` in {}; known: {}",
        loaded.daemon.subscriptions_dir.display(),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

pub(crate) fn parse_time(s: Option<&str>) -> Result<DateTime<Utc>> {
    match s {
        None => Ok(Utc::now()),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| {
                format!("`{s}` is not an RFC 3339 time like 2026-11-23T06:00:00+01:00")
            }),
    }
}
