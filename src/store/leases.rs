//! Leases: which node works on a run and until when, so several daemons share one store
//! without a leader (docs/design.md §7 "Several nodes"). Also the per-host slots that hold
//! `max_per_host` across nodes.
//!
//! - [`Store::claim`] takes a run's lease when nobody holds it, its holder's lease expired,
//!   or this node holds it already (a restart); otherwise it names the holder. On PostgreSQL
//!   the row is read `FOR UPDATE SKIP LOCKED` inside the writer's transaction.
//! - [`Store::renew`] is the heartbeat: it extends the lease, and fails with
//!   [`StoreError::LeaseLost`] once the lease expired or another node holds it.
//! - The fence: with [`Store::set_node`], the commit points (recording the sealed artifact,
//!   discarding it, the receipt) check in their own write transaction that this node still
//!   holds the run's lease, so a node that lost it cannot commit (a run no node ever
//!   claimed passes: a store used without leases).
//! - With [`Store::set_registration`] (`nodes`), claiming, renewing, a host slot and the
//!   commit points also require that this daemon instance still holds its node name.
//! - [`Store::expired_runs`]: active runs nobody holds (expired or never claimed), what
//!   another node takes over.
//!
//! Times are the store's clock in [`super::model::TS_FORMAT`] (whole seconds, text order =
//! time order); nodes' clocks must agree to well under the lease (NTP).

use super::db::{params, Backend, Db, OptionalExtension};
use super::model::{fmt_ts, parse_ts, Run, RunId, RunState};
use super::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A lease this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run: RunId,
    pub node: String,
    pub until: DateTime<Utc>,
}

/// What [`Store::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lease is this node's now.
    Claimed(Lease),
    /// Another node holds a lease that has not expired (`until`); on PostgreSQL also a run
    /// another node is changing at this moment (`until` is `None`).
    Held {
        node: String,
        until: Option<DateTime<Utc>>,
    },
    /// The run is delivered: nothing to claim.
    Delivered,
}

/// A run's lease columns, as `regdrop status` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub run: RunId,
    pub state: RunState,
    /// The node holding the lease, or the last one that did (see `until`).
    pub node: Option<String>,
    /// When the lease ends without a heartbeat (`None`: released or never claimed).
    pub until: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// The node whose spool holds the sealed artifact.
    pub sealed_by: Option<String>,
    /// The node that committed the receipt.
    pub delivered_by: Option<String>,
}

impl LeaseInfo {
    /// Whether the lease holds at `now`.
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.node.is_some() && self.until.is_some_and(|u| u >= super::model::trunc_ts(now))
    }
}

const ACTIVE: &str = "('pending','generated','sealed','uploading')";

fn opt_ts(v: Option<String>) -> Result<Option<DateTime<Utc>>> {
    v.as_deref().map(parse_ts).transpose()
}

fn read_info(conn: &Db, sql: &str, p: &[&dyn super::db::ToValue]) -> Result<Vec<LeaseInfo>> {
    conn.query(sql, p)?
        .iter()
        .map(|r| {
            Ok(LeaseInfo {
                run: r.get(0)?,
                state: r.get::<_, String>(1)?.parse()?,
                node: r.get(2)?,
                until: opt_ts(r.get(3)?)?,
                heartbeat_at: opt_ts(r.get(4)?)?,
                sealed_by: r.get(5)?,
                delivered_by: r.get(6)?,
            })
        })
        .collect()
}

const INFO_COLS: &str = "id, state, lease_node, lease_until, heartbeat_at, sealed_by, delivered_by";

/// The fence: `node` holds `run`'s lease at `now` (inside the caller's write transaction).
/// Not `strict`: a run no node ever claimed passes too (a store used without leases).
pub(super) fn check_lease_in(
    conn: &Db,
    run: &RunId,
    node: &str,
    now: &str,
    strict: bool,
) -> Result<()> {
    let row: Option<(Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT lease_node, lease_until FROM runs WHERE id = ?1",
            [run],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((holder, until)) = row else {
        return Err(StoreError::NoSuchRun(run.clone()));
    };
    let live = until.as_deref().is_some_and(|u| u >= now);
    if (holder.as_deref() == Some(node) && live) || (!strict && holder.is_none()) {
        return Ok(());
    }
    Err(StoreError::LeaseLost {
        run: run.clone(),
        node: node.to_string(),
        holder: holder.filter(|h| live && h != node),
    })
}

impl Store {
    /// Names this process's node: from now on the sealed artifact and the receipt record
    /// it (`sealed_by`, `delivered_by`), and those commit points, and discarding an
    /// artifact, require that this node holds the run's lease ([`StoreError::LeaseLost`]).
    pub fn set_node(&mut self, node: &str) {
        self.node = Some(node.to_string());
    }

    /// The node set with [`Store::set_node`].
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The fence of a commit point, when a node is set (see [`Store::set_node`]).
    pub(super) fn fence_in(&self, conn: &Db, run: &RunId) -> Result<()> {
        self.registration_in(conn)?;
        match &self.node {
            Some(node) => check_lease_in(conn, run, node, &self.now(), false),
            None => Ok(()),
        }
    }

    fn until(&self, ttl: Duration) -> Result<DateTime<Utc>> {
        chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|d| (self.clock)().checked_add_signed(d))
            .map(super::model::trunc_ts)
            .ok_or_else(|| StoreError::Invalid(format!("lease of {ttl:?}")))
    }

    /// Takes `run`'s lease for `node` until now + `ttl`, unless another node holds a lease
    /// that has not expired (see [`Claim`]).
    pub fn claim(&self, run: &RunId, node: &str, ttl: Duration) -> Result<Claim> {
        let now = self.now();
        let until = self.until(ttl)?;
        let tx = self.write_tx()?;
        self.registration_in(&tx)?;
        let lock = match tx.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let row: Option<(String, Option<String>, Option<String>)> = tx
            .query_row(
                &format!("SELECT state, lease_node, lease_until FROM runs WHERE id = ?1{lock}"),
                [run],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((state, holder, held_until)) = row else {
            // Skipped: another node's transaction has the row locked right now.
            let exists = tx
                .query_row("SELECT 1 FROM runs WHERE id = ?1", [run], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
                .is_some();
            return if exists {
                Ok(Claim::Held {
                    node: "another node".into(),
                    until: None,
                })
            } else {
                Err(StoreError::NoSuchRun(run.clone()))
            };
        };
        if state.parse::<RunState>()? == RunState::Delivered {
            return Ok(Claim::Delivered);
        }
        if let (Some(h), Some(u)) = (&holder, &held_until) {
            if h != node && u.as_str() >= now.as_str() {
                return Ok(Claim::Held {
                    node: h.clone(),
                    until: Some(parse_ts(u)?),
                });
            }
        }
        tx.execute(
            "UPDATE runs SET lease_node = ?2, lease_until = ?3, heartbeat_at = ?4 WHERE id = ?1",
            params![run, node, fmt_ts(until), now],
        )?;
        tx.commit()?;
        Ok(Claim::Claimed(Lease {
            run: run.clone(),
            node: node.to_string(),
            until,
        }))
    }

    /// The heartbeat: extends `node`'s lease on `run` to now + `ttl`. Fails with
    /// [`StoreError::LeaseLost`] when the lease expired or another node holds it.
    pub fn renew(&self, run: &RunId, node: &str, ttl: Duration) -> Result<Lease> {
        let now = self.now();
        let until = self.until(ttl)?;
        let tx = self.write_tx()?;
        self.registration_in(&tx)?;
        check_lease_in(&tx, run, node, &now, true)?;
        tx.execute(
            "UPDATE runs SET lease_until = ?3, heartbeat_at = ?4 WHERE id = ?1 AND lease_node = ?2",
            params![run, node, fmt_ts(until), now],
        )?;
        tx.execute(
            "UPDATE host_slots SET until = ?3 WHERE run_id = ?1 AND node = ?2",
            params![run, node, fmt_ts(until)],
        )?;
        tx.commit()?;
        Ok(Lease {
            run: run.clone(),
            node: node.to_string(),
            until,
        })
    }

    /// Lets go of `node`'s lease on `run` (and the host slot it holds), so another node may
    /// take the run at once. The run keeps `lease_node` (who had it last). Returns whether
    /// `node` held it.
    pub fn release(&self, run: &RunId, node: &str) -> Result<bool> {
        let tx = self.write_tx()?;
        let n = tx.execute(
            "UPDATE runs SET lease_until = NULL WHERE id = ?1 AND lease_node = ?2",
            params![run, node],
        )?;
        tx.execute(
            "DELETE FROM host_slots WHERE run_id = ?1 AND node = ?2",
            params![run, node],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Active runs no node holds: the lease expired (its node died or was cut off), was
    /// released, or was never taken. Oldest fire time first: what to take over.
    pub fn expired_runs(&self) -> Result<Vec<Run>> {
        let now = self.now();
        let ids: Vec<RunId> = self
            .conn
            .query(
                &format!(
                    "SELECT id FROM runs WHERE state IN {ACTIVE} \
                     AND (lease_until IS NULL OR lease_until < ?1) ORDER BY scheduled_at, id"
                ),
                [&now],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_>>()?;
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.get_run(&id)? {
                runs.push(r);
            }
        }
        Ok(runs)
    }

    /// A run's lease columns.
    pub fn lease_of(&self, run: &RunId) -> Result<Option<LeaseInfo>> {
        Ok(read_info(
            &self.conn,
            &format!("SELECT {INFO_COLS} FROM runs WHERE id = ?1"),
            &[run],
        )?
        .into_iter()
        .next())
    }

    /// The lease columns of every active run, oldest fire time first (`regdrop status`).
    pub fn active_leases(&self) -> Result<Vec<LeaseInfo>> {
        read_info(
            &self.conn,
            &format!(
                "SELECT {INFO_COLS} FROM runs WHERE state IN {ACTIVE} ORDER BY scheduled_at, id"
            ),
            &[],
        )
    }

    /// Takes one of `limit` slots of `host` for `run` until now + `ttl` (renewed by
    /// [`Store::renew`], freed by [`Store::release`]); slots whose time is over (a dead
    /// node's) are freed first. `false` when all are taken. Holding one already is a renewal.
    pub fn acquire_host_slot(
        &self,
        host: &str,
        limit: usize,
        run: &RunId,
        node: &str,
        ttl: Duration,
    ) -> Result<bool> {
        let now = self.now();
        let until = fmt_ts(self.until(ttl)?);
        let tx = self.write_tx()?;
        self.registration_in(&tx)?;
        tx.execute(
            "DELETE FROM host_slots WHERE host = ?1 AND until < ?2",
            params![host, now],
        )?;
        let mine = tx.execute(
            "UPDATE host_slots SET until = ?4, node = ?3 WHERE host = ?1 AND run_id = ?2",
            params![host, run, node, until],
        )?;
        if mine == 0 {
            let taken: i64 = tx.query_row(
                "SELECT COUNT(*) FROM host_slots WHERE host = ?1",
                [host],
                |r| r.get(0),
            )?;
            if usize::try_from(taken).unwrap_or(usize::MAX) >= limit {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO host_slots (host, run_id, node, until) VALUES (?1, ?2, ?3, ?4)",
                params![host, run, node, until],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Frees `run`'s slot of `host`.
    pub fn release_host_slot(&self, host: &str, run: &RunId) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM host_slots WHERE host = ?1 AND run_id = ?2",
            params![host, run],
        )?;
        tx.commit()
    }

    /// The runs holding a slot of `host` now, with their node.
    pub fn host_slots(&self, host: &str) -> Result<Vec<(RunId, String)>> {
        self.conn
            .query(
                "SELECT run_id, node FROM host_slots WHERE host = ?1 AND until >= ?2 ORDER BY run_id",
                params![host, self.now()],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
    }
}
