//! The in-flight cap of sub-millisecond paths ([`KcpConfig::short_path_cap`](super::KcpConfig)):
//! ours, not kcp-go's, and invisible on the wire (the sender only keeps less outstanding).
//!
//! On loopback or a LAN a round trip takes well under a millisecond, yet a 1024-segment window
//! keeps ~1.4 MB outstanding: 5 ms of data at 270 MB/s, queued in socket buffers and in KCP's own
//! send queue, in front of every small message that shares the tunnel with a transfer. What such a
//! path needs in flight is what the CPUs move in about a millisecond. So while the lowest round
//! trip of the last 10 s (timed in microseconds from our own send times) is below 1 ms, the data
//! outstanding is held to [`SLACK`] (or two round trips, if longer) of the highest delivery rate of
//! the last [`SAMPLES`] × 10 ms during which the window, not the application, limited the sender
//! (never below [`FLOOR`], which also keeps two of a receiver's 56-ACK batches in flight). Measured
//! on this project's 2-core machine (`kcptun bench tunnel`, aes): loaded RTT p50 6–8 → 1.6–2.0 ms,
//! p99 11–15 → 5.2–5.6 ms, same goodput. Long paths never qualify and are untouched.
//!
//! A transfer that starts before any sample exists starts at the floor, not at the whole window:
//! uncapped, its first 10 ms put ~1024 segments (3–5 ms on loopback) in front of every small
//! message, which made the first few loaded probes of each `kcptun bench tunnel` phase its slowest.
//! From the floor the cap at least doubles per sample while the path keeps up: with the cap
//! outstanding for a whole sample, the rate is cap / round trip, and the slack is at least two
//! round trips (from 128 segments to 1024 in 30 ms).

use std::time::{Duration, Instant};

use super::min_rtt::MinRtt;

/// Segments the cap never goes below.
pub(super) const FLOOR: u32 = 128;
/// The data kept outstanding, as time at the delivery rate.
const SLACK: Duration = Duration::from_millis(1);
/// Paths whose lowest round trip is at least this long are not capped.
const SHORT_PATH: Duration = Duration::from_millis(1);
/// Delivery-rate samples kept (the highest counts).
const SAMPLES: usize = 20;
/// Length of one delivery-rate sample.
const SAMPLE_SPAN: Duration = Duration::from_millis(10);

#[derive(Clone, Debug, Default)]
pub(super) struct InflightCap {
    min_rtt: MinRtt<Duration>,
    /// Segments acknowledged so far.
    delivered: u64,
    /// The current sample: its start and `delivered` then.
    start: Option<(Instant, u64)>,
    /// The window limited the sender during the current sample.
    limited: bool,
    /// Delivery rates, segments per second (0: no sample).
    rates: [f64; SAMPLES],
    next: usize,
}

impl InflightCap {
    /// A round trip timed from our own send time of the acknowledged transmission.
    pub(super) fn on_rtt(&mut self, now: Instant, rtt: Duration) {
        self.min_rtt.on_sample(now, rtt);
    }

    /// `segs` segments were acknowledged for the first time.
    pub(super) fn on_delivered(&mut self, segs: u64) {
        self.delivered += segs;
    }

    /// A flush found the window full or data waiting behind it.
    pub(super) fn on_limited(&mut self) {
        self.limited = true;
    }

    /// Called at every flush: closes the current rate sample once it spans [`SAMPLE_SPAN`].
    pub(super) fn tick(&mut self, now: Instant) {
        let Some((start, at_start)) = self.start else {
            self.start = Some((now, self.delivered));
            return;
        };
        let span = now.saturating_duration_since(start);
        if span < SAMPLE_SPAN {
            return;
        }
        if self.limited {
            self.rates[self.next] = (self.delivered - at_start) as f64 / span.as_secs_f64();
            self.next = (self.next + 1) % SAMPLES;
        }
        self.limited = false;
        self.start = Some((now, self.delivered));
    }

    /// Segments allowed outstanding, or `None` (not a short path, or no round trip known yet).
    /// [`FLOOR`] until a delivery rate is sampled.
    pub(super) fn cap(&self) -> Option<u32> {
        let min = self.min_rtt.get()?;
        if min >= SHORT_PATH {
            return None;
        }
        let rate = self.rates.iter().copied().fold(0.0, f64::max);
        let slack = SLACK.max(2 * min);
        // (Less a hair, so that float error cannot round an exact count up.)
        let segs = (rate * slack.as_secs_f64() - 1e-6)
            .ceil()
            .clamp(0.0, u32::MAX as f64) as u32;
        Some(segs.max(FLOOR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// `per_ms` segments acknowledged per ms, window-limited or not, from `from` to `to` ms.
    fn run(c: &mut InflightCap, t0: Instant, from: u64, to: u64, per_ms: u64, limited: bool) {
        for t in from..to {
            c.on_delivered(per_ms);
            if limited {
                c.on_limited();
            }
            c.tick(ms(t0, t + 1));
        }
    }

    /// A cap that has seen one round trip of `rtt` and started its first sample.
    fn measured(rtt: Duration) -> (Instant, InflightCap) {
        let t0 = crate::test_clock::origin();
        let mut c = InflightCap::default();
        c.on_rtt(t0, rtt);
        c.tick(t0);
        (t0, c)
    }

    #[test]
    fn a_short_path_holds_a_millisecond_of_the_delivery_rate() {
        let t0 = crate::test_clock::origin();
        let mut c = InflightCap::default();
        assert_eq!(c.cap(), None, "nothing known");
        c.on_rtt(t0, Duration::from_micros(200));
        c.tick(t0);
        assert_eq!(
            c.cap(),
            Some(FLOOR),
            "no rate sample yet: start at the floor"
        );
        // 300 segments per ms, sampled over 10 ms.
        run(&mut c, t0, 0, 100, 300, true);
        assert_eq!(c.cap(), Some(300));
    }

    #[test]
    fn a_path_near_a_millisecond_keeps_two_round_trips() {
        let (t0, mut c) = measured(Duration::from_micros(800));
        run(&mut c, t0, 0, 100, 300, true);
        assert_eq!(c.cap(), Some(480), "300 per ms over 1.6 ms");
    }

    #[test]
    fn a_transfer_starts_at_the_floor_and_doubles_per_sample() {
        // A window-bound transfer on a path of round trip `rtt` with room for 2000 segments
        // per ms: each ms, the cap's worth is delivered every round trip.
        for rtt_us in [100u64, 500, 900] {
            let (t0, mut c) = measured(Duration::from_micros(rtt_us));
            let mut caps = vec![c.cap().unwrap()];
            for ms in 0..30 {
                let per_ms = (u64::from(*caps.last().unwrap()) * 1000 / rtt_us).min(2000);
                run(&mut c, t0, ms, ms + 1, per_ms, true);
                caps.push(c.cap().unwrap());
            }
            assert_eq!(caps[0], FLOOR, "{rtt_us} µs");
            assert!(caps[10] >= 2 * FLOOR, "{rtt_us} µs: {caps:?}");
            assert!(caps[20] >= 4 * FLOOR, "{rtt_us} µs: {caps:?}");
            // (Less a hair: the rates are whole segments per ms.)
            assert!(caps[30] >= 8 * FLOOR - 8, "{rtt_us} µs: {caps:?}");
        }
    }

    #[test]
    fn the_floor_and_long_paths() {
        let t0 = crate::test_clock::origin();
        let mut c = InflightCap::default();
        c.on_rtt(t0, Duration::from_micros(300));
        run(&mut c, t0, 0, 50, 30, true);
        assert_eq!(c.cap(), Some(FLOOR), "30 per ms is below the floor");
        // A 2 ms round trip is not a short path: no cap at all.
        let mut c = InflightCap::default();
        c.on_rtt(t0, Duration::from_millis(2));
        run(&mut c, t0, 0, 50, 30, true);
        assert_eq!(c.cap(), None);
    }

    #[test]
    fn only_window_limited_time_counts_and_the_highest_rate_rules() {
        let (t0, mut c) = measured(Duration::from_micros(100));
        // An application sending little says nothing about the path.
        run(&mut c, t0, 0, 100, 30, false);
        assert_eq!(c.cap(), Some(FLOOR));
        run(&mut c, t0, 100, 120, 500, true);
        assert_eq!(c.cap(), Some(500));
        // A slower spell does not lower the cap while the fast samples are among the last 20.
        run(&mut c, t0, 120, 200, 200, true);
        assert_eq!(c.cap(), Some(500));
        run(&mut c, t0, 200, 400, 200, true);
        assert_eq!(c.cap(), Some(200));
    }
}
