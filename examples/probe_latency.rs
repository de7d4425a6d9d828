//! Interactive latency through the tunnel on simulated long, lossy paths, in virtual time: a
//! 64-byte request and its answer, one at a time, idle and under a bulk download.
//!
//! `cargo run --release --example probe_latency [probes per scenario, default 2000] [name filter]
//! [seeds, default 1] [--delaywnd]`

use std::time::Instant;

use kcptun::proto::sim;

fn main() {
    let delay_window = std::env::args().any(|a| a == "--delaywnd");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--delaywnd")
        .collect();
    let probes: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let filter = args.get(1).cloned().unwrap_or_default();
    let seeds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    println!("{}", sim::ProbeReport::header());
    let mut failed = 0;
    for row in sim::probe_grid(probes) {
        if !row.name.contains(&filter) {
            continue;
        }
        let (mut over2, mut over25, mut all) = (0, 0, 0);
        for k in 0..seeds {
            let mut s = row.clone();
            s.seed += 1000 * k;
            s.client.kcp.delay_window = delay_window;
            s.server.kcp.delay_window = delay_window;
            let t0 = Instant::now();
            match sim::run_probe(&s, t0) {
                Ok(r) => {
                    println!("{}   ({:.1} s CPU)", r.row(), t0.elapsed().as_secs_f64());
                    over2 += r.over(2.0);
                    over25 += r.over(2.5);
                    all += r.rtts.len();
                }
                Err(e) => {
                    failed += 1;
                    println!("{:<40} FAILED: {e}", s.name);
                }
            }
        }
        if seeds > 1 {
            println!(
                "{:<40} over {seeds} seeds: {over2} of {all} probes over 2 round trips, \
                 {over25} over 2.5",
                row.name
            );
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
