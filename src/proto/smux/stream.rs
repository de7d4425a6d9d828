//! Per-stream state of an smux session: bounded receive/send buffers, half-close flags and the v2
//! flow-control counters (SPEC §5.4).
//!
//! Invariants (all counters mod 2^32, as in Go):
//! * `num_written` = PSH payload bytes handed to `poll_transmit`; the peer has acknowledged
//!   `peer_consumed` of them and allows `peer_window` in flight.
//! * `rcv_total` = PSH payload bytes accepted from the peer; `num_read` of them were read by the
//!   application; `upd_sent_consumed` is the `consumed` of the last UPD actually transmitted.
//! * `rbuf.len()` counts against the session budget; `sbuf.len() <= send_cap`.

use std::collections::VecDeque;

/// Capacity a stream buffer may keep regardless of its fill level.
const KEEP_CAPACITY: usize = 16 * 1024;

/// Releases memory of a buffer whose capacity is far above its fill level (after a burst), so that
/// idle streams hold at most [`KEEP_CAPACITY`] each. Amortised: after trimming to twice the fill,
/// the next trim needs at least half of that read first.
pub(crate) fn trim(buf: &mut VecDeque<u8>) {
    let len = buf.len();
    if buf.capacity() > KEEP_CAPACITY.max(4 * len) {
        buf.shrink_to((2 * len).max(KEEP_CAPACITY / 2));
    }
}

/// State of one stream.
#[derive(Debug)]
pub(crate) struct Stream {
    pub rbuf: VecDeque<u8>,
    pub sbuf: VecDeque<u8>,
    // v2 sender side
    pub num_written: u32,
    pub peer_consumed: u32,
    pub peer_window: u32,
    // v2 receiver side
    pub rcv_total: u32,
    pub num_read: u32,
    pub incr: u32,
    pub upd_sent_consumed: u32,
    /// `Some(consumed)` while an UPD for this stream is queued.
    pub upd_queued: Option<u32>,
    /// Opened here and the SYN not transmitted yet.
    pub syn_pending: bool,
    /// Peer sent FIN: the read direction ends after `rbuf`.
    pub peer_fin: bool,
    /// `read` returned `Ok(0)`.
    pub eof_delivered: bool,
    /// `shutdown_write`/`close` asked for a FIN after `sbuf`.
    pub fin_queued: bool,
    pub fin_sent: bool,
    /// `close()` called: unread data dropped, incoming data discarded.
    pub local_closed: bool,
    /// v2: peer acknowledged more than we sent.
    pub broken: bool,
    /// Member of the session's round-robin list of streams with something to send.
    pub in_ready: bool,
    /// `write` returned `Blocked`; a `Writable` event is owed.
    pub write_blocked: bool,
    /// A `Readable` event was emitted and no `read` happened since.
    pub rd_notified: bool,
}

impl Stream {
    pub fn new() -> Self {
        Stream {
            rbuf: VecDeque::new(),
            sbuf: VecDeque::new(),
            num_written: 0,
            peer_consumed: 0,
            peer_window: super::INITIAL_PEER_WINDOW,
            rcv_total: 0,
            num_read: 0,
            incr: 0,
            upd_sent_consumed: 0,
            upd_queued: None,
            syn_pending: false,
            peer_fin: false,
            eof_delivered: false,
            fin_queued: false,
            fin_sent: false,
            local_closed: false,
            broken: false,
            in_ready: false,
            write_blocked: false,
            rd_notified: false,
        }
    }

    /// v2: bytes the window lets us send now (0 when in flight >= window, or when broken).
    pub fn window_room(&self) -> usize {
        let inflight = self.num_written.wrapping_sub(self.peer_consumed) as i32;
        if inflight < 0 {
            return 0;
        }
        let room = i64::from(self.peer_window) - i64::from(inflight);
        usize::try_from(room.max(0)).unwrap_or(0)
    }

    /// Whether `poll_transmit` could produce a data-class frame (PSH or FIN) for this stream now.
    pub fn has_sendable(&self, v2: bool) -> bool {
        if !self.sbuf.is_empty() {
            return !v2 || self.window_room() > 0 || self.abandoned();
        }
        self.fin_queued && !self.fin_sent
    }

    /// Whether everything this stream has to send (its data, or its FIN) goes in one frame of
    /// `cap` payload bytes now.
    pub fn sendable_whole(&self, cap: usize, v2: bool) -> bool {
        if !self.sbuf.is_empty() {
            return self.sbuf.len() <= cap && (!v2 || self.window_room() >= self.sbuf.len());
        }
        self.fin_queued && !self.fin_sent
    }

    /// Closed here: v2 data the peer's window holds back is dropped and the FIN goes out (Go smux's
    /// Close likewise abandons writes blocked on the window). Waiting instead could deadlock: a
    /// peer that closed too sends no more UPDs.
    pub fn abandoned(&self) -> bool {
        self.local_closed && !self.fin_sent
    }

    /// Both directions done: the stream can be forgotten.
    pub fn finished(&self) -> bool {
        self.fin_sent && (self.local_closed || (self.peer_fin && self.eof_delivered))
    }
}
