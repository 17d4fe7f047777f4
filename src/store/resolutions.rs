//! The `run_resolutions` table: an operator's decision closing a run in `needs_attention`
//! or `failed` ([`Store::resolve_run`]), and the runs still waiting for one
//! ([`Store::runs_needing_attention`], [`Store::unresolved_runs`]).

use super::model::{parse_ts, NewResolution, Resolution, RunId, RunState};
use super::runs::get_run_in;
use super::{Result, Store, StoreError};
use super::db::{params, Db, Row};

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

#[cfg(test)]
mod tests {
    use super::super::{NewRun, RunState, Store, StoreError};
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 6, 0, 0).unwrap()
    }

    fn run_in(s: &Store, sub: &str, d: u32, state: RunState) -> RunId {
        let r = s
            .create_run(&NewRun {
                subscription: sub.into(),
                scheduled_at: t(d),
            })
            .unwrap()
            .into_run();
        if state != RunState::Pending {
            s.set_state(&r.id, state, Some("host key changed")).unwrap();
        }
        r.id
    }

    fn resolve(s: &Store, run: &RunId, reason: &str) -> Result<Resolution> {
        s.resolve_run(&NewResolution {
            run_id: run.clone(),
            os_user: "kari".into(),
            resolved_by: Some("Kari Nordmann".into()),
            reason: reason.into(),
        })
    }

    #[test]
    fn a_resolved_run_no_longer_needs_attention_and_is_never_run_again() {
        let s = Store::open_in_memory()
            .unwrap()
            .with_clock(|| Utc.with_ymd_and_hms(2026, 3, 9, 8, 0, 0).unwrap());
        let na = run_in(&s, "acme", 1, RunState::NeedsAttention);
        let failed = run_in(&s, "other", 1, RunState::Failed);
        let ids = |s: &Store| -> Vec<RunId> {
            s.unresolved_runs(&WAITING)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids(&s), vec![na.clone(), failed.clone()]);
        assert_eq!(s.runs_needing_attention().unwrap().len(), 1);
        let r = resolve(&s, &na, "  customer sent the file by hand  ").unwrap();
        assert_eq!(r.state, RunState::NeedsAttention);
        assert_eq!(r.reason, "customer sent the file by hand");
        assert_eq!(r.os_user, "kari");
        assert_eq!(r.resolved_by.as_deref(), Some("Kari Nordmann"));
        assert_eq!(
            r.resolved_at,
            Utc.with_ymd_and_hms(2026, 3, 9, 8, 0, 0).unwrap()
        );
        assert_eq!(s.resolution(&na).unwrap(), Some(r.clone()));
        assert_eq!(ids(&s), vec![failed.clone()]);
        assert!(s.runs_needing_attention().unwrap().is_empty());
        // The first decision stands: a second one is refused and names the first.
        match resolve(&s, &na, "something else") {
            Err(StoreError::AlreadyResolved(first)) => assert_eq!(*first, r),
            other => panic!("expected AlreadyResolved, got {other:?}"),
        }
        // A closed run cannot be made active again (retry), but the run itself is kept.
        assert!(matches!(
            s.set_state(&na, RunState::Pending, None),
            Err(StoreError::InvalidTransition { .. })
        ));
        assert_eq!(
            s.get_run(&na).unwrap().unwrap().state,
            RunState::NeedsAttention
        );
        resolve(&s, &failed, "subscription ended").unwrap();
        assert!(ids(&s).is_empty());
        assert_eq!(s.resolutions().unwrap().len(), 2);
        // Nobody edits a resolution behind the store's back either.
        assert!(s
            .connection()
            .execute("UPDATE run_resolutions SET reason = 'x'", [])
            .is_err());
    }

    #[test]
    fn only_waiting_runs_with_a_reason_can_be_resolved() {
        let s = Store::open_in_memory().unwrap();
        let na = run_in(&s, "acme", 1, RunState::NeedsAttention);
        assert!(matches!(
            resolve(&s, &na, " \n "),
            Err(StoreError::Invalid(_))
        ));
        let pending = run_in(&s, "other", 1, RunState::Pending);
        let e = resolve(&s, &pending, "why not").unwrap_err();
        assert!(matches!(e, StoreError::NotResolvable { .. }), "{e:?}");
        assert!(e.to_string().contains("being worked on"), "{e}");
        assert!(matches!(
            resolve(&s, &"acme-20990101T000000Z".into(), "x"),
            Err(StoreError::NoSuchRun(_))
        ));
        assert!(s.resolutions().unwrap().is_empty());
    }

    #[test]
    fn retention_removes_a_resolved_run_with_its_resolution_and_keeps_open_ones() {
        let s = Store::open_in_memory()
            .unwrap()
            .with_clock(|| Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap());
        let closed = run_in(&s, "acme", 1, RunState::NeedsAttention);
        let open = run_in(&s, "other", 1, RunState::NeedsAttention);
        resolve(&s, &closed, "handled by phone").unwrap();
        s.purge_older_than(Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap())
            .unwrap();
        assert!(s.get_run(&closed).unwrap().is_none());
        assert!(s.resolutions().unwrap().is_empty());
        assert!(s.get_run(&open).unwrap().is_some());
    }
}
