//! Whether the path loses heavily (several percent of datagrams, as a radio link or a congested
//! long-haul route does): then one duplicate is not enough for a message that must not wait a
//! retransmission timeout (see `flush`: lone segments go out three times instead of twice).
//!
//! Two gauges, either of which may say so:
//! * arriving datagrams that FEC had to rebuild, against those that came through (the peer's
//!   direction; only with FEC, but then for every datagram, ACKs included, so even a direction
//!   that carries only ACKs and answers is measured every few milliseconds of a transfer);
//! * our own retransmissions after a loss report or timeout, against new segments sent (our
//!   direction, also without FEC, but only while we send data).
//!
//! Each decides per block of [`BLOCK`] events with hysteresis, so one unlucky block neither
//! turns the third copy on nor a lucky one off.

/// Events per decision.
const BLOCK: u32 = 256;
/// Losses per block (percent) from which the loss is heavy, and below which it no longer is.
const ON_PCT: u32 = 5;
const OFF_PCT: u32 = 3;

/// One gauge: losses among events, decided per block.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LossGauge {
    events: u32,
    lost: u32,
    heavy: bool,
}

impl LossGauge {
    /// Counts one event (`lost` or not).
    pub(super) fn record(&mut self, lost: bool) {
        self.events += 1;
        self.lost += u32::from(lost);
        if self.events >= BLOCK {
            let pct = self.lost * 100 / self.events;
            self.heavy = if self.heavy {
                pct >= OFF_PCT
            } else {
                pct >= ON_PCT
            };
            self.events = 0;
            self.lost = 0;
        }
    }

    /// Whether the last decided block showed heavy loss.
    pub(super) fn heavy(&self) -> bool {
        self.heavy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(g: &mut LossGauge, lost: u32) {
        for i in 0..BLOCK {
            g.record(i < lost);
        }
    }

    #[test]
    fn heavy_from_five_percent_until_below_three() {
        let mut g = LossGauge::default();
        assert!(!g.heavy());
        block(&mut g, 12); // 4.7 %
        assert!(!g.heavy());
        // Undecided until the block is complete.
        for _ in 0..BLOCK - 1 {
            g.record(true);
        }
        assert!(!g.heavy());
        g.record(true);
        assert!(g.heavy());
        block(&mut g, 8); // 3.1 %: still heavy
        assert!(g.heavy());
        block(&mut g, 7); // 2.7 %
        assert!(!g.heavy());
        block(&mut g, 0);
        assert!(!g.heavy());
    }
}
