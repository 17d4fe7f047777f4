//! The data path of [`super::deliver`]: name rules (temp, versioned, sidecar names), the
//! pipelined upload of the artifact over one or more SFTP channels, and the commit,
//! verify and sidecar steps of the protocol described in [`super`].

use super::connect::{self, Conn, Sftp};
use super::remote::{attrs_0600, join};
use super::{Delivered, IfExists, SftpError, Target, Upload, Verify};
use futures::stream::{FuturesUnordered, StreamExt};
use russh_sftp::protocol::{OpenFlags, StatusCode};
use tokio::io::AsyncReadExt;
use tracing::{debug, info, warn};

/// Write requests in flight per channel (russh-sftp default is 16; 64 measured best).
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// Sidecar suffixes, in upload order.
pub(crate) const SIDECARS: [&str; 3] = [".sha256", ".manifest.json", ".done"];

/// Knobs of the data path. The defaults are what measured best on loopback and at 50 ms RTT.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// SFTP channels (each its own `sftp-server` and its own 2 MiB SSH window at OpenSSH)
    /// writing disjoint ranges of the temp file. More channels help at high RTT.
    pub channels: usize,
    /// WRITE requests in flight per channel at most.
    pub in_flight: usize,
    /// Bytes in flight per channel at most. OpenSSH's channel window is 2 MiB: more only
    /// waits in queues, and a request's timer (`io_timeout`) runs while it waits, so keep
    /// `channels * in_flight_bytes / slowest bandwidth` well below `io_timeout`.
    pub in_flight_bytes: usize,
    /// Bytes per WRITE request; 0 = the server's `limits@openssh.com` maximum (<= 256 KiB),
    /// or 32 KiB when the server does not say.
    pub chunk: usize,
    /// Use `posix-rename@openssh.com` when offered. Off only for servers whose extension
    /// misbehaves (and to test the rename-aside fallback).
    pub posix_rename: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            channels: 4,
            in_flight: MAX_IN_FLIGHT,
            in_flight_bytes: 4 << 20,
            chunk: 0,
            posix_rename: true,
        }
    }
}

/// A final file name must be one plain, visible path component.
pub(crate) fn check_name(name: &str) -> Result<(), SftpError> {
    let bad = |reason| {
        Err(SftpError::InvalidName {
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 200 {
        return bad("longer than 200 bytes");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("contains a path separator");
    }
    if name.starts_with('.') {
        return bad("starts with a dot");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("contains a control character");
    }
    Ok(())
}

fn check_run_id(run: &str) -> Result<(), SftpError> {
    if run.is_empty()
        || run.len() > 64
        || !run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(SftpError::InvalidName {
            name: run.into(),
            reason: "a run id must be 1-64 characters of [A-Za-z0-9_-]",
        });
    }
    Ok(())
}

/// `.NAME.RUN.part`.
pub(crate) fn part_name(final_name: &str, run: &str) -> String {
    format!(".{final_name}.{run}.part")
}

/// Whether `name` is a temp file of `final_name` from any run (with one of the suffixes).
fn is_stale_part(final_name: &str, name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(final_name))
        .and_then(|r| r.strip_suffix(".part"))
    else {
        return false;
    };
    // rest = ".RUN" or ".sha256.RUN", ".manifest.json.RUN", ".done.RUN"
    let mut r = rest;
    for suffix in SIDECARS {
        if let Some(x) = r.strip_prefix(suffix) {
            r = x;
            break;
        }
    }
    match r.strip_prefix('.') {
        Some(run) => check_run_id(run).is_ok(),
        None => false,
    }
}

/// `a.dsv.age`, 3 -> `a.v3.dsv.age`; `a`, 2 -> `a.v2`.
pub(crate) fn versioned_name(final_name: &str, n: u32) -> String {
    match final_name.find('.') {
        Some(i) => format!("{}.v{n}{}", &final_name[..i], &final_name[i..]),
        None => format!("{final_name}.v{n}"),
    }
}

/// If `name` is `versioned_name(final_name, n)` for some n >= 2, that n.
pub(crate) fn version_of(final_name: &str, name: &str) -> Option<u32> {
    let (stem, ext) = match final_name.find('.') {
        Some(i) => (&final_name[..i], &final_name[i..]),
        None => (final_name, ""),
    };
    let mid = name
        .strip_prefix(stem)?
        .strip_suffix(ext)?
        .strip_prefix(".v")?;
    if mid.is_empty() || !mid.bytes().all(|b| b.is_ascii_digit()) || mid.starts_with('0') {
        return None;
    }
    mid.parse().ok().filter(|n| *n >= 2)
}

/// Delivers with explicit [`Tuning`] (see [`super::deliver`]).
pub async fn deliver_with(
    target: &Target,
    up: &Upload,
    tuning: &Tuning,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Delivered, SftpError> {
    check_name(&up.final_name)?;
    check_run_id(&up.run_id)?;
    if up.sha256_hex.len() != 64 || !up.sha256_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SftpError::InvalidName {
            name: "sha256_hex".into(),
            reason: "the local file's SHA-256 must be 64 hex digits",
        });
    }
    let local_meta = std::fs::metadata(&up.local).map_err(|e| SftpError::Local {
        path: up.local.clone(),
        source: e,
    })?;
    let size = local_meta.len();
    let started = std::time::Instant::now();
    info!(host = %target.host, port = target.port, remote_dir = %target.remote_dir,
          file = %up.final_name, run = %up.run_id, bytes = size, "Delivery starting.");
    let conn = connect::connect(target).await?;
    // Extra channels only for files big enough to benefit (> 8 MiB). All channels open at
    // once: at high RTT every sequential round trip counts.
    let want = if size > 8 << 20 {
        tuning.channels.max(1)
    } else {
        1
    };
    let mut sessions = Vec::with_capacity(want);
    let res = conn
        .guard(async {
            let opened =
                futures::future::join_all((0..want).map(|_| conn.open_sftp(target.io_timeout)))
                    .await;
            let mut first_err = None;
            for s in opened {
                match s {
                    Ok(mut s) => {
                        if !tuning.posix_rename {
                            s.extensions.remove(super::remote::POSIX_RENAME);
                        }
                        sessions.push(s);
                    }
                    // The server may limit sessions per connection (MaxSessions): use fewer.
                    Err(e) => {
                        debug!(error = %e, "Could not open an SFTP channel.");
                        first_err.get_or_insert(e);
                    }
                }
            }
            if sessions.is_empty() {
                return Err(first_err.expect("at least one channel was tried"));
            }
            run(&conn, &sessions, target, up, size, tuning, progress).await
        })
        .await;
    for s in &sessions {
        let _ = s.raw.close_session();
    }
    conn.close().await;
    match &res {
        Ok(d) => {
            let secs = started.elapsed().as_secs_f64();
            info!(remote_path = %d.remote_path, bytes = d.bytes, host_key = %d.host_key_sha256,
                  fsync = d.fsync, posix_rename = d.posix_rename, verified = ?d.verified,
                  secs, mib_per_s = (d.bytes as f64 / 1048576.0) / secs.max(1e-9),
                  "Delivery succeeded.")
        }
        Err(e) => {
            use crate::retry::Classify;
            warn!(host = %target.host, file = %up.final_name, run = %up.run_id,
                  class = e.class().as_str(), error = %e, "Delivery failed.")
        }
    }
    res
}

async fn run(
    conn: &Conn,
    sessions: &[Sftp],
    target: &Target,
    up: &Upload,
    size: u64,
    tuning: &Tuning,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Delivered, SftpError> {
    let dir = target.remote_dir.as_str();
    let fin = up.final_name.as_str();
    let part = join(dir, &part_name(fin, &up.run_id));
    {
        let s = &sessions[0];
        // The listing also proves the folder exists (one round trip less than stat first).
        // Write-only drop folders refuse listing: then check names one by one.
        let listing = match s.list(dir).await {
            Ok(names) => Some(names),
            Err(e) => match e.status_code() {
                Some(StatusCode::NoSuchFile) => {
                    let created = s.ensure_dir(dir, target.create_dirs).await?;
                    if created {
                        Some(Vec::new())
                    } else {
                        s.list(dir).await.ok()
                    }
                }
                Some(StatusCode::PermissionDenied) => {
                    s.ensure_dir(dir, false).await?;
                    warn!(
                        dir,
                        "The remote folder cannot be listed; stale temp files stay."
                    );
                    None
                }
                _ => return Err(e),
            },
        };
        let present = |name: String| {
            let listed = listing.as_ref().map(|n| n.contains(&name));
            async move {
                match listed {
                    Some(b) => Ok(b),
                    None => s.exists(&join(dir, &name)).await,
                }
            }
        };
        let names = listing.clone().unwrap_or_default();

        // Stale temp files of earlier attempts (any run id), before we write anything.
        for name in &names {
            if is_stale_part(fin, name) {
                let p = join(dir, name);
                s.remove_if_exists(&p).await?;
                info!(path = %p, "Removed a stale temp file of an earlier attempt.");
            }
        }
        // An earlier attempt of this artifact may have committed and then died before its
        // sidecars: with `fail` or `version`, the identical file counts as delivered (no
        // conflict, no duplicate version); only the sidecars are (re)written.
        if up.if_exists != IfExists::Overwrite {
            let mut candidates = vec![fin.to_string()];
            if up.if_exists == IfExists::Version {
                let mut v: Vec<(u32, &String)> = names
                    .iter()
                    .filter_map(|n| version_of(fin, n).map(|k| (k, n)))
                    .collect();
                v.sort();
                candidates.extend(v.into_iter().map(|(_, n)| n.clone()));
            }
            for name in candidates {
                if !present(name.clone()).await? {
                    continue;
                }
                if let Some(verified) = same_file(s, dir, &name, size, up).await? {
                    info!(path = %join(dir, &name), "The artifact is already there from an earlier attempt; completing its sidecars.");
                    let sidecars = put_sidecars(s, dir, &name, up).await?;
                    return Ok(Delivered {
                        remote_path: join(dir, &name),
                        final_name: name,
                        bytes: size,
                        host_key_sha256: conn.host_key_sha256.clone(),
                        fsync: false,
                        posix_rename: false,
                        verified,
                        sidecars,
                    });
                }
            }
        }
        if up.if_exists == IfExists::Fail && present(fin.to_string()).await? {
            return Err(SftpError::FinalExists {
                path: join(dir, fin),
            });
        }
    }

    let written = upload_part(sessions, &part, up, size, tuning, progress).await;
    let (fsync, actual) = match written {
        Ok(x) => x,
        Err(e) => {
            // Best effort: the next attempt removes it anyway.
            if e.class_is_connection_alive() {
                let _ = sessions[0].remove_if_exists(&part).await;
            }
            return Err(e);
        }
    };
    let s = &sessions[0];
    if actual != size {
        let _ = s.remove_if_exists(&part).await;
        return Err(SftpError::SizeMismatch {
            path: part,
            expected: size,
            actual,
        });
    }
    // Read-back on the complete temp file, before the commit: a mismatch then leaves
    // nothing under the final name (the rename does not change the bytes).
    if up.verify == Verify::ReadBack {
        let (sum, n) = s.hash_remote(&part, size).await?;
        if n != size || !sum.eq_ignore_ascii_case(&up.sha256_hex) {
            let _ = s.remove_if_exists(&part).await;
            return Err(SftpError::ChecksumMismatch {
                path: part,
                expected: up.sha256_hex.to_ascii_lowercase(),
                actual: sum,
            });
        }
        debug!(path = %part, sha256 = %sum, "Read-back verified.");
    }

    // Commit.
    let (final_name, posix_rename) = match up.if_exists {
        IfExists::Fail => {
            let dst = join(dir, fin);
            if let Err(e) = s.rename(&part, &dst).await {
                let taken = s.exists(&dst).await.unwrap_or(false);
                let _ = s.remove_if_exists(&part).await;
                return Err(if taken {
                    SftpError::FinalExists { path: dst }
                } else {
                    e
                });
            }
            (fin.to_string(), false)
        }
        IfExists::Overwrite => {
            let dst = join(dir, fin);
            let aside = join(dir, &format!(".{fin}.{}.old", up.run_id));
            let atomic = s.replace(&part, &dst, &aside).await?;
            (fin.to_string(), atomic)
        }
        IfExists::Version => {
            let mut chosen = None;
            for n in 1..=999u32 {
                let name = if n == 1 {
                    fin.to_string()
                } else {
                    versioned_name(fin, n)
                };
                let dst = join(dir, &name);
                if s.exists(&dst).await? {
                    continue;
                }
                match s.rename(&part, &dst).await {
                    Ok(()) => {
                        chosen = Some(name);
                        break;
                    }
                    // Lost a race for this name: try the next one.
                    Err(_) if s.exists(&dst).await? => continue,
                    Err(e) => return Err(e),
                }
            }
            match chosen {
                Some(n) => (n, false),
                None => {
                    let _ = s.remove_if_exists(&part).await;
                    return Err(SftpError::NoFreeVersion {
                        path: join(dir, fin),
                        tried: 999,
                    });
                }
            }
        }
    };
    let remote_path = join(dir, &final_name);
    debug!(path = %remote_path, posix_rename, "Committed.");

    let sidecars = put_sidecars(s, dir, &final_name, up).await?;
    Ok(Delivered {
        remote_path,
        final_name,
        bytes: size,
        host_key_sha256: conn.host_key_sha256.clone(),
        fsync,
        posix_rename,
        verified: up.verify,
        sidecars,
    })
}

/// Is `dir/name` this artifact? `Some(how it was verified)` when its size matches and either
/// its `.sha256` sidecar names this checksum (and `up.verify` is `Size`) or a read-back
/// hash matches.
async fn same_file(
    s: &Sftp,
    dir: &str,
    name: &str,
    size: u64,
    up: &Upload,
) -> Result<Option<Verify>, SftpError> {
    let path = join(dir, name);
    match s.stat(&path).await? {
        Some(a) if a.is_regular() && a.size == Some(size) => {}
        _ => return Ok(None),
    }
    if up.verify == Verify::Size {
        let want = format!("{}  {}", up.sha256_hex.to_ascii_lowercase(), name);
        if let Some(side) = s.read_small(&format!("{path}.sha256"), 4096).await? {
            if String::from_utf8_lossy(&side)
                .lines()
                .any(|l| l.trim_end() == want)
            {
                return Ok(Some(Verify::Size));
            }
        }
    }
    let (sum, n) = s.hash_remote(&path, size).await?;
    Ok((n == size && sum.eq_ignore_ascii_case(&up.sha256_hex)).then_some(Verify::ReadBack))
}

/// Sidecars of `final_name`, each via temp + rename: checksum, manifest, done-marker last.
async fn put_sidecars(
    s: &Sftp,
    dir: &str,
    final_name: &str,
    up: &Upload,
) -> Result<Vec<String>, SftpError> {
    let fin = up.final_name.as_str();
    let mut files: Vec<(&str, Vec<u8>)> = vec![(
        SIDECARS[0],
        format!("{}  {}\n", up.sha256_hex.to_ascii_lowercase(), final_name).into_bytes(),
    )];
    if let Some(m) = &up.manifest {
        files.push((SIDECARS[1], m.clone()));
    }
    if up.done_marker {
        files.push((SIDECARS[2], Vec::new()));
    }
    let mut sidecars = Vec::new();
    for (suffix, data) in files {
        let name = format!("{final_name}{suffix}");
        let tmp = join(dir, &format!(".{fin}{suffix}.{}.part", up.run_id));
        s.put_small(&join(dir, &name), &tmp, &data).await?;
        sidecars.push(name);
    }
    Ok(sidecars)
}

impl SftpError {
    /// Whether the SSH/SFTP session is probably still usable after this error.
    fn class_is_connection_alive(&self) -> bool {
        matches!(
            self,
            SftpError::Remote { code: Some(_), .. } | SftpError::Local { .. }
        )
    }
}

/// Uploads the local file to `part` over all `sessions`; returns whether fsync was done and
/// the size the server reports for the file.
async fn upload_part(
    sessions: &[Sftp],
    part: &str,
    up: &Upload,
    size: u64,
    tuning: &Tuning,
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
            Err(e) => debug!(error = %e, "Extra channel cannot open the temp file; not used."),
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
    let written = write_all(&sessions, &handles, part, up, size, tuning, progress).await;
    let t1 = std::time::Instant::now();
    let mut fsync = false;
    let mut actual = 0;
    let mut res = written.map(|_| ());
    if res.is_ok() {
        // Every write is acknowledged: fsync and fstat in the same round trip.
        let (f, st) = futures::future::join(
            sessions[0].fsync(&handles[0], part),
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

async fn write_all(
    sessions: &[&Sftp],
    handles: &[String],
    part: &str,
    up: &Upload,
    size: u64,
    tuning: &Tuning,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), SftpError> {
    const BLOCK: usize = 1 << 20;
    let local = |e| SftpError::Local {
        path: up.local.clone(),
        source: e,
    };
    let mut file = tokio::fs::File::open(&up.local).await.map_err(local)?;
    let chunk = if tuning.chunk > 0 {
        sessions
            .iter()
            .filter_map(|s| s.write_len)
            .fold(tuning.chunk, |c, l| c.min(l as usize))
    } else {
        sessions
            .iter()
            .map(|s| s.write_chunk())
            .min()
            .unwrap_or(32 * 1024)
    };
    let limit = tuning.in_flight.max(1) * sessions.len();
    let byte_limit = (tuning.in_flight_bytes.max(chunk) * sessions.len()) as u64;
    let mut in_flight = 0u64;
    let n = sessions.len();
    let mut block = vec![0u8; BLOCK];
    let (mut filled, mut pos) = (0usize, 0usize);
    let mut offset = 0u64;
    let mut acked = 0u64;
    let mut i = 0usize;
    let mut q = FuturesUnordered::new();
    loop {
        while q.len() < limit && in_flight + chunk as u64 <= byte_limit && offset < size {
            if pos == filled {
                let want = BLOCK.min((size - offset) as usize);
                filled = 0;
                pos = 0;
                while filled < want {
                    let got = file.read(&mut block[filled..want]).await.map_err(local)?;
                    if got == 0 {
                        return Err(local(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the file shrank while it was being uploaded",
                        )));
                    }
                    filled += got;
                }
            }
            let len = chunk.min(filled - pos);
            let data = block[pos..pos + len].to_vec();
            pos += len;
            let (s, h) = (sessions[i % n], handles[i % n].as_str());
            i += 1;
            let off = offset;
            offset += len as u64;
            in_flight += len as u64;
            q.push(async move { (len, s.raw.write(h, off, data).await) });
        }
        match q.next().await {
            None => break,
            Some((len, Ok(_))) => {
                in_flight -= len as u64;
                acked += len as u64;
                progress(acked);
            }
            Some((_, Err(e))) => return Err(SftpError::remote("write", part, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("a.dsv.age").is_ok());
        for bad in ["", ".a", "a/b", "..", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_run_id("run-1_X").is_ok());
        assert!(check_run_id("a.b").is_err());
        assert_eq!(versioned_name("a.dsv.age", 2), "a.v2.dsv.age");
        assert_eq!(versioned_name("a", 3), "a.v3");
        assert_eq!(version_of("a.dsv.age", "a.v12.dsv.age"), Some(12));
        assert_eq!(version_of("a.dsv.age", "a.v1.dsv.age"), None);
        assert_eq!(version_of("a.dsv.age", "a.dsv.age"), None);
        assert_eq!(version_of("a", "a.v2"), Some(2));
        assert!(is_stale_part("a.age", ".a.age.r1.part"));
        assert!(is_stale_part("a.age", ".a.age.sha256.r1.part"));
        assert!(!is_stale_part("a", ".a.b.r1.part.x"));
        assert!(!is_stale_part("a", ".a.b.c.part"));
        assert!(!is_stale_part("a.age", "a.age"));
    }
}
