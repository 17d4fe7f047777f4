//! regdrop: standing, encrypted register extracts delivered over SFTP.
//!
//! # Layout
//! Pure core: [`catalog`] (fields, reports), [`codes`] (deliverable code tables), [`config`] (raw -> validated), [`schedule`]
//! (cron + time zone), [`period`], [`retry`] (error classes, backoff), [`format`].
//! Adapters: [`register`] (SQLite source), [`extract`] (queries + writers), [`seal`] (age +
//! SHA-256), [`sftp`] (client), [`store`] (runs, attempts, hash-chained receipts),
//! [`demo_server`] (embedded loopback SFTP target for demos and fault injection).
//! Wiring: [`job`] (generate + seal), [`delivery`] (one run to its receipt), [`app`] (commands), [`cli`], [`progress`].
//! Service: [`daemon`] (supervisor, signals, sd_notify, housekeeping), [`telemetry`] (metrics).

pub mod app;
pub mod catalog;
pub mod cli;
pub mod codes;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod demo;
pub mod demo_server;
pub mod extract;
pub mod format;
pub mod job;
pub mod new_subscription;
pub mod period;
pub mod progress;
pub mod register;
pub mod retry;
pub mod schedule;
pub mod seal;
pub mod sftp;
pub mod store;
pub mod telemetry;
