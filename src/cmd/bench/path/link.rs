//! One direction's decisions (see the parent module for the model): deterministic, with the
//! clock and the randomness passed in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::PathSpec;
use crate::proto::rng::Rng;

/// Extra hold of a reordered datagram: uniform in this range.
const REORDER_HOLD_US: (u64, u64) = (1_000, 10_000);

/// What [`Link::offer`] decided for one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Lost on the way (the `loss` model).
    Lost,
    /// Dropped at the tail of a full queue.
    QueueFull,
    /// To be delivered at `at`; `held`: held back so that later datagrams overtake it.
    Deliver { at: Instant, held: bool },
}

/// Counters of one direction.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub offered: AtomicU64,
    pub delivered: AtomicU64,
    pub lost: AtomicU64,
    pub queue_drops: AtomicU64,
    pub reordered: AtomicU64,
}

impl LinkStats {
    /// `(offered, delivered, lost, queue drops, reordered)`.
    pub fn snapshot(&self) -> [u64; 5] {
        [
            &self.offered,
            &self.delivered,
            &self.lost,
            &self.queue_drops,
            &self.reordered,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// One direction's decisions; see the module doc for the model. Call [`Link::offer`] once per
/// arriving datagram with non-decreasing `now`.
#[derive(Debug)]
pub struct Link {
    spec: PathSpec,
    /// When the serializer has sent everything accepted so far (`None`: idle since start).
    busy_until: Option<Instant>,
    /// Delivery time of the last in-order datagram (later ones never overtake it).
    last_delivery: Option<Instant>,
    /// In a loss burst (burst > 1 only).
    in_burst: bool,
}

impl Link {
    pub fn new(spec: PathSpec) -> Self {
        Link {
            spec,
            busy_until: None,
            last_delivery: None,
            in_burst: false,
        }
    }

    fn chance(rng: &mut Rng, ppm: u32) -> bool {
        ppm > 0 && rng.below(1_000_000) < u64::from(ppm)
    }

    fn lose(&mut self, rng: &mut Rng) -> bool {
        let s = &self.spec;
        if s.loss_ppm == 0 {
            return false;
        }
        if s.burst <= 1 {
            return Self::chance(rng, s.loss_ppm);
        }
        // Two states: a burst ends after each loss with probability 1/burst (mean length
        // `burst`); one starts with the probability that makes the long-run loss `loss`:
        // p = loss / (burst · (1 − loss)).
        if self.in_burst {
            self.in_burst = rng.below(u64::from(s.burst)) != 0;
            return true;
        }
        let loss = f64::from(s.loss_ppm) / 1e6;
        let start = if loss >= 1.0 {
            1.0
        } else {
            loss / (f64::from(s.burst) * (1.0 - loss))
        };
        if Self::chance(rng, (start.min(1.0) * 1e6).round() as u32) {
            self.in_burst = rng.below(u64::from(s.burst)) != 0;
            return true;
        }
        false
    }

    /// Decides the fate of a datagram of `len` bytes arriving at `now`.
    pub fn offer(&mut self, now: Instant, len: usize, rng: &mut Rng) -> Verdict {
        if self.lose(rng) {
            return Verdict::Lost;
        }
        let sent = match self.spec.rate_bps {
            None => now,
            Some(rate) => {
                let start = self.busy_until.filter(|&b| b > now).unwrap_or(now);
                let backlog_ns = start.duration_since(now).as_nanos();
                let backlog_bytes = backlog_ns * u128::from(rate) / 8 / 1_000_000_000;
                if backlog_bytes + len as u128 > u128::from(self.spec.queue_bytes) {
                    return Verdict::QueueFull;
                }
                let tx_ns = (len as u128 * 8 * 1_000_000_000).div_ceil(u128::from(rate));
                let done = start + Duration::from_nanos(tx_ns.min(u128::from(u64::MAX)) as u64);
                self.busy_until = Some(done);
                done
            }
        };
        let jitter_us = self.spec.jitter.as_micros() as u64;
        let extra = if jitter_us > 0 {
            Duration::from_micros(rng.below(jitter_us + 1))
        } else {
            Duration::ZERO
        };
        let at = sent + self.spec.delay + extra;
        if Self::chance(rng, self.spec.reorder_ppm) {
            let (lo, hi) = REORDER_HOLD_US;
            let hold = lo + rng.below(hi - lo + 1);
            let base = self.last_delivery.map_or(at, |l| l.max(at));
            return Verdict::Deliver {
                at: base + Duration::from_micros(hold),
                held: true,
            };
        }
        let at = self.last_delivery.map_or(at, |l| l.max(at));
        self.last_delivery = Some(at);
        Verdict::Deliver { at, held: false }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> Rng {
        Rng::from_seed([42; 32])
    }

    #[test]
    fn loss_fraction_matches_over_many_datagrams() {
        let t0 = Instant::now();
        for (spec, lo, hi) in [
            ("loss=2%", 0.018, 0.022),
            ("loss=10%", 0.095, 0.105),
            ("loss=10%,burst=5", 0.09, 0.11),
            ("none", 0.0, 0.0),
        ] {
            let mut l = Link::new(PathSpec::parse(spec).unwrap());
            let mut r = rng();
            let n = 100_000;
            let mut lost = 0;
            let mut runs = 0;
            let mut prev_lost = false;
            for i in 0..n {
                let v = l.offer(t0 + Duration::from_micros(i), 1000, &mut r);
                let is_lost = v == Verdict::Lost;
                lost += usize::from(is_lost);
                runs += usize::from(is_lost && !prev_lost);
                prev_lost = is_lost;
            }
            let f = lost as f64 / n as f64;
            assert!((lo..=hi).contains(&f), "{spec}: lost fraction {f}");
            if spec.contains("burst=5") {
                let mean = lost as f64 / runs as f64;
                assert!((4.0..6.0).contains(&mean), "mean burst {mean}");
            } else if lost > 0 {
                // Independent losses: runs are mostly single datagrams.
                assert!((lost as f64 / runs as f64) < 1.2);
            }
        }
    }

    #[test]
    fn delay_is_at_least_configured_and_order_is_kept() {
        let mut l = Link::new(PathSpec::parse("delay=20ms,jitter=5ms").unwrap());
        let mut r = rng();
        let t0 = Instant::now();
        let mut last = t0;
        let mut max_extra = Duration::ZERO;
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            let Verdict::Deliver { at, held } = l.offer(now, 1200, &mut r) else {
                panic!("a clean-loss path dropped a datagram");
            };
            assert!(!held);
            assert!(at >= now + Duration::from_millis(20));
            assert!(at >= last, "jitter reordered datagram {i}");
            max_extra = max_extra.max(at - now - Duration::from_millis(20));
            last = at;
        }
        // Jitter is used (and bounded by FIFO order plus 5 ms spread).
        assert!(max_extra > Duration::from_millis(3), "{max_extra:?}");
        assert!(max_extra <= Duration::from_millis(6), "{max_extra:?}");
    }

    #[test]
    fn rate_limits_and_queue_drops_the_tail() {
        // 8 Mbit/s = 1 byte/µs; queue 10 000 bytes; datagrams of 1000 bytes every 500 µs
        // (twice the rate): the queue fills, then about half are dropped.
        let mut l = Link::new(PathSpec::parse("rate=8mbit,queue=10000b").unwrap());
        let mut r = rng();
        let t0 = Instant::now();
        let (mut ok, mut full) = (0u64, 0u64);
        let mut last = t0;
        for i in 0..4000u64 {
            let now = t0 + Duration::from_micros(i * 500);
            match l.offer(now, 1000, &mut r) {
                Verdict::Deliver { at, .. } => {
                    ok += 1;
                    // Serialization: at least 1000 µs after the previous delivery.
                    if ok > 1 {
                        assert!(at - last >= Duration::from_micros(1000));
                    }
                    // Never more than a full queue plus one datagram behind.
                    assert!(at - now <= Duration::from_micros(11_000));
                    last = at;
                }
                Verdict::QueueFull => full += 1,
                Verdict::Lost => panic!("no loss configured"),
            }
        }
        // 2 s at 1 byte/µs = 2000 datagrams (+ the queue's 10).
        assert!((1990..=2015).contains(&ok), "delivered {ok}");
        assert_eq!(ok + full, 4000);
        // Below the rate nothing is dropped and nothing waits.
        let mut l = Link::new(PathSpec::parse("rate=8mbit,queue=10000b").unwrap());
        for i in 0..1000u64 {
            let now = t0 + Duration::from_micros(i * 2000);
            assert_eq!(
                l.offer(now, 1000, &mut r),
                Verdict::Deliver {
                    at: now + Duration::from_micros(1000),
                    held: false
                }
            );
        }
    }

    #[test]
    fn reordering_holds_some_back_to_be_overtaken() {
        let mut l = Link::new(PathSpec::parse("delay=10ms,reorder=5%").unwrap());
        let mut r = rng();
        let t0 = Instant::now();
        let mut held = Vec::new();
        let mut order = Vec::new();
        for i in 0..20_000u64 {
            let now = t0 + Duration::from_micros(i * 200);
            let Verdict::Deliver { at, held: h } = l.offer(now, 100, &mut r) else {
                panic!("dropped");
            };
            if h {
                held.push(i);
                // Held 1–10 ms beyond its in-order time.
                let extra = at - (now + Duration::from_millis(10));
                assert!(extra >= Duration::from_millis(1) && extra <= Duration::from_millis(10));
            }
            order.push((at, i));
        }
        let f = held.len() as f64 / 20_000.0;
        assert!((0.045..=0.055).contains(&f), "reordered fraction {f}");
        // Delivered in time order, the held datagrams arrive after later ones.
        order.sort();
        let overtaken = order.windows(2).filter(|w| w[0].1 > w[1].1).count();
        assert!(
            overtaken >= held.len() * 9 / 10,
            "{overtaken} of {}",
            held.len()
        );
    }
}
