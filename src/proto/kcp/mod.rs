//! KCP, the ARQ of kcp-go (latest, v5.6.64 behaviour), as a sans-IO state machine.
//!
//! [`Kcp`] turns a byte stream into KCP segments (stream mode, `frg` always 0) and back, with
//! kcp-go's retransmission rules: cumulative `una` plus selective ACKs, the "bufferbloat" ACK
//! filter, fast retransmit whose duplicate-ACK count restarts after each resend (the 2021 rule),
//! early retransmit, RTO back-off, the RTT estimator with the 1/32 variant, window probing and
//! optional congestion control (SPEC §4).
//!
//! Invariants: `snd_buf` holds exactly the segments numbered `snd_una..snd_nxt`, in order, so an
//! ACK finds its segment at index `sn - snd_una`; `snd_queue + snd_buf` never exceeds `snd_wnd`
//! segments (`send` refuses beyond that); received data is kept only for
//! `[rcv_nxt, rcv_nxt + rcv_wnd * 3 / 2)` in a ring indexed by `sn - rcv_nxt` (half a window more
//! than kcp-go: see `session/buffers.rs`), and the in-order queue holds at most `rcv_wnd` segments. Segment buffers come from a free list and return to it, so the
//! steady state allocates nothing. No byte string given to [`Kcp::handle_packet`] can panic it.
//!
//! Cost: una processing pops from the front, an ACK finds its segment by offset, duplicate ACKs
//! are counted once per datagram (one sweep, not one per ACK), out-of-order data goes straight
//! to its ring slot, and a flush triggered by a write or an ACK skips the already-transmitted
//! head of `snd_buf` when nothing there can be due (no duplicate-ACK counts, earliest RTO still
//! ahead); the interval flush always scans the whole window, as kcp-go does.
//!
//! Call order (quinn style): inputs are [`Kcp::handle_packet`], [`Kcp::handle_timeout`],
//! [`Kcp::send`] and [`Kcp::recv`]; after any of them, drain [`Kcp::poll_transmit`] until `None`,
//! then read [`Kcp::poll_timeout`] and call `handle_timeout` when it passes. `now` must never go
//! backwards. `poll_transmit` is resumable: a caller whose socket is full may stop and continue
//! later without loss or duplication.

pub mod reset;
mod segment;
mod session;
#[cfg(test)]
mod tests;

pub use segment::{Header, CMD_ACK, CMD_PUSH, CMD_WASK, CMD_WINS, OVERHEAD};
pub use session::{Kcp, SMALL_ROOM};

/// KCP tuning, one session's worth (SPEC §4.2, §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KcpConfig {
    /// nodelay ≠ 0: minimum RTO 30 ms (else 100) and RTO back-off by `rx_rto / 2`.
    pub nodelay: bool,
    /// Flush interval in ms, [10, 5000].
    pub interval_ms: u32,
    /// Duplicate-ACK count that triggers fast retransmit (0 = off).
    pub resend: u32,
    /// No congestion control.
    pub nc: bool,
    /// Send window in segments.
    pub snd_wnd: u16,
    /// Receive window in segments.
    pub rcv_wnd: u16,
    /// KCP mtu (= UDP mtu minus crypt/FEC overhead); a datagram from `poll_transmit` never exceeds it.
    pub mtu: usize,
    /// Flush ACKs right after every input that queued some.
    pub ack_nodelay: bool,
    /// Send a lone segment (at most two in flight: an interactive message, not a transfer) a
    /// second time in a datagram of its own, so one random loss does not cost a retransmission
    /// timeout. Ours, not kcp-go's; a peer sees an ordinary repeated segment. On by default.
    pub dup_lone: bool,
    /// On long lossy paths, count the send window from the first segment the receiver may still
    /// lack (past repaired holes, up to half a window past `snd_una`) and send loss-report
    /// retransmissions twice, while no queue shows; see `session/repair.rs`. Ours, not kcp-go's;
    /// a peer sees ordinary segments. On by default.
    pub repair_ahead: bool,
    /// On a sub-millisecond path (loopback, a LAN) keep outstanding only about a millisecond of
    /// the delivery rate instead of the whole window, so a small message is not queued behind
    /// megabytes of a transfer; see `session/inflight.rs`. Ours, not kcp-go's; nothing changes
    /// on the wire. On by default.
    pub short_path_cap: bool,
    /// Size the send window by the queueing delay it causes (a bottleneck queue kept short;
    /// random loss does not shrink it), with Karn's RTO backoff and a 40 ms RTO margin; see
    /// `session/delay.rs`. Ours (`--delaywnd`), off by default: it costs a little where no queue
    /// builds.
    pub delay_window: bool,
}

impl Default for KcpConfig {
    /// kcp-go's built-in defaults (windows 32, mtu 1400, interval 100, no nodelay, nc off).
    fn default() -> Self {
        KcpConfig {
            nodelay: false,
            interval_ms: 100,
            resend: 0,
            nc: false,
            snd_wnd: 32,
            rcv_wnd: 32,
            mtu: 1400,
            ack_nodelay: false,
            dup_lone: true,
            repair_ahead: true,
            short_path_cap: true,
            delay_window: false,
        }
    }
}

impl KcpConfig {
    /// The kcptun `--mode` profile (SPEC §4.2); any other mode name uses `manual` =
    /// (nodelay, interval, resend, nc). Interval is clamped to [10, 5000]. Windows and mtu keep
    /// kcp-go's defaults: set them afterwards.
    pub fn from_mode(mode: &str, manual: (i32, i32, i32, i32)) -> Self {
        let (nodelay, interval, resend, nc) = match mode {
            "normal" => (0, 40, 2, 1),
            "fast" => (0, 30, 2, 1),
            "fast2" => (1, 20, 2, 1),
            "fast3" => (1, 10, 2, 1),
            _ => manual,
        };
        KcpConfig {
            nodelay: nodelay != 0,
            interval_ms: interval.clamp(10, 5000) as u32,
            resend: resend.max(0) as u32,
            nc: nc != 0,
            ..KcpConfig::default()
        }
    }

    /// Maximum data bytes per segment for this mtu.
    pub fn mss(&self) -> usize {
        self.mtu.saturating_sub(OVERHEAD)
    }
}

/// Why [`Kcp::handle_packet`] stopped reading a datagram (the rest of it is ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputError {
    /// A segment carries another conversation id.
    ConvMismatch,
    /// A segment's command is not 81..=84.
    BadCommand,
    /// Fewer than 24 bytes, or the `len` field exceeds the bytes that follow.
    Truncated,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputError::ConvMismatch => "kcp segment for another conversation",
            InputError::BadCommand => "kcp segment with unknown command",
            InputError::Truncated => "truncated kcp segment",
        })
    }
}

impl std::error::Error for InputError {}

/// A point on KCP's u32 millisecond clock; compared with wrapping differences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ms(pub u32);

impl Ms {
    /// `self - other` as a signed wrapping difference.
    #[inline]
    pub fn diff(self, other: Ms) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    #[inline]
    pub fn add(self, ms: u32) -> Ms {
        Ms(self.0.wrapping_add(ms))
    }
}

/// Wrap-aware sequence-number difference `a - b`.
#[inline]
pub(crate) fn sn_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}
