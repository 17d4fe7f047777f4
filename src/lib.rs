//! regdrop: standing, encrypted register extracts delivered over SFTP.
//!
//! # Layout (arrows point one way; `scripts/check_layers.sh` checks them)
//! 1. [`core`]: pure rules (catalog, code tables, ids, configuration validation, schedule,
//!    period, retry policy, text conventions). No I/O; imports nothing else of ours.
//! 2. Adapters, each one concern at the edge: [`loader`] (configuration files on disk),
//!    [`register`] (the SQLite register), [`extract`] (queries + row writers), [`seal`]
//!    (age + SHA-256 into the spool), [`sftp`] (the client), [`store`] (runs, attempts,
//!    hash-chained receipts), [`demo_server`] (the embedded loopback SFTP target), [`mail`]
//!    (one message over SMTP), [`http_post`] (one HTTP POST: SMS gateway, webhooks).
//!    Support modules any layer above the core may use: [`progress`], [`telemetry`],
//!    [`secret`] (0600 files and systemd credentials), [`pgconn`] (PostgreSQL connections
//!    shared by the store and the register).
//! 3. [`pipeline`]: one run, from the artifact to its receipt.
//! 4. [`daemon`]: the supervisor, signals, sd_notify, housekeeping.
//! 5. [`cmd`]: the commands (one file per family) and the command line.
//! 6. `main.rs`: parse, log, run, exit code.

pub mod cmd;
pub mod core;
pub mod daemon;
pub mod demo_server;
pub mod extract;
pub mod http_post;
pub mod loader;
pub mod mail;
pub mod pgconn;
pub mod pipeline;
pub mod progress;
pub mod register;
pub mod seal;
pub mod secret;
pub mod sftp;
pub mod store;
pub mod telemetry;
