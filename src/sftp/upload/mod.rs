//! [`deliver`]: one artifact to its final name, by the protocol described in [`super`].
//! This file runs the steps in order; each step is a file: [`names`] (temp, versioned,
//! sidecar and aside names), [`folder`] (listing, litter of earlier attempts, an earlier
//! delivery of this very artifact), [`data`] (the sessions, the pipelined writes, verify
//! before commit), [`commit`] (choosing and doing the no-clobber, replace or versioned
//! commit) and [`sidecars`].

pub(crate) mod commit;
pub(crate) mod data;
mod folder;
pub(crate) mod names;
pub(crate) mod sidecars;
pub(crate) mod stream;

pub(crate) use folder::clean_litter;

use super::connect::{self, Conn, Sftp};
use super::profile::{CommitPath, ServerProfile, Strategy};
use super::remote::join;
use super::{Delivered, IfExists, SftpError, Target, Upload, Verify};
use commit::{choose_commit, commit_final};
use data::{open_sessions, write_temp, Reader};
use folder::Folder;
use names::{check_upload, part_name};
use sidecars::put_sidecars;
use tracing::{debug, info, warn};

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
    log_outcome(&res, target, up, started.elapsed().as_secs_f64());
    res
}

/// The one log line of an upload's end, whichever way the file went up (a finished spool
/// file here, a growing one in [`stream`]).
fn log_outcome(res: &Result<Delivered, SftpError>, target: &Target, up: &Upload, secs: f64) {
    match res {
        Ok(d) => {
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
                  class = e.class().as_str(), error = %crate::core::errors::Chain(e), "Delivery failed.")
        }
    }
}

/// How a delivered file got there, for its [`Delivered`].
struct How {
    /// `None` when an earlier attempt's finished file was found.
    commit: Option<CommitPath>,
    fsync: bool,
    verified: Verify,
}

fn delivered(
    conn: &Conn,
    dir: &str,
    size: u64,
    final_name: String,
    how: How,
    sidecars: Vec<String>,
) -> Delivered {
    Delivered {
        remote_path: join(dir, &final_name),
        final_name,
        bytes: size,
        host_key_sha256: conn.host_key_sha256.clone(),
        fsync: how.fsync,
        posix_rename: how.commit == Some(CommitPath::PosixRename),
        commit: how.commit,
        server: conn.banner.clone(),
        verified: how.verified,
        sidecars,
    }
}

/// The steps of [`deliver`] once the sessions are open (see [`super`], steps 4 to 8).
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
    let folder = Folder::read(s, target).await?;
    clean_litter(s, dir, up, folder.names()).await?;

    if let Some((name, verified)) = folder.earlier_delivery(s, up, size).await? {
        info!(path = %join(dir, &name), "The artifact is already there from an earlier attempt; completing its sidecars.");
        let sidecars = put_sidecars(s, dir, &name, up).await?;
        let how = How {
            commit: None,
            fsync: false,
            verified,
        };
        return Ok(delivered(conn, dir, size, name, how, sidecars));
    }
    if up.if_exists == IfExists::Fail && folder.has(s, fin).await? {
        return Err(SftpError::FinalExists {
            path: join(dir, fin),
        });
    }
    let commit = choose_commit(conn, s, profile, target, up).await?;
    let mut reader = Reader::complete(&up.local, size, &up.sha256_hex);
    let (fsync, ..) = write_temp(
        conn,
        sessions,
        profile,
        &part,
        up,
        &mut reader,
        strategy,
        progress,
    )
    .await?;
    let final_name = commit_final(conn, s, profile, target, up, commit, &part, size).await?;

    let sidecars = put_sidecars(s, dir, &final_name, up).await?;
    let how = How {
        commit: Some(commit),
        fsync,
        verified: up.verify,
    };
    Ok(delivered(conn, dir, size, final_name, how, sidecars))
}
