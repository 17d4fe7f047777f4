//! A loopback TCP proxy for fault injection: forwards to an upstream port and, when a cut
//! is set, drops both sides once that many bytes went client -> server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub port: u16,
    /// Bytes forwarded client -> server so far (all connections).
    pub up_bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to 127.0.0.1:`upstream`; `cut_after` bytes client->server per
    /// connection, then both sockets are closed.
    pub async fn start(upstream: u16, cut_after: Option<u64>) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let up_bytes = Arc::new(AtomicU64::new(0));
        let counter = up_bytes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = l.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut sent = 0u64;
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let n = match cut_after {
                                Some(limit) if sent + n as u64 >= limit => {
                                    let keep = (limit - sent) as usize;
                                    let _ = sw.write_all(&buf[..keep]).await;
                                    counter.fetch_add(keep as u64, Ordering::Relaxed);
                                    return; // cut: drop both directions
                                }
                                _ => n,
                            };
                            if sw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                            sent += n as u64;
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    };
                    // Whichever side ends first ends the connection (both halves dropped).
                    tokio::select! {
                        _ = up => {},
                        _ = down => {},
                    }
                });
            }
        });
        Proxy {
            port,
            up_bytes,
            task,
        }
    }
}
