//! Scenario tests at explicit milliseconds, hostile input, property tests; the lossy-link
//! transfers are in `lossy.rs`.

use std::time::{Duration, Instant};

use super::*;

mod hostile;
mod inflight;
mod lossy;
mod repair;

const CONV: u32 = 0x0102_0304;

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn cfg(mode: &str, manual: (i32, i32, i32, i32), mtu: usize) -> KcpConfig {
    let mut c = KcpConfig::from_mode(mode, manual);
    c.mtu = mtu;
    c.snd_wnd = 32;
    c.rcv_wnd = 32;
    // These scenarios pin kcp-go's own timeline; lone-segment copies have their own tests.
    c.dup_lone = false;
    c.repair_ahead = false;
    c.short_path_cap = false;
    c
}

/// A session of `cfg(mode, (0, 0, 0, 0), 200)` with a receive window of `rcv_wnd` segments.
fn receiver(mode: &str, rcv_wnd: u16, t0: Instant) -> Kcp {
    let mut c = cfg(mode, (0, 0, 0, 0), 200);
    c.rcv_wnd = rcv_wnd;
    Kcp::new(CONV, &c, t0)
}

fn drain(k: &mut Kcp, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(n) = k.poll_transmit(now, &mut buf) {
        assert!((OVERHEAD..=1500).contains(&n));
        out.push(buf[..n].to_vec());
    }
    out
}

fn segs(dgrams: &[Vec<u8>]) -> Vec<(Header, Vec<u8>)> {
    let mut v = Vec::new();
    for d in dgrams {
        let mut rest = &d[..];
        while !rest.is_empty() {
            let (h, data, after) = Header::parse(rest, CONV).expect("own output parses");
            v.push((h, data.to_vec()));
            rest = after;
        }
    }
    v
}

fn pushes(dgrams: &[Vec<u8>]) -> Vec<u32> {
    segs(dgrams)
        .into_iter()
        .filter(|(h, _)| h.cmd == CMD_PUSH)
        .map(|(h, _)| h.sn)
        .collect()
}

/// A datagram of ACK segments `(sn, ts)` carrying `una` and `wnd`.
fn acks(list: &[(u32, u32)], una: u32, wnd: u16) -> Vec<u8> {
    let mut v = vec![0u8; OVERHEAD * list.len().max(1)];
    let mut hs: Vec<Header> = list
        .iter()
        .map(|&(sn, ts)| Header {
            conv: CONV,
            cmd: CMD_ACK,
            frg: 0,
            wnd,
            ts,
            sn,
            una,
            len: 0,
        })
        .collect();
    if hs.is_empty() {
        hs.push(Header {
            conv: CONV,
            cmd: CMD_WINS,
            wnd,
            una,
            ..Header::default()
        });
    }
    for (i, h) in hs.iter().enumerate() {
        h.write(&mut v[i * OVERHEAD..]);
    }
    v
}

fn push_seg(sn: u32, ts: u32, una: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; OVERHEAD + data.len()];
    Header {
        conv: CONV,
        cmd: CMD_PUSH,
        frg: 0,
        wnd: 32,
        ts,
        sn,
        una,
        len: data.len() as u32,
    }
    .write(&mut v);
    v[OVERHEAD..].copy_from_slice(data);
    v
}

/// Runs timer flushes from `from` to `to` ms, returning (ms, pushed sns) for each flush.
fn run_timers(k: &mut Kcp, t0: Instant, to: u64) -> Vec<(u64, Vec<u32>)> {
    let mut log = Vec::new();
    loop {
        let next = k.poll_timeout().unwrap();
        let ms = (next - t0).as_millis() as u64;
        if ms > to {
            return log;
        }
        k.handle_timeout(next);
        let p = pushes(&drain(k, next));
        if !p.is_empty() {
            log.push((ms, p));
        }
    }
}

#[test]
fn from_mode_profiles_and_clamp() {
    let m = |s, man| {
        let c = KcpConfig::from_mode(s, man);
        (c.nodelay, c.interval_ms, c.resend, c.nc)
    };
    assert_eq!(m("normal", (9, 9, 9, 9)), (false, 40, 2, true));
    assert_eq!(m("fast", (9, 9, 9, 9)), (false, 30, 2, true));
    assert_eq!(m("fast2", (9, 9, 9, 9)), (true, 20, 2, true));
    assert_eq!(m("fast3", (9, 9, 9, 9)), (true, 10, 2, true));
    assert_eq!(m("manual", (0, 50, 0, 0)), (false, 50, 0, false));
    assert_eq!(m("x", (1, 1, -3, 1)), (true, 10, 0, true));
    assert_eq!(m("x", (0, 99999, 1, 0)), (false, 5000, 1, false));
}

#[test]
fn clock_and_sn_wrap() {
    assert_eq!(Ms(5).diff(Ms(u32::MAX)), 6);
    assert_eq!(Ms(u32::MAX).diff(Ms(5)), -6);
    assert_eq!(Ms(u32::MAX).add(2), Ms(1));
    assert!(sn_diff(0, u32::MAX) > 0);
}

#[test]
fn rto_retransmit_at_the_right_ms_normal() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("normal", (0, 0, 0, 0), 200), t0);
    assert_eq!(k.send(b"hello"), 5);
    assert_eq!(pushes(&drain(&mut k, t0)), vec![0]);
    // rx_rto 200: resend at 200, then +200 → rto 400 → 600, then rto 600 → 1200.
    let log = run_timers(&mut k, t0, 1300);
    assert_eq!(log, vec![(200, vec![0]), (600, vec![0]), (1200, vec![0])]);
    assert_eq!(k.stats().lost_segs, 3);
    assert_eq!(k.stats().retrans_segs, 3);
}

#[test]
fn rto_backoff_half_with_nodelay() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("fast3", (0, 0, 0, 0), 200), t0);
    k.send(b"x");
    assert_eq!(pushes(&drain(&mut k, t0)), vec![0]);
    // rto 200 → resend at 200; rto 300 → 500; rto 400 → 900.
    let log = run_timers(&mut k, t0, 1000);
    assert_eq!(log, vec![(200, vec![0]), (500, vec![0]), (900, vec![0])]);
}

#[test]
fn fast_resend_after_duplicate_acks_then_counts_only_later_segments() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("normal", (0, 0, 0, 0), 100), t0); // mss 76
    assert_eq!(k.send(&[7u8; 76 * 4]), 304);
    assert_eq!(pushes(&drain(&mut k, t0)), vec![0, 1, 2, 3]);
    // One duplicate: not yet due, and nothing is flushed at once.
    k.handle_packet(at(t0, 5), &acks(&[(1, 0)], 0, 32), false)
        .unwrap();
    assert!(drain(&mut k, at(t0, 5)).is_empty());
    // Second duplicate makes sn 0 due: immediate full flush resends it.
    k.handle_packet(at(t0, 6), &acks(&[(2, 0)], 0, 32), false)
        .unwrap();
    assert_eq!(pushes(&drain(&mut k, at(t0, 6))), vec![0]);
    assert_eq!(k.stats().fast_retrans_segs, 1);
    assert_eq!(k.stats().retrans_segs, 1);
    // ACKs of segments sent before that retransmission no longer count against it.
    k.handle_packet(at(t0, 7), &acks(&[(3, 0)], 0, 32), false)
        .unwrap();
    assert!(pushes(&drain(&mut k, at(t0, 7))).is_empty());
    // Segments sent after it: an ACK of one means it was lost again. The flush that ACK
    // triggers (the acknowledged segments' counts reached the threshold) resends it early;
    // latest kcp-go would have waited for the RTO at 106 ms.
    k.send(&[8u8; 76 * 2]);
    assert_eq!(pushes(&drain(&mut k, at(t0, 8))), vec![4, 5]);
    k.handle_packet(at(t0, 9), &acks(&[(4, 8)], 0, 32), false)
        .unwrap();
    assert_eq!(pushes(&drain(&mut k, at(t0, 9))), vec![0]);
    assert_eq!(k.stats().early_retrans_segs, 1);
    // An ACK of a segment sent before that resend does not count again.
    k.handle_packet(at(t0, 10), &acks(&[(5, 8)], 0, 32), false)
        .unwrap();
    assert!(pushes(&drain(&mut k, at(t0, 10))).is_empty());
    // Without further ACKs its RTO (9 + 100) resends it as a loss.
    let log = run_timers(&mut k, t0, 108);
    assert!(log.is_empty(), "{log:?}");
    let log = run_timers(&mut k, t0, 112);
    assert_eq!(log, vec![(109, vec![0])]);
    assert_eq!(k.stats().lost_segs, 1);
}

#[test]
fn early_retransmit_only_without_new_segments() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("normal", (0, 0, 0, 0), 100), t0);
    k.send(&[1u8; 76 * 3]);
    assert_eq!(pushes(&drain(&mut k, t0)), vec![0, 1, 2]);
    k.handle_packet(at(t0, 5), &acks(&[(1, 0)], 0, 32), false)
        .unwrap();
    // New data moved in this flush: no early retransmit.
    k.send(&[2u8; 76]);
    assert_eq!(pushes(&drain(&mut k, at(t0, 6))), vec![3]);
    // Next interval flush moves nothing: sn 0 (fastack 1) goes early.
    k.handle_timeout(at(t0, 40));
    assert_eq!(pushes(&drain(&mut k, at(t0, 40))), vec![0]);
    assert_eq!(k.stats().early_retrans_segs, 1);
    // Its count started again from zero: no second early retransmit without new ACKs.
    k.handle_timeout(at(t0, 80));
    assert!(pushes(&drain(&mut k, at(t0, 80))).is_empty());
}

#[test]
fn window_probe_when_remote_window_is_zero() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("normal", (0, 0, 0, 0), 200), t0);
    k.handle_packet(t0, &acks(&[], 0, 0), false).unwrap();
    assert_eq!(k.rmt_wnd(), 0);
    k.send(b"blocked");
    assert!(drain(&mut k, t0).is_empty()); // nothing may move; probe timer armed (500 ms)
    let mut wasks = Vec::new();
    loop {
        let next = k.poll_timeout().unwrap();
        let ms = (next - t0).as_millis() as u64;
        if ms > 2500 {
            break;
        }
        k.handle_timeout(next);
        for (h, _) in segs(&drain(&mut k, next)) {
            assert_eq!(h.cmd, CMD_WASK);
            wasks.push(ms);
        }
    }
    // 500 → first flush at/after 500 (520), wait 750 → 1270 (1280), wait 1125 → 2405 (2440).
    assert_eq!(wasks, vec![520, 1280, 2440]);
    // The window opens: data flows.
    k.handle_packet(at(t0, 2450), &acks(&[], 0, 32), false)
        .unwrap();
    let next = k.poll_timeout().unwrap();
    k.handle_timeout(next);
    assert_eq!(pushes(&drain(&mut k, next)), vec![0]);
}

#[test]
fn wask_is_answered_with_wins_and_full_queue_reopens_with_wins() {
    let t0 = crate::test_clock::origin();
    let mut k = receiver("normal", 4, t0);
    let mut wask = vec![0u8; OVERHEAD];
    Header {
        conv: CONV,
        cmd: CMD_WASK,
        wnd: 32,
        ..Header::default()
    }
    .write(&mut wask);
    k.handle_packet(t0, &wask, false).unwrap();
    k.handle_timeout(at(t0, 40));
    let s = segs(&drain(&mut k, at(t0, 40)));
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].0.cmd, s[0].0.wnd), (CMD_WINS, 4));
    // Fill the receive queue (4 segments); sn 4 waits in the ring (the window is relative to
    // rcv_nxt); sn 10 is beyond the window and the half window held past it (4 + 4 + 2):
    // dropped without ACK.
    for sn in 0..5 {
        k.handle_packet(at(t0, 41), &push_seg(sn, 1, 0, b"ab"), false)
            .unwrap();
    }
    k.handle_packet(at(t0, 41), &push_seg(10, 1, 0, b"zz"), false)
        .unwrap();
    assert_eq!(k.readable(), 8);
    assert_eq!(k.stats().repeat_segs, 1);
    k.handle_timeout(at(t0, 80));
    let s = segs(&drain(&mut k, at(t0, 80)));
    // Bufferbloat filter: ACKs below rcv_nxt (0..3) are dropped; sn 4 stays; window 0.
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].0.cmd, s[0].0.sn, s[0].0.una, s[0].0.wnd),
        (CMD_ACK, 4, 4, 0)
    );
    let mut out = [0u8; 5];
    assert_eq!(k.recv(&mut out), 5);
    assert_eq!(&out, b"ababa");
    assert_eq!(k.readable(), 5);
    k.handle_timeout(at(t0, 120));
    let s = segs(&drain(&mut k, at(t0, 120)));
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].0.cmd, s[0].0.wnd), (CMD_WINS, 1));
}

#[test]
fn una_and_ack_bookkeeping() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("normal", (0, 0, 0, 0), 100), t0);
    k.send(&[3u8; 76 * 5]);
    assert_eq!(pushes(&drain(&mut k, t0)), vec![0, 1, 2, 3, 4]);
    assert_eq!((k.unacked(), k.wait_snd()), (5, 5));
    // Selective ACK keeps the slot until una passes it.
    k.handle_packet(at(t0, 10), &acks(&[(2, 0)], 0, 32), false)
        .unwrap();
    assert_eq!(k.unacked(), 5);
    let p0 = k.last_progress_at();
    k.handle_packet(at(t0, 11), &acks(&[(0, 0)], 2, 32), false)
        .unwrap();
    assert_eq!(k.unacked(), 3);
    assert!(k.last_progress_at() > p0);
    // A stale una (reordering) changes nothing and is no sign of a peer reset.
    k.handle_packet(at(t0, 12), &acks(&[], 1, 32), false)
        .unwrap();
    assert_eq!((k.unacked(), k.una_regressions()), (3, 0));
    // ACKs far outside the window are ignored.
    k.handle_packet(
        at(t0, 13),
        &acks(&[(0x8000_0000, 0), (99, 0)], 2, 32),
        false,
    )
    .unwrap();
    assert_eq!(k.unacked(), 3);
    // The acked sn 2 is not resent at RTO, 3 and 4 are.
    let log = run_timers(&mut k, t0, 210);
    assert_eq!(log, vec![(200, vec![3, 4])]);
    k.handle_packet(at(t0, 220), &acks(&[], 5, 32), false)
        .unwrap();
    assert_eq!((k.unacked(), k.wait_snd()), (0, 0));
    // A hostile una far ahead empties snd_buf without corrupting the numbering.
    k.send(b"q");
    drain(&mut k, at(t0, 221));
    k.handle_packet(at(t0, 222), &acks(&[], 0x7000_0000, 32), false)
        .unwrap();
    assert_eq!(k.unacked(), 0);
    k.send(b"r");
    assert_eq!(pushes(&drain(&mut k, at(t0, 223))), vec![6]);
}

#[test]
fn rtt_estimator_known_samples() {
    let t0 = crate::test_clock::origin();
    // Sends one segment at `sent` ms and, at `now` ms, feeds the ACK of that transmission.
    fn sample(k: &mut Kcp, t0: Instant, sent: u64, now: u64, recovered: bool) -> ((i32, i32), u32) {
        let sn = k.stats().out_segs as u32; // one PUSH per call, numbered from 0
        k.send(b"x");
        assert_eq!(pushes(&drain(k, at(t0, sent))), vec![sn]);
        k.handle_packet(at(t0, now), &acks(&[(sn, sent as u32)], 0, 32), recovered)
            .unwrap();
        (k.srtt(), k.rx_rto())
    }
    let mut k = Kcp::new(CONV, &cfg("fast3", (0, 0, 0, 0), 200), t0);
    assert_eq!(sample(&mut k, t0, 900, 1000, false), ((100, 50), 300));
    // delta -40: srtt 95; 60 >= 95-50 → rttvar += (40-50)>>2 = -3 → 47; rto 95+188.
    assert_eq!(sample(&mut k, t0, 1940, 2000, false), ((95, 47), 283));
    // delta -75: srtt 85; 20 < 85-47 → rttvar += (75-47)>>5 = 0; rto 85+188.
    assert_eq!(sample(&mut k, t0, 2980, 3000, false), ((85, 47), 273));
    // A recovered (FEC) packet gives no sample.
    assert_eq!(sample(&mut k, t0, 3500, 4000, true), ((85, 47), 273));
    // Clamp to minrto (30 with nodelay).
    let mut k2 = Kcp::new(CONV, &cfg("fast3", (0, 0, 0, 0), 200), t0);
    assert_eq!(sample(&mut k2, t0, 99, 100, false), ((1, 0), 30));
    // Clamp to 60 s.
    let mut k3 = Kcp::new(CONV, &cfg("normal", (0, 0, 0, 0), 200), t0);
    assert_eq!(sample(&mut k3, t0, 0, 100_000, false).1, 60_000);
}

/// Only an ACK of our latest transmission of a segment still outstanding is a round-trip sample:
/// a repeated ACK, or the ACK of an earlier copy (the peer recovered it late through FEC), is not.
#[test]
fn rtt_samples_only_from_acks_of_the_latest_copy() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("fast3", (0, 0, 0, 0), 200), t0);
    k.send(b"a");
    assert_eq!(pushes(&drain(&mut k, t0)), vec![0]);
    k.handle_packet(at(t0, 100), &acks(&[(0, 0)], 0, 32), false)
        .unwrap();
    assert_eq!(k.srtt(), (100, 50));
    // The same ACK again, 900 ms later: no sample.
    k.handle_packet(at(t0, 1000), &acks(&[(0, 0)], 1, 32), false)
        .unwrap();
    assert_eq!(k.srtt(), (100, 50));
    // Segment 1 sent at 1000, retransmitted at its RTO; the ACK of the first copy (ts 1000)
    // arrives late, after the retransmission: no sample.
    k.send(b"b");
    assert_eq!(pushes(&drain(&mut k, at(t0, 1000))), vec![1]);
    k.handle_timeout(at(t0, 1300));
    let resent = drain(&mut k, at(t0, 1300));
    assert_eq!(pushes(&resent), vec![1]);
    k.handle_packet(at(t0, 1900), &acks(&[(1, 1000)], 1, 32), false)
        .unwrap();
    assert_eq!(k.srtt(), (100, 50), "an ACK of an older copy gave a sample");
}

#[test]
fn congestion_window_growth_and_halving() {
    let t0 = crate::test_clock::origin();
    // manual: nodelay 0, interval 10, resend 2, nc 0 (congestion control on).
    let mut k = Kcp::new(CONV, &cfg("manual", (0, 10, 2, 0), 100), t0);
    k.send(&[5u8; 76 * 30]);
    // First flush: cwnd 0 moves nothing, then cwnd becomes 1.
    assert!(pushes(&drain(&mut k, t0)).is_empty());
    assert_eq!(k.cwnd(), (1, 2));
    k.handle_timeout(at(t0, 10));
    assert_eq!(pushes(&drain(&mut k, at(t0, 10))), vec![0]);
    // Slow start: 1 → 2; the una advance flushes at once.
    k.handle_packet(at(t0, 20), &acks(&[(0, 10)], 1, 32), false)
        .unwrap();
    assert_eq!(k.cwnd(), (2, 2));
    assert_eq!(pushes(&drain(&mut k, at(t0, 20))), vec![1, 2]);
    // Avoidance: incr 152 → 194 (no step), → 227 (no step), → 256 ≥ 3·76 → cwnd = ceil(256/76) = 4.
    k.handle_packet(at(t0, 30), &acks(&[], 3, 32), false)
        .unwrap();
    assert_eq!(k.cwnd(), (2, 2));
    assert_eq!(pushes(&drain(&mut k, at(t0, 30))), vec![3, 4]);
    k.handle_packet(at(t0, 40), &acks(&[], 5, 32), false)
        .unwrap();
    assert_eq!(k.cwnd(), (2, 2));
    assert_eq!(pushes(&drain(&mut k, at(t0, 40))), vec![5, 6]);
    k.handle_packet(at(t0, 50), &acks(&[], 7, 32), false)
        .unwrap();
    assert_eq!(k.cwnd(), (4, 2));
    assert_eq!(pushes(&drain(&mut k, at(t0, 50))), vec![7, 8, 9, 10]);
    // Two duplicates for sn 7 → fast retransmit → ssthresh = max(4/2, 2), cwnd = ssthresh + resend.
    k.handle_packet(at(t0, 55), &acks(&[(8, 50), (9, 50)], 7, 32), false)
        .unwrap();
    assert_eq!(pushes(&drain(&mut k, at(t0, 55))), vec![7]);
    assert_eq!(k.cwnd(), (4, 2));
    // RTO of sn 10 (rx_rto ≥ 100) → cwnd 1.
    let log = run_timers(&mut k, t0, 400);
    assert!(!log.is_empty());
    assert_eq!(k.cwnd(), (1, 2));
    assert!(k.stats().lost_segs >= 1);
}

#[test]
fn poll_transmit_is_resumable() {
    let t0 = crate::test_clock::origin();
    let mut c = cfg("normal", (0, 0, 0, 0), 100);
    c.snd_wnd = 64;
    let mut k = Kcp::new(CONV, &c, t0);
    let data: Vec<u8> = (0..76 * 10).map(|i| i as u8).collect();
    assert_eq!(k.send(&data), data.len());
    let mut buf = [0u8; 1500];
    let n = k.poll_transmit(t0, &mut buf).unwrap();
    let mut got = pushes(&[buf[..n].to_vec()]);
    assert_eq!(got, vec![0]);
    // The socket was full for a while; the timer fires, input arrives, then we resume.
    k.handle_timeout(at(t0, 40));
    k.handle_packet(at(t0, 45), &acks(&[(0, 0)], 1, 32), false)
        .unwrap();
    got.extend(pushes(&drain(&mut k, at(t0, 50))));
    assert_eq!(got, (0..10).collect::<Vec<u32>>());
    assert_eq!(k.stats().retrans_segs, 0);
    assert_eq!(k.stats().out_segs, 10);
    assert!(drain(&mut k, at(t0, 51)).is_empty());
    // A tiny buffer never panics nor loses anything.
    k.send(b"abc");
    let mut tiny = [0u8; 10];
    assert_eq!(k.poll_transmit(at(t0, 52), &mut tiny), None);
    assert_eq!(pushes(&drain(&mut k, at(t0, 53))), vec![10]);
}

#[test]
fn idle_session_has_no_timer_and_keeps_its_phase() {
    let t0 = crate::test_clock::origin();
    let mut k = Kcp::new(CONV, &cfg("normal", (0, 0, 0, 0), 200), t0);
    assert_eq!(k.poll_timeout(), None);
    k.handle_timeout(at(t0, 1000));
    assert!(drain(&mut k, at(t0, 1000)).is_empty());
    // A PUSH at 1013 queues an ACK: it goes out at the next 40 ms tick (1040), as kcp-go's
    // free-running update timer would send it.
    k.handle_packet(at(t0, 1013), &push_seg(0, 5, 0, b"x"), false)
        .unwrap();
    assert!(drain(&mut k, at(t0, 1013)).is_empty());
    assert_eq!(k.poll_timeout(), Some(at(t0, 1040)));
    k.handle_timeout(at(t0, 1040));
    let s = segs(&drain(&mut k, at(t0, 1040)));
    assert_eq!((s.len(), s[0].0.cmd, s[0].0.ts), (1, CMD_ACK, 5));
    assert_eq!(k.poll_timeout(), None);
    // Data: sent at once, then the timer runs until it is acknowledged.
    k.send(b"y");
    assert_eq!(pushes(&drain(&mut k, at(t0, 1050))), vec![0]);
    assert!(k.poll_timeout().is_some());
    k.handle_packet(at(t0, 1070), &acks(&[(0, 1050)], 1, 32), false)
        .unwrap();
    drain(&mut k, at(t0, 1070));
    assert_eq!(k.poll_timeout(), None);
}

#[test]
fn set_config_after_creation_keeps_data() {
    let t0 = crate::test_clock::origin();
    // Created with kcp-go's defaults (as the server's sessions are), configured later.
    let mut k = Kcp::new(CONV, &KcpConfig::default(), t0);
    assert_eq!(k.mss(), 1376);
    k.handle_packet(t0, &push_seg(5, 1, 0, b"f"), false)
        .unwrap();
    // Queued but unsent data is re-cut when the mtu shrinks.
    assert_eq!(k.send(&[9u8; 1000]), 1000);
    let mut c = cfg("fast", (0, 0, 0, 0), 524);
    c.rcv_wnd = 1024;
    c.snd_wnd = 1024;
    k.set_config(&c);
    assert_eq!(k.mss(), 500);
    for sn in 0..5 {
        k.handle_packet(t0, &push_seg(sn, 1, 0, b"x"), false)
            .unwrap();
    }
    assert_eq!(k.readable(), 6);
    let mut out = [0u8; 10];
    assert_eq!(k.recv(&mut out), 6);
    assert_eq!(&out[..6], b"xxxxxf");
    let s = segs(&drain(&mut k, at(t0, 1)));
    let lens: Vec<u32> = s
        .iter()
        .filter(|(h, _)| h.cmd == CMD_PUSH)
        .map(|(h, _)| h.len)
        .collect();
    assert_eq!(lens, vec![500, 500]);
    assert!(s.iter().all(|(h, _)| h.wnd == 1024));
}

#[test]
fn immediate_ack_flushes_and_recovered_packets() {
    let t0 = crate::test_clock::origin();
    // ack_nodelay: every input with pending ACKs flushes them at once (ACK-only).
    let mut c = cfg("normal", (0, 0, 0, 0), 200);
    c.ack_nodelay = true;
    let mut k = Kcp::new(CONV, &c, t0);
    k.send(b"data");
    drain(&mut k, t0);
    k.handle_packet(at(t0, 1), &push_seg(0, 9, 0, b"p"), false)
        .unwrap();
    let s = segs(&drain(&mut k, at(t0, 1)));
    assert_eq!(s.len(), 1, "ACK only, no PUSH resend");
    assert_eq!((s[0].0.cmd, s[0].0.sn, s[0].0.ts), (CMD_ACK, 0, 9));

    // Without it: nothing until the interval, unless mtu/24 (= 8) ACKs are pending.
    let mut k = Kcp::new(CONV, &cfg("normal", (0, 0, 0, 0), 200), t0);
    for sn in 0..7 {
        k.handle_packet(at(t0, 1), &push_seg(sn, 9, 0, b"p"), false)
            .unwrap();
        assert!(drain(&mut k, at(t0, 1)).is_empty());
    }
    k.handle_packet(at(t0, 1), &push_seg(7, 9, 0, b"p"), false)
        .unwrap();
    let s = segs(&drain(&mut k, at(t0, 1)));
    // Filter: only ACKs at/above rcv_nxt (8) survive, plus the last one.
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].0.sn, s[0].0.una), (7, 8));

    // A FEC-recovered packet does not move rmt_wnd nor count repeats.
    let mut w = acks(&[], 0, 0);
    k.handle_packet(at(t0, 2), &w, true).unwrap();
    assert_eq!(k.rmt_wnd(), 32);
    k.handle_packet(at(t0, 2), &push_seg(0, 9, 0, b"p"), true)
        .unwrap();
    assert_eq!(k.stats().repeat_segs, 0);
    k.handle_packet(at(t0, 2), &push_seg(0, 9, 0, b"p"), false)
        .unwrap();
    assert_eq!(k.stats().repeat_segs, 1);
    w = acks(&[], 0, 5);
    k.handle_packet(at(t0, 3), &w, false).unwrap();
    assert_eq!(k.rmt_wnd(), 5);
}

#[test]
fn packing_respects_mtu() {
    let t0 = crate::test_clock::origin();
    let mut k = receiver("normal", 64, t0);
    // 20 out-of-order PUSHes → 20 pending ACKs (none below rcv_nxt) → 480 bytes.
    for sn in 1..21 {
        k.handle_packet(t0, &push_seg(sn, 7, 0, b"d"), false)
            .unwrap();
    }
    k.handle_timeout(at(t0, 40));
    let d = drain(&mut k, at(t0, 40));
    assert_eq!(
        d.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![192, 192, 96]
    );
    // The ACK-only flush requested on input (>= mtu/24 pending) merged into this one.
    assert_eq!(segs(&d).len(), 20);
}

#[test]
fn peer_reset_is_una_zero_on_an_established_session_only() {
    let t0 = crate::test_clock::origin();
    let mut c = cfg("fast3", (0, 0, 0, 0), 100);
    c.snd_wnd = 128;
    c.rcv_wnd = 128;
    let mut k = Kcp::new(CONV, &c, t0);
    // The peer's window (kcp-go's default 32 until it tells) opens first.
    k.handle_packet(t0, &acks(&[], 0, 128), false).unwrap();
    k.send(&[7u8; 76 * 80]);
    assert_eq!(pushes(&drain(&mut k, t0)).len(), 80);
    k.handle_packet(at(t0, 20), &acks(&[(79, 0)], 80, 128), false)
        .unwrap();
    assert_eq!(k.unacked(), 0);
    // Young session: a una of 0 may be a datagram from the first round trip, reordered.
    k.handle_packet(at(t0, 500), &acks(&[], 0, 128), false)
        .unwrap();
    assert_eq!(k.una_regressions(), 0);
    // Established: the peer forgot the conversation.
    k.handle_packet(at(t0, 1500), &acks(&[], 0, 128), false)
        .unwrap();
    assert_eq!(k.una_regressions(), 1);
    // A stale but nonzero una is reordering, never a reset.
    k.handle_packet(at(t0, 1501), &acks(&[], 5, 128), false)
        .unwrap();
    assert_eq!(k.una_regressions(), 1);
}

/// A lone segment (an interactive message) goes out twice, each copy in a datagram of its own;
/// its RTO retransmission likewise. A transfer's segments go out once.
#[test]
fn lone_segments_are_sent_twice() {
    let t0 = crate::test_clock::origin();
    let mut c = cfg("fast3", (0, 0, 0, 0), 200);
    c.dup_lone = true;
    let mut k = Kcp::new(CONV, &c, t0);
    k.send(b"ping");
    let out = drain(&mut k, t0);
    assert_eq!(out.len(), 2, "two datagrams");
    assert_eq!(pushes(&out[..1]), vec![0]);
    assert_eq!(pushes(&out[1..]), vec![0]);
    assert_eq!(out[0], out[1], "the copy is the same segment, same ts");
    // Its RTO retransmission is doubled too.
    k.handle_timeout(at(t0, 300));
    let out = drain(&mut k, at(t0, 300));
    assert_eq!(pushes(&out), vec![0, 0]);
    assert_eq!(out.len(), 2);
    // Acknowledged: nothing more.
    k.handle_packet(at(t0, 400), &acks(&[(0, 300)], 1, 32), false)
        .unwrap();
    k.handle_timeout(at(t0, 2000));
    assert!(pushes(&drain(&mut k, at(t0, 2000))).is_empty());
    // A transfer (more than two segments in flight) is sent once.
    k.send(&[7u8; 176 * 5]);
    let out = drain(&mut k, at(t0, 2000));
    assert_eq!(pushes(&out), vec![1, 2, 3, 4, 5]);
}

/// The receive ring exists only while segments arrive out of order; `release` gives it and the
/// spare buffers back, and a later out-of-order arrival rebuilds it with the data intact.
#[test]
fn receive_ring_only_for_out_of_order_and_released_when_quiet() {
    let t0 = crate::test_clock::origin();
    let mut c = cfg("fast", (0, 0, 0, 0), 1400);
    c.rcv_wnd = 1024;
    let mut k = Kcp::new(CONV, &c, t0);
    assert_eq!(k.heap_bytes(), 0, "a new session holds nothing");
    // In order: straight to the receive queue, no ring.
    k.handle_packet(at(t0, 1), &push_seg(0, 1, 0, b"ab"), false)
        .unwrap();
    let ring = 1024 * std::mem::size_of::<Option<Vec<u8>>>();
    assert!(k.heap_bytes() < ring, "in-order data built the ring");
    // Out of order: sn 2 before sn 1 needs the ring.
    k.handle_packet(at(t0, 2), &push_seg(2, 2, 0, b"ef"), false)
        .unwrap();
    assert!(k.heap_bytes() >= ring);
    k.handle_packet(at(t0, 3), &push_seg(1, 3, 0, b"cd"), false)
        .unwrap();
    let mut out = [0u8; 16];
    assert_eq!(k.recv(&mut out), 6);
    assert_eq!(&out[..6], b"abcdef");
    // The interval flush sends the pending ACKs.
    k.handle_timeout(at(t0, 200));
    assert!(!drain(&mut k, at(t0, 200)).is_empty());
    k.release();
    assert_eq!(k.heap_bytes(), 0, "quiet and empty: everything given back");
    // After the release: out of order again, then the gap filled.
    k.handle_packet(at(t0, 205), &push_seg(4, 5, 0, b"ij"), false)
        .unwrap();
    k.release(); // holds data: the ring stays
    k.handle_packet(at(t0, 206), &push_seg(3, 6, 0, b"gh"), false)
        .unwrap();
    assert_eq!(k.recv(&mut out), 4);
    assert_eq!(&out[..4], b"ghij");
}
