//! The e-mail channel (issue 13): the SMTP adapter against a real aiosmtpd server
//! ([`smtp_adapter`]) and the HTTP POST adapter against a real HTTP server
//! ([`http_adapter`]), both on loopback; and whole e-mail deliveries through the binary
//! ([`delivery`]).

mod config;
mod delivery;
mod http_adapter;
mod smtp_adapter;

use std::path::Path;

/// Decrypts a passphrase-sealed `src` into `dst` with the reference `age` CLI (typing the
/// passphrase on a pseudo-terminal, `tests/data/age_decrypt_pty.py`); returns the plaintext.
pub fn age_decrypt(passphrase: &str, src: &Path, dst: &Path) -> Vec<u8> {
    let out = std::process::Command::new("python3")
        .arg(crate::util::py_server::script("age_decrypt_pty.py"))
        .arg(passphrase)
        .arg(src)
        .arg(dst)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dst).unwrap()
}

/// The passphrase in an SMS text (`Passord til NAME (ref REF): PASSPHRASE`).
pub fn passphrase_of(text: &str) -> String {
    text.rsplit(": ").next().unwrap().trim().to_string()
}
