//! The virtual file system the demo server serves: one real folder seen by the client as
//! `/`, every client path confined to it (`..` above it and symlinks leading out of it are
//! refused), and the disk operations on it, answering in SFTP status codes.

use russh_sftp::protocol::{File as SftpFile, FileAttributes, OpenFlags, StatusCode};
use russh_sftp::server::StatusReply;
use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What every operation answers: its value, or the status to send.
pub(super) type R<T> = Result<T, StatusReply>;

/// Whether the last component of a path may be a symlink that is followed (open, stat),
/// so its target must stay inside too, or is taken as the link itself (lstat, remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LastLink {
    Follow,
    AsIs,
}

/// What a rename does when the new name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// Fail (plain SFTP rename).
    Refuse,
    /// Replace it (`posix-rename@openssh.com`).
    Replace,
}

/// The served folder (canonical).
pub(super) struct Vfs {
    root: PathBuf,
}

/// Normalises a client path to the components below the served folder (`/` is the folder;
/// relative paths start there). `..` above the folder is an escape.
pub fn virtual_components(path: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            p => out.push(p.to_string()),
        }
    }
    Some(out)
}

pub(super) fn io_reply(e: io::Error) -> StatusReply {
    let code = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn escape() -> StatusReply {
    StatusCode::PermissionDenied.with_message("path is outside the served folder")
}

impl Vfs {
    /// `root` must be canonical (symlink checks compare against it).
    pub(super) fn new(root: PathBuf) -> Vfs {
        Vfs { root }
    }

    /// Maps a client path to a real path inside the root.
    pub(super) fn resolve(&self, path: &str, last: LastLink) -> R<PathBuf> {
        let comps = virtual_components(path).ok_or_else(escape)?;
        let mut real = self.root.clone();
        for c in &comps {
            real.push(c);
        }
        if comps.is_empty() {
            return Ok(real);
        }
        // Every folder on the way must resolve inside the root (catches symlinked folders).
        let parent = real.parent().unwrap_or(&self.root);
        match fs::canonicalize(parent) {
            Ok(p) if p.starts_with(&self.root) => {}
            Ok(_) => return Err(escape()),
            Err(e) => return Err(io_reply(e)),
        }
        if last == LastLink::Follow {
            if let Ok(meta) = fs::symlink_metadata(&real) {
                if meta.file_type().is_symlink() {
                    match fs::canonicalize(&real) {
                        Ok(t) if t.starts_with(&self.root) => {}
                        // Outside, or dangling (O_CREAT would create the target): refuse.
                        _ => return Err(escape()),
                    }
                }
            }
        }
        Ok(real)
    }

    /// The client path as the server names it (`/a/b`), for realpath.
    pub(super) fn virtual_path(&self, path: &str) -> R<String> {
        let comps = virtual_components(path).ok_or_else(escape)?;
        Ok(format!("/{}", comps.join("/")))
    }

    /// Opens a file (never a folder); without READ, WRITE or APPEND it opens for reading.
    pub(super) fn open(
        &self,
        path: &str,
        pflags: OpenFlags,
        attrs: &FileAttributes,
    ) -> R<fs::File> {
        let real = self.resolve(path, LastLink::Follow)?;
        let mut opts: fs::OpenOptions = pflags.into();
        if !pflags.intersects(OpenFlags::READ | OpenFlags::WRITE | OpenFlags::APPEND) {
            opts.read(true);
        }
        opts.mode(attrs.permissions.map_or(0o644, |m| m & 0o777));
        let file = opts.open(&real).map_err(io_reply)?;
        if file.metadata().map_err(io_reply)?.is_dir() {
            return Err(StatusCode::Failure.with_message("is a folder"));
        }
        Ok(file)
    }

    /// Applies permissions and size to `real` or to the open `file`.
    pub(super) fn set_attrs(
        &self,
        real: &Path,
        file: Option<&fs::File>,
        attrs: &FileAttributes,
    ) -> R<()> {
        if let Some(mode) = attrs.permissions {
            let perm = fs::Permissions::from_mode(mode & 0o7777);
            match file {
                Some(f) => f.set_permissions(perm),
                None => fs::set_permissions(real, perm),
            }
            .map_err(io_reply)?;
        }
        if let Some(size) = attrs.size {
            match file {
                Some(f) => f.set_len(size),
                None => fs::OpenOptions::new()
                    .write(true)
                    .open(real)
                    .and_then(|f| f.set_len(size)),
            }
            .map_err(io_reply)?;
        }
        // uid/gid and times are accepted and ignored.
        Ok(())
    }

    /// The entries of a folder, sorted by name (names that are not UTF-8 are left out).
    pub(super) fn list(&self, path: &str) -> R<Vec<SftpFile>> {
        let real = self.resolve(path, LastLink::Follow)?;
        let mut entries = Vec::new();
        for e in fs::read_dir(&real).map_err(io_reply)? {
            let e = e.map_err(io_reply)?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if let Ok(meta) = e.path().symlink_metadata() {
                entries.push(SftpFile::new(name, FileAttributes::from(&meta)));
            }
        }
        entries.sort_by(|a, b| a.filename.cmp(&b.filename));
        Ok(entries)
    }

    pub(super) fn remove_file(&self, path: &str) -> R<()> {
        let real = self.resolve(path, LastLink::AsIs)?;
        if fs::symlink_metadata(&real).map_err(io_reply)?.is_dir() {
            return Err(StatusCode::Failure.with_message("is a folder (use rmdir)"));
        }
        fs::remove_file(real).map_err(io_reply)
    }

    pub(super) fn mkdir(&self, path: &str, attrs: &FileAttributes) -> R<()> {
        let real = self.resolve(path, LastLink::AsIs)?;
        let mut b = fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(
            &mut b,
            attrs.permissions.map_or(0o755, |m| m & 0o777),
        );
        b.create(real).map_err(io_reply)
    }

    /// Removes an empty folder; never the served folder itself.
    pub(super) fn rmdir(&self, path: &str) -> R<()> {
        let real = self.resolve(path, LastLink::AsIs)?;
        if real == self.root {
            return Err(
                StatusCode::PermissionDenied.with_message("cannot remove the served folder")
            );
        }
        fs::remove_dir(real).map_err(io_reply)
    }

    /// Renames `from` to `to`; when `to` exists, as `taken` says.
    pub(super) fn rename(&self, from: &str, to: &str, taken: Taken) -> R<()> {
        let a = self.resolve(from, LastLink::AsIs)?;
        let b = self.resolve(to, LastLink::AsIs)?;
        if a == self.root || b == self.root {
            return Err(
                StatusCode::PermissionDenied.with_message("cannot rename the served folder")
            );
        }
        fs::symlink_metadata(&a).map_err(io_reply)?;
        if taken == Taken::Refuse && fs::symlink_metadata(&b).is_ok() {
            return Err(StatusCode::Failure.with_message("target exists"));
        }
        fs::rename(&a, &b).map_err(io_reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_and_escapes_are_refused() {
        assert_eq!(virtual_components("/").unwrap(), Vec::<String>::new());
        assert_eq!(virtual_components(".").unwrap(), Vec::<String>::new());
        assert_eq!(virtual_components("a/./b//c").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(virtual_components("/a/../b").unwrap(), vec!["b"]);
        assert!(virtual_components("..").is_none());
        assert!(virtual_components("/a/../../etc/passwd").is_none());
    }
}
