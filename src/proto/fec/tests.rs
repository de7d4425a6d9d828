//! Unit tests: the codec against `reed-solomon-erasure`'s own, edge cases and hostile input.

use std::time::Duration;

use reed_solomon_erasure::galois_8::ReedSolomon;

use super::rs::Codec;
use super::*;
use crate::proto::rng::Rng;

fn data_pkt(seqid: u32, kcp: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + kcp.len());
    p.extend_from_slice(&seqid.to_le_bytes());
    p.extend_from_slice(&TYPE_DATA.to_le_bytes());
    p.extend_from_slice(&((kcp.len() + 2) as u16).to_le_bytes());
    p.extend_from_slice(kcp);
    p
}

#[test]
fn codec_matches_crate_encode_and_reconstruct() {
    let mut rng = Rng::from_seed([7; 32]);
    for &(ds, ps) in &[
        (1, 1),
        (3, 2),
        (5, 2),
        (10, 3),
        (20, 10),
        (128, 128),
        (200, 56),
    ] {
        let len = 37;
        let mut shards = vec![vec![0u8; len]; ds + ps];
        for s in shards.iter_mut().take(ds) {
            rng.fill(s);
        }
        let rs = ReedSolomon::new(ds, ps).unwrap();
        rs.encode(&mut shards).unwrap();

        let codec = Codec::new(ds, ps);
        let stride = 64;
        let mut flat = vec![0u8; (ds + ps) * stride];
        for (i, s) in shards.iter().enumerate().take(ds) {
            flat[i * stride..i * stride + len].copy_from_slice(s);
        }
        let (data, parity) = flat.split_at_mut(ds * stride);
        codec.encode(data, parity, stride, len);
        for j in 0..ps {
            assert_eq!(
                &flat[(ds + j) * stride..][..len],
                &shards[ds + j][..],
                "({ds},{ps}) parity {j}"
            );
        }

        // Erase min(ps, ds) data shards and reconstruct from the rest.
        let mut codec = codec;
        let lost: Vec<usize> = (0..ds.min(ps)).map(|k| (k * 7) % ds).collect();
        let mut lost = lost;
        lost.sort_unstable();
        lost.dedup();
        let present = (0..ds + ps).filter(|i| !lost.contains(i));
        assert!(codec.prepare(present));
        let mut out = vec![0u8; stride];
        for &m in &lost {
            codec.reconstruct(m, &flat, stride, len, &mut out);
            assert_eq!(&out[..len], &shards[m][..], "({ds},{ps}) shard {m}");
        }
    }
}

#[test]
fn config_errors() {
    let t = crate::test_clock::origin();
    assert_eq!(
        FecEncoder::new(0, 1, t).unwrap_err(),
        FecConfigError::ZeroShards
    );
    assert_eq!(
        FecDecoder::new(1, 0).unwrap_err(),
        FecConfigError::ZeroShards
    );
    assert_eq!(
        FecDecoder::new(200, 57).unwrap_err(),
        FecConfigError::TooManyShards
    );
    assert!(FecDecoder::new(200, 56).is_ok());
    assert!(FecEncoder::new(255, 1, t).is_ok());
    assert!(!FecConfigError::TooManyShards.to_string().is_empty());
}

#[test]
fn classify_by_type_field() {
    assert_eq!(classify(&[0, 0, 0, 0, 0xF1, 0]), PacketKind::Data);
    assert_eq!(classify(&[0, 0, 0, 0, 0xF2, 0, 1, 2]), PacketKind::Parity);
    assert_eq!(classify(&[0, 0, 0, 0, 0xF3, 0, 1, 2]), PacketKind::Oob);
    assert_eq!(classify(&[0, 0, 0, 0, 0xF1, 1, 1, 2]), PacketKind::Plain);
    assert_eq!(classify(&[0, 0, 0, 0, 81, 0]), PacketKind::Plain);
    assert_eq!(classify(&[0, 0, 0, 0, 0xF1]), PacketKind::Plain);
    assert_eq!(classify(&[]), PacketKind::Plain);
}

#[test]
fn paws_values() {
    assert_eq!(paws(13), 4294967287);
    assert_eq!(paws(2), 0xFFFF_FFFE);
    assert_eq!(paws(256), 0xFFFF_FF00);
}

#[test]
fn encoder_rejects_bad_lengths_and_short_output() {
    let t = crate::test_clock::origin();
    let mut enc = FecEncoder::new(1, 1, t).unwrap();
    let mut short = [0u8; 7];
    assert_eq!(enc.encode(t, &mut short), 0);
    assert_eq!(short, [0; 7]);
    let mut long = vec![0u8; 1501];
    assert_eq!(enc.encode(t, &mut long), 0);
    assert_eq!(enc.next_seqid(), 0);
    let mut pkt = vec![0u8; 1500];
    assert_eq!(enc.encode(t, &mut pkt), 1);
    let mut small = [0u8; 1499];
    assert_eq!(enc.poll_parity(&mut small), None);
    let mut out = [0u8; 1500];
    assert_eq!(enc.poll_parity(&mut out), Some(1500));
    assert_eq!(enc.poll_parity(&mut out), None);
    // ds = 1 parity equals the data shard.
    assert_eq!(&out[6..], &pkt[6..]);
    assert_eq!(u16::from_le_bytes([pkt[6], pkt[7]]), 1494);
}

#[test]
fn skip_rule_counts_from_construction_and_previous_call() {
    let t = crate::test_clock::origin();
    // ds = 1: the first packet's gap is measured from construction.
    let mut enc = FecEncoder::new(1, 2, t).unwrap();
    let mut p = vec![0u8; 30];
    assert_eq!(enc.encode(t + Duration::from_millis(500), &mut p), 0);
    assert_eq!(enc.next_seqid(), 3);
    assert_eq!(enc.encode(t + Duration::from_millis(999), &mut p), 2);
    assert_eq!(u32::from_le_bytes(p[..4].try_into().unwrap()), 3);
    let mut out = [0u8; 64];
    assert_eq!(enc.poll_parity(&mut out), Some(30));
    assert_eq!(u32::from_le_bytes(out[..4].try_into().unwrap()), 4);
    // A `now` going backwards is a zero gap, not a panic.
    assert_eq!(enc.encode(t, &mut p), 2);
}

#[test]
fn encoder_wraps_at_paws() {
    let t = crate::test_clock::origin();
    let enc = FecEncoder::new(2, 1, t).unwrap().with_next_seqid(u32::MAX);
    assert_eq!(enc.next_seqid(), u32::MAX % paws(3));
    let mut enc = enc.with_next_seqid(paws(3) - 3);
    let mut p = vec![0u8; 20];
    enc.encode(t, &mut p);
    enc.encode(t, &mut p);
    let mut out = [0u8; 64];
    enc.poll_parity(&mut out).unwrap();
    assert_eq!(
        u32::from_le_bytes(out[..4].try_into().unwrap()),
        paws(3) - 1
    );
    assert_eq!(enc.next_seqid(), 0);
}

#[test]
fn decoder_counts_bad_lengths_and_ignores_other_types() {
    let mut dec = FecDecoder::new(1, 1).unwrap();
    assert_eq!(dec.input(&[0, 0, 0, 0, 0xF1, 0, 2]), 0);
    assert_eq!(dec.stats().in_errs, 1);
    let mut big = data_pkt(0, &vec![1u8; 1493]);
    assert_eq!(big.len(), 1501);
    assert_eq!(dec.input(&big), 0);
    assert_eq!(dec.stats().in_errs, 2);
    big.truncate(1500);
    assert_eq!(dec.input(&big), 0);
    assert_eq!(dec.stats().fec_full_shard_set, 1);
    let mut oob = data_pkt(2, b"x");
    oob[4] = 0xF3;
    assert_eq!(dec.input(&oob), 0);
    // seqid >= paws is ignored.
    assert_eq!(dec.input(&data_pkt(0xFFFF_FFFF, b"x")), 0);
    assert_eq!(dec.stats().fec_full_shard_set, 1);
}

#[test]
fn duplicates_ignored_and_expiry_keeps_four_groups() {
    let mut dec = FecDecoder::new(3, 1).unwrap();
    for _ in 0..5 {
        dec.input(&data_pkt(0, b"hello"));
    }
    assert_eq!(dec.stats().fec_full_shard_set, 0);
    for g in 0..10u32 {
        dec.input(&data_pkt(g * 4, b"a"));
        assert_eq!(dec.stats().fec_shard_set, u64::from(g.min(3) + 1));
        assert_eq!(dec.stats().fec_shard_min, u64::from(g));
    }
    // A packet of an expired group (6 behind) is dropped again at once.
    dec.input(&data_pkt(3 * 4 + 1, b"b"));
    assert_eq!(dec.stats().fec_shard_set, 4);
}

#[test]
fn one_one_parity_re_yields_data() {
    let mut dec = FecDecoder::new(1, 1).unwrap();
    let d = data_pkt(0, b"abc");
    let mut p = d.clone();
    p[0] = 1;
    p[4] = 0xF2;
    assert_eq!(dec.input(&d), 0);
    assert_eq!(dec.stats().fec_full_shard_set, 1);
    assert_eq!(dec.input(&p), 1);
    assert_eq!(dec.poll_recovered(), Some(&b"abc"[..]));
    assert_eq!(dec.poll_recovered(), None);
    assert_eq!(dec.stats().fec_parity_shards, 1);
    // The next input drops unread results.
    assert_eq!(dec.input(&p), 1);
    assert_eq!(dec.input(&data_pkt(2, b"z")), 0);
    assert_eq!(dec.poll_recovered(), None);
}

#[test]
fn invalid_recovered_size_is_skipped_and_counted() {
    let mut dec = FecDecoder::new(1, 1).unwrap();
    // A parity packet whose "data" has size 0xFFFF.
    let p = [1, 0, 0, 0, 0xF2, 0, 0xFF, 0xFF, 1, 2];
    assert_eq!(dec.input(&p), 1);
    assert_eq!(dec.poll_recovered(), None);
    assert_eq!(dec.stats().fec_errs, 1);
}

#[test]
fn hostile_input_never_panics_and_stays_bounded() {
    let mut rng = Rng::from_seed([0xEC; 32]);
    let mut dec = FecDecoder::new(10, 3).unwrap();
    let mut buf = vec![0u8; 65536];
    for i in 0..20_000u32 {
        let len = match rng.below(4) {
            0 => rng.below(16) as usize,
            1 => rng.below(1501) as usize,
            2 => rng.below(65536) as usize,
            _ => 8 + rng.below(40) as usize,
        };
        let pkt = &mut buf[..len];
        rng.fill(pkt);
        if len >= 6 && rng.below(4) != 0 {
            pkt[4] = if rng.below(2) == 0 { 0xF1 } else { 0xF2 };
            pkt[5] = 0;
            if rng.below(2) == 0 && len >= 4 {
                // Mostly near each other, sometimes anywhere.
                let s = i / 2 + rng.below(64) as u32;
                pkt[..4].copy_from_slice(&s.to_le_bytes());
            }
        }
        let n = dec.input(pkt);
        let mut got = 0;
        while dec.poll_recovered_shard().is_some() {
            got += 1;
        }
        assert_eq!(got, n);
        assert!(dec.stats().fec_shard_set <= 5);
        let (ds, ps) = dec.params();
        assert!(ds >= 1 && ps >= 1 && ds + ps <= 256);
    }
}

#[test]
fn endless_retunes_are_harmless() {
    // A sender whose pattern flips between (10,3) and (2,5) every 100 packets.
    let mut dec = FecDecoder::new(1, 1).unwrap();
    let mut tunes = 0;
    let mut last = dec.params();
    for k in 0..20_000u32 {
        let (ds, n) = if (k / 100) % 2 == 0 { (10, 13) } else { (2, 7) };
        let mut p = data_pkt(k, &[k as u8; 30]);
        if k % n >= ds {
            p[4] = 0xF2;
        }
        dec.input(&p);
        while dec.poll_recovered().is_some() {}
        if dec.params() != last {
            tunes += 1;
            last = dec.params();
        }
    }
    assert!(tunes > 50, "re-tuned {tunes} times");
}

#[test]
fn flipping_between_large_shapes_rebuilds_ever_more_rarely() {
    // (100,50) and (120,60) cost milliseconds each to build: a peer alternating them every
    // 2,000 packets gets a rebuild only 1, 64, 128, ... packets after the previous one.
    let mut dec = FecDecoder::new(1, 1).unwrap();
    for k in 0..200_000u32 {
        let (ds, n) = if (k / 2000) % 2 == 0 {
            (100, 150)
        } else {
            (120, 180)
        };
        let mut p = data_pkt(k, &[k as u8; 30]);
        if k % n >= ds {
            p[4] = 0xF2;
        }
        dec.input(&p);
        while dec.poll_recovered().is_some() {}
    }
    let changes = dec.shape_changes();
    assert!(
        (3..=14).contains(&changes),
        "{changes} rebuilds of a large code"
    );
}

/// A released encoder abandons its open group: numbering jumps to the next group, that group
/// gets no parity, and the next full group is encoded (and decodes) as usual.
#[test]
fn encoder_release_abandons_the_open_group() {
    let t0 = crate::test_clock::origin();
    let (ds, ps) = (4, 2);
    let mut enc = FecEncoder::new(ds, ps, t0).unwrap();
    let pkt = |enc: &mut FecEncoder, i: u8| {
        let mut p = vec![0u8; 8 + 20];
        p[8..].fill(i);
        let parity = enc.encode(t0, &mut p);
        (u32::from_le_bytes([p[0], p[1], p[2], p[3]]), parity, p)
    };
    let empty = enc.heap_bytes();
    assert!(empty < 1000, "no shard buffer before the first packet");
    for i in 0..2 {
        assert_eq!(pkt(&mut enc, i).1, 0);
    }
    assert!(enc.heap_bytes() >= empty + 2 * SHARD_CAP);
    enc.release();
    assert_eq!(enc.heap_bytes(), empty, "shards given back");
    assert_eq!(enc.next_seqid(), (ds + ps) as u32, "next group");
    let mut dec = FecDecoder::new(ds, ps).unwrap();
    let dec_empty = dec.heap_bytes();
    let mut group = Vec::new();
    for i in 0..ds as u8 {
        let (seq, parity, p) = pkt(&mut enc, 10 + i);
        assert_eq!(seq, (ds + ps) as u32 + u32::from(i));
        assert_eq!(parity, if usize::from(i) + 1 == ds { ps } else { 0 });
        group.push(p);
    }
    let mut par = vec![0u8; 1500];
    let n = enc.poll_parity(&mut par).expect("parity of the full group");
    // Lose data shard 1; parity recovers it.
    for (i, p) in group.iter().enumerate() {
        if i != 1 {
            dec.input(p);
        }
    }
    assert_eq!(dec.input(&par[..n]), 1);
    assert_eq!(dec.poll_recovered(), Some(&group[1][8..]));
    assert!(dec.heap_bytes() > dec_empty);
    dec.release();
    assert_eq!(dec.heap_bytes(), dec_empty);
}
