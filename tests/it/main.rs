//! regdrop's integration tests: one binary, one module per area, shared fixtures in
//! [`util`]. Run one area with `cargo test --test it sftp::`, one server of the interop
//! matrix with `cargo test --test it interop::proftpd::`, everything with `cargo test`
//! (or `scripts/test` on a fresh machine, which installs the servers first).
//!
//! The tests drive real programs: OpenSSH `sshd` and `sftp`, ProFTPD, rclone, asyncssh,
//! the `age` CLI, `sqlite3`, `systemd-analyze` and the built `regdrop` binary. They run as
//! any user; the few that need root say why and are skipped otherwise ([`util::root`]).

mod util;

mod billing;
mod cli_pipes;
mod code_tables;
mod config;
mod daemon;
mod delivery;
mod demo;
mod email;
mod extract;
mod failure_paths;
mod fanout;
mod fault_proxy;
mod fuzz_inputs;
mod install;
mod interop;
mod logs;
mod new_subscription;
mod notifications;
mod operations;
mod properties;
mod reference_docs;
mod register;
mod sftp;
mod store;
mod streaming;
mod systemd;
mod terminal;
