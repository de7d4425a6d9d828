//! The KCP state machine ([`Kcp`]); see the module doc of `kcp` for invariants and call order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod buffers;
mod delay;
mod flush;
mod inflight;
mod input;
mod loss;
mod min_rtt;
mod repair;

use self::delay::DelayWindow;
use self::flush::{Plan, Want};
use self::inflight::InflightCap;
use self::loss::LossGauge;
use self::min_rtt::MinRtt;
use super::reset::PeerReset;
use super::segment::OVERHEAD;
use super::{KcpConfig, Ms};
use crate::proto::snmp::Snmp;

const RTO_MIN_NODELAY: u32 = 30;
const RTO_MIN: u32 = 100;
const RTO_DEFAULT: u32 = 200;
const RTO_MAX: u32 = 60_000;
const THRESH_INIT: u32 = 2;
const THRESH_MIN: u32 = 2;
const PROBE_INIT: u32 = 500;
const PROBE_LIMIT: u32 = 120_000;
/// Unsent segments [`Kcp::can_send`] accepts beyond the in-flight cap.
const QUEUE_MARGIN: u32 = 16;
/// Segments of the send window a transfer beside other streams leaves free for their small
/// messages (`tunnel`'s reserve; see [`Kcp::window_room`]).
pub const SMALL_ROOM: u32 = 2;
/// Per-segment RTO is kept below this so that wrapping time comparisons stay meaningful.
const SEG_RTO_CAP: u32 = 0x3FFF_FFFF;

/// One numbered, possibly in-flight segment (`snd_buf`).
#[derive(Debug)]
struct SndSeg {
    sn: u32,
    /// Our clock at the last transmission (echoed back by the ACK).
    ts: u32,
    resend_at: Ms,
    rto: u32,
    fastack: u32,
    xmit: u32,
    acked: bool,
    /// Our microsecond clock at the last transmission (local only; see `inflight`).
    sent_us: u32,
    data: Vec<u8>,
}

/// One KCP conversation (stream mode).
///
/// Methods come in four kinds: getters (`&self`: [`Kcp::readable`], [`Kcp::wait_snd`],
/// [`Kcp::stats`], the liveness signals…); network and timer input ([`Kcp::handle_packet`],
/// [`Kcp::handle_timeout`]); application commands ([`Kcp::send`], [`Kcp::recv`],
/// [`Kcp::set_config`]); and outputs ([`Kcp::poll_transmit`], [`Kcp::poll_timeout`]). After any
/// input or command, drain `poll_transmit` until `None`, then read `poll_timeout` and call
/// `handle_timeout` once it passes (early calls are no-ops). `now` must not go backwards.
/// `poll_transmit` changes after: `send` (data to flush), `handle_packet` (ACKs to send,
/// cumulative progress or a fast retransmit due), `handle_timeout` (interval flush: RTOs, probes,
/// window-limited data). `poll_timeout` is `None` while idle.
#[derive(Debug)]
pub struct Kcp {
    conv: u32,
    mtu: usize,
    mss: usize,
    snd_wnd: u32,
    rcv_wnd: u32,
    /// Peer's advertised free window (segments).
    rmt_wnd: u32,
    cwnd: u32,
    ssthresh: u32,
    incr: u32,
    interval: u32,
    nodelay: bool,
    fastresend: u32,
    nocwnd: bool,
    /// [`KcpConfig::dup_lone`].
    dup_lone: bool,
    /// [`KcpConfig::repair_ahead`].
    repair_ahead: bool,
    /// Datagrams from the peer that FEC rebuilt, among those that arrived (see `loss`).
    rx_loss: LossGauge,
    /// Our retransmissions after a loss, among the segments we sent (see `loss`).
    tx_loss: LossGauge,
    /// Segments the flush in progress sends once more, each in a datagram of its own (lone ones
    /// and repairs; see `flush`). Kept between flushes for its capacity.
    dup_sns: Vec<u32>,
    /// How far past `snd_una` the window counted from at the last flush (see `repair`): the
    /// extra room [`Kcp::can_send`] gives.
    ahead: u32,
    /// The path's own round trip, ms (repair ahead, the delay window).
    min_rtt: MinRtt<i32>,
    /// [`KcpConfig::short_path_cap`].
    inflight: Option<InflightCap>,
    /// [`KcpConfig::delay_window`].
    delay: Option<DelayWindow>,
    /// Doublings of the RTO (Karn's backoff, with the delay window only): RTO retransmissions
    /// came without a valid RTT sample in between.
    rto_backoff: u32,
    sampled_since_rto: bool,
    ack_nodelay: bool,
    rx_minrto: u32,

    /// Oldest unacknowledged sn: every sn below it is acknowledged (= `snd_buf[0].sn`).
    snd_una: u32,
    /// Next sn to assign; `snd_nxt - snd_una == snd_buf.len()`.
    snd_nxt: u32,
    /// Every segment in `snd_una..sent_nxt` has been transmitted at least once; the never
    /// transmitted ones are exactly the tail `sent_nxt..snd_nxt` (flushes send in sn order).
    sent_nxt: u32,
    /// A lower bound on `resend_at` of every transmitted unacknowledged segment (`None`:
    /// unknown). Lets a full flush skip the transmitted head of `snd_buf` when nothing there can
    /// be due: the common case of a flush triggered by a write or an ACK.
    resend_hint: Option<Ms>,
    /// Some unacknowledged segment may hold fastack > 0 (fast/early retransmit pending).
    fastack_pending: bool,
    /// Bumped whenever `fastack_pending` is set.
    fastack_epoch: u64,
    /// Flushes that jumped over the transmitted head (tests).
    #[cfg(test)]
    pub(super) jumps: u64,
    /// Next in-order sn expected from the peer; everything below went to `rcv_queue`.
    rcv_nxt: u32,

    rx_srtt: i32,
    rx_rttvar: i32,
    rx_rto: u32,

    probe_wait: u32,
    ts_probe: Ms,
    ask_send: bool,
    ask_tell: bool,

    /// Unnumbered data, each at most `mss` bytes.
    snd_queue: VecDeque<Vec<u8>>,
    snd_buf: VecDeque<SndSeg>,
    /// Out-of-order receive ring, slot `(rcv_head + (sn - rcv_nxt)) % rcv_wnd`; empty (no slots)
    /// until a segment arrives out of order and again after [`Kcp::release`] found it empty.
    rcv_ring: Vec<Option<Vec<u8>>>,
    rcv_head: usize,
    /// In-order data ready for `recv`; `rcv_off` bytes of the front are already read.
    rcv_queue: VecDeque<Vec<u8>>,
    rcv_off: usize,
    readable: usize,
    /// Pending (sn, ts) to acknowledge.
    acklist: Vec<(u32, u32)>,
    /// ACKs `(sn, ts)` of the datagram being read, for the batched duplicate-ACK count.
    ack_batch: Vec<(u32, u32)>,
    /// Scratch for [`Kcp::apply_fastacks`].
    ts_scratch: Vec<i32>,
    /// Free segment buffers.
    pool: Vec<Vec<u8>>,

    created: Instant,
    next_flush_at: Instant,
    want: Want,
    plan: Option<Plan>,

    stats: Snmp,
    last_recv_at: Instant,
    last_progress_at: Instant,
    peer_reset: PeerReset,
}

impl Kcp {
    /// A new conversation; `now` is the origin of its millisecond clock.
    pub fn new(conv: u32, cfg: &KcpConfig, now: Instant) -> Self {
        let mut k = Kcp {
            conv,
            mtu: 1400,
            mss: 1400 - OVERHEAD,
            snd_wnd: 32,
            rcv_wnd: 32,
            rmt_wnd: 32,
            cwnd: 0,
            ssthresh: THRESH_INIT,
            incr: 0,
            interval: 100,
            nodelay: false,
            fastresend: 0,
            nocwnd: false,
            dup_lone: true,
            repair_ahead: false,
            rx_loss: LossGauge::default(),
            tx_loss: LossGauge::default(),
            dup_sns: Vec::new(),
            ahead: 0,
            min_rtt: MinRtt::default(),
            inflight: None,
            delay: None,
            rto_backoff: 0,
            sampled_since_rto: true,
            ack_nodelay: false,
            rx_minrto: RTO_MIN,
            snd_una: 0,
            snd_nxt: 0,
            sent_nxt: 0,
            resend_hint: None,
            fastack_pending: false,
            fastack_epoch: 0,
            #[cfg(test)]
            jumps: 0,
            rcv_nxt: 0,
            rx_srtt: 0,
            rx_rttvar: 0,
            rx_rto: RTO_DEFAULT,
            probe_wait: 0,
            ts_probe: Ms(0),
            ask_send: false,
            ask_tell: false,
            snd_queue: VecDeque::new(),
            snd_buf: VecDeque::new(),
            rcv_ring: Vec::new(),
            rcv_head: 0,
            rcv_queue: VecDeque::new(),
            rcv_off: 0,
            readable: 0,
            acklist: Vec::new(),
            ack_batch: Vec::new(),
            ts_scratch: Vec::new(),
            pool: Vec::new(),
            created: now,
            next_flush_at: now,
            want: Want::default(),
            plan: None,
            stats: Snmp::default(),
            last_recv_at: now,
            last_progress_at: now,
            peer_reset: PeerReset::default(),
        };
        k.set_config(cfg);
        k.next_flush_at = now + Duration::from_millis(k.interval as u64);
        k
    }

    /// Conversation id.
    pub fn conv(&self) -> u32 {
        self.conv
    }

    /// Applies (new) settings; safe at any time (the server configures after creation).
    /// mtu below 50 and zero windows are ignored, as kcp-go does.
    pub fn set_config(&mut self, cfg: &KcpConfig) {
        self.nodelay = cfg.nodelay;
        self.rx_minrto = if cfg.nodelay {
            RTO_MIN_NODELAY
        } else {
            RTO_MIN
        };
        self.interval = cfg.interval_ms.clamp(10, 5000);
        self.fastresend = cfg.resend;
        self.nocwnd = cfg.nc;
        self.ack_nodelay = cfg.ack_nodelay;
        self.dup_lone = cfg.dup_lone;
        self.repair_ahead = cfg.repair_ahead;
        if cfg.short_path_cap != self.inflight.is_some() {
            self.inflight = cfg.short_path_cap.then(InflightCap::default);
        }
        if cfg.delay_window != self.delay.is_some() {
            let snd_wnd = if cfg.snd_wnd > 0 {
                u32::from(cfg.snd_wnd)
            } else {
                self.snd_wnd
            };
            self.delay = cfg.delay_window.then(|| DelayWindow::new(snd_wnd));
            self.rto_backoff = 0;
        }
        if cfg.mtu >= 50 {
            self.mtu = cfg.mtu;
            self.mss = cfg.mtu - OVERHEAD;
            self.resplit_queue();
        }
        if cfg.snd_wnd > 0 {
            self.snd_wnd = cfg.snd_wnd as u32;
        }
        if cfg.rcv_wnd > 0 && cfg.rcv_wnd as u32 != self.rcv_wnd {
            self.resize_rcv_ring(cfg.rcv_wnd as u32);
        }
    }

    /// Bytes of data each segment carries at most.
    pub fn mss(&self) -> usize {
        self.mss
    }

    /// Segments waiting to be acknowledged or sent: `len(snd_buf) + len(snd_queue)`.
    pub fn wait_snd(&self) -> usize {
        self.snd_buf.len() + self.snd_queue.len()
    }

    /// Whether [`Kcp::send`] would accept data now.
    pub fn can_send(&self) -> bool {
        self.wait_snd() < self.send_limit()
    }

    /// Bytes [`Kcp::send`] would accept now: the room left in the last queued segment and the
    /// segments [`Kcp::can_send`] still allows.
    pub fn send_room(&self) -> usize {
        self.room_below(self.send_limit())
    }

    /// Like [`Kcp::send_room`], but without what [`Kcp::can_send`] accepts beyond the delay
    /// window: what that window lets out now. A transfer that takes at most this less
    /// [`SMALL_ROOM`] segments leaves those free in the window itself, so a request or an answer
    /// of another stream leaves with the next flush. Queued behind the transfer it would wait
    /// 1/window of a round trip per segment ahead of it, and a whole round trip while the window
    /// is full (slow start on a long path sends the window at once).
    pub fn window_room(&self) -> usize {
        match &self.delay {
            Some(d) => {
                let window = (self.snd_wnd.min(d.current()) + self.ahead) as usize;
                self.room_below(window.min(self.send_limit()))
            }
            None => self.send_room(),
        }
    }

    /// Bytes that fit before `snd_buf` and `snd_queue` hold `limit` segments together.
    fn room_below(&self, limit: usize) -> usize {
        let free = limit.saturating_sub(self.wait_snd());
        if free == 0 {
            return 0;
        }
        let tail = self
            .snd_queue
            .back()
            .map_or(0, |b| self.mss.saturating_sub(b.len()));
        tail + free * self.mss
    }

    /// Whether the path loses several percent of datagrams, in either direction as far as we
    /// can tell (see `loss`).
    pub fn heavy_loss(&self) -> bool {
        self.rx_loss.heavy() || self.tx_loss.heavy()
    }

    /// Whether the lowest round trip of the last 10 s is at least a flush interval: waiting for
    /// the window to open costs more than a flush there.
    pub fn long_path(&self) -> bool {
        self.min_rtt
            .get()
            .is_some_and(|min| min >= self.interval as i32)
    }

    /// How many segments `snd_buf` and `snd_queue` may hold together.
    fn send_limit(&self) -> usize {
        // Under the in-flight cap, data beyond what the cap lets out soon waits with the caller,
        // where a small message of another stream can still pass it.
        let mut wnd = match self.inflight.as_ref().and_then(InflightCap::cap) {
            Some(cap) => self.snd_wnd.min(cap.saturating_add(QUEUE_MARGIN)),
            None => self.snd_wnd,
        };
        if let Some(d) = &self.delay {
            wnd = wnd.min(d.current().saturating_add(QUEUE_MARGIN));
        }
        (wnd + self.ahead) as usize
    }

    /// Segments in `snd_buf` (numbered, not yet cumulatively acknowledged).
    pub fn unacked(&self) -> usize {
        self.snd_buf.len()
    }

    /// In-order bytes ready for [`Kcp::recv`].
    pub fn readable(&self) -> usize {
        self.readable
    }

    /// This session's counters.
    pub fn stats(&self) -> &Snmp {
        &self.stats
    }

    /// When the last datagram carrying a valid segment arrived.
    pub fn last_recv_at(&self) -> Instant {
        self.last_recv_at
    }

    /// When `snd_una` last advanced (or data first became outstanding).
    pub fn last_progress_at(&self) -> Instant {
        self.last_progress_at
    }

    /// Confirmed peer resets (0 or 1): the peer answered with `una` 0, behind our `snd_una`, and
    /// repeated it after a challenge instead of contradicting it (see [`reset`]).
    pub fn una_regressions(&self) -> u64 {
        self.peer_reset.confirmed()
    }

    /// Segments whose `una` 0 lay behind our `snd_una` (suspicions of a peer reset, confirmed
    /// or not).
    pub fn una_zero_signs(&self) -> u64 {
        self.peer_reset.signs()
    }

    /// Current retransmission timeout estimate (ms).
    pub fn rx_rto(&self) -> u32 {
        self.rx_rto
    }

    /// Smoothed RTT and its variation (ms).
    pub fn srtt(&self) -> (i32, i32) {
        (self.rx_srtt, self.rx_rttvar)
    }

    /// Congestion window and slow-start threshold (segments; meaningful with nc off).
    pub fn cwnd(&self) -> (u32, u32) {
        (self.cwnd, self.ssthresh)
    }

    /// Peer's last advertised window.
    pub fn rmt_wnd(&self) -> u32 {
        self.rmt_wnd
    }

    /// Microseconds since creation, wrapping (for local round-trip timing only).
    #[inline]
    fn clock_us(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.created).as_micros() as u32
    }

    #[inline]
    fn clock(&self, now: Instant) -> Ms {
        Ms(now.saturating_duration_since(self.created).as_millis() as u32)
    }

    /// Free receive window advertised to the peer.
    fn wnd_unused(&self) -> u16 {
        let q = self.rcv_queue.len() as u32;
        if q < self.rcv_wnd {
            (self.rcv_wnd - q) as u16
        } else {
            0
        }
    }

    // ---------------------------------------------------------------- application side

    /// Queues stream bytes; returns how many were accepted (0 = send window full).
    ///
    /// Tops up the last unsent segment if it is short, then cuts new `mss`-sized segments while
    /// `wait_snd() < snd_wnd`. Accepted data schedules a flush (kcptun flushes after every write).
    pub fn send(&mut self, data: &[u8]) -> usize {
        if data.is_empty() || !self.can_send() || self.mss == 0 {
            return 0;
        }
        let mut done = 0;
        let mss = self.mss;
        if let Some(last) = self.snd_queue.back_mut() {
            if last.len() < mss {
                let n = (mss - last.len()).min(data.len());
                last.extend_from_slice(&data[..n]);
                done = n;
            }
        }
        while done < data.len() && self.can_send() {
            let n = mss.min(data.len() - done);
            let mut b = self.take_buf();
            b.extend_from_slice(&data[done..done + n]);
            self.snd_queue.push_back(b);
            done += n;
        }
        if done > 0 {
            self.request(true, false);
        }
        done
    }

    /// Copies in-order stream bytes into `out`; returns how many (0 = nothing ready).
    pub fn recv(&mut self, out: &mut [u8]) -> usize {
        let was_full = self.rcv_queue.len() as u32 >= self.rcv_wnd;
        let mut n = 0;
        while n < out.len() {
            let Some(front) = self.rcv_queue.front() else {
                break;
            };
            let avail = &front[self.rcv_off.min(front.len())..];
            let take = avail.len().min(out.len() - n);
            out[n..n + take].copy_from_slice(&avail[..take]);
            n += take;
            if take == avail.len() {
                if let Some(b) = self.rcv_queue.pop_front() {
                    self.give_buf(b);
                }
                self.rcv_off = 0;
            } else {
                self.rcv_off += take;
            }
        }
        self.readable -= n;
        self.move_ready();
        if was_full && (self.rcv_queue.len() as u32) < self.rcv_wnd {
            // Tell the peer the window reopened (WINS with the next flush).
            self.ask_tell = true;
        }
        n
    }

    /// Moves in-order segments from the ring to `rcv_queue` while it has room.
    fn move_ready(&mut self) {
        let len = self.rcv_ring.len();
        if len == 0 {
            return;
        }
        while (self.rcv_queue.len() as u32) < self.rcv_wnd {
            let Some(b) = self.rcv_ring[self.rcv_head].take() else {
                break;
            };
            self.readable += b.len();
            if b.is_empty() {
                self.give_buf(b);
            } else {
                self.rcv_queue.push_back(b);
            }
            self.rcv_head = (self.rcv_head + 1) % len;
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        }
    }
}
