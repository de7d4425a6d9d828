use super::*;

/// Feeds a window samples the way a 40 ms path with fast3's 10 ms interval would (target 10 ms
/// of queue), each round's segments numbered after the last.
struct Path40 {
    now: Instant,
    sn: u32,
    d: DelayWindow,
}

impl Path40 {
    fn new() -> Self {
        Path40 {
            now: crate::test_clock::origin(),
            sn: 0,
            d: DelayWindow::new(1024),
        }
    }

    fn sample(&self, rtt: i32, in_flight: u32) -> Sample {
        Sample {
            rtt,
            srtt: rtt,
            interval: 10,
            in_flight,
            snd_wnd: 1024,
            sn: self.sn,
            snd_nxt: self.sn + 1,
        }
    }

    /// One round: the window full (or not), `ROUND_SAMPLES` samples of `rtt` ms 1 ms apart,
    /// each of a segment sent after the last adjustment.
    fn round(&mut self, rtt: i32, limited: bool) -> u32 {
        self.sn += 10_000;
        let flight = self.d.current();
        self.d.on_flush(flight);
        if limited {
            self.d.on_limited();
        }
        for _ in 0..ROUND_SAMPLES {
            self.now += Duration::from_millis(1);
            let s = self.sample(rtt, flight);
            self.d.on_rtt(self.now, s);
        }
        self.now += Duration::from_millis(rtt as u64);
        self.d.current()
    }
}

#[test]
fn slow_start_grows_by_half_then_stops_at_the_target() {
    let mut p = Path40::new();
    assert_eq!(p.d.get(p.now), START);
    // The first sample is the path; no queue, window-bound: half as much again per round.
    assert_eq!(p.round(40, true), 96);
    assert_eq!(p.round(41, true), 144);
    // Under half the target (5 ms): still half again.
    assert_eq!(p.round(44, true), 216);
    // Between half the target and the target: up to what keeps the target queued, no further.
    // 216 × (40 + 10) / (40 + 8) = 225.
    assert_eq!(p.round(48, true), 225);
    assert!(p.d.starting);
    // Past the target: that window at once, and slow start is over. 225 × 50 / 70 = 160.
    assert_eq!(p.round(70, true), 160);
    assert!(!p.d.starting);
    // No queue now: an eighth more per round.
    assert_eq!(p.round(41, true), 180);
}

#[test]
fn past_the_target_half_the_excess_goes_per_round() {
    let mut p = Path40::new();
    p.round(40, true);
    p.round(80, true); // ends slow start: 96 × 50 / 80 = 60
    assert_eq!(p.d.current(), 60);
    for _ in 0..6 {
        p.round(41, true);
    }
    let w = p.d.current();
    assert_eq!(w, 118, "60 and an eighth more six times");
    // 12 ms of queue is inside the dead band (10 + 2): nothing moves.
    assert_eq!(p.round(52, true), w);
    // 30 ms: half way to w × 50 / 70.
    let fit = w * 50 / 70;
    assert_eq!(p.round(70, true), (w + fit) / 2);
    // Between 1 ms and the target: half way up, at most an eighth.
    let w = p.d.current();
    let fit = w * 50 / 48;
    assert_eq!(p.round(48, true), w + (fit - w) / 2);
}

#[test]
fn only_a_window_that_held_the_sender_back_moves() {
    let mut p = Path40::new();
    p.round(40, true);
    let w = p.d.current();
    // An application that sent little: neither a queue nor its absence moves the window.
    assert_eq!(p.round(40, false), w);
    assert_eq!(p.round(120, false), w);
    assert!(
        p.d.starting,
        "slow start ends only on a queue the window made"
    );
}

#[test]
fn a_round_counts_only_segments_sent_after_the_last_adjustment() {
    let mut p = Path40::new();
    p.round(40, true);
    assert_eq!(p.d.current(), 96);
    // Samples of segments sent before the adjustment (and of the 32 it added, which went out
    // at once) show the old window: ignored, however late.
    let mark = p.d.round.mark.expect("a mark");
    p.d.on_limited();
    for k in 0..2 * ROUND_SAMPLES {
        p.now += Duration::from_millis(1);
        let s = Sample {
            sn: mark - 1 - k,
            ..p.sample(200, 96)
        };
        p.d.on_rtt(p.now, s);
    }
    assert_eq!(p.d.current(), 96);
    assert_eq!(p.d.round.samples, 0);
}

#[test]
fn the_peer_queue_on_the_way_back_is_not_ours() {
    let mut p = Path40::new();
    p.round(40, true);
    p.d.on_peer_send(p.now, 7_000); // the clocks' offset: any value
    p.round(40, true);
    let w = p.d.current();
    // Both directions loaded: our ACKs wait 20 ms behind the peer's data, which arrives 20 ms
    // late by its own clock. What is left (2 ms) is ours: below the target, so it grows.
    p.d.on_peer_send(p.now, 7_020);
    assert!(p.round(62, true) > w);
    // Without the peer's data segments the same samples would shrink it.
    let mut q = Path40::new();
    q.round(40, true);
    q.round(40, true);
    q.d.starting = false;
    let w = q.d.current();
    assert!(q.round(62, true) < w);
}

#[test]
fn never_below_the_floor_nor_above_the_configured_window() {
    let mut p = Path40::new();
    p.round(40, true);
    // (Fewer than 10 s of rounds: after that a drain would measure the path as 400 ms.)
    for _ in 0..10 {
        p.round(400, true);
    }
    assert_eq!(p.d.current(), FLOOR);
    let mut p = Path40::new();
    for _ in 0..60 {
        p.round(40, true);
    }
    assert_eq!(p.d.current(), 1024);
}

/// A sender that kept a queue for 10 s drains it: the window ramps down over a round trip to what
/// the path holds without a queue less an eighth, holds, and the lowest sample of the drain is
/// the path's round trip from then on. One that kept none (an idle or app-bound sender) keeps
/// its measure of the path, however late its samples come.
#[test]
fn drains_after_ten_seconds_of_queue_not_of_idle() {
    let mut p = Path40::new();
    p.round(40, true);
    // Out of slow start.
    p.round(70, true);
    // 20 s without a queue of its own (app-bound) and late samples: no drain, path still 40.
    for _ in 0..200 {
        p.round(90, false);
    }
    assert!(p.d.drain.is_none());
    assert_eq!(p.d.path, Some(40));
    // Window-bound with a standing queue (10 ms, at the target) for 10 s: a drain.
    let mut rounds = 0;
    while p.d.drain.is_none() {
        p.round(50, true);
        rounds += 1;
        assert!(rounds < 400, "no drain");
    }
    let d = p.d.drain.expect("draining");
    let w = p.d.current();
    // w × 40 / 50, an eighth less.
    let holds = w * 40 / 50;
    assert_eq!(d.wnd, (holds - holds / 8).max(FLOOR));
    let start = d.until - d.half * 2;
    assert_eq!(p.d.get(start), w);
    let mid = p.d.get(start + d.half / 2);
    assert!(d.wnd < mid && mid < w, "ramps down: {mid}");
    assert_eq!(p.d.get(start + d.half), d.wnd);
    assert_eq!(p.d.get(d.until), w);
    // The path got 5 ms longer meanwhile: the drain's samples say so.
    for _ in 0..20 {
        p.round(45, true);
    }
    assert_eq!(p.d.path, Some(45));
    assert!(p.d.queued_for < REFRESH_AFTER);
}

#[test]
fn targets() {
    assert_eq!(target_ms(0, 10), 10);
    assert_eq!(target_ms(40, 10), 10);
    assert_eq!(target_ms(100, 10), 25);
    assert_eq!(target_ms(40, 40), 40);
}

/// The way back's queue comes from the peer's timestamps: ones that jump by half the clock's
/// range (a restarted or hostile peer) neither wrap the arithmetic nor count as more than
/// `MAX_BACK`.
#[test]
fn peer_timestamps_that_jump_stay_within_bounds() {
    let mut p = Path40::new();
    p.round(40, true);
    for late in [0, i32::MAX, i32::MIN, 1, -1, i32::MAX - 5] {
        p.d.on_peer_send(p.now, late);
        assert!((0..=MAX_BACK).contains(&p.d.back.latest()));
        p.round(40, true);
    }
    assert!(p.d.current() >= FLOOR);
}

/// Round-trip samples anywhere in what a peer's echoed timestamps allow (0 to i32::MAX ms) and
/// peer timestamps that jump both ways, through slow start, queues, drains and re-measures: the
/// window stays within its bounds and nothing overflows (the test profile checks overflow).
#[test]
fn extreme_samples_and_lateness_stay_in_bounds() {
    let mut p = Path40::new();
    p.round(40, true);
    let lateness = [0, 60_000, i32::MIN, i32::MAX, 30_000, -1];
    let rtts = [0, 400, i32::MAX, 1, 65_000, i32::MAX - 1];
    for i in 0..300usize {
        p.d.on_peer_send(p.now, lateness[i % lateness.len()]);
        // Long spells of one value so that queues build, drains start and re-measures end.
        let rtt = rtts[(i / 25) % rtts.len()];
        p.sn += 10_000;
        let flight = p.d.current();
        p.d.on_flush(flight);
        p.d.on_limited();
        for _ in 0..ROUND_SAMPLES {
            p.now += Duration::from_millis(1);
            let s = p.sample(rtt, flight);
            p.d.on_rtt(p.now, s);
        }
        p.now += Duration::from_millis(500);
        let w = p.d.get(p.now);
        assert!((FLOOR..=1024).contains(&w), "window {w} at step {i}");
    }
}
