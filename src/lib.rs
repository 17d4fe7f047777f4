//! regdrop: standing, encrypted register extracts delivered over SFTP.
//!
//! # Layout
//! Pure core: [`catalog`] (fields), [`retry`] (error classes, backoff).
//! Adapters: [`register`] (SQLite source), [`store`] (runs, attempts, hash-chained
//! receipts), [`demo_server`] (embedded loopback SFTP target for demos and fault
//! injection).

pub mod catalog;
pub mod demo_server;
pub mod format;
pub mod register;
pub mod retry;
pub mod store;
