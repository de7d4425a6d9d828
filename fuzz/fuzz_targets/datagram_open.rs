//! Every cipher's `Inbound::open` on hostile bytes, then a full server `Tunnel` fed a sequence of
//! datagrams. The tunnel uses the chosen cipher or, when the input asks, `null` (no integrity
//! check), so the fuzzer reaches FEC, KCP, snappy and smux with bytes it controls.
#![no_main]

mod common;

use std::sync::OnceLock;

use common::{Clock, Cursor};
use kcptun::proto::codec::{Inbound, Opened, MTU_LIMIT};
use kcptun::proto::crypt::{Crypt, Method};
use kcptun::proto::demux;
use kcptun::proto::rng::Rng;
use kcptun::proto::sim::kcptun_config;
use kcptun::proto::smux::Version;
use kcptun::proto::tunnel::{Input, Tunnel, TunnelConfig};
use libfuzzer_sys::fuzz_target;

const PASS: [u8; 32] = *b"0123456789abcdef0123456789ABCDEF";

/// Keyed ciphers, built once (key schedules and the xor pad are not what we fuzz).
fn crypts() -> &'static Vec<Crypt> {
    static C: OnceLock<Vec<Crypt>> = OnceLock::new();
    C.get_or_init(|| Method::ALL.iter().map(|&m| Crypt::new(m, &PASS)).collect())
}

fn fec_choice(b: u8) -> Option<(usize, usize)> {
    match b % 4 {
        0 => None,
        1 => Some((10, 3)),
        2 => Some((1, 1)),
        _ => Some((usize::from(b >> 2) % 20 + 1, usize::from(b >> 4) % 5 + 1)),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mi = usize::from(c.u8()) % Method::ALL.len();
    let method = Method::ALL[mi];
    let flags = c.u8();

    // 1. Bare codec: one datagram through the Inbound of the chosen cipher.
    let mut inb = Inbound::new(crypts()[mi].clone(), fec_choice(flags)).expect("valid fec");
    let mut buf = [0u8; 2 * MTU_LIMIT];
    let first = c.chunk(2 * MTU_LIMIT);
    buf[..first.len()].copy_from_slice(first);
    let len = first.len();
    match inb.open(&mut buf[..len]) {
        Ok(Opened::Kcp(k)) => assert!(k.len() <= len),
        Ok(Opened::Nothing) | Err(_) => {}
    }
    while let Some(r) = inb.poll_recovered() {
        assert!(r.len() <= MTU_LIMIT);
    }
    let s = inb.stats();
    assert!(s.in_pkts + s.in_csum_errors <= 1);

    // 2. A full server stack fed the rest as a sequence of datagrams.
    // kcptun_config derives a key (PBKDF2, 4096 rounds): build it once.
    static BASE: OnceLock<TunnelConfig> = OnceLock::new();
    let mut cfg = BASE
        .get_or_init(|| kcptun_config("fast3", false, false))
        .clone();
    cfg.method = if flags & 0x10 != 0 {
        Method::Null
    } else {
        method
    };
    cfg.pass = PASS;
    cfg.fec = fec_choice(flags >> 5);
    cfg.compress = flags & 0x20 == 0;
    cfg.smux.version = match flags >> 6 {
        0 => None,
        1 => Some(Version::V1),
        _ => Some(Version::V2),
    };
    cfg.smux.max_receive_buffer = 64 * 1024;
    let mut clock = Clock::new();
    let mut tunnel: Option<Tunnel> = None;
    let mut out = [0u8; MTU_LIMIT];
    let mut rd = [0u8; 4096];
    let mut rounds = 0;
    while !c.is_empty() && rounds < 64 {
        rounds += 1;
        let op = c.u8();
        let now = clock.advance(c.u8());
        if op & 0x80 != 0 {
            if let Some(t) = &mut tunnel {
                t.handle_timeout(now);
            }
        } else {
            let d = c.chunk(MTU_LIMIT + 64);
            let n = d.len();
            buf[..n].copy_from_slice(d);
            let t = match &mut tunnel {
                Some(t) => t,
                None => {
                    // As the listener does: open a copy, learn the conv, then build the session.
                    let mut probe = buf;
                    let mut cr = crypts()[Method::ALL
                        .iter()
                        .position(|&m| m == cfg.method)
                        .unwrap_or(0)]
                    .clone();
                    let conv = match cr.open(&mut probe[..n]).ok().and_then(|p| demux::peek(p)) {
                        Some(p) => p.conv,
                        None => continue,
                    };
                    let rng = Rng::from_seed([7; 32]);
                    tunnel.insert(Tunnel::new(&cfg, conv, false, rng, now).expect("config"))
                }
            };
            let r = t.handle_datagram(now, &mut buf[..n]);
            if let Input::ForeignConv(p) = r {
                assert_ne!(p.conv, t.conv());
            }
        }
        let Some(t) = &mut tunnel else { continue };
        while let Some(n) = t.poll_transmit(now, &mut out) {
            assert!(n <= MTU_LIMIT);
        }
        while t.accept().is_some() {}
        while let Some(ev) = t.poll_event() {
            if let kcptun::proto::smux::Event::Readable(id)
            | kcptun::proto::smux::Event::Finished(id) = ev
            {
                while let Ok(n) = t.read(now, id, &mut rd) {
                    if n == 0 {
                        t.close(id);
                        break;
                    }
                }
            }
        }
        let _ = t.liveness(now);
        assert!(t.num_streams() <= 4096);
    }
});
