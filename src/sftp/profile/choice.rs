//! What regdrop does with a server: the upload [`Strategy`] (channels, write size,
//! requests in flight, fsync) and the [`CommitPath`] chosen from its [`ServerProfile`] and
//! the target's [`Overrides`], and the protocol constants they respect. Pure, so every
//! server's choice is unit-tested below.

use super::server::{ServerProfile, FSYNC, HARDLINK};
use std::fmt;

/// How the temp file becomes the final file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPath {
    /// `posix-rename@openssh.com`: rename(2), atomically replacing the final name.
    PosixRename,
    /// `hardlink@openssh.com` (link(2), which refuses an existing name) then remove the
    /// temp name: race-free no-clobber.
    Hardlink,
    /// Plain SFTP rename on a server known to refuse an existing target (OpenSSH links
    /// then unlinks: race-free).
    Rename,
    /// Check that the final name is free, then a plain rename, on a server whose rename
    /// may replace: a writer who creates the final name in between (one round trip) would
    /// be replaced. Only with `[target] commit = "checked-rename"`.
    CheckedRename,
    /// Rename the old file aside, rename the new one in, delete the old one: the final name
    /// is briefly absent, never partial (`overwrite` without posix-rename).
    RenameAside,
}

impl CommitPath {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitPath::PosixRename => "posix-rename",
            CommitPath::Hardlink => "hardlink",
            CommitPath::Rename => "rename",
            CommitPath::CheckedRename => "checked-rename",
            CommitPath::RenameAside => "rename-aside",
        }
    }

    /// What the path guarantees, for `probe` and the docs.
    pub fn guarantee(self) -> &'static str {
        match self {
            CommitPath::PosixRename => "atomic replace: readers see the old file or the new one",
            CommitPath::Hardlink => {
                "no clobber, race-free: an existing file under the final name is never touched"
            }
            CommitPath::Rename => "no clobber, race-free (the server's rename refuses an existing name)",
            CommitPath::CheckedRename => {
                "no clobber except in a one-round-trip window: a file created in that window would be replaced"
            }
            CommitPath::RenameAside => {
                "the final name is briefly absent during the swap, never partial; the old file survives a failure"
            }
        }
    }
}

impl fmt::Display for CommitPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The commit path an operator may force in `[target] commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitChoice {
    /// Choose from the server's profile (default): a race-free path where the server has
    /// one, else a checked rename (and the receipt and `probe` say so).
    Auto,
    /// Like `Auto`, but refuse (permanent error, nothing written) where no race-free path
    /// exists.
    RaceFree,
    Hardlink,
    Rename,
    CheckedRename,
}

/// Per-target overrides (`[target]` keys), for servers nobody can probe safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrides {
    pub channels: Option<usize>,
    pub max_write: Option<usize>,
    pub in_flight: Option<usize>,
    pub commit: CommitChoice,
    /// Use `fsync@openssh.com` when offered (default true).
    pub fsync: bool,
    /// Use `posix-rename@openssh.com` when offered (default true); off for servers whose
    /// extension misbehaves.
    pub posix_rename: bool,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            channels: None,
            max_write: None,
            in_flight: None,
            commit: CommitChoice::Auto,
            fsync: true,
            posix_rename: true,
        }
    }
}

/// What `if_exists` asks of the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Never replace an existing file (`fail`, and each try of `version`).
    NoClobber,
    /// Replace the existing file once the new one is complete (`overwrite`).
    Replace,
}

/// The data path and commit of one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    pub channels: usize,
    /// Bytes per WRITE request.
    pub write_len: usize,
    /// WRITE requests in flight per channel.
    pub in_flight: usize,
    /// Bytes in flight per channel.
    pub in_flight_bytes: usize,
    /// Bytes per READ request (read-back).
    pub read_len: usize,
    pub fsync: bool,
}

/// Largest WRITE/READ payload we send or ask for, whatever the server allows: keeps every
/// reply well inside the client's packet limit ([`MAX_PACKET`]).
pub const MAX_IO: usize = 255 * 1024;
/// The client's packet limit: a reply larger than this ends the session (a hostile server
/// cannot make us buffer more).
pub const MAX_PACKET: u32 = 1 << 20;
/// What every SFTP server must accept (draft-02 section 3: 34000-byte packets).
pub const SAFE_IO: usize = 32 * 1024;
/// WRITE requests in flight per channel unless `[target] in_flight` says otherwise, and
/// the session's own write window (russh-sftp's default is 16; 64 measured best).
pub const MAX_IN_FLIGHT: usize = 64;
/// Files up to this size go over one channel whatever the server.
pub const MULTI_CHANNEL_FROM: u64 = 8 << 20;

/// Chooses the data path for a file of `size` bytes.
pub fn strategy(p: &ServerProfile, o: &Overrides, size: u64) -> Strategy {
    let stated = |v: u64| (v > 0).then_some(v as usize);
    let (limit_w, limit_r) = match p.limits {
        Some(l) => (stated(l.write_len), stated(l.read_len)),
        None => (None, None),
    };
    let write_len = o
        .max_write
        .or(limit_w)
        .unwrap_or(SAFE_IO)
        .clamp(1024, MAX_IO);
    let write_len = match limit_w {
        Some(l) => write_len.min(l.max(1)),
        None => write_len,
    };
    let read_len = limit_r.unwrap_or(SAFE_IO).clamp(1024, MAX_IO);
    let parallel = p
        .parallel_writes_ok
        .unwrap_or_else(|| p.family.parallel_writes());
    let default_channels = if parallel && size > MULTI_CHANNEL_FROM {
        4
    } else {
        1
    };
    let channels = o.channels.unwrap_or(default_channels).clamp(1, 16);
    Strategy {
        channels,
        write_len,
        in_flight: o.in_flight.unwrap_or(MAX_IN_FLIGHT).clamp(1, 1024),
        in_flight_bytes: 4 << 20,
        read_len,
        fsync: o.fsync && p.has(FSYNC),
    }
}

/// Chooses the commit path, or says why none is safe.
pub fn commit_path(p: &ServerProfile, o: &Overrides, want: Want) -> Result<CommitPath, String> {
    let race_free = if p.hardlink_usable() {
        Some(CommitPath::Hardlink)
    } else if p.rename_never_replaces() {
        Some(CommitPath::Rename)
    } else {
        None
    };
    match want {
        Want::Replace => Ok(if o.posix_rename && p.atomic_replace() {
            CommitPath::PosixRename
        } else {
            CommitPath::RenameAside
        }),
        Want::NoClobber => match o.commit {
            CommitChoice::Hardlink if p.hardlink_usable() => Ok(CommitPath::Hardlink),
            CommitChoice::Hardlink => Err(format!(
                "[target] commit = \"hardlink\" but the server ({}) offers no working {HARDLINK}",
                p.banner
            )),
            CommitChoice::Rename => Ok(CommitPath::Rename),
            CommitChoice::CheckedRename => Ok(CommitPath::CheckedRename),
            CommitChoice::Auto => Ok(race_free.unwrap_or(CommitPath::CheckedRename)),
            CommitChoice::RaceFree => race_free.ok_or_else(|| {
                format!(
                    "the server ({}) offers no race-free way to commit without replacing an \
                     existing file: no working {HARDLINK}, and its plain rename {}; with \
                     [target] commit = \"race-free\" nothing is delivered there: remove that \
                     setting to accept a checked rename (a file someone else creates under \
                     the final name in one round trip would be replaced), or use \
                     if_exists = \"overwrite\"",
                    p.banner,
                    match p.rename_replaces {
                        Some(true) => "replaces existing files",
                        _ => "may replace existing files (not known to refuse)",
                    }
                )
            }),
        },
    }
}

/// Whether a no-clobber commit path holds even against a concurrent writer.
pub fn is_race_free(c: CommitPath) -> bool {
    matches!(c, CommitPath::Hardlink | CommitPath::Rename)
}

#[cfg(test)]
mod tests {
    use super::super::server::{Limits, LIMITS, POSIX_RENAME};
    use super::*;

    fn profile(banner: &str, exts: &[&str]) -> ServerProfile {
        ServerProfile::new(
            banner,
            3,
            exts.iter().map(|e| (e.to_string(), "1".to_string())),
        )
    }

    #[test]
    fn strategies_per_server() {
        let big = 20 << 20;
        let o = Overrides::default();
        let mut ossh = profile(
            "SSH-2.0-OpenSSH_9.2p1",
            &[POSIX_RENAME, HARDLINK, FSYNC, LIMITS],
        );
        ossh.limits = Some(Limits {
            packet_len: 262144,
            read_len: 261120,
            write_len: 261120,
            open_handles: 0,
        });
        let s = strategy(&ossh, &o, big);
        assert_eq!((s.channels, s.write_len, s.read_len), (4, 261120, 261120));
        assert!(s.fsync);
        // Small files: one channel.
        assert_eq!(strategy(&ossh, &o, 1 << 20).channels, 1);
        // ProFTPD and Go servers: one channel whatever the size; unknown servers too.
        for b in ["SSH-2.0-mod_sftp", "SSH-2.0-Go", "SSH-2.0-Other"] {
            let s = strategy(&profile(b, &[]), &o, big);
            assert_eq!(
                (s.channels, s.write_len, s.fsync),
                (1, SAFE_IO, false),
                "{b}"
            );
        }
        // asyncssh states 4 MiB limits: capped at MAX_IO so replies fit MAX_PACKET.
        let mut a = profile("SSH-2.0-AsyncSSH_2.24.0", &[LIMITS]);
        a.limits = Some(Limits {
            packet_len: 4 << 20,
            read_len: 4 << 20,
            write_len: 4 << 20,
            open_handles: 0,
        });
        let s = strategy(&a, &o, big);
        assert_eq!((s.channels, s.write_len, s.read_len), (4, MAX_IO, MAX_IO));
        assert!(MAX_IO + 1024 < MAX_PACKET as usize);
        // Learned: a server whose parallel writes failed gets one channel.
        a.parallel_writes_ok = Some(false);
        assert_eq!(strategy(&a, &o, big).channels, 1);
        // Overrides win, within bounds.
        let o2 = Overrides {
            channels: Some(2),
            max_write: Some(16 * 1024),
            in_flight: Some(8),
            fsync: false,
            ..Overrides::default()
        };
        let s = strategy(&ossh, &o2, big);
        assert_eq!(
            (s.channels, s.write_len, s.in_flight, s.fsync),
            (2, 16384, 8, false)
        );
        // A stated server limit below the override still holds.
        let o3 = Overrides {
            max_write: Some(MAX_IO),
            ..Overrides::default()
        };
        ossh.limits.as_mut().unwrap().write_len = 65536;
        assert_eq!(strategy(&ossh, &o3, big).write_len, 65536);
    }

    #[test]
    fn commit_paths() {
        let o = Overrides::default();
        let ossh = profile("SSH-2.0-OpenSSH_9.2p1", &[POSIX_RENAME]);
        assert_eq!(
            commit_path(&ossh, &o, Want::NoClobber),
            Ok(CommitPath::Rename)
        );
        assert_eq!(
            commit_path(&ossh, &o, Want::Replace),
            Ok(CommitPath::PosixRename)
        );
        let no_posix = Overrides {
            posix_rename: false,
            ..o
        };
        assert_eq!(
            commit_path(&ossh, &no_posix, Want::Replace),
            Ok(CommitPath::RenameAside)
        );
        let mut asy = profile("SSH-2.0-AsyncSSH_2.24.0", &[POSIX_RENAME, HARDLINK]);
        assert_eq!(
            commit_path(&asy, &o, Want::NoClobber),
            Ok(CommitPath::Hardlink)
        );
        // A hardlink that "succeeded" without a link is not used again.
        asy.hardlink_ok = Some(false);
        assert_eq!(
            commit_path(&asy, &o, Want::NoClobber),
            Ok(CommitPath::CheckedRename)
        );
        // No hardlink, rename not known to refuse: a checked rename, or nothing when the
        // operator asked for race-free only.
        let mut other = profile("SSH-2.0-Other", &[]);
        assert_eq!(
            commit_path(&other, &o, Want::NoClobber),
            Ok(CommitPath::CheckedRename)
        );
        let strict = Overrides {
            commit: CommitChoice::RaceFree,
            ..o
        };
        let e = commit_path(&other, &strict, Want::NoClobber).unwrap_err();
        assert!(e.contains("race-free"), "{e}");
        // rclone: hardlink answers OK without linking, posix-rename is not atomic.
        let rclone = profile("SSH-2.0-rclone/", &[POSIX_RENAME, HARDLINK]);
        assert_eq!(
            commit_path(&rclone, &o, Want::NoClobber),
            Ok(CommitPath::CheckedRename)
        );
        assert_eq!(
            commit_path(&rclone, &o, Want::Replace),
            Ok(CommitPath::RenameAside)
        );
        assert_eq!(
            commit_path(&other, &o, Want::Replace),
            Ok(CommitPath::RenameAside)
        );
        let checked = Overrides {
            commit: CommitChoice::CheckedRename,
            ..o
        };
        assert_eq!(
            commit_path(&other, &checked, Want::NoClobber),
            Ok(CommitPath::CheckedRename)
        );
        // Learned that its rename refuses: race-free enough.
        other.rename_replaces = Some(false);
        assert_eq!(
            commit_path(&other, &o, Want::NoClobber),
            Ok(CommitPath::Rename)
        );
        assert_eq!(
            commit_path(&other, &strict, Want::NoClobber),
            Ok(CommitPath::Rename)
        );
        // Forcing hardlink on a server without it is an error that says so.
        let hl = Overrides {
            commit: CommitChoice::Hardlink,
            ..o
        };
        assert!(commit_path(&ossh, &hl, Want::NoClobber).is_err());
    }
}
