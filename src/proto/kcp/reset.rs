//! Noticing that the peer lost this conversation (it restarted), sans-IO.
//!
//! A peer that restarted knows nothing of our conversation. Whatever it sends back carries
//! `una = 0`: our own server's reset hint says so on purpose, and a Go server's listener opens a
//! brand-new session for our conv whose `rcv_nxt` stays 0 for ever (sn 0 was acknowledged by the
//! old server, so we never send it again). A peer that knows us never says `una = 0` once our
//! `snd_una` is past 0: it had received sn 0 before we could advance. Only *stale* datagrams from
//! the first round trip (reordered, or replayed by anyone on the path) can still carry it.
//!
//! So one `una = 0` behind our `snd_una` (a *sign*) is only a suspicion. We answer it with a
//! challenge, a WASK segment, which every KCP peer answers at once with a WINS carrying its
//! current `una`: a live peer contradicts the sign (any `una` other than 0 clears the suspicion),
//! a restarted one repeats it. The peer is declared reset when a sign arrives at least
//! [`PeerReset::confirm_gap`] after the first one with no contradiction in between; until then the
//! challenge is repeated every half gap. A healthy session therefore survives any number of
//! stale datagrams as long as its peer answers within the gap (twice the RTO, at least 100 ms).
//! A suspicion nobody answers for five gaps is dropped (the path is down, which is the silence
//! rule's business), so challenges never go on for ever.
//!
//! A restarted Go server may also stay silent: it drops segments beyond its receive window
//! without an ACK. While data is outstanding and nothing arrived for [`SILENT_CHALLENGE`], the
//! interval flush challenges once per [`SILENT_CHALLENGE`] too, so the WINS reply reveals it.
//!
//! Everything here is valid kcp-go traffic: WASK is KCP's window probe, which a peer answers
//! with WINS.

use std::time::{Duration, Instant};

/// Smallest gap between the first sign and the one that confirms a peer reset.
pub const CONFIRM_GAP_MIN: Duration = Duration::from_millis(100);
/// Largest confirmation gap, whatever the RTO (a long RTO after losses must not delay recovery).
pub const CONFIRM_GAP_MAX: Duration = Duration::from_secs(2);
/// Silence (nothing received) with data outstanding after which the peer is challenged, and how
/// often while the silence lasts.
pub const SILENT_CHALLENGE: Duration = Duration::from_secs(1);

/// A suspicion without any answer for this many gaps is dropped.
const EXPIRY_GAPS: u32 = 5;

/// The peer-reset detector of one [`super::Kcp`].
#[derive(Debug, Default)]
pub(super) struct PeerReset {
    /// When the first uncontradicted sign arrived.
    suspect_since: Option<Instant>,
    /// When we last asked for a challenge.
    last_challenge: Option<Instant>,
    /// Confirmed resets (sticky: once the peer is gone it stays gone).
    confirmed: u64,
    /// Signs seen (tests and diagnostics).
    signs: u64,
}

/// The confirmation gap for a retransmission timeout `rx_rto` (ms): `2 × rx_rto`, clamped to
/// [`CONFIRM_GAP_MIN`]..=[`CONFIRM_GAP_MAX`].
pub fn confirm_gap(rx_rto: u32) -> Duration {
    Duration::from_millis(2 * u64::from(rx_rto)).clamp(CONFIRM_GAP_MIN, CONFIRM_GAP_MAX)
}

impl PeerReset {
    /// One received segment's `una`. `behind`: it lies before our `snd_una` (so our `snd_una`
    /// is past 0 when `una` is 0). Returns `true` when a challenge should be sent now.
    pub(super) fn on_una(&mut self, now: Instant, una: u32, behind: bool, gap: Duration) -> bool {
        if una != 0 {
            // Only a peer that knows our conversation says anything but 0.
            self.suspect_since = None;
            return false;
        }
        if !behind || self.confirmed > 0 {
            return false;
        }
        self.signs += 1;
        match self.suspect_since {
            None => {
                self.suspect_since = Some(now);
                self.challenge(now)
            }
            Some(t) if now.saturating_duration_since(t) >= gap => {
                self.confirmed += 1;
                false
            }
            Some(_) => self.challenge_due(now, gap / 2) && self.challenge(now),
        }
    }

    /// An interval flush: while suspecting, repeat the challenge every half gap; while data is
    /// outstanding and the peer has been silent since `last_recv_at`, challenge every
    /// [`SILENT_CHALLENGE`]. Returns `true` when a challenge should be sent now.
    pub(super) fn on_interval(
        &mut self,
        now: Instant,
        outstanding: bool,
        last_recv_at: Instant,
        gap: Duration,
    ) -> bool {
        if self.confirmed > 0 {
            return false;
        }
        if let Some(t) = self.suspect_since {
            if now.saturating_duration_since(t) >= gap * EXPIRY_GAPS {
                // No answer at all for that long: the path is down, not the peer reset. Stop
                // asking; the next sign starts over (and silence has its own rule).
                self.suspect_since = None;
                return false;
            }
            return self.challenge_due(now, gap / 2) && self.challenge(now);
        }
        outstanding
            && now.saturating_duration_since(last_recv_at) >= SILENT_CHALLENGE
            && self.challenge_due(now, SILENT_CHALLENGE)
            && self.challenge(now)
    }

    fn challenge_due(&self, now: Instant, every: Duration) -> bool {
        self.last_challenge
            .map_or(true, |t| now.saturating_duration_since(t) >= every)
    }

    fn challenge(&mut self, now: Instant) -> bool {
        self.last_challenge = Some(now);
        true
    }

    /// A sign is waiting for confirmation (the interval timer must keep running).
    pub(super) fn suspecting(&self) -> bool {
        self.suspect_since.is_some() && self.confirmed == 0
    }

    /// Confirmed peer resets (0 or 1).
    pub(super) fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Signs (`una` 0 behind our `snd_una`) seen so far, confirmed or not.
    pub(super) fn signs(&self) -> u64 {
        self.signs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    const GAP: Duration = Duration::from_millis(100);

    #[test]
    fn gap_follows_the_rto_within_bounds() {
        assert_eq!(confirm_gap(0), CONFIRM_GAP_MIN);
        assert_eq!(confirm_gap(30), CONFIRM_GAP_MIN);
        assert_eq!(confirm_gap(200), Duration::from_millis(400));
        assert_eq!(confirm_gap(60_000), CONFIRM_GAP_MAX);
    }

    #[test]
    fn a_sign_repeated_after_the_gap_confirms() {
        let t0 = crate::test_clock::origin();
        let mut p = PeerReset::default();
        assert!(p.on_una(t0, 0, true, GAP), "the first sign is challenged");
        assert!(p.suspecting());
        // The reply to the challenge (one RTT later) repeats it, too early to confirm.
        assert!(!p.on_una(at(t0, 5), 0, true, GAP));
        assert_eq!(p.confirmed(), 0);
        // The interval flush repeats the challenge every half gap, not more often.
        assert!(!p.on_interval(at(t0, 40), true, at(t0, 5), GAP));
        assert!(p.on_interval(at(t0, 50), true, at(t0, 5), GAP));
        assert!(!p.on_interval(at(t0, 60), true, at(t0, 5), GAP));
        assert!(p.on_interval(at(t0, 100), true, at(t0, 55), GAP));
        assert!(!p.on_una(at(t0, 101), 0, true, GAP));
        assert_eq!(p.confirmed(), 1);
        assert!(!p.suspecting());
        // Sticky: a later nonzero una does not bring the peer back, nor asks for challenges.
        assert!(!p.on_una(at(t0, 200), 7, false, GAP));
        assert!(!p.on_interval(at(t0, 3000), true, t0, GAP));
        assert_eq!(p.confirmed(), 1);
    }

    #[test]
    fn a_live_peer_contradicts_a_stale_sign() {
        let t0 = crate::test_clock::origin();
        let mut p = PeerReset::default();
        assert!(p.on_una(t0, 0, true, GAP));
        // The WINS answering the challenge carries the peer's real una.
        assert!(!p.on_una(at(t0, 3), 42, false, GAP));
        assert!(!p.suspecting());
        // A second stale datagram long after is a new suspicion, not a confirmation.
        assert!(p.on_una(at(t0, 1500), 0, true, GAP));
        assert_eq!(p.confirmed(), 0);
        assert!(!p.on_una(at(t0, 1502), 42, false, GAP));
        // Nor does an old nonzero una (reordering) count as a sign.
        assert!(!p.on_una(at(t0, 1600), 3, true, GAP));
        // So a sign after that starts a fresh suspicion (challenged again), nothing more.
        assert!(p.on_una(at(t0, 1800), 0, true, GAP));
        assert_eq!(p.confirmed(), 0);
        assert_eq!(p.signs(), 3);
    }

    #[test]
    fn a_suspicion_nobody_answers_expires() {
        let t0 = crate::test_clock::origin();
        let mut p = PeerReset::default();
        assert!(p.on_una(t0, 0, true, GAP));
        assert!(p.on_interval(at(t0, 50), false, t0, GAP));
        assert!(p.suspecting());
        assert!(!p.on_interval(at(t0, 500), false, t0, GAP));
        assert!(!p.suspecting(), "no timer work is left once it expired");
        assert!(!p.on_interval(at(t0, 550), false, t0, GAP));
        assert_eq!(p.confirmed(), 0);
    }

    #[test]
    fn una_zero_is_no_sign_before_anything_was_acknowledged() {
        let t0 = crate::test_clock::origin();
        let mut p = PeerReset::default();
        for ms in [0, 200, 400, 5000] {
            assert!(!p.on_una(at(t0, ms), 0, false, GAP));
        }
        assert!(!p.suspecting());
        assert_eq!((p.signs(), p.confirmed()), (0, 0));
    }

    #[test]
    fn a_silent_peer_is_challenged_once_a_second_while_data_is_outstanding() {
        let t0 = crate::test_clock::origin();
        let mut p = PeerReset::default();
        // Nothing outstanding: silence is no reason to ask.
        assert!(!p.on_interval(at(t0, 5000), false, t0, GAP));
        assert!(!p.on_interval(at(t0, 999), true, t0, GAP));
        assert!(p.on_interval(at(t0, 1000), true, t0, GAP));
        assert!(!p.on_interval(at(t0, 1500), true, t0, GAP));
        assert!(p.on_interval(at(t0, 2000), true, t0, GAP));
        // Something arrived recently: no silent challenge.
        assert!(!p.on_interval(at(t0, 3500), true, at(t0, 3000), GAP));
        assert!(!p.suspecting());
    }

    // ---- the same through a whole Kcp, at explicit milliseconds ----

    use crate::proto::kcp::{Header, Kcp, KcpConfig, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS};

    const CONV: u32 = 0x0A0B_0C0D;

    fn kcp(t0: Instant) -> Kcp {
        let mut c = KcpConfig::from_mode("fast2", (0, 0, 0, 0));
        c.mtu = 200;
        c.snd_wnd = 32;
        c.rcv_wnd = 32;
        Kcp::new(CONV, &c, t0)
    }

    /// Everything `k` sends now, as (cmd, sn, ts) per segment.
    fn out(k: &mut Kcp, now: Instant) -> Vec<(u8, u32, u32)> {
        let mut v = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(n) = k.poll_transmit(now, &mut buf) {
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (h, _, after) = Header::parse(rest, CONV).unwrap();
                v.push((h.cmd, h.sn, h.ts));
                rest = after;
            }
        }
        v
    }

    fn seg(cmd: u8, sn: u32, ts: u32, una: u32) -> Vec<u8> {
        let mut b = vec![0u8; 24];
        Header {
            conv: CONV,
            cmd,
            wnd: 32,
            ts,
            sn,
            una,
            ..Header::default()
        }
        .write(&mut b);
        b
    }

    fn wasks(v: &[(u8, u32, u32)]) -> usize {
        v.iter().filter(|s| s.0 == CMD_WASK).count()
    }

    /// A session that moved three segments, all acknowledged, then sends a fourth at 1000 ms:
    /// returns it with the fourth's (sn, ts).
    fn established(t0: Instant) -> (Kcp, (u32, u32)) {
        let mut k = kcp(t0);
        k.send(&[1u8; 3 * 100]);
        let sent = out(&mut k, t0);
        let last = sent.iter().rfind(|s| s.0 == CMD_PUSH).unwrap();
        k.handle_packet(at(t0, 5), &seg(CMD_ACK, last.1, last.2, 3), false)
            .unwrap();
        assert_eq!(k.unacked(), 0);
        k.send(b"syn");
        let sent = out(&mut k, at(t0, 1000));
        let push = sent.iter().find(|s| s.0 == CMD_PUSH).unwrap();
        (k, (push.1, push.2))
    }

    #[test]
    fn kcp_dies_when_the_restarted_peer_repeats_una_zero_after_the_challenge() {
        let t0 = crate::test_clock::origin();
        let (mut k, (sn, ts)) = established(t0);
        // A restarted Go server's new session acknowledges the segment, with una 0.
        k.handle_packet(at(t0, 1001), &seg(CMD_ACK, sn, ts, 0), false)
            .unwrap();
        assert_eq!((k.una_zero_signs(), k.una_regressions()), (1, 0));
        assert_eq!(wasks(&out(&mut k, at(t0, 1001))), 1, "challenged at once");
        // Its answer (a WINS with una 0) comes too soon to confirm.
        k.handle_packet(at(t0, 1003), &seg(CMD_WINS, 0, 0, 0), false)
            .unwrap();
        assert_eq!(k.una_regressions(), 0);
        // The interval timer keeps challenging while the suspicion stands.
        let gap = confirm_gap(k.rx_rto());
        let mut challenged = 0;
        let mut t = 1003;
        while Duration::from_millis(t - 1001) < gap {
            t += 10;
            if let Some(due) = k.poll_timeout() {
                k.handle_timeout(due.max(at(t0, t)));
            }
            challenged += wasks(&out(&mut k, at(t0, t)));
        }
        assert!(challenged >= 1, "re-challenged within the gap");
        k.handle_packet(at(t0, t + 1), &seg(CMD_WINS, 0, 0, 0), false)
            .unwrap();
        assert_eq!(k.una_regressions(), 1, "confirmed after {gap:?}");
    }

    #[test]
    fn kcp_survives_a_stale_una_zero_that_the_live_peer_contradicts() {
        let t0 = crate::test_clock::origin();
        let (mut k, (sn, ts)) = established(t0);
        k.handle_packet(at(t0, 1001), &seg(CMD_ACK, sn, ts, 4), false)
            .unwrap();
        assert_eq!(k.unacked(), 0);
        // The peer's very first datagram, replayed 1.5 s late.
        k.handle_packet(at(t0, 1500), &seg(CMD_ACK, 0, 0, 0), false)
            .unwrap();
        assert_eq!(wasks(&out(&mut k, at(t0, 1500))), 1);
        // The live peer answers the challenge with its real una.
        k.handle_packet(at(t0, 1502), &seg(CMD_WINS, 0, 0, 4), false)
            .unwrap();
        // The same stale datagram again, long after: a new suspicion, still no verdict.
        k.handle_packet(at(t0, 3000), &seg(CMD_ACK, 0, 0, 0), false)
            .unwrap();
        k.handle_packet(at(t0, 3002), &seg(CMD_WINS, 0, 0, 4), false)
            .unwrap();
        assert_eq!((k.una_zero_signs(), k.una_regressions()), (2, 0));
        // Nothing is left to do: the session goes idle again.
        let _ = out(&mut k, at(t0, 3002));
        assert_eq!(k.poll_timeout(), None);
    }

    #[test]
    fn kcp_challenges_a_silent_peer_while_data_is_outstanding() {
        let t0 = crate::test_clock::origin();
        let (mut k, _) = established(t0);
        let mut first_wask = None;
        let mut t = 1000;
        while t < 3200 {
            t += 10;
            if let Some(due) = k.poll_timeout() {
                if due <= at(t0, t) {
                    k.handle_timeout(at(t0, t));
                }
            }
            if wasks(&out(&mut k, at(t0, t))) > 0 {
                first_wask.get_or_insert(t);
            }
        }
        // Silent since the ACK at 5 ms: the first interval flush past 1 s of silence asks.
        let first = first_wask.expect("a silent peer is challenged");
        assert!(
            (1005..=1100).contains(&first),
            "first challenge at {first} ms"
        );
        assert_eq!(k.una_regressions(), 0, "silence alone is no reset");
    }
}
