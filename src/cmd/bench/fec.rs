//! `kcptun bench fec`: Reed-Solomon throughput of [`crate::proto::fec`] for (10,3), (5,2) and
//! (20,10) at 1350-byte packets.
//!
//! * encode: MB/s of data packets through `FecEncoder::encode` + `poll_parity` (parity of every
//!   group computed and drained).
//! * recover: MB/s of data carried by groups that each lost min(ps, ds) data packets (the worst
//!   case: every group needs a full reconstruction), fed to `FecDecoder::input` +
//!   `poll_recovered`; the bytes counted are the group's data, received and recovered.
//!
//! Rates are per CPU second of the measuring thread, so other load does not lower them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{cpu_secs_since, num, print_json, table, thread_cpu, Progress};
use crate::cmd::{BenchFecArgs, RunError};
use crate::proto::fec::{FecDecoder, FecEncoder, FEC_HEADER};

const CODES: [(usize, usize); 3] = [(10, 3), (5, 2), (20, 10)];
const PKT: usize = 1350;
const TARGET: Duration = Duration::from_millis(400);
/// Groups generated once and replayed (renumbered) for the recover measurement.
const GROUPS: usize = 32;

fn fec_err(e: impl std::fmt::Display) -> RunError {
    RunError::Other(format!("bench fec: {e}"))
}

/// Encode MB/s of `len`-byte packets.
fn encode(ds: usize, ps: usize, len: usize) -> Result<f64, RunError> {
    let t0 = Instant::now();
    let mut enc = FecEncoder::new(ds, ps, t0).map_err(fec_err)?;
    let mut pkt: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    let mut out = vec![0u8; 1500];
    let mut bytes = 0u64;
    let start = Instant::now();
    let cpu0 = thread_cpu();
    while start.elapsed() < TARGET {
        for _ in 0..ds * 8 {
            enc.encode(t0, &mut pkt);
            while let Some(n) = enc.poll_parity(&mut out) {
                black_box(&out[..n]);
            }
            bytes += len as u64;
        }
    }
    Ok(bytes as f64 / cpu_secs_since(cpu0) / 1e6)
}

/// Recover MB/s: every group loses min(ps, ds) data packets.
fn recover(ds: usize, ps: usize, len: usize) -> Result<f64, RunError> {
    let t0 = Instant::now();
    let mut enc = FecEncoder::new(ds, ps, t0).map_err(fec_err)?;
    let n = ds + ps;
    let lose = ps.min(ds);
    let mut out = vec![0u8; 1500];
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for k in 0..ds * GROUPS {
        let mut p: Vec<u8> = (0..len).map(|i| (i * 7 + k * 13) as u8).collect();
        enc.encode(t0, &mut p);
        // Drop the last `lose` data packets of each group.
        if k % ds < ds - lose {
            kept.push(p);
        }
        while let Some(m) = enc.poll_parity(&mut out) {
            kept.push(out[..m].to_vec());
        }
    }
    let span = (GROUPS * n) as u32;
    let mut dec = FecDecoder::new(ds, ps).map_err(fec_err)?;
    let mut groups = 0u64;
    let mut recovered = 0u64;
    let start = Instant::now();
    let cpu0 = thread_cpu();
    while start.elapsed() < TARGET {
        for p in &mut kept {
            dec.input(p);
            while let Some(r) = dec.poll_recovered() {
                black_box(r);
                recovered += 1;
            }
            // Next pass: the same packets as new groups.
            let s = u32::from_le_bytes([p[0], p[1], p[2], p[3]]).wrapping_add(span);
            p[..4].copy_from_slice(&s.to_le_bytes());
        }
        groups += GROUPS as u64;
    }
    let secs = cpu_secs_since(cpu0);
    if recovered < groups * lose as u64 / 2 {
        return Err(fec_err(format!(
            "({ds},{ps}): only {recovered} packets recovered in {groups} groups"
        )));
    }
    Ok((groups * (ds * len) as u64) as f64 / secs / 1e6)
}

/// `kcptun bench fec`.
pub(super) fn run(a: &BenchFecArgs) -> Result<(), RunError> {
    let mut progress = Progress::new();
    let mut rows = Vec::new();
    for (ds, ps) in CODES {
        progress.show(&format!("fec ({ds},{ps}): encode"));
        let e = encode(ds, ps, PKT)?;
        progress.show(&format!("fec ({ds},{ps}): recover"));
        let r = recover(ds, ps, PKT)?;
        rows.push((ds, ps, e, r));
    }
    progress.clear();
    if a.json {
        let codes: Vec<_> = rows
            .iter()
            .map(|&(ds, ps, e, r)| {
                json!({ "ds": ds, "ps": ps, "encode_MBps": e, "recover_MBps": r })
            })
            .collect();
        return print_json(&json!({
            "bench": "fec", "packet_bytes": PKT, "fec_header": FEC_HEADER, "codes": codes,
        }));
    }
    println!(
        "kcptun bench fec: {PKT}-byte packets, per CPU second of one thread; recover = every group lost min(ps, ds) data packets"
    );
    let t: Vec<Vec<String>> = rows
        .iter()
        .map(|&(ds, ps, e, r)| vec![format!("({ds},{ps})"), num(e), num(r)])
        .collect();
    print!("{}", table(&["(ds,ps)", "encode MB/s", "recover MB/s"], &t));
    Ok(())
}
