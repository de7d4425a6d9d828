//! `kcptun bench crypt`: seal+open throughput of every `--crypt` method of
//! [`crate::proto::crypt`].
//!
//! Each datagram is `--size` bytes on the wire (header + payload + trailer; the payload is what
//! is left after the method's overhead). One operation = `Crypt::seal` with a fresh nonce, then
//! `Crypt::open` of the result, in place in one reused buffer. MB/s counts datagram bytes per
//! CPU second of seal+open (thread CPU time, so a busy machine does not lower it); ns/packet is
//! the CPU time of one seal+open.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{cpu_secs_since, num, print_json, table, thread_cpu, Progress};
use crate::cmd::{BenchCryptArgs, RunError};
use crate::proto::crypt::{derive_key, Crypt, Method};
use crate::proto::rng::Rng;

const TARGET: Duration = Duration::from_millis(250);

/// (MB/s, ns per packet) of seal+open of `size`-byte datagrams.
fn measure(method: Method, size: usize) -> Result<(f64, f64), RunError> {
    let key = derive_key(b"kcptun bench");
    let mut tx = Crypt::new(method, &key);
    let mut rx = Crypt::new(method, &key);
    let mut rng = Rng::from_seed([7; 32]);
    let wire = size.max(method.overhead());
    let payload = wire - method.overhead();
    let mut buf = vec![0u8; wire];
    rng.fill(&mut buf);
    let mut packets = 0u64;
    let start = Instant::now();
    let cpu0 = thread_cpu();
    loop {
        for _ in 0..64 {
            let n = tx.seal(&mut rng, &mut buf, payload);
            let opened = rx.open(&mut buf[..n]).map_err(|e| {
                RunError::Other(format!("bench crypt: {method}: own datagram rejected: {e}"))
            })?;
            std::hint::black_box(opened);
        }
        packets += 64;
        if start.elapsed() >= TARGET {
            break;
        }
    }
    let secs = cpu_secs_since(cpu0);
    Ok((
        packets as f64 * wire as f64 / secs / 1e6,
        secs * 1e9 / packets as f64,
    ))
}

/// `kcptun bench crypt`.
pub(super) fn run(a: &BenchCryptArgs) -> Result<(), RunError> {
    let size = a.size as usize;
    let mut progress = Progress::new();
    let mut rows = Vec::new();
    for (i, m) in Method::ALL.iter().enumerate() {
        progress.show(&format!(
            "crypt {}/{}: {}",
            i + 1,
            Method::ALL.len(),
            m.name()
        ));
        let (mbps, ns) = measure(*m, size)?;
        rows.push((m.name(), mbps, ns));
    }
    progress.clear();
    if a.json {
        let ciphers: Vec<_> = rows
            .iter()
            .map(|&(name, mbps, ns)| json!({ "name": name, "MBps": mbps, "ns_per_packet": ns }))
            .collect();
        return print_json(&json!({ "bench": "crypt", "size": size, "ciphers": ciphers }));
    }
    println!(
        "kcptun bench crypt: {size}-byte datagrams, seal + open in place, per CPU second of one thread"
    );
    let t: Vec<Vec<String>> = rows
        .iter()
        .map(|&(name, mbps, ns)| vec![name.to_string(), num(mbps), format!("{ns:.0}")])
        .collect();
    print!("{}", table(&["cipher", "MB/s", "ns/packet"], &t));
    Ok(())
}
