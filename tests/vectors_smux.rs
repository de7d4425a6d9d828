//! smux: golden frames and captured Go sessions (`smux.json`), v2 flow-control rules, hostile
//! input, and a proptest of two sessions joined by a byte pipe split at random points.

mod common;

use std::time::{Duration, Instant};

use kcptun::proto::smux::{
    Cmd, Event, Frame, Header, ReadError, Session, SessionError, SmuxConfig, StreamId, Version,
    WriteError, ACCEPT_BACKLOG, HEADER_LEN,
};
use proptest::prelude::*;
use serde_json::Value;

const BIG: usize = HEADER_LEN + 65535;

fn cfg(v: Option<Version>) -> SmuxConfig {
    SmuxConfig {
        version: v,
        max_stream_buffer: 2_097_152,
        ..SmuxConfig::default()
    }
}

fn ver_of(n: u64) -> Version {
    match n {
        1 => Version::V1,
        2 => Version::V2,
        _ => panic!("bad version {n}"),
    }
}

fn drain(s: &mut Session, now: Instant) -> Vec<Vec<u8>> {
    let mut out = vec![0u8; BIG];
    let mut v = Vec::new();
    while let Some(n) = s.poll_transmit(now, &mut out) {
        v.push(out[..n].to_vec());
    }
    v
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn is_nop(f: &[u8]) -> bool {
    f.get(1) == Some(&(Cmd::Nop as u8))
}

fn frames_hex(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| common::unhex(&f["hex"]))
        .collect()
}

fn read_all(s: &mut Session, id: StreamId) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(id, &mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(ReadError::WouldBlock) => return (got, false),
            Err(e) => panic!("read {id}: {e}"),
        }
    }
}

#[test]
fn examples_encode_and_decode_byte_exact() {
    let v = common::load("smux.json");
    let examples = v["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 9);
    for ex in examples {
        let bytes = common::unhex(&ex["hex"]);
        let f = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(u64::from(f.ver()), ex["version"].as_u64().unwrap());
        assert_eq!(f.frame_len(), bytes.len(), "{}", ex["name"]);
        let payload = f.payload().unwrap();
        let h = Header {
            ver: f.ver(),
            cmd: f.cmd(),
            length: f.length(),
            sid: f.sid(),
        };
        let mut out = vec![0xa5u8; bytes.len()];
        h.emit(&mut out);
        out[HEADER_LEN..].copy_from_slice(payload);
        assert_eq!(out, bytes, "{}", ex["name"]);
        let name = ex["name"].as_str().unwrap();
        match Cmd::from_u8(f.cmd()).unwrap() {
            Cmd::Psh => assert_eq!(payload, b"hello"),
            Cmd::Upd => {
                let p: [u8; 8] = payload.try_into().unwrap();
                assert_eq!(kcptun::proto::smux::parse_upd(&p), (5, 2_097_152));
            }
            Cmd::Nop => assert_eq!(f.sid(), 0),
            _ => assert_eq!(f.sid(), 3, "{name}"),
        }
    }
}

/// Frames produced by our own sessions for the same events equal the golden examples.
#[test]
fn examples_produced_by_session() {
    let v = common::load("smux.json");
    let ex: Vec<Vec<u8>> = frames_hex(&v["examples"]);
    for (ver, base) in [(Version::V1, 0), (Version::V2, 4)] {
        let t0 = Instant::now();
        let mut c = cfg(Some(ver));
        c.keepalive = Duration::from_secs(1);
        let mut s = Session::new(c, true, t0);
        let id = s.open().unwrap();
        s.write(id, b"hello").unwrap();
        s.shutdown_write(id);
        let got = drain(&mut s, t0);
        assert_eq!(
            got,
            vec![ex[base].clone(), ex[base + 1].clone(), ex[base + 2].clone()]
        );
        s.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(drain(&mut s, t0), vec![ex[base + 3].clone()]);
    }
}

/// Feeds the captured client bytes into a server session, split into chunks of `chunk` bytes,
/// acting like the captured server: write "world!" on stream 3 once accepted, open stream 2, then
/// close stream 2 after the client's FIN. Returns the server's non-NOP frames.
fn run_server(sess: &Value, version: Option<Version>, chunk: usize) -> Vec<Vec<u8>> {
    let t0 = Instant::now();
    let c2s = common::unhex(&sess["client_to_server_hex"]);
    let mut srv = Session::new(cfg(version), false, t0);
    let mut sent = Vec::new();
    let mut got = Vec::new();
    let mut accepted = None;
    let mut fin3 = false;
    let mut all_events = Vec::new();
    let mut fed = 0;
    for piece in c2s.chunks(chunk) {
        assert_eq!(srv.handle_input(t0, piece), Ok(piece.len()));
        fed += piece.len();
        if accepted.is_none() {
            if let Some(id) = srv.accept() {
                assert_eq!(id, 3);
                accepted = Some(id);
            }
        }
        // Read once the whole PSH 'hello' (bytes 8..21 in both captures) is in, as Go's reader did.
        if let (Some(id), true) = (accepted, fed >= 21) {
            let (data, eof) = read_all(&mut srv, id);
            got.extend(data);
            if got == b"hello" && sent.is_empty() {
                assert_eq!(srv.write(id, b"world!"), Ok(6));
                sent.extend(drain(&mut srv, t0));
                assert_eq!(srv.open(), Ok(2));
                sent.extend(drain(&mut srv, t0));
            }
            if eof && !fin3 {
                fin3 = true;
                srv.close(2);
            }
        }
        sent.extend(drain(&mut srv, t0));
        all_events.extend(events(&mut srv));
    }
    assert_eq!(got, b"hello");
    assert!(fin3);
    let want_ver = ver_of(sess["version"].as_u64().unwrap());
    assert_eq!(srv.version(), Some(want_ver));
    assert!(!srv.is_dead());
    assert_eq!(
        all_events,
        vec![
            Event::Accepted(3),
            Event::Readable(3),
            Event::Finished(3),
            Event::Closed(2)
        ]
    );
    // Stream 3 still open on our side (the captured server never closed it), stream 2 forgotten.
    assert_eq!(srv.num_streams(), 1);
    sent
}

#[test]
fn captured_sessions_server_side() {
    let v = common::load("smux.json");
    for sess in v["sessions"].as_array().unwrap() {
        let ver = ver_of(sess["version"].as_u64().unwrap());
        let want: Vec<Vec<u8>> = frames_hex(&sess["server_to_client_frames"])
            .into_iter()
            .filter(|f| !is_nop(f))
            .collect();
        for version in [Some(ver), None] {
            // Chunks small enough that "world!" is written before the client's UPD(6) arrives.
            for chunk in [1, 3, 7, 8, 13, 16, 21] {
                let got = run_server(sess, version, chunk);
                assert_eq!(got, want, "v{ver:?} cfg {version:?} chunk {chunk}");
            }
            // All at once: events and data (v2: the UPD(6) acknowledges bytes never sent, which
            // breaks only that stream's sending).
            let t0 = Instant::now();
            let mut srv = Session::new(cfg(version), false, t0);
            let c2s = common::unhex(&sess["client_to_server_hex"]);
            assert_eq!(srv.handle_input(t0, &c2s), Ok(c2s.len()));
            assert_eq!(
                events(&mut srv),
                vec![Event::Accepted(3), Event::Readable(3), Event::Finished(3)]
            );
            assert_eq!(srv.accept(), Some(3));
            assert_eq!(read_all(&mut srv, 3), (b"hello".to_vec(), true));
            assert!(!srv.is_dead());
        }
    }
}

#[test]
fn captured_sessions_client_side() {
    let v = common::load("smux.json");
    for sess in v["sessions"].as_array().unwrap() {
        let ver = ver_of(sess["version"].as_u64().unwrap());
        let want: Vec<Vec<u8>> = frames_hex(&sess["client_to_server_frames"]);
        let s2c = frames_hex(&sess["server_to_client_frames"]);
        let t0 = Instant::now();
        let mut c = cfg(Some(ver));
        c.keepalive = Duration::from_millis(700);
        let mut cl = Session::new(c, true, t0);
        let mut sent = Vec::new();
        let id = cl.open().unwrap();
        assert_eq!(id, 3);
        assert_eq!(cl.write(id, b"hello"), Ok(5));
        sent.extend(drain(&mut cl, t0));
        let mut got = Vec::new();
        let mut evs = Vec::new();
        let mut closed = false;
        for f in &s2c {
            assert_eq!(cl.handle_input(t0, f), Ok(f.len()));
            if !closed {
                got.extend(read_all(&mut cl, id).0);
            }
            sent.extend(drain(&mut cl, t0));
            evs.extend(events(&mut cl));
            if evs.contains(&Event::Accepted(2)) && !closed {
                closed = true;
                cl.handle_timeout(t0 + Duration::from_millis(700));
                sent.extend(drain(&mut cl, t0));
                cl.close(id);
                sent.extend(drain(&mut cl, t0));
            }
        }
        evs.extend(events(&mut cl));
        assert_eq!(got, b"world!");
        assert_eq!(cl.accept(), Some(2));
        assert_eq!(read_all(&mut cl, 2), (vec![], true));
        assert_eq!(sent, want, "v{ver:?}");
        assert!(evs.contains(&Event::Finished(2)));
        assert!(evs.contains(&Event::Closed(3)));
        assert_eq!(cl.num_streams(), 1); // stream 2: read done, our FIN not sent
    }
}

#[test]
fn upd_after_first_read_and_every_quarter_window() {
    let t0 = Instant::now();
    let mut c = cfg(Some(Version::V2));
    c.max_stream_buffer = 1000;
    let mut srv = Session::new(c, false, t0);
    let mut input = vec![2, 0, 0, 0, 3, 0, 0, 0];
    for _ in 0..4 {
        input.extend([2, 2, 0x2c, 0x01, 3, 0, 0, 0]); // PSH 300
        input.extend(std::iter::repeat(7u8).take(300));
    }
    srv.handle_input(t0, &input).unwrap();
    let id = srv.accept().unwrap();
    let upd = |consumed: u32| {
        let mut f = vec![2, 4, 8, 0, 3, 0, 0, 0];
        f.extend(consumed.to_le_bytes());
        f.extend(1000u32.to_le_bytes());
        f
    };
    let mut buf = vec![0u8; 2000];
    // (read size, UPD consumed expected after it)
    let steps: [(usize, Option<u32>); 8] = [
        (100, Some(100)), // first read that returns data
        (100, None),
        (149, None),
        (1, Some(350)), // 250 read since the last UPD (a quarter of the window)
        (249, None),
        (1, Some(600)),
        (300, Some(900)), // one read past the quarter
        (99, None),
    ];
    for (n, want) in steps {
        assert_eq!(srv.read(id, &mut buf[..n]), Ok(n));
        let got = drain(&mut srv, t0);
        match want {
            Some(c) => assert_eq!(got, vec![upd(c)], "after reading {n}"),
            None => assert!(got.is_empty(), "after reading {n}: {got:?}"),
        }
    }
    // Two triggers before a transmit coalesce into one UPD carrying the latest count.
    let mut srv2 = Session::new(
        SmuxConfig {
            max_stream_buffer: 100,
            ..cfg(Some(Version::V2))
        },
        false,
        t0,
    );
    srv2.handle_input(t0, &input).unwrap();
    let id = srv2.accept().unwrap();
    assert_eq!(srv2.read(id, &mut buf[..10]), Ok(10));
    assert_eq!(srv2.read(id, &mut buf[..60]), Ok(60));
    let f = drain(&mut srv2, t0);
    assert_eq!(f.len(), 1);
    assert_eq!(&f[0][8..12], &70u32.to_le_bytes());
    // v1: never an UPD.
    let mut v1 = Session::new(cfg(Some(Version::V1)), false, t0);
    let mut input1 = input.clone();
    input1[0] = 1;
    for k in 0..4 {
        input1[8 + k * 308] = 1;
    }
    v1.handle_input(t0, &input1).unwrap();
    let id = v1.accept().unwrap();
    assert_eq!(v1.read(id, &mut buf[..1200]), Ok(1200));
    assert!(drain(&mut v1, t0).is_empty());
}

#[test]
fn writer_respects_peer_window_and_send_buffer() {
    let t0 = Instant::now();
    let mut c = cfg(Some(Version::V2));
    c.max_frame_size = 65535;
    let mut cl = Session::new(c, true, t0);
    let cap = cl.send_capacity();
    assert_eq!(cap, 4 * 65535);
    let id = cl.open().unwrap();
    drain(&mut cl, t0); // SYN
    let data = vec![9u8; 1 << 20];
    let mut written = 0;
    loop {
        match cl.write(id, &data[written..]) {
            Ok(n) => written += n,
            Err(WriteError::Blocked) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(written, cap);
    assert_eq!(cl.buffered(), cap);
    // Write and transmit until the initial peer window (262144) stops the stream.
    let mut sent = 0usize;
    loop {
        let mut progress = false;
        if let Ok(n) = cl.write(id, &data[written..]) {
            written += n;
            progress = n > 0;
        }
        for f in drain(&mut cl, t0) {
            assert_eq!(f[1], Cmd::Psh as u8);
            assert!(f.len() - 8 <= 65535);
            sent += f.len() - 8;
            progress = true;
        }
        if !progress {
            break;
        }
    }
    assert_eq!(sent, 262_144);
    assert_eq!(cl.buffered(), cap);
    assert!(events(&mut cl).contains(&Event::Writable(id)));
    assert_eq!(cl.write(id, b"x"), Err(WriteError::Blocked));
    // The peer reads 100000 bytes and sends UPD(consumed=100000, window=262144).
    let mut upd = vec![2, 4, 8, 0, 3, 0, 0, 0];
    upd.extend(100_000u32.to_le_bytes());
    upd.extend(262_144u32.to_le_bytes());
    cl.handle_input(t0, &upd).unwrap();
    let more: usize = drain(&mut cl, t0).iter().map(|f| f.len() - 8).sum();
    assert_eq!(more, 100_000);
    // A bigger window opens more.
    let mut upd = vec![2, 4, 8, 0, 3, 0, 0, 0];
    upd.extend(100_000u32.to_le_bytes());
    upd.extend(400_000u32.to_le_bytes());
    cl.handle_input(t0, &upd).unwrap();
    let more: usize = drain(&mut cl, t0).iter().map(|f| f.len() - 8).sum();
    assert_eq!(more, 400_000 - 262_144);
    // Peer consumed more than sent: the stream's writes fail from now on.
    let mut upd = vec![2, 4, 8, 0, 3, 0, 0, 0];
    upd.extend(10_000_000u32.to_le_bytes());
    upd.extend(400_000u32.to_le_bytes());
    cl.handle_input(t0, &upd).unwrap();
    assert!(!cl.is_dead());
    assert_eq!(cl.write(id, b"x"), Err(WriteError::ConsumedMoreThanSent));
    assert_eq!(cl.buffered(), 0);
}

#[test]
fn frames_split_at_framesize_control_first_round_robin() {
    let t0 = Instant::now();
    for ver in [Version::V1, Version::V2] {
        let mut c = cfg(Some(ver));
        c.max_frame_size = 8192;
        let mut cl = Session::new(c, true, t0);
        let a = cl.open().unwrap();
        let b = cl.open().unwrap();
        assert_eq!(cl.write(a, &[0xaa; 20_000]), Ok(20_000));
        assert_eq!(cl.write(b, &[0xbb; 9000]), Ok(9000));
        cl.shutdown_write(b);
        let got: Vec<(u8, u32, usize)> = drain(&mut cl, t0)
            .iter()
            .map(|f| {
                let fr = Frame::new_checked(&f[..]).unwrap();
                assert_eq!(fr.frame_len(), f.len());
                (fr.cmd(), fr.sid(), usize::from(fr.length()))
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, a, 0),
                (0, b, 0),
                (2, a, 8192),
                (2, b, 8192),
                (2, a, 8192),
                (2, b, 808),
                (2, a, 3616),
                (1, b, 0),
            ]
        );
        // A smaller output buffer shrinks PSH payloads to fit.
        cl.write(a, &[1; 100]).unwrap();
        let mut small = [0u8; 40];
        assert_eq!(cl.poll_transmit(t0, &mut small), Some(40));
        assert_eq!(Frame::new_checked(&small[..]).unwrap().length(), 32);
        assert_eq!(cl.poll_transmit(t0, &mut [0u8; 15]), None);
    }
}

#[test]
fn v1_has_no_window_and_accepts_upd() {
    let t0 = Instant::now();
    let mut c = cfg(Some(Version::V1));
    c.max_frame_size = 65535;
    let mut cl = Session::new(c, true, t0);
    let id = cl.open().unwrap();
    let data = vec![1u8; 1 << 20];
    let mut total = 0;
    for _ in 0..10 {
        let n = cl.write(id, &data).unwrap();
        let s: usize = drain(&mut cl, t0)
            .iter()
            .filter(|f| f[1] == 2)
            .map(|f| f.len() - 8)
            .sum();
        assert_eq!(s, n);
        total += s;
    }
    assert_eq!(total, 10 * cl.send_capacity());
    let mut upd = vec![1, 4, 8, 0, 3, 0, 0, 0];
    upd.extend(5u32.to_le_bytes());
    upd.extend(0u32.to_le_bytes());
    assert_eq!(cl.handle_input(t0, &upd), Ok(16));
    assert!(!cl.is_dead());
    // A window of 0 changes nothing on v1.
    assert_eq!(cl.write(id, b"abc"), Ok(3));
    assert_eq!(
        drain(&mut cl, t0),
        vec![b"\x01\x02\x03\x00\x03\x00\x00\x00abc".to_vec()]
    );
}

#[test]
fn half_close() {
    let t0 = Instant::now();
    for ver in [Version::V1, Version::V2] {
        let mut a = Session::new(cfg(Some(ver)), true, t0);
        let mut b = Session::new(cfg(None), false, t0);
        let id = a.open().unwrap();
        a.write(id, b"req").unwrap();
        a.shutdown_write(id);
        assert_eq!(a.write(id, b"more"), Err(WriteError::Closed));
        for f in drain(&mut a, t0) {
            b.handle_input(t0, &f).unwrap();
        }
        let bid = b.accept().unwrap();
        assert_eq!(read_all(&mut b, bid), (b"req".to_vec(), true));
        assert_eq!(
            events(&mut b),
            vec![
                Event::Accepted(id),
                Event::Readable(id),
                Event::Finished(id)
            ]
        );
        // The peer's FIN ended only its direction: b still writes.
        b.write(bid, b"response").unwrap();
        b.shutdown_write(bid);
        for f in drain(&mut b, t0) {
            a.handle_input(t0, &f).unwrap();
        }
        assert_eq!(b.num_streams(), 0);
        assert!(events(&mut b).contains(&Event::Closed(bid)));
        assert_eq!(read_all(&mut a, id), (b"response".to_vec(), true));
        assert_eq!(a.num_streams(), 0);
        // Forgotten streams: reads say so.
        assert_eq!(a.read(id, &mut [0u8; 4]), Err(ReadError::UnknownStream));
        // v2: UPD(3) from b went back to a (it is harmless there).
    }
}

#[test]
fn close_drops_unread_and_discards_later_data() {
    let t0 = Instant::now();
    let mut srv = Session::new(cfg(Some(Version::V1)), false, t0);
    srv.handle_input(t0, &[1, 0, 0, 0, 3, 0, 0, 0, 1, 2, 2, 0, 3, 0, 0, 0, 9, 9])
        .unwrap();
    let id = srv.accept().unwrap();
    assert_eq!(srv.buffered(), 2);
    srv.close(id);
    assert_eq!(srv.buffered(), 0);
    assert_eq!(drain(&mut srv, t0), vec![vec![1, 1, 0, 0, 3, 0, 0, 0]]);
    assert_eq!(srv.num_streams(), 0);
    srv.handle_input(t0, &[1, 2, 2, 0, 3, 0, 0, 0, 9, 9])
        .unwrap();
    assert_eq!(srv.buffered(), 0);
    assert!(!srv.is_dead());
}

// ---- hostile input ----

fn expect_dead(version: Option<Version>, input: &[u8], want: SessionError) {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(version), false, t0);
    assert_eq!(s.handle_input(t0, input), Err(want), "{input:?}");
    assert!(s.is_dead());
    assert!(!s.wants_input());
    assert_eq!(s.handle_input(t0, &[1, 3, 0, 0, 0, 0, 0, 0]), Err(want));
    assert!(events(&mut s).contains(&Event::SessionDead(want)));
    assert_eq!(s.poll_transmit(t0, &mut [0u8; 100]), None);
}

#[test]
fn hostile_headers_kill_the_session() {
    use SessionError::InvalidProtocol as IP;
    // Unknown version as the first frame (auto) and against a configured version.
    expect_dead(None, &[3, 3, 0, 0, 0, 0, 0, 0], IP);
    expect_dead(None, &[0, 3, 0, 0, 0, 0, 0, 0], IP);
    expect_dead(Some(Version::V1), &[2, 3, 0, 0, 0, 0, 0, 0], IP);
    expect_dead(Some(Version::V2), &[1, 3, 0, 0, 0, 0, 0, 0], IP);
    // Snappy stream identifier seen as an smux header (SPEC §9).
    expect_dead(
        Some(Version::V2),
        &[0xff, 0x06, 0, 0, b's', b'N', b'a', b'P'],
        IP,
    );
    // Version learnt, then a different one.
    expect_dead(None, &[2, 3, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0], IP);
    // Unknown cmd.
    expect_dead(Some(Version::V2), &[2, 5, 0, 0, 3, 0, 0, 0], IP);
    expect_dead(Some(Version::V1), &[1, 0xff, 0, 0, 3, 0, 0, 0], IP);
    // Lengths invalid for the cmd.
    expect_dead(Some(Version::V2), &[2, 4, 7, 0, 3, 0, 0, 0], IP);
    expect_dead(Some(Version::V2), &[2, 4, 9, 0, 3, 0, 0, 0], IP);
    expect_dead(Some(Version::V1), &[1, 0, 1, 0, 3, 0, 0, 0], IP);
    expect_dead(Some(Version::V1), &[1, 1, 0, 1, 3, 0, 0, 0], IP);
    expect_dead(Some(Version::V1), &[1, 3, 0xff, 0xff, 0, 0, 0, 0], IP);
}

#[test]
fn huge_psh_for_unknown_stream_is_skipped() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(Some(Version::V2)), false, t0);
    let mut input = vec![2, 2, 0xff, 0xff, 99, 0, 0, 0];
    input.extend(vec![0xee; 65535]);
    input.extend([2, 2, 0, 0, 99, 0, 0, 0]); // PSH length 0: ignored
    input.extend([2, 3, 0, 0, 0, 0, 0, 0]);
    for chunk in input.chunks(1000) {
        assert_eq!(s.handle_input(t0, chunk), Ok(chunk.len()));
        assert_eq!(s.buffered(), 0);
    }
    assert!(!s.is_dead());
    assert!(events(&mut s).is_empty());
    // SYN for an existing id is ignored.
    s.handle_input(t0, &[2, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0])
        .unwrap();
    assert_eq!(events(&mut s), vec![Event::Accepted(5)]);
    assert_eq!(s.accept(), Some(5));
    assert_eq!(s.accept(), None);
    // FIN and UPD for unknown streams: ignored.
    let mut x = vec![2, 1, 0, 0, 77, 0, 0, 0, 2, 4, 8, 0, 77, 0, 0, 0];
    x.extend([0xff; 8]);
    assert_eq!(s.handle_input(t0, &x), Ok(x.len()));
    assert!(!s.is_dead());
}

#[test]
fn syn_flood_is_bounded() {
    let t0 = Instant::now();
    let mut s = Session::new(cfg(Some(Version::V2)), false, t0);
    let mut input = Vec::new();
    for i in 0..5000u32 {
        input.extend([2, 0, 0, 0]);
        input.extend((2 * i + 3).to_le_bytes());
    }
    assert_eq!(s.handle_input(t0, &input), Ok(input.len()));
    assert_eq!(s.num_streams(), ACCEPT_BACKLOG);
    let out = drain(&mut s, t0);
    // Refused with FIN, up to the refusal bound; the rest dropped.
    assert_eq!(out.len(), 1024);
    assert!(out.iter().all(|f| f[1] == Cmd::Fin as u8));
    assert_eq!(&out[0][4..8], &(2 * 1024u32 + 3).to_le_bytes());
    assert!(!s.is_dead());
    // Accepting frees backlog room.
    assert_eq!(s.accept(), Some(3));
    s.handle_input(t0, &[2, 0, 0, 0, 1, 0, 0xff, 0]).unwrap();
    assert_eq!(s.num_streams(), ACCEPT_BACKLOG + 1);
}

#[test]
fn window_overrun_kills_the_session() {
    let t0 = Instant::now();
    let mut c = cfg(Some(Version::V2));
    c.max_stream_buffer = 1000; // below the 262144 initial window: the initial one is the limit
    c.max_receive_buffer = 1 << 20;
    let mut s = Session::new(c, false, t0);
    s.handle_input(t0, &[2, 0, 0, 0, 3, 0, 0, 0]).unwrap();
    let mut psh = vec![2, 2, 0, 0x80, 3, 0, 0, 0]; // 32768
    psh.extend(vec![1u8; 32768]);
    for _ in 0..8 {
        assert_eq!(s.handle_input(t0, &psh), Ok(psh.len()));
    }
    assert_eq!(s.buffered(), 262_144);
    assert_eq!(
        s.handle_input(t0, &[2, 2, 1, 0, 3, 0, 0, 0, 1]),
        Err(SessionError::WindowOverrun)
    );
}

#[test]
fn receive_budget_pauses_input() {
    let t0 = Instant::now();
    let mut c = cfg(Some(Version::V1));
    c.max_receive_buffer = 10_000;
    let mut s = Session::new(c, false, t0);
    let mut input = vec![1, 0, 0, 0, 3, 0, 0, 0];
    for _ in 0..100 {
        input.extend([1, 2, 0xe8, 0x03, 3, 0, 0, 0]);
        input.extend([5u8; 1000]);
    }
    let mut pos = 0;
    let mut reads = 0;
    while pos < input.len() {
        let n = s
            .handle_input(t0, &input[pos..pos + 777.min(input.len() - pos)])
            .unwrap();
        pos += n;
        assert!(s.buffered() <= 10_000 + 1000);
        if !s.wants_input() {
            assert!(s.buffered() >= 10_000);
            let mut buf = [0u8; 3000];
            assert_eq!(s.read(3, &mut buf), Ok(3000));
            reads += 1;
        }
    }
    assert!(reads > 20);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes never panic and never grow memory beyond budget + one frame.
    #[test]
    fn garbage_input_is_bounded(data in proptest::collection::vec(any::<u8>(), 0..4096),
                                ver in 0u8..3, seed in any::<u64>()) {
        let t0 = Instant::now();
        let version = Version::from_byte(ver);
        let mut c = cfg(version);
        c.max_receive_buffer = 512;
        let mut s = Session::new(c, false, t0);
        let mut rng = seed | 1;
        let mut pos = 0;
        // Prefix bytes that make frames plausible so deeper states get exercised.
        let mut input = vec![ver.max(1), 0, 0, 0, 3, 0, 0, 0];
        input.extend(&data);
        while pos < input.len() {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            let k = 1 + (rng % 64) as usize;
            let end = (pos + k).min(input.len());
            match s.handle_input(t0, &input[pos..end]) {
                Ok(0) => break,
                Ok(n) => pos += n,
                Err(_) => break,
            }
            prop_assert!(s.buffered() <= 512 + 65535);
            let _ = drain(&mut s, t0);
            let _ = events(&mut s);
        }
    }
}

// ---- two sessions through a byte pipe ----

struct Xs(u64);
impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct End {
    s: Session,
    inbox: Vec<u8>,
    /// Per stream index: bytes to send, how many were written, shut down?
    out: Vec<(Vec<u8>, usize, bool)>,
    /// Per stream index: bytes received, EOF seen?
    got: Vec<(Vec<u8>, bool)>,
    ids: Vec<Option<StreamId>>,
}

fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = Xs(seed | 1);
    (0..len).map(|_| x.next() as u8).collect()
}

fn pump(from: &mut End, to: &mut End, rng: &mut Xs, now: Instant, budget: usize) {
    // Application writes.
    for (i, id) in from.ids.iter().enumerate() {
        let Some(id) = *id else { continue };
        let (data, w, shut) = &mut from.out[i];
        while *w < data.len() {
            let k = 1 + rng.below(20_000) as usize;
            let end = (*w + k).min(data.len());
            match from.s.write(id, &data[*w..end]) {
                Ok(n) => *w += n,
                Err(WriteError::Blocked) => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        if *w == data.len() && !*shut {
            *shut = true;
            from.s.shutdown_write(id);
        }
    }
    // Transmit into the peer's inbox.
    let mut buf = vec![0u8; HEADER_LEN + 65535];
    while let Some(n) = from.s.poll_transmit(now, &mut buf) {
        to.inbox.extend_from_slice(&buf[..n]);
    }
    // Peer input in random chunks.
    let mut pos = 0;
    while pos < to.inbox.len() && to.s.wants_input() {
        let k = 1 + rng.below(3000) as usize;
        let end = (pos + k).min(to.inbox.len());
        let n = to.s.handle_input(now, &to.inbox[pos..end]).expect("input");
        let paused = n < end - pos;
        pos += n;
        assert!(to.s.buffered() <= budget + 65535 + to.ids.len() * to.s.send_capacity());
        if paused {
            assert!(!to.s.wants_input());
            break;
        }
    }
    to.inbox.drain(..pos);
    // Peer accepts and reads.
    while let Some(id) = to.s.accept() {
        let i = ((id - 3) / 2) as usize;
        to.ids[i] = Some(id);
    }
    for (i, id) in to.ids.iter().enumerate() {
        let Some(id) = *id else { continue };
        if to.got[i].1 {
            continue;
        }
        let mut b = vec![0u8; 1 + rng.below(9000) as usize];
        loop {
            match to.s.read(id, &mut b) {
                Ok(0) => {
                    to.got[i].1 = true;
                    break;
                }
                Ok(n) => to.got[i].0.extend_from_slice(&b[..n]),
                Err(ReadError::WouldBlock) => break,
                Err(e) => panic!("read: {e}"),
            }
        }
    }
    while to.s.poll_event().is_some() {}
}

fn pair_run(ver: Version, sizes: &[(usize, usize)], seed: u64, budget: usize, window: u32) {
    let t0 = Instant::now();
    let mk = |v: Option<Version>, client: bool| {
        Session::new(
            SmuxConfig {
                version: v,
                max_receive_buffer: budget,
                max_stream_buffer: window,
                max_frame_size: 1 + (seed % 9000) as u16,
                ..SmuxConfig::default()
            },
            client,
            t0,
        )
    };
    let n = sizes.len();
    let mut a = End {
        s: mk(Some(ver), true),
        inbox: Vec::new(),
        out: Vec::new(),
        got: vec![(Vec::new(), false); n],
        ids: Vec::new(),
    };
    let mut b = End {
        s: mk(None, false),
        inbox: Vec::new(),
        out: Vec::new(),
        got: vec![(Vec::new(), false); n],
        ids: vec![None; n],
    };
    for (i, &(up, down)) in sizes.iter().enumerate() {
        a.ids.push(Some(a.s.open().unwrap()));
        a.out
            .push((payload(seed ^ (i as u64 * 77 + 1), up), 0, false));
        b.out
            .push((payload(seed ^ (i as u64 * 91 + 2), down), 0, false));
    }
    let mut rng = Xs(seed | 1);
    let mut steps = 0;
    loop {
        pump(&mut a, &mut b, &mut rng, t0, budget);
        pump(&mut b, &mut a, &mut rng, t0, budget);
        let done = a.got.iter().all(|g| g.1) && b.got.iter().all(|g| g.1);
        if done {
            break;
        }
        steps += 1;
        assert!(steps < 100_000, "no progress");
    }
    for i in 0..n {
        assert!(b.got[i].0 == a.out[i].0, "stream {i} a->b differs");
        assert!(a.got[i].0 == b.out[i].0, "stream {i} b->a differs");
    }
    // Flush the last FINs/UPDs; everything is forgotten on both sides.
    pump(&mut a, &mut b, &mut rng, t0, budget);
    pump(&mut b, &mut a, &mut rng, t0, budget);
    assert_eq!(a.s.num_streams(), 0);
    assert_eq!(b.s.num_streams(), 0);
    assert_eq!(a.s.buffered() + b.s.buffered(), 0);
    assert_eq!(b.s.version(), Some(ver));
    assert!(!a.s.is_dead() && !b.s.is_dead());
}

#[test]
fn pair_fixed_cases() {
    pair_run(
        Version::V2,
        &[(300_000, 1), (0, 0), (5000, 700_000)],
        7,
        64 * 1024,
        4096,
    );
    pair_run(
        Version::V1,
        &[(300_000, 1), (0, 0), (5000, 700_000)],
        8,
        64 * 1024,
        4096,
    );
    pair_run(Version::V2, &[(1_000_000, 1_000_000)], 9, 4 << 20, 2 << 20);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Sizes reach past the 262144-byte initial v2 window, so UPDs are required for progress.
    #[test]
    fn pair_survives_arbitrary_splitting(
        v2 in any::<bool>(),
        sizes in proptest::collection::vec(
            prop_oneof![0usize..5_000, 0usize..400_000].prop_flat_map(|a| (Just(a), 0usize..300_000)),
            1..5),
        seed in any::<u64>(),
        budget in 1usize..100_000,
        window in 1u32..300_000,
    ) {
        let ver = if v2 { Version::V2 } else { Version::V1 };
        pair_run(ver, &sizes, seed, budget, window);
    }
}

/// Rough throughput of one v2 stream through two sessions (frames copied whole, no splitting).
/// `cargo test --test vectors_smux throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn throughput() {
    let t0 = Instant::now();
    let mut a = Session::new(cfg(Some(Version::V2)), true, t0);
    let mut b = Session::new(cfg(None), false, t0);
    let id = a.open().unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut frame = vec![0u8; BIG];
    let mut rbuf = vec![0u8; 64 * 1024];
    let total: usize = 256 << 20;
    let (mut written, mut read) = (0usize, 0usize);
    let start = std::time::Instant::now();
    while read < total {
        if written < total {
            if let Ok(n) = a.write(id, &chunk) {
                written += n;
            }
        }
        while let Some(n) = a.poll_transmit(t0, &mut frame) {
            assert_eq!(b.handle_input(t0, &frame[..n]), Ok(n));
        }
        b.accept();
        while let Ok(n) = b.read(id, &mut rbuf) {
            if n == 0 {
                break;
            }
            read += n;
        }
        while let Some(n) = b.poll_transmit(t0, &mut frame) {
            a.handle_input(t0, &frame[..n]).unwrap();
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!((written, read), (total, total));
    println!(
        "smux v2 pair: {} MiB in {:.3} s = {:.0} MiB/s",
        total >> 20,
        secs,
        (total >> 20) as f64 / secs
    );
}

/// Random application operations on both ends of a pair (open, write, read, shutdown, close,
/// timers) with a randomly split pipe: no panic (overflow checks catch accounting slips), memory
/// within bounds, and once every stream is closed on both sides, both sessions are empty.
fn chaos_run(ops: &[(u8, u16, u16)], v2: bool, budget: usize, window: u32) {
    let t0 = Instant::now();
    let mk = |v: Option<Version>, client: bool| {
        Session::new(
            SmuxConfig {
                version: v,
                max_receive_buffer: budget,
                max_stream_buffer: window,
                max_frame_size: 1000,
                keepalive: Duration::from_secs(1),
                keepalive_timeout: Duration::from_secs(3),
            },
            client,
            t0,
        )
    };
    let ver = if v2 { Version::V2 } else { Version::V1 };
    let mut s = [mk(Some(ver), true), mk(None, false)];
    let mut pipes: [Vec<u8>; 2] = [Vec::new(), Vec::new()]; // pipes[i] = bytes towards s[i]
    let mut ids: [Vec<StreamId>; 2] = [Vec::new(), Vec::new()];
    let data = vec![0x33u8; 70_000];
    let mut frame = vec![0u8; BIG];
    let mut rbuf = vec![0u8; 70_000];
    let mut now = t0;
    let bound = |x: &Session, n: usize| budget + 65535 + n * x.send_capacity();
    for &(op, a, b) in ops {
        let side = usize::from(op & 1);
        let pick = |v: &Vec<StreamId>| v.get(usize::from(a) % v.len().max(1)).copied();
        match op >> 1 {
            0 => {
                if let Ok(id) = s[side].open() {
                    ids[side].push(id);
                }
            }
            1 => {
                if let Some(id) = pick(&ids[side]) {
                    let _ = s[side].write(id, &data[..usize::from(b) % data.len()]);
                }
            }
            2 => {
                if let Some(id) = pick(&ids[side]) {
                    let _ = s[side].read(id, &mut rbuf[..1 + usize::from(b) % 60_000]);
                }
            }
            3 => {
                if let Some(id) = pick(&ids[side]) {
                    s[side].shutdown_write(id);
                }
            }
            4 => {
                if let Some(id) = pick(&ids[side]) {
                    s[side].close(id);
                }
            }
            5 => {
                now += Duration::from_millis(u64::from(b) % 1500);
                s[side].handle_timeout(now);
            }
            _ => {
                // Transmit everything queued, then deliver a random-size piece to the other side.
                let other = 1 - side;
                while let Some(n) = s[side].poll_transmit(now, &mut frame) {
                    pipes[other].extend_from_slice(&frame[..n]);
                }
                let k = (1 + usize::from(b)).min(pipes[other].len());
                if s[other].wants_input() {
                    let n = s[other]
                        .handle_input(now, &pipes[other][..k])
                        .expect("input");
                    pipes[other].drain(..n);
                }
            }
        }
        for i in 0..2 {
            while let Some(id) = s[i].accept() {
                ids[i].push(id);
            }
            while let Some(e) = s[i].poll_event() {
                if let Event::Closed(id) = e {
                    ids[i].retain(|&x| x != id);
                }
            }
            assert!(s[i].buffered() <= bound(&s[i], s[i].num_streams()));
        }
    }
    // Keep the peers alive through the end game: close everything, move all bytes, read to clear.
    if s.iter().any(|x| x.is_dead()) {
        return; // a keep-alive timeout may legitimately have fired
    }
    for _ in 0..10_000 {
        for i in 0..2 {
            while let Some(id) = s[i].accept() {
                ids[i].push(id);
            }
            for id in ids[i].clone() {
                s[i].close(id);
            }
            while let Some(e) = s[i].poll_event() {
                if let Event::Closed(id) = e {
                    ids[i].retain(|&x| x != id);
                }
            }
            let other = 1 - i;
            while let Some(n) = s[i].poll_transmit(now, &mut frame) {
                pipes[other].extend_from_slice(&frame[..n]);
            }
            let n = s[other].handle_input(now, &pipes[other]).expect("input");
            pipes[other].drain(..n);
        }
        if s[0].num_streams() + s[1].num_streams() == 0 && pipes.iter().all(|p| p.is_empty()) {
            assert_eq!(s[0].buffered() + s[1].buffered(), 0);
            return;
        }
    }
    panic!(
        "streams left: {} {}",
        s[0].num_streams(),
        s[1].num_streams()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn chaos_pair(ops in proptest::collection::vec((0u8..14, any::<u16>(), any::<u16>()), 0..400),
                  v2 in any::<bool>(), budget in 1usize..200_000, window in 1u32..300_000) {
        chaos_run(&ops, v2, budget, window);
    }
}
