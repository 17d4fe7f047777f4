//! Versioned schema migrations: SQLite's steps here, tracked in `PRAGMA user_version`;
//! PostgreSQL's in [`postgres`] (the same versions, its own DDL, tracked in a
//! `schema_version` table).
//!
//! [`MIGRATIONS`] is an ordered list; migration `n` (1-based) takes a file from version
//! `n - 1` to `n`. Each runs in its own transaction together with the `user_version` bump,
//! so a crash leaves the file at a whole version. Never edit a published step: append one,
//! here and in [`postgres::MIGRATIONS`] with the same number (a test compares the tables
//! and columns both lists end with).

pub mod postgres;

use rusqlite::{Connection, TransactionBehavior};

use super::db::Db;
use super::error::{Result, StoreError};

/// Migrates a store of either engine to [`LATEST_VERSION`]; returns the versions applied.
pub fn migrate_db(db: &Db) -> Result<Vec<i64>> {
    match db {
        Db::Sqlite(c) => migrate(c),
        Db::Postgres(_) => postgres::migrate_to(db, LATEST_VERSION),
    }
}

/// The schema version of a store of either engine.
pub fn version_of(db: &Db) -> Result<i64> {
    match db {
        Db::Sqlite(c) => current_version(c),
        Db::Postgres(_) => postgres::current_version(db),
    }
}

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version the file has after this step.
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// All steps, oldest first. Tables are `STRICT` so a hand edit cannot store a text in an
/// integer column.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "runs, attempts, receipts",
        sql: r#"
CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    subscription      TEXT NOT NULL,
    scheduled_at      TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN
                        ('pending','generated','sealed','uploading','delivered','needs_attention','failed')),
    state_reason      TEXT,
    artifact_path     TEXT,
    file_name         TEXT,
    plaintext_sha256  TEXT,
    ciphertext_sha256 TEXT,
    rows              INTEGER,
    plaintext_bytes   INTEGER,
    ciphertext_bytes  INTEGER,
    period_from       TEXT,
    period_to         TEXT,
    format            TEXT,
    fallback_note     TEXT,
    updated_at        TEXT NOT NULL,
    UNIQUE (subscription, scheduled_at)
) STRICT;

-- One run per subscription at a time: at most one run in a working state.
CREATE UNIQUE INDEX runs_one_active ON runs(subscription)
    WHERE state IN ('pending','generated','sealed','uploading');

CREATE TABLE attempts (
    run_id      TEXT NOT NULL REFERENCES runs(id),
    n           INTEGER NOT NULL CHECK (n >= 1),
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    outcome     TEXT CHECK (outcome IN ('ok','retryable','permanent')),
    error_class TEXT,
    message     TEXT,
    PRIMARY KEY (run_id, n)
) STRICT;

CREATE TABLE receipts (
    id                   INTEGER PRIMARY KEY,
    run_id               TEXT NOT NULL UNIQUE REFERENCES runs(id),
    subscription         TEXT NOT NULL,
    customer             TEXT NOT NULL,
    customer_org_number  TEXT,
    case_number          TEXT,
    invoice_reference    TEXT,
    report               TEXT NOT NULL,
    remote_host          TEXT NOT NULL,
    remote_port          INTEGER NOT NULL,
    host_key_fingerprint TEXT NOT NULL,
    remote_path          TEXT NOT NULL,
    bytes                INTEGER NOT NULL,
    rows                 INTEGER NOT NULL,
    plaintext_sha256     TEXT NOT NULL,
    ciphertext_sha256    TEXT NOT NULL,
    personal_fields      TEXT NOT NULL CHECK (json_valid(personal_fields) AND json_type(personal_fields) = 'array'),
    legal_basis          TEXT,
    recipients           TEXT NOT NULL CHECK (json_valid(recipients) AND json_type(recipients) = 'array'),
    attempts             INTEGER NOT NULL,
    started_at           TEXT NOT NULL,
    delivered_at         TEXT NOT NULL,
    prev_hash            TEXT NOT NULL CHECK (length(prev_hash) = 64),
    hash                 TEXT NOT NULL CHECK (length(hash) = 64)
) STRICT;
"#,
    },
    Migration {
        version: 2,
        description: "retention anchor, append-only receipts, indexes",
        sql: r#"
-- Hash of the last receipt removed by retention; the first kept receipt chains to it.
CREATE TABLE chain_anchor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    hash        TEXT NOT NULL CHECK (length(hash) = 64),
    receipt_id  INTEGER NOT NULL,
    purged_at   TEXT NOT NULL
) STRICT;

-- Receipts are never edited (retention deletes whole rows). Someone with the sqlite3
-- shell can drop this; `receipts verify` still catches the edit.
CREATE TRIGGER receipts_append_only BEFORE UPDATE ON receipts
BEGIN
    SELECT RAISE(ABORT, 'receipts are append-only');
END;

CREATE INDEX receipts_delivered_at ON receipts(delivered_at);
CREATE INDEX receipts_subscription ON receipts(subscription, delivered_at);
CREATE INDEX runs_state ON runs(state);
"#,
    },
    Migration {
        version: 3,
        description: "further files per run and per receipt (code tables)",
        sql: r#"
-- Files sealed for a run beside its artifact (code tables), in upload order.
CREATE TABLE run_files (
    run_id            TEXT NOT NULL,
    seq               INTEGER NOT NULL CHECK (seq >= 1),
    code_table        TEXT NOT NULL,
    path              TEXT NOT NULL,
    file_name         TEXT NOT NULL,
    rows              INTEGER NOT NULL,
    plaintext_sha256  TEXT NOT NULL,
    ciphertext_sha256 TEXT NOT NULL,
    plaintext_bytes   INTEGER NOT NULL,
    ciphertext_bytes  INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;

-- The further files a receipt records (JSON array; NULL for one-file deliveries, which
-- keeps every receipt written before this version byte-for-byte as it was).
ALTER TABLE receipts ADD COLUMN files TEXT
    CHECK (files IS NULL OR (json_valid(files) AND json_type(files) = 'array'));
"#,
    },
    Migration {
        version: 4,
        description: "how each delivery went out (transport, server, commit path)",
        sql: r#"
-- How the files reached the customer (JSON object: kind, server, commit, fsync, verify;
-- NULL for receipts written before this version, which keep their hash).
ALTER TABLE receipts ADD COLUMN transport TEXT
    CHECK (transport IS NULL OR (json_valid(transport) AND json_type(transport) = 'object'));
"#,
    },
    Migration {
        version: 5,
        description: "operators' resolutions of runs (regdrop resolve)",
        sql: r#"
-- An operator's decision closing a run in needs_attention or failed: who, when, why. One
-- per run, never edited; a resolved run no longer needs attention and is not run again.
-- Retention removes it with its run.
CREATE TABLE run_resolutions (
    run_id       TEXT PRIMARY KEY,
    state        TEXT NOT NULL CHECK (state IN ('needs_attention','failed')),
    resolved_at  TEXT NOT NULL,
    os_user      TEXT NOT NULL CHECK (length(os_user) > 0),
    resolved_by  TEXT,
    reason       TEXT NOT NULL CHECK (length(trim(reason)) > 0)
) STRICT;

CREATE TRIGGER run_resolutions_append_only BEFORE UPDATE ON run_resolutions
BEGIN
    SELECT RAISE(ABORT, 'resolutions are never edited');
END;
"#,
    },
    Migration {
        version: 6,
        description: "e-mail deliveries: the passphrase SMS and the mail of a run's artifact",
        sql: r#"
-- One row per e-mail run while it is being sent: which artifact the passphrase SMS went
-- out for (masked number), and the Message-ID recorded just before SMTP DATA. `sending`
-- found after a crash means the mail may be out: never resent without an operator.
CREATE TABLE email_sends (
    run_id          TEXT PRIMARY KEY REFERENCES runs(id),
    artifact_sha256 TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('sms_sent','sending','sent')),
    sms_to          TEXT,
    sms_sent_at     TEXT,
    message_id      TEXT,
    reply           TEXT,
    updated_at      TEXT NOT NULL
) STRICT;
"#,
    },
    Migration {
        version: 7,
        description: "notifications sent per run, event and recipient",
        sql: r#"
-- What was said to whom about a run: one row per (run, event, channel, recipient), so an
-- alert or notice is never sent twice, also across restarts. `recipient` is an operator
-- address, a webhook's name, or `contact` (the subscription's contact e-mail, which is not
-- copied here). `body` is the rendered message (metadata only), so a resend after a
-- restart sends what was decided.
CREATE TABLE notifications (
    run_id       TEXT NOT NULL,
    subscription TEXT NOT NULL,
    event        TEXT NOT NULL CHECK (event IN ('needs_attention','failed','recovered','delivered')),
    channel      TEXT NOT NULL CHECK (channel IN ('email','webhook')),
    recipient    TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending','sent','failed')),
    tries        INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    last_error   TEXT,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (run_id, event, channel, recipient)
) STRICT;

CREATE INDEX notifications_subscription ON notifications(subscription, created_at);
CREATE INDEX notifications_state ON notifications(state);
"#,
    },
    Migration {
        version: 8,
        description: "leases: several nodes on one store (who works on a run, until when)",
        sql: r#"
-- The node working on a run and until when its claim holds without a heartbeat (NULL:
-- nobody; an expired claim may be taken by another node), its last heartbeat, the node
-- whose spool holds the sealed artifact, and the node that committed the receipt.
ALTER TABLE runs ADD COLUMN lease_node TEXT;
ALTER TABLE runs ADD COLUMN lease_until TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;
ALTER TABLE runs ADD COLUMN sealed_by TEXT;
ALTER TABLE runs ADD COLUMN delivered_by TEXT;
CREATE INDEX runs_lease ON runs(state, lease_until);

-- Per-host limits across nodes: one row per run holding a slot of a host (`host:port`),
-- until a heartbeat renews it; a dead node's slots expire with its leases.
CREATE TABLE host_slots (
    host    TEXT NOT NULL,
    run_id  TEXT NOT NULL,
    node    TEXT NOT NULL,
    until   TEXT NOT NULL,
    PRIMARY KEY (host, run_id)
) STRICT;
"#,
    },
    Migration {
        version: 9,
        description: "node registry: one live daemon per [daemon] node name",
        sql: r#"
-- One row per node name: the daemon instance holding it (random per start), where it runs
-- (host name, machine-id, boot id, pid namespace, pid and the process's start in clock
-- ticks, so a restart on the same machine can tell a dead holder from a live one), when
-- it started, its last heartbeat (every half lease), and when it stopped cleanly.
CREATE TABLE nodes (
    name          TEXT PRIMARY KEY,
    instance      TEXT NOT NULL,
    host          TEXT NOT NULL,
    machine       TEXT NOT NULL,
    boot          TEXT NOT NULL,
    pid_ns        TEXT NOT NULL,
    pid           INTEGER NOT NULL CHECK (pid >= 0),
    proc_start    INTEGER NOT NULL CHECK (proc_start >= 0),
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL,
    stopped_at    TEXT
) STRICT;
"#,
    },
];

/// The schema version this build writes.
pub const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Reads `PRAGMA user_version`.
pub fn current_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Applies every step above the file's version, each in its own transaction.
/// Returns the versions applied.
pub fn migrate(conn: &Connection) -> Result<Vec<i64>> {
    migrate_to(conn, LATEST_VERSION)
}

/// Applies steps up to and including `target` (tests use this to make old files).
pub fn migrate_to(conn: &Connection, target: i64) -> Result<Vec<i64>> {
    let found = current_version(conn)?;
    if found > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: LATEST_VERSION,
        });
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        // Re-check inside the write lock: another process may have migrated meanwhile.
        if current_version(&tx)? >= m.version {
            continue;
        }
        tx.execute_batch(m.sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", m.version))?;
        tx.commit()?;
        tracing::info!(
            version = m.version,
            step = m.description,
            "State store migrated."
        );
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
    }

    #[test]
    fn migrates_step_by_step_and_refuses_newer_files() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate_to(&conn, 1).unwrap(), vec![1]);
        assert_eq!(current_version(&conn).unwrap(), 1);
        assert_eq!(
            migrate(&conn).unwrap(),
            (2..=LATEST_VERSION).collect::<Vec<_>>()
        );
        assert!(migrate(&conn).unwrap().is_empty());
        conn.execute_batch(&format!("PRAGMA user_version = {}", LATEST_VERSION + 1))
            .unwrap();
        assert!(matches!(
            migrate(&conn),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }
}
