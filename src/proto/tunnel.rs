//! One tunnel session, sans-IO: smux over (snappy over) KCP over the datagram codec.
//!
//! A [`Tunnel`] is everything one KCP conversation needs on one side: the [`Outbound`]/[`Inbound`]
//! codec, the [`Kcp`] ARQ, the optional snappy framing and the smux [`Session`]. The event loop and
//! the deterministic simulator drive it the same way:
//!
//! * input: [`Tunnel::handle_datagram`] for every received UDP payload, [`Tunnel::handle_timeout`]
//!   when [`Tunnel::poll_timeout`] has passed, and the stream calls (`open`, `accept`, `read`,
//!   `write`, `shutdown_write`, `close`);
//! * output: after any input, drain [`Tunnel::poll_transmit`] until `None` (sending each datagram;
//!   a caller whose socket is full simply stops draining: nothing is lost, KCP only counts what was
//!   handed out), then drain [`Tunnel::poll_event`], then re-read [`Tunnel::poll_timeout`].
//!
//! Bytes move between the layers through three bounded buffers: one smux frame, the compressed
//! bytes of one frame waiting for KCP's send window, and one KCP read (plus its decompressed
//! output) waiting for smux's receive budget. Back-pressure therefore flows both ways: smux stops
//! producing frames while KCP's window is full, and KCP data stays in KCP (its receive window then
//! closes towards the peer) while smux's budget is exhausted.
//!
//! Liveness ([`Tunnel::liveness`]) adds what Go lacks: a peer that restarted (it answers with
//! `una` 0 behind our `snd_una` and repeats it when challenged, see `kcp::reset`) is dead within
//! a few round trips, and a peer silent for [`TunnelConfig::stale_after`] while data is
//! outstanding makes the session *stale*: no new streams go to it.

use std::time::{Duration, Instant};

use super::codec::{self, Inbound, Opened, Outbound};
use super::compress::{Compressor, Decompressor};
use super::crypt::Method;
use super::demux;
use super::fec::FecConfigError;
use super::kcp::{InputError, Kcp, KcpConfig};
use super::rng::Rng;
use super::smux::{self, Session, SmuxConfig, StreamId};
use super::snmp::Snmp;

pub use super::mem::HeapUsage;
pub use super::smux::{Event, OpenError, ReadError, WriteError};

/// Everything both ends of a tunnel session are configured with.
#[derive(Clone, Debug)]
pub struct TunnelConfig {
    pub method: Method,
    pub pass: [u8; 32],
    /// `(datashard, parityshard)`, `None` = FEC off.
    pub fec: Option<(usize, usize)>,
    /// Largest UDP payload we send (`--mtu`, at most 1500).
    pub udp_mtu: usize,
    /// KCP profile; its `mtu` is derived from `udp_mtu` and the pipeline.
    pub kcp: KcpConfig,
    /// snappy framing on the session byte stream (Go's default; `--nocomp` turns it off).
    pub compress: bool,
    pub smux: SmuxConfig,
    /// Silence (nothing received) with data outstanding after which the session takes no new streams.
    pub stale_after: Duration,
}

/// What became of one received datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Taken by the session (possibly as a duplicate or FEC material).
    Delivered,
    /// Failed the integrity check or was malformed; counted.
    Dropped,
    /// Authentic, but for another conversation (the peer started a new session from the same
    /// address): the caller decides whether to replace this session.
    ForeignConv(demux::Peek),
}

/// Why a session is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadReason {
    /// The peer answers with `una` 0 behind our `snd_una`, even when challenged: it restarted
    /// and lost this conversation.
    PeerRestarted,
    /// smux or snappy protocol error, or smux keep-alive timeout.
    Smux,
    /// The decompressor rejected the byte stream (`--nocomp` mismatch, or corruption).
    Compression,
}

impl std::fmt::Display for DeadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeadReason::PeerRestarted => "peer restarted (its acknowledgements went backwards)",
            DeadReason::Smux => "smux session closed (protocol error or keep-alive timeout)",
            DeadReason::Compression => {
                "snappy: corrupt input (check that --nocomp matches on both sides)"
            }
        })
    }
}

/// The health of a session as seen from its own side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Silent while data is outstanding: keep serving existing streams, open new ones elsewhere.
    Stale,
    Dead(DeadReason),
}

/// Segments of KCP's room a transfer leaves to whole small messages of other streams.
const RESERVE_SEGS: usize = crate::proto::kcp::SMALL_ROOM as usize;
/// Bytes of decoded session stream handed to smux per step; bounds the decompression buffer.
const RX_CHUNK: usize = 16 * 1024;
/// Decompressed bytes buffered for smux at most (one snappy chunk decodes to <= 64 KiB).
const DEC_LIMIT: usize = 64 * 1024;
/// Quiet (no datagram in or out) after which a session gives back the memory traffic needed.
pub const RELEASE_AFTER: Duration = Duration::from_secs(2);

/// One side of one tunnel session.
pub struct Tunnel {
    out: Outbound,
    inb: Inbound,
    kcp: Kcp,
    kcp_mtu: usize,
    /// `8 + max_frame_size`: the length of `frame` while it exists.
    max_frame: usize,
    comp: Option<Compressor>,
    decomp: Option<Decompressor>,
    smux: Session,
    /// One outgoing smux frame (allocated while the session sends).
    frame: Vec<u8>,
    /// Session-stream bytes (compressed if on) not yet accepted by KCP.
    txq: Vec<u8>,
    txq_off: usize,
    /// Bytes read from KCP not yet consumed (by the decompressor, or by smux without compression).
    rx: Vec<u8>,
    rx_off: usize,
    rx_len: usize,
    /// Decompressed bytes not yet consumed by smux.
    dec: Vec<u8>,
    dec_off: usize,
    dead: Option<DeadReason>,
    stale_after: Duration,
    /// Last datagram received or sent.
    last_active: Instant,
    /// Traffic since the last release: memory may be held that quiet gives back.
    holding: bool,
    stats: Snmp,
}

impl Tunnel {
    /// A session with conversation id `conv`. `is_client` picks smux stream ids and roles.
    pub fn new(
        cfg: &TunnelConfig,
        conv: u32,
        is_client: bool,
        rng: Rng,
        now: Instant,
    ) -> Result<Self, FecConfigError> {
        let (out, inb) = codec::pipeline(cfg.method, &cfg.pass, cfg.fec, rng, now)?;
        let kcp_mtu = codec::kcp_mtu(
            cfg.udp_mtu.min(codec::MTU_LIMIT),
            cfg.method,
            cfg.fec.is_some(),
        );
        let mut kcfg = cfg.kcp.clone();
        kcfg.mtu = kcp_mtu;
        let max_frame = 8 + cfg.smux.max_frame_size as usize;
        Ok(Tunnel {
            out,
            inb,
            kcp: Kcp::new(conv, &kcfg, now),
            kcp_mtu,
            max_frame,
            comp: cfg.compress.then(Compressor::new),
            decomp: cfg.compress.then(Decompressor::new),
            smux: Session::new(cfg.smux.clone(), is_client, now),
            frame: Vec::new(),
            txq: Vec::new(),
            txq_off: 0,
            rx: Vec::new(),
            rx_off: 0,
            rx_len: 0,
            dec: Vec::new(),
            dec_off: 0,
            dead: None,
            stale_after: cfg.stale_after,
            last_active: now,
            holding: false,
            stats: Snmp::default(),
        })
    }

    /// The KCP conversation id.
    /// The KCP state machine underneath (read-only: windows, RTT, queues).
    pub fn kcp(&self) -> &Kcp {
        &self.kcp
    }

    pub fn conv(&self) -> u32 {
        self.kcp.conv()
    }

    /// Feeds one received UDP payload (opened in place). Undecryptable or malformed datagrams are
    /// dropped and counted, never an error for the caller.
    pub fn handle_datagram(&mut self, now: Instant, dgram: &mut [u8]) -> Input {
        self.active(now);
        let r = match self.inb.open(dgram) {
            Ok(opened) => Self::input_kcp(&mut self.kcp, now, opened),
            Err(_) => Input::Dropped,
        };
        self.after_input(now);
        r
    }

    /// Feeds a datagram whose crypto layer was already removed (by a server's listener).
    pub fn handle_opened(&mut self, now: Instant, payload: &[u8]) -> Input {
        self.active(now);
        let r = match self.inb.accept(payload) {
            Ok(opened) => Self::input_kcp(&mut self.kcp, now, opened),
            Err(_) => Input::Dropped,
        };
        self.after_input(now);
        r
    }

    fn input_kcp(kcp: &mut Kcp, now: Instant, opened: Opened<'_>) -> Input {
        match opened {
            Opened::Kcp(bytes) => match kcp.handle_packet(now, bytes, false) {
                Ok(()) => Input::Delivered,
                // Only a datagram that starts with another conv belongs to another conversation;
                // our segment followed by a foreign one is malformed (counted by Kcp).
                Err(InputError::ConvMismatch) => match demux::peek_kcp(bytes) {
                    Some(p) if p.conv != kcp.conv() => Input::ForeignConv(p),
                    _ => Input::Dropped,
                },
                // Kcp counts KCPInErrors itself.
                Err(_) => Input::Dropped,
            },
            Opened::Nothing => Input::Delivered,
        }
    }

    fn after_input(&mut self, now: Instant) {
        while let Some(r) = self.inb.poll_recovered() {
            // Errors are counted in KCPInErrors by Kcp itself.
            let _ = self.kcp.handle_packet(now, r, true);
        }
        self.pump_rx(now);
    }

    /// Fires the timers that are due (KCP flush/RTO/probe, smux keep-alive, the release of
    /// memory after [`RELEASE_AFTER`] of quiet).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.kcp.handle_timeout(now);
        self.smux.handle_timeout(now);
        self.pump_rx(now);
        if self.holding && now >= self.last_active + RELEASE_AFTER {
            self.release();
        }
    }

    /// The next instant [`Tunnel::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.kcp.poll_timeout(),
            self.smux.poll_timeout(),
            self.holding.then(|| self.last_active + RELEASE_AFTER),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Traffic since the last release: buffers sized for it may be held until
    /// [`RELEASE_AFTER`] of quiet has passed (a caller can give back its own per-session
    /// buffers when this turns false).
    pub fn holds_traffic_memory(&self) -> bool {
        self.holding
    }

    /// A datagram came in or went out: memory may be in use until the session is quiet again.
    fn active(&mut self, now: Instant) {
        self.last_active = now;
        self.holding = true;
    }

    /// Gives back what only traffic needs: empty staging buffers, compression state, KCP's spare
    /// segment buffers and empty rings, FEC group buffers, smux's empty stream buffers. Whatever
    /// still holds data is kept. Everything is rebuilt on demand by the next traffic.
    fn release(&mut self) {
        self.holding = false;
        self.frame = Vec::new();
        if self.txq_off >= self.txq.len() {
            self.txq = Vec::new();
            self.txq_off = 0;
        }
        if self.rx_off >= self.rx_len {
            self.rx = Vec::new();
            self.rx_off = 0;
            self.rx_len = 0;
        }
        if self.dec_off >= self.dec.len() {
            self.dec = Vec::new();
            self.dec_off = 0;
        }
        if let Some(c) = &mut self.comp {
            c.release();
        }
        if let Some(d) = &mut self.decomp {
            d.release();
        }
        self.kcp.release();
        self.out.release();
        self.inb.release();
        self.smux.release();
    }

    /// Writes the next UDP payload into `out` (at least [`codec::MTU_LIMIT`] bytes) and returns its
    /// length; `None` when nothing is due. Parity datagrams follow the data datagram that
    /// completed their group.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if let Some(n) = self.out.poll_parity(out) {
            return Some(n);
        }
        self.pump_tx(now);
        let h = self.out.headroom();
        let n = self.kcp.poll_transmit(now, &mut out[h..h + self.kcp_mtu])?;
        self.active(now);
        Some(self.out.seal(now, out, n))
    }

    /// Moves smux frames into KCP while KCP's send window has room.
    fn pump_tx(&mut self, now: Instant) {
        loop {
            if self.txq_off < self.txq.len() {
                let n = self.kcp.send(&self.txq[self.txq_off..]);
                self.txq_off += n;
                self.stats.bytes_sent += n as u64;
                if self.txq_off < self.txq.len() {
                    return;
                }
                self.txq.clear();
                self.txq_off = 0;
            }
            if !self.kcp.can_send() {
                return;
            }
            if !self.smux.may_transmit() {
                return;
            }
            // With more than one stream, a transfer leaves the last RESERVE_SEGS segments of
            // KCP's window to messages that fit whole, so that a request or an answer beside a
            // window-bound transfer leaves with the next flush instead of a round trip later,
            // when ACKs open the window again. One stream, or a path whose round trip is shorter
            // than a flush interval (waiting for the window costs less than a flush there):
            // frames as large as smux makes them (what KCP cannot take yet waits in `txq`).
            let (limit, small_only) = if self.smux.num_streams() > 1 && self.kcp.long_path() {
                let room = self.kcp.send_room();
                let bulk = self
                    .kcp
                    .window_room()
                    .saturating_sub(RESERVE_SEGS * self.kcp.mss());
                if bulk >= self.kcp.mss() {
                    (bulk, false)
                } else {
                    (room, true)
                }
            } else {
                (self.max_frame, false)
            };
            // Big enough for the next frame (control frames need 16 bytes); grows to one full
            // frame while streams have data queued.
            let need = (16 + self.smux.pending_send()).min(self.max_frame);
            if self.frame.len() < need {
                let grown = need.max(2 * self.frame.len()).min(self.max_frame);
                self.frame.resize(grown, 0);
            }
            let end = limit.min(self.frame.len());
            let out = &mut self.frame[..end];
            let polled = if small_only {
                self.smux.poll_transmit_small(now, out)
            } else {
                self.smux.poll_transmit(now, out)
            };
            let Some(n) = polled else {
                return;
            };
            match &mut self.comp {
                Some(c) => c.compress(&self.frame[..n], &mut self.txq),
                None => {
                    let sent = self.kcp.send(&self.frame[..n]);
                    self.stats.bytes_sent += sent as u64;
                    self.txq.extend_from_slice(&self.frame[sent..n]);
                }
            }
        }
    }

    /// Moves received session bytes from KCP into smux while smux's receive budget has room.
    fn pump_rx(&mut self, now: Instant) {
        while self.dead.is_none() {
            // Decompressed bytes first.
            if self.dec_off < self.dec.len() {
                if !self.smux.wants_input() {
                    return;
                }
                match self.smux.handle_input(now, &self.dec[self.dec_off..]) {
                    Ok(0) => return,
                    Ok(n) => self.dec_off += n,
                    Err(_) => {
                        self.dead = Some(DeadReason::Smux);
                        return;
                    }
                }
                if self.dec_off == self.dec.len() {
                    self.dec.clear();
                    self.dec_off = 0;
                }
                continue;
            }
            // Then raw bytes already read from KCP.
            if self.rx_off < self.rx_len {
                let raw = &self.rx[self.rx_off..self.rx_len];
                let consumed = match &mut self.decomp {
                    Some(d) => match d.decompress(raw, &mut self.dec, DEC_LIMIT) {
                        Ok(n) => n,
                        Err(_) => {
                            self.dead = Some(DeadReason::Compression);
                            return;
                        }
                    },
                    None => {
                        if !self.smux.wants_input() {
                            return;
                        }
                        match self.smux.handle_input(now, raw) {
                            Ok(n) => n,
                            Err(_) => {
                                self.dead = Some(DeadReason::Smux);
                                return;
                            }
                        }
                    }
                };
                self.rx_off += consumed;
                if consumed == 0 && self.dec_off >= self.dec.len() {
                    return;
                }
                continue;
            }
            // Finally, read more from KCP.
            if self.kcp.readable() == 0 {
                return;
            }
            // Sized to what is ready (a keep-alive needs a few bytes), up to one full chunk.
            let need = self.kcp.readable().clamp(256, RX_CHUNK);
            if self.rx.len() < need {
                let grown = need.max(2 * self.rx.len()).min(RX_CHUNK);
                self.rx.resize(grown, 0);
            }
            let n = self.kcp.recv(&mut self.rx);
            if n == 0 {
                return;
            }
            self.stats.bytes_received += n as u64;
            self.rx_off = 0;
            self.rx_len = n;
        }
    }

    /// When this session turns [`Liveness::Stale`] if the peer stays silent (only while data is
    /// outstanding); a loop that acts on staleness wakes the session then.
    pub fn stale_at(&self) -> Option<Instant> {
        (self.kcp.unacked() > 0)
            .then(|| self.kcp.last_recv_at().max(self.kcp.last_progress_at()) + self.stale_after)
    }

    /// Health of this session (see the module docs).
    pub fn liveness(&self, now: Instant) -> Liveness {
        if let Some(r) = self.dead {
            return Liveness::Dead(r);
        }
        if self.kcp.una_regressions() > 0 {
            return Liveness::Dead(DeadReason::PeerRestarted);
        }
        if self.smux.is_dead() {
            return Liveness::Dead(DeadReason::Smux);
        }
        if self.kcp.unacked() > 0 {
            let since = self.kcp.last_recv_at().max(self.kcp.last_progress_at());
            if now.saturating_duration_since(since) >= self.stale_after {
                return Liveness::Stale;
            }
        }
        Liveness::Alive
    }

    // ---- streams ----

    /// Opens a stream (client side).
    pub fn open(&mut self) -> Result<StreamId, OpenError> {
        self.smux.open()
    }

    /// The next stream the peer opened (server side).
    pub fn accept(&mut self) -> Option<StreamId> {
        self.smux.accept()
    }

    /// Reads stream data; `Ok(0)` is the peer's FIN.
    pub fn read(&mut self, now: Instant, id: StreamId, out: &mut [u8]) -> Result<usize, ReadError> {
        let r = self.smux.read(id, out);
        self.pump_rx(now);
        r
    }

    /// Queues stream data; `Err(WriteError::Blocked)` means a `Writable` event will follow.
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError> {
        self.smux.write(id, data)
    }

    /// Ends our direction of the stream (smux FIN after its data).
    pub fn shutdown_write(&mut self, id: StreamId) {
        self.smux.shutdown_write(id)
    }

    /// Closes the stream in both directions.
    pub fn close(&mut self, id: StreamId) {
        self.smux.close(id)
    }

    /// The next stream or session event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.smux.poll_event()
    }

    /// Streams open on this session.
    pub fn num_streams(&self) -> usize {
        self.smux.num_streams()
    }

    /// The smux version in use (a server learns it from the peer's first frame).
    pub fn smux_version(&self) -> Option<smux::Version> {
        self.smux.version()
    }

    /// All counters of this session's layers.
    pub fn stats(&self) -> Snmp {
        let mut s = self.stats;
        s.add(&self.out.stats());
        s.add(&self.inb.stats());
        s.add(self.kcp.stats());
        s
    }

    /// Heap bytes this session holds, by layer (see [`HeapUsage`]). The `Tunnel` value itself
    /// (its inline state) is counted under `buffers`.
    pub fn heap_usage(&self) -> HeapUsage {
        use super::mem::vec_bytes;
        let (crypt_out, fec_enc) = self.out.heap_bytes();
        let (crypt_in, fec_dec) = self.inb.heap_bytes();
        HeapUsage {
            kcp: self.kcp.heap_bytes(),
            fec_enc,
            fec_dec,
            crypt: crypt_out + crypt_in,
            compress: self.comp.as_ref().map_or(0, Compressor::heap_bytes)
                + self.decomp.as_ref().map_or(0, Decompressor::heap_bytes),
            smux: self.smux.heap_bytes(),
            buffers: std::mem::size_of::<Self>()
                + vec_bytes(&self.frame)
                + vec_bytes(&self.txq)
                + vec_bytes(&self.rx)
                + vec_bytes(&self.dec),
        }
    }

    /// Changes the KCP settings (a server applies them after creating the session from a datagram).
    pub fn set_kcp_config(&mut self, cfg: &KcpConfig) {
        let mut c = cfg.clone();
        c.mtu = self.kcp_mtu;
        self.kcp.set_config(&c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sim::kcptun_config;

    fn seg(conv: u32, cmd: u8, sn: u32, data: &[u8]) -> Vec<u8> {
        let mut s = conv.to_le_bytes().to_vec();
        s.extend_from_slice(&[cmd, 0, 0, 4, 0, 0, 0, 0]);
        s.extend_from_slice(&sn.to_le_bytes());
        s.extend_from_slice(&0u32.to_le_bytes());
        s.extend_from_slice(&(data.len() as u32).to_le_bytes());
        s.extend_from_slice(data);
        s
    }

    /// Fuzz regression (datagram_open): a datagram whose first segment is ours (a PUSH with
    /// sn 0) and whose second carries another conv was reported as `ForeignConv` with *our*
    /// conv and `starts_conversation`, which makes the server replace the live session.
    #[test]
    fn our_segment_then_foreign_one_is_dropped_not_foreign() {
        let now = crate::test_clock::origin();
        let mut cfg = kcptun_config("fast3", false, false);
        cfg.method = Method::Null;
        let mut t = Tunnel::new(&cfg, 7, false, Rng::from_seed([1; 32]), now).unwrap();
        let mut d = seg(7, 81, 0, b"x");
        d.extend(seg(9, 81, 0, b""));
        assert_eq!(t.handle_datagram(now, &mut d), Input::Dropped);
        assert_eq!(t.stats().kcp_in_errors, 1);
        // A datagram that is another conversation's from its first segment still is.
        let mut d = seg(9, 81, 0, b"");
        assert!(matches!(
            t.handle_datagram(now, &mut d),
            Input::ForeignConv(demux::Peek {
                conv: 9,
                starts_conversation: true
            })
        ));
    }

    /// After traffic a session holds buffers; RELEASE_AFTER of quiet later its deadline fires
    /// and gives them back, and the session still carries data afterwards.
    #[test]
    fn quiet_session_releases_its_buffers_at_its_deadline() {
        let t0 = crate::test_clock::origin();
        let ccfg = kcptun_config("fast3", true, true);
        let scfg = kcptun_config("fast3", true, false);
        let mut c = Tunnel::new(&ccfg, 5, true, Rng::from_seed([1; 32]), t0).unwrap();
        let mut s = Tunnel::new(&scfg, 5, false, Rng::from_seed([2; 32]), t0).unwrap();
        let mut buf = vec![0u8; codec::MTU_LIMIT];
        let mut app = vec![0u8; 64 * 1024];
        let id = c.open().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 13) as u8).collect();
        let mut now = t0;
        let mut sid = None;
        let mut run = |c: &mut Tunnel, s: &mut Tunnel, now: Instant, want: usize| {
            let mut got = 0;
            for _ in 0..10_000 {
                while let Some(n) = c.poll_transmit(now, &mut buf) {
                    s.handle_datagram(now, &mut buf[..n]);
                }
                while let Some(n) = s.poll_transmit(now, &mut buf) {
                    c.handle_datagram(now, &mut buf[..n]);
                }
                sid = sid.or_else(|| s.accept());
                if let Some(sid) = sid {
                    while let Ok(n) = s.read(now, sid, &mut app) {
                        if n == 0 {
                            break;
                        }
                        got += n;
                    }
                }
                if got >= want {
                    break;
                }
                c.handle_timeout(now + Duration::from_millis(10));
                s.handle_timeout(now + Duration::from_millis(10));
            }
            got
        };
        let mut sent = 0;
        while sent < data.len() {
            match c.write(id, &data[sent..]) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        assert_eq!(run(&mut c, &mut s, now, sent), sent);
        let busy = s.heap_usage().total();
        assert!(s.holds_traffic_memory());
        let due = s.poll_timeout().expect("a release deadline");
        assert!(due <= now + RELEASE_AFTER);
        // Quiet: fire every deadline up to well past the release.
        let mut out = vec![0u8; codec::MTU_LIMIT];
        let end = now + RELEASE_AFTER + Duration::from_millis(500);
        loop {
            let next = [c.poll_timeout(), s.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next.filter(|&t| t <= end) else {
                break;
            };
            now = t.max(now);
            c.handle_timeout(now);
            s.handle_timeout(now);
            // Whatever either side still says (ACKs, window updates) reaches the other.
            while let Some(n) = c.poll_transmit(now, &mut out) {
                s.handle_datagram(now, &mut out[..n]);
            }
            while let Some(n) = s.poll_transmit(now, &mut out) {
                c.handle_datagram(now, &mut out[..n]);
            }
        }
        assert!(!s.holds_traffic_memory());
        let quiet = s.heap_usage().total();
        assert!(
            quiet * 4 < busy,
            "released {busy} -> {quiet} bytes: too little given back"
        );
        // And it still works.
        now = end;
        c.write(id, b"again").unwrap();
        assert_eq!(run(&mut c, &mut s, now, 5), 5);
    }
}
