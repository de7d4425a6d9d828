//! The path's own round trip: the lowest RTT sample of the last [`LIFETIME`], shared by repair
//! ahead and the delay window (milliseconds from KCP's ts) and the short-path cap (microseconds
//! from our own send times).

use std::time::{Duration, Instant};

/// How long the lowest round trip seen stays the path's own delay before a fresh sample
/// replaces it (a path whose delay rose for good is re-learnt this long after).
pub(super) const LIFETIME: Duration = Duration::from_secs(10);

/// The lowest sample of the last [`LIFETIME`] (roughly: a newer sample replaces an expired
/// minimum even when higher). `T` is the sample's unit: `i32` ms or a `Duration`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct MinRtt<T> {
    min: T,
    at: Option<Instant>,
}

impl<T: Copy + PartialOrd> MinRtt<T> {
    pub(super) fn on_sample(&mut self, now: Instant, rtt: T) {
        let expired = self
            .at
            .map_or(true, |t| now.saturating_duration_since(t) >= LIFETIME);
        if expired || rtt <= self.min {
            self.min = rtt;
            self.at = Some(now);
        }
    }

    pub(super) fn get(&self) -> Option<T> {
        self.at.map(|_| self.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_lowest_until_it_expires() {
        let t0 = crate::test_clock::origin();
        let mut m = MinRtt::<i32>::default();
        assert_eq!(m.get(), None);
        m.on_sample(t0, 100);
        m.on_sample(t0 + Duration::from_secs(1), 140);
        assert_eq!(m.get(), Some(100));
        m.on_sample(t0 + Duration::from_secs(2), 90);
        assert_eq!(m.get(), Some(90));
        // Ten seconds after the minimum was taken, any sample replaces it.
        m.on_sample(t0 + Duration::from_secs(12), 150);
        assert_eq!(m.get(), Some(150));
    }

    #[test]
    fn works_in_microseconds_too() {
        let t0 = crate::test_clock::origin();
        let mut m = MinRtt::<Duration>::default();
        m.on_sample(t0, Duration::from_micros(100));
        m.on_sample(t0 + Duration::from_secs(5), Duration::from_millis(5));
        assert_eq!(m.get(), Some(Duration::from_micros(100)));
        m.on_sample(t0 + Duration::from_millis(10_001), Duration::from_millis(5));
        assert_eq!(m.get(), Some(Duration::from_millis(5)));
    }
}
