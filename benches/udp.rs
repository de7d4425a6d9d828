//! UDP loopback throughput of `kcptun::io::udp` per send/receive mode.
//!
//! A sender thread pushes 1350-byte datagrams through `send_batch` for a few seconds (env
//! `UDP_BENCH_SECS`, default 3) while a receiver thread drains them with `recv_batch` under mio.
//! Printed per variant: MB/s received, and MB received per CPU-second of the whole process
//! (user + system time from getrusage), which is the figure that matters on a shared machine.
//!
//! Run: `cargo bench --bench udp`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kcptun::io::udp::{RxBatch, SockOpts, TxBatch, UdpSock};
use mio::{Events, Interest, Poll, Token};

const DGRAM: usize = 1350;

#[derive(Clone, Copy, Debug)]
enum Variant {
    Plain,
    Mmsg,
    Gso,
    GsoGro,
}

fn configure(s: &mut UdpSock, v: Variant) {
    match v {
        Variant::Plain => s.set_batching(false),
        Variant::Mmsg => {
            s.set_gso(false);
            s.set_gro(false);
        }
        Variant::Gso => s.set_gro(false),
        Variant::GsoGro => {}
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn run(v: Variant, secs: f64) -> (f64, f64, f64, bool) {
    let opts = SockOpts {
        sockbuf: 4 << 20,
        ..SockOpts::default()
    };
    let mut rx_sock = UdpSock::bind("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
    let mut tx_sock = UdpSock::bind("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
    configure(&mut rx_sock, v);
    configure(&mut tx_sock, v);
    let offload = match v {
        Variant::Gso => tx_sock.gso(),
        Variant::GsoGro => tx_sock.gso() && rx_sock.gro(),
        _ => true,
    };
    let dst = rx_sock.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let stop_rx = stop.clone();
    let receiver = std::thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(rx_sock.socket_mut(), Token(0), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);
        let mut rx = RxBatch::new();
        let mut bytes = 0u64;
        while !stop_rx.load(Ordering::Relaxed) {
            loop {
                match rx_sock.recv_batch(&mut rx) {
                    Ok(_) => bytes += rx.iter_mut().map(|(_, d)| d.len() as u64).sum::<u64>(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
        }
        bytes
    });

    let payload = [0x5au8; DGRAM];
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tx = TxBatch::new();
    let mut sent = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        while !tx.is_full() {
            tx.push(dst, &payload).unwrap();
        }
        sent += tx_sock.send_batch(&mut tx).unwrap() as u64;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let bytes = receiver.join().unwrap();
    let cpu = cpu_seconds() - cpu0;
    let mb = bytes as f64 / 1e6;
    let _ = sent;
    (
        mb / elapsed,
        mb / cpu,
        sent as f64 * DGRAM as f64 / 1e6 / elapsed,
        offload,
    )
}

fn main() {
    let secs: f64 = std::env::var("UDP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    println!("UDP loopback, {DGRAM}-byte datagrams, {secs} s per variant");
    println!(
        "{:<10} {:>12} {:>14} {:>12}",
        "variant", "recv MB/s", "recv MB/cpu-s", "sent MB/s"
    );
    for v in [Variant::Plain, Variant::Mmsg, Variant::Gso, Variant::GsoGro] {
        let (mbs, mbcpu, sent, offload) = run(v, secs);
        let note = if offload {
            ""
        } else {
            "  (offload unavailable: fell back)"
        };
        println!(
            "{:<10} {:>12.0} {:>14.0} {:>12.0}{note}",
            format!("{v:?}"),
            mbs,
            mbcpu,
            sent
        );
    }
}
