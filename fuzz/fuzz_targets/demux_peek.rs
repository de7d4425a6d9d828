//! `demux::peek` / `peek_kcp` on hostile bytes: never panics, and what it reports agrees with the
//! bytes (conv = first KCP word); the reset hint it builds parses back.
#![no_main]

use kcptun::proto::demux::{peek, peek_kcp, write_reset_hint};
use kcptun::proto::fec::{classify, PacketKind, FEC_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = peek(data);
    let k = peek_kcp(data);
    if let Some(k) = k {
        assert_eq!(k.conv.to_le_bytes(), data[..4]);
    }
    match classify(data) {
        PacketKind::Plain => assert_eq!(p, k),
        PacketKind::Data => {
            if let Some(p) = p {
                assert_eq!(p.conv.to_le_bytes(), data[FEC_HEADER..FEC_HEADER + 4]);
            }
        }
        PacketKind::Parity | PacketKind::Oob => assert!(p.is_none()),
    }
    if let Some(p) = p {
        let mut hint = [0u8; 24];
        assert_eq!(write_reset_hint(p.conv, &mut hint), 24);
        let h = peek_kcp(&hint).expect("hint parses");
        assert_eq!(h.conv, p.conv);
        assert!(!h.starts_conversation);
    }
});
