//! `FecDecoder::input` on a sequence of hostile packets with a (ds, ps) chosen by the input;
//! every recovery is drained and checked against the decoder's bounds.
#![no_main]

mod common;

use common::Cursor;
use kcptun::proto::fec::{FecDecoder, FEC_HEADER, MTU_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    // Realistic shapes only: building a code near 256 shards takes ~0.1 s under the sanitizer
    // and starved the fuzzer (auto-tune can still reach any shape from the packets). 0 is kept
    // for the config error path.
    let (ds, ps) = (usize::from(c.u8() % 48), usize::from(c.u8() % 24));
    let Ok(mut dec) = FecDecoder::new(ds, ps) else {
        return;
    };
    let mut packets = 0;
    while !c.is_empty() && packets < 256 {
        packets += 1;
        let mode = c.u8();
        let mut pkt = [0u8; MTU_LIMIT + 16];
        let body = c.chunk(MTU_LIMIT + 8);
        let n = if mode & 1 != 0 && body.len() >= 2 {
            // A well-formed header around the body: seqid from the input, type data/parity, a
            // size field that may or may not agree with the length.
            let seqid = u32::from_le_bytes([body[0], body[1], mode >> 1, 0]);
            let ty: u16 = if mode & 2 != 0 { 0xF1 } else { 0xF2 };
            let rest = &body[2..];
            let n = (FEC_HEADER + rest.len()).min(pkt.len());
            pkt[0..4].copy_from_slice(&seqid.to_le_bytes());
            pkt[4..6].copy_from_slice(&ty.to_le_bytes());
            let size = if mode & 4 != 0 {
                rest.len() + 2
            } else {
                usize::from(mode) << 3
            };
            pkt[6..8].copy_from_slice(&(size as u16).to_le_bytes());
            pkt[FEC_HEADER..n].copy_from_slice(&rest[..n - FEC_HEADER]);
            n
        } else {
            pkt[..body.len()].copy_from_slice(body);
            body.len()
        };
        let got = dec.input(&pkt[..n]);
        let (ds, ps) = dec.params();
        assert!(ds >= 1 && ps >= 1 && ds + ps <= 256);
        assert!(got <= ps, "recovered {got} > ps {ps}");
        let mut seen = 0;
        if mode & 8 != 0 {
            while let Some(s) = dec.poll_recovered_shard() {
                assert!(s.len() <= MTU_LIMIT);
                seen += 1;
            }
            assert_eq!(seen, got);
        } else {
            while let Some(k) = dec.poll_recovered() {
                assert!(k.len() <= MTU_LIMIT);
                seen += 1;
            }
            assert!(seen <= got);
        }
        assert!(dec.poll_recovered().is_none());
    }
});
