//! The TCP fault proxy the other tests and the benchmarks rely on ([`crate::util::fault_proxy`],
//! `examples/fault_proxy.rs`): it forwards both ways and counts, cuts after exactly N bytes
//! either way (only the connections it is told to), counts a watched byte string and cuts
//! before its Nth time, adds the latency asked for in each direction without limiting the
//! bandwidth, and closes connections while "down".

use crate::util::fault_proxy::{Faults, Proxy};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream that echoes every byte back; returns its port.
async fn echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// An upstream that reads each connection to its end and reports how many bytes came.
async fn sink() -> (u16, tokio::sync::mpsc::UnboundedReceiver<u64>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(k) = s.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                }
                let _ = tx.send(n);
            });
        }
    });
    (port, rx)
}

/// Sends `n` bytes to the proxy (ignoring a cut) and closes; returns what went out.
async fn send(port: u16, n: usize) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let data = vec![7u8; n];
    let mut sent = 0;
    for chunk in data.chunks(16 * 1024) {
        if s.write_all(chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    sent
}

async fn received(rx: &mut tokio::sync::mpsc::UnboundedReceiver<u64>) -> u64 {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the upstream saw the connection end")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_both_ways_and_counts_bytes_and_connections() {
    let proxy = Proxy::with(0, echo().await, Faults::default()).await;
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = s.split();
    let (back, _) = tokio::join!(
        async {
            let mut back = vec![0u8; data.len()];
            r.read_exact(&mut back).await.unwrap();
            back
        },
        w.write_all(&data)
    );
    assert_eq!(back, data);
    assert_eq!(proxy.up_bytes.load(Ordering::Relaxed), data.len() as u64);
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_exactly_after_n_bytes_only_the_connections_it_is_told_to() {
    let (port, mut rx) = sink().await;
    let faults = Faults {
        cut_after: Some(100_000),
        spare_first: 1,
        cut_connections: Some(1),
        ..Faults::default()
    };
    let proxy = Proxy::with(0, port, faults).await;
    // The first connection is spared, the second cut, the third no longer.
    for expect in [500_000u64, 100_000, 500_000] {
        send(proxy.port, 500_000).await;
        assert_eq!(received(&mut rx).await, expect);
    }
    assert_eq!(proxy.connections(), 3);
    assert_eq!(proxy.up_bytes.load(Ordering::Relaxed), 1_100_000);
    // Proxy::start cuts every connection.
    let every = Proxy::start(port, Some(1234)).await;
    for _ in 0..2 {
        send(every.port, 50_000).await;
        assert_eq!(received(&mut rx).await, 1234);
    }
}

/// Sends `data` to the proxy in pieces of `piece` bytes (ignoring a cut) and closes.
async fn send_bytes(port: u16, data: &[u8], piece: usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for chunk in data.chunks(piece) {
        if s.write_all(chunk).await.is_err() {
            break;
        }
        // Each piece its own read at the proxy (a pattern split across two of them).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_a_watched_byte_string_and_cuts_before_its_nth_time() {
    let (port, mut rx) = sink().await;
    let mut data = vec![1u8; 10_000];
    for at in [1_000, 5_000, 9_000] {
        data[at..at + 6].copy_from_slice(b"COMMIT");
    }
    // Counted, in one piece and in pieces that split it.
    for piece in [data.len(), 1_003] {
        let watch = Faults {
            watch: Some(b"COMMIT"),
            ..Faults::default()
        };
        let proxy = Proxy::with(0, port, watch).await;
        send_bytes(proxy.port, &data, piece).await;
        assert_eq!(received(&mut rx).await, data.len() as u64);
        assert_eq!(proxy.watched.load(Ordering::SeqCst), 3, "pieces of {piece}");
    }
    // Cut before the second time: the bytes before it pass, it does not. In pieces of
    // 5,003 its first three bytes end a piece that went on before the rest came.
    for (piece, expect) in [(data.len(), 5_000), (5_003, 5_003)] {
        let cut = Faults {
            watch: Some(b"COMMIT"),
            cut_at_watch: Some(2),
            ..Faults::default()
        };
        let proxy = Proxy::with(0, port, cut).await;
        send_bytes(proxy.port, &data, piece).await;
        let got = received(&mut rx).await;
        assert_eq!(got, expect, "pieces of {piece}");
        assert_eq!(proxy.watched.load(Ordering::SeqCst), 2);
    }
}

/// An upstream that sends `n` bytes to each connection and closes it.
async fn source(n: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let data = vec![9u8; n];
                let _ = s.write_all(&data).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_server_to_client_after_n_bytes_only_the_connections_it_is_told_to() {
    let faults = Faults {
        cut_back_after: Some(70_000),
        spare_first: 1,
        cut_connections: Some(1),
        ..Faults::default()
    };
    let proxy = Proxy::with(0, source(300_000).await, faults).await;
    // The first connection is spared, the second cut, the third no longer.
    for expect in [300_000usize, 70_000, 300_000] {
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got));
        let _ = read.await.expect("the connection ends");
        assert_eq!(got.len(), expect);
    }
    assert_eq!(proxy.connections(), 3);
    assert_eq!(proxy.up_bytes.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_the_latency_each_way_without_limiting_the_bandwidth() {
    let delay = Duration::from_millis(40);
    let faults = Faults {
        delay,
        ..Faults::default()
    };
    let proxy = Proxy::with(0, echo().await, faults).await;
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut b = [0u8; 1];
    for _ in 0..3 {
        let t0 = Instant::now();
        s.write_all(b"x").await.unwrap();
        s.read_exact(&mut b).await.unwrap();
        let rtt = t0.elapsed();
        assert!(
            rtt >= 2 * delay,
            "round trip {rtt:?}, want at least {:?}",
            2 * delay
        );
        assert!(rtt < 2 * delay + Duration::from_millis(500), "{rtt:?}");
    }
    // 16 MiB echoed in well under the time a window-limited line would take (16 MiB at
    // one 64 KiB chunk per 80 ms round trip would be 20 s).
    let data = vec![1u8; 16 << 20];
    let t0 = Instant::now();
    let (mut r, mut w) = s.split();
    let (n, _) = tokio::join!(
        async {
            let mut back = vec![0u8; data.len()];
            r.read_exact(&mut back).await.unwrap()
        },
        w.write_all(&data)
    );
    assert_eq!(n, data.len());
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_down_every_connection_is_closed_at_once() {
    let (port, mut rx) = sink().await;
    let proxy = Proxy::with(0, port, Faults::default()).await;
    proxy.down.store(true, Ordering::SeqCst);
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    proxy.down.store(false, Ordering::SeqCst);
    send(proxy.port, 10).await;
    assert_eq!(received(&mut rx).await, 10);
    assert_eq!(proxy.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_after_n_bytes_until_released_only_the_connections_it_is_told_to() {
    let (port, mut rx) = sink().await;
    let faults = Faults {
        stall_after: Some(100_000),
        spare_first: 1,
        ..Faults::default()
    };
    let proxy = Proxy::with(0, port, faults).await;
    assert!(proxy.held.load(Ordering::SeqCst), "held from the start");
    // The first connection is spared.
    send(proxy.port, 300_000).await;
    assert_eq!(received(&mut rx).await, 300_000);
    // The second passes its first 100 000 bytes (and the rest of the read that crossed
    // them), then nothing while held, however long the sender waits.
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
    s.write_all(&vec![7u8; 300_000]).await.unwrap();
    let t0 = Instant::now();
    while proxy.up_bytes.load(Ordering::SeqCst) < 400_000 && t0.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let passed = proxy.up_bytes.load(Ordering::SeqCst) - 300_000;
    assert!((100_000..300_000).contains(&passed), "{passed}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.up_bytes.load(Ordering::SeqCst) - 300_000, passed);
    // Released: the rest goes through.
    proxy.held.store(false, Ordering::SeqCst);
    drop(s);
    assert_eq!(received(&mut rx).await, 300_000);
}
