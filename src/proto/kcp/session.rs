//! The KCP state machine ([`Kcp`]); see the module doc of `kcp` for invariants and call order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod buffers;
mod delay;
mod flush;
mod inflight;
mod repair;

use self::delay::DelayWindow;
use self::flush::{Plan, Want};
use self::inflight::InflightCap;
use self::repair::MinRtt;
use super::reset::{self, PeerReset};
use super::segment::{Header, CMD_ACK, CMD_PUSH, CMD_WASK, OVERHEAD};
use super::{sn_diff, InputError, KcpConfig, Ms};
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
    /// How far past `snd_una` the window counted from at the last flush (see `repair`): the
    /// extra room [`Kcp::can_send`] gives.
    ahead: u32,
    min_rtt: MinRtt,
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
        // Under the in-flight cap, data beyond what the cap lets out soon waits with the caller,
        // where a small message of another stream can still pass it.
        let mut wnd = match self.inflight.as_ref().and_then(InflightCap::cap) {
            Some(cap) => self.snd_wnd.min(cap.saturating_add(QUEUE_MARGIN)),
            None => self.snd_wnd,
        };
        if let Some(d) = &self.delay {
            wnd = wnd.min(d.current().saturating_add(QUEUE_MARGIN));
        }
        self.wait_snd() < (wnd + self.ahead) as usize
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

    // ---------------------------------------------------------------- network input

    /// Processes one KCP datagram (1..n segments). `recovered`: it came from FEC recovery, so it
    /// neither updates the remote window nor yields an RTT sample or duplicate counts.
    ///
    /// On error the segments before the bad one stay processed, the rest is ignored, and
    /// `KCPInErrors` is counted here (the caller need not count it again).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        pkt: &[u8],
        recovered: bool,
    ) -> Result<(), InputError> {
        if pkt.len() < OVERHEAD {
            self.stats.kcp_in_errors += 1;
            return Err(InputError::Truncated);
        }
        if self.is_idle() {
            self.realign_timer(now);
        }
        let cur = self.clock(now);
        let prev_una = self.snd_una;
        let mut ack_seen = false;
        let mut latest_ts = 0u32;
        let mut rest = pkt;
        let mut in_segs = 0u64;
        let mut result = Ok(());
        while rest.len() >= OVERHEAD {
            let (h, data, after) = match Header::parse(rest, self.conv) {
                Ok(v) => v,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            rest = after;
            in_segs += 1;
            self.last_recv_at = now;
            if !recovered {
                self.rmt_wnd = h.wnd as u32;
            }
            // Checked before `una` retires the segment this ACK is for.
            let fresh_ack = h.cmd == CMD_ACK && self.acks_latest_copy(h.sn, h.ts);
            if fresh_ack && !recovered && self.inflight.is_some() {
                let sent = self
                    .snd_index(h.sn)
                    .and_then(|i| self.snd_buf.get(i))
                    .map(|s| s.sent_us);
                let now_us = self.clock_us(now);
                if let (Some(c), Some(sent)) = (&mut self.inflight, sent) {
                    let us = now_us.wrapping_sub(sent);
                    c.on_rtt(now, std::time::Duration::from_micros(u64::from(us)));
                }
            }
            self.parse_una(h.una, now);
            match h.cmd {
                CMD_ACK => {
                    self.parse_ack(h.sn);
                    self.ack_batch.push((h.sn, h.ts));
                    if fresh_ack {
                        ack_seen = true;
                        latest_ts = h.ts;
                    }
                }
                CMD_PUSH => {
                    let repeat = self.on_push(&h, data);
                    if repeat && !recovered {
                        self.stats.repeat_segs += 1;
                    }
                }
                CMD_WASK => self.ask_tell = true,
                _ => {} // WINS: the window update above is all.
            }
        }
        // The ACKs before a bad segment were counted by kcp-go too.
        let fast_due = self.apply_fastacks(cur);
        if let Err(e) = result {
            // kcp-go returns here: no InSegs, RTT sample, cwnd growth or immediate flush.
            self.stats.kcp_in_errors += 1;
            return Err(e);
        }
        self.stats.in_segs += in_segs;

        if ack_seen && !recovered {
            let rtt = cur.diff(Ms(latest_ts));
            if rtt >= 0 {
                self.update_rtt(rtt);
                self.min_rtt.on_sample(now, rtt);
                self.rto_backoff = 0;
                self.sampled_since_rto = true;
                if let Some(d) = &mut self.delay {
                    d.on_rtt(
                        now,
                        delay::Sample {
                            rtt,
                            srtt: self.rx_srtt,
                            min_rtt: self.min_rtt.get().unwrap_or(rtt),
                            min_age: self.min_rtt.age(now),
                            interval: self.interval,
                            in_flight: self.snd_buf.len() as u32,
                            snd_wnd: self.snd_wnd,
                        },
                    );
                }
            }
        }

        let advanced = sn_diff(self.snd_una, prev_una) > 0;
        if !self.nocwnd && advanced && self.cwnd < self.rmt_wnd {
            let mss = self.mss as u32;
            if self.cwnd < self.ssthresh {
                self.cwnd += 1;
                self.incr = self.incr.wrapping_add(mss);
            } else {
                if self.incr < mss {
                    self.incr = mss;
                }
                self.incr = self
                    .incr
                    .wrapping_add((mss * mss) / self.incr.max(1) + mss / 16);
                if (self.cwnd as u64 + 1) * mss as u64 <= self.incr as u64 {
                    self.cwnd = if mss > 0 {
                        (self.incr as u64).div_ceil(mss as u64) as u32
                    } else {
                        self.incr.wrapping_add(mss).wrapping_sub(1)
                    };
                }
            }
            if self.cwnd > self.rmt_wnd {
                self.cwnd = self.rmt_wnd;
                self.incr = self.rmt_wnd.wrapping_mul(mss);
            }
        }

        if advanced || fast_due {
            self.request(true, false);
        } else if !self.acklist.is_empty()
            && (self.acklist.len() >= self.mtu / OVERHEAD || self.ack_nodelay)
        {
            self.request(false, false);
        }
        Ok(())
    }

    fn parse_una(&mut self, una: u32, now: Instant) {
        let behind = sn_diff(una, self.snd_una) < 0;
        let gap = reset::confirm_gap(self.rx_rto);
        if self.peer_reset.on_una(now, una, behind, gap) {
            self.ask_send = true;
            self.request(false, false);
        }
        if behind {
            // Reordering delivers old `una` values all the time: nothing to acknowledge.
            return;
        }
        let mut advanced = false;
        while let Some(front) = self.snd_buf.front() {
            if sn_diff(una, front.sn) > 0 {
                if let Some(seg) = self.snd_buf.pop_front() {
                    if !seg.acked {
                        if let Some(c) = &mut self.inflight {
                            c.on_delivered(1);
                        }
                    }
                    self.give_buf(seg.data);
                }
                advanced = true;
            } else {
                break;
            }
        }
        self.snd_una = self.snd_buf.front().map_or(self.snd_nxt, |s| s.sn);
        if sn_diff(self.sent_nxt, self.snd_una) < 0 {
            self.sent_nxt = self.snd_una;
        }
        if advanced {
            self.last_progress_at = now;
        }
    }

    /// Index of `sn` in `snd_buf`, if it is in flight.
    #[inline]
    fn snd_index(&self, sn: u32) -> Option<usize> {
        if sn_diff(sn, self.snd_una) < 0 || sn_diff(sn, self.snd_nxt) >= 0 {
            return None;
        }
        let idx = sn.wrapping_sub(self.snd_una) as usize;
        (idx < self.snd_buf.len()).then_some(idx)
    }

    /// Whether an ACK `(sn, ts)` is the first word on our latest transmission of a segment still
    /// outstanding: only such an ACK is an RTT sample. kcp-go samples every ACK, so an ACK of a
    /// segment the peer got through FEC recovery seconds later, or a repeated ACK of one retired
    /// long ago, counted as a round trip of that length; on a lossy path those samples inflated
    /// the RTO of lone interactive segments to over a second.
    fn acks_latest_copy(&self, sn: u32, ts: u32) -> bool {
        self.snd_index(sn)
            .and_then(|i| self.snd_buf.get(i))
            .is_some_and(|seg| !seg.acked && seg.ts == ts)
    }

    fn parse_ack(&mut self, sn: u32) {
        let Some(idx) = self.snd_index(sn) else {
            return;
        };
        let data = match self.snd_buf.get_mut(idx) {
            Some(seg) if !seg.acked => {
                seg.acked = true;
                if let Some(c) = &mut self.inflight {
                    c.on_delivered(1);
                }
                std::mem::take(&mut seg.data)
            }
            _ => return,
        };
        self.give_buf(data);
    }

    /// Applies the duplicate-ACK counting of one datagram's ACKs (`ack_batch`) in a single pass.
    ///
    /// kcp-go, per ACK `(sn, ts)` in flight, adds 1 to `fastack` of every older segment sent no
    /// later (`seg.ts <= ts`). Those increments commute, and a segment still in
    /// `snd_buf` after the datagram was in flight for every ACK above it, so the per-segment total
    /// is the number of batch ACKs with a larger in-flight sn and a ts not before its own. That
    /// count is taken with a sweep from the highest index down over a sorted list of ts values:
    /// O(inflight + k log k) per datagram instead of O(inflight * k).
    /// Returns whether a raised counter reached the fast-retransmit threshold.
    fn apply_fastacks(&mut self, cur: Ms) -> bool {
        let n = self.snd_buf.len();
        let mut batch = std::mem::take(&mut self.ack_batch);
        let mut tss = std::mem::take(&mut self.ts_scratch);
        // (index in snd_buf, ts relative to our clock) of the ACKs still inside the window.
        let mut keep = 0;
        for i in 0..batch.len() {
            let (sn, ts) = batch[i];
            if let Some(idx) = self.snd_index(sn) {
                batch[keep] = (idx as u32, Ms(ts).diff(cur) as u32);
                keep += 1;
            }
        }
        batch.truncate(keep);
        let mut due = false;
        if !batch.is_empty() && n > 0 {
            batch.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
            tss.clear();
            let resend = self.fastresend;
            let top = batch[0].0 as usize;
            let mut p = 0;
            for j in (0..top.min(n)).rev() {
                while p < batch.len() && batch[p].0 as usize > j {
                    let r = batch[p].1 as i32;
                    let at = tss.partition_point(|&x| x < r);
                    tss.insert(at, r);
                    p += 1;
                }
                let Some(seg) = self.snd_buf.get_mut(j) else {
                    continue;
                };
                let r = Ms(seg.ts).diff(cur);
                let count = (tss.len() - tss.partition_point(|&x| x < r)) as u32;
                if count > 0 {
                    seg.fastack = seg.fastack.saturating_add(count);
                    if !seg.acked {
                        self.fastack_pending = true;
                        self.fastack_epoch += 1;
                    }
                    // As kcp-go: any raised counter at the threshold (acknowledged segments
                    // included; a threshold of 0 means every raise) asks for a full flush.
                    if seg.fastack >= resend {
                        due = true;
                    }
                }
            }
        }
        batch.clear();
        tss.clear();
        self.ack_batch = batch;
        self.ts_scratch = tss;
        due
    }

    /// `(sn, ts, fastack)` of every segment in `snd_buf` (tests).
    #[cfg(test)]
    pub(super) fn fastacks(&self) -> Vec<(u32, u32, u32)> {
        self.snd_buf
            .iter()
            .map(|s| (s.sn, s.ts, s.fastack))
            .collect()
    }

    /// Handles one PUSH; returns whether it was a repeat (duplicate or outside the window).
    fn on_push(&mut self, h: &Header, data: &[u8]) -> bool {
        let off = sn_diff(h.sn, self.rcv_nxt);
        if sn_diff(h.sn, self.rcv_nxt.wrapping_add(self.rcv_wnd)) >= 0 {
            return true;
        }
        // Pending ACKs are bounded; a dropped ACK only costs a retransmission.
        if self.acklist.len() < 4 * self.rcv_wnd as usize + 64 {
            self.acklist.push((h.sn, h.ts));
        }
        if off < 0 {
            return true;
        }
        let len = self.rcv_wnd as usize;
        if len == 0 {
            return true;
        }
        if off == 0 && self.rcv_ring.is_empty() && (self.rcv_queue.len() as u32) < self.rcv_wnd {
            // In order with nothing out of order held: straight to the receive queue, as the
            // ring would pass it on at once (the ring is allocated only once segments arrive
            // out of order).
            self.readable += data.len();
            if !data.is_empty() {
                let mut b = self.take_buf();
                b.extend_from_slice(data);
                self.rcv_queue.push_back(b);
            }
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            return false;
        }
        let slot = (self.rcv_head + off as usize) % len;
        if self.ring()[slot].is_some() {
            return true;
        }
        let mut b = self.take_buf();
        b.extend_from_slice(data);
        self.rcv_ring[slot] = Some(b);
        self.move_ready();
        false
    }

    fn update_rtt(&mut self, rtt: i32) {
        if self.rx_srtt == 0 {
            self.rx_srtt = rtt;
            self.rx_rttvar = rtt >> 1;
        } else {
            let mut delta = rtt.wrapping_sub(self.rx_srtt);
            self.rx_srtt = self.rx_srtt.wrapping_add(delta >> 3);
            delta = delta.wrapping_abs();
            if rtt < self.rx_srtt.wrapping_sub(self.rx_rttvar) {
                self.rx_rttvar = self
                    .rx_rttvar
                    .wrapping_add(delta.wrapping_sub(self.rx_rttvar) >> 5);
            } else {
                self.rx_rttvar = self
                    .rx_rttvar
                    .wrapping_add(delta.wrapping_sub(self.rx_rttvar) >> 2);
            }
        }
        let var4 = (self.rx_rttvar.max(0) as u64) << 2;
        let mut rto = (self.rx_srtt.max(0) as u64) + var4.max(self.interval as u64);
        if self.delay.is_some() {
            rto += u64::from(delay::RTO_MARGIN);
        }
        self.rx_rto = rto.clamp(self.rx_minrto as u64, RTO_MAX as u64) as u32;
    }
}
