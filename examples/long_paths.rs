//! Long paths in virtual time: windows 1024, fast3, FEC 10/3, aes, one stream, at 40 and 100 ms
//! round trips, clean, lossy and behind a 100 Mbit/s bottleneck with a 1 MB queue. Prints
//! goodput, the fraction of the window ceiling, retransmissions and queue drops per scenario;
//! with more than one seed, each scenario runs once per seed and a summary row follows.
//!
//! `cargo run --release --example long_paths [MiB each way, default 32] [name filter] [seeds]
//! [--delaywnd]`

use std::time::Instant;

use kcptun::proto::sim;

fn main() {
    let delay_window = std::env::args().any(|a| a == "--delaywnd");
    let mut args = std::env::args().skip(1).filter(|a| a != "--delaywnd");
    let mib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let filter = args.next().unwrap_or_default();
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    println!("{}  ceiling  fraction", sim::Report::header());
    let mut failed = 0;
    for base in sim::long_path_grid(mib << 20) {
        if !base.name.contains(&filter) {
            continue;
        }
        let mut fractions = Vec::new();
        for k in 0..seeds {
            let mut s = base.clone();
            s.seed = base.seed.wrapping_add(k * 0x9e37_79b9);
            s.client.kcp.delay_window = delay_window;
            s.server.kcp.delay_window = delay_window;
            let t0 = Instant::now();
            match sim::run(&s, t0) {
                Ok(r) => {
                    fractions.push(r.ceiling_fraction());
                    println!(
                        "{}  {:>7.2}  {:>7.3}   ({:.1} s CPU)",
                        r.row(),
                        r.window_ceiling_mbs,
                        r.ceiling_fraction(),
                        t0.elapsed().as_secs_f64()
                    )
                }
                Err(e) => {
                    failed += 1;
                    println!("{:<34} FAILED: {e}", s.name);
                }
            }
        }
        if seeds > 1 && !fractions.is_empty() {
            let n = fractions.len() as f64;
            let mean = fractions.iter().sum::<f64>() / n;
            let min = fractions.iter().cloned().fold(f64::MAX, f64::min);
            println!(
                "{:<34} fraction of the ceiling over {} seeds: mean {mean:.3}, min {min:.3}",
                base.name,
                fractions.len()
            );
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
