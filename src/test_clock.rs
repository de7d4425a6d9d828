//! The origin of the virtual clocks in `proto`'s unit tests.
//!
//! `proto` never reads the clock: time comes in as `now` arguments. Its tests still need one
//! `Instant` to count virtual milliseconds from, and std can only make one by reading the clock,
//! so they take it from here, outside `proto`.

use std::time::Instant;

/// An arbitrary starting instant; tests add explicit durations to it.
pub(crate) fn origin() -> Instant {
    Instant::now()
}

/// The real clock, for the ignored wall-time throughput probes only.
pub(crate) fn wall() -> Instant {
    Instant::now()
}
