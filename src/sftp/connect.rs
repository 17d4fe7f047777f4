//! The SSH side of a delivery: TCP connect with a timeout (the server's identification
//! line read off the stream), the handshake with the pinned keys of [`super::hostkey`],
//! login with the secrets of [`super::secrets`], and opening SFTP sessions on channels of
//! that one connection.

use super::hostkey::{accepted_keys, fingerprint, PinHandler, Seen};
use super::secrets::{load_creds, Creds};
use super::{SftpError, Target};
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use russh::ChannelMsg;
use russh_sftp::client::RawSftpSession;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};

/// Reads through to the TCP stream and keeps the server's identification line (the first
/// line starting with `SSH-`, RFC 4253 section 4.2), which russh does not expose. Looks at
/// no more than the first 8 KiB; after that it is a plain pass-through.
struct BannerTap {
    inner: tokio::net::TcpStream,
    seen: Vec<u8>,
    done: bool,
    banner: Arc<Mutex<Option<String>>>,
}

impl BannerTap {
    fn look(&mut self, new: &[u8]) {
        let take = new.len().min(8192 - self.seen.len());
        self.seen.extend_from_slice(&new[..take]);
        let mut start = 0;
        while let Some(i) = self.seen[start..].iter().position(|b| *b == b'\n') {
            let line = &self.seen[start..start + i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.starts_with(b"SSH-") {
                *self.banner.lock().unwrap() = Some(super::profile::clean_bytes(line, 255));
                self.seen = Vec::new();
                self.done = true;
                return;
            }
            start += i + 1;
        }
        self.done = self.seen.len() >= 8192;
    }
}

impl tokio::io::AsyncRead for BannerTap {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if !self.done && r.is_ready() && buf.filled().len() > before {
            let new = buf.filled()[before..].to_vec();
            self.look(&new);
        }
        r
    }
}

impl tokio::io::AsyncWrite for BannerTap {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// russh client configuration shared by all connections.
pub(crate) fn ssh_config(preferred_keys: Option<Vec<russh::keys::Algorithm>>) -> client::Config {
    let mut cfg = client::Config {
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    };
    // AES-GCM first: with AES-NI (ring) it costs both ends far less CPU than
    // chacha20-poly1305, russh's default first choice; that decides loopback throughput.
    cfg.preferred.cipher = std::borrow::Cow::Borrowed(&[
        russh::cipher::AES_128_GCM,
        russh::cipher::AES_256_GCM,
        russh::cipher::CHACHA20_POLY1305,
        russh::cipher::AES_256_CTR,
        russh::cipher::AES_192_CTR,
        russh::cipher::AES_128_CTR,
    ]);
    if let Some(keys) = preferred_keys {
        cfg.preferred.key = keys.into();
    }
    cfg
}

/// Maps a russh error after the TCP connect to our error.
fn transport(addr: &str, e: russh::Error) -> SftpError {
    if matches!(e, russh::Error::NoCommonAlgo { .. }) {
        return SftpError::Negotiation {
            addr: addr.to_string(),
            message: e.to_string(),
        };
    }
    SftpError::Transport {
        addr: addr.to_string(),
        message: e.to_string(),
    }
}

/// An authenticated connection.
pub(crate) struct Conn {
    pub handle: Handle<PinHandler>,
    pub addr: String,
    pub host_key_sha256: String,
    /// The server's identification line, cleaned.
    pub banner: String,
}

/// TCP connect + handshake, under one timeout. Returns the handle and what was seen.
pub(crate) async fn handshake(
    host: &str,
    port: u16,
    accepted: Vec<PublicKey>,
    cfg: client::Config,
    timeout: Duration,
) -> Result<(Handle<PinHandler>, Seen), (SftpError, Seen)> {
    let addr = format!("{host}:{port}");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = PinHandler::new(accepted, seen.clone());
    let banner = Arc::new(Mutex::new(None::<String>));
    let snapshot = |s: &Arc<Mutex<Seen>>| {
        let mut seen = s.lock().unwrap().clone();
        seen.banner = banner.lock().unwrap().clone().unwrap_or_default();
        seen
    };
    let fut = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| SftpError::Connect {
                addr: addr.clone(),
                source: e,
            })?;
        let _ = tcp.set_nodelay(true);
        let tap = BannerTap {
            inner: tcp,
            seen: Vec::new(),
            done: false,
            banner: banner.clone(),
        };
        client::connect_stream(Arc::new(cfg), tap, handler)
            .await
            .map_err(|e| transport(&addr, e))
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err((
            SftpError::ConnectTimeout {
                addr: addr.clone(),
                secs: timeout.as_secs(),
            },
            snapshot(&seen),
        )),
        Ok(Err(e)) => Err((e, snapshot(&seen))),
        Ok(Ok(h)) => Ok((h, snapshot(&seen))),
    }
}

/// Connect, pin, authenticate. Everything up to a logged-in connection.
pub(crate) async fn connect(t: &Target) -> Result<Conn, SftpError> {
    let creds = load_creds(&t.auth)?;
    let accepted = accepted_keys(t)?;
    let addr = format!("{}:{}", t.host, t.port);
    let started = std::time::Instant::now();
    let (mut handle, seen) = match handshake(
        &t.host,
        t.port,
        accepted,
        ssh_config(None),
        t.connect_timeout,
    )
    .await
    {
        Ok(x) => x,
        Err((e, seen)) => {
            if let (Some(key), false) = (&seen.key, seen.accepted) {
                let err = SftpError::HostKeyMismatch {
                    addr: addr.clone(),
                    algorithm: key.algorithm().as_str().to_string(),
                    offered: fingerprint(key),
                };
                warn!(host = %t.host, port = t.port, offered = %fingerprint(key), "Host key does not match the pinned keys.");
                return Err(err);
            }
            return Err(e);
        }
    };
    let host_key_sha256 = seen.key.as_ref().map(fingerprint).unwrap_or_default();
    debug!(host = %t.host, port = t.port, host_key = %host_key_sha256, "Host key accepted.");

    let remaining = t.connect_timeout.saturating_sub(started.elapsed());
    let auth = async {
        match creds {
            Creds::Password(pw) => {
                let r = handle
                    .authenticate_password(t.username.clone(), pw)
                    .await
                    .map_err(|e| transport(&addr, e))?;
                Ok::<_, SftpError>((r.success(), "password"))
            }
            Creds::Key(key) => {
                let hash = if key.algorithm().is_rsa() {
                    handle
                        .best_supported_rsa_hash()
                        .await
                        .map_err(|e| transport(&addr, e))?
                        .flatten()
                } else {
                    None
                };
                let r = handle
                    .authenticate_publickey(
                        t.username.clone(),
                        PrivateKeyWithHashAlg::new(key, hash),
                    )
                    .await
                    .map_err(|e| transport(&addr, e))?;
                Ok((r.success(), "publickey"))
            }
        }
    };
    let (ok, method) = tokio::time::timeout(remaining.max(Duration::from_secs(1)), auth)
        .await
        .map_err(|_| SftpError::ConnectTimeout {
            addr: addr.clone(),
            secs: t.connect_timeout.as_secs(),
        })??;
    if !ok {
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        return Err(SftpError::AuthRefused {
            addr,
            user: t.username.clone(),
            method,
        });
    }
    info!(host = %t.host, port = t.port, user = %t.username, method, host_key = %host_key_sha256, "Logged in.");
    Ok(Conn {
        handle,
        addr,
        host_key_sha256,
        banner: seen.banner.clone(),
    })
}

/// An SFTP session on its own channel, with the server's extension list.
pub(crate) struct Sftp {
    pub raw: RawSftpSession,
    pub extensions: HashMap<String, String>,
    /// The SFTP version the server answered with.
    pub version: u32,
    /// Server limits from `limits@openssh.com`, when offered.
    pub limits: Option<super::profile::Limits>,
    /// Bytes per WRITE / READ request on this session (from the [`super::profile::Strategy`]).
    pub write_len: usize,
    pub read_len: usize,
}

/// Request size for a stated server limit (0 or none: the 32 KiB every server takes).
fn io_len(stated: Option<u64>) -> usize {
    match stated {
        Some(l) if l > 0 => (l.min(super::profile::MAX_IO as u64) as usize).max(1024),
        _ => super::profile::SAFE_IO,
    }
}

impl Conn {
    /// Opens a channel, starts the `sftp` subsystem and runs INIT.
    pub(crate) async fn open_sftp(&self, request_timeout: Duration) -> Result<Sftp, SftpError> {
        let addr = &self.addr;
        let mut ch = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| transport(addr, e))?;
        ch.request_subsystem(true, "sftp")
            .await
            .map_err(|e| transport(addr, e))?;
        // Wait for the answer: a refused subsystem otherwise only shows up as an INIT timeout.
        loop {
            match tokio::time::timeout(request_timeout, ch.wait()).await {
                Err(_) => {
                    return Err(SftpError::Transport {
                        addr: addr.clone(),
                        message: "no answer to the sftp subsystem request".into(),
                    })
                }
                Ok(None) => {
                    return Err(SftpError::Transport {
                        addr: addr.clone(),
                        message: "channel closed while starting sftp".into(),
                    })
                }
                Ok(Some(ChannelMsg::Success)) => break,
                Ok(Some(ChannelMsg::Failure)) => {
                    return Err(SftpError::NoSftpSubsystem { addr: addr.clone() })
                }
                Ok(Some(_)) => continue,
            }
        }
        let cfg = russh_sftp::client::Config {
            max_concurrent_writes: super::profile::MAX_IN_FLIGHT,
            request_timeout_secs: request_timeout.as_secs().max(1),
            // Replies to our largest READ (MAX_IO) fit with room to spare; a server that
            // sends more ends the session at once (untrusted input, bounded memory).
            max_packet_len: super::profile::MAX_PACKET,
            ..Default::default()
        };
        let mut raw = RawSftpSession::new_with_config(ch.into_stream(), cfg);
        let version = raw
            .init()
            .await
            .map_err(|e| SftpError::remote("init", "", e))?;
        let mut limits = None;
        if version
            .extensions
            .get(super::profile::LIMITS)
            .is_some_and(|v| v == "1")
        {
            if let Ok(l) = raw.limits().await {
                limits = Some(super::profile::Limits {
                    packet_len: l.max_packet_len,
                    read_len: l.max_read_len,
                    write_len: l.max_write_len,
                    open_handles: l.max_open_handles,
                });
                raw.set_limits(l.into());
            }
        }
        Ok(Sftp {
            raw,
            extensions: version.extensions,
            version: version.version,
            limits,
            write_len: io_len(limits.map(|l| l.write_len)),
            read_len: io_len(limits.map(|l| l.read_len)),
        })
    }

    /// The server's profile as seen on `s` (banner, version, extensions, limits) plus what
    /// earlier connections to the same host and port learned by trying.
    pub(crate) fn profile(&self, s: &Sftp) -> super::profile::ServerProfile {
        let mut p = super::profile::ServerProfile::new(
            &self.banner,
            s.version,
            s.extensions.iter().map(|(k, v)| (k.clone(), v.clone())),
        );
        p.limits = s.limits;
        super::learned::apply(&self.addr, &mut p);
        p
    }

    /// Resolves when the SSH connection is gone (reset, EOF, keepalive timeout). Pending
    /// SFTP requests of a dead connection otherwise only fail at their request timeout.
    pub(crate) async fn lost(&self) -> SftpError {
        while !self.handle.is_closed() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        SftpError::Transport {
            addr: self.addr.clone(),
            message: "connection lost".into(),
        }
    }

    /// Runs `fut` but fails fast with a retryable error when the connection dies meanwhile.
    pub(crate) async fn guard<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, SftpError>>,
    ) -> Result<T, SftpError> {
        tokio::select! {
            r = fut => r,
            e = self.lost() => Err(e),
        }
    }

    pub(crate) async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}
