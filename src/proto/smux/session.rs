//! The smux session state machine (SPEC §5): frame parsing, stream table, control/data queues,
//! v2 windows, keep-alive.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::frame::{parse_upd, Cmd, Header, HEADER_LEN, UPD_LEN};
use super::stream::{trim, Stream};
use super::{
    Event, OpenError, ReadError, SessionError, SmuxConfig, StreamId, Version, WriteError,
    ACCEPT_BACKLOG, INITIAL_PEER_WINDOW,
};

/// Refusal FINs (for SYNs beyond the accept backlog) that may wait in the control queue; further
/// refused SYNs are dropped silently.
const MAX_REFUSALS: usize = 1024;

/// Receive-side parser position.
#[derive(Clone, Copy, Debug)]
enum Rx {
    /// Collecting the 8-byte header; `fill` bytes are in `hdr`.
    Header { fill: usize },
    /// Payload of a PSH: `remaining` bytes go to stream `sid` (`deliver`) or are discarded.
    Data {
        sid: StreamId,
        remaining: usize,
        deliver: bool,
    },
    /// Payload of an UPD; `fill` bytes in `upd`.
    Upd { sid: StreamId, fill: usize },
}

/// A queued control-class frame.
#[derive(Clone, Copy, Debug)]
enum Ctrl {
    Syn(StreamId),
    Upd(StreamId),
    Nop,
    /// FIN refusing a SYN beyond the backlog (the stream was never created).
    Refuse(StreamId),
}

/// One smux session over a reliable byte stream.
///
/// Call order (the session never reads a clock; `now` must not go backwards):
/// 1. `new(cfg, is_client, now)`.
/// 2. Inputs: while [`wants_input`](Self::wants_input), feed bytes read from the underlying stream
///    to [`handle_input`](Self::handle_input) and keep the unconsumed tail for later; call
///    [`handle_timeout`](Self::handle_timeout) when [`poll_timeout`](Self::poll_timeout) is reached
///    (early calls are harmless no-ops).
/// 3. Application commands: [`open`](Self::open), [`accept`](Self::accept), [`write`](Self::write),
///    [`read`](Self::read), [`shutdown_write`](Self::shutdown_write), [`close`](Self::close).
///    A `read` frees receive budget: check `wants_input` again afterwards.
/// 4. After any of the above: drain [`poll_transmit`](Self::poll_transmit) until `None` (each call
///    yields one whole frame; stop early if the underlying stream is full, the rest stays queued),
///    re-read `poll_timeout`, drain [`poll_event`](Self::poll_event).
///
/// Choices where Go smux versions differ or block:
/// * UPD on a v1 session: accepted (2021 smux applies it) and ignored, as v1 has no windows.
/// * SYN beyond the accept backlog ([`ACCEPT_BACKLOG`]): refused with a FIN for that id (the stream is
///   never created, its later frames are discarded as unknown). Up to 1024 refusals wait in the
///   queue; beyond that refused SYNs are dropped without a FIN. Go blocks its reader instead.
/// * PSH after the peer's FIN, or for a stream closed locally: discarded, not counted in the budget.
/// * `close()` sends the written data the peer's v2 window allows, drops the rest (as Go's Close
///   abandons writes blocked on the window; waiting could deadlock when both ends closed), then FIN.
///   `shutdown_write()` is the graceful end: FIN only after all data.
/// * v2 window: a peer with more than `max(max_stream_buffer, 262144)` bytes in flight beyond the
///   last UPD we transmitted kills the session with [`SessionError::WindowOverrun`].
/// * SYN/FIN/NOP with a nonzero length, UPD with length != 8, unknown cmd, wrong ver:
///   [`SessionError::InvalidProtocol`].
#[derive(Debug)]
pub struct Session {
    cfg: SmuxConfig,
    version: Option<Version>,
    /// Next id to open (already advanced past the previous).
    next_id: u32,
    streams: HashMap<StreamId, Stream>,
    backlog: VecDeque<StreamId>,
    ctrl: VecDeque<Ctrl>,
    refusals: usize,
    nop_queued: bool,
    /// Round-robin list of streams with a PSH/FIN to send.
    ready: VecDeque<StreamId>,
    events: VecDeque<Event>,
    rx: Rx,
    hdr: [u8; HEADER_LEN],
    upd: [u8; UPD_LEN],
    /// Sum of `rbuf.len()` over all streams.
    unread: usize,
    /// Sum of `sbuf.len()` over all streams.
    unsent: usize,
    send_cap: usize,
    dead: Option<SessionError>,
    next_nop: Option<Instant>,
    next_check: Option<Instant>,
    frame_since_check: bool,
}

impl Session {
    /// A new session. `cfg` is used as given except that `keepalive` is clamped to
    /// `keepalive_timeout` and zero sizes are raised to 1 (use [`SmuxConfig::validate`] to refuse them).
    pub fn new(mut cfg: SmuxConfig, is_client: bool, now: Instant) -> Self {
        if !cfg.keepalive_timeout.is_zero() && cfg.keepalive > cfg.keepalive_timeout {
            cfg.keepalive = cfg.keepalive_timeout;
        }
        cfg.max_frame_size = cfg.max_frame_size.max(1);
        cfg.max_receive_buffer = cfg.max_receive_buffer.max(1);
        cfg.max_stream_buffer = cfg.max_stream_buffer.max(1);
        let version = match (cfg.version, is_client) {
            (None, true) => Some(Version::V2),
            (v, _) => v,
        };
        let send_cap = (usize::from(cfg.max_frame_size) * 4).max(64 * 1024);
        let after = |d: Duration| (!d.is_zero()).then(|| now + d);
        Session {
            next_id: if is_client { 1 } else { 0 },
            version,
            streams: HashMap::new(),
            backlog: VecDeque::new(),
            ctrl: VecDeque::new(),
            refusals: 0,
            nop_queued: false,
            ready: VecDeque::new(),
            events: VecDeque::new(),
            rx: Rx::Header { fill: 0 },
            hdr: [0; HEADER_LEN],
            upd: [0; UPD_LEN],
            unread: 0,
            unsent: 0,
            send_cap,
            dead: None,
            next_nop: after(cfg.keepalive),
            next_check: after(cfg.keepalive_timeout),
            frame_since_check: false,
            cfg,
        }
    }

    // ---- getters ----

    /// The version spoken (`None` only on a server that has not yet seen a frame).
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Streams known to the session (including ones waiting for accept or for their FIN).
    pub fn num_streams(&self) -> usize {
        self.streams.len()
    }

    /// Whether the session died (protocol error or keep-alive timeout).
    pub fn is_dead(&self) -> bool {
        self.dead.is_some()
    }

    /// Why the session died.
    pub fn dead_reason(&self) -> Option<SessionError> {
        self.dead
    }

    /// Stream bytes queued by `write` and not yet framed.
    pub fn pending_send(&self) -> usize {
        self.unsent
    }

    /// Whether [`Session::poll_transmit`] may produce a frame now (cheap; lets a caller skip
    /// preparing a frame buffer).
    pub fn may_transmit(&self) -> bool {
        self.dead.is_none()
            && self.version.is_some()
            && (self.nop_queued || !self.ctrl.is_empty() || !self.ready.is_empty())
    }

    /// Gives back the capacity of empty stream buffers and queues (the session went quiet).
    pub fn release(&mut self) {
        for s in self.streams.values_mut() {
            if s.rbuf.is_empty() {
                s.rbuf = VecDeque::new();
            }
            if s.sbuf.is_empty() {
                s.sbuf = VecDeque::new();
            }
        }
        self.streams.shrink_to_fit();
        for q in [&mut self.backlog, &mut self.ready] {
            if q.is_empty() {
                *q = VecDeque::new();
            }
        }
        if self.ctrl.is_empty() {
            self.ctrl = VecDeque::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
    }

    /// Heap bytes held: the stream table, stream buffers and queues.
    pub fn heap_bytes(&self) -> usize {
        use crate::proto::mem::deque_bytes;
        // A hash table slot holds the entry plus one control byte.
        self.streams.capacity() * (std::mem::size_of::<(StreamId, Stream)>() + 1)
            + self
                .streams
                .values()
                .map(|s| deque_bytes(&s.rbuf) + deque_bytes(&s.sbuf))
                .sum::<usize>()
            + deque_bytes(&self.backlog)
            + deque_bytes(&self.ctrl)
            + deque_bytes(&self.ready)
            + deque_bytes(&self.events)
    }

    /// Bytes of stream data buffered in the session, both directions.
    pub fn buffered(&self) -> usize {
        self.unread + self.unsent
    }

    /// The per-stream send buffer bound: `write` accepts at most this many unsent bytes.
    pub fn send_capacity(&self) -> usize {
        self.send_cap
    }

    /// Whether `handle_input` would consume bytes now. False once the unread data of all streams
    /// reached `max_receive_buffer` (at a frame boundary) or the session is dead: the caller stops
    /// reading the underlying stream (back-pressure) until a `read` frees budget.
    pub fn wants_input(&self) -> bool {
        self.dead.is_none() && !self.paused()
    }

    fn paused(&self) -> bool {
        matches!(self.rx, Rx::Header { fill: 0 }) && self.unread >= self.cfg.max_receive_buffer
    }

    /// The next instant `handle_timeout` has work (NOP due or keep-alive check); `None` when dead.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.dead.is_some() {
            return None;
        }
        match (self.next_nop, self.next_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- inputs ----

    /// Feeds bytes read from the underlying stream; returns how many were consumed (less than
    /// `bytes.len()` only when the receive budget paused input: keep the rest and offer it again
    /// once `wants_input()`). An error kills the session; it is also reported as
    /// [`Event::SessionDead`] and returned by every later call.
    pub fn handle_input(&mut self, _now: Instant, bytes: &[u8]) -> Result<usize, SessionError> {
        if let Some(e) = self.dead {
            return Err(e);
        }
        let mut pos = 0;
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            match self.rx {
                Rx::Header { fill } => {
                    if fill == 0 && self.unread >= self.cfg.max_receive_buffer {
                        break;
                    }
                    let n = rest.len().min(HEADER_LEN - fill);
                    self.hdr[fill..fill + n].copy_from_slice(&rest[..n]);
                    pos += n;
                    if fill + n < HEADER_LEN {
                        self.rx = Rx::Header { fill: fill + n };
                    } else {
                        self.rx = Rx::Header { fill: 0 };
                        if let Err(e) = self.on_header() {
                            self.die(e);
                            return Err(e);
                        }
                    }
                }
                Rx::Data {
                    sid,
                    remaining,
                    deliver,
                } => {
                    let n = rest.len().min(remaining);
                    if deliver {
                        self.deliver(sid, &rest[..n]);
                    }
                    pos += n;
                    self.rx = if remaining == n {
                        Rx::Header { fill: 0 }
                    } else {
                        Rx::Data {
                            sid,
                            remaining: remaining - n,
                            deliver,
                        }
                    };
                }
                Rx::Upd { sid, fill } => {
                    let n = rest.len().min(UPD_LEN - fill);
                    self.upd[fill..fill + n].copy_from_slice(&rest[..n]);
                    pos += n;
                    if fill + n < UPD_LEN {
                        self.rx = Rx::Upd {
                            sid,
                            fill: fill + n,
                        };
                    } else {
                        self.rx = Rx::Header { fill: 0 };
                        let (consumed, window) = parse_upd(&self.upd);
                        self.on_upd(sid, consumed, window);
                    }
                }
            }
        }
        Ok(pos)
    }

    /// Validates a complete header and sets up the payload state.
    fn on_header(&mut self) -> Result<(), SessionError> {
        let h = Header::parse(&self.hdr);
        self.frame_since_check = true;
        match self.version {
            Some(v) if v.byte() != h.ver => return Err(SessionError::InvalidProtocol),
            Some(_) => {}
            None => match Version::from_byte(h.ver) {
                Some(v) => self.version = Some(v),
                None => return Err(SessionError::InvalidProtocol),
            },
        }
        let cmd = Cmd::from_u8(h.cmd).ok_or(SessionError::InvalidProtocol)?;
        let len = usize::from(h.length);
        match cmd {
            Cmd::Syn | Cmd::Fin | Cmd::Nop if len != 0 => Err(SessionError::InvalidProtocol),
            Cmd::Upd if len != UPD_LEN => Err(SessionError::InvalidProtocol),
            Cmd::Nop => Ok(()),
            Cmd::Syn => {
                self.on_syn(h.sid);
                Ok(())
            }
            Cmd::Fin => {
                self.on_fin(h.sid);
                Ok(())
            }
            Cmd::Upd => {
                self.rx = Rx::Upd {
                    sid: h.sid,
                    fill: 0,
                };
                Ok(())
            }
            Cmd::Psh => {
                if len == 0 {
                    return Ok(());
                }
                let v2 = self.version == Some(Version::V2);
                let limit = self.cfg.max_stream_buffer.max(INITIAL_PEER_WINDOW);
                let deliver = match self.streams.get_mut(&h.sid) {
                    Some(s) if !s.local_closed && !s.peer_fin => {
                        // len <= 65535, so the u32 conversion is exact.
                        let after = s.rcv_total.wrapping_add(len as u32);
                        if v2 && after.wrapping_sub(s.upd_sent_consumed) > limit {
                            return Err(SessionError::WindowOverrun);
                        }
                        s.rcv_total = after;
                        true
                    }
                    _ => false,
                };
                self.rx = Rx::Data {
                    sid: h.sid,
                    remaining: len,
                    deliver,
                };
                Ok(())
            }
        }
    }

    fn on_syn(&mut self, sid: StreamId) {
        if self.streams.contains_key(&sid) {
            return;
        }
        if self.backlog.len() >= ACCEPT_BACKLOG {
            if self.refusals < MAX_REFUSALS {
                self.refusals += 1;
                self.ctrl.push_back(Ctrl::Refuse(sid));
            }
            return;
        }
        self.streams.insert(sid, Stream::new());
        self.backlog.push_back(sid);
        self.events.push_back(Event::Accepted(sid));
    }

    fn on_fin(&mut self, sid: StreamId) {
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        if s.peer_fin {
            return;
        }
        s.peer_fin = true;
        if !s.local_closed {
            self.events.push_back(Event::Finished(sid));
        }
        let v2 = self.version == Some(Version::V2);
        if !s.in_ready && s.has_sendable(v2) {
            s.in_ready = true;
            self.ready.push_back(sid);
        }
        self.maybe_forget(sid);
    }

    fn deliver(&mut self, sid: StreamId, data: &[u8]) {
        // The stream may have been closed between two pieces of one frame.
        if let Some(s) = self.streams.get_mut(&sid).filter(|s| !s.local_closed) {
            s.rbuf.extend(data);
            self.unread += data.len();
            if !s.rd_notified {
                s.rd_notified = true;
                self.events.push_back(Event::Readable(sid));
            }
        }
    }

    fn on_upd(&mut self, sid: StreamId, consumed: u32, window: u32) {
        if self.version != Some(Version::V2) {
            return; // v1: accepted, nothing to apply.
        }
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        if s.broken {
            return;
        }
        if (s.num_written.wrapping_sub(consumed) as i32) < 0 {
            // Peer consumed more than sent: this stream's sending is broken.
            s.broken = true;
            self.unsent -= s.sbuf.len();
            s.sbuf.clear();
            s.sbuf.shrink_to_fit();
            if s.write_blocked {
                s.write_blocked = false;
                self.events.push_back(Event::Writable(sid));
            }
            return;
        }
        s.peer_consumed = consumed;
        s.peer_window = window;
        if !s.in_ready && s.has_sendable(true) {
            s.in_ready = true;
            self.ready.push_back(sid);
        }
    }

    /// Timer input: queues a NOP when due and runs the keep-alive check. Harmless when early.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dead.is_some() {
            return;
        }
        if let Some(t) = self.next_nop {
            if now >= t {
                self.nop_queued = true;
                self.next_nop = Some(now + self.cfg.keepalive);
            }
        }
        if let Some(t) = self.next_check {
            if now >= t {
                if !self.frame_since_check && !self.paused() {
                    self.die(SessionError::KeepaliveTimeout);
                    return;
                }
                self.frame_since_check = false;
                self.next_check = Some(now + self.cfg.keepalive_timeout);
            }
        }
    }

    fn die(&mut self, e: SessionError) {
        if self.dead.is_none() {
            self.dead = Some(e);
            self.events.push_back(Event::SessionDead(e));
            self.ctrl.clear();
            self.ready.clear();
            self.nop_queued = false;
            // Unsent data can never leave now; unread data stays readable.
            for s in self.streams.values_mut() {
                s.sbuf = VecDeque::new();
            }
            self.unsent = 0;
        }
    }

    // ---- application commands ----

    /// Opens a stream (client ids 3, 5, 7, …; server 2, 4, …) and queues its SYN.
    pub fn open(&mut self) -> Result<StreamId, OpenError> {
        if self.dead.is_some() {
            return Err(OpenError::SessionDead);
        }
        let id = self.next_id.checked_add(2).ok_or(OpenError::IdsExhausted)?;
        self.next_id = id;
        let mut s = Stream::new();
        s.syn_pending = true;
        self.streams.insert(id, s);
        self.ctrl.push_back(Ctrl::Syn(id));
        Ok(id)
    }

    /// The next stream opened by the peer, in SYN order.
    pub fn accept(&mut self) -> Option<StreamId> {
        while let Some(id) = self.backlog.pop_front() {
            if self.streams.get(&id).is_some_and(|s| !s.local_closed) {
                return Some(id);
            }
        }
        None
    }

    /// Queues up to `data.len()` bytes on stream `id`; returns how many were taken (0 only for
    /// empty `data`). `Blocked` when the stream's send buffer is full: an [`Event::Writable`]
    /// follows once frames left it.
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError> {
        let dead = self.dead.is_some();
        let v2 = self.version != Some(Version::V1);
        let Some(s) = self.streams.get_mut(&id) else {
            return Err(WriteError::UnknownStream);
        };
        if dead || s.fin_queued || s.local_closed {
            return Err(WriteError::Closed);
        }
        if s.broken {
            return Err(WriteError::ConsumedMoreThanSent);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.send_cap.saturating_sub(s.sbuf.len());
        if room == 0 {
            s.write_blocked = true;
            return Err(WriteError::Blocked);
        }
        let n = room.min(data.len());
        s.sbuf.extend(&data[..n]);
        self.unsent += n;
        if !s.in_ready && s.has_sendable(v2) {
            s.in_ready = true;
            self.ready.push_back(id);
        }
        Ok(n)
    }

    /// Reads buffered data of stream `id`. `Ok(0)` = the peer's FIN and everything read (EOF; also
    /// for an empty `out`). v2: queues UPD after the first read returning data and whenever the
    /// bytes read since the last UPD reach `max_stream_buffer / 4` (Go smux: / 2; reporting twice
    /// as often lets the peer keep more in flight on a long path, see SPEC §5.4).
    pub fn read(&mut self, id: StreamId, out: &mut [u8]) -> Result<usize, ReadError> {
        let v2 = self.version == Some(Version::V2);
        let dead = self.dead.is_some();
        let quarter = self.cfg.max_stream_buffer / 4;
        let Some(s) = self.streams.get_mut(&id) else {
            return Err(ReadError::UnknownStream);
        };
        if s.local_closed {
            return Err(ReadError::UnknownStream);
        }
        s.rd_notified = false;
        if out.is_empty() {
            return Ok(0);
        }
        if !s.rbuf.is_empty() {
            let n = out.len().min(s.rbuf.len());
            let (a, b) = s.rbuf.as_slices();
            let na = n.min(a.len());
            out[..na].copy_from_slice(&a[..na]);
            out[na..n].copy_from_slice(&b[..n - na]);
            s.rbuf.drain(..n);
            trim(&mut s.rbuf);
            self.unread -= n;
            if v2 && !dead {
                // n <= rbuf.len() <= budget + frame; Go truncates to u32 the same way.
                let n32 = n as u32;
                s.num_read = s.num_read.wrapping_add(n32);
                s.incr = s.incr.wrapping_add(n32);
                if s.incr >= quarter || s.num_read == n32 {
                    s.incr = 0;
                    if s.upd_queued.replace(s.num_read).is_none() {
                        self.ctrl.push_back(Ctrl::Upd(id));
                    }
                }
            }
            return Ok(n);
        }
        if s.peer_fin {
            s.eof_delivered = true;
            self.maybe_forget(id);
            return Ok(0);
        }
        if dead {
            return Err(ReadError::SessionDead);
        }
        Err(ReadError::WouldBlock)
    }

    /// Ends our direction of `id`: a FIN is sent after the data already written. Later writes fail
    /// with `Closed`; reading continues until the peer's FIN.
    pub fn shutdown_write(&mut self, id: StreamId) {
        let v2 = self.version != Some(Version::V1);
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.fin_queued {
            return;
        }
        s.fin_queued = true;
        if !s.in_ready && s.has_sendable(v2) {
            s.in_ready = true;
            self.ready.push_back(id);
        }
    }

    /// Closes both directions of `id`: unread data is dropped, incoming data discarded; written data
    /// goes out as far as the peer's v2 window allows now (the rest is dropped), then a FIN (if not
    /// sent yet). For a graceful end use [`shutdown_write`](Self::shutdown_write) and read to EOF
    /// first. The stream is forgotten once its FIN
    /// left ([`Event::Closed`]). On a dead session, or when the stream's SYN has not left yet, the
    /// stream is forgotten at once (unsent data dropped, nothing sent).
    pub fn close(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.local_closed {
            return;
        }
        s.local_closed = true;
        self.unread -= s.rbuf.len();
        s.rbuf = VecDeque::new();
        if self.dead.is_some() || s.syn_pending {
            // Dead session, or the peer never heard of the stream: no FIN to send.
            self.unsent -= s.sbuf.len();
            s.sbuf = VecDeque::new();
            s.fin_sent = true;
        }
        self.shutdown_write(id);
        self.schedule(id); // `abandoned` may have made window-held data droppable
        self.maybe_forget(id);
    }

    /// Puts `id` on the round-robin list if it has a PSH/FIN to send and is not listed yet.
    fn schedule(&mut self, id: StreamId) {
        let v2 = self.version != Some(Version::V1);
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.in_ready && s.has_sendable(v2) {
                s.in_ready = true;
                self.ready.push_back(id);
            }
        }
    }

    fn maybe_forget(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get(&id) {
            if s.finished() {
                if let Some(s) = self.streams.remove(&id) {
                    self.unread -= s.rbuf.len();
                    self.unsent -= s.sbuf.len();
                }
                self.events.push_back(Event::Closed(id));
            }
        }
    }
}

mod output;
#[cfg(test)]
mod tests;
