//! Host-key pinning: the keys a target accepts (pinned OpenSSH key lines and/or a
//! known_hosts file, `@revoked` entries vetoing), the russh client handler that accepts
//! only those (or, for scans, records the key and refuses), and key fingerprints.

use super::{SftpError, Target};
use russh::client;
use russh::keys::{HashAlg, PublicKey};
use std::sync::{Arc, Mutex};

/// One pinned key parsed from an OpenSSH public-key line.
fn parse_key_line(line: &str) -> Result<PublicKey, SftpError> {
    let mut fields = line.split_whitespace();
    let (Some(kind), Some(b64)) = (fields.next(), fields.next()) else {
        return Err(SftpError::HostKeyConfig(format!(
            "a pinned host key must look like \"ssh-ed25519 AAAA...\", got {:?}",
            truncate(line, 40)
        )));
    };
    let key = russh::keys::parse_public_key_base64(b64).map_err(|e| {
        SftpError::HostKeyConfig(format!("pinned {kind} key cannot be parsed: {e}"))
    })?;
    let actual = key.algorithm();
    // An RSA key line says "ssh-rsa" whatever hash is negotiated later.
    if actual.as_str() != kind && !(kind == "ssh-rsa" && key.algorithm().is_rsa()) {
        return Err(SftpError::HostKeyConfig(format!(
            "pinned key line says {kind} but holds a {} key",
            actual.as_str()
        )));
    }
    Ok(key)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `SHA256:...` as printed by `ssh-keygen -l`.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The OpenSSH public-key line (`ssh-ed25519 AAAA...`) without comment.
pub(crate) fn key_line(key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    k.to_openssh()
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| key.algorithm().as_str().to_string())
}

/// The keys this target accepts: pinned lines plus known_hosts entries for host:port.
pub(crate) fn accepted_keys(t: &Target) -> Result<Vec<PublicKey>, SftpError> {
    let mut keys = Vec::new();
    for line in &t.host_keys {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(parse_key_line(line)?);
    }
    if let Some(path) = &t.known_hosts {
        if !path.is_file() {
            return Err(SftpError::HostKeyConfig(format!(
                "known_hosts file {} does not exist",
                path.display()
            )));
        }
        // russh matches plain and hashed (|1|) host entries, "[host]:port" for port != 22.
        let found =
            russh::keys::known_hosts::known_host_keys_path(&t.host, t.port, path).map_err(|e| {
                SftpError::HostKeyConfig(format!("known_hosts file {}: {e}", path.display()))
            })?;
        keys.extend(found.into_iter().map(|(_, k)| k));
        // `@revoked` lines (whatever their host pattern) veto a key, even a pinned one.
        let text = std::fs::read_to_string(path).map_err(|e| {
            SftpError::HostKeyConfig(format!("known_hosts file {}: {e}", path.display()))
        })?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 4 && f[0] == "@revoked" {
                if let Ok(k) = russh::keys::parse_public_key_base64(f[3]) {
                    keys.retain(|x| x.key_data() != k.key_data());
                }
            }
        }
    }
    if keys.is_empty() {
        return Err(SftpError::HostKeyConfig(format!(
            "no pinned host key for {}:{} (host_keys empty and nothing in known_hosts); \
             run `regdrop hostkey scan {}:{}`",
            t.host, t.port, t.host, t.port
        )));
    }
    Ok(keys)
}

/// What the handler saw of the server's key.
#[derive(Default, Debug, Clone)]
pub(crate) struct Seen {
    pub key: Option<PublicKey>,
    pub accepted: bool,
    /// The server's SSH identification line, cleaned (`SSH-2.0-OpenSSH_9.2p1 ...`).
    pub banner: String,
}

/// russh client handler that accepts only pinned keys (or, for scans, records and rejects).
pub(crate) struct PinHandler {
    accepted: Vec<PublicKey>,
    seen: Arc<Mutex<Seen>>,
}

impl PinHandler {
    /// Accepts `accepted` (none: a scan), telling `seen` what the server offered.
    pub(crate) fn new(accepted: Vec<PublicKey>, seen: Arc<Mutex<Seen>>) -> PinHandler {
        PinHandler { accepted, seen }
    }
}

impl client::Handler for PinHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = server else {
            // We never advertise certificate algorithms, so this does not happen.
            return Ok(false);
        };
        let ok = self.accepted.iter().any(|k| k.key_data() == key.key_data());
        let mut seen = self.seen.lock().unwrap();
        seen.key = Some(key.clone());
        seen.accepted = ok;
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::retry::{Classify, ErrorClass};

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn pinned_lines() {
        let k = parse_key_line(&format!("{ED} some comment")).unwrap();
        assert_eq!(key_line(&k), ED);
        assert!(fingerprint(&k).starts_with("SHA256:"));
        for bad in [
            "ssh-ed25519",
            "ssh-ed25519 AAAAnotbase64!!",
            &ED.replace("ssh-ed25519", "ssh-rsa"),
        ] {
            let e = parse_key_line(bad).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Permanent, "{bad}: {e}");
        }
    }
}
