//! Secrets on disk, shared by every adapter that logs in (sftp, mail, http_post): a 0600
//! file (refused when group or others can read it) or a systemd credential
//! (`$CREDENTIALS_DIRECTORY/NAME`), read when needed, never logged or put in a message.

use crate::core::config::SecretRef;
use std::path::{Path, PathBuf};

/// A secret that cannot be used: where it is and why (never its content). Permanent: an
/// operator has to fix the file or the unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret file {}: {reason}", path.display())]
pub struct SecretError {
    pub path: PathBuf,
    pub reason: String,
}

/// Reads a secret file: refuses group/other-readable files, strips one trailing newline.
pub fn read_secret_file(path: &Path) -> Result<String, SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |reason: String| SecretError {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "is accessible by group or others (mode {:o}); run `chmod 600 {}`",
            mode & 0o777,
            path.display()
        )));
    }
    let mut s = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    if s.is_empty() {
        return Err(err("is empty".into()));
    }
    Ok(s)
}

/// The file of systemd credential `name`: `$CREDENTIALS_DIRECTORY/NAME`.
pub fn credential_path(name: &str) -> Result<PathBuf, SecretError> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| SecretError {
        path: PathBuf::from(format!("$CREDENTIALS_DIRECTORY/{name}")),
        reason: format!(
            "$CREDENTIALS_DIRECTORY is not set; run under systemd with LoadCredential={name}:PATH, or name a 0600 file instead"
        ),
    })?;
    Ok(PathBuf::from(dir).join(name))
}

/// The file a [`SecretRef`] points at.
pub fn path_of(r: &SecretRef) -> Result<PathBuf, SecretError> {
    match r {
        SecretRef::File(p) => Ok(p.clone()),
        SecretRef::Credential(name) => credential_path(name),
    }
}

/// Reads the secret a [`SecretRef`] points at.
pub fn read(r: &SecretRef) -> Result<String, SecretError> {
    read_secret_file(&path_of(r)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        let write = |text: &str, mode: u32| {
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("s3cret\n", 0o600);
        assert_eq!(read_secret_file(&p).unwrap(), "s3cret");
        assert_eq!(read(&SecretRef::File(p.clone())).unwrap(), "s3cret");
        write("s3cret\r\n", 0o400);
        assert_eq!(read_secret_file(&p).unwrap(), "s3cret");
        write("two\nlines\n", 0o600);
        assert_eq!(read_secret_file(&p).unwrap(), "two\nlines");
        write("\n", 0o600);
        assert!(read_secret_file(&p).is_err());
        write("s3cret\n", 0o640);
        let e = read_secret_file(&p).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!e.to_string().contains("s3cret"));
        assert!(read_secret_file(&dir.path().join("missing")).is_err());
    }
}
