//! Unit tests of the smux [`Session`](super::Session) state machine.

use super::*;

fn cfg(v: Option<Version>) -> SmuxConfig {
    SmuxConfig {
        version: v,
        ..SmuxConfig::default()
    }
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn drain(s: &mut Session, now: Instant) -> Vec<Vec<u8>> {
    let mut out = vec![0u8; 8 + 65535];
    let mut v = Vec::new();
    while let Some(n) = s.poll_transmit(now, &mut out) {
        v.push(out[..n].to_vec());
    }
    v
}

#[test]
fn buffers_shrink_after_a_burst() {
    let now = crate::test_clock::origin();
    let mut c = cfg(Some(Version::V1));
    c.max_frame_size = 65535;
    let mut s = Session::new(c, false, now);
    let mut input = vec![1, 0, 0, 0, 3, 0, 0, 0];
    for _ in 0..20 {
        input.extend([1, 2, 0xff, 0xff, 3, 0, 0, 0]);
        input.extend([7u8; 65535]);
    }
    s.handle_input(now, &input).unwrap();
    let id = s.accept().unwrap();
    assert!(s.streams[&id].rbuf.capacity() >= 20 * 65535);
    let mut buf = vec![0u8; 100_000];
    while s.read(id, &mut buf).is_ok_and(|n| n > 0) {}
    assert!(s.streams[&id].rbuf.capacity() <= 16 * 1024);
    // Send side: a full send buffer, then drained.
    let big = vec![1u8; 1 << 20];
    assert_eq!(s.write(id, &big), Ok(s.send_capacity()));
    assert!(s.streams[&id].sbuf.capacity() >= s.send_capacity());
    drain(&mut s, now);
    assert_eq!(s.buffered(), 0);
    assert!(s.streams[&id].sbuf.capacity() <= 16 * 1024);
}

fn upd(sid: u32, consumed: u32, window: u32) -> Vec<u8> {
    let mut f = vec![2, 4, 8, 0];
    f.extend(sid.to_le_bytes());
    f.extend(consumed.to_le_bytes());
    f.extend(window.to_le_bytes());
    f
}

#[test]
fn send_window_counters_wrap() {
    let now = crate::test_clock::origin();
    let mut s = Session::new(cfg(Some(Version::V2)), true, now);
    let id = s.open().unwrap();
    drain(&mut s, now);
    let st = s.streams.get_mut(&id).unwrap();
    st.num_written = u32::MAX - 99;
    st.peer_consumed = u32::MAX - 99;
    st.peer_window = 1000;
    s.write(id, &[0u8; 5000]).unwrap();
    let sent: usize = drain(&mut s, now).iter().map(|f| f.len() - 8).sum();
    assert_eq!(sent, 1000);
    // Wrapped.
    assert_eq!(s.streams[&id].num_written, 900);
    // The peer consumed 600 across the wrap.
    s.handle_input(now, &upd(id, 500, 1000)).unwrap();
    let sent: usize = drain(&mut s, now).iter().map(|f| f.len() - 8).sum();
    assert_eq!(sent, 600);
    // Consumed beyond what was sent (across the wrap) breaks the stream only.
    s.handle_input(now, &upd(id, 2000, 1000)).unwrap();
    assert_eq!(s.write(id, b"x"), Err(WriteError::ConsumedMoreThanSent));
    assert!(!s.is_dead());
}

#[test]
fn receive_window_check_wraps() {
    let now = crate::test_clock::origin();
    let mut c = cfg(Some(Version::V2));
    c.max_stream_buffer = 1000;
    let mut s = Session::new(c, false, now);
    s.handle_input(now, &[2, 0, 0, 0, 3, 0, 0, 0]).unwrap();
    let st = s.streams.get_mut(&3).unwrap();
    st.rcv_total = u32::MAX - 10;
    st.upd_sent_consumed = u32::MAX - 10;
    let mut psh = vec![2, 2, 0, 0x80, 3, 0, 0, 0];
    psh.extend(vec![1u8; 32768]);
    for _ in 0..8 {
        s.handle_input(now, &psh).unwrap();
    }
    assert_eq!(s.streams[&3].rcv_total, 262_144 - 11);
    assert_eq!(
        s.handle_input(now, &[2, 2, 1, 0, 3, 0, 0, 0, 1]),
        Err(SessionError::WindowOverrun)
    );
}

#[test]
fn closed_stream_does_not_linger_behind_a_closed_window() {
    let now = crate::test_clock::origin();
    let mut s = Session::new(cfg(Some(Version::V2)), true, now);
    let id = s.open().unwrap();
    s.streams.get_mut(&id).unwrap().peer_window = 10;
    s.write(id, &[1u8; 100]).unwrap();
    assert_eq!(drain(&mut s, now).len(), 2); // SYN, PSH 10
    assert_eq!(s.buffered(), 90);
    // The window opens by 5, then the stream is closed: 5 more go out, the rest is dropped.
    let st = s.streams.get_mut(&id).unwrap();
    st.peer_window = 15;
    s.close(id);
    let out = drain(&mut s, now);
    let mut fin = vec![2, 1, 0, 0];
    fin.extend(id.to_le_bytes());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].len(), 8 + 5);
    assert_eq!(out[1], fin);
    assert_eq!(s.buffered(), 0);
    assert_eq!(s.num_streams(), 0);
    assert_eq!(events(&mut s), vec![Event::Closed(id)]);
}

#[test]
fn close_in_the_middle_of_a_frame() {
    let now = crate::test_clock::origin();
    let mut s = Session::new(cfg(Some(Version::V1)), false, now);
    s.handle_input(
        now,
        &[1, 0, 0, 0, 3, 0, 0, 0, 1, 2, 10, 0, 3, 0, 0, 0, 1, 2],
    )
    .unwrap();
    let id = s.accept().unwrap();
    s.close(id);
    assert_eq!(s.num_streams(), 1); // until its FIN leaves
    s.handle_input(now, &[3; 8]).unwrap();
    assert_eq!(s.buffered(), 0);
    drain(&mut s, now);
    assert_eq!(s.num_streams(), 0);
    let evs = events(&mut s);
    assert_eq!(
        evs.iter()
            .filter(|e| matches!(e, Event::Readable(_)))
            .count(),
        1
    );
}

#[test]
fn client_ids_and_overflow() {
    let now = crate::test_clock::origin();
    let mut s = Session::new(cfg(Some(Version::V2)), true, now);
    assert_eq!(s.open(), Ok(3));
    assert_eq!(s.open(), Ok(5));
    s.next_id = u32::MAX;
    assert_eq!(s.open(), Err(OpenError::IdsExhausted));
    let mut srv = Session::new(cfg(Some(Version::V2)), false, now);
    assert_eq!(srv.open(), Ok(2));
}

#[test]
fn keepalive_nop_and_timeout() {
    let t0 = crate::test_clock::origin();
    let mut c = cfg(Some(Version::V1));
    c.keepalive = Duration::from_secs(10);
    c.keepalive_timeout = Duration::from_secs(30);
    let mut s = Session::new(c, true, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    s.handle_timeout(t0 + Duration::from_secs(5)); // early: no-op
    assert!(drain(&mut s, t0).is_empty());
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(drain(&mut s, t0), vec![vec![1, 3, 0, 0, 0, 0, 0, 0]]);
    // A NOP from the peer at 25 s keeps it alive at the 30 s check.
    let now = t0 + Duration::from_secs(25);
    s.handle_input(now, &[1, 3, 0, 0, 0, 0, 0, 0]).unwrap();
    s.handle_timeout(t0 + Duration::from_secs(30));
    assert!(!s.is_dead());
    s.handle_timeout(t0 + Duration::from_secs(60));
    assert!(s.is_dead());
    let evs: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(
        evs,
        vec![Event::SessionDead(SessionError::KeepaliveTimeout)]
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn keepalive_clamped_to_timeout() {
    let t0 = crate::test_clock::origin();
    let mut c = cfg(Some(Version::V2));
    c.keepalive = Duration::from_secs(60);
    assert_eq!(
        c.validate(),
        Err(super::super::ConfigError::KeepaliveAboveTimeout)
    );
    let s = Session::new(c, true, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));
}

#[test]
fn no_timeout_while_paused_by_budget() {
    let t0 = crate::test_clock::origin();
    let mut c = cfg(Some(Version::V1));
    c.max_receive_buffer = 4;
    let mut s = Session::new(c, false, t0);
    let mut input = vec![1, 0, 0, 0, 3, 0, 0, 0];
    input.extend([1, 2, 5, 0, 3, 0, 0, 0, 1, 2, 3, 4, 5]);
    input.extend([1, 3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(s.handle_input(t0, &input).unwrap(), 21);
    assert!(!s.wants_input());
    s.handle_timeout(t0 + Duration::from_secs(30));
    s.handle_timeout(t0 + Duration::from_secs(60));
    assert!(!s.is_dead());
    let id = s.accept().unwrap();
    let mut b = [0u8; 16];
    assert_eq!(s.read(id, &mut b), Ok(5));
    assert!(s.wants_input());
    assert_eq!(s.handle_input(t0, &input[21..]).unwrap(), 8);
}

#[test]
fn small_frames_pass_a_bulk_backlog() {
    let now = crate::test_clock::origin();
    let mut s = Session::new(cfg(Some(Version::V1)), true, now);
    let bulk = s.open().unwrap();
    let chat = s.open().unwrap();
    drain(&mut s, now); // the SYNs
    s.write(bulk, &[1u8; 5000]).unwrap();
    s.write(chat, &[2u8; 64]).unwrap();
    let mut out = [0u8; 200];
    // Only the stream whose whole backlog fits goes; the bulk stream keeps its place.
    let n = s.poll_transmit_small(now, &mut out).unwrap();
    assert_eq!(n, 8 + 64);
    assert_eq!(&out[..8], &[1, 2, 64, 0, 5, 0, 0, 0]);
    assert_eq!(
        s.poll_transmit_small(now, &mut out),
        None,
        "nothing else fits whole"
    );
    let n = s.poll_transmit(now, &mut out).unwrap();
    assert_eq!(
        (n, out[4]),
        (200, 3),
        "then the bulk stream, cut to the buffer"
    );
    // A FIN fits whole too.
    s.close(chat);
    let n = s.poll_transmit_small(now, &mut out).unwrap();
    assert_eq!((n, out[1], out[4]), (8, 1, 5));
}
