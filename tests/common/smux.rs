//! Helpers of the smux session tests (`vectors_smux.rs`, `smux_sessions.rs`).

use std::time::Instant;

use kcptun::proto::smux::{
    Cmd, Event, ReadError, Session, SmuxConfig, StreamId, Version, HEADER_LEN,
};

pub const BIG: usize = HEADER_LEN + 65535;

pub fn cfg(v: Option<Version>) -> SmuxConfig {
    SmuxConfig {
        version: v,
        max_stream_buffer: 2_097_152,
        ..SmuxConfig::default()
    }
}

pub fn ver_of(n: u64) -> Version {
    match n {
        1 => Version::V1,
        2 => Version::V2,
        _ => panic!("bad version {n}"),
    }
}

pub fn drain(s: &mut Session, now: Instant) -> Vec<Vec<u8>> {
    let mut out = vec![0u8; BIG];
    let mut v = Vec::new();
    while let Some(n) = s.poll_transmit(now, &mut out) {
        v.push(out[..n].to_vec());
    }
    v
}

pub fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

pub fn is_nop(f: &[u8]) -> bool {
    f.get(1) == Some(&(Cmd::Nop as u8))
}

pub fn read_all(s: &mut Session, id: StreamId) -> (Vec<u8>, bool) {
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
