//! The `runs` table: one row per (subscription, fire time), its state machine and the
//! queries over it ([`Store::create_run`], [`Store::set_state`], [`Store::list_runs`], ...).

use super::db::{params, Db, Row, ToValue, Value};
use super::model::{
    fmt_ts, parse_ts, run_id, trunc_ts, Artifact, NewRun, Run, RunCreated, RunFilter, RunId,
    RunState, SubscriptionId,
};
use super::{to_u64, Result, Store, StoreError};

const RUN_COLS: &str = "id, subscription, scheduled_at, created_at, state, state_reason, \
    artifact_path, file_name, plaintext_sha256, ciphertext_sha256, rows, plaintext_bytes, \
    ciphertext_bytes, period_from, period_to, format, fallback_note, updated_at";

fn read_run(row: &Row) -> Result<Run> {
    let artifact_path: Option<String> = row.get(6)?;
    let artifact = match artifact_path {
        None => None,
        Some(path) => Some(Artifact {
            path,
            file_name: row.get::<_, Option<String>>(7)?.unwrap_or_default(),
            plaintext_sha256: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
            ciphertext_sha256: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
            rows: to_u64(row.get::<_, Option<i64>>(10)?.unwrap_or(0), "rows")?,
            plaintext_bytes: to_u64(
                row.get::<_, Option<i64>>(11)?.unwrap_or(0),
                "plaintext_bytes",
            )?,
            ciphertext_bytes: to_u64(
                row.get::<_, Option<i64>>(12)?.unwrap_or(0),
                "ciphertext_bytes",
            )?,
            period_from: row.get(13)?,
            period_to: row.get(14)?,
            format: row.get::<_, Option<String>>(15)?.unwrap_or_default(),
            fallback_note: row.get(16)?,
        }),
    };
    Ok(Run {
        id: row.get(0)?,
        subscription: row.get(1)?,
        scheduled_at: parse_ts(&row.get::<_, String>(2)?)?,
        created_at: parse_ts(&row.get::<_, String>(3)?)?,
        state: row.get::<_, String>(4)?.parse()?,
        state_reason: row.get(5)?,
        artifact,
        updated_at: parse_ts(&row.get::<_, String>(17)?)?,
    })
}

fn query_runs(conn: &Db, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Run>> {
    conn.query(sql, params)?.iter().map(read_run).collect()
}

pub(super) fn get_run_in(conn: &Db, id: &str) -> Result<Option<Run>> {
    Ok(query_runs(
        conn,
        &format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"),
        &[&id],
    )?
    .into_iter()
    .next())
}

fn active_run_in(conn: &Db, subscription: &str) -> Result<Option<Run>> {
    Ok(query_runs(
        conn,
        &format!(
            "SELECT {RUN_COLS} FROM runs WHERE subscription = ?1 AND state IN \
             ('pending','generated','sealed','uploading') ORDER BY scheduled_at LIMIT 1"
        ),
        &[&subscription],
    )?
    .into_iter()
    .next())
}

impl Store {
    /// Records the run for (subscription, scheduled_at) or returns the one already there.
    /// Fails with [`StoreError::ActiveRun`] (retryable) while another run of the
    /// subscription is active.
    pub fn create_run(&self, new: &NewRun) -> Result<RunCreated> {
        if new.subscription.is_empty() || new.subscription.chars().any(char::is_whitespace) {
            return Err(StoreError::Invalid(format!(
                "subscription id {:?}",
                new.subscription
            )));
        }
        let scheduled = trunc_ts(new.scheduled_at);
        let sched_text = fmt_ts(scheduled);
        let tx = self.write_tx()?;
        let existing = query_runs(
            &tx,
            &format!("SELECT {RUN_COLS} FROM runs WHERE subscription = ?1 AND scheduled_at = ?2"),
            &[&new.subscription, &sched_text],
        )?;
        if let Some(run) = existing.into_iter().next() {
            return Ok(RunCreated::Exists(run));
        }
        if let Some(active) = active_run_in(&tx, &new.subscription)? {
            return Err(StoreError::ActiveRun {
                subscription: new.subscription.clone(),
                active: active.id,
            });
        }
        let id = run_id(&new.subscription, scheduled);
        let now = self.now();
        // DO NOTHING: on PostgreSQL another node may have created this run (or another
        // active one) since the reads above; then its run is the answer, as if read above.
        let added = tx.execute(
            "INSERT INTO runs (id, subscription, scheduled_at, created_at, state, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 'pending', ?4) ON CONFLICT DO NOTHING",
            params![id, new.subscription, sched_text, now],
        )?;
        if added == 0 {
            let existing = query_runs(
                &tx,
                &format!(
                    "SELECT {RUN_COLS} FROM runs WHERE subscription = ?1 AND scheduled_at = ?2"
                ),
                &[&new.subscription, &sched_text],
            )?;
            if let Some(run) = existing.into_iter().next() {
                return Ok(RunCreated::Exists(run));
            }
            return Err(match active_run_in(&tx, &new.subscription)? {
                Some(active) => StoreError::ActiveRun {
                    subscription: new.subscription.clone(),
                    active: active.id,
                },
                None => StoreError::Corrupt(format!("run {id} could not be added")),
            });
        }
        let run = get_run_in(&tx, &id)?.ok_or_else(|| StoreError::NoSuchRun(id.clone()))?;
        tx.commit()?;
        Ok(RunCreated::Created(run))
    }

    pub fn get_run(&self, id: &RunId) -> Result<Option<Run>> {
        get_run_in(&self.conn, id)
    }

    /// Moves a run to `state` with an optional reason (shown to operators). See
    /// [`RunState::check_move`] for what is refused.
    pub fn set_state(&self, run: &RunId, state: RunState, reason: Option<&str>) -> Result<Run> {
        let tx = self.write_tx()?;
        let cur = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        cur.state
            .check_move(state)
            .map_err(|why| StoreError::InvalidTransition {
                run: run.clone(),
                from: cur.state.to_string(),
                to: state.to_string(),
                why,
            })?;
        if state.is_active() && super::resolutions::resolution_in(&tx, run)?.is_some() {
            return Err(StoreError::InvalidTransition {
                run: run.clone(),
                from: cur.state.to_string(),
                to: state.to_string(),
                why: "an operator resolved (closed) this run; it is not run again",
            });
        }
        if state.is_active() && !cur.state.is_active() {
            if let Some(active) = active_run_in(&tx, &cur.subscription)? {
                return Err(StoreError::ActiveRun {
                    subscription: cur.subscription,
                    active: active.id,
                });
            }
        }
        tx.execute(
            "UPDATE runs SET state = ?2, state_reason = ?3, updated_at = ?4 WHERE id = ?1",
            params![run, state.as_str(), reason, self.now()],
        )?;
        let updated = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        tx.commit()?;
        Ok(updated)
    }

    /// The subscription's active run (pending, generated, sealed or uploading), if any.
    pub fn active_run(&self, subscription: &SubscriptionId) -> Result<Option<Run>> {
        active_run_in(&self.conn, subscription)
    }

    /// Every active run, oldest fire time first: what to resume after a crash.
    pub fn unfinished_runs(&self) -> Result<Vec<Run>> {
        self.list_runs(&RunFilter {
            states: RunState::ACTIVE.to_vec(),
            ..Default::default()
        })
    }

    /// Runs matching `filter`, by fire time then id.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let mut sql = format!("SELECT {RUN_COLS} FROM runs WHERE 1=1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(s) = &filter.subscription {
            args.push(s.to_value());
            sql += &format!(" AND subscription = ?{}", args.len());
        }
        if !filter.states.is_empty() {
            let list: Vec<String> = filter
                .states
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql += &format!(" AND state IN ({})", list.join(","));
        }
        if let Some(t) = filter.since {
            args.push(Value::Text(fmt_ts(t)));
            sql += &format!(" AND scheduled_at >= ?{}", args.len());
        }
        if let Some(t) = filter.until {
            args.push(Value::Text(fmt_ts(t)));
            sql += &format!(" AND scheduled_at < ?{}", args.len());
        }
        sql += " ORDER BY scheduled_at, id";
        if let Some(l) = filter.limit {
            sql += &format!(" LIMIT {l}");
        }
        self.conn.query(&sql, args)?.iter().map(read_run).collect()
    }
}
