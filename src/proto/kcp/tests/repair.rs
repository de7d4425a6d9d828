//! `repair_ahead`: a fast retransmission goes out twice and the window counts past repaired
//! segments, unless the round trip shows a queue (explicit milliseconds).

use super::*;

const MSS: usize = 176; // mtu 200

fn sender(repair_ahead: bool, t0: Instant) -> Kcp {
    let mut c = cfg("fast3", (0, 0, 0, 0), 200);
    c.snd_wnd = 8;
    c.repair_ahead = repair_ahead;
    Kcp::new(CONV, &c, t0)
}

/// Eight segments fill the window; the peer acknowledges 1 and 2 but not 0.
fn hole_at_zero(k: &mut Kcp, t0: Instant) -> Vec<Vec<u8>> {
    assert_eq!(k.send(&[1u8; MSS * 8]), MSS * 8);
    assert!(!k.can_send(), "the window is full");
    assert_eq!(pushes(&drain(k, t0)), (0..8).collect::<Vec<_>>());
    k.handle_packet(at(t0, 100), &acks(&[(1, 0), (2, 0)], 0, 128), false)
        .unwrap();
    drain(k, at(t0, 100))
}

#[test]
fn a_repair_goes_out_twice_and_the_window_moves_past_it() {
    let t0 = crate::test_clock::origin();
    let mut k = sender(true, t0);
    let out = hole_at_zero(&mut k, t0);
    assert_eq!(out.len(), 2, "the repair and its copy, each a datagram");
    assert_eq!(pushes(&out), vec![0, 0]);
    assert_eq!(out[0], out[1], "the copy is the same segment, same ts");
    assert_eq!(
        k.stats().fast_retrans_segs,
        1,
        "one retransmission, sent twice"
    );
    // 0 is repaired, 1 and 2 are acknowledged: the window counts from 3, so three more
    // segments may be queued and go out although snd_una is still 0.
    assert_eq!(k.send(&[2u8; MSS * 8]), MSS * 3);
    assert!(!k.can_send());
    assert_eq!(pushes(&drain(&mut k, at(t0, 100))), vec![8, 9, 10]);
    // Once 0 is acknowledged the window counts from snd_una again as usual.
    k.handle_packet(at(t0, 200), &acks(&[(0, 100)], 3, 128), false)
        .unwrap();
    assert!(k.can_send());
}

#[test]
fn without_repair_ahead_the_window_waits_for_snd_una() {
    let t0 = crate::test_clock::origin();
    let mut k = sender(false, t0);
    let out = hole_at_zero(&mut k, t0);
    assert_eq!(pushes(&out), vec![0], "one retransmission, once");
    assert!(!k.can_send(), "nothing more until 0 is acknowledged");
    assert!(pushes(&drain(&mut k, at(t0, 100))).is_empty());
}

#[test]
fn a_queue_on_the_path_stands_repair_ahead_down() {
    let t0 = crate::test_clock::origin();
    let mut k = sender(true, t0);
    // The path's own round trip: 10 ms.
    k.send(&[0u8; MSS]);
    assert_eq!(pushes(&drain(&mut k, t0)), vec![0]);
    k.handle_packet(at(t0, 10), &acks(&[(0, 0)], 1, 128), false)
        .unwrap();
    assert_eq!(k.srtt().0, 10);
    // A window whose ACKs come back 300 ms later: a queue (srtt 46 > 10 + 20).
    assert_eq!(k.send(&[1u8; MSS * 8]), MSS * 8);
    assert_eq!(
        pushes(&drain(&mut k, at(t0, 10))),
        (1..9).collect::<Vec<_>>()
    );
    k.handle_packet(at(t0, 310), &acks(&[(2, 10), (3, 10)], 1, 128), false)
        .unwrap();
    assert!(k.srtt().0 > 30, "srtt {}", k.srtt().0);
    // By now 4..8 are past their RTO too: everything outstanding has been retransmitted.
    let sent = pushes(&drain(&mut k, at(t0, 310)));
    assert_eq!(
        sent.iter().filter(|&&sn| sn == 1).count(),
        1,
        "the repair goes out once"
    );
    assert_eq!(sent.len(), 6, "1 and 4..8, once each: {sent:?}");
    assert!(!k.can_send(), "and the window waits for snd_una");
}

#[test]
fn send_room_is_what_send_takes() {
    let t0 = crate::test_clock::origin();
    let mut k = sender(true, t0);
    assert_eq!(k.send_room(), 8 * MSS);
    assert_eq!(k.send(&[1u8; 100]), 100);
    assert_eq!(
        k.send_room(),
        8 * MSS - 100,
        "the short last segment is topped up first"
    );
    assert!(!k.long_path(), "no round trip measured yet");
    assert_eq!(k.send(&[1u8; 7 * MSS]), 7 * MSS);
    assert_eq!(k.send_room(), 0);
    drain(&mut k, t0);
    // 1 and 2 acknowledged after 100 ms, 0 repaired: the window counts from 3.
    k.handle_packet(at(t0, 100), &acks(&[(1, 0), (2, 0)], 0, 128), false)
        .unwrap();
    drain(&mut k, at(t0, 100));
    assert!(
        k.long_path(),
        "a 100 ms round trip is longer than the 10 ms interval"
    );
    assert_eq!(k.send_room(), 3 * MSS);
    assert_eq!(k.send(&[1u8; 16 * MSS]), 3 * MSS);
    assert_eq!(k.send_room(), 0);
}

#[test]
fn the_receiver_holds_half_a_window_past_its_own() {
    let t0 = crate::test_clock::origin();
    let mut k = receiver("fast3", 8, t0);
    // 0 is missing; 1..=11 reach past the 8-segment window (a sender counting past its repair
    // of 0); 12 is beyond the half window held past it.
    for sn in 1..=12 {
        k.handle_packet(t0, &push_seg(sn, 1, 0, b"ab"), false)
            .unwrap();
    }
    assert_eq!(k.stats().repeat_segs, 1, "only sn 12 is dropped");
    let acked: Vec<u32> = segs(&drain(&mut k, at(t0, 10)))
        .iter()
        .filter(|s| s.0.cmd == CMD_ACK)
        .map(|s| s.0.sn)
        .collect();
    assert_eq!(acked, (1..=11).collect::<Vec<_>>());
    // The repair of 0 arrives: 0..=7 fill the receive queue, 8..=11 wait in order behind it.
    k.handle_packet(at(t0, 20), &push_seg(0, 1, 0, b"ab"), false)
        .unwrap();
    assert_eq!(k.readable(), 16);
    let mut out = [0u8; 64];
    assert_eq!(k.recv(&mut out), 16);
    assert_eq!(k.readable(), 8, "then the held four");
    assert_eq!(k.recv(&mut out), 8);
}

/// A sender with a 256-segment window that the peer has been told to fill, with `segs` segments
/// sent at `t0`.
fn wide_sender(repair_ahead: bool, segs: usize, t0: Instant) -> Kcp {
    let mut c = cfg("fast3", (0, 0, 0, 0), 200);
    c.snd_wnd = 256;
    c.repair_ahead = repair_ahead;
    let mut k = Kcp::new(CONV, &c, t0);
    k.handle_packet(t0, &acks(&[], 0, 256), false).unwrap();
    assert_eq!(k.send(&vec![1u8; MSS * segs]), MSS * segs);
    assert_eq!(pushes(&drain(&mut k, t0)).len(), segs);
    k
}

/// A window-bound transfer on a lossy path sends its window in one flush per round trip, with
/// dozens of repairs in it: every one goes out twice (a cap of 32 used to leave the rest single).
#[test]
fn every_repair_of_a_large_flush_goes_out_twice() {
    let t0 = crate::test_clock::origin();
    let mut k = wide_sender(true, 200, t0);
    // Every odd segment arrives, every even one is lost: 100 holes, each reported twice over.
    let odd: Vec<(u32, u32)> = (0..100).map(|i| (2 * i + 1, 0)).collect();
    k.handle_packet(at(t0, 100), &acks(&odd, 0, 256), false)
        .unwrap();
    let sent = pushes(&drain(&mut k, at(t0, 100)));
    for sn in (0..198).step_by(2) {
        assert_eq!(
            sent.iter().filter(|&&s| s == sn).count(),
            2,
            "repair of {sn}: {sent:?}"
        );
    }
    assert_eq!(
        k.stats().fast_retrans_segs,
        99,
        "198 has no later ACK twice"
    );
}

/// Where FEC rebuilds 5 % or more of the peer's datagrams, a lone segment goes out three times
/// (both of two copies are lost 1 % of the time at 10 % loss); at 2 % it stays at two.
#[test]
fn lone_segments_go_out_three_times_where_loss_is_heavy() {
    let t0 = crate::test_clock::origin();
    for (rebuilt, copies) in [(5u32, 2usize), (13, 3)] {
        let mut c = cfg("fast3", (0, 0, 0, 0), 200);
        c.dup_lone = true;
        let mut k = Kcp::new(CONV, &c, t0);
        // 256 datagrams from the peer (window updates), `rebuilt` of them by FEC.
        for i in 0..256u32 {
            k.handle_packet(at(t0, 1), &acks(&[], 0, 128), i < rebuilt)
                .unwrap();
        }
        assert_eq!(k.heavy_loss(), copies == 3, "{rebuilt} of 256 rebuilt");
        k.send(b"ping");
        let out = drain(&mut k, at(t0, 2));
        assert_eq!(pushes(&out), vec![0; copies]);
        assert_eq!(out.len(), copies, "each copy in a datagram of its own");
    }
}

/// Without FEC our own retransmissions tell: 5 % of the segments sent needing one makes the
/// loss heavy.
#[test]
fn our_own_retransmissions_show_heavy_loss_without_fec() {
    let t0 = crate::test_clock::origin();
    // 243 new segments, and 13 of them sent again after their RTO: 256 transmissions.
    let mut k = wide_sender(false, 243, t0);
    let acked: Vec<(u32, u32)> = (13..243).map(|sn| (sn, 0)).collect();
    k.handle_packet(at(t0, 50), &acks(&acked, 0, 256), false)
        .unwrap();
    assert!(!k.heavy_loss());
    k.handle_timeout(at(t0, 1000));
    let again = pushes(&drain(&mut k, at(t0, 1000)));
    assert_eq!(again, (0..13).collect::<Vec<_>>());
    assert!(k.heavy_loss());
}
