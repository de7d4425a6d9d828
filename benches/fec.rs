//! FEC throughput with std timing (no harness).
//!
//! * encode: MB/s of data packets through `encode` + `poll_parity` (parity computed every group).
//! * recover: MB/s of data packets through `input` + `poll_recovered` when every group loses ps
//!   of its data packets (the worst case: every group needs a full Reed-Solomon reconstruction).
//! * go-like decode: kcp-go's `BenchmarkFECDecode` shape, (10,3), 1500-byte packets, ~1/13 of
//!   packets lost at random; MB/s of packets handed to the decoder.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kcptun::proto::fec::{FecDecoder, FecEncoder, FEC_HEADER};

const TARGET: Duration = Duration::from_millis(700);

fn packets(ds: usize, ps: usize, len: usize, groups: usize) -> Vec<Vec<u8>> {
    let t0 = Instant::now();
    let mut enc = FecEncoder::new(ds, ps, t0).unwrap();
    let mut out = vec![0u8; 1500];
    let mut all = Vec::new();
    for k in 0..ds * groups {
        let mut p: Vec<u8> = (0..len).map(|b| (b * 7 + k) as u8).collect();
        enc.encode(t0, &mut p);
        all.push(p);
        while let Some(l) = enc.poll_parity(&mut out) {
            all.push(out[..l].to_vec());
        }
    }
    all
}

/// Moves a packet `span` seqids on (a multiple of ds+ps), so the next pass is new groups.
fn renumber(p: &mut [u8], span: u32) {
    let s = u32::from_le_bytes([p[0], p[1], p[2], p[3]]).wrapping_add(span);
    p[0..4].copy_from_slice(&s.to_le_bytes());
}

fn bench_encode(ds: usize, ps: usize, len: usize) -> f64 {
    let t0 = Instant::now();
    let mut enc = FecEncoder::new(ds, ps, t0).unwrap();
    let mut pkt: Vec<u8> = (0..len).map(|b| b as u8).collect();
    let mut out = vec![0u8; 1500];
    let mut bytes = 0u64;
    let start = Instant::now();
    while start.elapsed() < TARGET {
        for _ in 0..ds * 20 {
            enc.encode(t0, &mut pkt);
            while let Some(l) = enc.poll_parity(&mut out) {
                black_box(&out[..l]);
            }
            bytes += (len - FEC_HEADER) as u64;
        }
    }
    bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn bench_recover(ds: usize, ps: usize, len: usize) -> f64 {
    let groups = 64;
    let n = ds + ps;
    let all = packets(ds, ps, len, groups);
    // Lose the last min(ps, ds) data packets of every group.
    let lose = ps.min(ds);
    let mut delivered: Vec<Vec<u8>> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let pos = i % n;
            !(pos < ds && pos >= ds - lose)
        })
        .map(|(_, p)| p.clone())
        .collect();
    let span = (groups * n) as u32;
    let mut dec = FecDecoder::new(ds, ps).unwrap();
    let mut bytes = 0u64;
    let mut recovered = 0u64;
    let start = Instant::now();
    while start.elapsed() < TARGET {
        for p in &mut delivered {
            dec.input(p);
            while let Some(r) = dec.poll_recovered() {
                black_box(r);
                recovered += 1;
            }
            renumber(p, span);
        }
        bytes += (ds * groups * (len - FEC_HEADER)) as u64;
    }
    assert!(
        recovered as usize >= lose * groups * 2,
        "recovered {recovered}"
    );
    bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn bench_go_like() -> (f64, f64) {
    let (ds, ps, len) = (10, 3, 1500);
    let all = packets(ds, ps, len, 1000);
    // Deterministic ~1/13 random loss.
    let mut x = 0x9E37_79B9u32;
    let span = all.len() as u32;
    let mut delivered: Vec<Vec<u8>> = all
        .into_iter()
        .filter(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % 13 != 0
        })
        .collect();
    let mut dec = FecDecoder::new(ds, ps).unwrap();
    let mut pkts = 0u64;
    let start = Instant::now();
    while start.elapsed() < TARGET {
        for p in &mut delivered {
            dec.input(p);
            while let Some(r) = dec.poll_recovered() {
                black_box(r);
            }
            renumber(p, span);
        }
        pkts += delivered.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    (
        pkts as f64 * len as f64 / secs / 1e6,
        secs * 1e9 / pkts as f64,
    )
}

fn main() {
    println!(
        "{:<10} {:>6} {:>12} {:>12}",
        "(ds,ps)", "pkt", "encode MB/s", "recover MB/s"
    );
    for &(ds, ps) in &[(10, 3), (5, 2), (20, 10)] {
        for &len in &[1350, 1500] {
            let e = bench_encode(ds, ps, len);
            let r = bench_recover(ds, ps, len);
            println!(
                "{:<10} {:>6} {:>12.1} {:>12.1}",
                format!("({ds},{ps})"),
                len,
                e,
                r
            );
        }
    }
    let (mbs, ns) = bench_go_like();
    println!("go-like decode (10,3) 1500 B, ~1/13 loss: {mbs:.1} MB/s, {ns:.0} ns/packet");
}
