//! The data path of [`deliver`]: name rules (temp, versioned, sidecar names, what counts as
//! an earlier attempt's litter), the pipelined upload over the channels the
//! [`Strategy`] allows, and the verify, commit and sidecar steps of the protocol described
//! in [`super`].

use super::connect::{self, Conn, Sftp};
use super::learned;
use super::profile::{self, CommitPath, ServerProfile, Strategy, Want, POSIX_RENAME};
use super::remote::{attrs_0600, join};
use super::{Delivered, IfExists, SftpError, Target, Upload, Verify};
use futures::stream::{FuturesUnordered, StreamExt};
use russh_sftp::protocol::{OpenFlags, StatusCode};
use tokio::io::AsyncReadExt;
use tracing::{debug, info, warn};

/// Write requests in flight per channel (russh-sftp default is 16; 64 measured best).
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// Sidecar suffixes, in upload order.
pub(crate) const SIDECARS: [&str; 3] = [".sha256", ".manifest.json", ".done"];

/// A final file name must be one plain, visible path component.
pub(crate) fn check_name(name: &str) -> Result<(), SftpError> {
    let bad = |reason| {
        Err(SftpError::InvalidName {
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 200 {
        return bad("longer than 200 bytes");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("contains a path separator");
    }
    if name.starts_with('.') {
        return bad("starts with a dot");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    Ok(())
}

fn check_run_id(run: &str) -> Result<(), SftpError> {
    if run.is_empty()
        || run.len() > 64
        || !run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(SftpError::InvalidName {
            name: run.into(),
            reason: "a run id must be 1-64 characters of [A-Za-z0-9_-]",
        });
    }
    Ok(())
}

/// `.NAME.RUN.part`.
pub(crate) fn part_name(final_name: &str, run: &str) -> String {
    format!(".{final_name}.{run}.part")
}

/// The subscription part of a run id `SUB-YYYYMMDDTHHMMSSZ` (how the store names runs).
fn owner_of(run: &str) -> Option<&str> {
    let (sub, ts) = run.rsplit_once('-')?;
    let b = ts.as_bytes();
    let shaped = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    (shaped && !sub.is_empty()).then_some(sub)
}

/// Whether `name` is a run id of subscription `owner`.
fn is_run_of(owner: &str, run: &str) -> bool {
    owner_of(run) == Some(owner)
}

/// What a folder entry left by an earlier attempt is, if it is ours to clean.
#[derive(Debug, PartialEq, Eq)]
enum Litter {
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
        for suffix in SIDECARS.iter().chain(&[".rename-test-a", ".rename-test-b"]) {
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

/// `a.dsv.age`, 3 -> `a.v3.dsv.age`; `a`, 2 -> `a.v2`.
pub(crate) fn versioned_name(final_name: &str, n: u32) -> String {
    match final_name.find('.') {
        Some(i) => format!("{}.v{n}{}", &final_name[..i], &final_name[i..]),
        None => format!("{final_name}.v{n}"),
    }
}

/// If `name` is `versioned_name(final_name, n)` for some n >= 2, that n.
pub(crate) fn version_of(final_name: &str, name: &str) -> Option<u32> {
    let (stem, ext) = match final_name.find('.') {
        Some(i) => (&final_name[..i], &final_name[i..]),
        None => (final_name, ""),
    };
    let mid = name
        .strip_prefix(stem)?
        .strip_suffix(ext)?
        .strip_prefix(".v")?;
    if mid.is_empty() || !mid.bytes().all(|b| b.is_ascii_digit()) || mid.starts_with('0') {
        return None;
    }
    mid.parse().ok().filter(|n| *n >= 2)
}

/// Checks the upload's names and checksum before anything is contacted.
pub(crate) fn check_upload(up: &Upload) -> Result<(), SftpError> {
    check_name(&up.final_name)?;
    check_run_id(&up.run_id)?;
    if up.sha256_hex.len() != 64 || !up.sha256_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SftpError::InvalidName {
            name: "sha256_hex".into(),
            reason: "the local file's SHA-256 must be 64 hex digits",
        });
    }
    Ok(())
}

/// Delivers `up` to `target` (see [`super`] for the protocol). `progress` receives the
/// number of bytes the server has acknowledged so far.
pub async fn deliver(
    target: &Target,
    up: &Upload,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Delivered, SftpError> {
    check_upload(up)?;
    let local_meta = std::fs::metadata(&up.local).map_err(|e| SftpError::Local {
        path: up.local.clone(),
        source: e,
    })?;
    let size = local_meta.len();
    let started = std::time::Instant::now();
    info!(host = %target.host, port = target.port, remote_dir = %target.remote_dir,
          file = %up.final_name, run = %up.run_id, bytes = size, "Delivery starting.");
    let conn = connect::connect(target).await?;
    let mut sessions: Vec<Sftp> = Vec::new();
    let res = conn
        .guard(async {
            let (mut profile, strategy) = open_sessions(&conn, target, size, &mut sessions).await?;
            debug!(server = %profile.banner, family = profile.family.as_str(),
                   channels = sessions.len(), write_len = strategy.write_len,
                   in_flight = strategy.in_flight, fsync = strategy.fsync, "Upload strategy.");
            run(
                &conn,
                &sessions,
                &mut profile,
                &strategy,
                target,
                up,
                size,
                progress,
            )
            .await
        })
        .await;
    for s in &sessions {
        let _ = s.raw.close_session();
    }
    conn.close().await;
    match &res {
        Ok(d) => {
            let secs = started.elapsed().as_secs_f64();
            info!(remote_path = %d.remote_path, bytes = d.bytes, host_key = %d.host_key_sha256,
                  server = %d.server, fsync = d.fsync,
                  commit = d.commit.map(|c| c.as_str()).unwrap_or("found"),
                  verified = d.verified.as_str(),
                  secs, mib_per_s = (d.bytes as f64 / 1048576.0) / secs.max(1e-9),
                  "Delivery succeeded.")
        }
        Err(e) => {
            use crate::core::retry::Classify;
            warn!(host = %target.host, file = %up.final_name, run = %up.run_id,
                  class = e.class().as_str(), error = %e, "Delivery failed.")
        }
    }
    res
}

/// Opens the SFTP sessions a file of `size` bytes is uploaded over: the first, the
/// server's profile from it, the [`Strategy`], then the extra channels it allows (all at
/// once: at high RTT every sequential round trip counts). `[target] posix_rename = false`
/// takes the extension off every session, sidecars included. Used by deliveries and probe.
pub(crate) async fn open_sessions(
    conn: &Conn,
    target: &Target,
    size: u64,
    sessions: &mut Vec<Sftp>,
) -> Result<(ServerProfile, Strategy), SftpError> {
    let tune = |mut s: Sftp| {
        if !target.overrides.posix_rename {
            s.extensions.remove(POSIX_RENAME);
        }
        s
    };
    sessions.push(tune(conn.open_sftp(target.io_timeout).await?));
    let profile = conn.profile(&sessions[0]);
    let strategy = profile::strategy(&profile, &target.overrides, size);
    if strategy.channels > 1 {
        let opened = futures::future::join_all(
            (1..strategy.channels).map(|_| conn.open_sftp(target.io_timeout)),
        )
        .await;
        for s in opened {
            match s {
                Ok(s) => sessions.push(tune(s)),
                // The server may limit sessions per connection (MaxSessions): use fewer.
                Err(e) => debug!(error = %e, "Could not open an extra SFTP channel."),
            }
        }
    }
    for s in sessions.iter_mut() {
        s.write_len = strategy.write_len;
        s.read_len = strategy.read_len;
    }
    Ok((profile, strategy))
}

/// [`upload_part`] over all sessions; if writes on several channels fail with a server
/// error (ProFTPD-like buffer mix-ups, sequential-only back ends), the same upload goes
/// again on one channel and the host is remembered. Returns (fsync done, size the server
/// reports, channels used, why the channels were dropped).
#[allow(clippy::too_many_arguments)]
async fn upload_with_fallback(
    conn: &Conn,
    sessions: &[Sftp],
    profile: &mut ServerProfile,
    part: &str,
    up: &Upload,
    size: u64,
    strategy: &Strategy,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(bool, u64, usize, Option<String>), SftpError> {
    match upload_part(sessions, part, up, size, strategy, progress).await {
        Ok((fsync, actual)) => Ok((fsync, actual, sessions.len(), None)),
        Err(e) if sessions.len() > 1 && e.is_server_refusal() && !conn.handle.is_closed() => {
            warn!(server = %profile.banner, error = %e, "Writes on several channels failed; trying again on one channel.");
            learned::parallel_writes_failed(&conn.addr);
            profile.parallel_writes_ok = Some(false);
            let _ = sessions[0].remove_if_exists(part).await;
            let one = Strategy {
                channels: 1,
                ..*strategy
            };
            let (fsync, actual) =
                upload_part(&sessions[..1], part, up, size, &one, progress).await?;
            Ok((fsync, actual, 1, Some(e.to_string())))
        }
        Err(e) => Err(e),
    }
}

/// Tries whether the server's plain rename replaces an existing file (see
/// [`rename_replaces`]) and records the answer in the profile and for the host.
async fn learn_rename(
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

/// Lists `dir`, creating it first when allowed. `None` when the folder cannot be listed
/// (a write-only drop folder): names are then checked one by one.
async fn listing(s: &Sftp, target: &Target) -> Result<Option<Vec<String>>, SftpError> {
    let dir = target.remote_dir.as_str();
    match s.list(dir).await {
        Ok(names) => Ok(Some(names)),
        Err(e) => match e.status_code() {
            Some(StatusCode::NoSuchFile) | Some(StatusCode::NoSuchPath) => {
                let created = s.ensure_dir(dir, target.create_dirs).await?;
                if created {
                    Ok(Some(Vec::new()))
                } else {
                    Ok(s.list(dir).await.ok())
                }
            }
            Some(StatusCode::PermissionDenied) => {
                s.ensure_dir(dir, false).await?;
                warn!(
                    dir,
                    "The remote folder cannot be listed; temp files of earlier attempts cannot be found there."
                );
                Ok(None)
            }
            _ => Err(e),
        },
    }
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

#[allow(clippy::too_many_arguments)]
async fn run(
    conn: &Conn,
    sessions: &[Sftp],
    profile: &mut ServerProfile,
    strategy: &Strategy,
    target: &Target,
    up: &Upload,
    size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Delivered, SftpError> {
    let dir = target.remote_dir.as_str();
    let fin = up.final_name.as_str();
    let part = join(dir, &part_name(fin, &up.run_id));
    let s = &sessions[0];
    let listing = listing(s, target).await?;
    let present = |name: String| {
        let listed = listing.as_ref().map(|n| n.contains(&name));
        async move {
            match listed {
                Some(b) => Ok(b),
                None => s.exists(&join(dir, &name)).await,
            }
        }
    };
    let names = listing.clone().unwrap_or_default();
    clean_litter(s, dir, up, &names).await?;
    let delivered = |final_name: String,
                     commit: Option<CommitPath>,
                     fsync: bool,
                     verified: Verify,
                     sidecars: Vec<String>| Delivered {
        remote_path: join(dir, &final_name),
        final_name,
        bytes: size,
        host_key_sha256: conn.host_key_sha256.clone(),
        fsync,
        posix_rename: commit == Some(CommitPath::PosixRename),
        commit,
        server: conn.banner.clone(),
        verified,
        sidecars,
    };

    // An earlier attempt of this artifact may have committed and then died before its
    // sidecars: with `fail` or `version`, the identical file counts as delivered (no
    // conflict, no duplicate version); only the sidecars are (re)written.
    if up.if_exists != IfExists::Overwrite {
        let mut candidates = vec![fin.to_string()];
        if up.if_exists == IfExists::Version {
            let mut v: Vec<(u32, &String)> = names
                .iter()
                .filter_map(|n| version_of(fin, n).map(|k| (k, n)))
                .collect();
            v.sort();
            candidates.extend(v.into_iter().map(|(_, n)| n.clone()));
        }
        for name in candidates {
            if !present(name.clone()).await? {
                continue;
            }
            if let Some(verified) = same_file(s, dir, &name, size, up).await? {
                info!(path = %join(dir, &name), "The artifact is already there from an earlier attempt; completing its sidecars.");
                let sidecars = put_sidecars(s, dir, &name, up).await?;
                return Ok(delivered(name, None, false, verified, sidecars));
            }
        }
    }
    if up.if_exists == IfExists::Fail && present(fin.to_string()).await? {
        return Err(SftpError::FinalExists {
            path: join(dir, fin),
        });
    }
    // How the temp file will become the final one, decided before any byte is sent: a
    // server with no race-free no-clobber commit fails here, permanently, with nothing
    // written (unless the operator accepted a checked rename).
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

    let written =
        upload_with_fallback(conn, sessions, profile, &part, up, size, strategy, progress).await;
    let (fsync, actual) = match written {
        Ok((fsync, actual, _, _)) => (fsync, actual),
        Err(e) => return Err(cleanup_after(s, &part, e).await),
    };
    if actual != size {
        let e = SftpError::SizeMismatch {
            path: part.clone(),
            expected: size,
            actual,
        };
        return Err(cleanup_after(s, &part, e).await);
    }
    // Read-back on the complete temp file, before the commit: a mismatch then leaves
    // nothing under the final name (the rename does not change the bytes).
    if up.verify == Verify::ReadBack {
        let (sum, n) = match s.hash_remote(&part, size).await {
            Ok(x) => x,
            Err(e) => return Err(cleanup_after(s, &part, e).await),
        };
        if n != size || !sum.eq_ignore_ascii_case(&up.sha256_hex) {
            let e = SftpError::ChecksumMismatch {
                path: part.clone(),
                expected: up.sha256_hex.to_ascii_lowercase(),
                actual: sum,
            };
            return Err(cleanup_after(s, &part, e).await);
        }
        debug!(path = %part, sha256 = %sum, "Read-back verified.");
    }

    // Commit.
    let final_name = match up.if_exists {
        IfExists::Fail => {
            let dst = join(dir, fin);
            if let Err(e) =
                commit_no_clobber_learning(conn, s, profile, target, up, commit, &part, &dst, size)
                    .await
            {
                return Err(cleanup_after(s, &part, e).await);
            }
            fin.to_string()
        }
        IfExists::Overwrite => {
            let dst = join(dir, fin);
            let aside = join(dir, &format!(".{fin}.{}.old", up.run_id));
            let r = match commit {
                CommitPath::PosixRename => s.posix_rename(&part, &dst).await,
                _ => s.replace_aside(&part, &dst, &aside).await,
            };
            if let Err(e) = r {
                return Err(cleanup_after(s, &part, e).await);
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
                    conn, s, profile, target, up, commit, &part, &dst, size,
                )
                .await
                {
                    Ok(()) => {
                        chosen = Some(name);
                        break;
                    }
                    // Lost a race for this name: try the next one.
                    Err(SftpError::FinalExists { .. }) => continue,
                    Err(e) => return Err(cleanup_after(s, &part, e).await),
                }
            }
            match chosen {
                Some(n) => n,
                None => {
                    let e = SftpError::NoFreeVersion {
                        path: join(dir, fin),
                        tried: 999,
                    };
                    return Err(cleanup_after(s, &part, e).await);
                }
            }
        }
    };
    debug!(path = %join(dir, &final_name), commit = commit.as_str(), "Committed.");

    let sidecars = put_sidecars(s, dir, &final_name, up).await?;
    Ok(delivered(
        final_name,
        Some(commit),
        fsync,
        up.verify,
        sidecars,
    ))
}

/// Moves the temp file to `dst` without ever replacing a file there. A taken name is
/// [`SftpError::FinalExists`] with the other file untouched and the temp file still there.
async fn commit_no_clobber(
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
                warn!(path = part, error = %e, "Committed, but the temp name could not be removed; the next delivery removes it.");
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

/// After a failed step: remove the temp file when the session still works (the next
/// attempt removes it otherwise) and hand back the error.
async fn cleanup_after(s: &Sftp, part: &str, e: SftpError) -> SftpError {
    if e.class_is_connection_alive() {
        if let Err(rm) = s.remove_if_exists(part).await {
            debug!(path = part, error = %rm, "Could not remove the temp file after a failure.");
        }
    }
    e
}

/// The test upload of [`super::probe`] (see there). Every temp name it uses is removed at
/// the end, whatever happened (a probe cut off mid-way can leave `.regdrop-probe.*.tmp`).
pub(crate) async fn probe_test(
    conn: &Conn,
    sessions: &[Sftp],
    prof: &mut ServerProfile,
    strategy: &Strategy,
    target: &Target,
) -> Result<super::ProbeTest, SftpError> {
    use sha2::Digest;
    let dir = target.remote_dir.as_str();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag = format!("{}-{nanos}", std::process::id());
    let name = |what: &str| join(dir, &format!(".regdrop-probe.{tag}.{what}.tmp"));
    let (part, dst, other) = (name("data"), name("final"), name("other"));
    // Random bytes (nothing from the register), in a local temp file like an artifact.
    let size = super::PROBE_BYTES;
    let mut data = vec![0u8; size as usize];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut data);
    let sha = hex::encode(sha2::Sha256::digest(&data));
    let local = tempfile::NamedTempFile::new().map_err(|e| SftpError::Local {
        path: std::env::temp_dir(),
        source: e,
    })?;
    std::fs::write(local.path(), &data).map_err(|e| SftpError::Local {
        path: local.path().to_path_buf(),
        source: e,
    })?;
    drop(data);
    let up = Upload {
        local: local.path().to_path_buf(),
        final_name: "regdrop-probe".into(),
        run_id: tag.clone(),
        if_exists: IfExists::Fail,
        verify: Verify::ReadBack,
        sha256_hex: sha.clone(),
        manifest: None,
        done_marker: false,
    };
    let s = &sessions[0];
    let result = async {
        let t0 = std::time::Instant::now();
        let (fsync, actual, channels, parallel_failed) =
            upload_with_fallback(conn, sessions, prof, &part, &up, size, strategy, &|_| {}).await?;
        let secs = t0.elapsed().as_secs_f64();
        if actual != size {
            return Err(SftpError::SizeMismatch {
                path: part.clone(),
                expected: size,
                actual,
            });
        }
        let (sum, n) = s.hash_remote(&part, size).await?;
        let mode = s
            .stat(&part)
            .await?
            .and_then(|a| a.permissions)
            .map(|m| m & 0o7777);
        let replaces = learn_rename(conn, s, prof, dir, "regdrop-probe", &tag).await?;
        let no_clobber_refuses =
            match profile::commit_path(prof, &target.overrides, Want::NoClobber) {
                Ok(c) => {
                    commit_no_clobber(s, c, &part, &dst, size).await?;
                    s.put_plain(&other, b"someone else").await?;
                    Some(match commit_no_clobber(s, c, &other, &dst, 12).await {
                        Err(SftpError::FinalExists { .. }) => true,
                        Ok(()) => false,
                        Err(e) => return Err(e),
                    })
                }
                Err(_) => None,
            };
        Ok(super::ProbeTest {
            bytes: size,
            channels,
            parallel_failed,
            mib_per_s: size as f64 / 1048576.0 / secs.max(1e-9),
            read_back_ok: n == size && sum.eq_ignore_ascii_case(&sha),
            fsync,
            mode,
            rename_replaces: replaces,
            no_clobber_refuses,
        })
    }
    .await;
    if !conn.handle.is_closed() {
        for p in [&part, &dst, &other] {
            let _ = s.remove_if_exists(p).await;
        }
    }
    result
}

/// Tries whether a plain rename onto an existing file replaces it, with two tiny temp
/// files that are removed again (and that the next attempt would remove as litter).
async fn rename_replaces(s: &Sftp, dir: &str, fin: &str, run: &str) -> Result<bool, SftpError> {
    let a = join(dir, &format!(".{fin}.rename-test-a.{run}.part"));
    let b = join(dir, &format!(".{fin}.rename-test-b.{run}.part"));
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

/// The manifest as uploaded beside `final_name`: its `file` names the file it describes
/// (a versioned name when `if_exists = "version"` picked one).
fn manifest_for(m: &[u8], final_name: &str, requested: &str) -> Vec<u8> {
    if final_name == requested {
        return m.to_vec();
    }
    match serde_json::from_slice::<serde_json::Value>(m) {
        Ok(mut v) if v.get("file").is_some_and(|f| f.is_string()) => {
            v["file"] = final_name.into();
            let mut out = serde_json::to_vec_pretty(&v).expect("json");
            out.push(b'\n');
            out
        }
        _ => m.to_vec(),
    }
}

/// The sidecar files of `final_name` and their content: checksum, manifest, done marker.
pub(crate) fn sidecar_files(up: &Upload, final_name: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut files: Vec<(&str, Vec<u8>)> = vec![(
        SIDECARS[0],
        format!("{}  {}\n", up.sha256_hex.to_ascii_lowercase(), final_name).into_bytes(),
    )];
    if let Some(m) = &up.manifest {
        files.push((SIDECARS[1], manifest_for(m, final_name, &up.final_name)));
    }
    if up.done_marker {
        files.push((SIDECARS[2], Vec::new()));
    }
    files
}

/// Sidecars of `final_name`, each via temp + rename: checksum, manifest, done-marker last.
async fn put_sidecars(
    s: &Sftp,
    dir: &str,
    final_name: &str,
    up: &Upload,
) -> Result<Vec<String>, SftpError> {
    let fin = up.final_name.as_str();
    let mut sidecars = Vec::new();
    for (suffix, data) in sidecar_files(up, final_name) {
        let name = format!("{final_name}{suffix}");
        let tmp = join(dir, &format!(".{fin}{suffix}.{}.part", up.run_id));
        s.put_small(&join(dir, &name), &tmp, &data).await?;
        sidecars.push(name);
    }
    Ok(sidecars)
}

impl SftpError {
    /// Whether the SSH/SFTP session is probably still usable after this error.
    pub(crate) fn class_is_connection_alive(&self) -> bool {
        matches!(
            self,
            SftpError::Remote { code: Some(_), .. }
                | SftpError::Local { .. }
                | SftpError::LocalChanged { .. }
                | SftpError::SizeMismatch { .. }
                | SftpError::ChecksumMismatch { .. }
                | SftpError::FinalExists { .. }
                | SftpError::NoFreeVersion { .. }
        )
    }

    /// The server answered a request with an error (or its session ended on a packet
    /// the client could not accept), as opposed to a lost connection or a local problem.
    fn is_server_refusal(&self) -> bool {
        matches!(self, SftpError::Remote { code: Some(_), .. })
            || matches!(self, SftpError::Remote { code: None, message, .. } if message.contains("sftp session ended"))
    }
}

/// Uploads the local file to `part` over all `sessions`; returns whether fsync was done and
/// the size the server reports for the file.
async fn upload_part(
    sessions: &[Sftp],
    part: &str,
    up: &Upload,
    size: u64,
    strategy: &Strategy,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(bool, u64), SftpError> {
    // All handles open at once: the first creates and truncates, the others only create
    // (no truncate), so their order does not matter; no write starts before all are open.
    let opens = futures::future::join_all(sessions.iter().enumerate().map(|(i, s)| {
        let flags = if i == 0 {
            OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE
        } else {
            OpenFlags::CREATE | OpenFlags::WRITE
        };
        s.raw.open(part, flags, attrs_0600())
    }))
    .await;
    let mut used = Vec::new();
    let mut handles = Vec::new();
    let mut first_err = None;
    for (i, (s, r)) in sessions.iter().zip(opens).enumerate() {
        match r {
            Ok(h) => {
                used.push(s);
                handles.push(h.handle);
            }
            Err(e) if i == 0 => first_err = Some(SftpError::remote("open", part, e)),
            // A server that refuses a second handle on the file (locking) gets fewer channels.
            Err(e) => debug!(error = %e, "Extra channel cannot open the temp file; not used."),
        }
    }
    if let Some(e) = first_err {
        for (s, h) in used.iter().zip(handles) {
            let _ = s.raw.close(h).await;
        }
        return Err(e);
    }
    let sessions = used;

    let t0 = std::time::Instant::now();
    let written = write_all(&sessions, &handles, part, up, size, strategy, progress).await;
    let t1 = std::time::Instant::now();
    let mut fsync = false;
    let mut actual = 0;
    let mut res = written.map(|_| ());
    if res.is_ok() {
        // Every write is acknowledged: fsync and fstat in the same round trip.
        let (f, st) = futures::future::join(
            async {
                if strategy.fsync {
                    sessions[0].fsync(&handles[0], part).await
                } else {
                    Ok(false)
                }
            },
            sessions[0].raw.fstat(handles[0].as_str()),
        )
        .await;
        match (f, st) {
            (Ok(f), Ok(a)) => {
                fsync = f;
                actual = a.attrs.size.unwrap_or(0);
            }
            (Err(e), _) => res = Err(e),
            (_, Err(e)) => res = Err(SftpError::remote("fstat", part, e)),
        }
    }
    debug!(
        path = part,
        channels = sessions.len(),
        write_secs = (t1 - t0).as_secs_f64(),
        fsync_secs = t1.elapsed().as_secs_f64(),
        "Data written."
    );
    // Close every handle and check it: a close can report a late write error.
    let closes =
        futures::future::join_all(sessions.iter().zip(handles).map(|(s, h)| s.raw.close(h))).await;
    for closed in closes {
        if res.is_ok() {
            if let Err(e) = closed {
                res = Err(SftpError::remote("close", part, e));
            }
        }
    }
    res.map(|_| (fsync, actual))
}

/// Sends the file as WRITE requests of `strategy.write_len` bytes, in file order, spread
/// round-robin over the sessions, with at most `in_flight` requests and `in_flight_bytes`
/// bytes outstanding per session.
async fn write_all(
    sessions: &[&Sftp],
    handles: &[String],
    part: &str,
    up: &Upload,
    size: u64,
    strategy: &Strategy,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), SftpError> {
    const BLOCK: usize = 1 << 20;
    let local = |e| SftpError::Local {
        path: up.local.clone(),
        source: e,
    };
    let mut file = tokio::fs::File::open(&up.local).await.map_err(local)?;
    let chunk = sessions
        .iter()
        .map(|s| s.write_chunk())
        .min()
        .unwrap_or(profile::SAFE_IO)
        .min(strategy.write_len)
        .max(1);
    let limit = strategy.in_flight.max(1) * sessions.len();
    let byte_limit = (strategy.in_flight_bytes.max(chunk) * sessions.len()) as u64;
    let mut in_flight = 0u64;
    let n = sessions.len();
    let mut block = vec![0u8; BLOCK];
    let (mut filled, mut pos) = (0usize, 0usize);
    let mut offset = 0u64;
    let mut acked = 0u64;
    let mut i = 0usize;
    let mut q = FuturesUnordered::new();
    // The bytes sent, hashed in file order: a spool file that changes during the upload
    // never reaches the commit.
    let mut sent = <sha2::Sha256 as sha2::Digest>::new();
    loop {
        while q.len() < limit && in_flight + chunk as u64 <= byte_limit && offset < size {
            if pos == filled {
                let want = BLOCK.min((size - offset) as usize);
                filled = 0;
                pos = 0;
                while filled < want {
                    let got = file.read(&mut block[filled..want]).await.map_err(local)?;
                    if got == 0 {
                        return Err(SftpError::LocalChanged {
                            path: up.local.clone(),
                            detail: "it shrank while it was being uploaded".into(),
                        });
                    }
                    filled += got;
                }
                sha2::Digest::update(&mut sent, &block[..filled]);
            }
            let len = chunk.min(filled - pos);
            let data = block[pos..pos + len].to_vec();
            pos += len;
            let (s, h) = (sessions[i % n], handles[i % n].as_str());
            i += 1;
            let off = offset;
            offset += len as u64;
            in_flight += len as u64;
            q.push(async move { (len, s.raw.write(h, off, data).await) });
        }
        match q.next().await {
            None => break,
            Some((len, Ok(_))) => {
                in_flight -= len as u64;
                acked += len as u64;
                progress(acked);
            }
            Some((_, Err(e))) => return Err(SftpError::remote("write", part, e)),
        }
    }
    let sum = hex::encode(sha2::Digest::finalize(sent));
    if !sum.eq_ignore_ascii_case(&up.sha256_hex) {
        return Err(SftpError::LocalChanged {
            path: up.local.clone(),
            detail: format!(
                "the bytes sent hash to {sum}, not the sealed {}",
                up.sha256_hex
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("a.dsv.age").is_ok());
        for bad in ["", ".a", "a/b", "..", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_run_id("run-1_X").is_ok());
        assert!(check_run_id("a.b").is_err());
        assert_eq!(versioned_name("a.dsv.age", 2), "a.v2.dsv.age");
        assert_eq!(versioned_name("a", 3), "a.v3");
        assert_eq!(version_of("a.dsv.age", "a.v12.dsv.age"), Some(12));
        assert_eq!(version_of("a.dsv.age", "a.v1.dsv.age"), None);
        assert_eq!(version_of("a.dsv.age", "a.dsv.age"), None);
        assert_eq!(version_of("a", "a.v2"), Some(2));
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
        assert_eq!(
            owner_of("parkering-nord-20261130T050000Z"),
            Some("parkering-nord")
        );
        assert_eq!(owner_of("r1"), None);
    }

    #[test]
    fn versioned_manifest_names_its_file() {
        let m = br#"{"file": "a.dsv.age", "bytes": 3}"#;
        let v: serde_json::Value =
            serde_json::from_slice(&manifest_for(m, "a.v2.dsv.age", "a.dsv.age")).unwrap();
        assert_eq!(v["file"], "a.v2.dsv.age");
        assert_eq!(v["bytes"], 3);
        assert_eq!(manifest_for(m, "a.dsv.age", "a.dsv.age"), m.to_vec());
    }
}
