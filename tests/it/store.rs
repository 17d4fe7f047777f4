//! The state store, one suite on both engines (`NAME::sqlite`, `NAME::postgres`; see
//! [`backend`]), plus what only one engine has: SQLite's file (WAL, mode 0600) and old
//! files, PostgreSQL's several nodes on one database, lost connections, logins and TLS.

mod backend;
mod chain;
mod check;
mod daemon;
mod delivery;
mod leases;
mod migrations;
mod nodes;
mod postgres;
mod runs;
