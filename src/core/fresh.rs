//! Whether a sealed spool file is read and hashed in full again before its upload
//! (docs/design.md §4, "Shared scans"): not when this process sealed it moments ago and
//! nothing says it changed since; always when a run resumes from a spool file it did not
//! just seal (a restart, a retry from the spool).

use std::time::SystemTime;

/// What the file looked like on disk (size, modification time, inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub modified: SystemTime,
    pub inode: u64,
}

/// A file this process sealed moments ago: the size and SHA-256 its sealer counted, and
/// its stamp right after it was renamed into place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fresh {
    pub bytes: u64,
    pub sha256: String,
    pub stamp: Stamp,
}

/// How the spool file is checked before its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolRead {
    /// The sealer's figures stand for the file: not read again.
    Trusted,
    /// Read in full and compared with the recorded size and SHA-256.
    Full,
}

/// [`SpoolRead::Trusted`] only on the run's first attempt (not a resume, not a retry), when
/// the sealer's figures are the recorded artifact's and the file has the stamp it had when
/// sealed; [`SpoolRead::Full`] otherwise.
pub fn spool_read(
    fresh: Option<&Fresh>,
    recorded_bytes: u64,
    recorded_sha256: &str,
    first_attempt: bool,
    now: Option<Stamp>,
) -> SpoolRead {
    let Some(f) = fresh else {
        return SpoolRead::Full;
    };
    let same = first_attempt
        && f.bytes == recorded_bytes
        && f.sha256.eq_ignore_ascii_case(recorded_sha256)
        && now == Some(f.stamp)
        && f.stamp.len == recorded_bytes;
    if same {
        SpoolRead::Trusted
    } else {
        SpoolRead::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stamp() -> Stamp {
        Stamp {
            len: 100,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            inode: 7,
        }
    }

    fn fresh() -> Fresh {
        Fresh {
            bytes: 100,
            sha256: "ab".repeat(32),
            stamp: stamp(),
        }
    }

    #[test]
    fn a_file_sealed_moments_ago_is_not_read_again_on_the_first_attempt() {
        let sha = "AB".repeat(32);
        assert_eq!(
            spool_read(Some(&fresh()), 100, &sha, true, Some(stamp())),
            SpoolRead::Trusted
        );
    }

    #[test]
    fn without_the_sealers_figures_the_file_is_read() {
        // A restart or another process: nothing in memory.
        assert_eq!(
            spool_read(None, 100, &"ab".repeat(32), true, Some(stamp())),
            SpoolRead::Full
        );
    }

    #[test]
    fn a_retry_reads_the_file_again() {
        assert_eq!(
            spool_read(Some(&fresh()), 100, &"ab".repeat(32), false, Some(stamp())),
            SpoolRead::Full
        );
    }

    #[test]
    fn figures_that_are_not_the_recorded_ones_are_not_trusted() {
        let f = fresh();
        assert_eq!(
            spool_read(Some(&f), 101, &f.sha256, true, Some(stamp())),
            SpoolRead::Full
        );
        assert_eq!(
            spool_read(Some(&f), 100, &"cd".repeat(32), true, Some(stamp())),
            SpoolRead::Full
        );
    }

    #[test]
    fn a_file_touched_since_it_was_sealed_is_read() {
        let f = fresh();
        let sha = f.sha256.clone();
        for now in [
            None,
            Some(Stamp { len: 99, ..stamp() }),
            Some(Stamp {
                inode: 8,
                ..stamp()
            }),
            Some(Stamp {
                modified: stamp().modified + Duration::from_nanos(1),
                ..stamp()
            }),
        ] {
            assert_eq!(
                spool_read(Some(&f), 100, &sha, true, now),
                SpoolRead::Full,
                "{now:?}"
            );
        }
    }
}
