//! [`probe`]: can we log in and write there, and what would a delivery do? The test
//! upload takes the path a large delivery takes (its strategy, the fallback to one channel,
//! read-back, the no-clobber commit onto a free and onto a taken name, a plain rename onto
//! an existing file) and removes everything it made.

use super::connect::{self, Conn, Sftp};
use super::profile::{self, CommitPath, ServerProfile, Strategy, Want};
use super::remote::{join, MissingDir};
use super::upload::commit::{commit_no_clobber, learn_rename};
use super::upload::data::{open_sessions, upload_with_fallback, Reader, Written};
use super::{IfExists, SftpError, Target, Upload, Verify};

/// Bytes of [`probe`]'s test file: large enough to be written the way a large delivery is
/// (several channels where the server takes them).
pub const PROBE_BYTES: u64 = profile::MULTI_CHANNEL_FROM + (1 << 20);

/// Result of [`probe`]: what the server is, what it did when tried, and what a delivery
/// would do there. Every string from the server is cleaned ([`profile::clean`]).
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub host_key_sha256: String,
    pub profile: ServerProfile,
    /// SFTP protocol extensions offered by the server, sorted: (name, data).
    pub extensions: Vec<(String, String)>,
    pub remote_dir: String,
    /// False only when the folder is missing and `create_dirs` would create it.
    pub remote_dir_exists: bool,
    /// A temp file was created and removed in `remote_dir`.
    pub writable: bool,
    /// The test upload (empty when the folder is missing): what was written and learned.
    pub test: Option<ProbeTest>,
    /// The strategy a large delivery would use (after what the test learned).
    pub strategy: Strategy,
    /// The commit path `fail` / `version` would use, or why there is none.
    pub commit_no_clobber: Result<CommitPath, String>,
    /// The commit path `overwrite` would use.
    pub commit_replace: CommitPath,
}

/// What [`probe`]'s test upload found.
#[derive(Debug, Clone)]
pub struct ProbeTest {
    pub bytes: u64,
    /// Channels used by the upload that worked.
    pub channels: usize,
    /// Set when writes on several channels failed (and one channel was used instead).
    pub parallel_failed: Option<String>,
    pub mib_per_s: f64,
    pub read_back_ok: bool,
    pub fsync: bool,
    /// Mode the server gave the temp file created with 0600 (None: not reported).
    pub mode: Option<u32>,
    /// Whether a plain rename onto an existing file replaced it.
    pub rename_replaces: bool,
    /// Whether the no-clobber commit refused an existing name, as it must (None: no
    /// no-clobber path to test).
    pub no_clobber_refuses: Option<bool>,
}

/// Connects, checks the host key, logs in, learns the server, and tests the path a large
/// delivery takes: a temp file of [`PROBE_BYTES`] written with the delivery's strategy
/// (falling back to one channel as a delivery would), read back and compared, its mode
/// checked, a no-clobber commit tried onto a free and onto a taken name, a plain rename
/// onto an existing file tried; everything it created is removed again.
pub async fn probe(target: &Target) -> Result<ProbeReport, SftpError> {
    let conn = connect::connect(target).await?;
    let mut sessions: Vec<Sftp> = Vec::new();
    let res = conn
        .guard(async {
            let (mut prof, strategy) =
                open_sessions(&conn, target, PROBE_BYTES, &mut sessions).await?;
            let dir = target.remote_dir.as_str();
            let exists = match sessions[0].ensure_dir(dir, MissingDir::Refuse).await {
                Ok(_) => true,
                Err(SftpError::RemoteDirMissing { .. }) if target.create_dirs => false,
                Err(e) => return Err(e),
            };
            let mut test = None;
            if exists {
                test = Some(probe_test(&conn, &sessions, &mut prof, &strategy, target).await?);
            }
            let extensions = prof
                .extensions
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(ProbeReport {
                host_key_sha256: conn.host_key_sha256.clone(),
                strategy: profile::strategy(&prof, &target.overrides, PROBE_BYTES),
                commit_no_clobber: profile::commit_path(&prof, &target.overrides, Want::NoClobber),
                commit_replace: profile::commit_path(&prof, &target.overrides, Want::Replace)
                    .unwrap_or(CommitPath::RenameAside),
                profile: prof,
                extensions,
                remote_dir: dir.to_string(),
                remote_dir_exists: exists,
                writable: test.is_some(),
                test,
            })
        })
        .await;
    for s in &sessions {
        let _ = s.raw.close_session();
    }
    conn.close().await;
    res
}

/// The test upload of [`probe`] (see there). Every temp name it uses is removed at
/// the end, whatever happened (a probe cut off mid-way can leave `.regdrop-probe.*.tmp`).
async fn probe_test(
    conn: &Conn,
    sessions: &[Sftp],
    prof: &mut ServerProfile,
    strategy: &Strategy,
    target: &Target,
) -> Result<ProbeTest, SftpError> {
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
    let size = PROBE_BYTES;
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
        run_id: tag.as_str().into(),
        if_exists: IfExists::Fail,
        verify: Verify::ReadBack,
        sha256_hex: sha.clone(),
        manifest: None,
        done_marker: false,
    };
    let s = &sessions[0];
    let result = async {
        let t0 = std::time::Instant::now();
        let Written {
            fsync,
            size: actual,
            channels,
            parallel_failed,
        } = upload_with_fallback(
            conn,
            sessions,
            prof,
            &part,
            &up,
            &mut Reader::complete(&up.local, size, &up.sha256_hex),
            strategy,
            &|_| {},
        )
        .await?;
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
        Ok(ProbeTest {
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
