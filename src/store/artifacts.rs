//! A run's sealed files: the artifact on its `runs` row ([`Store::record_artifact`],
//! [`Store::discard_artifact`]) and the further files of the `run_files` table (code tables
//! sealed beside it).

use super::db::params;
use super::model::{Artifact, Run, RunFile, RunId, RunState};
use super::runs::get_run_in;
use super::{to_i64, to_u64, Result, Store, StoreError};

impl Store {
    /// Records the sealed artifact and moves the run to `sealed`. Allowed from `pending` and
    /// `generated`; repeating it with the same artifact later is a no-op (retries reuse the
    /// artifact), a different artifact is refused (set the run back to `pending` first).
    pub fn record_artifact(&self, run: &RunId, a: &Artifact) -> Result<Run> {
        let tx = self.write_tx()?;
        let cur = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        self.fence_in(&tx, run)?;
        match cur.state {
            RunState::Pending | RunState::Generated => {}
            RunState::Sealed | RunState::Uploading if cur.artifact.as_ref() == Some(a) => {
                return Ok(cur);
            }
            other => {
                return Err(StoreError::InvalidTransition {
                    run: run.clone(),
                    from: other.to_string(),
                    to: RunState::Sealed.to_string(),
                    why: "the run already has a different artifact or is finished",
                })
            }
        }
        tx.execute(
            "UPDATE runs SET artifact_path = ?2, file_name = ?3, plaintext_sha256 = ?4, \
             ciphertext_sha256 = ?5, rows = ?6, plaintext_bytes = ?7, ciphertext_bytes = ?8, \
             period_from = ?9, period_to = ?10, format = ?11, fallback_note = ?12, \
             state = 'sealed', state_reason = NULL, updated_at = ?13, sealed_by = ?14 WHERE id = ?1",
            params![
                run,
                a.path,
                a.file_name,
                a.plaintext_sha256,
                a.ciphertext_sha256,
                to_i64(a.rows, "rows")?,
                to_i64(a.plaintext_bytes, "plaintext_bytes")?,
                to_i64(a.ciphertext_bytes, "ciphertext_bytes")?,
                a.period_from,
                a.period_to,
                a.format,
                a.fallback_note,
                self.now(),
                self.node
            ],
        )?;
        let updated = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        tx.commit()?;
        Ok(updated)
    }

    /// Forgets the run's sealed artifact and its further files (the spool file changed
    /// after sealing) and moves it back to `pending` with `reason`, in one transaction, so
    /// a crash right after never leaves a run pointing at a file it must not upload.
    pub fn discard_artifact(&self, run: &RunId, reason: &str) -> Result<Run> {
        let tx = self.write_tx()?;
        let cur = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        if !cur.state.is_active() {
            return Err(StoreError::InvalidTransition {
                run: run.clone(),
                from: cur.state.to_string(),
                to: RunState::Pending.to_string(),
                why: "only an active run's artifact can be discarded",
            });
        }
        self.fence_in(&tx, run)?;
        tx.execute(
            "UPDATE runs SET artifact_path = NULL, file_name = NULL, plaintext_sha256 = NULL, \
             ciphertext_sha256 = NULL, rows = NULL, plaintext_bytes = NULL, ciphertext_bytes = NULL, \
             period_from = NULL, period_to = NULL, format = NULL, fallback_note = NULL, \
             sealed_by = NULL, state = 'pending', state_reason = ?2, updated_at = ?3 WHERE id = ?1",
            params![run, reason, self.now()],
        )?;
        tx.execute("DELETE FROM run_files WHERE run_id = ?1", [run])?;
        // A passphrase SMS was for this artifact only.
        tx.execute("DELETE FROM email_sends WHERE run_id = ?1", [run])?;
        let updated = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        tx.commit()?;
        Ok(updated)
    }

    /// Records the further files sealed for a run (replacing any recorded before), in
    /// upload order. Call it before [`record_artifact`](Store::record_artifact) so a run
    /// is never `sealed` without them.
    pub fn record_run_files(&self, run: &RunId, files: &[RunFile]) -> Result<()> {
        let tx = self.write_tx()?;
        get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.clone()))?;
        tx.execute("DELETE FROM run_files WHERE run_id = ?1", [run])?;
        for (i, f) in files.iter().enumerate() {
            tx.execute(
                "INSERT INTO run_files (run_id, seq, code_table, path, file_name, rows, plaintext_sha256, \
                 ciphertext_sha256, plaintext_bytes, ciphertext_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    run,
                    i as i64 + 1,
                    f.code_table,
                    f.path,
                    f.file_name,
                    to_i64(f.rows, "rows")?,
                    f.plaintext_sha256,
                    f.ciphertext_sha256,
                    to_i64(f.plaintext_bytes, "plaintext_bytes")?,
                    to_i64(f.ciphertext_bytes, "ciphertext_bytes")?,
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The further files of a run, in upload order (empty for one-file runs).
    pub fn run_files(&self, run: &RunId) -> Result<Vec<RunFile>> {
        let rows = self.conn.query(
            "SELECT code_table, path, file_name, rows, plaintext_sha256, ciphertext_sha256, \
             plaintext_bytes, ciphertext_bytes FROM run_files WHERE run_id = ?1 ORDER BY seq",
            [run],
        )?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(RunFile {
                code_table: r.get(0)?,
                path: r.get(1)?,
                file_name: r.get(2)?,
                rows: to_u64(r.get(3)?, "rows")?,
                plaintext_sha256: r.get(4)?,
                ciphertext_sha256: r.get(5)?,
                plaintext_bytes: to_u64(r.get(6)?, "plaintext_bytes")?,
                ciphertext_bytes: to_u64(r.get(7)?, "ciphertext_bytes")?,
            });
        }
        Ok(out)
    }
}
