//! Deterministic lossy-link simulation: two full stacks, 32 MiB each way per scenario, every byte
//! checked at the far end (see `kcptun::proto::sim`).

use std::time::{Duration, Instant};

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

/// Long paths with windows 1024: one stream keeps KCP's window full. Figures are virtual-time,
/// so they are exact and repeatable: 40 ms clean 94 %, 40 ms with 2 % loss 90 %, 100 ms clean
/// 94 % of the window ceiling (they were 79 % before the application loop drained like the event
/// loop and the receiver sent its smux window updates every quarter window). At 100 ms with 10 %
/// loss each way 63 % both ways at once and 74 % as a download only (55 % and 56 % while the
/// window counted from `snd_una` and repairs went out once: a hole in nearly every window held
/// it back for two round trips); behind the bottleneck 46 % (43 %).
#[test]
fn long_paths_fill_the_window() {
    println!("{}  ceiling  fraction", sim::Report::header());
    for s in sim::long_path_grid(32 << 20) {
        let r = sim::run(&s, Instant::now()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let f = r.ceiling_fraction();
        println!("{}  {:>7.2}  {:>7.3}", r.row(), r.window_ceiling_mbs, f);
        assert!(f <= 1.0, "{}: goodput above what the window allows", s.name);
        let rtt_ms = (s.up.delay + s.down.delay).as_millis();
        let want = if s.up.bandwidth > 0 {
            // Behind a bottleneck queue a full window overflows it (46 % of the link today);
            // pacing by queueing delay is the open part of the "real paths" work.
            0.45
        } else if s.up.loss == 0.0 {
            0.90
        } else if rtt_ms == 40 && s.up.loss <= 0.02 {
            0.88
        } else if s.download_only {
            0.68
        } else {
            0.62
        };
        assert!(
            f >= want,
            "{}: {:.1} % of the window ceiling, want at least {:.0} %",
            s.name,
            f * 100.0,
            want * 100.0
        );
    }
}

/// Interactive latency in virtual time (64-byte request and answer, one at a time): idle p99 at
/// most 1.3 × the path's round trip at 2 % loss and 1.5 × at 10 % (it was 2.25 × and 20 × before
/// lone segments were sent twice and late ACKs stopped inflating the RTO, and 2.1 × at 10 %
/// before a lone segment went out three times where loss is heavy; issue 9 asks for 2.5 ×). The
/// runs behind a bottleneck with a bulk download are printed and must complete; their latency is
/// the queue's. Beside a bulk download or upload at 100 ms with 10 % loss and no bottleneck the probe waits
/// for the window to move past each hole: p99 at most 300 ms (380 ms for the download before
/// repaired segments stopped holding the window back).
#[test]
fn interactive_probes_stay_near_the_round_trip() {
    println!("{}", sim::ProbeReport::header());
    for s in sim::probe_grid(2000) {
        let r = sim::run_probe(&s, Instant::now()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        println!("{}", r.row());
        assert_eq!(r.rtts.len(), s.probes, "{}", s.name);
        assert!(
            r.percentile(50) >= r.path_rtt,
            "{}: faster than the path",
            s.name
        );
        if s.bulk_down || s.bulk_up {
            if s.up.bandwidth == 0 {
                let p99 = r.percentile(99);
                assert!(
                    p99 <= Duration::from_millis(300),
                    "{}: p99 {p99:?} beside a bulk transfer, want at most 300 ms",
                    s.name
                );
            }
            continue;
        }
        let bound = if s.up.loss <= 0.02 { 1.3 } else { 1.5 };
        let p99 = r.percentile(99).as_secs_f64() / r.path_rtt.as_secs_f64();
        assert!(
            p99 <= bound,
            "{}: p99 is {p99:.2} × the round trip, want at most {bound}",
            s.name
        );
    }
}

/// Runs `row` with `seeds` seeds (1000 apart) and returns (probes over 2.5 round trips, probes).
fn slow_probes(row: &sim::ProbeScenario, seeds: u64) -> (usize, usize) {
    let (mut slow, mut all) = (0, 0);
    for k in 0..seeds {
        let mut s = row.clone();
        s.seed += 1000 * k;
        let r = sim::run_probe(&s, Instant::now()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        println!("seed {k}: {}", r.row());
        slow += r.over(2.5);
        all += r.rtts.len();
    }
    println!("{slow} of {all} probes over 2.5 round trips");
    (slow, all)
}

/// Beside a window-bound download at 100 ms with 10 % loss, the request and its answer must not
/// wait for ACKs to open the window: a transfer leaves the last segments of KCP's window to
/// messages of other streams that fit whole. Over four seeds (1000 probes) at most 1.5 % take
/// over 2.5 round trips (3.9 % before the reserve; a probe that missed the window waited for
/// the next round of ACKs, 280 ms instead of 180).
#[test]
fn a_transfer_leaves_room_for_small_messages_beside_it() {
    let row = sim::probe_grid(2000)
        .into_iter()
        .find(|s| s.bulk_down && s.up.bandwidth == 0)
        .expect("the 100 ms / 10 % bulk row");
    let (slow, all) = slow_probes(&row, 4);
    assert!(
        slow * 1000 <= all * 15,
        "{slow} of {all} probes took over 2.5 round trips, want at most 1.5 %"
    );
}

/// Beside a window-bound upload at 100 ms with 10 % loss the answer travels alone the other way,
/// and FEC rarely rescues it (its group stays incomplete until more traffic follows): with two
/// copies, both lost 1 % of the time, it waited for its RTO. Where loss is heavy a lone segment
/// now goes out three times. Over eight seeds (2000 probes) at most 1 % take over 2.5 round
/// trips: 13 do (36, 1.8 %, with two copies).
#[test]
fn an_answer_beside_an_upload_survives_heavy_loss() {
    let row = sim::probe_grid(2000)
        .into_iter()
        .find(|s| s.bulk_up && !s.bulk_down && s.up.bandwidth == 0)
        .expect("the 100 ms / 10 % upload row");
    let (slow, all) = slow_probes(&row, 8);
    assert!(
        slow * 100 <= all,
        "{slow} of {all} probes took over 2.5 round trips, want at most 1 %"
    );
}

/// `--delaywnd` behind a 100 Mbit/s bottleneck with a 1 MB drop-tail queue at 40 ms (virtual
/// time): the probe beside a bulk download stays within the path's round trip + 30 ms (issue 9's
/// bound; p50 / p99 60 / 61 ms, 288 / 311 without the window, 56 / 79 with 09c0521's), in both
/// of the bench's phases (an upload, then a download while the upload's tail still drains:
/// 56 / 59 ms, 55 / 83 and a 283 ms maximum with 09c0521's window), and a
/// download moves more because the queue no longer overflows (8.86 vs 7.46 MB/s, no
/// retransmissions vs 25 411).
#[test]
fn the_delay_window_keeps_a_bottleneck_queue_short() {
    let rows: Vec<_> = sim::probe_grid(2000)
        .into_iter()
        .filter(|s| s.bulk_down && s.up.bandwidth > 0 && s.up.loss == 0.0)
        .collect();
    assert_eq!(
        rows.len(),
        2,
        "the 40 ms bottleneck rows: download, upload then download"
    );
    for mut s in rows {
        s.client.kcp.delay_window = true;
        s.server.kcp.delay_window = true;
        let r = sim::run_probe(&s, Instant::now()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        println!("{}", r.row());
        let bound = r.path_rtt + Duration::from_millis(30);
        assert!(
            r.percentile(50) <= Duration::from_millis(60),
            "{}: p50 {:?}",
            s.name,
            r.percentile(50)
        );
        assert!(
            r.percentile(99) <= bound,
            "{}: p99 {:?}, want at most {bound:?}",
            s.name,
            r.percentile(99)
        );
    }

    let mut runs = Vec::new();
    for delay_window in [false, true] {
        let mut s = sim::long_path_grid(64 << 20)
            .into_iter()
            .find(|s| s.up.bandwidth > 0)
            .expect("the bottleneck row");
        s.download_only = true;
        s.client.kcp.delay_window = delay_window;
        s.server.kcp.delay_window = delay_window;
        let r = sim::run(&s, Instant::now()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        println!("delay window {delay_window}: {}", r.row());
        runs.push(r);
    }
    assert!(
        runs[1].goodput_down_mbs >= runs[0].goodput_down_mbs,
        "the delay window moved less: {:.2} vs {:.2} MB/s",
        runs[1].goodput_down_mbs,
        runs[0].goodput_down_mbs
    );
    assert!(
        runs[1].queue_drops * 10 < runs[0].queue_drops,
        "queue drops"
    );
}
