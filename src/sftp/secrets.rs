//! The login secrets: files read at connect time (refused when group or others can read
//! them), the private key loaded with its optional passphrase file, never logged.

use super::{Auth, SftpError};
use std::path::Path;
use std::sync::Arc;

/// Reads a secret file: refuses group/other-readable files, strips one trailing newline
/// ([`crate::secret::read_secret_file`], its error as [`SftpError::SecretFile`]).
pub fn read_secret_file(path: &Path) -> Result<String, SftpError> {
    crate::secret::read_secret_file(path).map_err(|e| SftpError::SecretFile {
        path: e.path,
        reason: e.reason,
    })
}

/// Loaded credentials: read before any network traffic so a bad file fails fast.
pub(crate) enum Creds {
    Key(Arc<russh::keys::PrivateKey>),
    Password(String),
}

/// Loads the login secret the way a connection does (same mode rule, same key parser and
/// passphrase), without connecting: what `regdrop check` runs on every subscription.
pub fn check_credentials(auth: &Auth) -> Result<(), SftpError> {
    load_creds(auth).map(|_| ())
}

pub(crate) fn load_creds(auth: &Auth) -> Result<Creds, SftpError> {
    match auth {
        Auth::PasswordFile(p) => Ok(Creds::Password(read_secret_file(p)?)),
        Auth::KeyFile {
            path,
            passphrase_file,
        } => {
            let pass = passphrase_file
                .as_deref()
                .map(read_secret_file)
                .transpose()?;
            let key = russh::keys::load_secret_key(path, pass.as_deref()).map_err(|e| {
                // The error text of ssh-key never contains key material or the passphrase.
                let reason = match e {
                    russh::keys::Error::KeyIsEncrypted => {
                        "is encrypted: set passphrase_file".to_string()
                    }
                    russh::keys::Error::IO(io) => format!("cannot read: {io}"),
                    other => format!("cannot be loaded (wrong passphrase or format?): {other}"),
                };
                SftpError::BadKeyFile {
                    path: path.clone(),
                    reason,
                }
            })?;
            Ok(Creds::Key(Arc::new(key)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::retry::{Classify, ErrorClass};
    use std::os::unix::fs::PermissionsExt;

    /// What the file must hold is `crate::secret`'s (tested there); here only that its
    /// refusals become permanent SFTP errors that name the fix and never the secret.
    #[test]
    fn a_refused_secret_file_is_a_permanent_sftp_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_secret_file(&p).unwrap_err();
        assert!(matches!(e, SftpError::SecretFile { .. }), "{e:?}");
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!e.to_string().contains("s3cret"));
        let e = read_secret_file(&dir.path().join("missing")).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Permanent);
    }
}
