//! Measures the importer: `cargo run --release --example register_import -- DB FILE`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: register_import DB FILE");
        std::process::exit(2);
    }
    let t = Instant::now();
    let s = regdrop::register::import(
        std::path::Path::new(&args[1]),
        std::path::Path::new(&args[2]),
        &regdrop::register::ImportOptions::default(),
        &mut |_| {},
    )?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "import: {} rows ({} rejected, encoding {}) in {secs:.1} s = {:.0} rows/s; warnings: {:?}",
        s.rows,
        s.rejected.len(),
        s.encoding.as_str(),
        s.rows as f64 / secs,
        s.warnings
    );
    for r in s.rejected.iter().take(5) {
        println!("  line {}: {}", r.line, r.reason);
    }
    Ok(())
}
