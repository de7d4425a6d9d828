//! The input side of [`Kcp`]: datagrams from the peer (ACKs and the duplicate-ACK count, `una`,
//! data into the receive ring, RTT samples), split from `session.rs` along that seam; the state is
//! defined there.

use std::time::Instant;

use super::super::reset;
use super::super::segment::{Header, CMD_ACK, CMD_PUSH, CMD_WASK, OVERHEAD};
use super::super::{sn_diff, InputError, Ms};
use super::{delay, Kcp, RTO_MAX};

impl Kcp {
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
        let mut latest_sn = 0u32;
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
                        latest_sn = h.sn;
                    }
                }
                CMD_PUSH => {
                    if !recovered {
                        if let Some(d) = &mut self.delay {
                            d.on_peer_send(now, cur.diff(Ms(h.ts)));
                        }
                    }
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
        self.rx_loss.record(recovered);

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
                            interval: self.interval,
                            in_flight: self.snd_buf.len() as u32,
                            snd_wnd: self.snd_wnd,
                            sn: latest_sn,
                            snd_nxt: self.snd_nxt,
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
    pub(super) fn snd_index(&self, sn: u32) -> Option<usize> {
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
    pub(in crate::proto::kcp) fn fastacks(&self) -> Vec<(u32, u32, u32)> {
        self.snd_buf
            .iter()
            .map(|s| (s.sn, s.ts, s.fastack))
            .collect()
    }

    /// Handles one PUSH; returns whether it was a repeat (duplicate or outside the window).
    fn on_push(&mut self, h: &Header, data: &[u8]) -> bool {
        let off = sn_diff(h.sn, self.rcv_nxt);
        let span = self.rcv_span();
        if off >= span as i32 {
            return true;
        }
        // Pending ACKs are bounded; a dropped ACK only costs a retransmission.
        if self.acklist.len() < 4 * self.rcv_wnd as usize + 64 {
            self.acklist.push((h.sn, h.ts));
        }
        if off < 0 {
            return true;
        }
        let len = span;
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
