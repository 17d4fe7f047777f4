//! The state store: runs, attempts and hash-chained receipts in one SQLite file next to
//! the spool (DESIGN §6).
//!
//! - A run is recorded for (subscription, scheduled time) before any work, so a crash
//!   always leaves something to resume ([`Store::unfinished_runs`]). Run ids are
//!   `<subscription>-<YYYYMMDDTHHMMSSZ>` ([`run_id`]); a subscription has at most one
//!   active run (enforced by a partial unique index).
//! - [`Store::commit_receipt`] writes the receipt and marks the run delivered in one
//!   transaction; never two receipts per run (UNIQUE(run_id) plus an idempotent API).
//! - Receipts form a hash chain ([`chain`]); [`Store::verify_chain`] names the first broken
//!   link; retention ([`Store::purge_older_than`]) keeps the rest verifiable via an anchor.
//! - Durability: WAL with `synchronous=FULL` (a committed receipt survives power loss),
//!   `busy_timeout` 5 s, foreign keys on, versioned [`migrations`].
//!
//! A `Store` holds one connection and is `Send` but not `Sync`: share it behind a mutex and
//! call it from a blocking thread. Timestamps are stored as UTC text ([`model::TS_FORMAT`]).

pub mod chain;
mod error;
pub mod export;
pub mod migrations;
pub mod model;

pub use chain::{BreakKind, BrokenLink, ChainReport, GENESIS};
pub use error::{Result, StoreError};
pub use model::{
    fmt_ts, month_range, parse_month, parse_ts, run_id, Artifact, Attempt, AttemptOutcome,
    DeliveredFile, NewReceipt, NewRun, Receipt, ReceiptFilter, Run, RunCreated, RunFile, RunFilter,
    RunState, Transport,
};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use model::trunc_ts;

/// How long a writer waits for another connection's lock before `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What [`Store::purge_older_than`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    pub receipts: u64,
    pub attempts: u64,
    /// Finished runs (delivered or failed) with nothing left referring to them.
    pub runs: u64,
}

/// The state store. See the module docs.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    clock: Clock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

const RUN_COLS: &str = "id, subscription, scheduled_at, created_at, state, state_reason, \
    artifact_path, file_name, plaintext_sha256, ciphertext_sha256, rows, plaintext_bytes, \
    ciphertext_bytes, period_from, period_to, format, fallback_note, updated_at";

const RECEIPT_COLS: &str = "id, run_id, subscription, customer, customer_org_number, \
    case_number, invoice_reference, report, remote_host, remote_port, host_key_fingerprint, \
    remote_path, bytes, rows, plaintext_sha256, ciphertext_sha256, personal_fields, \
    legal_basis, recipients, attempts, started_at, delivered_at, prev_hash, hash, files, \
    transport";

fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {v}")))
}

fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} too large: {v}")))
}

fn read_run(row: &Row<'_>) -> Result<Run> {
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

fn read_receipt(row: &Row<'_>) -> Result<Receipt> {
    let port: i64 = row.get(9)?;
    let attempts: i64 = row.get(19)?;
    Ok(Receipt {
        id: row.get(0)?,
        run_id: row.get(1)?,
        subscription: row.get(2)?,
        customer: row.get(3)?,
        customer_org_number: row.get(4)?,
        case_number: row.get(5)?,
        invoice_reference: row.get(6)?,
        report: row.get(7)?,
        remote_host: row.get(8)?,
        remote_port: u16::try_from(port)
            .map_err(|_| StoreError::Corrupt(format!("remote_port {port}")))?,
        host_key_fingerprint: row.get(10)?,
        remote_path: row.get(11)?,
        bytes: to_u64(row.get(12)?, "bytes")?,
        rows: to_u64(row.get(13)?, "rows")?,
        plaintext_sha256: row.get(14)?,
        ciphertext_sha256: row.get(15)?,
        personal_fields: serde_json::from_str(&row.get::<_, String>(16)?)?,
        legal_basis: row.get(17)?,
        recipients: serde_json::from_str(&row.get::<_, String>(18)?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("attempts {attempts}")))?,
        started_at: parse_ts(&row.get::<_, String>(20)?)?,
        delivered_at: parse_ts(&row.get::<_, String>(21)?)?,
        prev_hash: row.get(22)?,
        hash: row.get(23)?,
        files: match row.get::<_, Option<String>>(24)? {
            Some(json) => serde_json::from_str(&json)?,
            None => Vec::new(),
        },
        transport: match row.get::<_, Option<String>>(25)? {
            Some(json) => Some(serde_json::from_str(&json)?),
            None => None,
        },
    })
}

fn read_attempt(row: &Row<'_>) -> Result<Attempt> {
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
        error_class: row.get(5)?,
        message: row.get(6)?,
    })
}

fn query_runs(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Run>> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_run(row)?);
    }
    Ok(out)
}

fn query_receipts(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Receipt>> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_receipt(row)?);
    }
    Ok(out)
}

fn get_run_in(conn: &Connection, id: &str) -> Result<Option<Run>> {
    Ok(query_runs(
        conn,
        &format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"),
        &[&id],
    )?
    .into_iter()
    .next())
}

fn active_run_in(conn: &Connection, subscription: &str) -> Result<Option<Run>> {
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

fn receipt_for_run_in(conn: &Connection, run_id: &str) -> Result<Option<Receipt>> {
    Ok(query_receipts(
        conn,
        &format!("SELECT {RECEIPT_COLS} FROM receipts WHERE run_id = ?1"),
        &[&run_id],
    )?
    .into_iter()
    .next())
}

/// The chain anchor: `(hash, id of the last purged receipt)`, or genesis.
fn anchor_in(conn: &Connection) -> Result<(String, Option<i64>)> {
    Ok(conn
        .query_row(
            "SELECT hash, receipt_id FROM chain_anchor WHERE id = 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, Some(r.get::<_, i64>(1)?))),
        )
        .optional()?
        .unwrap_or_else(|| (GENESIS.to_string(), None)))
}

fn verify_in(conn: &Connection) -> Result<ChainReport> {
    let (anchor, anchor_id) = anchor_in(conn)?;
    let mut stmt = conn.prepare(&format!("SELECT {RECEIPT_COLS} FROM receipts ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        items.push(read_receipt(row).map_err(|e| (id, e.to_string())));
    }
    Ok(chain::verify_sequence(&anchor, anchor_id, items))
}

impl Store {
    /// Opens (creating it 0600 if missing) and migrates the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        create_private(path)?;
        let conn = Connection::open(path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "State store could not switch to WAL.");
        }
        Self::setup(conn, Some(path.to_path_buf()))
    }

    /// An in-memory store (tests and dry runs; nothing is durable).
    pub fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(conn: Connection, path: Option<PathBuf>) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        migrations::migrate(&conn)?;
        Ok(Store {
            conn,
            path,
            clock: Arc::new(Utc::now),
        })
    }

    /// Replaces the clock used for `created_at`, `updated_at` and attempt times (tests).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    ) -> Store {
        self.clock = Arc::new(clock);
        self
    }

    /// The file behind this store (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        migrations::current_version(&self.conn)
    }

    /// The raw connection, for diagnostics and tests. Writing through it bypasses the
    /// store's rules (tests use that to play a tamperer).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn now(&self) -> String {
        fmt_ts((self.clock)())
    }

    fn write_tx(&self) -> Result<Transaction<'_>> {
        Ok(Transaction::new_unchecked(
            &self.conn,
            TransactionBehavior::Immediate,
        )?)
    }

    // ---- runs ----------------------------------------------------------------------

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
        tx.execute(
            "INSERT INTO runs (id, subscription, scheduled_at, created_at, state, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 'pending', ?4)",
            params![id, new.subscription, sched_text, now],
        )?;
        let run = get_run_in(&tx, &id)?.ok_or_else(|| StoreError::NoSuchRun(id.clone()))?;
        tx.commit()?;
        Ok(RunCreated::Created(run))
    }

    pub fn get_run(&self, id: &str) -> Result<Option<Run>> {
        get_run_in(&self.conn, id)
    }

    /// Moves a run to `state` with an optional reason (shown to operators). See
    /// [`RunState::check_move`] for what is refused.
    pub fn set_state(&self, run: &str, state: RunState, reason: Option<&str>) -> Result<Run> {
        let tx = self.write_tx()?;
        let cur = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
        cur.state
            .check_move(state)
            .map_err(|why| StoreError::InvalidTransition {
                run: run.to_string(),
                from: cur.state.to_string(),
                to: state.to_string(),
                why,
            })?;
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
        let updated =
            get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
        tx.commit()?;
        Ok(updated)
    }

    /// Records the sealed artifact and moves the run to `sealed`. Allowed from `pending` and
    /// `generated`; repeating it with the same artifact later is a no-op (retries reuse the
    /// artifact), a different artifact is refused (set the run back to `pending` first).
    pub fn record_artifact(&self, run: &str, a: &Artifact) -> Result<Run> {
        let tx = self.write_tx()?;
        let cur = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
        match cur.state {
            RunState::Pending | RunState::Generated => {}
            RunState::Sealed | RunState::Uploading if cur.artifact.as_ref() == Some(a) => {
                return Ok(cur);
            }
            other => {
                return Err(StoreError::InvalidTransition {
                    run: run.to_string(),
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
             state = 'sealed', state_reason = NULL, updated_at = ?13 WHERE id = ?1",
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
                self.now()
            ],
        )?;
        let updated =
            get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
        tx.commit()?;
        Ok(updated)
    }

    /// Forgets the run's sealed artifact and its further files (the spool file changed
    /// after sealing) and moves it back to `pending` with `reason`, in one transaction, so
    /// a crash right after never leaves a run pointing at a file it must not upload.
    pub fn discard_artifact(&self, run: &str, reason: &str) -> Result<Run> {
        let tx = self.write_tx()?;
        let cur = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
        if !cur.state.is_active() {
            return Err(StoreError::InvalidTransition {
                run: run.to_string(),
                from: cur.state.to_string(),
                to: RunState::Pending.to_string(),
                why: "only an active run's artifact can be discarded",
            });
        }
        tx.execute(
            "UPDATE runs SET artifact_path = NULL, file_name = NULL, plaintext_sha256 = NULL, \
             ciphertext_sha256 = NULL, rows = NULL, plaintext_bytes = NULL, ciphertext_bytes = NULL, \
             period_from = NULL, period_to = NULL, format = NULL, fallback_note = NULL, \
             state = 'pending', state_reason = ?2, updated_at = ?3 WHERE id = ?1",
            params![run, reason, self.now()],
        )?;
        tx.execute("DELETE FROM run_files WHERE run_id = ?1", [run])?;
        let updated =
            get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
        tx.commit()?;
        Ok(updated)
    }

    /// The subscription's active run (pending, generated, sealed or uploading), if any.
    pub fn active_run(&self, subscription: &str) -> Result<Option<Run>> {
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
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(s) = &filter.subscription {
            args.push(Box::new(s.clone()));
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
            args.push(Box::new(fmt_ts(t)));
            sql += &format!(" AND scheduled_at >= ?{}", args.len());
        }
        if let Some(t) = filter.until {
            args.push(Box::new(fmt_ts(t)));
            sql += &format!(" AND scheduled_at < ?{}", args.len());
        }
        sql += " ORDER BY scheduled_at, id";
        if let Some(l) = filter.limit {
            sql += &format!(" LIMIT {l}");
        }
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
        query_runs(&self.conn, &sql, &refs)
    }

    // ---- attempts ------------------------------------------------------------------

    /// Starts the next attempt of a run and returns its number (1-based). An attempt left
    /// open by a crash is closed first as `retryable` ("interrupted").
    pub fn begin_attempt(&self, run: &str) -> Result<u32> {
        let tx = self.write_tx()?;
        let cur = get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
        if cur.state == RunState::Delivered {
            return Err(StoreError::InvalidTransition {
                run: run.to_string(),
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
        run: &str,
        n: u32,
        outcome: AttemptOutcome,
        error_class: Option<&str>,
        message: Option<&str>,
    ) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE attempts SET ended_at = ?3, outcome = ?4, error_class = ?5, message = ?6 \
             WHERE run_id = ?1 AND n = ?2 AND ended_at IS NULL",
            params![run, n, self.now(), outcome.as_str(), error_class, message],
        )?;
        if changed == 0 {
            return Err(StoreError::Invalid(format!(
                "run {run} has no open attempt {n}"
            )));
        }
        Ok(())
    }

    /// A run's attempts in order.
    pub fn attempts(&self, run: &str) -> Result<Vec<Attempt>> {
        let mut stmt = self.conn.prepare(
            "SELECT run_id, n, started_at, ended_at, outcome, error_class, message \
             FROM attempts WHERE run_id = ?1 ORDER BY n",
        )?;
        let mut rows = stmt.query([run])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(read_attempt(row)?);
        }
        Ok(out)
    }

    // ---- receipts ------------------------------------------------------------------

    /// In one transaction: appends the receipt to the chain and marks the run delivered.
    /// Idempotent: if the run already has a receipt, that receipt is returned and nothing
    /// is written. Refuses a receipt whose file does not match the run's sealed artifact.
    /// The attempt count is taken from the attempts table (at least 1).
    pub fn commit_receipt(&self, new: &NewReceipt) -> Result<Receipt> {
        self.commit_receipt_with_files(new, &[])
    }

    /// [`commit_receipt`](Store::commit_receipt) for a run that delivered further files
    /// (code tables) beside its main file; the receipt records them under `files`, and the
    /// chain hash covers them.
    pub fn commit_receipt_with_files(
        &self,
        new: &NewReceipt,
        files: &[DeliveredFile],
    ) -> Result<Receipt> {
        self.commit_delivery(new, files, None)
    }

    /// [`commit_receipt_with_files`](Store::commit_receipt_with_files) that also records how
    /// the delivery went out (server, commit path); the chain hash covers it (form v3).
    pub fn commit_delivery(
        &self,
        new: &NewReceipt,
        files: &[DeliveredFile],
        transport: Option<&Transport>,
    ) -> Result<Receipt> {
        let tx = self.write_tx()?;
        if let Some(existing) = receipt_for_run_in(&tx, &new.run_id)? {
            if existing.ciphertext_sha256 != new.ciphertext_sha256
                || existing.remote_path != new.remote_path
            {
                tracing::warn!(run = %new.run_id, receipt = existing.id,
                    "A second, different receipt was offered for a delivered run; kept the first.");
            }
            return Ok(existing);
        }
        let run = get_run_in(&tx, &new.run_id)?
            .ok_or_else(|| StoreError::NoSuchRun(new.run_id.clone()))?;
        let mismatch = |detail: String| StoreError::Mismatch {
            run: run.id.clone(),
            detail,
        };
        if run.subscription != new.subscription {
            return Err(mismatch(format!(
                "receipt is for subscription {}, the run belongs to {}",
                new.subscription, run.subscription
            )));
        }
        if let Some(a) = &run.artifact {
            if a.ciphertext_sha256 != new.ciphertext_sha256 || a.ciphertext_bytes != new.bytes {
                return Err(mismatch(format!(
                    "delivered file ({} bytes, sha256 {}) is not the sealed artifact ({} bytes, sha256 {})",
                    new.bytes, new.ciphertext_sha256, a.ciphertext_bytes, a.ciphertext_sha256
                )));
            }
        }
        let attempts: i64 = tx.query_row(
            "SELECT COUNT(*) FROM attempts WHERE run_id = ?1",
            [&new.run_id],
            |r| r.get(0),
        )?;
        let (anchor, anchor_id) = anchor_in(&tx)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, hash FROM receipts ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (id, prev_hash) = match last {
            Some((id, hash)) => (id + 1, hash),
            // After a full purge the numbering continues after the last purged receipt.
            None => (anchor_id.unwrap_or(0) + 1, anchor),
        };
        to_i64(new.bytes, "bytes")?;
        to_i64(new.rows, "rows")?;
        let mut r = Receipt {
            id,
            run_id: new.run_id.clone(),
            subscription: new.subscription.clone(),
            customer: new.customer.clone(),
            customer_org_number: new.customer_org_number.clone(),
            case_number: new.case_number.clone(),
            invoice_reference: new.invoice_reference.clone(),
            report: new.report.clone(),
            remote_host: new.remote_host.clone(),
            remote_port: new.remote_port,
            host_key_fingerprint: new.host_key_fingerprint.clone(),
            remote_path: new.remote_path.clone(),
            bytes: new.bytes,
            rows: new.rows,
            plaintext_sha256: new.plaintext_sha256.clone(),
            ciphertext_sha256: new.ciphertext_sha256.clone(),
            personal_fields: new.personal_fields.clone(),
            legal_basis: new.legal_basis.clone(),
            recipients: new.recipients.clone(),
            attempts: attempts.max(1) as u32,
            started_at: trunc_ts(new.started_at),
            delivered_at: trunc_ts(new.delivered_at),
            files: files.to_vec(),
            transport: transport.cloned(),
            prev_hash,
            hash: String::new(),
        };
        for f in files {
            to_i64(f.bytes, "bytes")?;
            to_i64(f.rows, "rows")?;
        }
        r.hash = chain::receipt_hash(&r);
        tx.execute(
            &format!(
                "INSERT INTO receipts ({RECEIPT_COLS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
                  ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
            ),
            params![
                r.id,
                r.run_id,
                r.subscription,
                r.customer,
                r.customer_org_number,
                r.case_number,
                r.invoice_reference,
                r.report,
                r.remote_host,
                r.remote_port,
                r.host_key_fingerprint,
                r.remote_path,
                r.bytes as i64,
                r.rows as i64,
                r.plaintext_sha256,
                r.ciphertext_sha256,
                serde_json::to_string(&r.personal_fields)?,
                r.legal_basis,
                serde_json::to_string(&r.recipients)?,
                r.attempts,
                fmt_ts(r.started_at),
                fmt_ts(r.delivered_at),
                r.prev_hash,
                r.hash,
                if r.files.is_empty() {
                    None
                } else {
                    Some(serde_json::to_string(&r.files)?)
                },
                match &r.transport {
                    Some(t) => Some(serde_json::to_string(t)?),
                    None => None,
                },
            ],
        )?;
        tx.execute(
            "UPDATE runs SET state = 'delivered', state_reason = NULL, updated_at = ?2 WHERE id = ?1",
            params![r.run_id, self.now()],
        )?;
        tx.commit()?;
        Ok(r)
    }

    pub fn receipt(&self, id: i64) -> Result<Option<Receipt>> {
        Ok(query_receipts(
            &self.conn,
            &format!("SELECT {RECEIPT_COLS} FROM receipts WHERE id = ?1"),
            &[&id],
        )?
        .into_iter()
        .next())
    }

    /// The receipt of a run, if it was delivered.
    pub fn receipt_for_run(&self, run: &str) -> Result<Option<Receipt>> {
        receipt_for_run_in(&self.conn, run)
    }

    /// Receipts matching `filter` (`delivered_at` in `[since, until)`), in chain order.
    pub fn receipts(&self, filter: &ReceiptFilter) -> Result<Vec<Receipt>> {
        let mut sql = format!("SELECT {RECEIPT_COLS} FROM receipts WHERE 1=1");
        let mut args: Vec<String> = Vec::new();
        if let Some(s) = &filter.subscription {
            args.push(s.clone());
            sql += &format!(" AND subscription = ?{}", args.len());
        }
        if let Some(t) = filter.since {
            args.push(fmt_ts(t));
            sql += &format!(" AND delivered_at >= ?{}", args.len());
        }
        if let Some(t) = filter.until {
            args.push(fmt_ts(t));
            sql += &format!(" AND delivered_at < ?{}", args.len());
        }
        sql += " ORDER BY id";
        let refs: Vec<&dyn rusqlite::ToSql> =
            args.iter().map(|s| s as &dyn rusqlite::ToSql).collect();
        query_receipts(&self.conn, &sql, &refs)
    }

    /// Recomputes every receipt's hash in id order from the anchor (genesis, or the last
    /// purged receipt) and reports the first broken link. `Err` only for database errors.
    pub fn verify_chain(&self) -> Result<ChainReport> {
        verify_in(&self.conn)
    }

    // ---- further files of a run (code tables) -------------------------------------------

    /// Records the further files sealed for a run (replacing any recorded before), in
    /// upload order. Call it before [`record_artifact`](Store::record_artifact) so a run
    /// is never `sealed` without them.
    pub fn record_run_files(&self, run: &str, files: &[RunFile]) -> Result<()> {
        let tx = self.write_tx()?;
        get_run_in(&tx, run)?.ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
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
    pub fn run_files(&self, run: &str) -> Result<Vec<RunFile>> {
        let mut stmt = self.conn.prepare(
            "SELECT code_table, path, file_name, rows, plaintext_sha256, ciphertext_sha256, \
             plaintext_bytes, ciphertext_bytes FROM run_files WHERE run_id = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([run])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
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

    /// Billing export as CSV (see [`export`] for the columns); returns the line count.
    pub fn export_csv<W: std::io::Write>(&self, w: W, filter: &ReceiptFilter) -> Result<u64> {
        export::write_csv(w, &self.receipts(filter)?)
    }

    /// Billing export as JSON (see [`export`]); returns the object count.
    pub fn export_json<W: std::io::Write>(&self, w: W, filter: &ReceiptFilter) -> Result<u64> {
        export::write_json(w, &self.receipts(filter)?)
    }

    // ---- retention -----------------------------------------------------------------

    /// Retention (gallring): deletes receipts delivered before `cutoff`, attempts that
    /// started before it (of runs no longer active), and finished runs last touched
    /// before it that nothing refers to any more.
    ///
    /// Receipts go as a prefix of the chain (oldest ids first, stopping at the first one
    /// to keep), and `chain_anchor` records the hash of the last one deleted, so
    /// [`verify_chain`](Store::verify_chain) still checks everything that remains. Refuses
    /// with [`StoreError::ChainBroken`] if the chain is broken inside the part to delete:
    /// that evidence must be looked at before it goes.
    pub fn purge_older_than(&self, cutoff: DateTime<Utc>) -> Result<PurgeCounts> {
        let cut = fmt_ts(cutoff);
        let tx = self.write_tx()?;
        let first_kept: Option<i64> = tx.query_row(
            "SELECT MIN(id) FROM receipts WHERE delivered_at >= ?1",
            [&cut],
            |r| r.get(0),
        )?;
        let last_purged: Option<(i64, String)> = match first_kept {
            Some(k) => tx
                .query_row(
                    "SELECT id, hash FROM receipts WHERE id < ?1 ORDER BY id DESC LIMIT 1",
                    [k],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
            None => tx
                .query_row(
                    "SELECT id, hash FROM receipts ORDER BY id DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
        };
        let mut counts = PurgeCounts::default();
        if let Some((last_id, last_hash)) = last_purged {
            if let Some(b) = verify_in(&tx)?.broken {
                if b.receipt_id <= last_id {
                    return Err(StoreError::ChainBroken(b));
                }
            }
            tx.execute(
                "INSERT INTO chain_anchor (id, hash, receipt_id, purged_at) VALUES (1, ?1, ?2, ?3) \
                 ON CONFLICT(id) DO UPDATE SET hash = excluded.hash, \
                 receipt_id = excluded.receipt_id, purged_at = excluded.purged_at",
                params![last_hash, last_id, self.now()],
            )?;
            counts.receipts = tx.execute("DELETE FROM receipts WHERE id <= ?1", [last_id])? as u64;
        }
        counts.attempts = tx.execute(
            "DELETE FROM attempts WHERE started_at < ?1 AND run_id IN \
             (SELECT id FROM runs WHERE state NOT IN ('pending','generated','sealed','uploading'))",
            [&cut],
        )? as u64;
        counts.runs = tx.execute(
            "DELETE FROM runs WHERE state IN ('delivered','failed') AND updated_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM receipts WHERE receipts.run_id = runs.id) \
             AND NOT EXISTS (SELECT 1 FROM attempts WHERE attempts.run_id = runs.id)",
            [&cut],
        )? as u64;
        tx.execute(
            "DELETE FROM run_files WHERE run_id NOT IN (SELECT id FROM runs)",
            [],
        )?;
        tx.commit()?;
        tracing::info!(cutoff = %cut, receipts = counts.receipts, attempts = counts.attempts,
            runs = counts.runs, "Retention purge done.");
        Ok(counts)
    }
}

/// Creates the file with mode 0600 if it does not exist (it names customers and servers).
fn create_private(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
