//! FEC against `fec.json` (encoder output byte for byte, decoder recoveries step by step, the
//! coding matrices) plus proptests: erasures of up to ps packets per group in any order are
//! recovered exactly, and mismatched sender/receiver parameters converge through auto-tune.

mod common;

use std::time::{Duration, Instant};

use kcptun::proto::fec::{
    classify, FecDecoder, FecEncoder, PacketKind, FEC_HEADER, TYPE_DATA, TYPE_PARITY,
};
use proptest::prelude::*;
use serde_json::Value;

/// Header room a CFB-style crypt layer keeps in front of the FEC packet.
const CRYPT: usize = 20;

fn cases() -> Vec<Value> {
    common::load("fec.json")["cases"]
        .as_array()
        .expect("cases")
        .clone()
}

fn n(v: &Value) -> u64 {
    v.as_u64().expect("number")
}

/// The KCP datagrams of a case: `kcp_inputs_hex`, or (skipped-parity case) the data packets' tails.
fn kcp_inputs(c: &Value) -> Vec<Vec<u8>> {
    match c.get("kcp_inputs_hex") {
        Some(v) => v.as_array().unwrap().iter().map(common::unhex).collect(),
        None => c["emitted"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "data")
            .map(|e| common::unhex(&e["hex"])[FEC_HEADER..].to_vec())
            .collect(),
    }
}

/// Runs the encoder the way a session does: each datagram at `buf[crypt + 8..]`, the FEC header
/// written at `buf[crypt..]`, parity polled into `out[crypt..]`. `gaps[i]` is the time since the
/// previous packet. Returns every packet from its FEC header on, in emission order.
fn run_encoder(
    enc: &mut FecEncoder,
    t0: Instant,
    inputs: &[Vec<u8>],
    gaps: &[Duration],
    crypt: usize,
) -> Vec<Vec<u8>> {
    let mut now = t0;
    let mut sent = Vec::new();
    let mut out = vec![0xEEu8; crypt + 1500];
    for (i, kcp) in inputs.iter().enumerate() {
        now += gaps[i];
        let mut buf = vec![0xAAu8; crypt + FEC_HEADER];
        buf.extend_from_slice(kcp);
        let ready = enc.encode(now, &mut buf[crypt..]);
        assert!(
            buf[..crypt].iter().all(|&b| b == 0xAA),
            "crypt header room touched"
        );
        sent.push(buf[crypt..].to_vec());
        let mut polled = 0;
        while let Some(len) = enc.poll_parity(&mut out[crypt..]) {
            assert!(out[..crypt].iter().all(|&b| b == 0xEE));
            sent.push(out[crypt..crypt + len].to_vec());
            polled += 1;
        }
        assert_eq!(polled, ready);
    }
    sent
}

fn case_gaps(c: &Value, count: usize) -> Vec<Duration> {
    let mut gaps = vec![Duration::from_millis(10); count];
    if c.get("kcp_inputs_hex").is_none() {
        // Skipped-parity case: group 0 (inputs 0..2) completes 600 ms after input 1.
        gaps[2] = Duration::from_millis(600);
    }
    gaps
}

#[test]
fn encoder_matches_vectors_at_offset_0_and_20() {
    for c in cases() {
        let (ds, ps) = (n(&c["ds"]) as usize, n(&c["ps"]) as usize);
        let inputs = kcp_inputs(&c);
        let gaps = case_gaps(&c, inputs.len());
        let want: Vec<Vec<u8>> = c["emitted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| common::unhex(&e["hex"]))
            .collect();
        for crypt in [0, CRYPT] {
            let t0 = Instant::now();
            let mut enc = FecEncoder::new(ds, ps, t0)
                .unwrap()
                .with_next_seqid(n(&c["encoder_start_seqid"]) as u32);
            let got = run_encoder(&mut enc, t0, &inputs, &gaps, crypt);
            assert_eq!(got.len(), want.len(), "{}", c["comment"]);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    hex::encode(g),
                    hex::encode(w),
                    "case {} packet {i}",
                    c["comment"]
                );
            }
            for (g, e) in got.iter().zip(c["emitted"].as_array().unwrap()) {
                let kind = if e["type"] == "data" {
                    PacketKind::Data
                } else {
                    PacketKind::Parity
                };
                assert_eq!(classify(g), kind);
                assert_eq!(
                    u32::from_le_bytes(g[0..4].try_into().unwrap()) as u64,
                    n(&e["seqid"])
                );
            }
            assert_eq!(enc.stats().fec_parity_shards, 0);
        }
    }
}

#[test]
fn skipped_parity_needs_the_gap() {
    // The same skipped-parity inputs without the 600 ms gap do get parity for group 0.
    let c = cases()
        .into_iter()
        .find(|c| c.get("kcp_inputs_hex").is_none())
        .unwrap();
    let inputs = kcp_inputs(&c);
    let t0 = Instant::now();
    let mut enc = FecEncoder::new(3, 2, t0).unwrap();
    let gaps = vec![Duration::from_millis(499); inputs.len()];
    let got = run_encoder(&mut enc, t0, &inputs, &gaps, 0);
    let kinds: Vec<u16> = got
        .iter()
        .map(|p| u16::from_le_bytes([p[4], p[5]]))
        .collect();
    assert_eq!(
        kinds,
        [TYPE_DATA, TYPE_DATA, TYPE_DATA, TYPE_PARITY, TYPE_PARITY].repeat(2)
    );
    // Exactly 500 ms skips.
    let mut enc = FecEncoder::new(3, 2, t0).unwrap();
    let gaps = vec![Duration::from_millis(500); inputs.len()];
    let got = run_encoder(&mut enc, t0, &inputs, &gaps, 0);
    let seqids: Vec<u32> = got
        .iter()
        .map(|p| u32::from_le_bytes(p[0..4].try_into().unwrap()))
        .collect();
    assert_eq!(seqids, [0, 1, 2, 5, 6, 7]);
}

#[test]
fn decoder_matches_vectors() {
    let mut checked = 0;
    for c in cases() {
        let Some(dec_v) = c.get("decode") else {
            continue;
        };
        let (ds, ps) = (n(&c["ds"]) as usize, n(&c["ps"]) as usize);
        let emitted: Vec<Vec<u8>> = c["emitted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| common::unhex(&e["hex"]))
            .collect();
        let inputs = kcp_inputs(&c);
        let lost: Vec<u64> = dec_v["lost_emitted_indexes"]
            .as_array()
            .unwrap()
            .iter()
            .map(n)
            .collect();
        // Two decoders in lockstep: one read whole shards, the other KCP datagrams.
        let mut dec = FecDecoder::new(ds, ps).unwrap();
        let mut dec_kcp = FecDecoder::new(ds, ps).unwrap();
        let mut recovered_total = 0;
        for step in dec_v["delivery"].as_array().unwrap() {
            let idx = n(&step["deliver_emitted_index"]) as usize;
            assert!(!lost.contains(&(idx as u64)));
            // The caller's buffer has a 20-byte crypt header in front of the FEC packet.
            let mut datagram = vec![0x55u8; CRYPT];
            datagram.extend_from_slice(&emitted[idx]);
            let got = dec.input(&datagram[CRYPT..]);
            assert_eq!(dec_kcp.input(&datagram[CRYPT..]), got);
            let want = step["recovered"].as_array().unwrap();
            assert_eq!(got, want.len(), "{} step {idx}", c["comment"]);
            for r in want {
                let shard = dec.poll_recovered_shard().expect("recovered shard");
                assert_eq!(
                    hex::encode(shard),
                    r["recovered_shard_hex"].as_str().unwrap()
                );
                assert_eq!(
                    u16::from_le_bytes([shard[0], shard[1]]) as u64,
                    n(&r["size_field"])
                );
                let kcp = dec_kcp.poll_recovered().expect("recovered kcp");
                assert_eq!(hex::encode(kcp), r["kcp_hex"].as_str().unwrap());
                assert_eq!(kcp, &inputs[n(&r["input_index"]) as usize][..]);
            }
            assert!(dec.poll_recovered_shard().is_none());
            assert!(dec_kcp.poll_recovered().is_none());
            recovered_total += want.len();
            checked += 1;
        }
        assert_eq!(dec.stats().fec_recovered as usize, recovered_total);
        assert_eq!(dec.stats().fec_errs, 0);
        assert_eq!(dec.params(), (ds, ps));
    }
    assert!(checked > 20);
}

#[test]
fn parity_rows_match_vectors() {
    let m = common::load("fec.json");
    let mats = m["rs_parity_matrices"]["matrices"].as_array().unwrap();
    assert_eq!(mats.len(), 5);
    for mat in mats {
        let (ds, ps) = (n(&mat["ds"]) as usize, n(&mat["ps"]) as usize);
        let rows = mat["parity_rows"].as_array().unwrap();
        assert_eq!(rows.len(), ps);
        // Data shard i = [size 3, 0, x] with x = 1 for i == col, 0 elsewhere: parity byte 2 of
        // row j is then M[ds+j][col].
        for col in 0..ds {
            let t0 = Instant::now();
            let mut enc = FecEncoder::new(ds, ps, t0).unwrap();
            let mut ready = 0;
            for i in 0..ds {
                let mut pkt = [0u8, 0, 0, 0, 0, 0, 0, 0, u8::from(i == col)];
                ready = enc.encode(t0 + Duration::from_millis(1), &mut pkt);
            }
            assert_eq!(ready, ps);
            let mut out = [0u8; 64];
            for (j, row) in rows.iter().enumerate() {
                let len = enc.poll_parity(&mut out).unwrap();
                assert_eq!(len, 9);
                assert_eq!(out[8] as u64, n(&row[col]), "({ds},{ps}) row {j} col {col}");
            }
        }
    }
}

/// One reordered, lossy delivery of `groups` groups; returns (sent KCP inputs, lost data indexes,
/// recovered KCP outputs).
fn lossy_run(
    ds: usize,
    ps: usize,
    lens: &[usize],
    lost_mask: &[Vec<usize>],
    order_keys: &[u32],
) -> (Vec<Vec<u8>>, Vec<usize>, Vec<Vec<u8>>) {
    let t0 = Instant::now();
    let mut enc = FecEncoder::new(ds, ps, t0).unwrap();
    let mut inputs = Vec::new();
    let mut packets: Vec<(usize, Option<usize>, Vec<u8>)> = Vec::new(); // (group, data index, pkt)
    let mut out = vec![0u8; 1500];
    for (k, &len) in lens.iter().enumerate() {
        let kcp: Vec<u8> = (0..len)
            .map(|b| (b as u8).wrapping_mul(31).wrapping_add(k as u8))
            .collect();
        let mut buf = vec![0u8; FEC_HEADER];
        buf.extend_from_slice(&kcp);
        enc.encode(t0 + Duration::from_millis(k as u64), &mut buf);
        packets.push((k / ds, Some(k), buf));
        inputs.push(kcp);
        while let Some(l) = enc.poll_parity(&mut out) {
            packets.push((k / ds, None, out[..l].to_vec()));
        }
    }
    // Drop the chosen positions of each group, shuffle within each group.
    let mut lost = Vec::new();
    let mut delivered = Vec::new();
    let groups = lens.len() / ds;
    for g in 0..groups {
        let mut members: Vec<(usize, Option<usize>, Vec<u8>)> =
            packets.iter().filter(|p| p.0 == g).cloned().collect();
        let mask = &lost_mask[g % lost_mask.len()];
        let mut pos = 0;
        members.retain(|p| {
            let drop = mask.contains(&pos);
            pos += 1;
            if drop {
                if let Some(d) = p.1 {
                    lost.push(d);
                }
            }
            !drop
        });
        // A packet of group g may arrive up to 2 groups late, anywhere within that window.
        for (i, p) in members.into_iter().enumerate() {
            let key = order_keys[(g * 7 + i) % order_keys.len()];
            delivered.push((
                ((g as u64 + u64::from(key % 3)) << 32) | u64::from(key),
                p.2,
            ));
        }
    }
    delivered.sort_by_key(|k| k.0);
    let delivered: Vec<Vec<u8>> = delivered.into_iter().map(|k| k.1).collect();
    let mut dec = FecDecoder::new(ds, ps).unwrap();
    let mut recovered = Vec::new();
    for pkt in &delivered {
        dec.input(pkt);
        while let Some(r) = dec.poll_recovered() {
            recovered.push(r.to_vec());
        }
    }
    assert_eq!(dec.stats().fec_errs, 0);
    (inputs, lost, recovered)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn erasures_up_to_ps_are_recovered(
        ds in 1usize..=20,
        ps in 1usize..=20,
        groups in 1usize..=4,
        len_seed in prop::collection::vec(1usize..=1472, 1..=80),
        loss_seed in prop::collection::vec(prop::collection::vec(0usize..40, 0..=20), 1..=4),
        order_keys in prop::collection::vec(any::<u32>(), 1..=64),
    ) {
        let total = ds * groups;
        let lens: Vec<usize> = (0..total).map(|i| len_seed[i % len_seed.len()]).collect();
        // At most ps distinct positions (of ds+ps) lost per group.
        let masks: Vec<Vec<usize>> = loss_seed
            .iter()
            .map(|m| {
                let mut v: Vec<usize> = m.iter().map(|x| x % (ds + ps)).collect();
                v.sort_unstable();
                v.dedup();
                v.truncate(ps);
                v
            })
            .collect();
        let (inputs, lost, recovered) = lossy_run(ds, ps, &lens, &masks, &order_keys);
        for d in &lost {
            prop_assert!(recovered.contains(&inputs[*d]), "lost data packet {} not recovered", d);
        }
        for r in &recovered {
            prop_assert!(inputs.contains(r), "recovered bytes that were never sent");
        }
    }
}

/// A sender with (sds, sps) and a receiver starting at (rds, rps): after enough lossless groups
/// the receiver has the sender's parameters, then recovers every single loss.
fn converge(sds: usize, sps: usize, rds: usize, rps: usize) {
    let t0 = Instant::now();
    let mut enc = FecEncoder::new(sds, sps, t0).unwrap();
    let mut dec = FecDecoder::new(rds, rps).unwrap();
    let mut out = vec![0u8; 1500];
    let mut tuned_at = None;
    let mut recovered = 0;
    let mut lost = 0;
    for k in 0..(sds * 60) {
        let kcp: Vec<u8> = (0..(100 + k % 700)).map(|b| (b ^ k) as u8).collect();
        let mut pkt = vec![0u8; FEC_HEADER];
        pkt.extend_from_slice(&kcp);
        enc.encode(t0 + Duration::from_millis(k as u64), &mut pkt);
        let mut burst = vec![pkt];
        while let Some(l) = enc.poll_parity(&mut out) {
            burst.push(out[..l].to_vec());
        }
        let group = k / sds;
        for (i, p) in burst.iter().enumerate() {
            // After tuning, lose the first data packet of every group.
            if tuned_at.is_some_and(|t| group > t + 1) && k % sds == 0 && i == 0 {
                lost += 1;
                continue;
            }
            dec.input(p);
            while let Some(r) = dec.poll_recovered() {
                let base = k - k % sds;
                assert_eq!(r.len(), 100 + base % 700);
                assert!(r.iter().enumerate().all(|(b, &x)| x == (b ^ base) as u8));
                recovered += 1;
            }
        }
        if tuned_at.is_none() && dec.params() == (sds, sps) {
            tuned_at = Some(group);
        }
    }
    let t = tuned_at.expect("auto-tune converged");
    assert!(t < 40, "tuned only at group {t}");
    assert!(lost > 10);
    assert_eq!(recovered, lost);
}

#[test]
fn auto_tune_converges() {
    converge(10, 3, 5, 2);
    converge(10, 3, 1, 1);
    converge(5, 2, 10, 3);
    converge(3, 1, 1, 1);
    converge(20, 10, 1, 1);
}
