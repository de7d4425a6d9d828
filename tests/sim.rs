//! Deterministic lossy-link simulation: two full stacks, 32 MiB each way per scenario, every byte
//! checked at the far end (see `kcptun::proto::sim`).

use std::time::Instant;

use kcptun::proto::sim;

#[test]
fn lossy_link_grid_delivers_every_byte() {
    let grid = sim::standard_grid(32 << 20);
    println!("{}", sim::Report::header());
    let mut failures = Vec::new();
    for s in &grid {
        match sim::run(s, Instant::now()) {
            Ok(r) => {
                println!("{}", r.row());
                if s.up.loss >= 0.10 {
                    assert!(r.retrans_segs > 0, "{}: loss but no retransmission", s.name);
                }
                if s.up.loss > 0.0 && s.client.fec.is_some() {
                    assert!(
                        r.fec_recovered > 0,
                        "{}: FEC on but nothing recovered",
                        s.name
                    );
                }
                if s.up.loss == 0.0 {
                    assert_eq!(r.link_lost, 0, "{}: clean link lost datagrams", s.name);
                }
            }
            Err(e) => failures.push(format!("{}: {e}", s.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
}

#[test]
fn same_seed_same_run() {
    let mut s = sim::standard_grid(1 << 20).remove(4);
    s.name = "replay".into();
    let t0 = Instant::now();
    let a = sim::run(&s, t0).expect("first run");
    let b = sim::run(&s, t0).expect("second run");
    assert_eq!(a.virtual_secs, b.virtual_secs);
    assert_eq!(a.retrans_segs, b.retrans_segs);
    assert_eq!(a.datagrams, b.datagrams);
}
