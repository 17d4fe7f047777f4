//! Shared fixtures of the integration tests: a real OpenSSH sshd on loopback ([`sshd`]),
//! the TCP fault proxy ([`fault_proxy`], also `examples/fault_proxy.rs`), the real binaries
//! ([`cli`]), daemon config folders ([`daemon_env`]), files ([`files`]), config mutation
//! ([`mutate`]), a small tmpfs ([`small_disk`]) and the root check ([`root`]). For the
//! interop suite, more real SFTP servers behind one trait ([`servers`]): ProFTPD mod_sftp
//! ([`proftpd`]), `rclone serve sftp` ([`rclone`]) and an asyncssh SFTPServer
//! ([`asyncssh`]). For the e-mail channel: a real SMTP server (aiosmtpd, [`smtp`]) and an
//! HTTP server that records requests (the SMS gateway, [`http_sink`]), both Python scripts
//! started through [`py_server`]. For the PostgreSQL state store and register: a throwaway
//! cluster per test process ([`postgres`]).

/// The [`servers::SftpServer`] accessors that read a fixture's own fields of the same
/// names (`port`, `host_pub`, `host_pub_path`, `user_key`, `username`,
/// `password_file`): one copy for the ProFTPD, rclone and asyncssh fixtures.
macro_rules! fixture_accessors {
    () => {
        fn port(&self) -> u16 {
            self.port
        }
        fn host_pub(&self) -> &str {
            &self.host_pub
        }
        fn host_pub_path(&self) -> &Path {
            &self.host_pub_path
        }
        fn user_key(&self) -> &Path {
            &self.user_key
        }
        fn username(&self) -> &str {
            &self.username
        }
        fn password_username(&self) -> &str {
            &self.username
        }
        fn target(&self, remote: &str) -> Target {
            super::servers::key_target(self, remote)
        }
        fn password_target(&self, remote: &str) -> Target {
            super::servers::password_target(self, remote, &self.password_file)
        }
    };
}

pub mod asyncssh;
pub mod cli;
pub mod daemon_env;
pub mod fault_proxy;
pub mod files;
pub mod http_sink;
pub mod launch;
pub mod mutate;
pub mod postgres;
pub mod proftpd;
pub mod py_server;
pub mod rclone;
pub mod root;
pub mod servers;
pub mod small_disk;
pub mod smtp;
pub mod sshd;

/// A free loopback port to bind *later* (a server that is "down" first, a metrics
/// endpoint). It is taken below the kernel's ephemeral range, so no outgoing connection of
/// a parallel test can occupy it in the meantime (a port from `bind(0)` could be reused as
/// the local port of any connection before the test binds it again).
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (from, span) = (
        low.saturating_sub(12_000).max(1024),
        12_000.min(low.saturating_sub(1024)).max(1),
    );
    // Spread over the span by process and time, then take the first port that binds.
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    for i in 0..span as u64 {
        let port = from
            + ((seed.wrapping_mul(2_654_435_761).wrapping_add(i * 7_919)) % span as u64) as u32;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free loopback port below the ephemeral range");
}

/// `GET path` from a loopback HTTP server on `port` (the daemon's metrics endpoint): the
/// whole response, headers included; `None` while nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
