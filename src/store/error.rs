//! The store's error type, its retry class, and the broken link of the receipt chain
//! ([`BrokenLink`]) that verification reports and [`StoreError::ChainBroken`] carries.
//! Defined here, the leaf the other store files import (`chain` -> `model` -> `error`), so
//! the arrows between them point one way.

use crate::core::identity::{RunId, SubscriptionId};
use crate::core::retry::{Classify, ErrorClass};
use rusqlite::ErrorCode;
use serde::Serialize;
use std::fmt;

/// What is wrong at the first broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BreakKind {
    /// The row's content no longer matches its hash: a column was edited.
    ContentChanged {
        stored_hash: String,
        computed_hash: String,
    },
    /// The row could not even be read back (e.g. an edited timestamp or JSON column).
    Unreadable { detail: String },
    /// The row is intact but does not chain to the receipt before it: a receipt before it
    /// was deleted, replaced or re-hashed.
    LinkBroken {
        expected_prev: String,
        found_prev: String,
    },
}

/// The first receipt at which verification failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub receipt_id: i64,
    /// The receipt before it in id order (`None` for the first kept receipt).
    pub previous_id: Option<i64>,
    #[serde(flatten)]
    pub kind: BreakKind,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BreakKind::ContentChanged { stored_hash, computed_hash } => write!(
                f,
                "receipt {}: content changed (stored hash {stored_hash}, content hashes to {computed_hash})",
                self.receipt_id
            ),
            BreakKind::Unreadable { detail } => {
                write!(f, "receipt {}: row unreadable ({detail})", self.receipt_id)
            }
            BreakKind::LinkBroken { expected_prev, found_prev } => {
                let before = match self.previous_id {
                    Some(p) => format!("receipt {p}"),
                    None => "the chain anchor".to_string(),
                };
                write!(
                    f,
                    "receipt {}: link to previous broken (prev_hash {found_prev}, but {before} has hash {expected_prev}); a receipt before it was deleted or altered",
                    self.receipt_id
                )
            }
        }
    }
}

/// Everything that can go wrong in the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An SQLite error; its class depends on the SQLite result code.
    #[error("state store")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error; its class depends on the SQLSTATE (or a lost connection).
    #[error("PostgreSQL state store")]
    Postgres(#[from] postgres::Error),
    /// The `state_db` URL cannot be used as it is written.
    #[error("state_db {url}: {why}")]
    PgConfig { url: String, why: String },
    /// The connection to PostgreSQL was lost inside a transaction: nothing of it was
    /// committed, and the next call connects again.
    #[error("the connection to the PostgreSQL state store was lost during a transaction; nothing of it was written")]
    PgLostInTransaction,
    /// The store's PostgreSQL thread is gone (a bug; the message is in the log).
    #[error("the PostgreSQL state store's connection thread has stopped")]
    PgThread,
    /// A query that must return a row returned none (`.optional()` makes it `None`).
    #[error("state store: the query returned no row")]
    NoRow,
    /// Creating the store file or writing an export failed.
    #[error("state store I/O")]
    Io(#[from] std::io::Error),
    /// A JSON column or export could not be (de)serialised.
    #[error("state store JSON")]
    Json(#[from] serde_json::Error),
    /// The file was written by a newer regdrop (its `user_version` is above ours).
    #[error("state store schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("no run with id {0}")]
    NoSuchRun(RunId),
    #[error("no receipt with id {0}")]
    NoSuchReceipt(i64),
    /// Another run of the subscription is still in progress (one run per subscription).
    #[error("subscription {subscription} already has an active run {active}")]
    ActiveRun {
        subscription: SubscriptionId,
        active: RunId,
    },
    /// The requested state change is not allowed (e.g. leaving `delivered`).
    #[error("run {run}: cannot go from {from} to {to}: {why}")]
    InvalidTransition {
        run: RunId,
        from: String,
        to: String,
        why: &'static str,
    },
    /// A receipt or artifact does not match what the run recorded.
    #[error("run {run}: {detail}")]
    Mismatch { run: RunId, detail: String },
    /// A stored value could not be read back (a hand-edited or damaged row).
    #[error("state store row unreadable: {0}")]
    Corrupt(String),
    /// Refused because the receipt chain is broken where the operation would act.
    #[error("receipt chain broken: {0}")]
    ChainBroken(BrokenLink),
    /// `regdrop resolve` of a run that an operator resolved already (the first decision
    /// stands; resolutions are never edited).
    #[error("run {} was resolved already, at {} by {}: {}", .0.run_id, super::model::fmt_ts(.0.resolved_at), .0.os_user, .0.reason)]
    AlreadyResolved(Box<super::model::Resolution>),
    /// Only runs waiting for an operator (`needs_attention`, `failed`) can be resolved.
    #[error("run {run} is {state}: only a run in needs_attention or failed can be resolved{hint}")]
    NotResolvable {
        run: RunId,
        state: String,
        hint: &'static str,
    },
    /// A caller-supplied value is out of range (e.g. a byte count above i64::MAX).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// This node no longer holds the run's lease (it expired, or another node took the run
    /// over): it must stop without committing anything of the run.
    #[error("run {run}: this node ({node}) no longer holds its lease{}", holder.as_ref().map(|h| format!("; node {h} holds it")).unwrap_or_default())]
    LeaseLost {
        run: RunId,
        node: String,
        holder: Option<String>,
    },
    /// Another daemon instance registered this daemon's node name (this one's heartbeat
    /// lapsed, then a start under the same name took it): this daemon must stop without
    /// committing anything more.
    #[error("this daemon's node name {node} is held by another regdrop daemon now (host {host}, pid {pid}); this daemon stops without committing anything more")]
    NodeTaken {
        node: String,
        host: String,
        pid: u32,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Class of an SQLite result code: busy/locked/I/O/full are worth retrying; corruption,
/// constraint violations, permission problems and everything else need an operator.
pub fn sqlite_code_class(code: ErrorCode) -> ErrorClass {
    match code {
        ErrorCode::DatabaseBusy
        | ErrorCode::DatabaseLocked
        | ErrorCode::SystemIoFailure
        | ErrorCode::DiskFull
        | ErrorCode::OutOfMemory => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
}

/// Class of a PostgreSQL error ([`crate::pgconn::class`]).
pub fn pg_class(e: &postgres::Error) -> ErrorClass {
    crate::pgconn::class(e)
}

/// What an operator should do about a failed connection to the PostgreSQL state store
/// (`regdrop check`, the daemon's start), when the error says.
pub fn pg_hint(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::Postgres(e) => crate::pgconn::hint(e, crate::pgconn::Use::StateDb),
        _ => None,
    }
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::Sqlite(e) => match e.sqlite_error_code() {
                Some(code) => sqlite_code_class(code),
                None => ErrorClass::Permanent,
            },
            StoreError::Postgres(e) => pg_class(e),
            StoreError::PgLostInTransaction | StoreError::PgThread => ErrorClass::Retryable,
            StoreError::PgConfig { .. } | StoreError::NoRow => ErrorClass::Permanent,
            StoreError::Io(_) => ErrorClass::Retryable,
            StoreError::ActiveRun { .. }
            | StoreError::LeaseLost { .. }
            | StoreError::NodeTaken { .. } => ErrorClass::Retryable,
            StoreError::Json(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::NoSuchRun(_)
            | StoreError::NoSuchReceipt(_)
            | StoreError::InvalidTransition { .. }
            | StoreError::Mismatch { .. }
            | StoreError::Corrupt(_)
            | StoreError::ChainBroken(_)
            | StoreError::AlreadyResolved(_)
            | StoreError::NotResolvable { .. }
            | StoreError::Invalid(_) => ErrorClass::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn busy_and_io_retry_corrupt_and_constraint_do_not() {
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_BUSY).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_LOCKED).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_IOERR).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_FULL).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_CORRUPT).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_NOTADB).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_CONSTRAINT).class(),
            ErrorClass::Permanent
        );
        assert!(StoreError::Io(std::io::Error::other("x")).is_retryable());
        assert!(!StoreError::NoSuchRun("r".into()).is_retryable());
    }
}
