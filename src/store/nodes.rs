//! The node registry (schema 9, docs/design.md §7 "Several nodes"): one row per
//! `[daemon] node` name saying which daemon instance holds it, where it runs, and its last
//! heartbeat, so two live daemons never share a name (their leases would be each other's).
//!
//! - [`Store::register_node`]: at a daemon's start, in one write transaction, reads the
//!   name's row, lets [`crate::core::nodes::decide`] say free / ours / take over / refuse,
//!   and writes this instance unless refused.
//! - [`Store::node_heartbeat`]: every half lease; names the other instance once the name
//!   was taken from this one.
//! - The fence: with [`Store::set_registration`], claiming, renewing and the commit points
//!   check in their own transaction that this instance still holds its name
//!   ([`StoreError::NodeTaken`]), as they check the run's lease.
//! - [`Store::node_stopped`] marks a clean stop: the name is free at once.

use super::db::{params, Db, Row};
use super::model::{fmt_ts, parse_ts};
use super::{Result, Store, StoreError};
use crate::core::nodes::{decide, Decision, Instance, NodeEntry};
use std::time::Duration;

/// This process's registration, for the fence ([`Store::set_registration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Registered {
    pub name: String,
    pub instance: String,
}

/// What [`Store::register_node`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub decision: Decision,
    /// The row found before (the holder refused or taken over).
    pub previous: Option<NodeEntry>,
}

const COLS: &str = "name, instance, host, machine, boot, pid_ns, pid, proc_start, started_at, \
                    heartbeat_at, stopped_at";

fn read_entry(r: &Row) -> Result<NodeEntry> {
    let int = |i: usize, what: &str| -> Result<i64> {
        let v: i64 = r.get(i)?;
        if v < 0 {
            return Err(StoreError::Corrupt(format!(
                "nodes.{what} is negative: {v}"
            )));
        }
        Ok(v)
    };
    Ok(NodeEntry {
        name: r.get(0)?,
        instance: Instance {
            id: r.get(1)?,
            host: r.get(2)?,
            machine: r.get(3)?,
            boot: r.get(4)?,
            pid_ns: r.get(5)?,
            pid: u32::try_from(int(6, "pid")?)
                .map_err(|_| StoreError::Corrupt("nodes.pid too large".into()))?,
            proc_start: int(7, "proc_start")?.unsigned_abs(),
        },
        started_at: parse_ts(&r.get::<_, String>(8)?)?,
        heartbeat_at: parse_ts(&r.get::<_, String>(9)?)?,
        stopped_at: r
            .get::<_, Option<String>>(10)?
            .as_deref()
            .map(parse_ts)
            .transpose()?,
    })
}

fn entry_in(conn: &Db, name: &str) -> Result<Option<NodeEntry>> {
    conn.query(&format!("SELECT {COLS} FROM nodes WHERE name = ?1"), [name])?
        .first()
        .map(read_entry)
        .transpose()
}

/// The fence: the registration `reg` still holds its name (inside the caller's write
/// transaction). A name without a row passes (it was deleted by hand; the next heartbeat
/// writes it again).
pub(super) fn check_registration_in(conn: &Db, reg: &Registered) -> Result<()> {
    match entry_in(conn, &reg.name)? {
        Some(e) if e.instance.id != reg.instance => Err(StoreError::NodeTaken {
            node: reg.name.clone(),
            host: e.instance.host,
            pid: e.instance.pid,
        }),
        _ => Ok(()),
    }
}

fn upsert(conn: &Db, name: &str, me: &Instance, started: &str, now: &str) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO nodes ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL) \
             ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, host = excluded.host, \
             machine = excluded.machine, boot = excluded.boot, pid_ns = excluded.pid_ns, \
             pid = excluded.pid, proc_start = excluded.proc_start, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             stopped_at = NULL"
        ),
        params![
            name,
            me.id,
            me.host,
            me.machine,
            me.boot,
            me.pid_ns,
            i64::from(me.pid),
            i64::try_from(me.proc_start).unwrap_or(i64::MAX),
            started,
            now
        ],
    )?;
    Ok(())
}

impl Store {
    /// Registers `me` as the daemon named `name`, unless another live instance holds the
    /// name ([`crate::core::nodes::decide`]; `alive` answers for a holder on this machine).
    /// Refused: nothing is written and [`Registration::previous`] is the holder.
    pub fn register_node(
        &self,
        name: &str,
        me: &Instance,
        lease: Duration,
        alive: impl FnOnce(u32, u64) -> bool,
    ) -> Result<Registration> {
        let now = self.now();
        let tx = self.write_tx()?;
        let previous = entry_in(&tx, name)?;
        let decision = decide(previous.as_ref(), me, (self.clock)(), lease, alive);
        if decision != Decision::Refuse {
            let started = match (&decision, &previous) {
                (Decision::Ours, Some(p)) => fmt_ts(p.started_at),
                _ => now.clone(),
            };
            upsert(&tx, name, me, &started, &now)?;
            tx.commit()?;
        }
        Ok(Registration { decision, previous })
    }

    /// The heartbeat of `me`'s registration as `name`. `Some(holder)` when another
    /// instance holds the name now: this daemon must stop. A missing row is written again.
    pub fn node_heartbeat(&self, name: &str, me: &Instance) -> Result<Option<NodeEntry>> {
        let now = self.now();
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE nodes SET heartbeat_at = ?3 WHERE name = ?1 AND instance = ?2",
            params![name, me.id, now],
        )?;
        if n == 0 {
            if let Some(holder) = entry_in(&tx, name)? {
                return Ok(Some(holder));
            }
            upsert(&tx, name, me, &now, &now)?;
        }
        tx.commit()?;
        Ok(None)
    }

    /// A clean stop of `me` as `name`: the name is free for the next start at once.
    /// Returns whether `me` still held it.
    pub fn node_stopped(&self, name: &str, me: &Instance) -> Result<bool> {
        let now = self.now();
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE nodes SET stopped_at = ?3, heartbeat_at = ?3 WHERE name = ?1 AND instance = ?2",
            params![name, me.id, now],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// The registration of `name`.
    pub fn node_entry(&self, name: &str) -> Result<Option<NodeEntry>> {
        entry_in(&self.conn, name)
    }

    /// Every registered name, in name order (`regdrop status`).
    pub fn nodes(&self) -> Result<Vec<NodeEntry>> {
        self.conn
            .query(
                &format!("SELECT {COLS} FROM nodes ORDER BY name"),
                params![],
            )?
            .iter()
            .map(read_entry)
            .collect()
    }

    /// Ties this handle to `me`'s registration as `name`: from now on claiming and renewing
    /// a lease, taking a host slot and the commit points fail with
    /// [`StoreError::NodeTaken`] once another instance holds the name.
    pub fn set_registration(&mut self, name: &str, me: &Instance) {
        self.registered = Some(Registered {
            name: name.to_string(),
            instance: me.id.clone(),
        });
    }

    /// The registration fence, when one is set (see [`Store::set_registration`]).
    pub(super) fn registration_in(&self, conn: &Db) -> Result<()> {
        match &self.registered {
            Some(reg) => check_registration_in(conn, reg),
            None => Ok(()),
        }
    }
}

/// The registration of `name` in the store at `location`, read without changing anything
/// (`regdrop check`, perhaps as root: a SQLite file is opened read-only, never migrated,
/// and no WAL file is created). `None` when there is no store or no registry yet.
pub fn peek_node(
    location: &crate::core::config::location::DbLocation,
    name: &str,
) -> Result<Option<NodeEntry>> {
    use crate::core::config::location::DbLocation;
    let db = match location {
        DbLocation::Sqlite(path) => {
            if !path.exists() {
                return Ok(None);
            }
            let c = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            c.busy_timeout(super::BUSY_TIMEOUT)?;
            Db::Sqlite(c)
        }
        DbLocation::Postgres(url) => Db::Postgres(super::db::pg::Pg::connect(url)?),
    };
    if super::migrations::version_of(&db)? < 9 {
        return Ok(None);
    }
    entry_in(&db, name)
}
