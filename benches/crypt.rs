//! Throughput of every `--crypt` method (plain std timing, no harness).
//!
//! Two measurements per method and datagram size:
//! * `seal+open`: what a kcptun datagram costs end to end in this crate (nonce from the Rng,
//!   CRC32, encrypt, then decrypt and CRC check) on one buffer.
//! * `enc+dec`: the same work as kcp-go's `benchCrypt` (encrypt then decrypt one buffer, no nonce,
//!   no CRC): compare its MB/s with Go's, which also counts 2 x the buffer per op.
//!
//! MB/s = 2 x datagram bytes per op / time (10^6 bytes), like Go's `b.SetBytes(2 * len)`.
//! Run: `cargo bench --bench crypt` (optionally a method name as filter).

use std::hint::black_box;
use std::time::{Duration, Instant};

use kcptun::proto::crypt::{derive_key, Crypt, Method};
use kcptun::proto::rng::Rng;

/// Runs `f` in growing batches until it has run for at least `budget`; returns ns per call.
fn time_per_op(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..200 {
        f();
    }
    let mut iters = 256u64;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let el = start.elapsed();
        if el >= budget {
            return el.as_nanos() as f64 / iters as f64;
        }
        let scale = (budget.as_secs_f64() / el.as_secs_f64().max(1e-6) * 1.2).clamp(1.5, 100.0);
        iters = (iters as f64 * scale) as u64;
    }
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let pass = derive_key(b"it's a secrect");
    let budget = Duration::from_millis(300);
    println!(
        "{:<12} {:>6} {:>11} {:>11} {:>11} {:>11}",
        "method", "bytes", "seal+open", "MB/s", "enc+dec", "MB/s"
    );
    for m in Method::ALL {
        if let Some(f) = &filter {
            if !m.name().contains(f.as_str()) {
                continue;
            }
        }
        for dgram in [1500usize, 1350] {
            let payload = dgram - m.overhead();
            let mut c = Crypt::new(m, &pass);
            let mut rng = Rng::from_seed([1; 32]);
            let mut buf = vec![0u8; dgram];
            rng.fill(&mut buf);
            let seal_open = time_per_op(budget, || {
                let n = c.seal(&mut rng, black_box(&mut buf), payload);
                let r = c.open(black_box(&mut buf[..n]));
                assert!(r.is_ok());
            });
            // Cipher only, as kcp-go's benchmark: encrypt + decrypt, no nonce, no CRC.
            let raw = time_per_op(budget, || {
                c.bench_cipher_only(black_box(&mut buf));
            });
            let mbps = |ns: f64| 2.0 * dgram as f64 / ns * 1e3;
            println!(
                "{:<12} {:>6} {:>8.0} ns {:>11.0} {:>8.0} ns {:>11.0}",
                m.name(),
                dgram,
                seal_open,
                mbps(seal_open),
                raw,
                mbps(raw)
            );
        }
    }
}
