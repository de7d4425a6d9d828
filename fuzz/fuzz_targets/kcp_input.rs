//! A `Kcp` fed hostile datagrams interleaved with timeouts, transmissions, reads and writes.
//! Segments may be patched to carry the session's conv so the fuzzer gets past the conv check.
#![no_main]

mod common;

use common::{Clock, Cursor};
use kcptun::proto::kcp::{Kcp, KcpConfig, OVERHEAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let conv = c.u32();
    let f = c.u8();
    let mut cfg = KcpConfig::from_mode(
        ["normal", "fast", "fast2", "fast3"][usize::from(f & 3)],
        (0, 40, 0, 0),
    );
    cfg.snd_wnd = u16::from(c.u8()) + 1;
    cfg.rcv_wnd = u16::from(c.u8()) + 1;
    cfg.mtu = [1400, 1350, 576, 100, 50][usize::from(f >> 2) % 5];
    cfg.ack_nodelay = f & 0x20 != 0;
    cfg.nc = f & 0x40 != 0;
    let mut clock = Clock::new();
    let mut kcp = Kcp::new(conv, &cfg, clock.now);
    let mut out = vec![0u8; cfg.mtu];
    let mut rd = [0u8; 8192];
    let wr = [0x5au8; 4096];
    let mut ops = 0;
    while !c.is_empty() && ops < 128 {
        ops += 1;
        let op = c.u8();
        let now = clock.advance(c.u8());
        match op % 6 {
            0..=2 => {
                let mut pkt = [0u8; 1600];
                let d = c.chunk(pkt.len());
                pkt[..d.len()].copy_from_slice(d);
                let n = d.len();
                if op & 0x40 != 0 {
                    // Walk the segments and give each our conv.
                    let mut at = 0;
                    while at + OVERHEAD <= n {
                        pkt[at..at + 4].copy_from_slice(&conv.to_le_bytes());
                        let len = u32::from_le_bytes([
                            pkt[at + 20],
                            pkt[at + 21],
                            pkt[at + 22],
                            pkt[at + 23],
                        ]) as usize;
                        at = at.saturating_add(OVERHEAD).saturating_add(len);
                    }
                }
                let _ = kcp.handle_packet(now, &pkt[..n], op & 0x80 != 0);
            }
            3 => kcp.handle_timeout(now),
            4 => {
                let n = usize::from(c.u16()) % (wr.len() + 1);
                let got = kcp.send(&wr[..n]);
                assert!(got <= n);
            }
            _ => {
                let want = usize::from(c.u16()) % (rd.len() + 1);
                let before = kcp.readable();
                let got = kcp.recv(&mut rd[..want]);
                assert!(got <= want && got <= before);
            }
        }
        let mut sent = 0;
        while let Some(n) = kcp.poll_transmit(now, &mut out) {
            assert!(n <= cfg.mtu && n > 0);
            sent += 1;
            assert!(sent < 100_000, "poll_transmit does not terminate");
        }
        // Memory bounds: the send side never holds more than snd_wnd segments, the receive
        // queue at most rcv_wnd segments of at most one datagram each.
        assert!(kcp.wait_snd() <= usize::from(cfg.snd_wnd));
        assert!(kcp.readable() <= usize::from(cfg.rcv_wnd) * 1600);
    }
});
