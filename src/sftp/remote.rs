//! Small SFTP operations on one session, with our error type: stat, mkdir -p, list, remove,
//! rename (plain and `posix-rename@openssh.com`), small-file put via temp + rename, and a
//! pipelined read-back hash. Paths are absolute remote paths built with [`join`].

use super::connect::Sftp;
use super::SftpError;
use futures::stream::{FuturesOrdered, StreamExt};
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use sha2::{Digest, Sha256};

use super::profile::{FSYNC, HARDLINK, POSIX_RENAME};

/// What `ensure_dir` does when the folder is missing (`[target] create_dirs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingDir {
    /// Create it and its missing parents.
    Create,
    /// Fail with [`SftpError::RemoteDirMissing`].
    Refuse,
}

/// `dir/name` with exactly one slash.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn is_status(e: &russh_sftp::client::error::Error, code: StatusCode) -> bool {
    matches!(e, russh_sftp::client::error::Error::Status(s) if s.status_code == code)
}

pub(crate) fn attrs_0600() -> FileAttributes {
    FileAttributes {
        permissions: Some(0o600),
        ..FileAttributes::empty()
    }
}

impl Sftp {
    pub fn has_ext(&self, name: &str) -> bool {
        self.extensions.contains_key(name)
    }

    /// `stat` (follows symlinks); `None` when there is no such file.
    pub async fn stat(&self, path: &str) -> Result<Option<FileAttributes>, SftpError> {
        match self.raw.stat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => Ok(None),
            Err(e) => Err(SftpError::remote("stat", path, e)),
        }
    }

    /// `lstat` (does not follow symlinks); `None` when there is no such name.
    pub async fn lstat(&self, path: &str) -> Result<Option<FileAttributes>, SftpError> {
        match self.raw.lstat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => Ok(None),
            Err(e) => Err(SftpError::remote("lstat", path, e)),
        }
    }

    /// `lstat`: does anything (file, dangling symlink, folder) hold this name?
    pub async fn exists(&self, path: &str) -> Result<bool, SftpError> {
        match self.raw.lstat(path).await {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => Ok(false),
            Err(e) => Err(SftpError::remote("lstat", path, e)),
        }
    }

    /// Makes sure `dir` is a folder; creates it and missing parents with
    /// [`MissingDir::Create`]. Returns whether anything was created.
    pub async fn ensure_dir(&self, dir: &str, missing: MissingDir) -> Result<bool, SftpError> {
        match self.stat(dir).await? {
            Some(a) if a.is_dir() => return Ok(false),
            Some(_) => return Err(SftpError::RemoteNotDir { dir: dir.into() }),
            None if missing == MissingDir::Refuse => {
                return Err(SftpError::RemoteDirMissing { dir: dir.into() })
            }
            None => {}
        }
        // Walk down from the root; an existing component gives a generic Failure on mkdir
        // (OpenSSH), so re-check with stat.
        let absolute = dir.starts_with('/');
        let mut path = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            if !path.is_empty() || absolute {
                path.push('/');
            }
            path.push_str(part);
            if let Err(e) = self.raw.mkdir(path.clone(), FileAttributes::empty()).await {
                match self.stat(&path).await? {
                    Some(a) if a.is_dir() => {}
                    Some(_) => return Err(SftpError::RemoteNotDir { dir: path }),
                    None => return Err(SftpError::remote("mkdir", path, e)),
                }
            }
        }
        tracing::info!(dir, "Created remote folder.");
        Ok(true)
    }

    /// Names in a folder (without `.` and `..`).
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, SftpError> {
        let h = self
            .raw
            .opendir(dir)
            .await
            .map_err(|e| SftpError::remote("opendir", dir, e))?
            .handle;
        let mut names = Vec::new();
        let res = loop {
            match self.raw.readdir(h.clone()).await {
                Ok(n) => names.extend(
                    n.files
                        .into_iter()
                        .map(|f| f.filename)
                        .filter(|n| n != "." && n != ".."),
                ),
                Err(e) if is_status(&e, StatusCode::Eof) => break Ok(()),
                Err(e) => break Err(SftpError::remote("readdir", dir, e)),
            }
        };
        let _ = self.raw.close(h).await;
        res.map(|_| names)
    }

    pub async fn remove(&self, path: &str) -> Result<(), SftpError> {
        self.raw
            .remove(path)
            .await
            .map(|_| ())
            .map_err(|e| SftpError::remote("remove", path, e))
    }

    /// Removes a file; a missing file is fine.
    pub async fn remove_if_exists(&self, path: &str) -> Result<(), SftpError> {
        match self.raw.remove(path).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => Ok(()),
            Err(e) => Err(SftpError::remote("remove", path, e)),
        }
    }

    /// Plain SFTP rename: fails when `new` exists (OpenSSH links then unlinks).
    pub async fn rename(&self, old: &str, new: &str) -> Result<(), SftpError> {
        self.raw
            .rename(old, new)
            .await
            .map(|_| ())
            .map_err(|e| SftpError::remote("rename", format!("{old} -> {new}"), e))
    }

    /// `posix-rename@openssh.com`: rename(2), atomically replacing `new`.
    pub async fn posix_rename(&self, old: &str, new: &str) -> Result<(), SftpError> {
        self.extended_pair(POSIX_RENAME, "posix-rename", old, new)
            .await
    }

    /// `hardlink@openssh.com`: link(2) `new` to `old`, which fails when `new` exists.
    pub async fn hardlink(&self, old: &str, new: &str) -> Result<(), SftpError> {
        self.extended_pair(HARDLINK, "hardlink", old, new).await
    }

    /// An extension request whose data is two paths (posix-rename, hardlink).
    async fn extended_pair(
        &self,
        ext: &'static str,
        op: &'static str,
        old: &str,
        new: &str,
    ) -> Result<(), SftpError> {
        let data: Vec<u8> = russh_sftp::extensions::HardlinkExtension {
            oldpath: old.into(),
            newpath: new.into(),
        }
        .try_into()
        .map_err(|e| SftpError::Remote {
            op,
            path: new.into(),
            code: None,
            message: format!("{e}"),
        })?;
        match self.raw.extended(ext, data).await {
            Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
            Ok(Packet::Status(s)) => {
                Err(SftpError::remote(op, format!("{old} -> {new}"), s.into()))
            }
            Ok(_) => Err(SftpError::Remote {
                op,
                path: new.into(),
                code: None,
                message: "unexpected reply".into(),
            }),
            Err(e) => Err(SftpError::remote(op, format!("{old} -> {new}"), e)),
        }
    }

    /// Replaces `new` by `old` as safely as the server allows: `posix-rename@openssh.com`
    /// when offered, else [`Sftp::replace_aside`].
    pub async fn replace(&self, old: &str, new: &str, aside: &str) -> Result<(), SftpError> {
        if self.has_ext(POSIX_RENAME) {
            return self.posix_rename(old, new).await;
        }
        self.replace_aside(old, new, aside).await
    }

    /// Without posix-rename: an existing `new` is first renamed aside to `aside`, then `old`
    /// takes its name, then the aside copy is deleted. The final name is briefly missing,
    /// but never holds partial data, and the old content survives a failure of the second
    /// step (it is renamed back; a crash in between leaves `aside`, which the next delivery
    /// puts back or removes).
    pub async fn replace_aside(&self, old: &str, new: &str, aside: &str) -> Result<(), SftpError> {
        if !self.exists(new).await? {
            return self.rename(old, new).await;
        }
        self.remove_if_exists(aside).await?;
        self.rename(new, aside).await?;
        if let Err(e) = self.rename(old, new).await {
            let _ = self.rename(aside, new).await;
            return Err(e);
        }
        if let Err(e) = self.remove(aside).await {
            tracing::warn!(path = aside, error = %crate::core::errors::Chain(&e), "Could not delete the replaced file.");
        }
        Ok(())
    }

    /// Creates (or truncates) a small file and writes `data`, without fsync or rename (for
    /// probe and rename tests).
    pub async fn put_plain(&self, path: &str, data: &[u8]) -> Result<(), SftpError> {
        let h = self
            .raw
            .open(
                path,
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                attrs_0600(),
            )
            .await
            .map_err(|e| SftpError::remote("open", path, e))?
            .handle;
        let written = if data.is_empty() {
            Ok(())
        } else {
            self.raw
                .write(h.as_str(), 0, data.to_vec())
                .await
                .map(|_| ())
                .map_err(|e| SftpError::remote("write", path, e))
        };
        let closed = self
            .raw
            .close(h)
            .await
            .map(|_| ())
            .map_err(|e| SftpError::remote("close", path, e));
        written.and(closed)
    }

    /// fsync@openssh.com on an open handle; `false` when the server does not offer it.
    pub async fn fsync(&self, handle: &str, path: &str) -> Result<bool, SftpError> {
        if !self.has_ext(FSYNC) {
            return Ok(false);
        }
        self.raw
            .fsync(handle)
            .await
            .map_err(|e| SftpError::remote("fsync", path, e))?;
        Ok(true)
    }

    /// Writes a small file at `path` via `tmp` + replace. Returns whether fsync was done.
    pub async fn put_small(&self, path: &str, tmp: &str, data: &[u8]) -> Result<(), SftpError> {
        let h = self
            .raw
            .open(
                tmp,
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                attrs_0600(),
            )
            .await
            .map_err(|e| SftpError::remote("open", tmp, e))?
            .handle;
        // Writes and the fsync go out together (one round trip): OpenSSH handles the
        // requests of a session in order.
        let chunk = self.write_chunk();
        let writes = futures::future::join_all(data.chunks(chunk).enumerate().map(|(i, piece)| {
            self.raw
                .write(h.as_str(), (i * chunk) as u64, piece.to_vec())
        }));
        let (writes, synced) = futures::future::join(writes, self.fsync(&h, tmp)).await;
        let mut res = Ok(());
        if let Some(Err(e)) = writes.into_iter().find(|r| r.is_err()) {
            res = Err(SftpError::remote("write", tmp, e));
        } else if let Err(e) = synced {
            res = Err(e);
        }
        let closed = self
            .raw
            .close(h)
            .await
            .map_err(|e| SftpError::remote("close", tmp, e));
        res.and(closed.map(|_| ()))?;
        let aside = format!("{tmp}.old");
        self.replace(tmp, path, &aside).await
    }

    /// Largest data size of one WRITE request we use.
    pub fn write_chunk(&self) -> usize {
        self.write_len
    }

    fn read_chunk(&self) -> u32 {
        self.read_len as u32
    }

    /// Downloads `path` (expected `size` bytes) with many reads in flight and returns its
    /// SHA-256 (hex) and the number of bytes read.
    pub async fn hash_remote(&self, path: &str, size: u64) -> Result<(String, u64), SftpError> {
        let h = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| SftpError::remote("open", path, e))?
            .handle;
        let res = self.hash_handle(&h, path, size).await;
        let _ = self.raw.close(h).await;
        res
    }

    async fn hash_handle(
        &self,
        h: &str,
        path: &str,
        size: u64,
    ) -> Result<(String, u64), SftpError> {
        let chunk = self.read_chunk() as u64;
        let mut hasher = Sha256::new();
        let mut next_off = 0u64;
        let mut q = FuturesOrdered::new();
        let mut total = 0u64;
        loop {
            while q.len() < 32 && next_off < size {
                let len = chunk.min(size - next_off) as u32;
                let off = next_off;
                q.push_back(async move { (off, len, self.raw.read(h, off, len).await) });
                next_off += len as u64;
            }
            let Some((off, len, r)) = q.next().await else {
                break;
            };
            let mut data = match r {
                Ok(d) => d.data,
                Err(e) if is_status(&e, StatusCode::Eof) => Vec::new(),
                Err(e) => return Err(SftpError::remote("read", path, e)),
            };
            // A short read (not expected from OpenSSH on regular files): fetch the rest of
            // this range in order before moving on.
            let mut pos = off + data.len() as u64;
            let end = off + len as u64;
            while (data.len() as u64) < len as u64 {
                match self.raw.read(h, pos, (end - pos) as u32).await {
                    Ok(d) if !d.data.is_empty() => {
                        pos += d.data.len() as u64;
                        data.extend_from_slice(&d.data);
                    }
                    Ok(_) => break,
                    Err(e) if is_status(&e, StatusCode::Eof) => break,
                    Err(e) => return Err(SftpError::remote("read", path, e)),
                }
            }
            if (data.len() as u64) < len as u64 {
                // The file is shorter than expected: stop; the caller compares the count.
                total += data.len() as u64;
                hasher.update(&data);
                return Ok((hex::encode(hasher.finalize()), total));
            }
            total += data.len() as u64;
            hasher.update(&data);
        }
        Ok((hex::encode(hasher.finalize()), total))
    }

    /// Reads a small remote file whole (at most `max` bytes).
    pub async fn read_small(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, SftpError> {
        let h = match self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => return Ok(None),
            Err(e) => return Err(SftpError::remote("open", path, e)),
        };
        let mut out = Vec::new();
        let res = loop {
            if out.len() as u64 >= max {
                break Ok(());
            }
            match self.raw.read(h.clone(), out.len() as u64, 32 * 1024).await {
                Ok(d) if d.data.is_empty() => break Ok(()),
                Ok(d) => out.extend_from_slice(&d.data),
                Err(e) if is_status(&e, StatusCode::Eof) => break Ok(()),
                Err(e) => break Err(SftpError::remote("read", path, e)),
            }
        };
        let _ = self.raw.close(h).await;
        res.map(|_| Some(out))
    }
}
