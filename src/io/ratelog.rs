//! Rate-limited warnings: a flood (300 connections failing at once for want of descriptors, a
//! burst of garbage datagrams, a target that refuses every connection) must not flood the log.
//!
//! Each cause (a `&'static str` naming the condition, e.g. `"connect to target"`) is logged at
//! most once per [`WINDOW`]; the ones left out are counted and reported once the window is over,
//! as `"<cause>: … and N more in the last second"`, either by the next occurrence or by
//! [`RateLog::flush`], which the event loop calls from its once-a-second tick. Counting costs no
//! formatting: a left-out message is never rendered. Causes are few and fixed in the code, so the
//! table stays tiny.

use std::fmt;
use std::time::{Duration, Instant};

use log::warn;

/// At most one line per cause in this span.
pub const WINDOW: Duration = Duration::from_secs(1);

struct Entry {
    cause: &'static str,
    /// When the last line of this cause was written.
    logged_at: Instant,
    /// Occurrences left out since then.
    left_out: u64,
}

/// The per-cause table (see the module docs).
#[derive(Default)]
pub struct RateLog {
    entries: Vec<Entry>,
}

/// What to write for one occurrence.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write the message; `left_out` earlier ones of the same cause were not written.
    Write { left_out: u64 },
    /// Count it and write nothing.
    Skip,
}

impl RateLog {
    pub fn new() -> Self {
        RateLog::default()
    }

    /// Decides about one occurrence of `cause` at `now`.
    pub fn admit(&mut self, now: Instant, cause: &'static str) -> Verdict {
        match self.entries.iter_mut().find(|e| e.cause == cause) {
            Some(e) if now.saturating_duration_since(e.logged_at) < WINDOW => {
                e.left_out += 1;
                Verdict::Skip
            }
            Some(e) => {
                e.logged_at = now;
                Verdict::Write {
                    left_out: std::mem::take(&mut e.left_out),
                }
            }
            None => {
                self.entries.push(Entry {
                    cause,
                    logged_at: now,
                    left_out: 0,
                });
                Verdict::Write { left_out: 0 }
            }
        }
    }

    /// Logs `msg` (a warning) unless `cause` was logged less than [`WINDOW`] ago.
    pub fn warn(&mut self, now: Instant, cause: &'static str, msg: fmt::Arguments<'_>) {
        match self.admit(now, cause) {
            Verdict::Skip => {}
            Verdict::Write { left_out: 0 } => warn!("{msg}"),
            Verdict::Write { left_out } => {
                warn!("{cause}: … and {left_out} more in the last second");
                warn!("{msg}");
            }
        }
    }

    /// Causes whose window is over with occurrences still uncounted in the log: each is returned
    /// once, with its count, and its window starts afresh.
    pub fn due(&mut self, now: Instant) -> Vec<(&'static str, u64)> {
        let mut out = Vec::new();
        for e in &mut self.entries {
            if e.left_out > 0 && now.saturating_duration_since(e.logged_at) >= WINDOW {
                out.push((e.cause, std::mem::take(&mut e.left_out)));
                e.logged_at = now;
            }
        }
        out
    }

    /// Writes the counts of [`RateLog::due`] (call about once a second).
    pub fn flush(&mut self, now: Instant) {
        for (cause, n) in self.due(now) {
            warn!("{cause}: … and {n} more in the last second");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_cause_per_second_and_the_rest_counted() {
        let t0 = Instant::now();
        let mut r = RateLog::new();
        assert_eq!(r.admit(t0, "accept"), Verdict::Write { left_out: 0 });
        for i in 0..243u64 {
            assert_eq!(
                r.admit(t0 + Duration::from_millis(i * 4), "accept"),
                Verdict::Skip
            );
        }
        // Another cause has its own window.
        assert_eq!(
            r.admit(t0 + Duration::from_millis(10), "connect to target"),
            Verdict::Write { left_out: 0 }
        );
        // Before the window ends nothing is due; after it, the count is reported once.
        assert!(r.due(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(r.due(t0 + WINDOW), vec![("accept", 243)]);
        assert!(r.due(t0 + WINDOW * 3).is_empty());
    }

    #[test]
    fn the_next_line_after_the_window_carries_the_count() {
        let t0 = Instant::now();
        let mut r = RateLog::new();
        assert_eq!(r.admit(t0, "udp send"), Verdict::Write { left_out: 0 });
        assert_eq!(r.admit(t0, "udp send"), Verdict::Skip);
        assert_eq!(r.admit(t0, "udp send"), Verdict::Skip);
        assert_eq!(
            r.admit(t0 + WINDOW, "udp send"),
            Verdict::Write { left_out: 2 }
        );
        // The count went with that line: nothing left to flush.
        assert!(r.due(t0 + WINDOW * 2).is_empty());
    }

    #[test]
    fn a_sustained_flood_writes_about_one_line_a_second() {
        let t0 = Instant::now();
        let mut r = RateLog::new();
        let (mut lines, mut skipped, mut counted) = (0u64, 0u64, 0u64);
        // 10 s of one failure every millisecond, with the once-a-second flush.
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            match r.admit(now, "connect to target") {
                Verdict::Write { left_out } => {
                    lines += 1;
                    counted += left_out;
                }
                Verdict::Skip => skipped += 1,
            }
            if ms % 1000 == 999 {
                for (_, n) in r.due(now) {
                    lines += 1;
                    counted += n;
                }
            }
        }
        assert!(lines <= 20, "{lines} lines for 10 s of flood");
        // Every occurrence left out is counted in a written line (the last window's count is
        // still pending until the next flush).
        let pending: u64 = r
            .due(t0 + Duration::from_secs(20))
            .iter()
            .map(|d| d.1)
            .sum();
        assert_eq!(counted + pending, skipped);
        assert!(skipped > 9_900);
    }
}
