//! The tests' TCP fault proxy (`tests/it/util/fault_proxy.rs`) as a program, for the
//! benchmarks (`scripts/bench_upload.sh` adds 50 ms of round trip with it) and for trying a
//! fault by hand:
//!
//!     cargo run --release --example fault_proxy -- --upstream 2222 --delay-ms 25
//!
//! It listens on 127.0.0.1 (`--listen`, default a free port), prints `listening on
//! 127.0.0.1:PORT` once it accepts, forwards to 127.0.0.1:UPSTREAM until killed, and on
//! exit (Ctrl-C) prints the connections and bytes it forwarded.

// The tests read the proxy's counters and use all of its constructors; this program
// uses one of each.
#[allow(dead_code)]
#[path = "../tests/it/util/fault_proxy.rs"]
mod fault_proxy;

use clap::Parser;
use fault_proxy::{Faults, Proxy};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A loopback TCP proxy that cuts, throttles or delays what it forwards.
#[derive(Parser)]
struct Args {
    /// Port to listen on, on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0)]
    listen: u16,
    /// Port to forward to, on 127.0.0.1.
    #[arg(long)]
    upstream: u16,
    /// Milliseconds added in each direction (a round trip gains twice this).
    #[arg(long, default_value_t = 0.0)]
    delay_ms: f64,
    /// Close a connection once this many bytes went client -> server.
    #[arg(long)]
    cut_after: Option<u64>,
    /// Close a connection once this many bytes went server -> client.
    #[arg(long)]
    cut_back_after: Option<u64>,
    /// Cut only this many connections (after the spared ones).
    #[arg(long)]
    cut_connections: Option<u64>,
    /// Leave the first this many connections alone.
    #[arg(long, default_value_t = 0)]
    spare_first: u64,
    /// Throttle client -> server to this many bytes per second.
    #[arg(long)]
    rate: Option<u64>,
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let faults = Faults {
        cut_after: a.cut_after,
        cut_back_after: a.cut_back_after,
        cut_connections: a.cut_connections,
        spare_first: a.spare_first,
        rate: a.rate,
        delay: Duration::from_secs_f64(a.delay_ms.max(0.0) / 1000.0),
        ..Faults::default()
    };
    let proxy = Proxy::with(a.listen, a.upstream, faults).await;
    println!("listening on 127.0.0.1:{}", proxy.port);
    let _ = tokio::signal::ctrl_c().await;
    eprintln!(
        "fault_proxy: {} connections, {} bytes client -> server",
        proxy.connections(),
        proxy.up_bytes.load(Ordering::Relaxed)
    );
}
