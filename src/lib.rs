//! regdrop: standing, encrypted register extracts delivered over SFTP.
//!
//! # Layout
//! Pure core: [`catalog`] (fields), [`retry`] (error classes, backoff).
//! Adapters: [`register`] (SQLite source).

pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod extract;
pub mod format;
pub mod job;
pub mod period;
pub mod progress;
pub mod register;
pub mod retry;
pub mod schedule;
pub mod seal;
