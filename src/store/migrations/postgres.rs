//! The schema steps on PostgreSQL: the same versions as SQLite's [`super::MIGRATIONS`],
//! written in PostgreSQL's DDL, tracked in the one-row table `schema_version`.
//!
//! Differences from the SQLite steps, all deliberate: `BIGINT` for SQLite's 64-bit
//! `INTEGER`; text columns `COLLATE "C"` (byte order, as SQLite compares, whatever the
//! database's locale: timestamps and ids sort the same on both); JSON checks with
//! `jsonb_typeof`; the append-only triggers call one function; no `STRICT` (PostgreSQL
//! columns are typed anyway). `notifications` has a `seq` identity column where SQLite
//! orders by its implicit `rowid`.
//!
//! Each step runs in its own transaction with the version bump, under
//! `pg_advisory_xact_lock(MIGRATE_LOCK)`, re-reading the version inside the lock: two
//! nodes starting at once migrate once.

use super::super::db::{pg::MIGRATE_LOCK, Db, OptionalExtension};
use super::super::error::{Result, StoreError};
use super::{Migration, LATEST_VERSION};

/// All steps, oldest first; `version` matches SQLite's step of the same number.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "runs, attempts, receipts",
        sql: r#"
CREATE TABLE runs (
    id                TEXT COLLATE "C" PRIMARY KEY,
    subscription      TEXT COLLATE "C" NOT NULL,
    scheduled_at      TEXT COLLATE "C" NOT NULL,
    created_at        TEXT COLLATE "C" NOT NULL,
    state             TEXT COLLATE "C" NOT NULL CHECK (state IN
                        ('pending','generated','sealed','uploading','delivered','needs_attention','failed')),
    state_reason      TEXT COLLATE "C",
    artifact_path     TEXT COLLATE "C",
    file_name         TEXT COLLATE "C",
    plaintext_sha256  TEXT COLLATE "C",
    ciphertext_sha256 TEXT COLLATE "C",
    rows              BIGINT,
    plaintext_bytes   BIGINT,
    ciphertext_bytes  BIGINT,
    period_from       TEXT COLLATE "C",
    period_to         TEXT COLLATE "C",
    format            TEXT COLLATE "C",
    fallback_note     TEXT COLLATE "C",
    updated_at        TEXT COLLATE "C" NOT NULL,
    UNIQUE (subscription, scheduled_at)
);

-- One run per subscription at a time: at most one run in a working state.
CREATE UNIQUE INDEX runs_one_active ON runs(subscription)
    WHERE state IN ('pending','generated','sealed','uploading');

CREATE TABLE attempts (
    run_id      TEXT COLLATE "C" NOT NULL REFERENCES runs(id),
    n           BIGINT NOT NULL CHECK (n >= 1),
    started_at  TEXT COLLATE "C" NOT NULL,
    ended_at    TEXT COLLATE "C",
    outcome     TEXT COLLATE "C" CHECK (outcome IN ('ok','retryable','permanent')),
    error_class TEXT COLLATE "C",
    message     TEXT COLLATE "C",
    PRIMARY KEY (run_id, n)
);

CREATE TABLE receipts (
    id                   BIGINT PRIMARY KEY,
    run_id               TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES runs(id),
    subscription         TEXT COLLATE "C" NOT NULL,
    customer             TEXT COLLATE "C" NOT NULL,
    customer_org_number  TEXT COLLATE "C",
    case_number          TEXT COLLATE "C",
    invoice_reference    TEXT COLLATE "C",
    report               TEXT COLLATE "C" NOT NULL,
    remote_host          TEXT COLLATE "C" NOT NULL,
    remote_port          BIGINT NOT NULL,
    host_key_fingerprint TEXT COLLATE "C" NOT NULL,
    remote_path          TEXT COLLATE "C" NOT NULL,
    bytes                BIGINT NOT NULL,
    rows                 BIGINT NOT NULL,
    plaintext_sha256     TEXT COLLATE "C" NOT NULL,
    ciphertext_sha256    TEXT COLLATE "C" NOT NULL,
    personal_fields      TEXT COLLATE "C" NOT NULL CHECK (jsonb_typeof(personal_fields::jsonb) = 'array'),
    legal_basis          TEXT COLLATE "C",
    recipients           TEXT COLLATE "C" NOT NULL CHECK (jsonb_typeof(recipients::jsonb) = 'array'),
    attempts             BIGINT NOT NULL,
    started_at           TEXT COLLATE "C" NOT NULL,
    delivered_at         TEXT COLLATE "C" NOT NULL,
    prev_hash            TEXT COLLATE "C" NOT NULL CHECK (length(prev_hash) = 64),
    hash                 TEXT COLLATE "C" NOT NULL CHECK (length(hash) = 64)
);
"#,
    },
    Migration {
        version: 2,
        description: "retention anchor, append-only receipts, indexes",
        sql: r#"
-- Hash of the last receipt removed by retention; the first kept receipt chains to it.
CREATE TABLE chain_anchor (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    hash        TEXT COLLATE "C" NOT NULL CHECK (length(hash) = 64),
    receipt_id  BIGINT NOT NULL,
    purged_at   TEXT COLLATE "C" NOT NULL
);

-- Refuses an UPDATE with the message given as the trigger's argument.
CREATE FUNCTION regdrop_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
END
$$;

-- Receipts are never edited (retention deletes whole rows). Someone with psql and the
-- owner's rights can drop this; `receipts verify` still catches the edit.
CREATE TRIGGER receipts_append_only BEFORE UPDATE ON receipts
    FOR EACH ROW EXECUTE FUNCTION regdrop_refuse_update('receipts are append-only');

CREATE INDEX receipts_delivered_at ON receipts(delivered_at);
CREATE INDEX receipts_subscription ON receipts(subscription, delivered_at);
CREATE INDEX runs_state ON runs(state);
"#,
    },
    Migration {
        version: 3,
        description: "further files per run and per receipt (code tables)",
        sql: r#"
CREATE TABLE run_files (
    run_id            TEXT COLLATE "C" NOT NULL,
    seq               BIGINT NOT NULL CHECK (seq >= 1),
    code_table        TEXT COLLATE "C" NOT NULL,
    path              TEXT COLLATE "C" NOT NULL,
    file_name         TEXT COLLATE "C" NOT NULL,
    rows              BIGINT NOT NULL,
    plaintext_sha256  TEXT COLLATE "C" NOT NULL,
    ciphertext_sha256 TEXT COLLATE "C" NOT NULL,
    plaintext_bytes   BIGINT NOT NULL,
    ciphertext_bytes  BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

ALTER TABLE receipts ADD COLUMN files TEXT COLLATE "C"
    CHECK (files IS NULL OR jsonb_typeof(files::jsonb) = 'array');
"#,
    },
    Migration {
        version: 4,
        description: "how each delivery went out (transport, server, commit path)",
        sql: r#"
ALTER TABLE receipts ADD COLUMN transport TEXT COLLATE "C"
    CHECK (transport IS NULL OR jsonb_typeof(transport::jsonb) = 'object');
"#,
    },
    Migration {
        version: 5,
        description: "operators' resolutions of runs (regdrop resolve)",
        sql: r#"
CREATE TABLE run_resolutions (
    run_id       TEXT COLLATE "C" PRIMARY KEY,
    state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('needs_attention','failed')),
    resolved_at  TEXT COLLATE "C" NOT NULL,
    os_user      TEXT COLLATE "C" NOT NULL CHECK (length(os_user) > 0),
    resolved_by  TEXT COLLATE "C",
    reason       TEXT COLLATE "C" NOT NULL CHECK (length(trim(reason)) > 0)
);

CREATE TRIGGER run_resolutions_append_only BEFORE UPDATE ON run_resolutions
    FOR EACH ROW EXECUTE FUNCTION regdrop_refuse_update('resolutions are never edited');
"#,
    },
    Migration {
        version: 6,
        description: "e-mail deliveries: the passphrase SMS and the mail of a run's artifact",
        sql: r#"
CREATE TABLE email_sends (
    run_id          TEXT COLLATE "C" PRIMARY KEY REFERENCES runs(id),
    artifact_sha256 TEXT COLLATE "C" NOT NULL,
    state           TEXT COLLATE "C" NOT NULL CHECK (state IN ('sms_sent','sending','sent')),
    sms_to          TEXT COLLATE "C",
    sms_sent_at     TEXT COLLATE "C",
    message_id      TEXT COLLATE "C",
    reply           TEXT COLLATE "C",
    updated_at      TEXT COLLATE "C" NOT NULL
);
"#,
    },
    Migration {
        version: 7,
        description: "notifications sent per run, event and recipient",
        sql: r#"
CREATE TABLE notifications (
    run_id       TEXT COLLATE "C" NOT NULL,
    subscription TEXT COLLATE "C" NOT NULL,
    event        TEXT COLLATE "C" NOT NULL CHECK (event IN ('needs_attention','failed','recovered','delivered')),
    channel      TEXT COLLATE "C" NOT NULL CHECK (channel IN ('email','webhook')),
    recipient    TEXT COLLATE "C" NOT NULL,
    state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending','sent','failed')),
    tries        BIGINT NOT NULL DEFAULT 0 CHECK (tries >= 0),
    last_error   TEXT COLLATE "C",
    subject      TEXT COLLATE "C" NOT NULL,
    body         TEXT COLLATE "C" NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    -- Insertion order (SQLite's rowid) for notifications of the same second.
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (run_id, event, channel, recipient)
);

CREATE INDEX notifications_subscription ON notifications(subscription, created_at);
CREATE INDEX notifications_state ON notifications(state);
"#,
    },
    Migration {
        version: 8,
        description: "leases: several nodes on one store (who works on a run, until when)",
        sql: r#"
ALTER TABLE runs ADD COLUMN lease_node TEXT COLLATE "C";
ALTER TABLE runs ADD COLUMN lease_until TEXT COLLATE "C";
ALTER TABLE runs ADD COLUMN heartbeat_at TEXT COLLATE "C";
ALTER TABLE runs ADD COLUMN sealed_by TEXT COLLATE "C";
ALTER TABLE runs ADD COLUMN delivered_by TEXT COLLATE "C";
CREATE INDEX runs_lease ON runs(state, lease_until);

CREATE TABLE host_slots (
    host    TEXT COLLATE "C" NOT NULL,
    run_id  TEXT COLLATE "C" NOT NULL,
    node    TEXT COLLATE "C" NOT NULL,
    until   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (host, run_id)
);
"#,
    },
    Migration {
        version: 9,
        description: "node registry: one live daemon per [daemon] node name",
        sql: r#"
CREATE TABLE nodes (
    name          TEXT COLLATE "C" PRIMARY KEY,
    instance      TEXT COLLATE "C" NOT NULL,
    host          TEXT COLLATE "C" NOT NULL,
    machine       TEXT COLLATE "C" NOT NULL,
    boot          TEXT COLLATE "C" NOT NULL,
    pid_ns        TEXT COLLATE "C" NOT NULL,
    pid           BIGINT NOT NULL CHECK (pid >= 0),
    proc_start    BIGINT NOT NULL CHECK (proc_start >= 0),
    started_at    TEXT COLLATE "C" NOT NULL,
    heartbeat_at  TEXT COLLATE "C" NOT NULL,
    stopped_at    TEXT COLLATE "C"
);
"#,
    },
];

/// Columns PostgreSQL has and SQLite does not (SQLite's implicit `rowid` instead).
pub const ONLY_ON_POSTGRES: &[(&str, &str)] = &[("notifications", "seq")];

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (\
    id BIGINT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)";

fn read_version(db: &Db) -> Result<i64> {
    Ok(db
        .query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

/// The database's schema version (0 for an empty database).
pub fn current_version(db: &Db) -> Result<i64> {
    let exists: bool = db.query_row(
        "SELECT to_regclass('schema_version') IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    if exists {
        read_version(db)
    } else {
        Ok(0)
    }
}

/// Applies steps up to and including `target`, each in its own transaction under the
/// migration lock; returns the versions applied.
pub fn migrate_to(db: &Db, target: i64) -> Result<Vec<i64>> {
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version <= target) {
        let tx = db.transaction_with(&format!(
            // Another node's step may take long: wait for it, not the usual lock_timeout.
            "BEGIN; SET LOCAL lock_timeout = 0; SELECT pg_advisory_xact_lock({MIGRATE_LOCK}); \
             {VERSION_TABLE}"
        ))?;
        let found = read_version(&tx)?;
        if found > LATEST_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: LATEST_VERSION,
            });
        }
        if found >= m.version {
            tx.commit()?;
            continue;
        }
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            [m.version],
        )?;
        tx.commit()?;
        tracing::info!(
            version = m.version,
            step = m.description,
            "State store migrated (PostgreSQL)."
        );
        applied.push(m.version);
    }
    // A database newer than this build, with every step already applied.
    let found = current_version(db)?;
    if found > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: LATEST_VERSION,
        });
    }
    Ok(applied)
}
