//! The remote folder before anything is written: its listing (the folder created first
//! when allowed), what earlier attempts of the subscription left there (litter: temp
//! files, an old file renamed aside) and removing it, and whether this very artifact is
//! already there from an attempt that died before its sidecars.

use super::super::connect::Sftp;
use super::super::remote::{join, MissingDir};
use super::super::{IfExists, SftpError, Target, Upload, Verify};
use super::names::{check_run_id, is_run_of, owner_of, version_of, RENAME_TESTS, SIDECARS};
use russh_sftp::protocol::StatusCode;
use tracing::{info, warn};

/// The delivery folder as listed at the start (`listing` is `None` when it cannot be
/// listed: a write-only drop folder, where names are checked one by one).
pub(super) struct Folder<'a> {
    dir: &'a str,
    listing: Option<Vec<String>>,
}

impl<'a> Folder<'a> {
    /// Lists `target.remote_dir`, creating it first when allowed.
    pub(super) async fn read(s: &Sftp, target: &'a Target) -> Result<Folder<'a>, SftpError> {
        let dir = target.remote_dir.as_str();
        let listing = match s.list(dir).await {
            Ok(names) => Some(names),
            Err(e) => match e.status_code() {
                Some(StatusCode::NoSuchFile) | Some(StatusCode::NoSuchPath) => {
                    let created = s.ensure_dir(dir, target.missing_dir()).await?;
                    if created {
                        Some(Vec::new())
                    } else {
                        s.list(dir).await.ok()
                    }
                }
                Some(StatusCode::PermissionDenied) => {
                    s.ensure_dir(dir, MissingDir::Refuse).await?;
                    warn!(
                        dir,
                        "The remote folder cannot be listed; temp files of earlier attempts cannot be found there."
                    );
                    None
                }
                _ => return Err(e),
            },
        };
        Ok(Folder { dir, listing })
    }

    /// The names listed (none when the folder cannot be listed).
    pub(super) fn names(&self) -> &[String] {
        self.listing.as_deref().unwrap_or_default()
    }

    /// Whether `name` is taken: from the listing, else asked of the server.
    pub(super) async fn has(&self, s: &Sftp, name: &str) -> Result<bool, SftpError> {
        match &self.listing {
            Some(names) => Ok(names.iter().any(|n| n == name)),
            None => s.exists(&join(self.dir, name)).await,
        }
    }

    /// With `fail` or `version`: the name (the final one, else the versioned ones in
    /// order) that already holds this artifact, and how that was verified. An earlier
    /// attempt may have committed and then died before its sidecars; the identical file
    /// then counts as delivered (no conflict, no duplicate version).
    pub(super) async fn earlier_delivery(
        &self,
        s: &Sftp,
        up: &Upload,
        size: u64,
    ) -> Result<Option<(String, Verify)>, SftpError> {
        if up.if_exists == IfExists::Overwrite {
            return Ok(None);
        }
        let fin = up.final_name.as_str();
        let mut candidates = vec![fin.to_string()];
        if up.if_exists == IfExists::Version {
            let mut v: Vec<(u32, &String)> = self
                .names()
                .iter()
                .filter_map(|n| version_of(fin, n).map(|k| (k, n)))
                .collect();
            v.sort();
            candidates.extend(v.into_iter().map(|(_, n)| n.clone()));
        }
        for name in candidates {
            if !self.has(s, &name).await? {
                continue;
            }
            if let Some(verified) = same_file(s, self.dir, &name, size, up).await? {
                return Ok(Some((name, verified)));
            }
        }
        Ok(None)
    }
}

/// What a folder entry left by an earlier attempt is, if it is ours to clean.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Litter {
    /// A temp file (data, sidecar or rename test) of an earlier attempt: delete it.
    Part,
    /// `.FINAL.RUN.old`, the old file renamed aside by an interrupted `overwrite`.
    Aside,
}

/// Classifies `name`: temp files of `final_name` from any run, and temp files of any file
/// of the same subscription (runs `SUB-...`: a failed run of yesterday leaves nothing
/// behind once today's run has been there).
fn litter(final_name: &str, run: &str, name: &str) -> Option<Litter> {
    let rest = name.strip_prefix('.')?;
    if let Some(r) = rest
        .strip_prefix(final_name)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".old"))
    {
        if check_run_id(r).is_ok() {
            return Some(Litter::Aside);
        }
    }
    let body = rest.strip_suffix(".part")?;
    let (_, their_run) = body.rsplit_once('.')?;
    check_run_id(their_run).ok()?;
    let same_final = rest.starts_with(final_name) && rest[final_name.len()..].starts_with('.') && {
        // ".FINAL[SUFFIX].RUN.part"
        let mut r = &body[final_name.len()..];
        for suffix in SIDECARS.iter().chain(&RENAME_TESTS) {
            if let Some(x) = r.strip_prefix(suffix) {
                r = x;
                break;
            }
        }
        r.strip_prefix('.').is_some_and(|x| x == their_run)
    };
    let same_subscription = owner_of(run).is_some_and(|o| is_run_of(o, their_run));
    (same_final || same_subscription).then_some(Litter::Part)
}

/// Removes what earlier attempts of this subscription left in the folder: temp files,
/// and an old file renamed aside by an interrupted overwrite (put back when the final name
/// is empty, deleted when the new file made it). Before anything new is written.
pub(crate) async fn clean_litter(
    s: &Sftp,
    dir: &str,
    up: &Upload,
    names: &[String],
) -> Result<(), SftpError> {
    let fin = up.final_name.as_str();
    for name in names {
        let p = join(dir, name);
        match litter(fin, &up.run_id, name) {
            Some(Litter::Part) => {
                s.remove_if_exists(&p).await?;
                info!(path = %p, "Removed a temp file of an earlier attempt.");
            }
            Some(Litter::Aside) => {
                let dst = join(dir, fin);
                if names.iter().any(|n| n == fin) {
                    s.remove_if_exists(&p).await?;
                    info!(path = %p, "Removed the old file an interrupted overwrite had renamed aside.");
                } else {
                    s.rename(&p, &dst).await?;
                    warn!(path = %dst, "Put back the old file an interrupted overwrite had renamed aside.");
                }
            }
            None => {}
        }
    }
    Ok(())
}

/// Is `dir/name` this artifact? `Some(how it was verified)` when its size matches and either
/// its `.sha256` sidecar names this checksum (and `up.verify` is `Size`) or a read-back
/// hash matches.
async fn same_file(
    s: &Sftp,
    dir: &str,
    name: &str,
    size: u64,
    up: &Upload,
) -> Result<Option<Verify>, SftpError> {
    let path = join(dir, name);
    match s.stat(&path).await? {
        Some(a) if a.is_regular() && a.size == Some(size) => {}
        _ => return Ok(None),
    }
    if up.verify == Verify::Size {
        let want = format!("{}  {}", up.sha256_hex.to_ascii_lowercase(), name);
        if let Some(side) = s.read_small(&format!("{path}.sha256"), 4096).await? {
            if String::from_utf8_lossy(&side)
                .lines()
                .any(|l| l.trim_end() == want)
            {
                return Ok(Some(Verify::Size));
            }
        }
    }
    let (sum, n) = s.hash_remote(&path, size).await?;
    Ok((n == size && sum.eq_ignore_ascii_case(&up.sha256_hex)).then_some(Verify::ReadBack))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn litter_is_temp_files_of_the_file_or_the_subscription() {
        let part = Some(Litter::Part);
        assert_eq!(litter("a.age", "r9", ".a.age.r1.part"), part);
        assert_eq!(litter("a.age", "r9", ".a.age.sha256.r1.part"), part);
        assert_eq!(litter("a.age", "r9", ".a.age.rename-test-b.r1.part"), part);
        assert_eq!(litter("a", "r9", ".a.b.r1.part.x"), None);
        assert_eq!(litter("a", "r9", ".a.b.c.part"), None);
        assert_eq!(litter("a.age", "r9", "a.age"), None);
        assert_eq!(litter("a.age", "r9", ".a.age.r1.old"), Some(Litter::Aside));
        assert_eq!(litter("a.age", "r9", ".b.age.r1.old"), None);
        // A probe running beside the delivery keeps its files.
        assert_eq!(litter("a.age", "r9", ".regdrop-probe.12-34.data.tmp"), None);
        // Temp files of other runs of the same subscription (yesterday's failed run).
        let today = "parkering-20261201T050000Z";
        assert_eq!(
            litter(
                "p_20261201.age",
                today,
                ".p_20261130.age.parkering-20261130T050000Z.part"
            ),
            part
        );
        assert_eq!(
            litter(
                "p_20261201.age",
                today,
                ".p_20261130.age.manifest.json.parkering-20261130T050000Z.part"
            ),
            part
        );
        // Not another subscription's, even with a shared prefix.
        assert_eq!(
            litter(
                "p_20261201.age",
                today,
                ".x.age.parkering-nord-20261130T050000Z.part"
            ),
            None
        );
        assert_eq!(
            litter(
                "p_20261201.age",
                today,
                ".x.age.other-20261130T050000Z.part"
            ),
            None
        );
    }
}
