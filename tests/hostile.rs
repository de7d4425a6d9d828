//! Hostile input on a server [`Tunnel`] and on the codec: every malformed or foreign datagram is
//! dropped and counted (never a panic), smux violations kill the session with a reason, and a
//! flood of random datagrams leaves memory bounded.

use std::time::{Duration, Instant};

use kcptun::proto::codec::{self, Inbound, OpenError, Opened, Outbound, MTU_LIMIT};
use kcptun::proto::compress::Compressor;
use kcptun::proto::crypt::{Crypt, Method};
use kcptun::proto::kcp::{Kcp, CMD_PUSH, OVERHEAD};
use kcptun::proto::rng::Rng;
use kcptun::proto::sim::kcptun_config;
use kcptun::proto::smux::{
    Event, OpenError as SmuxOpenError, ReadError, SessionError, WriteError, ACCEPT_BACKLOG,
};
use kcptun::proto::tunnel::{DeadReason, Input, Liveness, Tunnel, TunnelConfig};

const CONV: u32 = 0x1234_5678;
const PASS: [u8; 32] = [0x11; 32];
const OTHER_PASS: [u8; 32] = [0x22; 32];

fn config(method: Method, fec: bool, compress: bool) -> TunnelConfig {
    let mut cfg = kcptun_config("fast3", fec, false);
    cfg.method = method;
    cfg.pass = PASS;
    cfg.compress = compress;
    cfg
}

fn server(cfg: &TunnelConfig, now: Instant) -> Tunnel {
    Tunnel::new(cfg, CONV, false, Rng::from_seed([3; 32]), now).unwrap()
}

/// A KCP segment header.
#[allow(clippy::too_many_arguments)]
fn segment(conv: u32, cmd: u8, sn: u32, una: u32, len: u32, data: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(OVERHEAD + data.len());
    s.extend_from_slice(&conv.to_le_bytes());
    s.extend_from_slice(&[cmd, 0]);
    s.extend_from_slice(&1024u16.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes()); // ts
    s.extend_from_slice(&sn.to_le_bytes());
    s.extend_from_slice(&una.to_le_bytes());
    s.extend_from_slice(&len.to_le_bytes());
    s.extend_from_slice(data);
    s
}

/// Seals `kcp` (a KCP datagram) with the full outbound pipeline of `cfg` (FEC header included).
fn seal_with(out: &mut Outbound, now: Instant, kcp: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2 * MTU_LIMIT];
    let h = out.headroom();
    buf[h..h + kcp.len()].copy_from_slice(kcp);
    let n = out.seal(now, &mut buf, kcp.len());
    buf.truncate(n);
    buf
}

fn outbound(cfg: &TunnelConfig, pass: &[u8; 32], now: Instant) -> Outbound {
    codec::pipeline(cfg.method, pass, cfg.fec, Rng::from_seed([5; 32]), now)
        .unwrap()
        .0
}

/// A peer that speaks correct KCP (and snappy, if on) but sends whatever session bytes we like.
struct RawPeer {
    out: Outbound,
    inb: Inbound,
    kcp: Kcp,
    comp: Option<Compressor>,
    mtu: usize,
}

impl RawPeer {
    fn new(cfg: &TunnelConfig, now: Instant) -> Self {
        let mut kcfg = cfg.kcp.clone();
        kcfg.mtu = codec::kcp_mtu(cfg.udp_mtu, cfg.method, cfg.fec.is_some());
        kcfg.snd_wnd = 4096;
        RawPeer {
            out: outbound(cfg, &cfg.pass, now),
            inb: Inbound::new(Crypt::new(cfg.method, &cfg.pass), cfg.fec).unwrap(),
            kcp: Kcp::new(CONV, &kcfg, now),
            comp: cfg.compress.then(Compressor::new),
            mtu: kcfg.mtu,
        }
    }

    /// Session-stream bytes → sealed datagrams.
    fn send(&mut self, now: Instant, stream: &[u8]) -> Vec<Vec<u8>> {
        let mut bytes = Vec::new();
        match &mut self.comp {
            Some(c) => c.compress(stream, &mut bytes),
            None => bytes.extend_from_slice(stream),
        }
        let mut off = 0;
        while off < bytes.len() {
            let n = self.kcp.send(&bytes[off..]);
            assert!(n > 0, "raw peer send window full");
            off += n;
        }
        self.drain(now)
    }

    /// A datagram from the server (ACKs, window updates).
    fn receive(&mut self, now: Instant, dgram: &mut [u8]) {
        if let Ok(Opened::Kcp(k)) = self.inb.open(dgram) {
            let _ = self.kcp.handle_packet(now, k, false);
        }
        while let Some(r) = self.inb.poll_recovered() {
            let _ = self.kcp.handle_packet(now, r, true);
        }
    }

    fn drain(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut dgrams = Vec::new();
        let mut buf = vec![0u8; 2 * MTU_LIMIT];
        let h = self.out.headroom();
        while let Some(n) = self.kcp.poll_transmit(now, &mut buf[h..h + self.mtu]) {
            let len = self.out.seal(now, &mut buf, n);
            dgrams.push(buf[..len].to_vec());
            while let Some(p) = self.out.poll_parity(&mut buf) {
                dgrams.push(buf[..p].to_vec());
            }
        }
        dgrams
    }
}

/// An smux v2 frame header plus payload.
fn smux_frame(ver: u8, cmd: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![ver, cmd];
    f.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    f.extend_from_slice(&sid.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

fn methods_with_key() -> impl Iterator<Item = Method> {
    Method::ALL
        .into_iter()
        .filter(|m| !matches!(m, Method::None | Method::Null))
}

fn methods_with_check() -> impl Iterator<Item = Method> {
    Method::ALL.into_iter().filter(|&m| m != Method::Null)
}

fn assert_untouched(t: &Tunnel, what: &str) {
    let s = t.stats();
    assert_eq!(s.in_segs, 0, "{what}: a segment reached KCP");
    assert_eq!(t.num_streams(), 0, "{what}");
}

// ---- crypto layer ----

#[test]
fn wrong_key_is_dropped_and_counted_as_csum_error() {
    let now = Instant::now();
    for m in methods_with_key() {
        for fec in [false, true] {
            let cfg = config(m, fec, true);
            let mut t = server(&cfg, now);
            let mut out = outbound(&cfg, &OTHER_PASS, now);
            let kcp = segment(CONV, CMD_PUSH, 0, 0, 4, b"abcd");
            let mut d = seal_with(&mut out, now, &kcp);
            assert_eq!(t.handle_datagram(now, &mut d), Input::Dropped, "{m}");
            let s = t.stats();
            assert_eq!(s.in_csum_errors, 1, "{m} fec {fec}");
            assert_eq!(s.in_pkts, 0, "{m}");
            assert_untouched(&t, m.name());
            assert_eq!(t.liveness(now), Liveness::Alive);
        }
    }
}

#[test]
fn bad_crc_or_tag_is_dropped_and_counted_as_csum_error() {
    let now = Instant::now();
    for m in methods_with_check() {
        let cfg = config(m, true, true);
        let good_len = {
            let mut out = outbound(&cfg, &PASS, now);
            seal_with(&mut out, now, &segment(CONV, CMD_PUSH, 0, 0, 4, b"abcd")).len()
        };
        // Flip one bit at each position the check covers: for the nonce+CRC methods the CRC
        // field and the payload (bytes 16.. : the nonce itself is not covered, as in Go, though
        // in CFB a flipped nonce byte garbles the next block), for aes-128-gcm every byte.
        let mut t = server(&cfg, now);
        let from = if m == Method::Aes128Gcm { 0 } else { 16 };
        for pos in from..good_len {
            let mut out = outbound(&cfg, &PASS, now);
            let mut d = seal_with(&mut out, now, &segment(CONV, CMD_PUSH, 0, 0, 4, b"abcd"));
            d[pos] ^= 0x40;
            assert_eq!(
                t.handle_datagram(now, &mut d),
                Input::Dropped,
                "{m} byte {pos}"
            );
        }
        assert_eq!(t.stats().in_csum_errors, (good_len - from) as u64, "{m}");
        assert_untouched(&t, m.name());
    }
}

#[test]
fn codec_counts_csum_errors_and_short_datagrams() {
    let now = Instant::now();
    for m in methods_with_key() {
        let cfg = config(m, true, true);
        let mut out = outbound(&cfg, &OTHER_PASS, now);
        let mut inb = Inbound::new(Crypt::new(m, &PASS), cfg.fec).unwrap();
        let mut d = seal_with(&mut out, now, &segment(CONV, CMD_PUSH, 0, 0, 0, b""));
        assert_eq!(inb.open(&mut d), Err(OpenError::Integrity), "{m}");
        let mut short = vec![0u8; m.overhead() - 1];
        assert_eq!(inb.open(&mut short), Err(OpenError::TooShort), "{m}");
        let s = inb.stats();
        assert_eq!((s.in_csum_errors, s.in_pkts), (1, 0), "{m}");
        assert!(inb.poll_recovered().is_none());
    }
}

// ---- FEC layer ----

/// Seals a raw payload (no FEC encoder: we write the "FEC header" ourselves).
fn seal_raw(m: Method, payload: &[u8]) -> Vec<u8> {
    let mut c = Crypt::new(m, &PASS);
    let mut buf = vec![0u8; m.overhead() + payload.len()];
    buf[m.header_len()..m.header_len() + payload.len()].copy_from_slice(payload);
    let n = c.seal(&mut Rng::from_seed([8; 32]), &mut buf, payload.len());
    buf.truncate(n);
    buf
}

#[test]
fn truncated_fec_header_is_dropped_and_counted_as_in_err() {
    let now = Instant::now();
    for m in [Method::Aes, Method::Aes128Gcm, Method::Null] {
        for fec in [false, true] {
            let cfg = config(m, fec, true);
            let mut t = server(&cfg, now);
            let mut errs = 0;
            for ty in [0xF1u16, 0xF2] {
                for len in 6..8 {
                    let mut p = vec![0u8; len];
                    p[4..6].copy_from_slice(&ty.to_le_bytes());
                    let mut d = seal_raw(m, &p);
                    assert_eq!(
                        t.handle_datagram(now, &mut d),
                        Input::Dropped,
                        "{m} {ty:x} {len}"
                    );
                    errs += 1;
                    assert_eq!(t.stats().in_errs, errs, "{m} fec {fec} {ty:x} {len}");
                }
            }
            assert_untouched(&t, m.name());

            // The same on the bare codec.
            let mut inb = Inbound::new(Crypt::new(m, &PASS), cfg.fec).unwrap();
            let mut d = seal_raw(m, &[0, 0, 0, 0, 0xF1, 0, 7]);
            assert_eq!(inb.open(&mut d), Err(OpenError::TooShort));
            assert_eq!(inb.stats().in_errs, 1);
        }
    }
}

#[test]
fn oversized_fec_packet_is_counted_and_hostile_seqids_do_no_harm() {
    let now = Instant::now();
    let cfg = config(Method::Null, true, true);
    let mut t = server(&cfg, now);
    // An FEC data packet longer than the 1500-byte limit.
    let mut big = vec![0u8; 1600];
    big[4..6].copy_from_slice(&0xF1u16.to_le_bytes());
    let _ = t.handle_datagram(now, &mut big);
    assert!(t.stats().in_errs >= 1);
    // Parity for groups all over the seqid space, including the top (>= paws) and wrap-around.
    for seq in [u32::MAX, u32::MAX - 13, 0, 1 << 31, 12, 3_000_000_000] {
        let mut p = vec![0xAAu8; 100];
        p[0..4].copy_from_slice(&seq.to_le_bytes());
        p[4..6].copy_from_slice(&0xF2u16.to_le_bytes());
        assert_eq!(t.handle_datagram(now, &mut p), Input::Delivered);
    }
    assert_untouched(&t, "parity flood");
}

// ---- KCP layer ----

#[test]
fn kcp_segment_with_absurd_length_is_dropped_and_counted_once() {
    let now = Instant::now();
    for fec in [false, true] {
        for m in [Method::Aes, Method::Salsa20, Method::Aes128Gcm] {
            let cfg = config(m, fec, true);
            let mut t = server(&cfg, now);
            let mut out = outbound(&cfg, &PASS, now);
            for (i, len) in [u32::MAX, 0x8000_0000, 1 << 16, 5].into_iter().enumerate() {
                let mut d = seal_with(&mut out, now, &segment(CONV, CMD_PUSH, 0, 0, len, b"abcd"));
                assert_eq!(
                    t.handle_datagram(now, &mut d),
                    Input::Dropped,
                    "{m} len {len}"
                );
                let s = t.stats();
                assert_eq!(s.kcp_in_errors, i as u64 + 1, "{m} fec {fec} len {len}");
                assert_eq!(s.in_segs, 0);
            }
            // A segment with an unknown command, and a datagram shorter than one header.
            let mut d = seal_with(&mut out, now, &segment(CONV, 99, 0, 0, 0, b""));
            assert_eq!(t.handle_datagram(now, &mut d), Input::Dropped, "{m}");
            let mut d = seal_with(&mut out, now, &[1, 2, 3]);
            assert_eq!(t.handle_datagram(now, &mut d), Input::Dropped, "{m}");
            assert_eq!(t.stats().kcp_in_errors, 6, "{m} fec {fec}");
            assert_eq!(t.num_streams(), 0);
            assert_eq!(t.liveness(now), Liveness::Alive);
        }
    }
}

#[test]
fn foreign_conv_is_reported_not_delivered() {
    let now = Instant::now();
    for fec in [false, true] {
        let cfg = config(Method::Aes, fec, true);
        let mut t = server(&cfg, now);
        let mut out = outbound(&cfg, &PASS, now);
        let mut d = seal_with(
            &mut out,
            now,
            &segment(0xdead_beef, CMD_PUSH, 0, 0, 2, b"hi"),
        );
        match t.handle_datagram(now, &mut d) {
            Input::ForeignConv(p) => {
                assert_eq!(p.conv, 0xdead_beef);
                assert!(p.starts_conversation);
            }
            other => panic!("fec {fec}: {other:?}"),
        }
        let s = t.stats();
        assert_eq!(s.kcp_in_errors, 1, "fec {fec}");
        assert_eq!(s.in_segs, 0);
        // A valid segment of ours followed by a foreign one: the rest is ignored, and the
        // datagram is malformed, not another conversation's (it must never look like
        // a new conversation with our conv: the server would replace this session).
        let mut two = segment(CONV, CMD_PUSH, 0, 0, 1, b"x");
        two.extend(segment(0xdead_beef, CMD_PUSH, 0, 0, 0, b""));
        let mut d = seal_with(&mut out, now, &two);
        assert_eq!(t.handle_datagram(now, &mut d), Input::Dropped);
        // As kcp-go: a datagram that ends in an error adds nothing to InSegs.
        assert_eq!(t.stats().in_segs, 0);
        assert_eq!(t.stats().kcp_in_errors, 2);
        assert_eq!(t.conv(), CONV);
    }
}

// ---- smux layer (through correct KCP, with and without snappy) ----

fn smux_violation(frame: &[u8], compress: bool) -> (Tunnel, Instant) {
    let now = Instant::now();
    let cfg = config(Method::Aes, true, compress);
    let mut t = server(&cfg, now);
    let mut peer = RawPeer::new(&cfg, now);
    for mut d in peer.send(now, frame) {
        assert_eq!(t.handle_datagram(now, &mut d), Input::Delivered);
    }
    (t, now)
}

fn assert_smux_dead(t: &mut Tunnel, now: Instant, what: &str) {
    assert_eq!(t.liveness(now), Liveness::Dead(DeadReason::Smux), "{what}");
    let mut saw = false;
    while let Some(ev) = t.poll_event() {
        if ev == Event::SessionDead(SessionError::InvalidProtocol) {
            saw = true;
        }
    }
    assert!(saw, "{what}: no SessionDead(InvalidProtocol) event");
    // Streams opened before the violation stay known but are dead: nothing to read or write.
    assert!(t.num_streams() <= 1, "{what}");
    while let Some(id) = t.accept() {
        let mut b = [0u8; 16];
        assert_eq!(
            t.read(now, id, &mut b),
            Err(ReadError::SessionDead),
            "{what}"
        );
        assert_eq!(t.write(id, b"x"), Err(WriteError::Closed), "{what}");
    }
    assert_eq!(t.open(), Err(SmuxOpenError::SessionDead));
    assert_eq!(t.stats().kcp_in_errors, 0, "{what}: KCP was fine");
}

#[test]
fn smux_unknown_version_kills_the_session() {
    for compress in [true, false] {
        for ver in [0u8, 3, 9, 0xff] {
            let (mut t, now) = smux_violation(&smux_frame(ver, 0, 3, b""), compress);
            assert_smux_dead(&mut t, now, &format!("ver {ver} compress {compress}"));
        }
    }
}

#[test]
fn smux_unknown_command_kills_the_session() {
    for compress in [true, false] {
        for cmd in [5u8, 7, 0x80, 0xff] {
            // A valid SYN first, so the version is learned and a stream exists.
            let mut bytes = smux_frame(2, 0, 3, b"");
            bytes.extend(smux_frame(2, cmd, 3, b""));
            let (mut t, now) = smux_violation(&bytes, compress);
            assert_smux_dead(&mut t, now, &format!("cmd {cmd} compress {compress}"));
        }
    }
}

#[test]
fn smux_version_change_mid_session_kills_it() {
    let mut bytes = smux_frame(2, 0, 3, b"");
    bytes.extend(smux_frame(1, 3, 0, b""));
    let (mut t, now) = smux_violation(&bytes, true);
    assert_smux_dead(&mut t, now, "v2 then v1");
}

#[test]
fn non_snappy_stream_is_a_compression_death() {
    let now = Instant::now();
    let cfg = config(Method::Aes, false, true);
    let mut t = server(&cfg, now);
    // The peer forgot --nocomp is off: raw smux frames where snappy chunks are expected.
    let mut peer = RawPeer::new(&config(Method::Aes, false, false), now);
    for mut d in peer.send(now, &smux_frame(2, 0, 3, b"")) {
        t.handle_datagram(now, &mut d);
    }
    assert_eq!(t.liveness(now), Liveness::Dead(DeadReason::Compression));
}

// ---- floods: memory stays bounded ----

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// One hostile datagram: random bytes, or FEC packets and KCP segments of our conv with random
/// fields, sized up to the MTU.
fn hostile_datagram(rng: &mut Rng, buf: &mut [u8]) -> usize {
    let len = rng.below(MTU_LIMIT as u64 + 1) as usize;
    rng.fill(&mut buf[..len]);
    match rng.below(4) {
        0 => {}
        1 if len >= 8 => {
            // FEC data/parity/oob or another type, seqids near the start or anywhere.
            let ty = [0xF1u16, 0xF2, 0xF3, rng.next_u32() as u16][rng.below(4) as usize];
            buf[4..6].copy_from_slice(&ty.to_le_bytes());
            if rng.below(2) == 0 {
                let seq = rng.below(200) as u32;
                buf[0..4].copy_from_slice(&seq.to_le_bytes());
            }
        }
        _ => {
            // KCP segments of our conv with plausible commands and sequence numbers.
            let mut at = 0;
            while at + OVERHEAD <= len {
                buf[at..at + 4].copy_from_slice(&CONV.to_le_bytes());
                buf[at + 4] = 81 + rng.below(5) as u8;
                let sn = rng.below(3000) as u32;
                buf[at + 12..at + 16].copy_from_slice(&sn.to_le_bytes());
                let room = (len - at - OVERHEAD) as u64;
                let dl = if rng.below(8) == 0 {
                    rng.next_u32()
                } else {
                    rng.below(room.min(200) + 1) as u32
                };
                buf[at + 20..at + 24].copy_from_slice(&dl.to_le_bytes());
                at += OVERHEAD + dl as usize;
            }
        }
    }
    len
}

#[test]
fn random_datagram_flood_keeps_memory_bounded() {
    let t0 = Instant::now();
    let mut rng = Rng::from_seed([0x42; 32]);
    let mut buf = vec![0u8; 2 * MTU_LIMIT];
    let mut out = vec![0u8; MTU_LIMIT];
    for (m, fec, compress) in [
        (Method::Null, true, true),
        (Method::Null, false, false),
        (Method::Aes, true, true),
    ] {
        let cfg = config(m, fec, compress);
        let mut now = t0;
        let mut t = server(&cfg, now);
        let mut rss_warm = 0;
        let mut max_streams = 0;
        for i in 0..100_000u32 {
            if i == 10_000 {
                rss_warm = rss_kib();
            }
            now += Duration::from_micros(rng.below(3000));
            let n = hostile_datagram(&mut rng, &mut buf);
            if m != Method::Null {
                // Half of them authentic at the crypto layer, so they reach FEC and KCP.
                if rng.below(2) == 0 {
                    let payload = buf[..n].to_vec();
                    let d = seal_raw(m, &payload);
                    buf[..d.len()].copy_from_slice(&d);
                    let _ = t.handle_datagram(now, &mut buf[..d.len()]);
                    continue;
                }
            }
            let _ = t.handle_datagram(now, &mut buf[..n]);
            if i % 16 == 0 {
                t.handle_timeout(now);
            }
            while t.poll_transmit(now, &mut out).is_some() {}
            while t.poll_event().is_some() {}
            max_streams = max_streams.max(t.num_streams());
        }
        let rss_end = rss_kib();
        let s = t.stats();
        eprintln!(
            "{m} fec {fec} compress {compress}: in_pkts {} csum {} in_errs {} fec_recovered {} \
             fec_errs {} in_segs {} kcp_in_errors {} streams {max_streams} liveness {:?} \
             RSS {rss_warm} -> {rss_end} KiB",
            s.in_pkts,
            s.in_csum_errors,
            s.in_errs,
            s.fec_recovered,
            s.fec_errs,
            s.in_segs,
            s.kcp_in_errors,
            t.liveness(now)
        );
        assert!(
            s.in_pkts > 10_000,
            "{m}: flood never got past the crypto layer"
        );
        assert!(
            s.in_segs > 0 || m == Method::Aes,
            "{m}: nothing reached KCP"
        );
        assert!(max_streams <= ACCEPT_BACKLOG, "{m}: {max_streams} streams");
        assert!(
            rss_end < rss_warm + 64 * 1024,
            "{m}: RSS grew from {rss_warm} KiB to {rss_end} KiB"
        );
        assert!(rss_end < 512 * 1024, "{m}: RSS {rss_end} KiB");
    }
}

#[test]
fn syn_flood_is_bounded_by_the_accept_backlog() {
    let now0 = Instant::now();
    let cfg = config(Method::Aes, true, true);
    let mut t = server(&cfg, now0);
    let mut peer = RawPeer::new(&cfg, now0);
    let mut out = vec![0u8; MTU_LIMIT];
    let mut now = now0;
    let rss0 = rss_kib();
    // 5,000 SYNs with data on each, never accepted nor read.
    for batch in 0..50u32 {
        let mut bytes = Vec::new();
        for k in 0..100u32 {
            let sid = 3 + 2 * (batch * 100 + k);
            bytes.extend(smux_frame(2, 0, sid, b""));
            bytes.extend(smux_frame(2, 2, sid, &[0x77; 600]));
        }
        now += Duration::from_millis(20);
        let mut dgrams = peer.send(now, &bytes);
        for _round in 0..20 {
            for d in &mut dgrams {
                let _ = t.handle_datagram(now, d);
            }
            // The server's ACKs go back so the peer's window moves.
            t.handle_timeout(now);
            while let Some(n) = t.poll_transmit(now, &mut out) {
                peer.receive(now, &mut out[..n]);
            }
            now += Duration::from_millis(10);
            peer.kcp.handle_timeout(now);
            dgrams = peer.drain(now);
            if dgrams.is_empty() && peer.kcp.wait_snd() == 0 {
                break;
            }
        }
        assert!(
            t.num_streams() <= ACCEPT_BACKLOG,
            "batch {batch}: {}",
            t.num_streams()
        );
    }
    assert_eq!(
        peer.kcp.wait_snd(),
        0,
        "the server did not take all the peer sent"
    );
    assert!(
        t.num_streams() >= ACCEPT_BACKLOG / 2,
        "only {} SYNs got through",
        t.num_streams()
    );
    assert!(matches!(t.liveness(now), Liveness::Alive | Liveness::Stale));
    let rss1 = rss_kib();
    assert!(
        rss1 < rss0 + 64 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );
}

#[test]
fn nothing_here_opens_a_foreign_session_datagram_as_kcp() {
    // Sanity of the helpers: a correct datagram is delivered, and the opened bytes are ours.
    let now = Instant::now();
    let cfg = config(Method::Aes, true, true);
    let mut out = outbound(&cfg, &PASS, now);
    let mut inb = Inbound::new(Crypt::new(Method::Aes, &PASS), cfg.fec).unwrap();
    let kcp = segment(CONV, CMD_PUSH, 0, 0, 2, b"ok");
    let mut d = seal_with(&mut out, now, &kcp);
    assert_eq!(inb.open(&mut d), Ok(Opened::Kcp(&kcp[..])));
    let mut t = server(&cfg, now);
    let mut d = seal_with(&mut out, now, &kcp);
    assert_eq!(t.handle_datagram(now, &mut d), Input::Delivered);
    assert_eq!(t.stats().in_segs, 1);
}
