//! Starting a test server on a free loopback port: the start-wait-retry loop every fixture
//! ([`super::sshd`], [`super::proftpd`], [`super::rclone`], [`super::asyncssh`]) shares.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How one server starts and shows it is up.
pub struct Launch<'a> {
    /// The server, for messages (`"sshd"`).
    pub name: &'a str,
    /// What it does once up, for the timeout message (`"accept connections"`).
    pub ready_means: &'a str,
    /// How long it may take.
    pub within: Duration,
    /// What it logged so far.
    pub log: &'a dyn Fn() -> String,
    /// Whether an exit with this status and log means the port was taken (then another
    /// port is tried); it may panic itself with a better message.
    pub port_taken: &'a dyn Fn(ExitStatus, &str) -> bool,
}

impl Launch<'_> {
    /// Up to five free ports: `spawn(port)` starts the server, `ready(child, port)` is
    /// polled every 20 ms until it says the server is up. Returns the child and its port;
    /// panics with the log when the server exits (other than for a taken port) or is not up
    /// in time (then it is killed).
    pub fn start(
        &self,
        mut spawn: impl FnMut(u16) -> Child,
        mut ready: impl FnMut(&mut Child, u16) -> bool,
    ) -> (Child, u16) {
        for attempt in 0..5 {
            let port = super::free_port();
            let mut child = spawn(port);
            let deadline = Instant::now() + self.within;
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let text = (self.log)();
                    if attempt < 4 && (self.port_taken)(status, &text) {
                        break; // port race: try another
                    }
                    panic!("{} exited with {status}:\n{text}", self.name);
                }
                if ready(&mut child, port) {
                    return (child, port);
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "{} did not {} within {} s:\n{}",
                        self.name,
                        self.ready_means,
                        self.within.as_secs(),
                        (self.log)()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        unreachable!()
    }
}
