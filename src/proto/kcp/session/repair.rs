//! Loss repair on long lossy paths ([`KcpConfig::repair_ahead`](super::KcpConfig)): ours, not
//! kcp-go's, and nothing a kcp-go peer could tell from ordinary traffic.
//!
//! With a fixed window KCP may have at most `wnd` segments past `snd_una` out. On a 100 ms path
//! with 10 % loss, FEC 10/3 leaves a hole every ~40 segments, so nearly every window holds one:
//! the sender learns of it one round trip after sending it and the hole is filled half a round
//! trip later, but `snd_una` (and with it the window) moves only when that news comes back,
//! another half round trip on. A window-bound transfer thus moves one window per two round trips,
//! and a retransmission lost again stalls it for a retransmission timeout on top.
//!
//! Two changes, both in what the sender sends and when:
//! * The window counts from the first segment the receiver may still lack when the next new
//!   segment reaches it, not from `snd_una`. Segments already acknowledged, and segments
//!   retransmitted (their repair leaves before any new segment, so it arrives first on a path
//!   that keeps order), are skipped, up to half a window past `snd_una`. A kcp-go receiver
//!   accepts what it always did (`sn < rcv_nxt + rcv_wnd`); should a repair be lost again, what
//!   it then drops is sent again like any loss. Ours holds half a window more (see
//!   `buffers::rcv_span`), so that bet costs nothing between two of ours.
//! * A retransmission after a loss report (fast or early retransmit) goes out twice, in
//!   separate datagrams: at 10 % random loss the repair is then lost 1 % of the time instead of
//!   10 %, which is what makes skipping repaired segments safe.
//!
//! Both stand down while a queue shows (the smoothed round trip well above the lowest one seen
//! lately): there loss means congestion, and more data or duplicates would only feed the queue.

use super::super::sn_diff;
use super::Kcp;

/// The window may count from at most this fraction (1/n) of itself past `snd_una`.
const AHEAD_DIV: u32 = 2;

/// At most this many further copies per flush (of lone segments and repairs). A window-bound
/// transfer at 10 % loss sends its window in one flush per round trip, with 60–120 repairs in
/// it: the former cap of 32 left half of them single, and a lost one held every message behind
/// it for another round trip.
pub(super) const COPIES_MAX: usize = 256;

/// Whether the smoothed RTT shows a standing queue: more than a quarter of the path's own delay
/// (and more than two flush intervals, which ACK batching alone can add) above the lowest
/// recent sample. No sample yet: no.
pub(super) fn queue_shows(srtt: i32, min_rtt: Option<i32>, interval: u32) -> bool {
    match min_rtt {
        Some(min) => srtt > min + (min / 4).max(2 * interval as i32),
        None => false,
    }
}

impl Kcp {
    /// Whether the repairs of this moment may skip ahead and go out twice (see the module docs).
    pub(super) fn repair_ahead_now(&self) -> bool {
        self.repair_ahead && !queue_shows(self.rx_srtt, self.min_rtt.get(), self.interval)
    }

    /// The sn from which the send window of `cwnd` segments counts (see the module docs):
    /// `snd_una`, or past the leading run of acknowledged or retransmitted segments.
    pub(super) fn window_base(&self, cwnd: u32) -> u32 {
        let mut base = self.snd_una;
        if !self.repair_ahead_now() {
            return base;
        }
        let limit = self.snd_una.wrapping_add(cwnd / AHEAD_DIV);
        // Only transmitted segments qualify; the never-sent tail starts at `sent_nxt`.
        for seg in &self.snd_buf {
            if sn_diff(seg.sn, limit) >= 0 || sn_diff(seg.sn, self.sent_nxt) >= 0 {
                break;
            }
            if !(seg.acked || seg.xmit > 1) {
                break;
            }
            base = seg.sn.wrapping_add(1);
        }
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_shows_only_well_above_the_path_delay() {
        assert!(!queue_shows(130, None, 10));
        // 100 ms path: a quarter (25 ms) above it is tolerated.
        assert!(!queue_shows(125, Some(100), 10));
        assert!(queue_shows(126, Some(100), 10));
        // Short paths: two flush intervals of ACK batching are not a queue.
        assert!(!queue_shows(20, Some(0), 10));
        assert!(queue_shows(21, Some(0), 10));
    }
}
