//! The commands: each takes parsed arguments, wires config and adapters, prints for a
//! person, and returns an exit code. `main` only parses, sets up logging and calls `run`.

pub mod cli;
pub mod daemon;
pub mod demo;
pub mod new_subscription;

use crate::cmd::cli::{Cli, Command, ExportFormat, HostkeyCmd, ReceiptsCmd, RegisterCmd};
use crate::core::config;
use crate::loader::Loaded;
use crate::pipeline::delivery::{self, Ctx, Observer, Outcome};
use crate::progress::Progress;
use crate::store::{ReceiptFilter, Store};
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
        Command::NewSubscription(args) => {
            crate::cmd::new_subscription::run(cli.config.as_deref(), *args)
        }
        Command::Fields => {
            fields();
            Ok(ExitCode::SUCCESS)
        }
        Command::Next { sub, count, after } => next(
            cli.config.as_deref(),
            sub.as_deref(),
            count,
            after.as_deref(),
        ),
        Command::Preview { sub, rows, at, sql } => {
            preview(cli.config.as_deref(), &sub, rows, at.as_deref(), sql)
        }
        Command::Extract { sub, out, at } => {
            extract(cli.config.as_deref(), &sub, &out, at.as_deref())
        }
        Command::Register(cmd) => register(cli.config.as_deref(), cmd),
        Command::Run => crate::cmd::daemon::run(cli.config.as_deref()),
        Command::Retry { run } => crate::cmd::daemon::retry(cli.config.as_deref(), &run),
        Command::Status => crate::cmd::daemon::status(cli.config.as_deref()),
        Command::Deliver { sub, at } => deliver(cli.config.as_deref(), &sub, at.as_deref()),
        Command::Probe { sub } => probe(cli.config.as_deref(), &sub),
        Command::Hostkey(HostkeyCmd::Scan { addr, timeout_secs }) => {
            hostkey_scan(&addr, timeout_secs)
        }
        Command::Receipts(cmd) => receipts(cli.config.as_deref(), cmd),
        Command::Demo {
            dir,
            vehicles,
            cycles,
        } => {
            crate::cmd::demo::run(&crate::cmd::demo::DemoOptions {
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
        } => demo_server(root, listen, user, authorized_key, password_file, host_key),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Opens the state store (creating its folder).
pub fn open_store(loaded: &Loaded) -> Result<Store> {
    let path = &loaded.daemon.state_db;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Store::open(path).with_context(|| format!("opening the state store {}", path.display()))
}

/// Prints a delivery's progress for a person at a terminal.
struct Terminal {
    rows: Progress,
    bytes: Progress,
}

impl Observer for Terminal {
    fn stage(&self, run: &str, what: &str) {
        self.rows.finish();
        eprintln!("{run}: {what}");
    }
    fn rows(&self, done: u64, total: u64) {
        self.rows.update(done, total)
    }
    fn bytes(&self, done: u64, total: u64) {
        self.bytes.update(done, total)
    }
    fn retry(&self, run: &str, attempt: u32, wait: Duration, error: &str) {
        self.bytes.finish();
        eprintln!(
            "{run}: attempt {attempt} failed: {error}\n{run}: retrying in {:.0} s",
            wait.as_secs_f64()
        );
    }
}

fn deliver(flag: Option<&Path>, id: &str, at: Option<&str>) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?.clone();
    let at = parse_time(at)?;
    let store = open_store(&loaded)?;
    let rt = runtime()?;
    let ctx = Ctx {
        daemon: Arc::new(loaded.daemon.clone()),
        store: Arc::new(Mutex::new(store)),
        cancel: tokio_util::sync::CancellationToken::new(),
        xlsx_row_limit: None,
    };
    let obs = Terminal {
        rows: Progress::rows("extract"),
        bytes: Progress::bytes("upload"),
    };
    let outcome = rt.block_on(async {
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        delivery::deliver(&ctx, &sub, at, &obs).await
    })?;
    obs.bytes.finish();
    match outcome {
        Outcome::Delivered(r) | Outcome::AlreadyDelivered(r) => {
            println!(
                "delivered: {} ({} bytes, {} rows) to {}:{}",
                r.remote_path, r.bytes, r.rows, r.remote_host, r.remote_port
            );
            println!(
                "receipt {} for run {}: sha256 {}, host key {}, {} attempt(s)",
                r.id, r.run_id, r.ciphertext_sha256, r.host_key_fingerprint, r.attempts
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::NeedsAttention { run, reason } => {
            eprintln!("run {run} needs attention: {reason}\nFix the cause, then run `regdrop deliver {id}` again (or `regdrop retry {run}`).");
            Ok(ExitCode::FAILURE)
        }
        Outcome::Failed { run, reason } => {
            eprintln!("run {run} failed: {reason}\nThe artifact is kept; `regdrop retry {run}` tries again.");
            Ok(ExitCode::FAILURE)
        }
        Outcome::Interrupted { run } => {
            eprintln!("run {run} interrupted; it resumes with `regdrop retry {run}` or when the daemon starts.");
            Ok(ExitCode::from(130))
        }
    }
}

fn probe(flag: Option<&Path>, id: &str) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?;
    let target = delivery::target_of(sub)?;
    let report = runtime()?.block_on(crate::sftp::probe(&target))?;
    // Every server-provided string in the report is already cleaned (escapes, no control
    // characters), so it is safe on a terminal.
    let p = &report.profile;
    println!(
        "host:        {}:{} (key {} pinned and matching)",
        sub.target.host, sub.target.port, report.host_key_sha256
    );
    println!(
        "server:      {} (treated as {}, SFTP version {})",
        p.banner,
        p.family.as_str(),
        p.sftp_version
    );
    println!("login:       {} ok", sub.target.username);
    println!(
        "folder:      {} {}",
        report.remote_dir,
        match (report.remote_dir_exists, report.writable) {
            (true, true) => "exists, writable",
            (true, false) => "exists, NOT writable",
            (false, _) => "missing (create_dirs = true will create it)",
        }
    );
    println!(
        "extensions:  {}",
        report
            .extensions
            .iter()
            .map(|(n, v)| format!("{n} ({v})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(l) = p.limits {
        println!(
            "limits:      packet {} / read {} / write {} / handles {} (0 = not stated)",
            l.packet_len, l.read_len, l.write_len, l.open_handles
        );
    }
    let mut ok = !report.remote_dir_exists || report.writable;
    if let Some(t) = &report.test {
        println!(
            "test upload: {} bytes on {} channel(s), {:.1} MiB/s, read back {}, fsync {}, mode {}",
            t.bytes,
            t.channels,
            t.mib_per_s,
            if t.read_back_ok {
                "identical"
            } else {
                "DIFFERENT"
            },
            if t.fsync { "done" } else { "not offered" },
            t.mode
                .map(|m| format!("{m:o}"))
                .unwrap_or_else(|| "not reported".into()),
        );
        if let Some(why) = &t.parallel_failed {
            println!("             writes on several channels failed ({why}); deliveries use one");
        }
        println!(
            "rename:      a plain rename onto an existing file {}",
            if t.rename_replaces {
                "REPLACES it"
            } else {
                "is refused"
            }
        );
        if let Some(refuses) = t.no_clobber_refuses {
            println!(
                "no-clobber:  committing onto a taken name {}",
                if refuses {
                    "was refused, as it must be"
                } else {
                    "REPLACED the other file"
                }
            );
            ok &= refuses;
        }
        ok &= t.read_back_ok;
    }
    let st = &report.strategy;
    println!(
        "strategy:    {} channel(s), {} bytes per write, {} in flight per channel, fsync {}",
        st.channels,
        st.write_len,
        st.in_flight,
        if st.fsync { "yes" } else { "no" }
    );
    let wanted = sub.delivery.if_exists;
    match &report.commit_no_clobber {
        Ok(c) => println!("commit:      fail/version: {c} ({})", c.guarantee()),
        Err(why) => {
            println!("commit:      fail/version: NONE: {why}");
            ok &= wanted == crate::core::config::IfExists::Overwrite;
        }
    }
    println!(
        "             overwrite: {} ({})",
        report.commit_replace,
        report.commit_replace.guarantee()
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Splits `HOST`, `HOST:PORT` or `[V6]:PORT`.
fn split_host_port(addr: &str) -> Result<(String, u16)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| anyhow!("`{addr}`: missing `]`"))?;
        let port = p
            .strip_prefix(':')
            .map(|p| p.parse())
            .transpose()?
            .unwrap_or(22);
        return Ok((h.to_string(), port));
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_string(),
            p.parse().with_context(|| format!("`{p}` is not a port"))?,
        )),
        _ => Ok((addr.to_string(), 22)),
    }
}

fn hostkey_scan(addr: &str, timeout_secs: u64) -> Result<ExitCode> {
    let (host, port) = split_host_port(addr)?;
    let keys = runtime()?.block_on(crate::sftp::scan_host_keys(
        &host,
        port,
        Duration::from_secs(timeout_secs),
    ))?;
    println!("# {host}:{port}: check these fingerprints with the customer before pinning them");
    for k in keys {
        println!("# {}", k.fingerprint);
        println!("{}", k.line);
    }
    Ok(ExitCode::SUCCESS)
}

fn receipts(flag: Option<&Path>, cmd: ReceiptsCmd) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let store = open_store(&loaded)?;
    match cmd {
        ReceiptsCmd::List {
            subscription,
            since,
        } => {
            let since = since
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
                        .with_context(|| format!("`{d}` is not a date like 2026-11-01"))
                })
                .transpose()?;
            let list = store.receipts(&ReceiptFilter {
                subscription,
                since,
                until: None,
            })?;
            println!(
                "{:>5}  {:<20}  {:<24}  {:>10}  {:>12}  remote path",
                "id", "delivered (UTC)", "subscription", "rows", "bytes"
            );
            for r in &list {
                println!(
                    "{:>5}  {:<20}  {:<24}  {:>10}  {:>12}  {}:{}",
                    r.id,
                    r.delivered_at.format("%Y-%m-%d %H:%M:%S"),
                    r.subscription,
                    r.rows,
                    r.bytes,
                    r.remote_host,
                    r.remote_path
                );
            }
            println!("{} receipt(s)", list.len());
        }
        ReceiptsCmd::Show { id } => {
            let r = store
                .receipt(id)?
                .ok_or_else(|| anyhow!("no receipt {id}; `regdrop receipts list` shows the ids"))?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        ReceiptsCmd::Verify => {
            let report = store.verify_chain()?;
            println!("{report}");
            if !report.is_intact() {
                return Ok(ExitCode::FAILURE);
            }
        }
        ReceiptsCmd::Export {
            format,
            month,
            subscription,
        } => {
            let mut filter = match month {
                Some(m) => {
                    let (y, mo) = crate::store::model::parse_month(&m)?;
                    let tz = crate::core::schedule::parse_tz(&loaded.daemon.inherited.timezone)
                        .map_err(|e| anyhow!(e))?;
                    ReceiptFilter::month(y, mo, &tz)?
                }
                None => ReceiptFilter::default(),
            };
            filter.subscription = subscription;
            let out = std::io::stdout().lock();
            match format {
                ExportFormat::Csv => store.export_csv(out, &filter)?,
                ExportFormat::Json => store.export_json(out, &filter)?,
            };
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn demo_server(
    root: PathBuf,
    listen: std::net::SocketAddr,
    user: String,
    authorized_key: Option<String>,
    password_file: Option<PathBuf>,
    host_key: Option<PathBuf>,
) -> Result<ExitCode> {
    use crate::demo_server::{self as ds, DemoAuth};
    std::fs::create_dir_all(&root)?;
    let key_line = authorized_key
        .map(|k| {
            if Path::new(&k).exists() {
                std::fs::read_to_string(&k).map(|s| s.trim().to_string())
            } else {
                Ok(k)
            }
        })
        .transpose()?;
    let password = password_file
        .map(|p| std::fs::read_to_string(&p).map(|s| s.trim_end_matches(['\n', '\r']).to_string()))
        .transpose()?;
    let auth = match (key_line, password) {
        (Some(k), Some(p)) => DemoAuth::public_key(&user, k).with_password(p),
        (Some(k), None) => DemoAuth::public_key(&user, k),
        (None, Some(p)) => DemoAuth::password(&user, p),
        (None, None) => bail!("give --authorized-key and/or --password-file: the demo server does not allow anonymous logins"),
    };
    runtime()?.block_on(async {
        let h = ds::start(root.clone(), auth, host_key, listen).await?;
        println!(
            "demo SFTP server on {} serving {} for user {user}",
            h.addr(),
            root.display()
        );
        println!("pin this host key: {}", h.host_key_line());
        println!("(Ctrl-C stops it)");
        tokio::signal::ctrl_c().await?;
        h.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
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
fn subscription<'a>(loaded: &'a Loaded, id: &str) -> Result<&'a config::Subscription> {
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

fn check(flag: Option<&Path>) -> Result<ExitCode> {
    let loaded = load(flag)?;
    for p in &loaded.problems {
        println!("{p}");
    }
    let n_ok = loaded.subscriptions.len();
    let n_bad = loaded.failed_files.len();
    if loaded.problems.is_empty() {
        println!(
            "ok: {} ({n_ok} subscriptions valid)",
            loaded.config_path.display()
        );
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
    for f in crate::core::catalog::all_fields() {
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
            .with_context(|| {
                format!("`{s}` is not an RFC 3339 time like 2026-11-23T06:00:00+01:00")
            }),
    }
}

fn next(
    flag: Option<&Path>,
    sub: Option<&str>,
    count: usize,
    after: Option<&str>,
) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let after = parse_time(after)?;
    let subs: Vec<&config::Subscription> = match sub {
        Some(id) => vec![subscription(&loaded, id)?],
        None => loaded.subscriptions.iter().collect(),
    };
    for s in subs {
        println!("{} ({}, {}):", s.id, s.schedule.line, s.schedule.tz);
        for t in s.schedule.upcoming(after, count) {
            println!(
                "  {}   {}",
                s.schedule.local(t).format("%Y-%m-%d %H:%M %Z"),
                t.format("%Y-%m-%dT%H:%M:%SZ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn preview(
    flag: Option<&Path>,
    id: &str,
    rows: usize,
    at: Option<&str>,
    sql: bool,
) -> Result<ExitCode> {
    let loaded = load(flag)?;
    let sub = subscription(&loaded, id)?;
    let at = parse_time(at)?;
    if sub.extract.report == crate::core::catalog::ReportKind::CodeTables {
        // No register query: the tables come from the binary.
        for t in &sub.extract.code_tables {
            let all = t.rows();
            println!("{} ({}): {} rows", t.as_str(), t.file_stem(), all.len());
            for (code, name) in all.iter().take(rows) {
                println!("  {code} | {name}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if sql {
        let period = crate::pipeline::artifact::run_period(sub, at, None);
        println!(
            "{};",
            crate::extract::query::build(&sub.extract, period.as_ref()).inline()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let conn = crate::register::schema::open_ro(&loaded.daemon.register)
        .with_context(|| format!("opening the register {}", loaded.daemon.register.display()))?;
    let period = crate::pipeline::artifact::run_period(sub, at, None);
    let (total, sample) = crate::extract::preview(&conn, &sub.extract, period.as_ref(), rows)?;
    println!(
        "{}: report {}, {} rows{}",
        sub.id,
        sub.extract.report.as_str(),
        total,
        period
            .map(|p| format!(
                ", period {}..{}",
                p.from.map(|d| d.to_string()).unwrap_or_default(),
                p.to
            ))
            .unwrap_or_default()
    );
    let names: Vec<&str> = sub
        .extract
        .columns
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    println!("{}", names.join(" | "));
    for r in sample {
        println!("{}", r.join(" | "));
    }
    if !sub.personal_fields().is_empty() {
        println!(
            "(personal fields are masked: {})",
            sub.personal_fields().join(", ")
        );
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
    let shop = crate::pipeline::artifact::Workshop {
        register: &loaded.daemon.register,
        spool,
        xlsx_row_limit: None,
    };
    let art = crate::pipeline::artifact::generate_and_seal(
        shop,
        &name,
        sub,
        at,
        None,
        &mut |done, total| bar.update(done, total),
    )?;
    bar.finish();
    move_file(&art.sealed.path, out)?;
    if let Some(note) = &art.fallback_note {
        eprintln!("note: {note}");
    }
    println!("file:               {}", out.display());
    println!("remote name:        {}", art.file_name);
    println!("rows:               {}", art.rows);
    println!(
        "format:             {}{}",
        art.format.as_str(),
        if art.sealed.encrypted { " + age" } else { "" }
    );
    println!("plaintext bytes:    {}", art.sealed.plaintext_bytes);
    println!("plaintext sha256:   {}", art.sealed.plaintext_sha256);
    println!("ciphertext bytes:   {}", art.sealed.ciphertext_bytes);
    println!("ciphertext sha256:  {}", art.sealed.ciphertext_sha256);
    // Code tables sealed beside it go next to --out under their remote names.
    for e in &art.extras {
        let to = out.with_file_name(&e.file_name);
        move_file(&e.sealed.path, &to)?;
        println!(
            "code table {:<15} {} ({} rows, sha256 {})",
            e.table.as_str(),
            to.display(),
            e.rows,
            e.sealed.ciphertext_sha256
        );
    }
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
    Ok(load(flag)
        .map_err(|e| anyhow!("{e}\n(or pass --register FILE)"))?
        .daemon
        .register)
}

/// An import into a register that already holds vehicles must say whether to add to them
/// or replace them: importing the same dump twice would otherwise double every vehicle.
fn guard_existing_register(db: &Path, append: bool, replace: bool) -> Result<()> {
    if !db.exists() {
        return Ok(());
    }
    let conn = crate::register::schema::open_rw(db)
        .with_context(|| format!("opening {}", db.display()))?;
    let n: i64 = conn.query_row("SELECT count(*) FROM vehicle", [], |r| r.get(0))?;
    if n == 0 || append {
        return Ok(());
    }
    if !replace {
        bail!(
            "{} already holds {n} vehicles; pass --replace to remove them (and their ownerships) first, or --append to add to them",
            db.display()
        );
    }
    conn.execute_batch("BEGIN; DELETE FROM ownership; DELETE FROM vehicle; COMMIT;")?;
    eprintln!(
        "removed {n} vehicles and their ownerships from {}",
        db.display()
    );
    Ok(())
}

fn register(flag: Option<&Path>, cmd: RegisterCmd) -> Result<ExitCode> {
    use crate::register;
    match cmd {
        RegisterCmd::Generate(a) => {
            let db = register_path(flag, a.db.register)?;
            if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let bar = Progress::rows("generate");
            let s = register::generate(
                &db,
                &register::GenerateOptions {
                    vehicles: a.vehicles,
                    seed: a.seed,
                },
                &mut |n| {
                    bar.update(n, a.vehicles);
                    if n >= a.vehicles {
                        // The generator builds the indexes next, without progress calls.
                        bar.message("indexing");
                    }
                },
            )?;
            bar.finish();
            println!(
                "generated {} vehicles, {} ownerships into {} in {:.1} s ({:.0} vehicles/s; load {:.1} s, indexes {:.1} s)",
                s.vehicles,
                s.ownerships,
                db.display(),
                s.total_seconds,
                s.vehicles as f64 / s.total_seconds.max(1e-9),
                s.load_seconds,
                s.index_seconds
            );
        }
        RegisterCmd::Import {
            file,
            encoding,
            append,
            replace,
            db,
        } => {
            let db = register_path(flag, db.register)?;
            guard_existing_register(&db, append, replace)?;
            let encoding = encoding
                .map(|e| {
                    crate::core::text::Encoding::parse(&e)
                        .ok_or_else(|| anyhow!("`{e}` is not an encoding; use utf-8 or iso-8859-1"))
                })
                .transpose()?;
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            let bar = Progress::bytes("import");
            let s = register::import(
                &db,
                &file,
                &register::ImportOptions { encoding },
                &mut |b| bar.update(b, size),
            )?;
            bar.finish();
            for w in &s.warnings {
                eprintln!("warning: {w}");
            }
            for r in &s.rejected {
                eprintln!("{}:{}: rejected: {}", file.display(), r.line, r.reason);
            }
            println!(
                "imported {} rows from {} ({}); {} rejected",
                s.rows,
                file.display(),
                s.encoding.as_str(),
                s.rejected.len()
            );
            if !s.rejected.is_empty() {
                println!("Fix the rejected lines above (or ask the authority for a clean dump) and import again.");
                return Ok(ExitCode::FAILURE);
            }
        }
        RegisterCmd::Stats { db } => {
            let db = register_path(flag, db.register)?;
            print!("{}", register::stats(&db)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
