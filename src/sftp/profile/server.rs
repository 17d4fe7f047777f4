//! What a customer's SFTP server really does ([`ServerProfile`]: its family from the
//! identification line, SFTP version, extensions and limits, and what earlier deliveries
//! learned by trying), and [`clean`], which every string a server sends passes through
//! before it reaches a log, a terminal or a receipt. Pure.

use std::collections::BTreeMap;

/// SFTP extensions regdrop uses.
pub const POSIX_RENAME: &str = "posix-rename@openssh.com";
pub const HARDLINK: &str = "hardlink@openssh.com";
pub const FSYNC: &str = "fsync@openssh.com";
pub const LIMITS: &str = "limits@openssh.com";

/// The server implementations whose behaviour is known (tested in `tests/it/interop/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenSSH `sftp-server` / `internal-sftp`: plain rename never replaces (link +
    /// unlink), writes at any offset on any number of channels.
    OpenSsh,
    /// ProFTPD `mod_sftp`: keeps one buffer of half-received requests across channels, so
    /// writes on several channels get mixed up ("Invalid handle"): one channel only.
    ProFtpd,
    /// Go `golang.org/x/crypto/ssh` servers (`SSH-2.0-Go`, rclone `serve sftp` says
    /// `SSH-2.0-rclone/VERSION`, SFTPGo, ...): rclone without a VFS cache takes only
    /// sequential writes ("Illegal seek"): one channel.
    Go,
    /// asyncssh's `SFTPServer`.
    AsyncSsh,
    /// Anything else: treated conservatively (one channel, 32 KiB writes).
    Unknown,
}

impl Family {
    /// From the server's SSH identification string (`SSH-2.0-OpenSSH_9.2p1 Debian-2`).
    pub fn from_banner(banner: &str) -> Family {
        let software = banner
            .strip_prefix("SSH-2.0-")
            .or_else(|| banner.strip_prefix("SSH-1.99-"))
            .unwrap_or("");
        let lower = software.to_ascii_lowercase();
        if lower.starts_with("openssh") {
            Family::OpenSsh
        } else if lower.starts_with("mod_sftp") || lower.contains("proftpd") {
            Family::ProFtpd
        } else if lower.starts_with("go") || lower.starts_with("rclone") {
            Family::Go
        } else if lower.starts_with("asyncssh") {
            Family::AsyncSsh
        } else {
            Family::Unknown
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::OpenSsh => "openssh",
            Family::ProFtpd => "proftpd",
            Family::Go => "go",
            Family::AsyncSsh => "asyncssh",
            Family::Unknown => "unknown",
        }
    }

    /// Whether writes on several channels (disjoint ranges, out of order) are known to work.
    pub(super) fn parallel_writes(self) -> bool {
        matches!(self, Family::OpenSsh | Family::AsyncSsh)
    }

    /// Whether an offered `hardlink@openssh.com` is known not to work: rclone answers OK
    /// and creates no link (the temp file's removal then removes the data).
    fn hardlink_broken(self) -> bool {
        self == Family::Go
    }

    /// Whether an offered `posix-rename@openssh.com` is known not to be atomic: rclone
    /// deletes the old file, then moves the new one in (the name is briefly absent).
    fn posix_rename_not_atomic(self) -> bool {
        self == Family::Go
    }
}

/// `limits@openssh.com` as the server states it (0 = no limit stated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub packet_len: u64,
    pub read_len: u64,
    pub write_len: u64,
    pub open_handles: u64,
}

/// What one server does, as far as regdrop can tell.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerProfile {
    /// The SSH identification line, cleaned (see [`clean`]).
    pub banner: String,
    pub family: Family,
    /// SFTP protocol version the server answered with.
    pub sftp_version: u32,
    /// Extensions offered (name -> data), both cleaned.
    pub extensions: BTreeMap<String, String>,
    pub limits: Option<Limits>,
    /// Learned by trying (probe or an earlier delivery): does a plain SFTP rename onto an
    /// existing file replace it? `None` = not tried.
    pub rename_replaces: Option<bool>,
    /// Learned by trying: do writes on several channels / out of order fail? `Some(false)`
    /// once a multi-channel upload failed and one channel worked.
    pub parallel_writes_ok: Option<bool>,
    /// Learned by trying: did an offered hardlink create the link? `Some(false)` once a
    /// link "succeeded" without a file under the new name.
    pub hardlink_ok: Option<bool>,
}

impl ServerProfile {
    pub fn new(
        banner: &str,
        sftp_version: u32,
        extensions: impl IntoIterator<Item = (String, String)>,
    ) -> ServerProfile {
        let banner = clean(banner, 200);
        ServerProfile {
            family: Family::from_banner(&banner),
            banner,
            sftp_version,
            extensions: extensions
                .into_iter()
                .map(|(k, v)| (clean(&k, 100), clean(&v, 100)))
                .collect(),
            limits: None,
            rename_replaces: None,
            parallel_writes_ok: None,
            hardlink_ok: None,
        }
    }

    pub fn has(&self, ext: &str) -> bool {
        self.extensions.contains_key(ext)
    }

    /// Whether `hardlink@openssh.com` is offered and not known to be broken.
    pub fn hardlink_usable(&self) -> bool {
        self.has(HARDLINK)
            && self
                .hardlink_ok
                .unwrap_or_else(|| !self.family.hardlink_broken())
    }

    /// Whether `posix-rename@openssh.com` is offered and replaces atomically.
    pub fn atomic_replace(&self) -> bool {
        self.has(POSIX_RENAME) && !self.family.posix_rename_not_atomic()
    }

    /// Whether a plain rename is known never to replace an existing file: OpenSSH (link +
    /// unlink, race-free), or a server that refused when tried.
    pub fn rename_never_replaces(&self) -> bool {
        match self.rename_replaces {
            Some(r) => !r,
            None => self.family == Family::OpenSsh,
        }
    }
}

// Moved to the core so every adapter that reads a server cleans its text the same way.
pub use crate::core::text::{clean, clean_bytes};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_banners() {
        assert_eq!(
            Family::from_banner("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
            Family::OpenSsh
        );
        assert_eq!(Family::from_banner("SSH-2.0-mod_sftp"), Family::ProFtpd);
        assert_eq!(
            Family::from_banner("SSH-2.0-mod_sftp/1.1.1"),
            Family::ProFtpd
        );
        assert_eq!(Family::from_banner("SSH-2.0-Go"), Family::Go);
        assert_eq!(Family::from_banner("SSH-2.0-rclone/"), Family::Go);
        assert_eq!(
            Family::from_banner("SSH-2.0-rclone/v1.60.1-DEV"),
            Family::Go
        );
        assert_eq!(
            Family::from_banner("SSH-2.0-AsyncSSH_2.24.0"),
            Family::AsyncSsh
        );
        assert_eq!(Family::from_banner("SSH-2.0-WeirdFTP 1.0"), Family::Unknown);
        assert_eq!(Family::from_banner(""), Family::Unknown);
        assert_eq!(Family::from_banner("OpenSSH"), Family::Unknown);
    }

    #[test]
    fn server_strings_are_cleaned() {
        assert_eq!(clean("plain 1.0", 50), "plain 1.0");
        assert_eq!(clean("a\0b", 50), "a\\0b");
        assert_eq!(clean("\u{1b}[31mred", 50), "\\u{1b}[31mred");
        assert_eq!(clean("x\u{202e}y", 50), "x\\u{202e}y");
        assert_eq!(clean("back\\slash", 50), "back\\\\slash");
        assert_eq!(clean("abcdef", 3), "abc...");
        assert_eq!(clean_bytes(b"\xff\x07", 10), "\u{fffd}\\u{7}");
        let p = ServerProfile::new(
            "SSH-2.0-Evil\u{1b}]0;pwned\u{7}",
            3,
            [("ext\0".to_string(), "\u{1b}[2J".to_string())],
        );
        assert!(!p.banner.contains('\u{1b}'));
        assert!(p.extensions.keys().all(|k| !k.contains('\0')));
        assert!(p.extensions.values().all(|v| !v.contains('\u{1b}')));
    }
}
