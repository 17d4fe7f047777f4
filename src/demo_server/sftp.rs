//! The SFTP side of one session: russh-sftp's server handler over the [`Vfs`], with the
//! open handles, the `posix-rename@openssh.com` and `fsync@openssh.com` extensions, and the
//! byte-count cut of [`Faults`] applied to WRITE requests.

use super::faults::Faults;
use super::fs::{io_reply, LastLink, Taken, Vfs, R};
use russh_sftp::protocol::{
    Attrs, Data, File as SftpFile, FileAttributes, Handle as SftpHandle, Name, OpenFlags, Packet,
    Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

enum OpenHandle {
    File(fs::File),
    Dir { entries: Vec<SftpFile> },
}

/// One SFTP session of the demo server.
pub(super) struct SftpFs {
    vfs: Vfs,
    faults: Arc<Faults>,
    session: russh::server::Handle,
    handles: HashMap<String, OpenHandle>,
    next_handle: u64,
    /// The fault fired on this connection: refuse everything after it.
    cut: bool,
}

fn ok_status(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn bad_handle() -> StatusReply {
    StatusCode::Failure.with_message("invalid handle")
}

fn read_u32(data: &[u8], at: &mut usize) -> Option<u32> {
    let b = data.get(*at..*at + 4)?;
    *at += 4;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_string(data: &[u8], at: &mut usize) -> Option<String> {
    let len = read_u32(data, at)? as usize;
    let b = data.get(*at..at.checked_add(len)?)?;
    *at += len;
    String::from_utf8(b.to_vec()).ok()
}

impl SftpFs {
    /// A session serving `vfs` on the SSH session behind `session`.
    pub(super) fn new(vfs: Vfs, faults: Arc<Faults>, session: russh::server::Handle) -> SftpFs {
        SftpFs {
            vfs,
            faults,
            session,
            handles: HashMap::new(),
            next_handle: 0,
            cut: false,
        }
    }

    fn new_handle(&mut self, h: OpenHandle) -> String {
        self.next_handle += 1;
        let name = format!("h{}", self.next_handle);
        self.handles.insert(name.clone(), h);
        name
    }

    fn file(&self, handle: &str) -> R<&fs::File> {
        match self.handles.get(handle) {
            Some(OpenHandle::File(f)) => Ok(f),
            _ => Err(bad_handle()),
        }
    }

    fn check_cut(&self) -> R<()> {
        if self.cut {
            Err(StatusCode::ConnectionLost.with_message("connection cut by fault injection"))
        } else {
            Ok(())
        }
    }

    /// The fault fired during a write: refuse everything from now on and end the session.
    fn cut_connection(&mut self, after_bytes: u64) -> StatusReply {
        self.cut = true;
        tracing::info!(
            after_bytes,
            "Demo server cuts the connection (fault injection)."
        );
        let session = self.session.clone();
        tokio::spawn(async move {
            let _ = session
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "fault injection: connection cut".into(),
                    "en".into(),
                )
                .await;
        });
        StatusCode::ConnectionLost.with_message("connection cut by fault injection")
    }
}

impl russh_sftp::server::Handler for SftpFs {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        StatusReply::new(StatusCode::OpUnsupported)
    }

    async fn init(&mut self, _version: u32, _ext: HashMap<String, String>) -> R<Version> {
        let mut v = Version::new();
        if !self.faults.hides_extensions() {
            v.extensions
                .insert("posix-rename@openssh.com".into(), "1".into());
            v.extensions.insert("fsync@openssh.com".into(), "1".into());
        }
        Ok(v)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> R<SftpHandle> {
        self.check_cut()?;
        let file = self.vfs.open(&filename, pflags, &attrs)?;
        let handle = self.new_handle(OpenHandle::File(file));
        Ok(SftpHandle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> R<Status> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok_status(id)),
            None => Err(bad_handle()),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> R<Data> {
        self.check_cut()?;
        let f = self.file(&handle)?;
        let mut buf = vec![0u8; len.min(256 * 1024) as usize];
        let n = f.read_at(&mut buf, offset).map_err(io_reply)?;
        if n == 0 && !buf.is_empty() {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        buf.truncate(n);
        Ok(Data { id, data: buf })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> R<Status> {
        self.check_cut()?;
        let (allowed, cut) = self.faults.admit(data.len() as u64);
        let f = self.file(&handle)?;
        f.write_all_at(&data[..allowed as usize], offset)
            .map_err(io_reply)?;
        self.faults.wrote(allowed);
        if cut {
            return Err(self.cut_connection(allowed));
        }
        Ok(ok_status(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> R<Attrs> {
        let real = self.vfs.resolve(&path, LastLink::AsIs)?;
        let meta = fs::symlink_metadata(real).map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> R<Attrs> {
        let meta = self.file(&handle)?.metadata().map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> R<Attrs> {
        let real = self.vfs.resolve(&path, LastLink::Follow)?;
        let meta = fs::metadata(real).map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> R<Status> {
        self.check_cut()?;
        let real = self.vfs.resolve(&path, LastLink::Follow)?;
        self.vfs.set_attrs(&real, None, &attrs)?;
        Ok(ok_status(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> R<Status> {
        self.check_cut()?;
        let f = self.file(&handle)?;
        self.vfs.set_attrs(Path::new(""), Some(f), &attrs)?;
        Ok(ok_status(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> R<SftpHandle> {
        let entries = self.vfs.list(&path)?;
        let handle = self.new_handle(OpenHandle::Dir { entries });
        Ok(SftpHandle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> R<Name> {
        match self.handles.get_mut(&handle) {
            Some(OpenHandle::Dir { entries }) => {
                // At most 100 names per reply keeps each packet small.
                let files: Vec<SftpFile> = entries.drain(..entries.len().min(100)).collect();
                if files.is_empty() {
                    Err(StatusReply::new(StatusCode::Eof))
                } else {
                    Ok(Name { id, files })
                }
            }
            _ => Err(bad_handle()),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> R<Status> {
        self.check_cut()?;
        self.vfs.remove_file(&filename)?;
        Ok(ok_status(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> R<Status> {
        self.check_cut()?;
        self.vfs.mkdir(&path, &attrs)?;
        Ok(ok_status(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> R<Status> {
        self.check_cut()?;
        self.vfs.rmdir(&path)?;
        Ok(ok_status(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> R<Name> {
        let v = self.vfs.virtual_path(&path)?;
        Ok(Name {
            id,
            files: vec![SftpFile::dummy(v)],
        })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> R<Status> {
        self.check_cut()?;
        self.vfs.rename(&oldpath, &newpath, Taken::Refuse)?;
        Ok(ok_status(id))
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> R<Name> {
        Err(StatusReply::new(StatusCode::OpUnsupported))
    }

    async fn symlink(&mut self, _id: u32, _linkpath: String, _targetpath: String) -> R<Status> {
        Err(StatusCode::PermissionDenied.with_message("symlinks are not allowed"))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> R<Packet> {
        self.check_cut()?;
        if self.faults.hides_extensions() {
            return Err(StatusReply::new(StatusCode::OpUnsupported));
        }
        let malformed = || StatusCode::BadMessage.with_message("malformed extension request");
        let mut at = 0;
        match request.as_str() {
            "posix-rename@openssh.com" => {
                let old = read_string(&data, &mut at).ok_or_else(malformed)?;
                let new = read_string(&data, &mut at).ok_or_else(malformed)?;
                self.vfs.rename(&old, &new, Taken::Replace)?;
                Ok(Packet::Status(ok_status(id)))
            }
            "fsync@openssh.com" => {
                let handle = read_string(&data, &mut at).ok_or_else(malformed)?;
                self.file(&handle)?.sync_all().map_err(io_reply)?;
                Ok(Packet::Status(ok_status(id)))
            }
            _ => Err(StatusReply::new(StatusCode::OpUnsupported)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_strings_parse() {
        let mut d = Vec::new();
        for s in ["/a", "/bb"] {
            d.extend_from_slice(&(s.len() as u32).to_be_bytes());
            d.extend_from_slice(s.as_bytes());
        }
        let mut at = 0;
        assert_eq!(read_string(&d, &mut at).as_deref(), Some("/a"));
        assert_eq!(read_string(&d, &mut at).as_deref(), Some("/bb"));
        assert_eq!(read_string(&d, &mut at), None);
    }
}
