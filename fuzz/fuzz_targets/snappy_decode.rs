//! The snappy framed-stream `Decompressor` on hostile bytes split at points the input chooses,
//! with a `max_out` chosen per call; plus a round trip of input bytes through the `Compressor`
//! decoded with the same splits, which must give the bytes back.
#![no_main]

mod common;

use common::Cursor;
use kcptun::proto::compress::{Compressor, Decompressor, MAX_BLOCK_SIZE, MAX_CHUNK_LEN};
use libfuzzer_sys::fuzz_target;

/// Feeds `stream` to `d` in pieces with per-call budgets, then the rest with no limit; returns
/// the decoded bytes and whether an error occurred.
fn feed(d: &mut Decompressor, c: &mut Cursor<'_>, mut stream: &[u8]) -> (Vec<u8>, bool) {
    let mut all = Vec::new();
    let mut out = Vec::new();
    let mut calls = 0;
    while !c.is_empty() && calls < 512 {
        calls += 1;
        let split = usize::from(c.u16());
        let max_out = match c.u8() % 4 {
            0 => 0,
            1 => usize::from(c.u16()),
            2 => MAX_BLOCK_SIZE,
            _ => usize::MAX,
        };
        let piece = &stream[..split.min(stream.len())];
        let before = out.len();
        match d.decompress(piece, &mut out, max_out) {
            Ok(n) => {
                assert!(n <= piece.len());
                assert!(out.len() - before <= max_out);
                if max_out == usize::MAX {
                    assert_eq!(n, piece.len(), "unlimited budget left input");
                } else if max_out >= MAX_BLOCK_SIZE && !piece.is_empty() {
                    assert!(
                        n > 0 || out.len() > before,
                        "no progress with a full budget"
                    );
                }
                stream = &stream[n..];
            }
            Err(e) => {
                // Errors are final.
                assert_eq!(
                    d.decompress(b"\xff\x06\x00\x00sNaPpY", &mut out, 1 << 20),
                    Err(e)
                );
                all.extend_from_slice(&out);
                return (all, true);
            }
        }
        assert!(d.buffered() <= 4 + MAX_CHUNK_LEN);
        all.extend_from_slice(&out);
        out.clear();
    }
    // The rest (and anything held) with an unlimited budget.
    let r = d.decompress(stream, &mut out, usize::MAX);
    all.extend_from_slice(&out);
    match r {
        Ok(n) => {
            assert_eq!(n, stream.len());
            (all, false)
        }
        Err(_) => (all, true),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mode = c.u8();
    let payload = c.chunk(200_000);
    if mode & 1 == 0 {
        let mut d = Decompressor::new();
        let _ = feed(&mut d, &mut c, payload);
    } else {
        // Round trip: compress `payload` as several writes, decode with hostile splits.
        let mut comp = Compressor::new();
        let mut stream = Vec::new();
        let mut rest = payload;
        while !rest.is_empty() {
            let n = (usize::from(c.u16()) + 1).min(rest.len());
            comp.compress(&rest[..n], &mut stream);
            rest = &rest[n..];
        }
        let mut d = Decompressor::new();
        let (got, err) = feed(&mut d, &mut c, &stream);
        assert!(!err, "our own stream failed to decode");
        assert_eq!(got.len(), payload.len());
        assert!(got == payload, "round trip differs");
    }
});
