//! The `run_resolutions` table: an operator's decision closing a run in `needs_attention`
//! or `failed` ([`Store::resolve_run`]), and the runs still waiting for one
//! ([`Store::runs_needing_attention`], [`Store::unresolved_runs`]).

use super::db::{params, Db, Row};
use super::model::{parse_ts, NewResolution, Resolution, RunId, RunState};
use super::runs::get_run_in;
use super::{Result, Store, StoreError};

/// The states a run waits for an operator in.
const WAITING: [RunState; 2] = [RunState::NeedsAttention, RunState::Failed];

fn read_resolution(row: &Row) -> Result<Resolution> {
    Ok(Resolution {
        run_id: row.get(0)?,
        state: row.get::<_, String>(1)?.parse()?,
        resolved_at: parse_ts(&row.get::<_, String>(2)?)?,
        os_user: row.get(3)?,
        resolved_by: row.get(4)?,
        reason: row.get(5)?,
    })
}

const COLS: &str = "run_id, state, resolved_at, os_user, resolved_by, reason";

pub(super) fn resolution_in(conn: &Db, run: &str) -> Result<Option<Resolution>> {
    conn.query(
        &format!("SELECT {COLS} FROM run_resolutions WHERE run_id = ?1"),
        [run],
    )?
    .first()
    .map(read_resolution)
    .transpose()
}

impl Store {
    /// Records an operator's decision on a run in `needs_attention` or `failed`: it is closed,
    /// no longer counts as needing attention, and [`Store::set_state`] refuses to make it
    /// active again. Refuses an empty reason, a run in another state
    /// ([`StoreError::NotResolvable`]) and a second resolution ([`StoreError::AlreadyResolved`],
    /// carrying the first: the first decision stands).
    pub fn resolve_run(&self, new: &NewResolution) -> Result<Resolution> {
        let reason = new.reason.trim();
        if reason.is_empty() {
            return Err(StoreError::Invalid(
                "a resolution needs a reason (what was decided, and why)".into(),
            ));
        }
        let os_user = new.os_user.trim();
        if os_user.is_empty() {
            return Err(StoreError::Invalid(
                "a resolution needs the operating-system user".into(),
            ));
        }
        let by = new
            .resolved_by
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty());
        let tx = self.write_tx()?;
        let run = get_run_in(&tx, &new.run_id)?
            .ok_or_else(|| StoreError::NoSuchRun(new.run_id.clone()))?;
        if let Some(first) = resolution_in(&tx, &new.run_id)? {
            return Err(StoreError::AlreadyResolved(Box::new(first)));
        }
        if !WAITING.contains(&run.state) {
            return Err(StoreError::NotResolvable {
                run: run.id,
                state: run.state.to_string(),
                hint: if run.state == RunState::Delivered {
                    " (it was delivered; nothing to decide)"
                } else {
                    " (it is being worked on; wait for it to end)"
                },
            });
        }
        tx.execute(
            "INSERT INTO run_resolutions (run_id, state, resolved_at, os_user, resolved_by, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run.id, run.state.as_str(), self.now(), os_user, by, reason],
        )?;
        let stored = resolution_in(&tx, &run.id)?
            .ok_or_else(|| StoreError::Corrupt(format!("resolution of {} not stored", run.id)))?;
        tx.commit()?;
        Ok(stored)
    }

    /// The resolution of `run`, if an operator resolved it.
    pub fn resolution(&self, run: &RunId) -> Result<Option<Resolution>> {
        resolution_in(&self.conn, run)
    }

    /// Every resolution, oldest first.
    pub fn resolutions(&self) -> Result<Vec<Resolution>> {
        self.conn
            .query(
                &format!("SELECT {COLS} FROM run_resolutions ORDER BY resolved_at, run_id"),
                [],
            )?
            .iter()
            .map(read_resolution)
            .collect()
    }

    /// Runs in `needs_attention` that no operator resolved, by fire time: what
    /// `regdrop_runs_needing_attention` counts and makes `regdrop status` exit 3.
    pub fn runs_needing_attention(&self) -> Result<Vec<super::Run>> {
        self.unresolved_runs(&[RunState::NeedsAttention])
    }

    /// Runs in `states` that no operator resolved, by fire time (`regdrop status` lists the
    /// unresolved `needs_attention` and `failed` ones).
    pub fn unresolved_runs(&self, states: &[RunState]) -> Result<Vec<super::Run>> {
        let resolved: std::collections::HashSet<RunId> =
            self.resolutions()?.into_iter().map(|r| r.run_id).collect();
        Ok(self
            .list_runs(&super::RunFilter {
                states: states.to_vec(),
                ..Default::default()
            })?
            .into_iter()
            .filter(|r| !resolved.contains(&r.id))
            .collect())
    }
}
