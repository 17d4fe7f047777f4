//! The few tests that need root (a local user with a password for sshd, `chown` to another
//! user, mounting a small tmpfs, ProFTPD's chroot) ask [`require`] first. As root (CI) they
//! run; as any other user they print why they were skipped and pass, so `cargo test` works
//! for a developer. The README's test section lists them.

use std::io::Write;

/// Whether this process runs as root (effective uid 0).
#[allow(unsafe_code)] // each unsafe block below carries its SAFETY note
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `true` as root. Otherwise prints `skipped: TEST needs root because WHY` (straight to
/// stderr, past the test harness's capture, so the line shows in a normal `cargo test`)
/// and returns `false`: the caller returns at once, or skips only that part of the test.
#[must_use]
pub fn require(why: &str) -> bool {
    if is_root() {
        return true;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipped: {test} needs root because {why}"
    );
    false
}
