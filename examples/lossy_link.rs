//! Deterministic lossy-link demo: two complete kcptun stacks (smux over snappy over KCP over
//! FEC + aes) joined by a simulated link, on a virtual clock. Prints goodput in virtual time,
//! retransmissions and FEC recoveries per scenario, and the CPU time the whole run took.
//!
//! `cargo run --release --example lossy_link [MiB each way, default 32]`

use std::time::Instant;

use kcptun::proto::sim;

fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(32);
    let grid = sim::standard_grid(mib << 20);
    println!(
        "{mib} MiB each way per scenario, 40 ms RTT, 50 MB/s bottleneck, aes, snappy, smux v2"
    );
    println!("{}", sim::Report::header());
    let started = Instant::now();
    let mut failed = 0;
    for s in &grid {
        let t0 = Instant::now();
        match sim::run(s, t0) {
            Ok(r) => println!("{}   ({:.2} s CPU)", r.row(), t0.elapsed().as_secs_f64()),
            Err(e) => {
                failed += 1;
                println!("{:<34} FAILED: {e}", s.name);
            }
        }
    }
    println!(
        "all scenarios: {:.1} s wall, {} failed",
        started.elapsed().as_secs_f64(),
        failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
