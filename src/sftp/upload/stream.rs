//! Upload while sealing: [`stage_growing`] writes a local file that is still being written
//! (a [`Growing`] spool file) to its temp name as it grows, and stops at the verified,
//! fsynced temp file; [`Staged::commit`] then does the rest of [`super::deliver`]'s protocol
//! (no-clobber commit, sidecars) once the caller has recorded what was sealed. The steps
//! and their checks are [`super::deliver`]'s; only the order differs: the size and SHA-256
//! the temp file is checked against are the file's final ones, known when it is complete.

use super::super::connect::{self, Conn, Sftp};
use super::super::profile::{CommitPath, ServerProfile};
use super::super::remote::join;
use super::super::{Delivered, Growing, IfExists, SftpError, Target, Upload};
use super::commit::{choose_commit, commit_final};
use super::data::{open_sessions, write_temp, Reader};
use super::folder::{clean_litter, Folder};
use super::names::{check_name, check_run_id, part_name};
use super::sidecars::put_sidecars;
use super::{delivered, How};
use tracing::{debug, info, warn};

/// A temp file written, fsynced and size-checked against the complete local file, on a
/// connection kept open for [`Staged::commit`]. Dropping it (or [`Staged::abandon`])
/// commits nothing; the temp file is removed by `abandon`, else by the next attempt.
pub struct Staged {
    conn: Conn,
    sessions: Vec<Sftp>,
    profile: ServerProfile,
    target: Target,
    commit: CommitPath,
    part: String,
    fsync: bool,
    size: u64,
    sha256: String,
    started: std::time::Instant,
}

/// Connects, checks the folder (litter of earlier attempts removed; with `if_exists =
/// "fail"` a file under the final name is an error before any byte is sent), chooses the
/// commit, then writes `.NAME.RUN.part` from `source` as it grows until it is complete,
/// checks the size the server reports and the SHA-256 of the bytes sent (and, with
/// read-back, of the bytes read back) against the complete file's, with fsync. A failure
/// of the writer ([`super::super::Growth::Failed`]) stops the upload and removes the temp
/// file. `size_hint` (the expected size) picks the strategy; `up.sha256_hex` and
/// `up.manifest` are not used here (they are given to [`Staged::commit`]).
pub async fn stage_growing(
    target: &Target,
    up: &Upload,
    source: Growing,
    size_hint: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Staged, SftpError> {
    check_name(&up.final_name)?;
    check_run_id(&up.run_id)?;
    let started = std::time::Instant::now();
    info!(host = %target.host, port = target.port, remote_dir = %target.remote_dir,
          file = %up.final_name, run = %up.run_id, "Delivery starting while the file is sealed.");
    let mut reader = Reader::growing(&up.local, source);
    let conn = connect::connect(target).await?;
    let mut sessions: Vec<Sftp> = Vec::new();
    let res = conn
        .guard(async {
            let (mut profile, strategy) =
                open_sessions(&conn, target, size_hint, &mut sessions).await?;
            debug!(server = %profile.banner, family = profile.family.as_str(),
                   channels = sessions.len(), write_len = strategy.write_len,
                   in_flight = strategy.in_flight, fsync = strategy.fsync, "Upload strategy.");
            let dir = target.remote_dir.as_str();
            let fin = up.final_name.as_str();
            let part = join(dir, &part_name(fin, &up.run_id));
            let s = &sessions[0];
            let folder = Folder::read(s, target).await?;
            clean_litter(s, dir, up, folder.names()).await?;
            // A file sealed just now cannot be on the server yet: no look for an earlier
            // delivery of it, only for a conflict.
            if up.if_exists == IfExists::Fail && folder.has(s, fin).await? {
                return Err(SftpError::FinalExists {
                    path: join(dir, fin),
                });
            }
            let commit = choose_commit(&conn, s, &mut profile, target, up).await?;
            let (fsync, size, sha256) = write_temp(
                &conn,
                &sessions,
                &mut profile,
                &part,
                up,
                &mut reader,
                &strategy,
                progress,
            )
            .await?;
            Ok((profile, commit, part, fsync, size, sha256))
        })
        .await;
    match res {
        Ok((profile, commit, part, fsync, size, sha256)) => Ok(Staged {
            conn,
            sessions,
            profile,
            target: target.clone(),
            commit,
            part,
            fsync,
            size,
            sha256,
            started,
        }),
        Err(e) => {
            close(&sessions);
            conn.close().await;
            use crate::core::retry::Classify;
            if let SftpError::SourceStopped { .. } = e {
                // The writer's failure is the caller's to report.
                debug!(file = %up.final_name, run = %up.run_id, error = %crate::core::errors::Chain(&e), "Upload stopped with the sealing.");
                return Err(e);
            }
            warn!(host = %target.host, file = %up.final_name, run = %up.run_id,
                  class = e.class().as_str(), error = %crate::core::errors::Chain(&e), "Delivery failed.");
            Err(e)
        }
    }
}

/// Ends the SFTP sessions (the connection is closed after).
fn close(sessions: &[Sftp]) {
    for s in sessions {
        let _ = s.raw.close_session();
    }
}

impl Staged {
    /// The size of the temp file written (the complete local file's).
    pub fn bytes(&self) -> u64 {
        self.size
    }

    /// The SHA-256 (hex) of the bytes written.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Commits the temp file under `up.final_name` per `up.if_exists` and writes the
    /// sidecars (`up.sha256_hex` must be what was written, `up.manifest` is uploaded), as
    /// [`super::deliver`] does after its upload.
    pub async fn commit(mut self, up: &Upload) -> Result<Delivered, SftpError> {
        let res = if up.sha256_hex.eq_ignore_ascii_case(&self.sha256) {
            let (conn, target, sessions) = (&self.conn, &self.target, &self.sessions);
            let (profile, part, size) = (&mut self.profile, &self.part, self.size);
            let (commit, fsync) = (self.commit, self.fsync);
            conn.guard(async {
                let s = &sessions[0];
                let dir = target.remote_dir.as_str();
                let final_name =
                    commit_final(conn, s, profile, target, up, commit, part, size).await?;
                let sidecars = put_sidecars(s, dir, &final_name, up).await?;
                let how = How {
                    commit: Some(commit),
                    fsync,
                    verified: up.verify,
                };
                Ok(delivered(conn, dir, size, final_name, how, sidecars))
            })
            .await
        } else {
            Err(SftpError::LocalChanged {
                path: up.local.clone(),
                detail: format!(
                    "it was sealed as {}, the upload sent {}",
                    up.sha256_hex, self.sha256
                ),
            })
        };
        if res.is_err() && !self.conn.handle.is_closed() {
            let _ = self.sessions[0].remove_if_exists(&self.part).await;
        }
        close(&self.sessions);
        let secs = self.started.elapsed().as_secs_f64();
        self.conn.close().await;
        super::log_outcome(&res, &self.target, up, secs);
        res
    }

    /// Commits nothing: removes the temp file (when the connection still works) and
    /// disconnects.
    pub async fn abandon(self) {
        if !self.conn.handle.is_closed() {
            if let Err(e) = self.sessions[0].remove_if_exists(&self.part).await {
                debug!(path = %self.part, error = %e, "Could not remove the temp file.");
            }
        }
        close(&self.sessions);
        self.conn.close().await;
    }
}
