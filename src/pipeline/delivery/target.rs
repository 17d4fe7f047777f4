//! The SFTP target of a subscription: its validated `[target]` mapped onto the SFTP
//! adapter's [`sftp::Target`](crate::sftp::Target), secrets resolved to files.

use super::DeliveryError;
use crate::core::config::{AuthSpec, CommitMode, TargetSpec};
use crate::sftp;
use std::path::PathBuf;

/// The SFTP target of a subscription, with secrets resolved to files.
pub fn target_of(subscription: &str, t: &TargetSpec) -> Result<sftp::Target, DeliveryError> {
    let cred = |name: &str| -> Result<PathBuf, DeliveryError> {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
            DeliveryError::Setup(format!(
                "subscription {} uses systemd credential `{name}`, but $CREDENTIALS_DIRECTORY is not set; run under systemd with LoadCredential={name}:PATH, or use password_file/key_file",
                subscription
            ))
        })?;
        Ok(PathBuf::from(dir).join(name))
    };
    let auth = match &t.auth {
        AuthSpec::KeyFile {
            path,
            passphrase_file,
        } => sftp::Auth::KeyFile {
            path: path.clone(),
            passphrase_file: passphrase_file.clone(),
        },
        AuthSpec::PasswordFile(p) => sftp::Auth::PasswordFile(p.clone()),
        AuthSpec::PasswordCredential(n) => sftp::Auth::PasswordFile(cred(n)?),
        AuthSpec::KeyCredential {
            name,
            passphrase_file,
        } => sftp::Auth::KeyFile {
            path: cred(name)?,
            passphrase_file: passphrase_file.clone(),
        },
    };
    Ok(sftp::Target {
        host: t.host.clone(),
        port: t.port,
        username: t.username.clone(),
        host_keys: t.host_keys.clone(),
        known_hosts: t.known_hosts.clone(),
        auth,
        remote_dir: t.remote_dir.clone(),
        create_dirs: t.create_dirs,
        connect_timeout: t.connect_timeout,
        io_timeout: t.io_timeout,
        overrides: sftp::Overrides {
            channels: t.tuning.channels,
            max_write: t.tuning.max_write,
            in_flight: t.tuning.in_flight,
            commit: match t.tuning.commit {
                CommitMode::Auto => sftp::CommitChoice::Auto,
                CommitMode::RaceFree => sftp::CommitChoice::RaceFree,
                CommitMode::Hardlink => sftp::CommitChoice::Hardlink,
                CommitMode::Rename => sftp::CommitChoice::Rename,
                CommitMode::CheckedRename => sftp::CommitChoice::CheckedRename,
            },
            fsync: t.tuning.fsync,
            posix_rename: t.tuning.posix_rename,
        },
    })
}
