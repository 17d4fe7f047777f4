//! Measures the synthetic generator: `cargo run --release --example register_generate --
//! DB VEHICLES [SEED]`. Prints vehicles/s, the phases' seconds and the register's statistics.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: register_generate DB VEHICLES [SEED]");
        std::process::exit(2);
    }
    let db = std::path::PathBuf::from(&args[1]);
    let vehicles: u64 = args[2].parse()?;
    let seed: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let t = Instant::now();
    let mut next = 0;
    let s = regdrop::register::generate(
        &db,
        &regdrop::register::GenerateOptions { vehicles, seed },
        &mut |n| {
            if n >= next {
                eprintln!("{:>7.1} s {n:>10} vehicles", t.elapsed().as_secs_f64());
                next += 500_000;
            }
        },
    )?;
    let secs = t.elapsed().as_secs_f64();
    println!("{s:?}");
    println!(
        "generate: {} vehicles + {} ownerships in {secs:.1} s = {:.0} vehicles/s ({:.0} rows/s); load {:.1} s, indexes {:.1} s",
        s.vehicles,
        s.ownerships,
        s.vehicles as f64 / secs,
        (s.vehicles + s.ownerships) as f64 / secs,
        s.load_seconds,
        s.index_seconds
    );
    let t = Instant::now();
    let st = regdrop::register::stats(&db)?;
    println!("stats in {:.1} s\n{st}", t.elapsed().as_secs_f64());
    Ok(())
}
