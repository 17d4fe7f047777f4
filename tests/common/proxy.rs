//! A loopback TCP proxy for fault injection: forwards to an upstream port, counts
//! connections and bytes, and on request cuts connections after N bytes client -> server
//! (all of them or only the first ones), throttles uploads, or refuses connections.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What goes wrong on the way.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Close both sides once this many bytes went client -> server on a connection.
    pub cut_after: Option<u64>,
    /// Cut only the first this many connections (all when `None`).
    pub cut_connections: Option<u64>,
    /// Leave the first this many connections alone (a probe passes, the upload is cut).
    pub spare_first: u64,
    /// Throttle client -> server to this many bytes per second.
    pub rate: Option<u64>,
}

pub struct Proxy {
    pub port: u16,
    /// Bytes forwarded client -> server so far (all connections).
    pub up_bytes: Arc<AtomicU64>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicU64>,
    /// While set, every new connection is closed at once (the server "is down").
    pub down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy on a free port to 127.0.0.1:`upstream` that cuts every connection after
    /// `cut_after` bytes client -> server.
    pub async fn start(upstream: u16, cut_after: Option<u64>) -> Proxy {
        Proxy::with(
            0,
            upstream,
            Faults {
                cut_after,
                ..Faults::default()
            },
        )
        .await
    }

    /// A proxy on 127.0.0.1:`port` (0: a free one) to 127.0.0.1:`upstream` with `faults`.
    pub async fn with(port: u16, upstream: u16, faults: Faults) -> Proxy {
        let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let up_bytes = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (counter, conns, is_down) = (up_bytes.clone(), connections.clone(), down.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = l.accept().await else {
                    return;
                };
                let nth = conns.fetch_add(1, Ordering::SeqCst);
                if is_down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let cut_after = faults
                    .cut_after
                    .filter(|_| nth >= faults.spare_first)
                    .filter(|_| {
                        faults
                            .cut_connections
                            .is_none_or(|k| nth < faults.spare_first + k)
                    });
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
                            if let Some(rate) = faults.rate {
                                tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64))
                                    .await;
                            }
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
            connections,
            down,
            task,
        }
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}
