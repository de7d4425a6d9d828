//! KCP over a seeded lossy, reordering link with delays, in virtual milliseconds: whole
//! transfers checked byte for byte, with and without congestion control, and a lossless
//! throughput figure.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use proptest::prelude::*;

use super::*;
use crate::proto::rng::Rng;

/// (deliver at ms, seq, to b?, bytes), earliest first.
type InFlight = Reverse<(u64, u64, bool, Vec<u8>)>;

struct Link {
    rng: Rng,
    /// (deliver at ms, seq, to b?, bytes)
    q: BinaryHeap<InFlight>,
    seq: u64,
    loss_pct: u64,
}

impl Link {
    fn carry(&mut self, ms: u64, to_b: bool, d: Vec<u8>) {
        if self.rng.below(100) < self.loss_pct {
            return;
        }
        // 20 ms base delay, up to 15 ms jitter: reorders.
        let at = ms + 20 + self.rng.below(15);
        self.seq += 1;
        self.q.push(Reverse((at, self.seq, to_b, d)));
    }
}

fn transfer(mode: &str, total: usize, seed: u8) {
    let t0 = crate::test_clock::origin();
    let mut c = KcpConfig::from_mode(mode, (0, 0, 0, 0));
    c.mtu = 1350;
    c.snd_wnd = 128;
    c.rcv_wnd = 512;
    let mut a = Kcp::new(CONV, &c, t0);
    let mut b = Kcp::new(CONV, &c, t0);
    let mut rng = Rng::from_seed([seed; 32]);
    let mut data = vec![0u8; total];
    rng.fill(&mut data);
    let mut link = Link {
        rng: rng.fork(),
        q: BinaryHeap::new(),
        seq: 0,
        loss_pct: 3,
    };
    let mut got = Vec::with_capacity(total);
    let mut sent = 0;
    let mut buf = vec![0u8; 1500];
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut ms = 0u64;
    let mut steps = 0u64;
    while got.len() < total {
        steps += 1;
        assert!(
            ms < 3_600_000,
            "transfer stalled at {} of {total}",
            got.len()
        );
        let now = at(t0, ms);
        while let Some(Reverse((t, _, _, _))) = link.q.peek() {
            if *t > ms {
                break;
            }
            let Some(Reverse((_, _, to_b, d))) = link.q.pop() else {
                break;
            };
            let k = if to_b { &mut b } else { &mut a };
            k.handle_packet(now, &d, false).unwrap();
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
        while sent < total {
            let n = a.send(&data[sent..(sent + 8192).min(total)]);
            if n == 0 {
                break;
            }
            sent += n;
        }
        loop {
            let n = b.recv(&mut rbuf);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&rbuf[..n]);
        }
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            assert!(n <= 1350);
            link.carry(ms, true, buf[..n].to_vec());
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            link.carry(ms, false, buf[..n].to_vec());
        }
        let mut next = at(t0, ms + 60_000);
        for t in [a.poll_timeout(), b.poll_timeout()].into_iter().flatten() {
            next = next.min(t);
        }
        if let Some(Reverse((t, _, _, _))) = link.q.peek() {
            next = next.min(at(t0, *t));
        }
        ms = ((next - t0).as_millis() as u64).max(ms + 1);
    }
    assert_eq!(got.len(), total);
    assert!(got == data, "stream corrupted");
    let s = a.stats();
    assert!(s.retrans_segs > 0, "loss should cause retransmissions");
    eprintln!(
        "{mode}: {total} bytes in {ms} virtual ms, {steps} steps, out_segs {}, retrans {} (fast {} early {} lost {}), repeat at b {}, head jumps {}",
        s.out_segs, s.retrans_segs, s.fast_retrans_segs, s.early_retrans_segs, s.lost_segs, b.stats().repeat_segs, a.jumps
    );
    assert!(a.jumps > 0, "flushes never skipped the transmitted head");
}

#[test]
fn lossy_reordering_link_10mb_normal() {
    transfer("normal", 10 * 1024 * 1024, 1);
}

#[test]
fn lossy_reordering_link_10mb_fast3() {
    transfer("fast3", 10 * 1024 * 1024, 2);
}

#[test]
fn lossy_link_with_congestion_control() {
    transfer("manual", 1024 * 1024, 3);
}

proptest! {
    /// The batched duplicate-ACK count equals kcp-go's per-ACK loop.
    #[test]
    fn batched_fastack_matches_per_ack_reference(
        sends in prop::collection::vec(1u64..30, 1..12),
        dgrams in prop::collection::vec(prop::collection::vec((0u32..50, 0u64..400), 1..10), 1..6),
    ) {
        let t0 = crate::test_clock::origin();
        let mut c = cfg("manual", (0, 5000, 3, 1), 100);
        c.snd_wnd = 64;
        let mut k = Kcp::new(CONV, &c, t0);
        // Segments sent at different ms so their ts differ.
        let mut ms = 0;
        for (i, step) in sends.iter().enumerate() {
            ms += step;
            k.send(&[i as u8; 76 * 3]);
            drain(&mut k, at(t0, ms));
        }
        for d in &dgrams {
            let before = k.fastacks();
            let snd_nxt = before.last().map_or(0, |s| s.0 + 1);
            let mut want: Vec<u32> = before.iter().map(|s| s.2).collect();
            for &(sn, ts) in d {
                let ts = ts as u32;
                if sn >= snd_nxt {
                    continue;
                }
                for (i, s) in before.iter().enumerate() {
                    if s.0 < sn && sn_diff(s.1, ts) <= 0 && want[i] != u32::MAX {
                        want[i] += 1;
                    }
                }
            }
            let list: Vec<(u32, u32)> = d.iter().map(|&(sn, ts)| (sn, ts as u32)).collect();
            k.handle_packet(at(t0, ms + 1), &acks(&list, 0, 64), false).unwrap();
            let got: Vec<u32> = k.fastacks().iter().map(|s| s.2).collect();
            prop_assert_eq!(got, want);
        }
    }
}

/// Wall-clock throughput of two sessions over a lossless in-memory link (both ends' work).
/// Not a pass/fail test: `cargo test --lib proto::kcp::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_lossless() {
    let total = 200 * 1024 * 1024;
    let t0 = crate::test_clock::origin();
    let mut c = KcpConfig::from_mode("fast3", (0, 0, 0, 0));
    c.mtu = 1350;
    c.snd_wnd = 1024;
    c.rcv_wnd = 1024;
    let mut a = Kcp::new(CONV, &c, t0);
    let mut b = Kcp::new(CONV, &c, t0);
    let chunk = vec![0x5Au8; 32 * 1024];
    let (mut sent, mut got) = (0usize, 0usize);
    let mut buf = vec![0u8; 1500];
    let mut rbuf = vec![0u8; 64 * 1024];
    let (mut ab, mut ba): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
    let mut ms = 0u64;
    let wall = crate::test_clock::wall();
    while got < total {
        let now = at(t0, ms);
        for d in ab.drain(..) {
            b.handle_packet(now, &d, false).unwrap();
        }
        for d in ba.drain(..) {
            a.handle_packet(now, &d, false).unwrap();
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
        while sent < total {
            let n = a.send(&chunk[..(total - sent).min(chunk.len())]);
            if n == 0 {
                break;
            }
            sent += n;
        }
        loop {
            let n = b.recv(&mut rbuf);
            if n == 0 {
                break;
            }
            got += n;
        }
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            ab.push(buf[..n].to_vec());
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            ba.push(buf[..n].to_vec());
        }
        ms += 1;
    }
    let secs = wall.elapsed().as_secs_f64();
    eprintln!(
        "{} MB in {secs:.2} s wall = {:.0} MB/s (virtual {ms} ms), jumps {}",
        total >> 20,
        total as f64 / secs / 1e6,
        a.jumps
    );
}
