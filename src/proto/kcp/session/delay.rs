//! A send window sized by the queueing delay it causes ([`KcpConfig::delay_window`](super::KcpConfig),
//! `--delaywnd`): ours, not kcp-go's, invisible on the wire (the sender only keeps less out).
//!
//! kcptun's fast modes run KCP without congestion control, so a sender keeps its whole window in
//! flight. Behind a bottleneck slower than window / RTT the surplus waits in the router's queue
//! (100 Mbit/s with a 1 MB drop-tail buffer at 40 ms: up to 80 ms more for every message, and a
//! full queue drops datagrams by the thousand). Loss-based congestion control would fix the queue
//! but collapse on random loss, which is why people use kcptun in the first place.
//!
//! This window follows the delay instead, in the FAST/Vegas family. The queue is the lowest RTT
//! sample of a round above the path's own round trip, less what the peer's data segments show
//! of a queue on the way back (where our ACKs wait behind them: not ours to drain). A round is
//! the samples of segments sent after the last adjustment (older ones show the window before it),
//! [`ROUND_SAMPLES`] of them or a quarter of a round trip after the first. (While slow start
//! sends its window at once, the next sample after that may be a round trip away, so a step can
//! take two; ending such a round at the next flush instead decided on one or two samples and
//! gave 6 s runs behind the bottleneck a loaded p99 of 72–74 ms instead of 60–68.) At the end of
//! a round:
//!
//! * the window that keeps just the target queued (a quarter of the path's round trip, at least
//!   one flush interval) is what was in flight × (path + target) / (path + queue);
//! * past the target (and a dead band of a quarter of it, at least 2 ms: two senders whose
//!   measures of the path differ by a millisecond do not starve each other), the window goes half
//!   way there; below it, it grows half way there, at most 1/8, and by 1/8 while no queue shows;
//! * slow start: from [`START`] it grows by half per round while the queue stays under half the
//!   target, up to that window above it, and ends at that window once the queue passes the
//!   target. A round sees the window it measures, so a bottleneck's queue outgrows the target by
//!   at most what the last step added: half the path's round trip at worst, where doubling would
//!   add all of it (tried: 6 s runs behind the bottleneck then gave loaded p99 of 72 and 94 ms);
//! * only a window that held the sender back moves: the application, not the window, set what an
//!   idle or slow sender had in flight.
//!
//! The path's own round trip is the lowest sample since it was last measured. A sender that has
//! kept a queue for 10 s without a sample of the path drains it: the window ramps down over a
//! round trip to what the path holds without a queue less an eighth, holds there for another,
//! and the lowest sample of the drain (less the way back's queue) is the path's round trip from
//! then on. A sender that kept no queue keeps what it measured: while the peer's transfer queues
//! up on the way back its samples would only make the path look longer. Random loss moves none
//! of this.
//!
//! Two timer changes come with it, both about a queue that moves: RTOs get [`RTO_MARGIN`] more
//! (a flush puts a burst into the queue and its newest segments come back 10–30 ms after srtt),
//! and while RTO retransmissions come without any valid RTT sample in between the RTO doubles
//! (Karn), since every ACK is then of an older copy and the estimate could never learn that the
//! round trip outgrew it.
//!
//! It costs goodput where no queue builds (slow start is slower than the full window at once,
//! and the RTO margin slows recovery from random loss), hence a flag. Measured on this project's
//! machine, `kcptun bench tunnel --path delay=20ms,rate=100mbit,queue=1mb --duration 6`: goodput
//! 8.9–9.0 / 8.6–8.7 vs 7.4 / 6.9 MB/s, loaded RTT p50 57 vs 294 ms, p99 60–68 vs 425 ms (README
//! has the other paths).

use std::time::{Duration, Instant};

use super::super::sn_diff;
use super::min_rtt::MinRtt;

/// The window never goes below this many segments.
pub(super) const FLOOR: u32 = 32;
/// A round ends after this many samples (or a quarter of a round trip after its first).
const ROUND_SAMPLES: u32 = 8;
/// The window a session starts with.
const START: u32 = 64;
/// Added to every RTO while the delay window is on.
pub(super) const RTO_MARGIN: u32 = 40;
/// The most the way back's queue is taken to be (ms).
const MAX_BACK: i32 = 60_000;
/// How long a sender keeps a queue before it drains it to measure the path afresh.
const REFRESH_AFTER: Duration = super::min_rtt::LIFETIME;

/// Queueing delay tolerated (ms) on a path whose own round trip is `min_rtt` ms.
pub(super) fn target_ms(min_rtt: i32, interval: u32) -> i32 {
    (min_rtt / 4).max(interval as i32)
}

/// One round-trip sample with what the window needs to know around it (ms, segments).
#[derive(Clone, Copy, Debug)]
pub(super) struct Sample {
    pub(super) rtt: i32,
    pub(super) srtt: i32,
    pub(super) interval: u32,
    pub(super) in_flight: u32,
    pub(super) snd_wnd: u32,
    /// The segment the sample is of.
    pub(super) sn: u32,
    pub(super) snd_nxt: u32,
}

/// How late the peer's data segments arrive by its own clock: the queue on the way back, where
/// our ACKs wait behind the peer's transfer.
#[derive(Clone, Debug, Default)]
struct WayBack {
    /// The first lateness seen (the two clocks' offset); the others are relative to it.
    base: Option<i32>,
    /// The lowest of the last 10 s: the way back without a queue.
    min: MinRtt<i32>,
    last: Option<i32>,
    /// The lowest since the last adjustment.
    round_min: Option<i32>,
}

impl WayBack {
    fn on_late(&mut self, now: Instant, late: i32) {
        let late = late.wrapping_sub(*self.base.get_or_insert(late));
        self.min.on_sample(now, late);
        self.last = Some(late);
        self.round_min = Some(self.round_min.map_or(late, |m| m.min(late)));
    }

    /// The queue the latest data segment showed (ms).
    fn latest(&self) -> i32 {
        Self::excess(self.last, self.min.get())
    }

    /// The least queue of the round (ms); starts the next round.
    fn take_round(&mut self) -> i32 {
        Self::excess(self.round_min.take(), self.min.get())
    }

    /// How much later than the lowest lateness, within what a queue can be: the timestamps are
    /// the peer's, and one that jumps (a restarted or hostile peer) must not wrap the arithmetic.
    fn excess(late: Option<i32>, min: Option<i32>) -> i32 {
        match (late, min) {
            (Some(l), Some(m)) => l.wrapping_sub(m).clamp(0, MAX_BACK),
            _ => 0,
        }
    }
}

/// The samples of segments sent after the last adjustment.
#[derive(Clone, Debug, Default)]
struct Round {
    /// `snd_nxt` at the last adjustment, past the segments it added (they go out at once, the
    /// first of them ahead of the queue they make).
    mark: Option<u32>,
    /// The first sample.
    from: Option<Instant>,
    samples: u32,
    /// The lowest sample (ms).
    min: Option<i32>,
    /// The most in flight after a flush (segments).
    flight: u32,
    /// The window held data back.
    limited: bool,
}

impl Round {
    fn restart(&mut self, mark: u32) {
        *self = Round {
            mark: Some(mark),
            ..Round::default()
        };
    }
}

/// Draining the queue to measure the path afresh.
#[derive(Clone, Copy, Debug)]
struct Drain {
    until: Instant,
    /// The ramp down, then the hold.
    half: Duration,
    /// The window it holds.
    wnd: u32,
}

#[derive(Clone, Debug)]
pub(super) struct DelayWindow {
    /// Segments allowed in flight.
    wnd: u32,
    /// No queue past the target seen yet: the window grows by half per round.
    starting: bool,
    round: Round,
    back: WayBack,
    /// The path's own round trip (ms).
    path: Option<i32>,
    /// How long the sender has kept a queue since it last saw the path's own round trip.
    queued_for: Duration,
    last_sample: Option<Instant>,
    drain: Option<Drain>,
    /// No adjustment before this (the drain's samples are not back yet).
    hold_until: Option<Instant>,
    /// The lowest sample since the drain began, the way back's queue taken off (ms).
    remeasure: Option<i32>,
}

impl DelayWindow {
    pub(super) fn new(snd_wnd: u32) -> Self {
        DelayWindow {
            wnd: START.min(snd_wnd.max(FLOOR)),
            starting: true,
            round: Round::default(),
            back: WayBack::default(),
            path: None,
            queued_for: Duration::ZERO,
            last_sample: None,
            drain: None,
            hold_until: None,
            remeasure: None,
        }
    }

    /// The window now (segments).
    pub(super) fn get(&self, now: Instant) -> u32 {
        match self.drain {
            // Down to the drain's window over its first half, not at once: sending goes on
            // (slower) meanwhile, so a small message behind the transfer does not wait for the
            // whole surplus to be acknowledged.
            Some(d) if now < d.until => {
                let half = d.half.as_millis().max(1) as u64;
                let left = d.until.saturating_duration_since(now).as_millis() as u64;
                let ramp = left.saturating_sub(half).min(half);
                let surplus = u64::from(self.wnd.saturating_sub(d.wnd));
                d.wnd + (surplus * ramp / half) as u32
            }
            _ => self.wnd,
        }
    }

    /// The window, not lowered while draining.
    pub(super) fn current(&self) -> u32 {
        self.wnd
    }

    /// A flush found more data than the window let out.
    pub(super) fn on_limited(&mut self) {
        self.round.limited = true;
    }

    /// After a flush with `in_flight` segments out.
    pub(super) fn on_flush(&mut self, in_flight: u32) {
        self.round.flight = self.round.flight.max(in_flight);
    }

    /// A data segment from the peer (not FEC-recovered) arrived `late` ms after its send time by
    /// the peer's clock (the clocks' offset included).
    pub(super) fn on_peer_send(&mut self, now: Instant, late: i32) {
        self.back.on_late(now, late);
    }

    /// After a valid round-trip sample.
    pub(super) fn on_rtt(&mut self, now: Instant, s: Sample) {
        let round = Duration::from_millis(s.srtt.max(1) as u64);
        let path = self.update_path(now, &s);
        if self.queued_for >= REFRESH_AFTER.saturating_sub(round.min(REFRESH_AFTER / 2))
            && self.drain.map_or(true, |d| now >= d.until + round)
        {
            self.start_drain(now, round, path, &s);
            return;
        }
        if self.hold_until.is_some_and(|t| now < t) {
            return;
        }
        if self.round.mark.is_some_and(|m| sn_diff(s.sn, m) < 0) {
            return;
        }
        let r = &mut self.round;
        r.min = Some(r.min.map_or(s.rtt, |m| m.min(s.rtt)));
        r.samples += 1;
        if now < *r.from.get_or_insert(now) + round / 4 && r.samples < ROUND_SAMPLES {
            return;
        }
        self.adjust(path, &s);
    }

    /// Takes the sample into the path's own round trip and the time the sender kept a queue
    /// without seeing it; returns the path's round trip (ms).
    fn update_path(&mut self, now: Instant, s: &Sample) -> i32 {
        if let Some(low) = &mut self.remeasure {
            *low = (*low).min((s.rtt - self.back.latest()).max(0));
            // The drain's samples are back: the lowest of them is the path's from now on.
            if self.hold_until.map_or(true, |t| now >= t) {
                self.path = Some(*low);
                self.remeasure = None;
                self.queued_for = Duration::ZERO;
            }
        }
        let path = match self.path {
            Some(p) if s.rtt > p => p,
            _ => {
                self.queued_for = Duration::ZERO;
                s.rtt
            }
        };
        self.path = Some(path);
        let since = self
            .last_sample
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.last_sample = Some(now);
        if self.round.limited && !self.starting {
            self.queued_for += since;
        }
        path
    }

    fn start_drain(&mut self, now: Instant, round: Duration, path: i32, s: &Sample) {
        let holds = u64::from(self.wnd) * path.max(1) as u64 / s.srtt.max(1) as u64;
        self.drain = Some(Drain {
            until: now + round * 2,
            half: round,
            wnd: ((holds - holds / 8) as u32).clamp(FLOOR, self.wnd.max(FLOOR)),
        });
        self.remeasure = Some((s.rtt - self.back.latest()).max(0));
        self.hold_until = Some(now + round * 3);
        self.back.round_min = None;
        self.round.restart(s.snd_nxt);
    }

    /// The end of a round.
    fn adjust(&mut self, path: i32, s: &Sample) {
        let seen = self.round.min.unwrap_or(s.rtt);
        // Samples range up to i32::MAX ms (the peer echoes our timestamps): saturate.
        let queue = seen
            .saturating_sub(path)
            .saturating_sub(self.back.take_round())
            .max(0);
        let target = target_ms(path, s.interval);
        let base = self.wnd.min(self.round.flight.max(s.in_flight).max(FLOOR));
        let p = path.max(1) as u64;
        let fit = (u64::from(base) * (p + target as u64) / (p + queue as u64)) as u32;
        let before = self.wnd;
        if !self.round.limited {
            // The application, not the window, set what was in flight.
        } else if self.starting && queue > target {
            self.wnd = fit.min(self.wnd);
            self.starting = false;
        } else if queue > target + (target / 4).max(2) {
            self.wnd = ((base + fit) / 2).min(self.wnd);
        } else {
            let step = (self.wnd / 8).max(1);
            let grow = if self.starting && queue <= target / 2 {
                self.wnd / 2
            } else if self.starting {
                // Some queue, perhaps the peer's (what `back` missed): no further than the
                // target, still starting.
                fit.saturating_sub(self.wnd)
            } else if queue <= 1 {
                step
            } else {
                (fit.saturating_sub(self.wnd) / 2).min(step)
            };
            self.wnd = self.wnd.saturating_add(grow);
        }
        self.wnd = self.wnd.clamp(FLOOR, s.snd_wnd.max(FLOOR));
        let added = self.wnd.saturating_sub(before);
        self.round.restart(s.snd_nxt.wrapping_add(added));
    }
}

#[cfg(test)]
mod tests;
