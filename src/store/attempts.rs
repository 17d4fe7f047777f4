//! The `attempts` table: each try of a run, opened and closed by the delivery
//! ([`Store::begin_attempt`], [`Store::finish_attempt`]).

use super::db::{params, Row};
use super::model::{parse_ts, Attempt, AttemptOutcome, RunId, RunState};
use super::runs::get_run_in;
use super::{Result, Store, StoreError};
use crate::core::retry::Stage;

fn read_attempt(row: &Row) -> Result<Attempt> {
    let n: i64 = row.get(1)?;
    Ok(Attempt {
        run_id: row.get(0)?,
        n: u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("attempt number {n}")))?,
        started_at: parse_ts(&row.get::<_, String>(2)?)?,
        ended_at: row
            .get::<_, Option<String>>(3)?
            .as_deref()
            .map(parse_ts)
            .transpose()?,
        outcome: row
            .get::<_, Option<String>>(4)?
            .as_deref()
            .map(str::parse)
            .transpose()?,
        error_class: row
            .get::<_, Option<String>>(5)?
            .as_deref()
            .map(|t| t.parse::<Stage>().map_err(StoreError::Corrupt))
            .transpose()?,
        message: row.get(6)?,
    })
}

impl Store {
    /// Starts the next attempt of a run and returns its number (1-based). An attempt left
    /// open by a crash is closed first as `retryable` ("interrupted").
    pub fn begin_attempt(&self, run: &RunId) -> Result<u32> {
        let tx = self.write_tx()?;
        let cur = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        if cur.state == RunState::Delivered {
            return Err(StoreError::InvalidTransition {
                run: run.clone(),
                from: cur.state.to_string(),
                to: "attempt".into(),
                why: "the run is already delivered",
            });
        }
        let now = self.now();
        tx.execute(
            "UPDATE attempts SET ended_at = ?2, outcome = 'retryable', error_class = 'interrupted', \
             message = 'the process stopped during this attempt' \
             WHERE run_id = ?1 AND ended_at IS NULL",
            params![run, now],
        )?;
        let n: i64 = tx.query_row(
            "SELECT COALESCE(MAX(n), 0) + 1 FROM attempts WHERE run_id = ?1",
            [run],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO attempts (run_id, n, started_at) VALUES (?1, ?2, ?3)",
            params![run, n, now],
        )?;
        tx.commit()?;
        Ok(n as u32)
    }

    /// Ends attempt `n` of `run`. `error_class` is a short label (`connect`, `auth`, ...).
    pub fn finish_attempt(
        &self,
        run: &RunId,
        n: u32,
        outcome: AttemptOutcome,
        error_class: Option<Stage>,
        message: Option<&str>,
    ) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE attempts SET ended_at = ?3, outcome = ?4, error_class = ?5, message = ?6 \
             WHERE run_id = ?1 AND n = ?2 AND ended_at IS NULL",
            params![
                run,
                n,
                self.now(),
                outcome.as_str(),
                error_class.map(Stage::as_str),
                message
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::Invalid(format!(
                "run {run} has no open attempt {n}"
            )));
        }
        Ok(())
    }

    /// A run's attempts in order.
    pub fn attempts(&self, run: &RunId) -> Result<Vec<Attempt>> {
        self.conn
            .query(
                "SELECT run_id, n, started_at, ended_at, outcome, error_class, message \
                 FROM attempts WHERE run_id = ?1 ORDER BY n",
                [run],
            )?
            .iter()
            .map(read_attempt)
            .collect()
    }
}
