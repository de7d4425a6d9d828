//! `short_path_cap`: on a sub-millisecond path the sender keeps about a millisecond of the
//! delivery rate outstanding, not the whole window (explicit microseconds).

use std::collections::VecDeque;

use super::*;

const MSS: usize = 176; // mtu 200

/// A loopback-like path: 250 µs each way for ACKs, and a receiver that takes at most `per_step`
/// segments per 500 µs step (the CPU, not the window, is the limit). The application always has
/// more to send; what the sender sends when ACKs arrive goes on the wire too. Returns the most
/// segments outstanding and accepted in the last 10 ms.
fn run(short_path_cap: bool, per_step: usize) -> (usize, usize) {
    let t0 = crate::test_clock::origin();
    let mut c = cfg("fast3", (0, 0, 0, 0), 200);
    (c.snd_wnd, c.rcv_wnd) = (1024, 1024);
    c.short_path_cap = short_path_cap;
    let mut k = Kcp::new(CONV, &c, t0);
    let chunk = vec![7u8; MSS * 64];
    let mut wire: VecDeque<(u32, u32)> = VecDeque::new();
    let (mut most_out, mut most_queued) = (0, 0);
    for step in 0..200u64 {
        let now = t0 + Duration::from_micros(500 * step);
        while k.can_send() {
            k.send(&chunk);
        }
        for (h, _) in segs(&drain(&mut k, now)) {
            if h.cmd == CMD_PUSH {
                wire.push_back((h.sn, h.ts));
            }
        }
        // The most outstanding and accepted over the last 10 ms, after each send.
        let mut note = |k: &Kcp| {
            if step >= 180 {
                most_out = most_out.max(k.unacked());
                most_queued = most_queued.max(k.wait_snd());
            }
        };
        note(&k);
        let took: Vec<(u32, u32)> = (0..per_step).map_while(|_| wire.pop_front()).collect();
        if let Some(&(last, _)) = took.last() {
            let at = now + Duration::from_micros(250);
            k.handle_packet(at, &acks(&took, last + 1, 1024), false)
                .unwrap();
            for (h, _) in segs(&drain(&mut k, at)) {
                if h.cmd == CMD_PUSH {
                    wire.push_back((h.sn, h.ts));
                }
            }
        }
        note(&k);
    }
    (most_out, most_queued)
}

#[test]
fn a_short_path_keeps_a_millisecond_outstanding() {
    // 100 segments per 500 µs = 200 per ms: the cap is 200 segments (the floor is 128).
    let (out, queued) = run(true, 100);
    assert!(out <= 200, "{out} outstanding");
    assert!(
        out >= 150,
        "{out} outstanding: the cap must not starve the path"
    );
    assert!(queued <= 200 + 16, "{queued} accepted");
    println!("with the cap: {out} outstanding, {queued} accepted");
}

#[test]
fn without_the_cap_the_whole_window_is_outstanding() {
    let (out, queued) = run(false, 100);
    assert!(out > 900, "{out} outstanding");
    assert!(queued > 900, "{queued} accepted");
    println!("without the cap: {out} outstanding, {queued} accepted");
}
