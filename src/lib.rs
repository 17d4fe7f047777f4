//! regdrop: standing, encrypted register extracts delivered over SFTP.
//!
//! # Layout
//! Pure core: [`catalog`] (fields), [`retry`] (error classes, backoff).
//! Adapters: [`register`] (SQLite source).

pub mod catalog;
pub mod config;
pub mod extract;
pub mod format;
pub mod period;
pub mod register;
pub mod retry;
pub mod schedule;
pub mod seal;
