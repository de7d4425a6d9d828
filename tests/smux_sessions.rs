//! smux sessions under stress: hostile input, two sessions joined by a byte pipe split at random
//! points (fixed cases and proptest), throughput, and random operation sequences.

mod common;

use std::time::{Duration, Instant};

use common::smux::*;
use kcptun::proto::smux::{
    Cmd, Event, ReadError, Session, SessionError, SmuxConfig, StreamId, Version, WriteError,
    ACCEPT_BACKLOG, HEADER_LEN,
};
use proptest::prelude::*;

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
