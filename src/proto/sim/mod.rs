//! A deterministic lossy link and a two-tunnel harness on a virtual clock.
//!
//! [`Link`] is one direction of a simulated path: seeded loss, propagation delay, jitter, extra
//! reordering delay, duplication, and a bottleneck with a bounded queue (tail drop). [`run`] joins
//! a client and a server [`Tunnel`] with two links, opens streams, pushes a deterministic byte
//! pattern both ways, checks every byte at the far end and reports virtual-time goodput,
//! retransmissions and FEC recoveries. Everything — loss pattern, nonces, conv — derives from the
//! scenario's seed, so a run replays exactly; time only moves when the harness jumps to the next
//! deadline, so a "30 second" transfer takes as long as the CPU work it needs.

mod probe;

pub use probe::{run_probe, ProbeReport, ProbeScenario};

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::codec::MTU_LIMIT;
use super::rng::Rng;
use super::smux::{ReadError, StreamId, WriteError};
use super::tunnel::{Liveness, Tunnel, TunnelConfig};

/// One direction of a simulated path.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Uniform extra delay in `0..jitter` per datagram (reorders datagrams closer than it).
    pub jitter: Duration,
    /// Probability that a datagram gets an extra `delay` on top (strong reordering).
    pub reorder: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Bottleneck rate in bytes per second; 0 = unlimited.
    pub bandwidth: u64,
    /// Bytes the bottleneck queue holds before it drops (tail drop).
    pub queue_bytes: usize,
}

impl LinkConfig {
    /// A clean link with the given one-way delay and no rate limit.
    pub fn clean(delay: Duration) -> Self {
        LinkConfig {
            loss: 0.0,
            delay,
            jitter: Duration::ZERO,
            reorder: 0.0,
            duplicate: 0.0,
            bandwidth: 0,
            queue_bytes: usize::MAX,
        }
    }
}

/// Counters of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub duplicated: u64,
    pub delivered: u64,
}

/// One direction of a simulated path (see [`LinkConfig`]).
pub struct Link {
    cfg: LinkConfig,
    rng: Rng,
    /// (arrival, tie-break sequence, slot in `bufs`).
    in_flight: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    bufs: Vec<Vec<u8>>,
    free: Vec<usize>,
    seq: u64,
    busy_until: Option<Instant>,
    pub stats: LinkStats,
}

fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl Link {
    pub fn new(cfg: LinkConfig, rng: Rng) -> Self {
        Link {
            cfg,
            rng,
            in_flight: BinaryHeap::new(),
            bufs: Vec::new(),
            free: Vec::new(),
            seq: 0,
            busy_until: None,
            stats: LinkStats::default(),
        }
    }

    /// Hands a datagram to the link at `now`.
    pub fn send(&mut self, now: Instant, dgram: &[u8]) {
        self.stats.sent += 1;
        // The bottleneck serialises first: a queue drop happens before the path can lose it.
        let depart = if self.cfg.bandwidth > 0 {
            let start = self.busy_until.map_or(now, |b| b.max(now));
            let backlog = start.saturating_duration_since(now);
            let queued = backlog.as_secs_f64() * self.cfg.bandwidth as f64;
            if queued + dgram.len() as f64 > self.cfg.queue_bytes as f64 {
                self.stats.queue_drops += 1;
                return;
            }
            let tx = Duration::from_secs_f64(dgram.len() as f64 / self.cfg.bandwidth as f64);
            self.busy_until = Some(start + tx);
            start + tx
        } else {
            now
        };
        if unit(&mut self.rng) < self.cfg.loss {
            self.stats.lost += 1;
            return;
        }
        let copies = if unit(&mut self.rng) < self.cfg.duplicate {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = depart + self.cfg.delay;
            if !self.cfg.jitter.is_zero() {
                at += self.cfg.jitter.mul_f64(unit(&mut self.rng));
            }
            if unit(&mut self.rng) < self.cfg.reorder {
                at += self.cfg.delay.max(Duration::from_millis(1));
            }
            let slot = match self.free.pop() {
                Some(s) => {
                    self.bufs[s].clear();
                    self.bufs[s].extend_from_slice(dgram);
                    s
                }
                None => {
                    self.bufs.push(dgram.to_vec());
                    self.bufs.len() - 1
                }
            };
            self.seq += 1;
            self.in_flight.push(Reverse((at, self.seq, slot)));
        }
    }

    /// When the next datagram arrives.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Delivers every datagram due at `now` to `f`.
    pub fn deliver(&mut self, now: Instant, mut f: impl FnMut(&mut [u8])) {
        while let Some(&Reverse((at, _, slot))) = self.in_flight.peek() {
            if at > now {
                break;
            }
            self.in_flight.pop();
            self.stats.delivered += 1;
            f(&mut self.bufs[slot]);
            self.free.push(slot);
        }
    }
}

/// One simulated transfer.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub client: TunnelConfig,
    pub server: TunnelConfig,
    /// Client → server path.
    pub up: LinkConfig,
    /// Server → client path.
    pub down: LinkConfig,
    /// Concurrent streams; the bytes are split evenly among them.
    pub streams: usize,
    /// Bytes each way, in total over all streams.
    pub bytes_each_way: u64,
    /// The client sends nothing: a download, as `kcptun bench tunnel` measures one direction at
    /// a time (both directions at once share every datagram's ACKs with data).
    pub download_only: bool,
    pub seed: u64,
    /// Virtual time after which the run is declared failed.
    pub time_limit: Duration,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub name: String,
    pub virtual_secs: f64,
    /// Payload bytes per virtual second, each direction (MB = 10^6 bytes).
    pub goodput_up_mbs: f64,
    pub goodput_down_mbs: f64,
    pub retrans_segs: u64,
    pub fec_recovered: u64,
    pub datagrams: u64,
    /// Datagrams the links lost at random (the scenario's `loss`).
    pub link_lost: u64,
    /// Datagrams dropped because the bottleneck queue was full (bursts the sender caused).
    pub queue_drops: u64,
    /// What KCP's windows allow on this path (MB/s of payload, the slower direction): window ×
    /// mss / round trip, capped by the bottleneck rate. Goodput can approach it, never pass it.
    pub window_ceiling_mbs: f64,
}

/// Payload bytes per second KCP's windows allow from `tx` to `rx` over a path with `rtt`.
fn window_ceiling(
    tx: &TunnelConfig,
    rx: &TunnelConfig,
    mss: usize,
    rtt: Duration,
    rate: u64,
) -> f64 {
    let wnd = f64::from(tx.kcp.snd_wnd.min(rx.kcp.rcv_wnd));
    let by_window = wnd * mss as f64 / rtt.as_secs_f64().max(1e-6);
    if rate > 0 {
        by_window.min(rate as f64)
    } else {
        by_window
    }
}

impl Report {
    /// Goodput of the slower direction that carried data (both, or only the download) as a
    /// fraction of [`Report::window_ceiling_mbs`].
    pub fn ceiling_fraction(&self) -> f64 {
        let slower = if self.goodput_up_mbs > 0.0 {
            self.goodput_up_mbs.min(self.goodput_down_mbs)
        } else {
            self.goodput_down_mbs
        };
        slower / self.window_ceiling_mbs
    }

    /// Header of [`Report::row`].
    pub fn header() -> String {
        format!(
            "{:<34} {:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>7}",
            "scenario",
            "vsecs",
            "up MB/s",
            "down MB/s",
            "retrans",
            "fec-rec",
            "dgrams",
            "lost",
            "qdrop"
        )
    }

    /// One aligned table row.
    pub fn row(&self) -> String {
        format!(
            "{:<34} {:>8.2} {:>10.2} {:>10.2} {:>9} {:>9} {:>9} {:>8} {:>7}",
            self.name,
            self.virtual_secs,
            self.goodput_up_mbs,
            self.goodput_down_mbs,
            self.retrans_segs,
            self.fec_recovered,
            self.datagrams,
            self.link_lost,
            self.queue_drops
        )
    }
}

/// Why a run failed.
#[derive(Debug)]
pub enum SimError {
    Setup(String),
    /// A byte arrived that differs from what was sent.
    Corrupt {
        side: &'static str,
        stream: StreamId,
        offset: u64,
    },
    /// The transfer did not finish within the scenario's virtual time limit.
    Timeout {
        delivered_up: u64,
        delivered_down: u64,
    },
    /// A session died.
    Dead(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::Setup(s) => write!(f, "setup failed: {s}"),
            SimError::Corrupt {
                side,
                stream,
                offset,
            } => write!(
                f,
                "{side} read a wrong byte on stream {stream} at offset {offset}"
            ),
            SimError::Timeout {
                delivered_up,
                delivered_down,
            } => write!(
                f,
                "timed out with {delivered_up} bytes delivered up and {delivered_down} down"
            ),
            SimError::Dead(s) => write!(f, "session died: {s}"),
        }
    }
}

impl std::error::Error for SimError {}

/// Byte `offset` of the pattern for `stream` in direction `up`.
fn pattern_word(seed: u64, stream: StreamId, up: bool, word: u64) -> u64 {
    let mut z = seed
        ^ (u64::from(stream) << 32)
        ^ (u64::from(up) << 63)
        ^ word.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `buf` with the pattern starting at `offset`.
pub fn fill_pattern(seed: u64, stream: StreamId, up: bool, offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let pos = offset + i as u64;
        *b = pattern_word(seed, stream, up, pos / 8).to_le_bytes()[(pos % 8) as usize];
    }
}

/// First position in `buf` (read at `offset`) that differs from the pattern.
fn check_pattern(seed: u64, stream: StreamId, up: bool, offset: u64, buf: &[u8]) -> Option<u64> {
    let mut expect = vec![0u8; buf.len()];
    fill_pattern(seed, stream, up, offset, &mut expect);
    buf.iter()
        .zip(&expect)
        .position(|(a, b)| a != b)
        .map(|p| offset + p as u64)
}

/// Per-stream progress of one side.
struct Flow {
    id: StreamId,
    sent: u64,
    fin_sent: bool,
    received: u64,
    eof: bool,
}

struct Side {
    tunnel: Tunnel,
    flows: Vec<Flow>,
    is_client: bool,
}

impl Side {
    fn flow(&mut self, id: StreamId) -> &mut Flow {
        if let Some(i) = self.flows.iter().position(|f| f.id == id) {
            return &mut self.flows[i];
        }
        self.flows.push(Flow {
            id,
            sent: 0,
            fin_sent: false,
            received: 0,
            eof: false,
        });
        self.flows.last_mut().expect("just pushed")
    }

    /// Writes and reads every stream as far as the tunnel allows; `true` if any byte moved.
    fn pump(
        &mut self,
        now: Instant,
        seed: u64,
        per_stream: u64,
        buf: &mut [u8],
    ) -> Result<bool, SimError> {
        let mut moved = false;
        if !self.is_client {
            while let Some(id) = self.tunnel.accept() {
                self.flow(id);
            }
        }
        let up = self.is_client;
        for i in 0..self.flows.len() {
            let id = self.flows[i].id;
            // Write our direction.
            let quota = per_stream;
            while self.flows[i].sent < quota {
                let off = self.flows[i].sent;
                let n = ((quota - off) as usize).min(buf.len());
                fill_pattern(seed, id, up, off, &mut buf[..n]);
                match self.tunnel.write(id, &buf[..n]) {
                    Ok(0) | Err(WriteError::Blocked) => break,
                    Ok(w) => {
                        self.flows[i].sent += w as u64;
                        moved = true;
                    }
                    Err(e) => return Err(SimError::Dead(format!("write: {e}"))),
                }
            }
            if self.flows[i].sent == quota && !self.flows[i].fin_sent {
                self.tunnel.shutdown_write(id);
                self.flows[i].fin_sent = true;
            }
            // Read the other direction.
            while !self.flows[i].eof {
                match self.tunnel.read(now, id, buf) {
                    Ok(0) => self.flows[i].eof = true,
                    Ok(n) => {
                        let off = self.flows[i].received;
                        if let Some(bad) = check_pattern(seed, id, !up, off, &buf[..n]) {
                            return Err(SimError::Corrupt {
                                side: if up { "client" } else { "server" },
                                stream: id,
                                offset: bad,
                            });
                        }
                        self.flows[i].received += n as u64;
                        moved = true;
                    }
                    Err(ReadError::WouldBlock) => break,
                    Err(e) => return Err(SimError::Dead(format!("read: {e}"))),
                }
            }
        }
        while self.tunnel.poll_event().is_some() {}
        Ok(moved)
    }

    fn received(&self) -> u64 {
        self.flows.iter().map(|f| f.received).sum()
    }
}

/// Runs one scenario to completion (every byte checked) or failure. `t0` is the virtual origin.
pub fn run(s: &Scenario, t0: Instant) -> Result<Report, SimError> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&s.seed.to_le_bytes());
    let mut rng = Rng::from_seed(seed_bytes);
    let conv = rng.next_u32();
    let setup = |e: super::fec::FecConfigError| SimError::Setup(e.to_string());
    let mut client = Side {
        tunnel: Tunnel::new(&s.client, conv, true, rng.fork(), t0).map_err(setup)?,
        flows: Vec::new(),
        is_client: true,
    };
    let mut server = Side {
        tunnel: Tunnel::new(&s.server, conv, false, rng.fork(), t0).map_err(setup)?,
        flows: Vec::new(),
        is_client: false,
    };
    let mut up = Link::new(s.up.clone(), rng.fork());
    let mut down = Link::new(s.down.clone(), rng.fork());
    let streams = s.streams.max(1);
    let per_stream = s.bytes_each_way / streams as u64;
    let total = per_stream * streams as u64;
    let up_per_stream = if s.download_only { 0 } else { per_stream };
    for _ in 0..streams {
        let id = client
            .tunnel
            .open()
            .map_err(|e| SimError::Setup(format!("open: {e}")))?;
        client.flow(id);
    }

    let mut now = t0;
    let mut dgram = vec![0u8; MTU_LIMIT];
    let mut app = vec![0u8; 32 * 1024];
    let mut finished_at = None;
    loop {
        up.deliver(now, |d| {
            server.tunnel.handle_datagram(now, d);
        });
        down.deliver(now, |d| {
            client.tunnel.handle_datagram(now, d);
        });
        for side in [&mut client, &mut server] {
            if side.tunnel.poll_timeout().is_some_and(|t| t <= now) {
                side.tunnel.handle_timeout(now);
            }
        }
        // Like the event loop: the application writes and reads, the sessions transmit, and
        // that repeats while it frees room for more (bounded, as the loop's rounds are).
        for _round in 0..64 {
            let mut moved = false;
            for side in [&mut client, &mut server] {
                let quota = if side.is_client {
                    up_per_stream
                } else {
                    per_stream
                };
                moved |= side.pump(now, s.seed, quota, &mut app)?;
                if let Liveness::Dead(r) = side.tunnel.liveness(now) {
                    return Err(SimError::Dead(r.to_string()));
                }
            }
            while let Some(n) = client.tunnel.poll_transmit(now, &mut dgram) {
                up.send(now, &dgram[..n]);
                moved = true;
            }
            while let Some(n) = server.tunnel.poll_transmit(now, &mut dgram) {
                down.send(now, &dgram[..n]);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        let done = client.flows.len() == streams
            && server.flows.len() == streams
            && client
                .flows
                .iter()
                .all(|f| f.eof && f.received == per_stream)
            && server
                .flows
                .iter()
                .all(|f| f.eof && f.received == up_per_stream);
        if done {
            finished_at = Some(now);
            break;
        }
        if now.duration_since(t0) > s.time_limit {
            break;
        }
        let next = [
            client.tunnel.poll_timeout(),
            server.tunnel.poll_timeout(),
            up.next_delivery(),
            down.next_delivery(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            // Never stand still: at least one millisecond per step (KCP's clock resolution).
            Some(t) => now = t.max(now + Duration::from_micros(1000)),
            None => now += Duration::from_millis(1),
        }
    }
    let Some(end) = finished_at else {
        return Err(SimError::Timeout {
            delivered_up: server.received(),
            delivered_down: client.received(),
        });
    };
    let secs = end.duration_since(t0).as_secs_f64().max(1e-9);
    let cs = client.tunnel.stats();
    let ss = server.tunnel.stats();
    let rtt = s.up.delay + s.down.delay;
    let mss = client.tunnel.kcp().mss();
    let ceiling = window_ceiling(&s.client, &s.server, mss, rtt, s.up.bandwidth).min(
        window_ceiling(&s.server, &s.client, mss, rtt, s.down.bandwidth),
    );
    Ok(Report {
        name: s.name.clone(),
        virtual_secs: secs,
        goodput_up_mbs: (up_per_stream * streams as u64) as f64 / secs / 1e6,
        goodput_down_mbs: total as f64 / secs / 1e6,
        retrans_segs: cs.retrans_segs + ss.retrans_segs,
        fec_recovered: cs.fec_recovered + ss.fec_recovered,
        datagrams: up.stats.sent + down.stats.sent,
        link_lost: up.stats.lost + down.stats.lost,
        queue_drops: up.stats.queue_drops + down.stats.queue_drops,
        window_ceiling_mbs: ceiling / 1e6,
    })
}

/// A tunnel configuration as kcptun sets one up: `mode`, FEC 10/3 or off, aes, compression on,
/// smux v2, and Go's default windows (client 128/512, server 1024/1024).
pub fn kcptun_config(mode: &str, fec: bool, client: bool) -> TunnelConfig {
    use super::crypt::{derive_key, Method};
    use super::kcp::KcpConfig;
    use super::smux::{SmuxConfig, Version};
    let mut kcp = KcpConfig::from_mode(mode, (0, 50, 0, 0));
    (kcp.snd_wnd, kcp.rcv_wnd) = if client { (128, 512) } else { (1024, 1024) };
    TunnelConfig {
        method: Method::Aes,
        pass: derive_key(b"it's a secrect"),
        fec: fec.then_some((10, 3)),
        udp_mtu: 1350,
        kcp,
        compress: true,
        smux: SmuxConfig {
            version: if client { Some(Version::V2) } else { None },
            ..SmuxConfig::default()
        },
        stale_after: Duration::from_secs(3),
    }
}

/// The lossy-link grid: loss {0, 1, 10, 30} % × mode {fast3, normal} × FEC {10/3, off} × streams
/// {1, 4}, covered pairwise in eight runs (every pair of values of any two dimensions occurs).
/// Lossy runs also reorder and duplicate. 40 ms round trip, 50 MB/s bottleneck, 512 KiB queue.
pub fn standard_grid(bytes_each_way: u64) -> Vec<Scenario> {
    let rows: [(f64, &str, bool, usize); 8] = [
        (0.00, "fast3", true, 1),
        (0.00, "normal", false, 4),
        (0.01, "fast3", false, 4),
        (0.01, "normal", true, 1),
        (0.10, "fast3", true, 4),
        (0.10, "normal", false, 1),
        (0.30, "fast3", false, 1),
        (0.30, "normal", true, 4),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, &(loss, mode, fec, streams))| {
            let lossy = loss > 0.0;
            let link = LinkConfig {
                loss,
                delay: Duration::from_millis(20),
                jitter: Duration::from_millis(if lossy { 4 } else { 0 }),
                reorder: if lossy { 0.02 } else { 0.0 },
                duplicate: if lossy { 0.01 } else { 0.0 },
                bandwidth: 50_000_000,
                queue_bytes: 512 * 1024,
            };
            Scenario {
                name: format!(
                    "loss {:>2}% {:<6} fec {:<3} {} stream{}",
                    (loss * 100.0).round(),
                    mode,
                    if fec { "on" } else { "off" },
                    streams,
                    if streams > 1 { "s" } else { "" }
                ),
                client: kcptun_config(mode, fec, true),
                server: kcptun_config(mode, fec, false),
                up: link.clone(),
                down: link,
                streams,
                bytes_each_way,
                download_only: false,
                seed: 0x6b63_7074_756e_0000 + i as u64,
                time_limit: Duration::from_secs(1800),
            }
        })
        .collect()
}

/// One direction of a long path: half of `rtt_ms`, `loss`, and optionally a 100 Mbit/s
/// bottleneck with a 1 MB drop-tail queue.
fn long_path(rtt_ms: u64, loss: f64, bottleneck: bool) -> LinkConfig {
    let mut link = LinkConfig::clean(Duration::from_millis(rtt_ms / 2));
    link.loss = loss;
    if bottleneck {
        link.bandwidth = 12_500_000;
        link.queue_bytes = 1_000_000;
    }
    link
}

/// Long paths as users run them (issue: "win on real paths"): windows 1024/1024 on both sides,
/// fast3, FEC 10/3, aes, no compression, one stream, like `kcptun bench tunnel`. 40 ms round trip
/// clean and with 2 % loss each way, 100 ms clean and with 10 % loss each way, with no rate limit
/// (the windows set the ceiling); 40 ms through a 100 Mbit/s bottleneck with a 1 MB drop-tail
/// queue, where a full window overflows the queue (no pacing yet); and 100 ms with 10 % loss as a
/// download only, as `kcptun bench tunnel` measures a direction.
pub fn long_path_grid(bytes_each_way: u64) -> Vec<Scenario> {
    // (round trip, loss each way, 100 Mbit/1 MB bottleneck, download only)
    let rows: [(u64, f64, bool, bool); 6] = [
        (40, 0.0, false, false),
        (40, 0.02, false, false),
        (100, 0.0, false, false),
        (100, 0.10, false, false),
        (40, 0.0, true, false),
        (100, 0.10, false, true),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, &(rtt_ms, loss, bottleneck, download_only))| {
            let cfg = |client| {
                let mut c = kcptun_config("fast3", true, client);
                (c.kcp.snd_wnd, c.kcp.rcv_wnd) = (1024, 1024);
                c.compress = false;
                c
            };
            let link = long_path(rtt_ms, loss, bottleneck);
            Scenario {
                name: format!(
                    "{rtt_ms:>3} ms rtt loss {:>2}% wnd 1024{}{}",
                    (loss * 100.0).round(),
                    if bottleneck { " 100 Mbit 1 MB" } else { "" },
                    if download_only { " down" } else { "" }
                ),
                client: cfg(true),
                server: cfg(false),
                up: link.clone(),
                down: link,
                streams: 1,
                bytes_each_way,
                download_only,
                seed: 0x6b63_7074_756e_1000 + i as u64,
                time_limit: Duration::from_secs(1800),
            }
        })
        .collect()
}

/// Interactive probes on long paths with the tunnel settings of [`long_path_grid`]: idle at
/// 40 ms with 2 % loss and at 100 ms with 10 % loss each way (`probes` requests each, 20 ms
/// apart); while a bulk download shares the session through a 100 Mbit/s bottleneck with a 1 MB
/// drop-tail queue, at 40 ms clean and at 100 ms with 10 % loss; and beside a bulk download, then
/// a bulk upload, at 100 ms with 10 % loss and no bottleneck (`probes / 8` requests each: the
/// bulk transfer makes those runs far more work).
pub fn probe_grid(probes: usize) -> Vec<ProbeScenario> {
    #[derive(Clone, Copy, PartialEq)]
    enum Bulk {
        None,
        Down,
        Up,
        /// Up for the first half of the probes, then down (the bench's order).
        UpDown,
    }
    // (round trip, loss each way, bulk transfer beside the probes, 100 Mbit/1 MB bottleneck)
    let rows: [(u64, f64, Bulk, bool); 7] = [
        (40, 0.02, Bulk::None, false),
        (100, 0.10, Bulk::None, false),
        (40, 0.0, Bulk::Down, true),
        (100, 0.10, Bulk::Down, true),
        (100, 0.10, Bulk::Down, false),
        (100, 0.10, Bulk::Up, false),
        (40, 0.0, Bulk::UpDown, true),
    ];
    let lp = long_path_grid(0);
    rows.iter()
        .enumerate()
        .map(|(i, &(rtt_ms, loss, bulk, bottleneck))| {
            let link = long_path(rtt_ms, loss, bottleneck);
            ProbeScenario {
                name: format!(
                    "{rtt_ms:>3} ms rtt loss {:>2}% {}",
                    (loss * 100.0).round(),
                    match (bulk, bottleneck) {
                        (Bulk::None, _) => "idle",
                        (Bulk::Down, false) => "bulk",
                        (Bulk::Up, false) => "bulk upload",
                        (Bulk::UpDown, _) => "up+down via 100 Mbit/1 MB",
                        (_, true) => "bulk via 100 Mbit/1 MB",
                    }
                ),
                client: lp[0].client.clone(),
                server: lp[0].server.clone(),
                up: link.clone(),
                down: link,
                probes: if bulk == Bulk::None {
                    probes
                } else {
                    (probes / 8).max(1)
                },
                gap: Duration::from_millis(20),
                bulk_down: matches!(bulk, Bulk::Down | Bulk::UpDown),
                bulk_up: matches!(bulk, Bulk::Up | Bulk::UpDown),
                seed: 0x6b63_7074_756e_2000 + i as u64,
            }
        })
        .collect()
}
