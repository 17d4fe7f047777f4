//! Crash recovery: is this artifact already on the server ([`find_delivered`]), and
//! finishing a delivery that died between its commit and its sidecars
//! ([`complete_delivered`]).

use super::connect::{self, Sftp};
use super::remote::join;
use super::upload::clean_litter;
use super::upload::names::{check_name, temp_name, version_of, SIDECARS};
use super::upload::sidecars::sidecar_files;
use super::{Delivered, SftpError, Target, Upload, Verify};
use tracing::info;

/// What to do with a file of the artifact's size that has no `.sha256` sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bare {
    /// Skip it: only a sidecar naming the checksum counts.
    Skip,
    /// Hash it on the server and accept it when the content matches.
    Hash,
}

/// What the server holds under a final name (or a versioned name of it) with the
/// artifact's size, as crash recovery needs to know it.
enum Holding {
    /// Its `.sha256` sidecar names this artifact's checksum.
    Receipted(String),
    /// No sidecar, but the content hashes to the artifact's checksum.
    Unreceipted(String),
}

/// Looks for this artifact (size `bytes`, SHA-256 `sha`) under `final_name` or a versioned
/// name of it; a file without a sidecar is hashed on the server only with [`Bare::Hash`].
async fn find_holding(
    s: &Sftp,
    dir: &str,
    final_name: &str,
    bytes: u64,
    sha: &str,
    bare: Bare,
) -> Result<Option<Holding>, SftpError> {
    if !s.stat(dir).await?.is_some_and(|a| a.is_dir()) {
        return Ok(None);
    }
    let mut names = s.list(dir).await?;
    names.sort();
    let mut candidates = vec![final_name.to_string()];
    candidates.extend(
        names
            .into_iter()
            .filter(|n| version_of(final_name, n).is_some()),
    );
    let sha = sha.to_ascii_lowercase();
    for name in candidates {
        let path = join(dir, &name);
        let Some(a) = s.stat(&path).await? else {
            continue;
        };
        if a.size != Some(bytes) {
            continue;
        }
        let line = format!("{sha}  {name}");
        match s
            .read_small(&join(dir, &format!("{name}.sha256")), 4096)
            .await?
        {
            Some(side)
                if String::from_utf8_lossy(&side)
                    .lines()
                    .any(|l| l.trim_end() == line) =>
            {
                return Ok(Some(Holding::Receipted(name)))
            }
            Some(_) => continue, // another file's checksum: not ours
            None if bare == Bare::Hash => {
                let (sum, n) = s.hash_remote(&path, bytes).await?;
                if n == bytes && sum.eq_ignore_ascii_case(&sha) {
                    return Ok(Some(Holding::Unreceipted(name)));
                }
            }
            None => {}
        }
    }
    Ok(None)
}

/// A delivery found on the server: `fsync`, `posix_rename` and the commit are unknown.
fn recovered(
    conn: &connect::Conn,
    dir: &str,
    name: String,
    bytes: u64,
    sidecars: Vec<String>,
) -> Delivered {
    Delivered {
        remote_path: join(dir, &name),
        final_name: name,
        bytes,
        host_key_sha256: conn.host_key_sha256.clone(),
        fsync: false,
        posix_rename: false,
        commit: None,
        server: conn.banner.clone(),
        verified: Verify::Size,
        sidecars,
    }
}

/// Crash recovery: is a file of `bytes` bytes already under `final_name` (or a versioned
/// name of it) with a `.sha256` sidecar naming `sha256_hex`? `fsync` and `posix_rename` are
/// reported `false` (unknown). Missing manifest/done sidecars show in `sidecars`.
pub async fn find_delivered(
    target: &Target,
    final_name: &str,
    bytes: u64,
    sha256_hex: &str,
) -> Result<Option<Delivered>, SftpError> {
    check_name(final_name)?;
    let conn = connect::connect(target).await?;
    let res = conn
        .guard(async {
            let s = conn.open_sftp(target.io_timeout).await?;
            let dir = target.remote_dir.as_str();
            let mut found = None;
            if let Some(Holding::Receipted(name)) =
                find_holding(&s, dir, final_name, bytes, sha256_hex, Bare::Skip).await?
            {
                let mut sidecars = Vec::new();
                for suffix in SIDECARS {
                    let side = format!("{name}{suffix}");
                    if s.exists(&join(dir, &side)).await? {
                        sidecars.push(side);
                    }
                }
                found = Some(recovered(&conn, dir, name, bytes, sidecars));
            }
            let _ = s.raw.close_session();
            Ok(found)
        })
        .await;
    let host_key = conn.host_key_sha256.clone();
    conn.close().await;
    if let Ok(Some(d)) = &res {
        info!(remote_path = %d.remote_path, bytes, host_key = %host_key, "Found an earlier delivery.");
    }
    res
}

/// Crash recovery that also finishes the commit (docs/design.md §4, step 6): like
/// [`find_delivered`], but every missing sidecar is written (`up.local` is not read, so
/// this works when the spool copy is gone), temp files of the run are removed, and a file of `bytes` bytes under the final (or a versioned) name
/// whose `.sha256` sidecar is *missing* is accepted when its content hashes to
/// `up.sha256_hex` (the process died between the rename and the sidecars), and every
/// missing sidecar (checksum, manifest, done marker last) is uploaded before it returns.
/// Without this a restart after such a crash would try the upload again and, with
/// `if_exists = "fail"`, stop at the file it had delivered itself.
pub async fn complete_delivered(
    target: &Target,
    up: &Upload,
    bytes: u64,
) -> Result<Option<Delivered>, SftpError> {
    let final_name = up.final_name.as_str();
    check_name(final_name)?;
    let conn = connect::connect(target).await?;
    let res = conn
        .guard(async {
            let s = conn.open_sftp(target.io_timeout).await?;
            let dir = target.remote_dir.as_str();
            let mut found = None;
            let name = match find_holding(&s, dir, final_name, bytes, &up.sha256_hex, Bare::Hash).await? {
                Some(Holding::Receipted(name)) => Some(name),
                Some(Holding::Unreceipted(name)) => {
                    info!(remote_path = %join(dir, &name), "Found this run's file without its sidecars; completing them.");
                    Some(name)
                }
                None => None,
            };
            if let Some(name) = name {
                let mut sidecars = Vec::new();
                for (suffix, data) in sidecar_files(up, &name) {
                    let side = format!("{name}{suffix}");
                    if !s.exists(&join(dir, &side)).await? {
                        let tmp = join(dir, &temp_name(&up.final_name, suffix, &up.run_id));
                        s.put_small(&join(dir, &side), &tmp, &data).await?;
                        info!(path = %join(dir, &side), "Completed a missing sidecar.");
                    }
                    sidecars.push(side);
                }
                // What cut attempts left (a sidecar cut in flight), as a delivery cleans it.
                if let Ok(names) = s.list(dir).await {
                    clean_litter(&s, dir, up, &names).await?;
                }
                found = Some(recovered(&conn, dir, name, bytes, sidecars));
            }
            let _ = s.raw.close_session();
            Ok(found)
        })
        .await;
    conn.close().await;
    res
}
