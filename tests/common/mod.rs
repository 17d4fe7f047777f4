//! Shared test helpers: a real OpenSSH sshd on loopback ([`sshd`]), a fault-injecting TCP
//! proxy ([`proxy`]), and running the real binaries ([`cli`]).
#![allow(dead_code)]

pub mod cli;
pub mod proxy;
pub mod sshd;
