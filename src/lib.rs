//! regdrop: standing, encrypted register extracts delivered over SFTP.
//!
//! # Layout
//! Pure core: [`catalog`] (fields), [`retry`] (error classes, backoff).
//! Adapters: [`register`] (SQLite source), [`sftp`] (delivery to SFTP servers).

pub mod catalog;
pub mod format;
pub mod register;
pub mod retry;
pub mod sftp;
