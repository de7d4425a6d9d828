//! Loopback round trips through the batch API of `kcptun::io::udp`, in every send/receive mode
//! the kernel offers (plain, sendmmsg/recvmmsg, GSO, GSO+GRO), over IPv4, IPv6 and dual stack.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kcptun::io::udp::{RxBatch, SockOpts, TxBatch, UdpSock, MAX_DGRAM, TX_CAP};

#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    Mmsg,
    Gso,
    GsoGro,
}

fn opts() -> SockOpts {
    SockOpts {
        sockbuf: 4 << 20,
        dscp: 46,
        v6only: false,
        reuse_port: false,
    }
}

fn bind(addr: &str, mode: Mode) -> UdpSock {
    let mut s = UdpSock::bind(addr.parse().unwrap(), &opts()).unwrap();
    match mode {
        Mode::Plain => s.set_batching(false),
        Mode::Mmsg => {
            s.set_gso(false);
            s.set_gro(false);
        }
        Mode::Gso => s.set_gro(false),
        Mode::GsoGro => {}
    }
    s
}

/// Datagram `i`: an 8-byte header (index, length) and a pattern, so corruption and mix-ups show.
fn payload(i: u32, len: usize, out: &mut [u8]) -> usize {
    out[..4].copy_from_slice(&i.to_le_bytes());
    out[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    for (j, b) in out[8..len].iter_mut().enumerate() {
        *b = (i as usize).wrapping_mul(7).wrapping_add(j) as u8;
    }
    len
}

fn check(d: &[u8]) -> u32 {
    let i = u32::from_le_bytes(d[..4].try_into().unwrap());
    let len = u32::from_le_bytes(d[4..8].try_into().unwrap()) as usize;
    assert_eq!(d.len(), len, "datagram {i} has the length it was sent with");
    let mut want = vec![0u8; len];
    payload(i, len, &mut want);
    assert_eq!(d, &want[..], "datagram {i} intact");
    i
}

/// Sizes with long equal-size runs (GSO material) and odd ones between.
fn size_of(i: u32) -> usize {
    match i % 97 {
        0 => 8,
        1 => MAX_DGRAM,
        n if n < 60 => 1350,
        n if n < 80 => 200 + (n as usize * 13),
        _ => 1000,
    }
}

/// Sends `count` datagrams from `tx_sock`, spread over `dsts` in runs, and receives them on
/// `rxs`; returns per destination the indices received, in order.
fn round_trip(
    tx_sock: &mut UdpSock,
    dsts: &[SocketAddr],
    rxs: &mut [UdpSock],
    count: u32,
) -> Vec<Vec<u32>> {
    let mut tx = TxBatch::new();
    let mut rx = RxBatch::new();
    let mut got: Vec<Vec<u32>> = vec![vec![]; rxs.len()];
    let mut sources: HashMap<usize, SocketAddr> = HashMap::new();
    let mut next = 0u32;
    let deadline = Instant::now() + Duration::from_secs(20);
    let local = tx_sock.local_addr().unwrap();
    while got.iter().map(Vec::len).sum::<usize>() < count as usize {
        assert!(
            Instant::now() < deadline,
            "timed out; got {:?}",
            got.iter().map(Vec::len).collect::<Vec<_>>()
        );
        // Fill the batch: runs of 10 per destination.
        while next < count && !tx.is_full() {
            let d = dsts[(next / 10) as usize % dsts.len()];
            tx.push_with(d, |b| payload(next, size_of(next), b))
                .unwrap();
            next += 1;
        }
        tx_sock.send_batch(&mut tx).unwrap();
        // Receive whatever arrived (in small steps, so the receivers' buffers never overflow).
        for (r, sock) in rxs.iter_mut().enumerate() {
            loop {
                match sock.recv_batch(&mut rx) {
                    Ok(_) => {
                        for (src, d) in rx.iter_mut() {
                            sources.insert(r, src);
                            got[r].push(check(d));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
        if tx.is_empty() && next == count {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for src in sources.values() {
        assert_eq!(src.port(), local.port(), "source address reported");
        assert_eq!(
            src.is_ipv4(),
            dsts[0].is_ipv4(),
            "v4-mapped sources come back as IPv4"
        );
    }
    got
}

fn expected(count: u32, dsts: usize) -> Vec<Vec<u32>> {
    let mut v = vec![vec![]; dsts];
    for i in 0..count {
        v[(i / 10) as usize % dsts].push(i);
    }
    v
}

fn run(mode: Mode, tx_addr: &str, rx_addr: &str) {
    let mut a = bind(tx_addr, mode);
    let mut rxs = vec![bind(rx_addr, mode), bind(rx_addr, mode)];
    let dsts: Vec<SocketAddr> = rxs
        .iter()
        .map(|s| {
            let mut l = s.local_addr().unwrap();
            l.set_ip(rx_addr.parse::<SocketAddr>().unwrap().ip());
            l
        })
        .collect();
    let count = 3000;
    let got = round_trip(&mut a, &dsts, &mut rxs, count);
    assert_eq!(
        got,
        expected(count, 2),
        "{mode:?}: every datagram, in order, to its destination"
    );
    assert_eq!(a.stats().out_pkts, count as u64);
    let rx_pkts: u64 = rxs.iter().map(|s| s.stats().in_pkts).sum();
    assert_eq!(rx_pkts, count as u64);
    let bytes: u64 = (0..count).map(|i| size_of(i) as u64).sum();
    assert_eq!(a.stats().out_bytes, bytes);
    assert_eq!(rxs.iter().map(|s| s.stats().in_bytes).sum::<u64>(), bytes);
}

#[test]
fn round_trip_plain() {
    run(Mode::Plain, "127.0.0.1:0", "127.0.0.1:0");
}

#[test]
fn round_trip_mmsg() {
    run(Mode::Mmsg, "127.0.0.1:0", "127.0.0.1:0");
}

#[test]
fn round_trip_gso() {
    run(Mode::Gso, "127.0.0.1:0", "127.0.0.1:0");
}

#[test]
fn round_trip_gso_gro() {
    run(Mode::GsoGro, "127.0.0.1:0", "127.0.0.1:0");
}

#[test]
fn round_trip_ipv6() {
    run(Mode::GsoGro, "[::1]:0", "[::1]:0");
    run(Mode::Mmsg, "[::1]:0", "[::1]:0");
}

/// A dual-stack `[::]` socket sends to IPv4 peers through v4-mapped addresses and reports IPv4
/// sources as plain IPv4, in both directions.
#[test]
fn dual_stack_socket_speaks_ipv4() {
    for mode in [Mode::Mmsg, Mode::GsoGro, Mode::Plain] {
        let mut a = bind("[::]:0", mode);
        let port = a.local_addr().unwrap().port();
        let mut b = vec![bind("127.0.0.1:0", mode)];
        let dst = vec![b[0].local_addr().unwrap()];
        assert_eq!(round_trip(&mut a, &dst, &mut b, 200), expected(200, 1));
        let to_a: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let got = round_trip(&mut b[0], &[to_a], std::slice::from_mut(&mut a), 200);
        assert_eq!(got, expected(200, 1));
    }
}

/// With GSO on the sender and GRO on the receiver, the kernel hands over coalesced buffers;
/// splitting must restore every datagram's boundaries, including a shorter last one.
#[test]
fn gro_coalesced_datagrams_split_exactly() {
    let mut a = bind("127.0.0.1:0", Mode::GsoGro);
    let mut b = bind("127.0.0.1:0", Mode::GsoGro);
    if !(a.gso() && b.gro()) {
        eprintln!("kernel without GSO/GRO: nothing to test");
        return;
    }
    let dst = b.local_addr().unwrap();
    let mut tx = TxBatch::new();
    let mut rx = RxBatch::new();
    let mut want = vec![];
    for i in 0..TX_CAP as u32 {
        let len = if i == 40 {
            333
        } else if i < 40 {
            1350
        } else {
            700
        };
        tx.push_with(dst, |buf| payload(i, len, buf)).unwrap();
        want.push(i);
    }
    assert_eq!(a.send_batch(&mut tx).unwrap(), TX_CAP);
    let mut got = vec![];
    let mut calls = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want.len() && Instant::now() < deadline {
        match b.recv_batch(&mut rx) {
            Ok(_) => {
                calls += 1;
                for (_, d) in rx.iter_mut() {
                    got.push(check(d));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, want);
    assert!(
        calls <= 3,
        "GRO should deliver 64 datagrams in few calls, took {calls}"
    );
    eprintln!("GRO: {} datagrams in {calls} receive calls", got.len());
}

/// Datagrams longer than 1500 bytes reach the caller truncated to 1500, as Go's read buffer
/// truncates them, in every receive mode.
#[test]
fn oversized_datagrams_are_truncated() {
    for mode in [Mode::Plain, Mode::Mmsg, Mode::GsoGro] {
        let mut b = bind("127.0.0.1:0", mode);
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender
            .send_to(&[9u8; 4000], b.local_addr().unwrap())
            .unwrap();
        sender.send_to(&[5u8; 20], b.local_addr().unwrap()).unwrap();
        let mut rx = RxBatch::new();
        let mut lens = vec![];
        let deadline = Instant::now() + Duration::from_secs(5);
        while lens.len() < 2 && Instant::now() < deadline {
            match b.recv_batch(&mut rx) {
                Ok(_) => lens.extend(rx.iter_mut().map(|(_, d)| (d.len(), d[0]))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(lens, vec![(MAX_DGRAM, 9), (20, 5)], "{mode:?}");
    }
}

#[test]
fn connect_unbound_picks_the_family_of_the_remote() {
    let s4 = UdpSock::connect_unbound("127.0.0.1:9".parse().unwrap(), &opts()).unwrap();
    let s6 = UdpSock::connect_unbound("[::1]:9".parse().unwrap(), &opts()).unwrap();
    assert!(s4.local_addr().unwrap().is_ipv4());
    assert!(s6.local_addr().unwrap().is_ipv6());
    assert_ne!(s4.local_addr().unwrap().port(), 0);
}

/// The socket options are applied: buffer sizes (forced past the sysctl cap as root) and DSCP.
#[test]
fn socket_options_apply() {
    let s = UdpSock::bind("127.0.0.1:0".parse().unwrap(), &opts()).unwrap();
    let r = socket2::SockRef::from(s.socket());
    assert!(r.recv_buffer_size().unwrap() >= 4 << 20);
    assert!(r.send_buffer_size().unwrap() >= 4 << 20);
    assert_eq!(r.tos().unwrap(), 46 << 2);
    let s6 = UdpSock::bind(
        "[::1]:0".parse().unwrap(),
        &SockOpts {
            v6only: true,
            ..opts()
        },
    )
    .unwrap();
    let r6 = socket2::SockRef::from(s6.socket());
    assert_eq!(r6.tclass_v6().unwrap(), 46);
    assert!(r6.only_v6().unwrap());
}

/// Against a peer that never reads, through a minimal SO_SNDBUF: whatever the kernel does
/// (loopback frees send-buffer space at once, so it rarely pushes back), every datagram is
/// either counted as sent or still waiting in the batch, in order; none vanishes.
#[test]
fn full_socket_keeps_unsent_datagrams() {
    for mode in [Mode::Plain, Mode::Mmsg, Mode::Gso] {
        let small = SockOpts {
            sockbuf: 1,
            ..opts()
        };
        let mut a = UdpSock::bind("127.0.0.1:0".parse().unwrap(), &small).unwrap();
        configure_mode(&mut a, mode);
        let peer = UdpSock::bind("127.0.0.1:0".parse().unwrap(), &small).unwrap();
        let dst = peer.local_addr().unwrap();
        let mut tx = TxBatch::new();
        let (mut pushed, mut sent, mut blocked) = (0u32, 0u64, 0u32);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(200) {
            while !tx.is_full() {
                tx.push_with(dst, |b| payload(pushed, 1350, b)).unwrap();
                pushed += 1;
            }
            sent += a.send_batch(&mut tx).unwrap() as u64;
            if !tx.is_empty() {
                blocked += 1;
                // The front of the batch is the oldest unsent datagram.
                let (_, d) = tx.get(0).unwrap();
                assert_eq!(check(d) as u64, sent);
            }
        }
        assert_eq!(sent + tx.len() as u64, pushed as u64, "{mode:?}");
        assert_eq!(a.stats().out_pkts, sent);
        eprintln!("{mode:?}: {pushed} pushed, {sent} sent, batch refused {blocked} times");
    }
}

fn configure_mode(s: &mut UdpSock, mode: Mode) {
    match mode {
        Mode::Plain => s.set_batching(false),
        Mode::Mmsg => s.set_gso(false),
        _ => {}
    }
}
