//! Whole-pipeline benchmarks (`cargo bench --bench codec`): the datagram codec (FEC 10/3 + a
//! cipher, both directions, with losses so FEC recovers) and the simulated two-tunnel link,
//! reported as payload MB per CPU-second (process CPU time from getrusage, not wall time).

use std::time::Instant;

use kcptun::proto::codec::{pipeline, Opened, MTU_LIMIT};
use kcptun::proto::crypt::{derive_key, Method};
use kcptun::proto::rng::Rng;
use kcptun::proto::sim;

fn cpu_secs() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage writes into the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Seals `n` KCP datagrams of `len` bytes, drops 2 of every 13 datagrams, opens the rest and
/// feeds the decoder; returns payload MB per CPU-second.
fn codec(method: Method, fec: Option<(usize, usize)>, len: usize, n: usize) -> f64 {
    let now = Instant::now();
    let pass = derive_key(b"bench");
    let (mut out, mut inb) =
        pipeline(method, &pass, fec, Rng::from_seed([1; 32]), now).expect("pipeline");
    let h = out.headroom();
    let mut buf = vec![0u8; MTU_LIMIT];
    let mut parity = vec![0u8; MTU_LIMIT];
    let mut delivered = 0usize;
    let mut seq = 0usize;
    let c0 = cpu_secs();
    for i in 0..n {
        buf[h..h + len].fill(i as u8);
        let dlen = out.seal(now, &mut buf, len);
        let mut handle = |d: &mut [u8], seq: &mut usize| {
            *seq += 1;
            if *seq % 13 == 3 || *seq % 13 == 9 {
                return 0;
            }
            let mut got = match inb.open(d) {
                Ok(Opened::Kcp(k)) => k.len(),
                _ => 0,
            };
            while let Some(r) = inb.poll_recovered() {
                got += r.len();
            }
            got
        };
        delivered += handle(&mut buf[..dlen], &mut seq);
        while let Some(p) = out.poll_parity(&mut parity) {
            delivered += handle(&mut parity[..p], &mut seq);
        }
    }
    let cpu = (cpu_secs() - c0).max(1e-9);
    assert!(delivered > 0);
    (n * len) as f64 / cpu / 1e6
}

fn main() {
    let n = 200_000;
    println!("codec, 1322-byte KCP datagrams, 2 of 13 datagrams lost (FEC recovers them):");
    println!("{:<14} {:>8} {:>16}", "cipher", "FEC", "MB per CPU-s");
    for (m, fec) in [
        (Method::Aes, Some((10, 3))),
        (Method::Aes, None),
        (Method::Aes128Gcm, Some((10, 3))),
        (Method::Salsa20, Some((10, 3))),
        (Method::None, Some((10, 3))),
        (Method::Null, None),
    ] {
        let fec_s = fec.map_or("off".to_string(), |(d, p)| format!("{d}/{p}"));
        println!(
            "{:<14} {:>8} {:>16.0}",
            m.name(),
            fec_s,
            codec(m, fec, 1322, n)
        );
    }

    println!("\nsimulated link (two full stacks, virtual time), payload MB per CPU-second:");
    println!("{}", sim::Report::header());
    for s in sim::standard_grid(8 << 20) {
        let c0 = cpu_secs();
        let r = sim::run(&s, Instant::now()).expect("scenario");
        let cpu = (cpu_secs() - c0).max(1e-9);
        let payload = 2.0 * s.bytes_each_way as f64 / 1e6;
        println!("{}   {:>8.1} MB/CPU-s", r.row(), payload / cpu);
    }
}
