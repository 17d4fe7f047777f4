//! What a customer's SFTP server really does ([`ServerProfile`], learned at connect time and
//! in `probe`), and the upload [`Strategy`] chosen from it and the target's overrides:
//! channels, write size, requests in flight, and the commit path. Pure: no I/O here, so
//! every server's choice is unit-tested. Everything a server sends is untrusted and
//! passes through [`clean`] before it reaches a log, a terminal or a receipt.
//!
//! `server` is what the server is; `choice` what is done with it (it
//! imports the first, never the other way).

mod choice;
mod server;

pub use choice::{
    commit_path, is_race_free, strategy, CommitChoice, CommitPath, Overrides, Strategy, Want,
    MAX_IN_FLIGHT, MAX_IO, MAX_PACKET, MULTI_CHANNEL_FROM, SAFE_IO,
};
pub use server::{
    clean, clean_bytes, Family, Limits, ServerProfile, FSYNC, HARDLINK, LIMITS, POSIX_RENAME,
};
