//! Interactive latency through the tunnel on simulated long, lossy paths, in virtual time: a
//! 64-byte request and its answer, one at a time, idle and under a bulk download.
//!
//! `cargo run --release --example probe_latency [probes per scenario, default 2000]`

use std::time::Instant;

use kcptun::proto::sim;

fn main() {
    let probes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    println!("{}", sim::ProbeReport::header());
    let mut failed = 0;
    for s in sim::probe_grid(probes) {
        let t0 = Instant::now();
        match sim::run_probe(&s, t0) {
            Ok(r) => println!("{}   ({:.1} s CPU)", r.row(), t0.elapsed().as_secs_f64()),
            Err(e) => {
                failed += 1;
                println!("{:<40} FAILED: {e}", s.name);
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
