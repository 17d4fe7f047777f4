//! The one TCP fault proxy of the tests and the benchmarks (`examples/fault_proxy.rs` runs
//! this file as a program). On loopback, between a client and an upstream port, it forwards
//! both ways and, as asked ([`Faults`]): cuts connections after N bytes client -> server or
//! server -> client (all of them, or only some), stalls them after N bytes until released
//! ([`Proxy::held`]), throttles client -> server, adds latency in each direction (a
//! round trip gains twice [`Faults::delay`], bandwidth is not limited), or closes every new
//! connection at once while [`Proxy::down`] is set; counts the times a byte string
//! ([`Faults::watch`]) went client -> server and cuts before its Nth time (a protocol
//! message, whatever the bytes before it). It counts connections and the bytes it
//! forwarded client -> server.
//!
//! Faults inside the SFTP protocol (a status code, a reply that never comes) are the
//! embedded demo server's (`regdrop::demo_server`), which a TCP proxy cannot inject.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// What goes wrong on the way. The default forwards untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Close both sides once this many bytes went client -> server on a connection.
    pub cut_after: Option<u64>,
    /// Close both sides once this many bytes went server -> client on a connection (a
    /// download or a query's answer cut in the middle); the same connections as `cut_after`.
    pub cut_back_after: Option<u64>,
    /// Cut only the first this many connections (after [`Faults::spare_first`]; all when
    /// `None`).
    pub cut_connections: Option<u64>,
    /// Leave the first this many connections alone (a probe passes, the upload is cut).
    pub spare_first: u64,
    /// Throttle client -> server to this many bytes per second.
    pub rate: Option<u64>,
    /// Hold every byte this long in each direction before passing it on.
    pub delay: Duration,
    /// On the connections a cut would pick ([`Faults::spare_first`],
    /// [`Faults::cut_connections`]), pass nothing more client -> server once this many bytes
    /// went, while [`Proxy::held`] is set (it is, from the start, when this is set).
    pub stall_after: Option<u64>,
    /// Counted in [`Proxy::watched`] each time it goes client -> server (on any connection).
    pub watch: Option<&'static [u8]>,
    /// On the connections a cut would pick, close both sides before the `watch` bytes pass
    /// for this (from 1, counted over all connections) time; at most its first bytes pass
    /// on when it came in two reads.
    pub cut_at_watch: Option<u64>,
}

impl Faults {
    /// Whether the `nth` connection (from 0) is one to cut or stall.
    fn picked(&self, nth: u64) -> bool {
        let spared = nth < self.spare_first;
        let beyond = self
            .cut_connections
            .is_some_and(|k| nth >= self.spare_first + k);
        !spared && !beyond
    }

    /// Where the `nth` connection (from 0) is cut, if it is.
    fn cut_for(&self, nth: u64) -> Option<u64> {
        self.cut_after.filter(|_| self.picked(nth))
    }

    /// Where the `nth` connection (from 0) stalls, if it does.
    fn stall_for(&self, nth: u64) -> Option<u64> {
        self.stall_after.filter(|_| self.picked(nth))
    }
}

/// A running proxy; stops accepting when dropped (open connections end with their peers).
pub struct Proxy {
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    /// Bytes forwarded client -> server so far (all connections).
    pub up_bytes: Arc<AtomicU64>,
    /// Connections accepted so far (refused ones too).
    pub connections: Arc<AtomicU64>,
    /// Connections ended so far, every byte that came passed on (refused ones too).
    pub closed: Arc<AtomicU64>,
    /// Times [`Faults::watch`] went client -> server (or was cut at).
    pub watched: Arc<AtomicU64>,
    /// While set, every new connection is closed at once (the server "is down").
    pub down: Arc<AtomicBool>,
    /// While set, connections past [`Faults::stall_after`] pass nothing client -> server.
    pub held: Arc<AtomicBool>,
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
        let faults = Faults {
            cut_after,
            ..Faults::default()
        };
        Proxy::with(0, upstream, faults).await
    }

    /// A proxy on 127.0.0.1:`port` (0: a free one) to 127.0.0.1:`upstream` with `faults`.
    pub async fn with(port: u16, upstream: u16, faults: Faults) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("fault proxy: cannot listen on 127.0.0.1:{port}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let up_bytes = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicU64::new(0));
        let ended = closed.clone();
        let watched = Arc::new(AtomicU64::new(0));
        let seen = watched.clone();
        let down = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicBool::new(faults.stall_after.is_some()));
        let (counter, accepted, is_down) = (up_bytes.clone(), connections.clone(), down.clone());
        let is_held = held.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let nth = accepted.fetch_add(1, Ordering::SeqCst);
                if is_down.load(Ordering::SeqCst) {
                    ended.fetch_add(1, Ordering::SeqCst);
                    continue; // dropped: closed at once
                }
                let up = Leg {
                    cut_after: faults.cut_for(nth),
                    stall: faults.stall_for(nth).map(|n| (n, is_held.clone())),
                    rate: faults.rate,
                    delay: faults.delay,
                    counter: Some(counter.clone()),
                    watch: faults.watch.map(|pattern| Watch {
                        pattern,
                        seen: seen.clone(),
                        cut_at: faults.cut_at_watch.filter(|_| faults.picked(nth)),
                    }),
                };
                let back = Leg {
                    cut_after: faults.cut_back_after.filter(|_| faults.picked(nth)),
                    stall: None,
                    rate: None,
                    delay: faults.delay,
                    counter: None,
                    watch: None,
                };
                let ended = ended.clone();
                tokio::spawn(async move {
                    connection(client, upstream, up, back).await;
                    ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Proxy {
            port,
            up_bytes,
            connections,
            closed,
            watched,
            down,
            held,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// One direction of one connection.
struct Leg {
    /// Stop after this many bytes (then the whole connection ends).
    cut_after: Option<u64>,
    /// Pass nothing more after this many bytes while the flag is set.
    stall: Option<(u64, Arc<AtomicBool>)>,
    /// Bytes per second.
    rate: Option<u64>,
    delay: Duration,
    /// Counts the bytes written on.
    counter: Option<Arc<AtomicU64>>,
    watch: Option<Watch>,
}

/// A byte string a leg counts, and the time it is cut before.
struct Watch {
    pattern: &'static [u8],
    seen: Arc<AtomicU64>,
    cut_at: Option<u64>,
}

impl Watch {
    /// Counts the pattern in `data` (after `tail`, the last bytes of the reads before,
    /// which is kept up to date): `Some(n)` when the time to cut comes, `n` the bytes of
    /// `data` to pass on before it.
    fn scan(&self, tail: &mut Vec<u8>, data: &[u8]) -> Option<usize> {
        let before = tail.len();
        let mut joined = std::mem::take(tail);
        joined.extend_from_slice(data);
        let mut from = 0;
        let mut cut = None;
        while let Some(i) = memchr::memmem::find(&joined[from..], self.pattern) {
            let at = from + i;
            let time = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
            if self.cut_at == Some(time) {
                cut = Some(at.saturating_sub(before));
                break;
            }
            from = at + 1;
        }
        let keep = self.pattern.len().saturating_sub(1).min(joined.len());
        *tail = joined[joined.len() - keep..].to_vec();
        cut
    }
}

/// Bytes a leg holds in its delay line at most (memory bound; far above what an SFTP
/// client keeps in flight, so the added latency never limits the bandwidth).
const DELAY_LINE_BYTES: usize = 64 << 20;
const CHUNK: usize = 64 * 1024;

/// Forwards one connection; whichever direction ends first ends both (both sockets are
/// dropped), as a cut connection or a peer that hangs up does.
async fn connection(client: TcpStream, upstream: u16, up: Leg, back: Leg) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return; // the client sees its connection closed
    };
    // Small writes go out at once: no Nagle delay on top of the configured one.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::select! {
        _ = pump(cr, sw, up) => {}
        _ = pump(sr, cw, back) => {}
    }
}

/// Reads `from` and writes `to` through a delay line: the reader stamps each chunk with
/// the time it is due, the writer waits for that time. Returns at end of input, on an
/// error, or when the cut is reached (after writing the bytes up to it).
async fn pump<R, W>(mut from: R, mut to: W, leg: Leg)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Leg {
        cut_after,
        stall,
        rate,
        delay,
        counter,
        watch,
    } = leg;
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let budget = Arc::new(Semaphore::new(DELAY_LINE_BYTES));
    let read = {
        let budget = budget.clone();
        async move {
            let mut sent = 0u64;
            let mut tail = Vec::new();
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let (n, cut) = match cut_after {
                    Some(limit) if sent + n as u64 >= limit => ((limit - sent) as usize, true),
                    _ => (n, false),
                };
                let (n, cut) = match watch.as_ref().and_then(|w| w.scan(&mut tail, &buf[..n])) {
                    Some(before) => (before.min(n), true),
                    None => (n, cut),
                };
                buf.truncate(n);
                if let Some((after, held)) = &stall {
                    while sent >= *after && held.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                let Ok(permit) = budget.acquire_many(n as u32).await else {
                    return;
                };
                permit.forget(); // given back by the writer
                if tx.send((Instant::now() + delay, buf)).is_err() || cut {
                    return; // the writer is gone, or the cut: nothing more goes on
                }
                sent += n as u64;
                if let Some(rate) = rate {
                    tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
                }
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
            if let Some(c) = &counter {
                c.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            budget.add_permits(chunk.len());
        }
        budget.close(); // a reader waiting for room gives up
    };
    tokio::join!(read, write);
}
