//! Unit tests of the batched send and receive paths, through fake syscalls where needed.

use super::*;

/// One message as the fake `sendmmsg` saw it.
#[derive(Debug, PartialEq)]
struct Seen {
    dst: SocketAddr,
    payload: Vec<u8>,
    iovs: usize,
    seg: Option<u16>,
}

fn inspect(h: &libc::msghdr) -> Seen {
    // SAFETY: test-only reads of headers `send_mmsg_via` just built from live buffers.
    unsafe {
        let dst = read_sockaddr(
            &*(h.msg_name as *const libc::sockaddr_storage),
            h.msg_namelen as usize,
        )
        .map(unmap)
        .unwrap();
        #[allow(clippy::unnecessary_cast)] // msg_iovlen is c_int on musl
        let iovs = std::slice::from_raw_parts(h.msg_iov, h.msg_iovlen as usize);
        let mut payload = Vec::new();
        for v in iovs {
            payload.extend_from_slice(std::slice::from_raw_parts(
                v.iov_base as *const u8,
                v.iov_len,
            ));
        }
        let mut seg = None;
        if !h.msg_control.is_null() {
            let c = libc::CMSG_FIRSTHDR(h);
            assert_eq!(((*c).cmsg_level, (*c).cmsg_type), (SOL_UDP, UDP_SEGMENT));
            seg = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const u16));
        }
        Seen {
            dst,
            payload,
            iovs: iovs.len(),
            seg,
        }
    }
}

fn sock(gso: bool) -> UdpSock {
    let mut u = UdpSock::bind("127.0.0.1:0".parse().unwrap(), &SockOpts::default()).unwrap();
    u.gso = gso; // set directly: tests must not depend on the process-wide probe
    u
}

fn dgram(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

const A: &str = "127.0.0.1:1001";
const B: &str = "127.0.0.1:1002";

#[test]
fn gso_runs_group_equal_sizes_to_one_destination() {
    let (a, b) = (A.parse().unwrap(), B.parse().unwrap());
    let mut tx = TxBatch::new();
    let mut plan = vec![];
    for i in 0..5 {
        plan.push((a, dgram(i, 1000)));
    }
    plan.push((a, dgram(5, 600))); // shorter: ends the run
    plan.push((a, dgram(6, 1000))); // starts a new one
    for i in 7..10 {
        plan.push((b, dgram(i, 1000)));
    }
    for (d, p) in &plan {
        tx.push(*d, p).unwrap();
    }
    let mut u = sock(true);
    let mut seen = vec![];
    let n = u
        .send_mmsg_via(&mut tx, &mut |_, hs: &mut [libc::mmsghdr]| {
            seen.extend(hs.iter().map(|h| inspect(&h.msg_hdr)));
            Ok(hs.len())
        })
        .unwrap();
    assert_eq!(n, 10);
    assert!(tx.is_empty());
    let cat = |r: std::ops::Range<usize>| {
        plan[r]
            .iter()
            .flat_map(|(_, p)| p.clone())
            .collect::<Vec<u8>>()
    };
    assert_eq!(
        seen,
        vec![
            Seen {
                dst: a,
                payload: cat(0..6),
                iovs: 6,
                seg: Some(1000)
            },
            Seen {
                dst: a,
                payload: cat(6..7),
                iovs: 1,
                seg: None
            },
            Seen {
                dst: b,
                payload: cat(7..10),
                iovs: 3,
                seg: Some(1000)
            },
        ]
    );
    assert_eq!(u.stats().out_pkts, 10);
    assert_eq!(u.stats().out_bytes, 9 * 1000 + 600);
}

#[test]
fn partial_send_and_would_block_keep_the_rest_in_order() {
    let (a, b) = (A.parse().unwrap(), B.parse().unwrap());
    let mut tx = TxBatch::new();
    for i in 0..TX_CAP {
        tx.push(if i % 2 == 0 { a } else { b }, &dgram(i, 100 + i))
            .unwrap();
    }
    assert_eq!(tx.push(a, b"x"), Err(TxFull));
    let mut u = sock(true);
    let mut calls = 0;
    let mut fake = |_: libc::c_int, hs: &mut [libc::mmsghdr]| {
        calls += 1;
        match calls {
            1 => Ok(3.min(hs.len())),
            _ => Err(io::Error::from_raw_os_error(libc::EAGAIN)),
        }
    };
    let mut sent = 0;
    while !tx.is_empty() {
        match u.send_mmsg_via(&mut tx, &mut fake) {
            Ok(n) => sent += n,
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                break;
            }
        }
    }
    assert_eq!(sent, 3);
    assert_eq!(tx.len(), TX_CAP - 3);
    for i in 0..tx.len() {
        let (d, p) = tx.get(i).unwrap();
        assert_eq!(
            p,
            &dgram(i + 3, 103 + i)[..],
            "datagram {i} kept intact and in order"
        );
        assert_eq!(d, if (i + 3) % 2 == 0 { a } else { b });
    }
    // Room again after the partial send; the ring wraps correctly.
    tx.push(a, b"late").unwrap();
    let mut got = vec![];
    let n = u
        .send_mmsg_via(&mut tx, &mut |_, hs: &mut [libc::mmsghdr]| {
            got.extend(hs.iter().map(|h| inspect(&h.msg_hdr).payload));
            Ok(hs.len())
        })
        .unwrap();
    assert_eq!(n, TX_CAP - 2);
    assert_eq!(got.last().unwrap(), b"late");
    assert_eq!(got[0], dgram(3, 103));
}

#[test]
fn gso_refusal_falls_back_without_losing_datagrams() {
    let a = A.parse().unwrap();
    let mut tx = TxBatch::new();
    for i in 0..8 {
        tx.push(a, &dgram(i, 500)).unwrap();
    }
    let mut u = sock(true);
    let mut seen = vec![];
    let n = u
        .send_mmsg_via(&mut tx, &mut |_, hs: &mut [libc::mmsghdr]| {
            let s: Vec<Seen> = hs.iter().map(|h| inspect(&h.msg_hdr)).collect();
            if s[0].seg.is_some() {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            seen.extend(s);
            Ok(hs.len())
        })
        .unwrap();
    assert_eq!(n, 8);
    assert!(!u.gso());
    assert_eq!(seen.len(), 8);
    for (i, s) in seen.iter().enumerate() {
        assert_eq!((s.iovs, s.seg, &s.payload), (1, None, &dgram(i, 500)));
    }
    GSO_STATE.store(0, Ordering::Relaxed); // let other tests probe again
}

#[test]
fn icmp_errors_drop_one_message_and_other_errors_surface() {
    let (a, b) = (A.parse().unwrap(), B.parse().unwrap());
    let mut tx = TxBatch::new();
    tx.push(a, b"one").unwrap();
    tx.push(b, b"two").unwrap();
    let mut u = sock(false);
    let mut calls = 0;
    let mut got = vec![];
    let n = u
        .send_mmsg_via(&mut tx, &mut |_, hs: &mut [libc::mmsghdr]| {
            calls += 1;
            if calls == 1 {
                return Err(io::Error::from_raw_os_error(libc::ECONNREFUSED));
            }
            got.push(inspect(&hs[0].msg_hdr).payload);
            Ok(1)
        })
        .unwrap();
    assert_eq!(n, 1, "the refused datagram counts as handled");
    assert_eq!(u.skipped_errors(), 1);
    assert_eq!(tx.get(0).unwrap().1, b"two");
    let e = u
        .send_mmsg_via(&mut tx, &mut |_, _: &mut [libc::mmsghdr]| {
            Err(io::Error::from_raw_os_error(libc::EBADF))
        })
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    assert_eq!(tx.len(), 1, "a hard error keeps the datagram");
    let _ = got;
}

#[test]
fn gro_buffers_split_by_segment_size_and_truncate() {
    let mut rx = RxBatch::new();
    let cap = rx.reset(GRO_BUF);
    assert_eq!(cap, 16);
    let s1: SocketAddr = A.parse().unwrap();
    let s2: SocketAddr = B.parse().unwrap();
    for (i, b) in rx.buf[..3 * GRO_BUF].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    rx.set_msg(0, s1, 2500, 1000); // 1000 + 1000 + 500
    rx.set_msg(1, s2, 700, 0); // not coalesced
    rx.set_msg(2, s1, 4000, 2000); // segments longer than MAX_DGRAM: truncated
    assert_eq!(rx.len(), 6);
    let items: Vec<(SocketAddr, usize, u8)> =
        rx.iter_mut().map(|(a, d)| (a, d.len(), d[0])).collect();
    let first = |off: usize| (off % 251) as u8;
    assert_eq!(
        items,
        vec![
            (s1, 1000, first(0)),
            (s1, 1000, first(1000)),
            (s1, 500, first(2000)),
            (s2, 700, first(GRO_BUF)),
            (s1, MAX_DGRAM, first(2 * GRO_BUF)),
            (s1, MAX_DGRAM, first(2 * GRO_BUF + 2000)),
        ]
    );
    // A length the kernel cannot report (beyond the slot) is clamped, not trusted.
    rx.reset(MAX_DGRAM);
    rx.set_msg(0, s1, 9000, 0);
    assert_eq!(
        rx.iter_mut().map(|(_, d)| d.len()).collect::<Vec<_>>(),
        vec![MAX_DGRAM]
    );
    rx.set_msg(1, s2, 0, 0);
    assert_eq!(rx.len(), 1, "an empty datagram yields nothing");
}

#[test]
fn sockaddr_round_trip_and_v4_mapping() {
    let mut st: libc::sockaddr_storage = unsafe_zeroed();
    for a in ["127.0.0.1:4000", "[::1]:53", "[fe80::1%3]:9"] {
        let a: SocketAddr = a.parse().unwrap();
        let l = write_sockaddr(a, &mut st);
        assert_eq!(read_sockaddr(&st, l as usize), Some(a));
    }
    let mut u = sock(false);
    u.v6 = true;
    let m = u.map_dst("127.0.0.1:7".parse().unwrap());
    assert_eq!(m, "[::ffff:127.0.0.1]:7".parse().unwrap());
    assert_eq!(unmap(m), "127.0.0.1:7".parse().unwrap());
}

fn unsafe_zeroed() -> libc::sockaddr_storage {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    unsafe { std::mem::zeroed() }
}

#[test]
fn tx_batch_arena_grows_with_use_and_is_released_when_empty() {
    let dst: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut tx = TxBatch::new();
    assert_eq!(tx.heap_bytes(), 0, "nothing before the first datagram");
    tx.push(dst, &[1; 100]).unwrap();
    assert_eq!(tx.heap_bytes(), MAX_DGRAM, "one slot for one datagram");
    for i in 1..TX_CAP {
        tx.push(dst, &[i as u8; 100]).unwrap();
    }
    assert_eq!(tx.heap_bytes(), TX_CAP * MAX_DGRAM);
    assert_eq!(
        tx.get(TX_CAP - 1).unwrap().1,
        &[(TX_CAP - 1) as u8; 100][..]
    );
    tx.release();
    assert_eq!(
        tx.heap_bytes(),
        TX_CAP * MAX_DGRAM,
        "datagrams waiting: kept"
    );
    tx.clear();
    tx.release();
    assert_eq!(tx.heap_bytes(), 0);
    tx.push(dst, &[7; 10]).unwrap();
    assert_eq!(tx.get(0).unwrap().1, &[7; 10][..]);
}
