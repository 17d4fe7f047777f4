//! The commands: each takes parsed arguments, wires config and adapters, prints for a
//! person, and returns an exit code. `main` only parses, sets up logging and calls `run`.

use crate::cli::{Cli, Command, RegisterCmd};
use crate::config::{self, Loaded};
use crate::progress::Progress;
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code for configuration errors: systemd's `RestartPreventExitStatus=78` (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

/// A failure that maps to a specific exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check => check(cli.config.as_deref()),
        Command::Fields => {
            fields();
            Ok(ExitCode::SUCCESS)
        }
        Command::Next { sub, count, after } => next(cli.config.as_deref(), sub.as_deref(), count, after.as_deref()),
        Command::Preview { sub, rows, at, sql } => preview(cli.config.as_deref(), &sub, rows, at.as_deref(), sql),
        Command::Extract { sub, out, at } => extract(cli.config.as_deref(), &sub, &out, at.as_deref()),
        Command::Register(cmd) => register(cli.config.as_deref(), cmd),
        Command::Run => crate::daemon::commands::run(cli.config.as_deref()),
        Command::Retry { run } => crate::daemon::commands::retry(cli.config.as_deref(), &run),
        Command::Status => crate::daemon::commands::status(cli.config.as_deref()),
    }
}

/// Loads the config; a broken daemon file is a config error (exit 78).
pub fn load(flag: Option<&Path>) -> Result<Loaded> {
    let path = config::load::default_path(flag);
    config::load(&path).map_err(|e| anyhow::Error::new(Exit { code: EXIT_CONFIG, message: e.to_string() }))
}

/// Loads the config and finds one valid subscription; its problems are printed when it is
/// invalid.
fn subscription<'a>(loaded: &'a Loaded, id: &str) -> Result<&'a config::Subscription> {
    if let Some(s) = loaded.subscription(id) {
        return Ok(s);
    }
    let own: Vec<String> = loaded
        .problems
        .iter()
        .filter(|p| std::fs::read_to_string(&p.file).is_ok_and(|t| t.contains(&format!("\"{id}\""))))
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
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )
}

fn check(flag: Option<&Path>) -> Result<ExitCode> {
    let loaded = load(flag)?;
    for p in &loaded.problems {
        println!("{p}");
    }
    let n_ok = loaded.subscriptions.len();
    let n_bad = loaded.failed_files.len();
    if loaded.problems.is_empty() {
        println!("ok: {} ({n_ok} subscriptions valid)", loaded.config_path.display());
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} problem(s) in {n_bad} file(s); {n_ok} subscription(s) valid. Fix the lines above and run `regdrop check` again.",
            loaded.problems.len()
        );
        Ok(ExitCode::from(EXIT_CONFIG))
    }
}

fn fields() {
    println!("{:<28} {:<9} {:<8} meaning", "name", "kind", "personal");
    for f in crate::catalog::all_fields() {
        println!(
            "{:<28} {:<9} {:<8} {}",
            f.name,
            format!("{:?}", f.kind).to_lowercase(),
            if f.personal { "yes" } else { "" },
            f.title
        );
    }
}

fn parse_time(s: Option<&str>) -> Result<DateTime<Utc>> {
    match s {
        None => Ok(Utc::now()),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("`{s}` is not an RFC 3339 time like 2026-11-23T06:00:00+01:00")),
    }
}

fn next(flag: Option<&Path>, sub: Option<&str>, count: usize, after: Option<&str>) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let after = parse_time(after)?;
    let subs: Vec<&config::Subscription> = match sub {
        Some(id) => vec![subscription(&loaded, id)?],
        None => loaded.subscriptions.iter().collect(),
    };
    for s in subs {
        println!("{} ({}, {}):", s.id, s.schedule.line, s.schedule.tz);
        for t in s.schedule.upcoming(after, count) {
            println!("  {}   {}", s.schedule.local(t).format("%Y-%m-%d %H:%M %Z"), t.format("%Y-%m-%dT%H:%M:%SZ"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn preview(flag: Option<&Path>, id: &str, rows: usize, at: Option<&str>, sql: bool) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?;
    let at = parse_time(at)?;
    if sql {
        let period = crate::job::run_period(sub, at, None);
        println!("{};", crate::extract::query::build(&sub.extract, period.as_ref()).inline());
        return Ok(ExitCode::SUCCESS);
    }
    let conn = crate::register::schema::open_ro(&loaded.daemon.register)
        .with_context(|| format!("opening the register {}", loaded.daemon.register.display()))?;
    let period = crate::job::run_period(sub, at, None);
    let (total, sample) = crate::extract::preview(&conn, &sub.extract, period.as_ref(), rows)?;
    println!(
        "{}: report {}, {} rows{}",
        sub.id,
        sub.extract.report.as_str(),
        total,
        period.map(|p| format!(", period {}..{}", p.from.map(|d| d.to_string()).unwrap_or_default(), p.to)).unwrap_or_default()
    );
    let names: Vec<&str> = sub.extract.columns.iter().map(|f| f.name.as_str()).collect();
    println!("{}", names.join(" | "));
    for r in sample {
        println!("{}", r.join(" | "));
    }
    if !sub.personal_fields().is_empty() {
        println!("(personal fields are masked: {})", sub.personal_fields().join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn extract(flag: Option<&Path>, id: &str, out: &Path, at: Option<&str>) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?;
    let at = parse_time(at)?;
    let spool = &loaded.daemon.spool_dir;
    let name = format!("extract-{}-{}.part", sub.id, std::process::id());
    let bar = Progress::rows("extract");
    let art = crate::job::generate_and_seal(&loaded.daemon.register, spool, &name, sub, at, None, None, &mut |done, total| {
        bar.update(done, total)
    })?;
    bar.finish();
    move_file(&art.sealed.path, out)?;
    if let Some(note) = &art.fallback_note {
        eprintln!("note: {note}");
    }
    println!("file:               {}", out.display());
    println!("remote name:        {}", art.file_name);
    println!("rows:               {}", art.rows);
    println!("format:             {}{}", art.format.as_str(), if art.sealed.encrypted { " + age" } else { "" });
    println!("plaintext bytes:    {}", art.sealed.plaintext_bytes);
    println!("plaintext sha256:   {}", art.sealed.plaintext_sha256);
    println!("ciphertext bytes:   {}", art.sealed.ciphertext_bytes);
    println!("ciphertext sha256:  {}", art.sealed.ciphertext_sha256);
    Ok(ExitCode::SUCCESS)
}

/// Renames, or copies and removes when `to` is on another file system.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).with_context(|| format!("writing {}", to.display()))?;
    std::fs::remove_file(from)?;
    Ok(())
}

fn register_path(flag: Option<&Path>, given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    Ok(load(flag).map_err(|e| anyhow!("{e}\n(or pass --register FILE)"))?.daemon.register)
}

fn register(flag: Option<&Path>, cmd: RegisterCmd) -> Result<ExitCode> {
    match cmd {
        RegisterCmd::Generate(a) => {
            let db = register_path(flag, a.db.register)?;
            let _ = (db, a.vehicles, a.seed);
            bail!("not merged yet")
        }
        RegisterCmd::Import { file, encoding, db } => {
            let db = register_path(flag, db.register)?;
            let _ = (db, file, encoding);
            bail!("not merged yet")
        }
        RegisterCmd::Stats { db } => {
            let db = register_path(flag, db.register)?;
            let _ = db;
            bail!("not merged yet")
        }
    }
}
