//! `regdrop register …`: generate, import and inspect the register.

use super::load;
use crate::cmd::cli::RegisterCmd;
use crate::core::config::location::{is_postgres_url, DbLocation, PgUrl};
use crate::progress::Progress;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The register of `--register` (a file, or a `postgresql://` URL), else the config's.
fn register_path(flag: Option<&Path>, given: Option<PathBuf>) -> Result<DbLocation> {
    if let Some(p) = given {
        return Ok(match p.to_str() {
            Some(s) if is_postgres_url(s) => DbLocation::from_config(s, Path::new("")),
            _ => DbLocation::Sqlite(p),
        });
    }
    Ok(load(flag)
        .map_err(|e| anyhow!("{e}\n(or pass --register FILE)"))?
        .daemon
        .register)
}

/// [`guard_existing_register`] for a PostgreSQL register.
fn guard_existing_pg(url: &PgUrl, append: bool, replace: bool) -> Result<()> {
    use crate::register::pg;
    let w = pg::connect(url)?;
    let n = pg::vehicle_count(&w)?.unwrap_or(0);
    if n == 0 || append {
        return Ok(());
    }
    if !replace {
        bail!(
            "{url} already holds {n} vehicles; pass --replace to remove them (and their ownerships) first, or --append to add to them"
        );
    }
    pg::batch(
        &w,
        "BEGIN; DELETE FROM ownership; DELETE FROM vehicle; COMMIT;",
    )?;
    eprintln!("removed {n} vehicles and their ownerships from {url}");
    Ok(())
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

pub(super) fn register(flag: Option<&Path>, cmd: RegisterCmd) -> Result<ExitCode> {
    use crate::register;
    match cmd {
        RegisterCmd::Generate(a) => {
            let db = register_path(flag, a.db.register)?;
            if let Some(dir) = db
                .sqlite_path()
                .and_then(Path::parent)
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)?;
            }
            let bar = Progress::rows("generate");
            let opts = register::GenerateOptions {
                vehicles: a.vehicles,
                seed: a.seed,
            };
            let mut tick = |n| {
                bar.update(n, a.vehicles);
                if n >= a.vehicles {
                    // The generator builds the indexes next, without progress calls.
                    bar.message("indexing");
                }
            };
            let s = match &db {
                DbLocation::Sqlite(p) => register::generate(p, &opts, &mut tick)?,
                DbLocation::Postgres(u) => register::generate_postgres(u, &opts, &mut tick)?,
            };
            bar.finish();
            println!(
                "generated {} vehicles, {} ownerships into {} in {:.1} s ({:.0} vehicles/s; load {:.1} s, indexes {:.1} s)",
                s.vehicles,
                s.ownerships,
                db,
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
            match &db {
                DbLocation::Sqlite(p) => guard_existing_register(p, append, replace)?,
                DbLocation::Postgres(u) => guard_existing_pg(u, append, replace)?,
            }
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
            let opts = register::ImportOptions { encoding };
            let mut tick = |b| bar.update(b, size);
            let s = match &db {
                DbLocation::Sqlite(p) => register::import(p, &file, &opts, &mut tick)?,
                DbLocation::Postgres(u) => register::import_postgres(u, &file, &opts, &mut tick)?,
            };
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
        RegisterCmd::Stats { db } => match register_path(flag, db.register)? {
            DbLocation::Sqlite(p) => print!("{}", register::stats(&p)?),
            DbLocation::Postgres(u) => print!("{}", register::stats::stats_postgres(&u)?),
        },
    }
    Ok(ExitCode::SUCCESS)
}
