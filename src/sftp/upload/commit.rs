//! The commit: how the complete temp file becomes the final file. Chosen before any byte
//! is sent ([`choose_commit`]; a server with no race-free no-clobber commit fails there,
//! unless a checked rename was accepted); done per `if_exists` ([`commit_final`]):
//! no-clobber (hardlink + verification that it linked, or a rename known to refuse),
//! replace (posix-rename, else rename aside), or the first free versioned name. What a
//! server turns out to do (rename replaces, hardlink does not link) is learned for the
//! host.

use super::super::connect::{Conn, Sftp};
use super::super::learned;
use super::super::profile::{self, CommitPath, ServerProfile, Want};
use super::super::remote::join;
use super::super::{IfExists, SftpError, Target, Upload};
use super::data::cleanup_after;
use super::names::{aside_name, temp_name, versioned_name, RENAME_TESTS};
use tracing::{debug, info, warn};

/// How the temp file will become the final one, decided before any byte is sent: a server
/// with no race-free no-clobber commit fails here, permanently, with nothing written
/// (unless the operator accepted a checked rename).
pub(super) async fn choose_commit(
    conn: &Conn,
    s: &Sftp,
    profile: &mut ServerProfile,
    target: &Target,
    up: &Upload,
) -> Result<CommitPath, SftpError> {
    let (dir, fin) = (target.remote_dir.as_str(), up.final_name.as_str());
    let want = match up.if_exists {
        IfExists::Overwrite => Want::Replace,
        IfExists::Fail | IfExists::Version => Want::NoClobber,
    };
    let mut chosen = profile::commit_path(profile, &target.overrides, want);
    let unsure = matches!(chosen, Err(_) | Ok(CommitPath::CheckedRename))
        && want == Want::NoClobber
        && profile.rename_replaces.is_none()
        && target.overrides.commit != profile::CommitChoice::CheckedRename;
    if unsure {
        // Find out by trying (two tiny temp files) whether its rename refuses, then decide
        // again: a refusing rename is a race-free commit.
        learn_rename(conn, s, profile, dir, fin, &up.run_id).await?;
        chosen = profile::commit_path(profile, &target.overrides, want);
    }
    let commit = chosen.map_err(|reason| SftpError::NoSafeCommit {
        addr: conn.addr.clone(),
        reason,
    })?;
    if commit == CommitPath::CheckedRename {
        warn!(server = %profile.banner, file = fin,
              "This server offers no race-free no-clobber commit: checking, then renaming (a file someone else creates under the final name in that round trip would be replaced). Set [target] commit = \"race-free\" to refuse instead.");
    }
    Ok(commit)
}

/// Moves the verified temp file `part` to its final name per `up.if_exists` with the
/// chosen `commit`; returns the name used (a versioned one with `version`). On failure
/// the temp file is removed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn commit_final(
    conn: &Conn,
    s: &Sftp,
    profile: &mut ServerProfile,
    target: &Target,
    up: &Upload,
    commit: CommitPath,
    part: &str,
    size: u64,
) -> Result<String, SftpError> {
    let (dir, fin) = (target.remote_dir.as_str(), up.final_name.as_str());
    let final_name = match up.if_exists {
        IfExists::Fail => {
            let dst = join(dir, fin);
            if let Err(e) =
                commit_no_clobber_learning(conn, s, profile, target, up, commit, part, &dst, size)
                    .await
            {
                return Err(cleanup_after(s, part, e).await);
            }
            fin.to_string()
        }
        IfExists::Overwrite => {
            let dst = join(dir, fin);
            let aside = join(dir, &aside_name(fin, &up.run_id));
            let r = match commit {
                CommitPath::PosixRename => s.posix_rename(part, &dst).await,
                _ => s.replace_aside(part, &dst, &aside).await,
            };
            if let Err(e) = r {
                return Err(cleanup_after(s, part, e).await);
            }
            fin.to_string()
        }
        IfExists::Version => {
            let mut chosen = None;
            for n in 1..=999u32 {
                let name = if n == 1 {
                    fin.to_string()
                } else {
                    versioned_name(fin, n)
                };
                let dst = join(dir, &name);
                if s.exists(&dst).await? {
                    continue;
                }
                match commit_no_clobber_learning(
                    conn, s, profile, target, up, commit, part, &dst, size,
                )
                .await
                {
                    Ok(()) => {
                        chosen = Some(name);
                        break;
                    }
                    // Lost a race for this name: try the next one.
                    Err(SftpError::FinalExists { .. }) => continue,
                    Err(e) => return Err(cleanup_after(s, part, e).await),
                }
            }
            match chosen {
                Some(n) => n,
                None => {
                    let e = SftpError::NoFreeVersion {
                        path: join(dir, fin),
                        tried: 999,
                    };
                    return Err(cleanup_after(s, part, e).await);
                }
            }
        }
    };
    debug!(path = %join(dir, &final_name), commit = commit.as_str(), "Committed.");
    Ok(final_name)
}

/// Tries whether the server's plain rename replaces an existing file (see
/// [`rename_replaces`]) and records the answer in the profile and for the host.
pub(crate) async fn learn_rename(
    conn: &Conn,
    s: &Sftp,
    profile: &mut ServerProfile,
    dir: &str,
    fin: &str,
    run: &str,
) -> Result<bool, SftpError> {
    let replaces = rename_replaces(s, dir, fin, run).await?;
    learned::rename_replaces(&conn.addr, replaces);
    profile.rename_replaces = Some(replaces);
    Ok(replaces)
}

/// Moves the temp file to `dst` without ever replacing a file there. A taken name is
/// [`SftpError::FinalExists`] with the other file untouched and the temp file still there.
pub(crate) async fn commit_no_clobber(
    s: &Sftp,
    commit: CommitPath,
    part: &str,
    dst: &str,
    size: u64,
) -> Result<(), SftpError> {
    let taken = |e: SftpError| async move {
        if s.exists(dst).await.unwrap_or(false) {
            SftpError::FinalExists { path: dst.into() }
        } else {
            e
        }
    };
    match commit {
        CommitPath::Hardlink => {
            if let Err(e) = s.hardlink(part, dst).await {
                return Err(taken(e).await);
            }
            // Trust, but verify before the temp name goes: a server may answer OK without
            // linking (rclone), and removing the temp file would then remove the data.
            match s.lstat(dst).await? {
                Some(a) if a.is_regular() && a.size == Some(size) => {}
                other => {
                    if other.is_some_and(|a| a.is_symlink()) {
                        // Made by the "link" just now (the name was free): take it back.
                        let _ = s.remove_if_exists(dst).await;
                    }
                    return Err(SftpError::HardlinkBroken { path: dst.into() });
                }
            }
            // The final name now holds the file; the temp name is a second link to it.
            if let Err(e) = s.remove(part).await {
                warn!(path = part, error = %crate::core::errors::Chain(&e), "Committed, but the temp name could not be removed; the next delivery removes it.");
            }
            Ok(())
        }
        CommitPath::CheckedRename => {
            if s.exists(dst).await? {
                return Err(SftpError::FinalExists { path: dst.into() });
            }
            match s.rename(part, dst).await {
                Ok(()) => Ok(()),
                Err(e) => Err(taken(e).await),
            }
        }
        // Rename (known to refuse an existing name) and anything else asked for no-clobber.
        _ => match s.rename(part, dst).await {
            Ok(()) => Ok(()),
            Err(e) => Err(taken(e).await),
        },
    }
}

/// [`commit_no_clobber`], and when the server's hardlink turns out not to link: remember
/// it, choose the next path and commit with that.
#[allow(clippy::too_many_arguments)]
async fn commit_no_clobber_learning(
    conn: &Conn,
    s: &Sftp,
    profile: &mut ServerProfile,
    target: &Target,
    up: &Upload,
    commit: CommitPath,
    part: &str,
    dst: &str,
    size: u64,
) -> Result<(), SftpError> {
    match commit_no_clobber(s, commit, part, dst, size).await {
        Err(SftpError::HardlinkBroken { .. }) => {
            warn!(server = %profile.banner, "The server answered a hardlink without linking; not using hardlink with it again.");
            learned::hardlink_broken(&conn.addr);
            profile.hardlink_ok = Some(false);
            if profile.rename_replaces.is_none() {
                let (dir, fin) = (target.remote_dir.as_str(), up.final_name.as_str());
                learn_rename(conn, s, profile, dir, fin, &up.run_id).await?;
            }
            let next = profile::commit_path(profile, &target.overrides, Want::NoClobber).map_err(
                |reason| SftpError::NoSafeCommit {
                    addr: conn.addr.clone(),
                    reason,
                },
            )?;
            commit_no_clobber(s, next, part, dst, size).await
        }
        other => other,
    }
}

/// Tries whether a plain rename onto an existing file replaces it, with two tiny temp
/// files that are removed again (and that the next attempt would remove as litter).
async fn rename_replaces(s: &Sftp, dir: &str, fin: &str, run: &str) -> Result<bool, SftpError> {
    let a = join(dir, &temp_name(fin, RENAME_TESTS[0], run));
    let b = join(dir, &temp_name(fin, RENAME_TESTS[1], run));
    s.put_plain(&a, b"a").await?;
    s.put_plain(&b, b"b").await?;
    let replaced = s.rename(&a, &b).await.is_ok();
    let _ = s.remove_if_exists(&a).await;
    let _ = s.remove_if_exists(&b).await;
    info!(
        dir,
        replaced, "Tried whether the server's plain rename replaces an existing file."
    );
    Ok(replaced)
}
