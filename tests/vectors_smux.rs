//! smux: golden frames and captured Go sessions (`smux.json`) and the v2 flow-control rules.
//! Hostile input and sessions joined by a byte pipe are in `smux_sessions.rs`.

mod common;

use std::time::{Duration, Instant};

use common::smux::*;
use kcptun::proto::smux::{
    Cmd, Event, Frame, Header, ReadError, Session, SmuxConfig, Version, WriteError, HEADER_LEN,
};
use serde_json::Value;

fn frames_hex(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| common::unhex(&f["hex"]))
        .collect()
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
