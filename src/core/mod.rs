//! The pure core: what a subscription means, decided without any file, database or
//! network I/O. Everything here is plain data and functions with unit tests beside them;
//! no module here imports an adapter, the pipeline, the daemon or a command
//! (`scripts/check_layers.sh` keeps it so).
//!
//! - [`catalog`]: the register's fields and the reports built from them.
//! - [`codes`]: the code tables a subscription can receive as files of their own.
//! - [`ids`]: identifier rules (organisation numbers, fødselsnumre, plates, VINs).
//! - [`config`]: the configuration files' serde mirror, validation and file-name templates.
//! - [`schedule`]: a 5-field cron line in an IANA time zone -> fire times.
//! - [`period`]: a report period evaluated against a run's fire time.
//! - [`plan`]: one run resolved once (period, file names, code tables, sealing, upload).
//! - [`scan`]: which runs share one register scan (same query) and one formatted stream.
//! - [`fresh`]: whether a sealed spool file is read and hashed again before its upload.
//! - [`retry`]: error classes and the retry policy.
//! - [`errors`]: how an error and its causes read, each once.
//! - [`notice`]: which run ends produce which notification, and what the messages say.
//! - [`identity`]: `RunId` and `SubscriptionId`, text that does not mix.
//! - [`nodes`]: one `[daemon] node` name, one live daemon: take over, refuse, or ours.
//! - [`text`]: text-file conventions (the `¤` separator, encodings, line endings).
pub mod catalog;
pub mod codes;
pub mod config;
pub mod errors;
pub mod fresh;
pub mod identity;
pub mod ids;
pub mod nodes;
pub mod notice;
pub mod period;
pub mod plan;
pub mod retry;
pub mod scan;
pub mod schedule;
pub mod text;
