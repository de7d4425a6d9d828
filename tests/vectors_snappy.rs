//! Snappy framed stream (SPEC §6) against `snappy.json`, hostile input and arbitrary splitting.

mod common;

use std::io::{Read, Write};

use kcptun::proto::compress::{
    masked_crc32c, CompressError, Compressor, Decompressor, MAX_BLOCK_SIZE, MAX_CHUNK_LEN,
    STREAM_IDENTIFIER,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// Upper bound on what a decompressor may hold between calls.
const MAX_BUFFERED: usize = 4 + MAX_CHUNK_LEN;

struct Case {
    name: String,
    writes: Vec<Vec<u8>>,
    framed: Vec<u8>,
    input_sha256: String,
    input_len: usize,
}

fn cases() -> Vec<Case> {
    let v = common::load("snappy.json");
    let cases: Vec<Case> = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            writes: c["writes_hex"]
                .as_array()
                .unwrap()
                .iter()
                .map(common::unhex)
                .collect(),
            framed: common::unhex(&c["framed_hex"]),
            input_sha256: c["input_sha256"].as_str().unwrap().to_string(),
            input_len: c["input_len"].as_u64().unwrap() as usize,
        })
        .collect();
    assert_eq!(cases.len(), 6);
    cases
}

/// Feeds `stream` cut at `cuts` (sorted or not, clamped), resubmitting whatever a call leaves
/// unconsumed, with `max_out` as the per-call output bound; checks the bound and the buffering
/// invariant on every call. Stalls (a chunk larger than `max_out`) are resolved by one call with
/// room for a whole block, as a caller would after draining `out`.
fn feed(stream: &[u8], cuts: &[usize], max_out: usize) -> Result<Vec<u8>, CompressError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut dec = Decompressor::new();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let mut piece = &stream[w[0]..w[1]];
        loop {
            let before = out.len();
            let n = dec.decompress(piece, &mut out, max_out)?;
            assert!(n <= piece.len());
            assert!(out.len() - before <= max_out, "max_out exceeded");
            assert!(dec.buffered() <= MAX_BUFFERED);
            piece = &piece[n..];
            if piece.is_empty() {
                break;
            }
            if n == 0 && out.len() == before {
                let n = dec.decompress(piece, &mut out, MAX_BLOCK_SIZE)?;
                assert!(
                    n > 0 || out.len() > before,
                    "no progress with a full block of room"
                );
                piece = &piece[n..];
                if piece.is_empty() {
                    break;
                }
            }
        }
    }
    // Deliver a chunk held back for lack of room.
    dec.decompress(&[], &mut out, usize::MAX)?;
    assert_eq!(
        dec.buffered(),
        0,
        "a complete stream leaves nothing buffered"
    );
    Ok(out)
}

fn whole(stream: &[u8]) -> Result<Vec<u8>, CompressError> {
    feed(stream, &[], usize::MAX)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[test]
fn compressor_matches_go_byte_for_byte() {
    for case in cases() {
        let mut c = Compressor::new();
        let mut out = Vec::new();
        for w in &case.writes {
            c.compress(w, &mut out);
        }
        assert_eq!(out, case.framed, "case {}", case.name);
    }
}

#[test]
fn decompressor_decodes_vectors_whole_and_byte_by_byte() {
    for case in cases() {
        let expected: Vec<u8> = case.writes.concat();
        assert_eq!(expected.len(), case.input_len);

        let got = whole(&case.framed).unwrap();
        assert_eq!(got.len(), case.input_len, "case {}", case.name);
        assert_eq!(sha256_hex(&got), case.input_sha256, "case {}", case.name);

        let mut dec = Decompressor::new();
        let mut out = Vec::new();
        for b in &case.framed {
            assert_eq!(
                dec.decompress(std::slice::from_ref(b), &mut out, usize::MAX),
                Ok(1)
            );
            assert!(dec.buffered() <= MAX_BUFFERED);
        }
        assert_eq!(dec.buffered(), 0);
        assert_eq!(
            sha256_hex(&out),
            case.input_sha256,
            "case {} byte by byte",
            case.name
        );
    }
}

#[test]
fn snap_frame_decoder_accepts_our_output() {
    for case in cases() {
        let mut c = Compressor::new();
        let mut out = Vec::new();
        for w in &case.writes {
            c.compress(w, &mut out);
        }
        let mut got = Vec::new();
        snap::read::FrameDecoder::new(&out[..])
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, case.writes.concat());
    }
}

#[test]
fn empty_write_produces_nothing_then_identifier_once() {
    let mut c = Compressor::new();
    let mut out = Vec::new();
    c.compress(&[], &mut out);
    assert!(out.is_empty());
    c.compress(b"a", &mut out);
    assert_eq!(&out[..10], &STREAM_IDENTIFIER);
    let len = out.len();
    c.compress(&[], &mut out);
    assert_eq!(out.len(), len);
    c.compress(b"b", &mut out);
    assert_eq!(&out[len..len + 1], &[0x01]);
    assert_eq!(whole(&out).unwrap(), b"ab");
}

#[test]
fn large_write_is_cut_into_64k_pieces() {
    let data = vec![7u8; 3 * MAX_BLOCK_SIZE + 5];
    let mut out = Vec::new();
    Compressor::new().compress(&data, &mut out);
    // Walk the chunks: identifier then ceil(N/65536) data chunks.
    let mut pos = 10;
    let mut chunks = 0;
    while pos < out.len() {
        let len = usize::from(out[pos + 1])
            | usize::from(out[pos + 2]) << 8
            | usize::from(out[pos + 3]) << 16;
        let expected_type = if chunks < 3 { 0x00 } else { 0x01 }; // 5 bytes do not compress
        assert_eq!(out[pos], expected_type, "chunk {chunks}");
        pos += 4 + len;
        chunks += 1;
    }
    assert_eq!(pos, out.len());
    assert_eq!(chunks, 4);
    assert_eq!(whole(&out).unwrap(), data);
}

/// A stream with identifier and one uncompressed chunk of `data`.
fn uncompressed_stream(data: &[u8]) -> Vec<u8> {
    let mut s = STREAM_IDENTIFIER.to_vec();
    s.extend_from_slice(&chunk(
        0x01,
        &[&masked_crc32c(data).to_le_bytes(), data].concat(),
    ));
    s
}

fn chunk(t: u8, body: &[u8]) -> Vec<u8> {
    let l = (body.len() as u32).to_le_bytes();
    let mut c = vec![t, l[0], l[1], l[2]];
    c.extend_from_slice(body);
    c
}

#[test]
fn corrupt_crc_is_rejected_and_sticky() {
    for case in cases().into_iter().filter(|c| !c.framed.is_empty()) {
        // First data chunk's CRC starts at 10 + 4.
        let mut s = case.framed.clone();
        s[14] ^= 0x01;
        let mut dec = Decompressor::new();
        let mut out = Vec::new();
        assert_eq!(
            dec.decompress(&s, &mut out, usize::MAX),
            Err(CompressError::Corrupt),
            "case {}",
            case.name
        );
        assert!(out.is_empty(), "nothing of a bad chunk is delivered");
        assert_eq!(
            dec.decompress(&[], &mut out, usize::MAX),
            Err(CompressError::Corrupt)
        );
        assert_eq!(
            dec.decompress(&case.framed, &mut out, usize::MAX),
            Err(CompressError::Corrupt)
        );
        assert_eq!(CompressError::Corrupt.to_string(), "snappy: corrupt input");
    }
    // Corrupting the compressed payload (not the CRC) is caught too.
    let case = cases()
        .into_iter()
        .find(|c| c.name == "compressible_100KiB")
        .unwrap();
    let mut s = case.framed.clone();
    s[40] ^= 0x55;
    assert_eq!(whole(&s), Err(CompressError::Corrupt));
}

#[test]
fn bad_first_chunk() {
    // A data chunk without the identifier.
    let s = uncompressed_stream(b"hello");
    assert_eq!(whole(&s[10..]), Err(CompressError::NotSnappyStream));
    // Padding first is not allowed either (Go: first chunk must be the identifier).
    let mut p = chunk(0xfe, &[0; 3]);
    p.extend_from_slice(&s);
    assert_eq!(whole(&p), Err(CompressError::NotSnappyStream));
    // Malformed identifier body or length.
    let mut bad = s.clone();
    bad[9] = b'Z';
    assert_eq!(whole(&bad), Err(CompressError::NotSnappyStream));
    let mut bad_len = chunk(0xff, b"sNaPpY!");
    bad_len.extend_from_slice(&s[10..]);
    assert_eq!(whole(&bad_len), Err(CompressError::NotSnappyStream));
    // Detected from the header alone, before any body arrives.
    let mut dec = Decompressor::new();
    assert_eq!(
        dec.decompress(&[0x01, 0x09, 0x00], &mut Vec::new(), usize::MAX),
        Ok(3)
    );
    assert_eq!(
        dec.decompress(&[0x00], &mut Vec::new(), usize::MAX),
        Err(CompressError::NotSnappyStream)
    );
    assert!(CompressError::NotSnappyStream
        .to_string()
        .starts_with("snappy: corrupt input"));
}

#[test]
fn oversize_and_reserved_chunks() {
    let mut dec = Decompressor::new();
    let mut out = Vec::new();
    let mut s = STREAM_IDENTIFIER.to_vec();
    let ok_len = (MAX_CHUNK_LEN as u32).to_le_bytes();
    s.extend_from_slice(&[0x00, ok_len[0], ok_len[1], ok_len[2]]);
    // The longest legal chunk header is accepted (its body is awaited).
    assert_eq!(dec.decompress(&s, &mut out, usize::MAX), Ok(s.len()));
    assert!(dec.buffered() <= MAX_BUFFERED);

    let long = (MAX_CHUNK_LEN as u32 + 1).to_le_bytes();
    for t in [0x00u8, 0x01, 0xfe, 0x80, 0xff] {
        let mut s = STREAM_IDENTIFIER.to_vec();
        s.extend_from_slice(&[t, long[0], long[1], long[2]]);
        assert_eq!(
            whole(&s),
            Err(CompressError::ChunkTooLong(MAX_CHUNK_LEN + 1)),
            "type {t:#x}"
        );
    }
    assert!(CompressError::ChunkTooLong(76495)
        .to_string()
        .starts_with("snappy: unsupported input"));

    for t in [0x02u8, 0x10, 0x7f] {
        let mut s = STREAM_IDENTIFIER.to_vec();
        s.extend_from_slice(&chunk(t, b"xyz"));
        assert_eq!(whole(&s), Err(CompressError::ReservedChunkType(t)));
    }
    // Data chunks too short to hold a CRC.
    for t in [0x00u8, 0x01] {
        let mut s = STREAM_IDENTIFIER.to_vec();
        s.extend_from_slice(&chunk(t, b"abc"));
        assert_eq!(whole(&s), Err(CompressError::Corrupt));
    }
}

#[test]
fn decoded_length_above_64k_is_corrupt() {
    // Uncompressed: 65537 bytes with a correct CRC (chunk length 65541 <= 76494).
    let data = vec![1u8; MAX_BLOCK_SIZE + 1];
    assert_eq!(
        whole(&uncompressed_stream(&data)),
        Err(CompressError::Corrupt)
    );
    assert_eq!(whole(&uncompressed_stream(&data[1..])).unwrap(), &data[1..]);
    // Compressed: a valid snappy block of 65537 bytes.
    let block = snap::raw::Encoder::new().compress_vec(&data).unwrap();
    let mut s = STREAM_IDENTIFIER.to_vec();
    s.extend_from_slice(&chunk(
        0x00,
        &[&masked_crc32c(&data).to_le_bytes()[..], &block].concat(),
    ));
    assert_eq!(whole(&s), Err(CompressError::Corrupt));
}

#[test]
fn padding_skippable_and_repeated_identifier() {
    let mut s = uncompressed_stream(b"one");
    s.extend_from_slice(&chunk(0xfe, &[0; 100]));
    s.extend_from_slice(&STREAM_IDENTIFIER);
    for t in 0x80u8..=0xfd {
        s.extend_from_slice(&chunk(t, &vec![t; usize::from(t) % 7]));
    }
    s.extend_from_slice(&chunk(0xfe, &[]));
    s.extend_from_slice(&chunk(0xfe, &vec![0xaa; MAX_CHUNK_LEN]));
    let mut tail = Vec::new();
    let mut c = Compressor::new();
    c.compress(
        b"two, compressed? two, compressed? two, compressed? two, compressed?",
        &mut tail,
    );
    s.extend_from_slice(&tail); // carries its own identifier: a repeat, validated and skipped
    let expected = b"onetwo, compressed? two, compressed? two, compressed? two, compressed?";
    assert_eq!(whole(&s).unwrap(), expected);
    let mut dec = Decompressor::new();
    let mut out = Vec::new();
    for b in &s {
        dec.decompress(std::slice::from_ref(b), &mut out, usize::MAX)
            .unwrap();
        assert!(dec.buffered() <= MAX_BUFFERED);
    }
    assert_eq!(out, expected);
}

#[test]
fn truncated_then_resumed() {
    for case in cases() {
        for cut in [
            1,
            3,
            4,
            9,
            10,
            11,
            13,
            14,
            15,
            case.framed.len() / 2,
            case.framed.len().saturating_sub(1),
        ] {
            let cut = cut.min(case.framed.len());
            let mut dec = Decompressor::new();
            let mut out = Vec::new();
            assert_eq!(
                dec.decompress(&case.framed[..cut], &mut out, usize::MAX),
                Ok(cut)
            );
            let mid = out.len();
            assert_eq!(
                dec.decompress(&case.framed[cut..], &mut out, usize::MAX),
                Ok(case.framed.len() - cut)
            );
            assert!(mid <= out.len());
            assert_eq!(
                sha256_hex(&out),
                case.input_sha256,
                "case {} cut {cut}",
                case.name
            );
        }
    }
}

#[test]
fn back_pressure_bounds_output() {
    // Three chunks of 65536 and one of 5 (repetitive data, compressed).
    let data: Vec<u8> = (0..3 * MAX_BLOCK_SIZE + 5)
        .map(|i| (i / 1000) as u8)
        .collect();
    let mut s = Vec::new();
    Compressor::new().compress(&data, &mut s);

    // max_out 0: the identifier and the first data chunk's header are consumed, its body is not.
    let mut dec = Decompressor::new();
    let mut out = Vec::new();
    let n = dec.decompress(&s, &mut out, 0).unwrap();
    assert_eq!(n, 14);
    assert_eq!(dec.buffered(), 0);
    assert!(out.is_empty());
    // Room for one block: exactly one chunk per call.
    let mut pos = n;
    let mut calls = 0;
    while pos < s.len() {
        let before = out.len();
        pos += dec.decompress(&s[pos..], &mut out, MAX_BLOCK_SIZE).unwrap();
        assert!(out.len() - before <= MAX_BLOCK_SIZE);
        calls += 1;
    }
    assert_eq!(calls, 4);
    assert_eq!(out, data);

    // A chunk completed inside the buffer but refused for lack of room is delivered later, even
    // with no new input.
    let mut dec = Decompressor::new();
    let mut out = Vec::new();
    let first_chunk_end = {
        let l = usize::from(s[11]) | usize::from(s[12]) << 8 | usize::from(s[13]) << 16;
        14 + l
    };
    assert_eq!(dec.decompress(&s[..20], &mut out, 0), Ok(20));
    assert_eq!(
        dec.decompress(&s[20..first_chunk_end], &mut out, 100),
        Ok(first_chunk_end - 20)
    );
    assert!(out.is_empty());
    assert!(dec.buffered() > 0);
    assert_eq!(dec.decompress(&[], &mut out, MAX_BLOCK_SIZE), Ok(0));
    assert_eq!(out, &data[..MAX_BLOCK_SIZE]);
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn random_split_of_vectors() {
    let cases = cases();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(
            &(
                0..cases.len(),
                prop::collection::vec(any::<usize>(), 0..40),
                1usize..200_000,
            ),
            |(i, cuts, max_out)| {
                let case = &cases[i];
                let cuts: Vec<usize> = cuts.iter().map(|c| c % (case.framed.len() + 1)).collect();
                let got = feed(&case.framed, &cuts, max_out).unwrap();
                prop_assert_eq!(sha256_hex(&got), case.input_sha256.clone());
                Ok(())
            },
        )
        .unwrap();
}

/// Data with both compressible runs and noise, so both chunk types show up.
fn mixed_data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            (any::<u8>(), 1usize..5000).prop_map(|(b, n)| vec![b; n]),
            prop::collection::vec(any::<u8>(), 0..3000),
            (0usize..40000).prop_map(|n| (0..n).map(|i| (i % 251) as u8).collect()),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trip_any_writes_any_splits(
        data in mixed_data(),
        write_cuts in prop::collection::vec(any::<usize>(), 0..8),
        read_cuts in prop::collection::vec(any::<usize>(), 0..30),
        max_out in prop_oneof![Just(usize::MAX), 1usize..150_000],
    ) {
        let mut wc: Vec<usize> = write_cuts.iter().map(|c| c % (data.len() + 1)).collect();
        wc.push(0);
        wc.push(data.len());
        wc.sort_unstable();
        let mut ours = Vec::new();
        let mut c = Compressor::new();
        // snap's FrameEncoder (write_all + flush per write) is byte-identical to Go (SPEC §6).
        let mut reference = snap::write::FrameEncoder::new(Vec::new());
        for w in wc.windows(2) {
            c.compress(&data[w[0]..w[1]], &mut ours);
            reference.write_all(&data[w[0]..w[1]]).unwrap();
            reference.flush().unwrap();
        }
        prop_assert_eq!(&ours, reference.get_ref());
        let rc: Vec<usize> = read_cuts.iter().map(|c| c % (ours.len() + 1)).collect();
        let got = feed(&ours, &rc, max_out).unwrap();
        prop_assert_eq!(got, data);
    }

    #[test]
    fn random_bytes_never_panic(
        garbage in prop::collection::vec(any::<u8>(), 0..3000),
        with_identifier in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
        max_out in 0usize..100_000,
    ) {
        let mut s = if with_identifier { STREAM_IDENTIFIER.to_vec() } else { Vec::new() };
        s.extend_from_slice(&garbage);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (s.len() + 1)).collect();
        cuts.push(0);
        cuts.push(s.len());
        cuts.sort_unstable();
        let mut dec = Decompressor::new();
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            let before = out.len();
            match dec.decompress(&s[w[0]..w[1]], &mut out, max_out) {
                Ok(n) => prop_assert!(n <= w[1] - w[0]),
                Err(_) => break,
            }
            prop_assert!(out.len() - before <= max_out);
            prop_assert!(dec.buffered() <= MAX_BUFFERED);
        }
    }

    #[test]
    fn mutated_streams_never_panic(
        data in mixed_data(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut s = Vec::new();
        Compressor::new().compress(&data, &mut s);
        if s.is_empty() {
            return Ok(());
        }
        for (at, x) in flips {
            let at = at % s.len();
            s[at] ^= x;
        }
        let mut dec = Decompressor::new();
        let mut out = Vec::new();
        let _ = dec.decompress(&s, &mut out, usize::MAX);
        prop_assert!(dec.buffered() <= MAX_BUFFERED);
        prop_assert!(out.len() <= data.len().max(s.len() * 8));
    }
}

/// Rough figures for the report (`cargo test --test vectors_snappy -- --nocapture speed`).
#[test]
fn speed_report() {
    let text = cases()
        .into_iter()
        .find(|c| c.name == "compressible_100KiB")
        .unwrap();
    let random = cases()
        .into_iter()
        .find(|c| c.name == "random_70KiB")
        .unwrap();
    for (name, data) in [
        ("text", text.writes.concat()),
        ("random", random.writes.concat()),
    ] {
        let rounds = 200;
        let mut c = Compressor::new();
        let mut framed = Vec::new();
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            framed.clear();
            c.compress(&data, &mut framed);
        }
        let comp = t.elapsed();
        // Only the first write of a stream carries the identifier: frame afresh for decoding.
        framed.clear();
        Compressor::new().compress(&data, &mut framed);
        let mut out = Vec::with_capacity(data.len());
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            let mut d = Decompressor::new();
            out.clear();
            // KCP-sized pieces, as the session delivers them.
            for piece in framed.chunks(1300) {
                assert_eq!(d.decompress(piece, &mut out, usize::MAX), Ok(piece.len()));
            }
        }
        let dec = t.elapsed();
        assert_eq!(out, data);
        let mibs =
            |d: std::time::Duration| (rounds * data.len()) as f64 / d.as_secs_f64() / 1048576.0;
        println!(
            "snappy {name}: compress {:.0} MiB/s, decompress (1300-byte pieces) {:.0} MiB/s",
            mibs(comp),
            mibs(dec)
        );
    }
}
