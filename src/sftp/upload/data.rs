//! The data path: the SFTP sessions a file goes over (the [`Strategy`]'s channels), the
//! pipelined WRITE requests spread over them, fsync and size check, the fallback to one
//! channel when a server mishandles several, the read-back before the commit, and
//! removing the temp file after a failure.

use super::super::connect::{Conn, Sftp};
use super::super::learned;
use super::super::profile::{self, ServerProfile, Strategy, POSIX_RENAME};
use super::super::remote::attrs_0600;
use super::super::{Growing, Growth, SftpError, Target, Upload, Verify};
use crate::core::errors::Chain;
use futures::stream::{FuturesUnordered, StreamExt};
use russh_sftp::protocol::OpenFlags;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{debug, warn};

/// What the data path wrote to the temp file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// `fsync@openssh.com` was done on it.
    pub fsync: bool,
    /// The size the server reports for it.
    pub size: u64,
    /// Channels the upload that worked went over.
    pub channels: usize,
    /// Why writes on several channels were given up for one, when they were.
    pub parallel_failed: Option<String>,
}

/// Opens the SFTP sessions a file of `size` bytes is uploaded over: the first, the
/// server's profile from it, the [`Strategy`], then the extra channels it allows (all at
/// once: at high RTT every sequential round trip counts). `[target] posix_rename = false`
/// takes the extension off every session, sidecars included. Used by deliveries and probe.
pub(crate) async fn open_sessions(
    conn: &Conn,
    target: &Target,
    size: u64,
    sessions: &mut Vec<Sftp>,
) -> Result<(ServerProfile, Strategy), SftpError> {
    let tune = |mut s: Sftp| {
        if !target.overrides.posix_rename {
            s.extensions.remove(POSIX_RENAME);
        }
        s
    };
    sessions.push(tune(conn.open_sftp(target.io_timeout).await?));
    let profile = conn.profile(&sessions[0]);
    let strategy = profile::strategy(&profile, &target.overrides, size);
    if strategy.channels > 1 {
        let opened = futures::future::join_all(
            (1..strategy.channels).map(|_| conn.open_sftp(target.io_timeout)),
        )
        .await;
        for s in opened {
            match s {
                Ok(s) => sessions.push(tune(s)),
                // The server may limit sessions per connection (MaxSessions): use fewer.
                Err(e) => debug!(error = %Chain(&e), "Could not open an extra SFTP channel."),
            }
        }
    }
    for s in sessions.iter_mut() {
        s.write_len = strategy.write_len;
        s.read_len = strategy.read_len;
    }
    Ok((profile, strategy))
}

/// [`upload_part`] over all sessions; if writes on several channels fail with a server
/// error (ProFTPD-like buffer mix-ups, sequential-only back ends), the same upload goes
/// again on one channel and the host is remembered. What it wrote.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn upload_with_fallback(
    conn: &Conn,
    sessions: &[Sftp],
    profile: &mut ServerProfile,
    part: &str,
    up: &Upload,
    reader: &mut Reader,
    strategy: &Strategy,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Written, SftpError> {
    match upload_part(sessions, part, up, reader, strategy, progress).await {
        Ok((fsync, actual)) => Ok(Written {
            fsync,
            size: actual,
            channels: sessions.len(),
            parallel_failed: None,
        }),
        Err(e) if sessions.len() > 1 && e.is_server_refusal() && !conn.handle.is_closed() => {
            warn!(server = %profile.banner, error = %Chain(&e), "Writes on several channels failed; trying again on one channel.");
            learned::parallel_writes_failed(&conn.addr);
            profile.parallel_writes_ok = Some(false);
            let _ = sessions[0].remove_if_exists(part).await;
            let one = Strategy {
                channels: 1,
                ..*strategy
            };
            let (fsync, actual) =
                upload_part(&sessions[..1], part, up, reader, &one, progress).await?;
            Ok(Written {
                fsync,
                size: actual,
                channels: 1,
                parallel_failed: Some(Chain(&e).to_string()),
            })
        }
        Err(e) => Err(e),
    }
}

/// Writes the temp file `part` ([`upload_with_fallback`]), checks the size the server
/// reports against the local file's (its final size, for a file still being sealed) and,
/// with [`Verify::ReadBack`], its SHA-256 read back, all before the commit: a mismatch
/// then leaves nothing under the final name (the rename does not change the bytes). On
/// failure the temp file is removed ([`cleanup_after`]). Returns whether fsync was done,
/// and the size and SHA-256 of what was written.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_temp(
    conn: &Conn,
    sessions: &[Sftp],
    profile: &mut ServerProfile,
    part: &str,
    up: &Upload,
    reader: &mut Reader,
    strategy: &Strategy,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(bool, u64, String), SftpError> {
    let s = &sessions[0];
    let written = upload_with_fallback(
        conn, sessions, profile, part, up, reader, strategy, progress,
    )
    .await;
    let (fsync, actual) = match written {
        Ok(w) => (w.fsync, w.size),
        Err(e) => return Err(cleanup_after(s, part, e).await),
    };
    let (size, sha256) = reader
        .end()
        .expect("a complete upload knows the file's end");
    if actual != size {
        let e = SftpError::SizeMismatch {
            path: part.to_string(),
            expected: size,
            actual,
        };
        return Err(cleanup_after(s, part, e).await);
    }
    if up.verify == Verify::ReadBack {
        let (sum, n) = match s.hash_remote(part, size).await {
            Ok(x) => x,
            Err(e) => return Err(cleanup_after(s, part, e).await),
        };
        if n != size || !sum.eq_ignore_ascii_case(&sha256) {
            let e = SftpError::ChecksumMismatch {
                path: part.to_string(),
                expected: sha256.to_ascii_lowercase(),
                actual: sum,
            };
            return Err(cleanup_after(s, part, e).await);
        }
        debug!(path = %part, sha256 = %sum, "Read-back verified.");
    }
    Ok((fsync, size, sha256))
}

/// After a failed step: remove the temp file when the session still works (the next
/// attempt removes it otherwise) and hand back the error.
pub(super) async fn cleanup_after(s: &Sftp, part: &str, e: SftpError) -> SftpError {
    if e.class_is_connection_alive() {
        if let Err(rm) = s.remove_if_exists(part).await {
            debug!(path = part, error = %rm, "Could not remove the temp file after a failure.");
        }
    }
    e
}

impl SftpError {
    /// Whether the SSH/SFTP session is probably still usable after this error.
    pub(crate) fn class_is_connection_alive(&self) -> bool {
        matches!(
            self,
            SftpError::Remote { code: Some(_), .. }
                | SftpError::Local { .. }
                | SftpError::LocalChanged { .. }
                | SftpError::SourceStopped { .. }
                | SftpError::SizeMismatch { .. }
                | SftpError::ChecksumMismatch { .. }
                | SftpError::FinalExists { .. }
                | SftpError::NoFreeVersion { .. }
        )
    }

    /// The server answered a request with an error (or its session ended on a packet
    /// the client could not accept), as opposed to a lost connection or a local problem.
    fn is_server_refusal(&self) -> bool {
        matches!(self, SftpError::Remote { code: Some(_), .. })
            || matches!(self, SftpError::Remote { code: None, message, .. } if message.contains("sftp session ended"))
    }
}

/// Uploads the local file to `part` over all `sessions`; returns whether fsync was done and
/// the size the server reports for the file.
async fn upload_part(
    sessions: &[Sftp],
    part: &str,
    up: &Upload,
    reader: &mut Reader,
    strategy: &Strategy,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(bool, u64), SftpError> {
    // All handles open at once: the first creates and truncates, the others only create
    // (no truncate), so their order does not matter; no write starts before all are open.
    let opens = futures::future::join_all(sessions.iter().enumerate().map(|(i, s)| {
        let flags = if i == 0 {
            OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE
        } else {
            OpenFlags::CREATE | OpenFlags::WRITE
        };
        s.raw.open(part, flags, attrs_0600())
    }))
    .await;
    let mut used = Vec::new();
    let mut handles = Vec::new();
    let mut first_err = None;
    for (i, (s, r)) in sessions.iter().zip(opens).enumerate() {
        match r {
            Ok(h) => {
                used.push(s);
                handles.push(h.handle);
            }
            Err(e) if i == 0 => first_err = Some(SftpError::remote("open", part, e)),
            // A server that refuses a second handle on the file (locking) gets fewer channels.
            Err(e) => {
                debug!(error = %Chain(&e), "Extra channel cannot open the temp file; not used.")
            }
        }
    }
    if let Some(e) = first_err {
        for (s, h) in used.iter().zip(handles) {
            let _ = s.raw.close(h).await;
        }
        return Err(e);
    }
    let sessions = used;

    let t0 = std::time::Instant::now();
    let written = write_all(&sessions, &handles, part, up, reader, strategy, progress).await;
    let t1 = std::time::Instant::now();
    let mut fsync = false;
    let mut actual = 0;
    let mut res = written.map(|_| ());
    if res.is_ok() {
        // Every write is acknowledged: fsync and fstat in the same round trip.
        let (f, st) = futures::future::join(
            async {
                if strategy.fsync {
                    sessions[0].fsync(&handles[0], part).await
                } else {
                    Ok(false)
                }
            },
            sessions[0].raw.fstat(handles[0].as_str()),
        )
        .await;
        match (f, st) {
            (Ok(f), Ok(a)) => {
                fsync = f;
                actual = a.attrs.size.unwrap_or(0);
            }
            (Err(e), _) => res = Err(e),
            (_, Err(e)) => res = Err(SftpError::remote("fstat", part, e)),
        }
    }
    debug!(
        path = part,
        channels = sessions.len(),
        write_secs = (t1 - t0).as_secs_f64(),
        fsync_secs = t1.elapsed().as_secs_f64(),
        "Data written."
    );
    // Close every handle and check it: a close can report a late write error.
    let closes =
        futures::future::join_all(sessions.iter().zip(handles).map(|(s, h)| s.raw.close(h))).await;
    for closed in closes {
        if res.is_ok() {
            if let Err(e) = closed {
                res = Err(SftpError::remote("close", part, e));
            }
        }
    }
    res.map(|_| (fsync, actual))
}

/// Bytes read from the local file at a time (rounded down to whole requests): one read
/// per 2 MiB, on a blocking thread, straight into the buffer the requests are cut from.
const BLOCK: usize = 2 << 20;

/// Sends the file as WRITE requests of `strategy.write_len` bytes, in file order, spread
/// round-robin over the sessions, with at most `in_flight` requests and `in_flight_bytes`
/// bytes outstanding per session. A file still being sealed is sent as far as it has
/// grown, the rest as it comes; a failed sealing stops the upload.
async fn write_all(
    sessions: &[&Sftp],
    handles: &[String],
    part: &str,
    up: &Upload,
    reader: &mut Reader,
    strategy: &Strategy,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), SftpError> {
    reader.open().await?;
    let chunk = sessions
        .iter()
        .map(|s| s.write_chunk())
        .min()
        .unwrap_or(profile::SAFE_IO)
        .min(strategy.write_len)
        .max(1);
    let limit = strategy.in_flight.max(1) * sessions.len();
    let byte_limit = (strategy.in_flight_bytes.max(chunk) * sessions.len()) as u64;
    let mut in_flight = 0u64;
    let n = sessions.len();
    // A whole number of requests per block, so no request is split across two reads.
    let block_len = (BLOCK / chunk).max(1) * chunk;
    let mut block = vec![0u8; block_len];
    let (mut filled, mut pos) = (0usize, 0usize);
    let mut offset = 0u64;
    let mut acked = 0u64;
    let mut i = 0usize;
    let mut q = FuturesUnordered::new();
    // The bytes sent, hashed in file order: a spool file that changes during the upload
    // never reaches the commit.
    let mut sent = <sha2::Sha256 as sha2::Digest>::new();
    loop {
        let (avail, complete) = reader.readable()?;
        while q.len() < limit && in_flight + chunk as u64 <= byte_limit {
            if pos == filled {
                if offset >= avail {
                    break;
                }
                let want = block_len.min((avail - offset) as usize);
                block = reader.read_at(block, offset, want).await?;
                filled = want;
                pos = 0;
                sha2::Digest::update(&mut sent, &block[..filled]);
            }
            let len = chunk.min(filled - pos);
            let (s, h) = (sessions[i % n], handles[i % n].as_str());
            i += 1;
            // Serialized and queued now, straight from the block (one copy into the
            // packet); the future only waits for the server's status.
            let ack = s.raw.write_from_slice(h, offset, &block[pos..pos + len]);
            pos += len;
            offset += len as u64;
            in_flight += len as u64;
            q.push(async move { (len, ack.await) });
        }
        // Everything read so far is sent and the file has not grown further.
        let starved = pos == filled && offset >= avail;
        if q.is_empty() {
            if complete && starved {
                break;
            }
            reader.grown().await?;
            continue;
        }
        tokio::select! {
            r = q.next() => match r {
                Some((len, Ok(_))) => {
                    in_flight -= len as u64;
                    acked += len as u64;
                    progress(acked);
                }
                Some((_, Err(e))) => return Err(SftpError::remote("write", part, e)),
                None => {}
            },
            g = reader.grown(), if starved && !complete => g?,
        }
    }
    let (size, sha) = reader.end().expect("the loop ends at the file's end");
    let sum = hex::encode(sha2::Digest::finalize(sent));
    if offset != size || !sum.eq_ignore_ascii_case(&sha) {
        return Err(SftpError::LocalChanged {
            path: up.local.clone(),
            detail: format!(
                "the {offset} bytes sent hash to {sum}, not the sealed {sha} of {size} bytes"
            ),
        });
    }
    Ok(())
}

/// Where an upload's bytes come from: the complete spool file, or one still being sealed
/// ([`Growing`]), read as far as it has grown.
pub(crate) struct Reader {
    path: PathBuf,
    file: Option<Arc<std::fs::File>>,
    /// The growing file's reader, until it is handed over.
    pending: Option<tokio::sync::oneshot::Receiver<std::fs::File>>,
    growth: Option<tokio::sync::watch::Receiver<Growth>>,
    /// The whole file's size and SHA-256 (hex), once known.
    end: Option<(u64, String)>,
}

impl Reader {
    /// The complete file at `path`, of `size` bytes hashing to `sha256`.
    pub(crate) fn complete(path: &Path, size: u64, sha256: &str) -> Reader {
        Reader {
            path: path.to_path_buf(),
            file: None,
            pending: None,
            growth: None,
            end: Some((size, sha256.to_string())),
        }
    }

    /// A file still being written (its final name is `path`).
    pub(crate) fn growing(path: &Path, g: Growing) -> Reader {
        Reader {
            path: path.to_path_buf(),
            file: None,
            pending: Some(g.file),
            growth: Some(g.growth),
            end: None,
        }
    }

    /// The whole file's size and SHA-256, once it is complete.
    pub(crate) fn end(&self) -> Option<(u64, String)> {
        self.end.clone()
    }

    fn local(&self, source: std::io::Error) -> SftpError {
        SftpError::Local {
            path: self.path.clone(),
            source,
        }
    }

    fn stopped(&self, why: &str) -> SftpError {
        SftpError::SourceStopped {
            path: self.path.clone(),
            why: why.to_string(),
        }
    }

    /// Ready to read from the start (again, after a fallback to one channel).
    async fn open(&mut self) -> Result<(), SftpError> {
        if let Some(rx) = self.pending.take() {
            match rx.await {
                Ok(f) => self.file = Some(Arc::new(f)),
                Err(_) => {
                    // The writer went away without a file: say why if it did.
                    self.readable()?;
                    return Err(self.stopped("no file was made"));
                }
            }
        }
        // A growing file keeps the sealer's descriptor (reads are positioned, so a second
        // pass needs no seek); a complete one is opened (again) by name.
        if self.file.is_none() || self.growth.is_none() {
            let path = self.path.clone();
            let f = tokio::task::spawn_blocking(move || std::fs::File::open(path))
                .await
                .map_err(|e| self.local(std::io::Error::other(e)))?
                .map_err(|e| self.local(e))?;
            self.file = Some(Arc::new(f));
        }
        Ok(())
    }

    /// Bytes readable now, and whether that is the whole file; the writer's failure as an
    /// error.
    fn readable(&mut self) -> Result<(u64, bool), SftpError> {
        if let Some((n, _)) = &self.end {
            return Ok((*n, true));
        }
        let Some(rx) = self.growth.as_mut() else {
            return Err(self.stopped("no size"));
        };
        let g = rx.borrow_and_update().clone();
        match g {
            Growth::Written(n) => Ok((n, false)),
            Growth::Complete { bytes, sha256 } => {
                self.end = Some((bytes, sha256));
                Ok((bytes, true))
            }
            Growth::Failed(why) => Err(self.stopped(&why)),
        }
    }

    /// Waits until the file grew, ended or failed (see [`Reader::readable`]).
    async fn grown(&mut self) -> Result<(), SftpError> {
        let Some(rx) = self.growth.as_mut() else {
            return Ok(());
        };
        if rx.changed().await.is_err() {
            // The writer is gone: fine if it said the file is complete.
            let last = rx.borrow().clone();
            return match last {
                Growth::Complete { .. } => Ok(()),
                Growth::Failed(why) => Err(self.stopped(&why)),
                Growth::Written(_) => Err(self.stopped("it ended without finishing")),
            };
        }
        Ok(())
    }

    /// Fills `buf[..len]` with the file's bytes from `offset` (a positioned read on a
    /// blocking thread, into the caller's buffer: no copy through an intermediate one) and
    /// hands the buffer back.
    async fn read_at(
        &mut self,
        mut buf: Vec<u8>,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, SftpError> {
        use std::os::unix::fs::FileExt;
        let f = self.file.clone().expect("opened");
        let read = tokio::task::spawn_blocking(move || {
            let r = f.read_exact_at(&mut buf[..len], offset);
            (buf, r)
        })
        .await;
        match read {
            Ok((buf, Ok(()))) => Ok(buf),
            Ok((_, Err(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(SftpError::LocalChanged {
                    path: self.path.clone(),
                    detail: "it shrank while it was being uploaded".into(),
                })
            }
            Ok((_, Err(e))) => Err(self.local(e)),
            Err(e) => Err(self.local(std::io::Error::other(e))),
        }
    }
}
