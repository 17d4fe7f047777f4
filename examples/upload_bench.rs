//! Upload benchmark helper for `scripts/bench_upload.sh`: delivers one local file with
//! `regdrop::sftp` and prints the elapsed time and throughput as one line.
//!
//! Usage: upload_bench HOST PORT USER KEY_FILE HOST_PUB_FILE REMOTE_DIR LOCAL_FILE SHA256
//! Environment: REGDROP_CHANNELS, REGDROP_IN_FLIGHT, REGDROP_CHUNK override the per-server strategy (`Overrides`).

use regdrop::sftp::{self, Auth, IfExists, Overrides, Target, Upload, Verify};
use std::time::{Duration, Instant};

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 9 {
        eprintln!("usage: upload_bench HOST PORT USER KEY_FILE HOST_PUB_FILE REMOTE_DIR LOCAL_FILE SHA256");
        std::process::exit(2);
    }
    let host_pub = std::fs::read_to_string(&a[5]).expect("host pub file");
    let target = Target {
        host: a[1].clone(),
        port: a[2].parse().expect("port"),
        username: a[3].clone(),
        host_keys: vec![host_pub.trim().to_string()],
        known_hosts: None,
        auth: Auth::KeyFile {
            path: a[4].clone().into(),
            passphrase_file: None,
        },
        remote_dir: a[6].clone(),
        create_dirs: false,
        connect_timeout: Duration::from_secs(20),
        io_timeout: Duration::from_secs(120),
        overrides: Overrides {
            channels: env_usize("REGDROP_CHANNELS"),
            in_flight: env_usize("REGDROP_IN_FLIGHT"),
            max_write: env_usize("REGDROP_CHUNK"),
            ..Overrides::default()
        },
    };
    let up = Upload {
        local: a[7].clone().into(),
        final_name: "bench.bin.age".into(),
        run_id: format!("bench-{}", std::process::id()).into(),
        if_exists: IfExists::Overwrite,
        verify: Verify::Size,
        sha256_hex: a[8].clone(),
        manifest: None,
        done_marker: false,
    };
    let t0 = Instant::now();
    match sftp::deliver(&target, &up, &|_| {}).await {
        Ok(d) => {
            let s = t0.elapsed().as_secs_f64();
            println!(
                "regdrop server={:?} channels={:?} in_flight={:?} chunk={:?} bytes={} secs={:.2} MiB/s={:.1} fsync={} commit={}",
                d.server,
                target.overrides.channels,
                target.overrides.in_flight,
                target.overrides.max_write,
                d.bytes,
                s,
                d.bytes as f64 / 1048576.0 / s,
                d.fsync,
                d.commit.map(|c| c.as_str()).unwrap_or("found")
            );
        }
        Err(e) => {
            eprintln!("upload failed: {e}");
            std::process::exit(1);
        }
    }
}
