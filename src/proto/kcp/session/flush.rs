//! The output side of [`Kcp`]: the interval timer and the flush (ACKs, window probes and
//! challenges, (re)transmissions, congestion control), resumable across `poll_transmit` calls.

use std::time::{Duration, Instant};

use super::super::reset;
use super::super::segment::{Header, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS, OVERHEAD};
use super::super::{sn_diff, Ms};
use super::repair::COPIES_MAX;
use super::{Kcp, SndSeg, PROBE_INIT, PROBE_LIMIT, SEG_RTO_CAP, THRESH_MIN};

/// Why a segment is (re)sent in this flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    New,
    Fast,
    Early,
    Rto,
}

/// A flush in progress (resumable across `poll_transmit` calls).
#[derive(Debug)]
pub(super) struct Plan {
    full: bool,
    /// Started by the interval timer: reschedules the next interval flush when done.
    timer: bool,
    ack_idx: usize,
    /// Next snd_buf sn to consider in the data phase.
    cursor: u32,
    new_segs: u32,
    /// Fast + early retransmissions (congestion "change").
    change: u32,
    /// RTO retransmissions.
    lost: u32,
    /// `min(snd_wnd, rmt_wnd[, cwnd])` at the start of the flush.
    cwnd_eff: u32,
    /// Time until the next needed flush, ms (starts at `interval`).
    min_rto: i32,
    /// The data phase jumped over the transmitted head of `snd_buf` (nothing there was due).
    jumped: bool,
    /// Earliest `resend_at` among the transmitted unacknowledged segments visited.
    min_resend: Option<Ms>,
    /// A visited unacknowledged segment still has a duplicate-ACK count (fastack > 0).
    fastack_seen: bool,
    /// `fastack_epoch` when the plan started.
    epoch0: u64,
    /// How many of `Kcp::dup_sns` (the segments sent in this flush to be sent once more, each
    /// in a datagram of its own: lone ones and, with `repair_ahead`, retransmissions) are out.
    dups_sent: usize,
    /// Retransmissions go out twice in this flush (`repair_ahead` and no queue shows).
    dup_repairs: bool,
    /// Lone segments go out three times in this flush instead of twice (heavy loss).
    lone_copies: u8,
}

/// At most this many segments in flight make them "lone": an interactive message and its
/// answer, not a transfer. Each is sent twice, in separate datagrams, so one random loss does
/// not cost a retransmission timeout (at 2 % loss a lone segment is lost with both copies 0.04 %
/// of the time instead of 2 %). Bulk transfers never qualify, so they pay nothing.
///
/// Where loss is heavy (`Kcp::heavy_loss`) a lone segment goes out three times: at 10 % both
/// copies are lost 1 % of the time, and FEC rarely rescues them, because the group they end
/// stays incomplete until more traffic follows. In the simulator (`probe_latency`, 100 ms, 10 %
/// loss, upload beside the probe) that was the most common probe over 2.5 round trips: the
/// answer lost twice and sent again after its RTO.
const LONE_MAX: usize = 2;

/// A flush requested but not started.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Want {
    pub(super) any: bool,
    pub(super) full: bool,
    pub(super) timer: bool,
}

impl Kcp {
    // ---------------------------------------------------------------- timers and output

    /// Runs what is due at `now`: the interval flush (which also covers RTOs and probes).
    /// Calls before [`Kcp::poll_timeout`] are harmless no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_idle() {
            self.realign_timer(now);
            return;
        }
        if now >= self.next_flush_at {
            self.request(true, true);
            self.next_flush_at = now + Duration::from_millis(self.interval as u64);
        }
    }

    /// When [`Kcp::handle_timeout`] next has work; `None` while the session is idle (nothing to
    /// send, acknowledge, retransmit or probe), so idle sessions cost no wake-ups. The interval
    /// flushes keep their phase across idle spells.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_idle()).then_some(self.next_flush_at)
    }

    /// Nothing for an interval flush to do: it would emit nothing and change nothing.
    pub(super) fn is_idle(&self) -> bool {
        self.snd_buf.is_empty()
            && self.snd_queue.is_empty()
            && self.acklist.is_empty()
            && !self.ask_send
            && !self.ask_tell
            && !self.peer_reset.suspecting()
            && self.rmt_wnd != 0
            && self.plan.is_none()
            && !self.want.any
    }

    /// After an idle spell the interval deadline may lie in the past: move it to the next tick
    /// of the same phase, as kcp-go's never-stopping update timer would have.
    pub(super) fn realign_timer(&mut self, now: Instant) {
        if self.next_flush_at < now {
            let iv = self.interval.max(1) as u128;
            let late = (now - self.next_flush_at).as_millis();
            let ticks = (late / iv + 1) as u64;
            self.next_flush_at += Duration::from_millis(ticks.saturating_mul(iv as u64));
        }
    }

    pub(super) fn request(&mut self, full: bool, timer: bool) {
        self.want.any = true;
        self.want.full |= full;
        self.want.timer |= timer;
    }

    /// Writes the next datagram (at most mtu bytes) into `out`, or `None` when the current flush
    /// is complete. `out` should hold at least mtu bytes.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        let mut len = 0;
        loop {
            if self.plan.is_none() {
                if !self.want.any {
                    break;
                }
                let w = std::mem::take(&mut self.want);
                self.start_plan(now, w);
            }
            match self.run_plan(now, out, &mut len) {
                Step::Full => return Some(len),
                Step::Stuck => break,
                Step::Done => {
                    self.plan = None;
                    if len > 0 {
                        return Some(len);
                    }
                }
            }
        }
        (len > 0).then_some(len)
    }

    fn start_plan(&mut self, now: Instant, w: Want) {
        let cur = self.clock(now);
        let mut plan = Plan {
            full: w.full,
            timer: w.timer,
            ack_idx: 0,
            cursor: self.snd_una,
            new_segs: 0,
            change: 0,
            lost: 0,
            cwnd_eff: 0,
            min_rto: self.interval as i32,
            jumped: false,
            min_resend: None,
            fastack_seen: false,
            epoch0: self.fastack_epoch,
            dups_sent: 0,
            dup_repairs: self.repair_ahead_now(),
            lone_copies: if self.heavy_loss() { 3 } else { 2 },
        };
        self.dup_sns.clear();
        {
            // Window probing while the peer's window is closed (every flush kind).
            if self.rmt_wnd == 0 {
                if self.probe_wait == 0 {
                    self.probe_wait = PROBE_INIT;
                    self.ts_probe = cur.add(self.probe_wait);
                } else if cur.diff(self.ts_probe) >= 0 {
                    if self.probe_wait < PROBE_INIT {
                        self.probe_wait = PROBE_INIT;
                    }
                    self.probe_wait += self.probe_wait / 2;
                    if self.probe_wait > PROBE_LIMIT {
                        self.probe_wait = PROBE_LIMIT;
                    }
                    self.ts_probe = cur.add(self.probe_wait);
                    self.ask_send = true;
                }
            } else {
                self.ts_probe = Ms(0);
                self.probe_wait = 0;
            }
            // Challenges of a peer that may have restarted (see `reset`).
            if w.timer {
                let gap = reset::confirm_gap(self.rx_rto);
                let outstanding = !self.snd_buf.is_empty();
                if self
                    .peer_reset
                    .on_interval(now, outstanding, self.last_recv_at, gap)
                {
                    self.ask_send = true;
                }
            }
        }
        {
            // Move queued data into the send window (kcp-go does this in ACK-only flushes too;
            // only the (re)transmission loop is reserved to full flushes).
            let mut cwnd = self.snd_wnd.min(self.rmt_wnd);
            if !self.nocwnd {
                cwnd = cwnd.min(self.cwnd);
            }
            plan.cwnd_eff = cwnd;
            let base = self.window_base(cwnd);
            self.ahead = base.wrapping_sub(self.snd_una);
            let mut end = base.wrapping_add(cwnd);
            // At most past snd_una (repaired segments included): the in-flight cap on a
            // sub-millisecond path (see `inflight`), the delay window with --delaywnd while it is
            // below snd_wnd (see `delay`).
            if let Some(c) = &mut self.inflight {
                c.tick(now);
            }
            let short_path = self.inflight.as_ref().and_then(|c| c.cap());
            let delay = self.delay.as_ref().map(|d| d.get(now));
            let delay = delay.filter(|&dwnd| dwnd < self.snd_wnd);
            if let Some(cap) = short_path.into_iter().chain(delay).min() {
                let capped = self.snd_una.wrapping_add(cap);
                if sn_diff(capped, end) < 0 {
                    end = capped;
                }
            }
            while sn_diff(self.snd_nxt, end) < 0 {
                let Some(data) = self.snd_queue.pop_front() else {
                    break;
                };
                if self.snd_buf.is_empty() {
                    self.last_progress_at = now;
                }
                self.snd_buf.push_back(SndSeg {
                    sn: self.snd_nxt,
                    ts: 0,
                    resend_at: Ms(0),
                    rto: 0,
                    fastack: 0,
                    xmit: 0,
                    acked: false,
                    sent_us: 0,
                    data,
                });
                self.snd_nxt = self.snd_nxt.wrapping_add(1);
                plan.new_segs += 1;
            }
            // The window (or the cap), not the application, held data back (what a transfer
            // leaves free for small messages counts as held back: see `SMALL_ROOM`).
            let held = !self.snd_queue.is_empty();
            if held || sn_diff(self.snd_nxt, end) >= 0 {
                if let Some(c) = &mut self.inflight {
                    c.on_limited();
                }
            }
            if let Some(d) = &mut self.delay {
                d.on_flush(self.snd_buf.len() as u32);
                if held || sn_diff(self.snd_nxt.wrapping_add(super::SMALL_ROOM), end) >= 0 {
                    d.on_limited();
                }
            }
        }
        self.plan = Some(plan);
    }

    /// Whether `need` more bytes fit after `len` in a datagram written to a buffer of `cap`.
    #[inline]
    fn fits(&self, len: usize, need: usize, cap: usize) -> bool {
        len + need <= self.mtu.min(cap) || (len == 0 && need <= cap)
    }

    fn run_plan(&mut self, now: Instant, out: &mut [u8], len: &mut usize) -> Step {
        let cur = self.clock(now);
        let cap = out.len();
        let Some(mut plan) = self.plan.take() else {
            return Step::Done;
        };
        let step = self.run_plan_inner(cur, now, &mut plan, out, len, cap);
        self.plan = Some(plan);
        step
    }

    fn run_plan_inner(
        &mut self,
        cur: Ms,
        now: Instant,
        plan: &mut Plan,
        out: &mut [u8],
        len: &mut usize,
        cap: usize,
    ) -> Step {
        let wnd = self.wnd_unused();
        let una = self.rcv_nxt;
        let mut hdr = Header {
            conv: self.conv,
            cmd: CMD_ACK,
            frg: 0,
            wnd,
            ts: 0,
            sn: 0,
            una,
            len: 0,
        };
        // 1. ACKs (with the bufferbloat filter).
        while plan.ack_idx < self.acklist.len() {
            let (sn, ts) = self.acklist[plan.ack_idx];
            let last = plan.ack_idx + 1 == self.acklist.len();
            if sn_diff(sn, self.rcv_nxt) >= 0 || last {
                if !self.fits(*len, OVERHEAD, cap) {
                    return if *len > 0 { Step::Full } else { Step::Stuck };
                }
                hdr.sn = sn;
                hdr.ts = ts;
                hdr.write(&mut out[*len..]);
                *len += OVERHEAD;
                self.stats.out_segs += 1;
            }
            plan.ack_idx += 1;
        }
        self.acklist.clear();
        plan.ack_idx = 0;
        // 2. Window probe commands (kcp-go sends these in ACK-only flushes too).
        hdr.ts = 0;
        hdr.sn = 0;
        for (flag, cmd) in [(self.ask_send, CMD_WASK), (self.ask_tell, CMD_WINS)] {
            if !flag {
                continue;
            }
            if !self.fits(*len, OVERHEAD, cap) {
                return if *len > 0 { Step::Full } else { Step::Stuck };
            }
            hdr.cmd = cmd;
            hdr.write(&mut out[*len..]);
            *len += OVERHEAD;
            self.stats.out_segs += 1;
            if cmd == CMD_WASK {
                self.ask_send = false;
            } else {
                self.ask_tell = false;
            }
        }
        if !plan.full {
            return Step::Done;
        }
        // 4. (Re)transmissions.
        let resent = if self.fastresend > 0 {
            self.fastresend
        } else {
            u32::MAX
        };
        if sn_diff(plan.cursor, self.snd_una) < 0 {
            plan.cursor = self.snd_una;
        }
        // Nothing in the transmitted head can be due (no duplicate-ACK counts, earliest RTO
        // still ahead): go straight to the never-transmitted tail.
        // Interval flushes always scan everything, so that they reschedule exactly as kcp-go.
        let head_idle = !plan.timer
            && !self.fastack_pending
            && matches!(self.resend_hint, Some(h) if cur.diff(h) < 0);
        if head_idle && sn_diff(self.sent_nxt, plan.cursor) > 0 {
            #[cfg(debug_assertions)]
            {
                let from = plan.cursor.wrapping_sub(self.snd_una) as usize;
                let to = self.sent_nxt.wrapping_sub(self.snd_una) as usize;
                for seg in self.snd_buf.range(from..to) {
                    debug_assert!(seg.xmit > 0);
                    debug_assert!(
                        seg.acked || (seg.fastack == 0 && cur.diff(seg.resend_at) < 0),
                        "skipped a due segment"
                    );
                }
            }
            plan.cursor = self.sent_nxt;
            plan.jumped = true;
            #[cfg(test)]
            {
                self.jumps += 1;
            }
        }
        hdr.cmd = CMD_PUSH;
        let now_us = self.clock_us(now);
        loop {
            let idx = plan.cursor.wrapping_sub(self.snd_una) as usize;
            let Some(seg) = self.snd_buf.get(idx) else {
                break;
            };
            let why = if seg.acked {
                None
            } else if seg.xmit == 0 {
                Some(Why::New)
            } else if seg.fastack >= resent {
                Some(Why::Fast)
            } else if seg.fastack > 0 && plan.new_segs == 0 {
                Some(Why::Early)
            } else if cur.diff(seg.resend_at) >= 0 {
                Some(Why::Rto)
            } else {
                None
            };
            if let Some(why) = why {
                let need = OVERHEAD + seg.data.len();
                if !self.fits(*len, need, cap) {
                    return if *len > 0 { Step::Full } else { Step::Stuck };
                }
                // Karn's backoff (with --delaywnd only; see `delay`).
                let rx_rto = (self.rx_rto << self.rto_backoff).min(super::RTO_MAX);
                let nodelay = self.nodelay;
                let Some(seg) = self.snd_buf.get_mut(idx) else {
                    break;
                };
                self.tx_loss.record(why != Why::New);
                match why {
                    Why::New => {
                        seg.rto = rx_rto;
                        seg.resend_at = cur.add(seg.rto);
                    }
                    Why::Fast | Why::Early => {
                        // The duplicate-ACK count starts again (kcp-go 2021; latest locks it
                        // until the RTO). Only ACKs of segments sent after this retransmission
                        // count (their ts is later), so a retransmission lost again is caught
                        // one round trip later instead of after the RTO: at 10 % loss this
                        // doubled goodput against latest's lock, with no RTO retransmissions.
                        seg.fastack = 0;
                        seg.rto = rx_rto;
                        seg.resend_at = cur.add(rx_rto);
                        plan.change += 1;
                        if why == Why::Fast {
                            self.stats.fast_retrans_segs += 1;
                        } else {
                            self.stats.early_retrans_segs += 1;
                        }
                        self.stats.retrans_segs += 1;
                    }
                    Why::Rto => {
                        let inc = if nodelay { rx_rto / 2 } else { rx_rto };
                        seg.rto = seg.rto.saturating_add(inc).min(SEG_RTO_CAP);
                        seg.fastack = 0;
                        seg.resend_at = cur.add(seg.rto);
                        plan.lost += 1;
                        self.stats.lost_segs += 1;
                        self.stats.retrans_segs += 1;
                    }
                }
                seg.xmit += 1;
                seg.ts = cur.0;
                seg.sent_us = now_us;
                let (sn, resend_at) = (seg.sn, seg.resend_at);
                if why == Why::New {
                    self.sent_nxt = sn.wrapping_add(1);
                }
                if let Some(h) = self.resend_hint {
                    if resend_at.diff(h) < 0 {
                        self.resend_hint = Some(resend_at);
                    }
                }
                let Some(seg) = self.snd_buf.get(idx) else {
                    break;
                };
                hdr.ts = seg.ts;
                hdr.sn = seg.sn;
                hdr.len = seg.data.len() as u32;
                hdr.write(&mut out[*len..]);
                out[*len + OVERHEAD..*len + need].copy_from_slice(&seg.data);
                *len += need;
                self.stats.out_segs += 1;
                let lone = self.dup_lone
                    && matches!(why, Why::New | Why::Rto)
                    && self.snd_buf.len() <= LONE_MAX;
                let repair = plan.dup_repairs && matches!(why, Why::Fast | Why::Early);
                let copies = match (lone, repair) {
                    (true, _) => plan.lone_copies,
                    (false, true) => 2,
                    (false, false) => 1,
                };
                for _ in 1..copies {
                    if self.dup_sns.len() < COPIES_MAX {
                        self.dup_sns.push(hdr.sn);
                    }
                }
            }
            if let Some(seg) = self.snd_buf.get(idx) {
                if !seg.acked {
                    let rto = seg.resend_at.diff(cur);
                    if rto > 0 && rto < plan.min_rto {
                        plan.min_rto = rto;
                    }
                    if plan.min_resend.map_or(true, |m| seg.resend_at.diff(m) < 0) {
                        plan.min_resend = Some(seg.resend_at);
                    }
                    if seg.fastack > 0 {
                        plan.fastack_seen = true;
                    }
                }
            }
            plan.cursor = plan.cursor.wrapping_add(1);
        }
        // 4b. The further copies, each in a datagram of its own.
        while let Some(&sn) = self.dup_sns.get(plan.dups_sent) {
            let seg = self
                .snd_index(sn)
                .and_then(|i| self.snd_buf.get(i))
                .filter(|seg| !seg.acked);
            if let Some(seg) = seg {
                if *len > 0 {
                    return Step::Full;
                }
                let need = OVERHEAD + seg.data.len();
                if !self.fits(0, need, cap) {
                    return Step::Stuck;
                }
                hdr.ts = seg.ts;
                hdr.sn = seg.sn;
                hdr.len = seg.data.len() as u32;
                hdr.write(out);
                out[OVERHEAD..need].copy_from_slice(&seg.data);
                *len = need;
                self.stats.out_segs += 1;
            }
            plan.dups_sent += 1;
        }
        if plan.jumped {
            // Only non-interval flushes jump; their timing hint is a lower bound.
            if let Some(h) = self.resend_hint {
                let rto = h.diff(cur);
                if rto > 0 && rto < plan.min_rto {
                    plan.min_rto = rto;
                }
            }
        } else {
            // A complete scan: the bounds are exact again.
            self.resend_hint = Some(plan.min_resend.unwrap_or(cur.add(SEG_RTO_CAP)));
            if self.fastack_epoch == plan.epoch0 {
                self.fastack_pending = plan.fastack_seen;
            }
        }
        // The repairs just sent may let the window count from further on (see `repair`): the
        // caller may queue that much more at once.
        self.ahead = self.window_base(plan.cwnd_eff).wrapping_sub(self.snd_una);
        if plan.lost > 0 && self.delay.is_some() {
            if !self.sampled_since_rto {
                self.rto_backoff = (self.rto_backoff + 1).min(3);
            }
            self.sampled_since_rto = false;
        }
        // 5. Congestion control.
        if !self.nocwnd {
            if plan.change > 0 {
                let inflight = self.snd_nxt.wrapping_sub(self.snd_una);
                self.ssthresh = (inflight / 2).max(THRESH_MIN);
                self.cwnd = self.ssthresh.wrapping_add(resent);
                self.incr = self.cwnd.wrapping_mul(self.mss as u32);
            }
            if plan.lost > 0 {
                self.ssthresh = (plan.cwnd_eff / 2).max(THRESH_MIN);
                self.cwnd = 1;
                self.incr = self.mss as u32;
            }
            if self.cwnd < 1 {
                self.cwnd = 1;
                self.incr = self.mss as u32;
            }
        }
        let next = now + Duration::from_millis(plan.min_rto.max(1) as u64);
        // As kcp-go, only the interval flush reschedules itself (from its own scan); other
        // flushes do only when the timer lapsed during an idle spell.
        if plan.timer || self.next_flush_at < now {
            self.next_flush_at = next;
        }
        Step::Done
    }
}

enum Step {
    /// `out` holds a datagram and the next item does not fit.
    Full,
    /// The flush is complete (a partial datagram may be in `out`).
    Done,
    /// `out` is too small for even one item.
    Stuck,
}
