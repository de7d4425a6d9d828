//! A smux `Session` (client or server; v1, v2 or learning the version) fed hostile bytes split at
//! points the input chooses, honouring back-pressure; all streams are read, written and closed,
//! and frames are drained. Checks the memory bounds the module promises.
#![no_main]

mod common;

use std::time::Duration;

use common::{Clock, Cursor};
use kcptun::proto::smux::{Event, ReadError, Session, SmuxConfig, StreamId, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let f = c.u8();
    let cfg = SmuxConfig {
        version: match f % 3 {
            0 => None,
            1 => Some(Version::V1),
            _ => Some(Version::V2),
        },
        keepalive: Duration::from_secs(10),
        keepalive_timeout: Duration::from_secs(30),
        max_receive_buffer: [4096, 65536, 1 << 20][usize::from(f >> 2) % 3],
        max_stream_buffer: [1024, 65536][usize::from(f >> 4) & 1],
        max_frame_size: [16, 4096, 32768][usize::from(f >> 5) % 3],
    };
    let is_client = f & 0x80 != 0;
    let mut clock = Clock::new();
    let mut s = Session::new(cfg.clone(), is_client, clock.now);
    let mut ids: Vec<StreamId> = Vec::new();
    let mut pending: &[u8] = &[];
    let mut out = vec![0u8; 8 + usize::from(cfg.max_frame_size)];
    let mut rd = [0u8; 2048];
    let wr = [0xa5u8; 5000];
    let mut ops = 0;
    while (!c.is_empty() || !pending.is_empty()) && ops < 256 {
        ops += 1;
        let op = c.u8();
        let now = clock.advance(c.u8());
        match op % 8 {
            0..=3 => {
                if pending.is_empty() {
                    pending = c.chunk(70_000);
                }
                let want = s.wants_input();
                match s.handle_input(now, pending) {
                    Ok(n) => {
                        assert!(n <= pending.len());
                        assert!(want || n == 0);
                        pending = &pending[n..];
                    }
                    Err(e) => {
                        assert!(s.is_dead());
                        assert_eq!(s.dead_reason(), Some(e));
                        pending = &[];
                    }
                }
            }
            4 => s.handle_timeout(now),
            5 => {
                if is_client {
                    if let Ok(id) = s.open() {
                        ids.push(id);
                    }
                } else if let Some(&id) = ids.get(usize::from(op >> 3) % ids.len().max(1)) {
                    s.close(id);
                }
            }
            6 => {
                if let Some(&id) = ids.get(usize::from(op >> 3) % ids.len().max(1)) {
                    let n = usize::from(c.u16()) % (wr.len() + 1);
                    if let Ok(k) = s.write(id, &wr[..n]) {
                        assert!(k <= n);
                    }
                    if op & 0x80 != 0 {
                        s.shutdown_write(id);
                    }
                }
            }
            _ => {
                let cap = (usize::from(op) * 37).clamp(16, out.len());
                while let Some(n) = s.poll_transmit(now, &mut out[..cap]) {
                    assert!((8..=cap).contains(&n));
                }
            }
        }
        while let Some(id) = s.accept() {
            ids.push(id);
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                Event::Accepted(_) | Event::Writable(_) | Event::SessionDead(_) => {}
                Event::Readable(id) | Event::Finished(id) => loop {
                    match s.read(id, &mut rd) {
                        Ok(0) => break,
                        Ok(n) => assert!(n <= rd.len()),
                        Err(ReadError::WouldBlock) => break,
                        Err(_) => break,
                    }
                },
                Event::Closed(id) => ids.retain(|&x| x != id),
            }
        }
        // Bounds: unread data at most the budget plus one frame; streams waiting for accept
        // bounded by the backlog (we accept all, so by what we opened or accepted).
        assert!(s.buffered() <= cfg.max_receive_buffer + 65535 + ids.len() * s.send_capacity());
        assert!(s.num_streams() <= ids.len() + kcptun::proto::smux::ACCEPT_BACKLOG);
    }
    // Drain everything left.
    let now = clock.advance(1);
    while s.poll_transmit(now, &mut out).is_some() {}
});
