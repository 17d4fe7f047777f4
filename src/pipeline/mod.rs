//! One run, wired from the adapters: the artifact (extract -> seal into the spool) and its
//! delivery (record, upload, verify, receipt, retries). Used by the daemon and by the
//! commands that run one delivery by hand; imports the core and the adapters, never the
//! daemon or a command.
//!
//! - [`artifact`]: resolve the run's period and names, run the extract, seal it.
//! - [`delivery`]: one run from its record in the store to its receipt.
//! - [`preflight`]: `regdrop check`'s look at what the next run will need (secrets, the
//!   register, the spool and state folders) for the user the service runs as.
//! - [`shared_scan`]: the artifacts of several runs with the same query from one scan.
pub mod artifact;
pub mod delivery;
pub mod preflight;
pub mod shared_scan;
