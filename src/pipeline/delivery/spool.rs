//! The run's files in the spool: the per-run lock, and the check that a sealed artifact is
//! still what was sealed before it is uploaded.

use super::DeliveryError;
use crate::store::{self, RunFile};
use std::path::Path;

/// Whether the spool still holds what was sealed.
pub(super) enum SpoolCheck {
    Intact,
    /// The main artifact is gone.
    Missing,
    /// A file has another size or SHA-256 than when it was sealed (what differs).
    Changed(String),
}

/// Compares the sealed files with their recorded sizes and SHA-256 sums (read in full: the
/// file that goes out is the file that was sealed, or none).
pub(super) async fn check_spool(
    a: &store::Artifact,
    extras: &[RunFile],
) -> Result<SpoolCheck, DeliveryError> {
    let mut files = vec![(
        a.path.clone(),
        a.ciphertext_bytes,
        a.ciphertext_sha256.clone(),
    )];
    files.extend(extras.iter().map(|f| {
        (
            f.path.clone(),
            f.ciphertext_bytes,
            f.ciphertext_sha256.clone(),
        )
    }));
    tokio::task::spawn_blocking(move || {
        for (i, (path, bytes, sha)) in files.iter().enumerate() {
            match file_differs(Path::new(path), *bytes, sha) {
                Ok(None) => {}
                Ok(Some(d)) => return Ok(SpoolCheck::Changed(d)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && i == 0 => {
                    return Ok(SpoolCheck::Missing)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(SpoolCheck::Changed(format!("{path} is missing")))
                }
                Err(e) => {
                    return Err(DeliveryError::Spool(format!(
                        "cannot read the sealed artifact {path}: {e}; check the spool folder's permissions and disk"
                    )))
                }
            }
        }
        Ok(SpoolCheck::Intact)
    })
    .await
    .map_err(|e| DeliveryError::Task(format!("checking the spool: {e}")))?
}

/// `None` when `path` has `bytes` bytes hashing to `sha`; else what differs.
pub(super) fn file_differs(path: &Path, bytes: u64, sha: &str) -> std::io::Result<Option<String>> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len != bytes {
        return Ok(Some(format!(
            "{} has {len} bytes, sealed with {bytes}",
            path.display()
        )));
    }
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
    }
    let got = hex::encode(h.finalize());
    Ok((!got.eq_ignore_ascii_case(sha))
        .then(|| format!("{} hashes to {got}, sealed as {sha}", path.display())))
}

/// Takes the run's lock file (`SPOOL/locks/RUN.lock`) or says who has it. The daemon and
/// an operator's `regdrop retry` share one machine and one spool (the state store is never
/// shared between machines), so an OS file lock is enough to keep two processes from
/// uploading the same run at once.
pub(super) fn lock_run(spool: &Path, run: &str) -> Result<std::fs::File, DeliveryError> {
    let dir = spool.join("locks");
    crate::seal::ensure_spool(spool)
        .map_err(|e| DeliveryError::Setup(crate::core::errors::chain(&e)))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| DeliveryError::Setup(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join(format!("{run}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DeliveryError::Setup(format!("opening {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(DeliveryError::Busy {
            run: run.to_string(),
            lock: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(DeliveryError::Setup(format!(
            "locking {}: {e}",
            path.display()
        ))),
    }
}

/// The file's stamp on disk (size, modification time, inode); `None` when it cannot be read.
pub(super) fn stamp(path: &Path) -> Option<crate::core::fresh::Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(crate::core::fresh::Stamp {
        len: m.len(),
        modified: m.modified().ok()?,
        inode: m.ino(),
    })
}
