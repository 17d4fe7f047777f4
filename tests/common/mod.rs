//! Shared test helpers: a real OpenSSH sshd on loopback ([`sshd`]) and a cutting TCP proxy
//! ([`proxy`]).
#![allow(dead_code)]

pub mod proxy;
pub mod sshd;
