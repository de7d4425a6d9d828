//! smux v1 and v2 (SPEC §5): stream multiplexing over one reliable byte stream, sans-IO.
//!
//! A [`Session`] sits on a reliable, ordered byte stream (KCP, possibly through snappy). Received
//! bytes go in through [`Session::handle_input`]; outgoing frames come out one whole frame at a time
//! from [`Session::poll_transmit`] (the caller hands each frame to the compressor as one write+flush).
//! Streams are driven with [`Session::open`]/[`Session::accept`], [`Session::write`],
//! [`Session::read`], [`Session::shutdown_write`] and [`Session::close`]; the session reports
//! readiness through [`Session::poll_event`] and its one deadline through [`Session::poll_timeout`].
//!
//! Invariants:
//! * Memory is bounded by construction: unread data of all streams stays below
//!   `max_receive_buffer` plus one frame (input pauses at frame boundaries once the budget is
//!   full, see [`Session::wants_input`]); a stream's unsent data is bounded by its send buffer of
//!   `max(4 × max_frame_size, 64 KiB)` ([`Session::write`] accepts only what fits, else `Blocked`);
//!   buffers shrink back after bursts (an idle stream keeps at most 16 KiB per direction); partial input is held as at most
//!   one 8-byte header (payload bytes go straight into the stream buffer); control frames queued are
//!   bounded by the number of streams; the accept backlog is bounded ([`ACCEPT_BACKLOG`]).
//! * Nothing reachable from the wire panics; every invalid frame kills the session with
//!   [`SessionError::InvalidProtocol`] (or [`SessionError::WindowOverrun`]).
//! * Deterministic: time only enters as `now` arguments.

mod frame;
mod session;
mod stream;

pub use frame::{emit_upd, parse_upd, Cmd, Frame, Header, Truncated, HEADER_LEN, UPD_LEN};
pub use session::Session;

use std::time::Duration;

/// Stream identifier (client: 3, 5, 7, …; server: 2, 4, …).
pub type StreamId = u32;

/// Streams opened by the peer that may wait for [`Session::accept`]. A SYN beyond it is refused with
/// a FIN (see [`Session`]).
pub const ACCEPT_BACKLOG: usize = 1024;

/// The window a v2 sender assumes before the first UPD arrives (SPEC §5.4).
pub const INITIAL_PEER_WINDOW: u32 = 262_144;

/// smux protocol version (the `ver` byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// v1: no per-stream flow control (2021 kcptun default).
    V1,
    /// v2: per-stream windows with UPD frames (latest kcptun default).
    V2,
}

impl Version {
    /// The wire byte.
    pub fn byte(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }

    /// The version for a wire byte.
    pub fn from_byte(b: u8) -> Option<Version> {
        match b {
            1 => Some(Version::V1),
            2 => Some(Version::V2),
            _ => None,
        }
    }
}

/// Session settings (the kcptun flag in parentheses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmuxConfig {
    /// `None` = learn the version from the peer's first frame and speak it back (server use).
    /// A client with `None` speaks [`Version::V2`]. (`--smuxver`)
    pub version: Option<Version>,
    /// NOP interval (`--keepalive`); zero disables NOPs. Clamped to `keepalive_timeout`.
    pub keepalive: Duration,
    /// The session dies if no frame arrived during one such period; zero disables the check.
    pub keepalive_timeout: Duration,
    /// Session receive budget: unread bytes of all streams (`--smuxbuf`).
    pub max_receive_buffer: usize,
    /// v2 window advertised per stream (`--streambuf`).
    pub max_stream_buffer: u32,
    /// Largest PSH payload we send (`--framesize`); any length up to 65535 is accepted.
    pub max_frame_size: u16,
}

impl Default for SmuxConfig {
    fn default() -> Self {
        SmuxConfig {
            version: Some(Version::V2),
            keepalive: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(30),
            max_receive_buffer: 4 * 1024 * 1024,
            max_stream_buffer: 2 * 1024 * 1024,
            max_frame_size: 8192,
        }
    }
}

/// A setting smux (Go) would refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// keepalive above keepalive_timeout.
    KeepaliveAboveTimeout,
    /// max_frame_size is 0.
    ZeroFrameSize,
    /// max_receive_buffer is 0.
    ZeroReceiveBuffer,
    /// max_stream_buffer is 0.
    ZeroStreamBuffer,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConfigError::KeepaliveAboveTimeout => {
                "smux: keep-alive interval must not be larger than keep-alive timeout"
            }
            ConfigError::ZeroFrameSize => "smux: max frame size must be positive",
            ConfigError::ZeroReceiveBuffer => "smux: max receive buffer must be positive",
            ConfigError::ZeroStreamBuffer => "smux: max stream buffer must be positive",
        })
    }
}
impl std::error::Error for ConfigError {}

impl SmuxConfig {
    /// Checks the settings the way Go smux's config verification does.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.keepalive > self.keepalive_timeout {
            return Err(ConfigError::KeepaliveAboveTimeout);
        }
        if self.max_frame_size == 0 {
            return Err(ConfigError::ZeroFrameSize);
        }
        if self.max_receive_buffer == 0 {
            return Err(ConfigError::ZeroReceiveBuffer);
        }
        if self.max_stream_buffer == 0 {
            return Err(ConfigError::ZeroStreamBuffer);
        }
        Ok(())
    }
}

/// Why the session died. Once dead, it stays dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// Bad version byte, unknown command or a length invalid for its command.
    InvalidProtocol,
    /// A v2 peer sent more than the window we advertised.
    WindowOverrun,
    /// No frame arrived during a whole keep-alive timeout period.
    KeepaliveTimeout,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionError::InvalidProtocol => "smux: invalid protocol",
            SessionError::WindowOverrun => "smux: peer exceeded the stream window",
            SessionError::KeepaliveTimeout => "smux: keep-alive timeout",
        })
    }
}
impl std::error::Error for SessionError {}

/// [`Session::open`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Stream ids are exhausted (u32 overflow): replace the session ("go away").
    IdsExhausted,
    /// The session is dead.
    SessionDead,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpenError::IdsExhausted => "smux: stream ids exhausted (go away)",
            OpenError::SessionDead => "smux: session is dead",
        })
    }
}
impl std::error::Error for OpenError {}

/// [`Session::write`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The send buffer is full; an [`Event::Writable`] for this stream follows.
    Blocked,
    /// Our direction is closed (`shutdown_write`/`close`) or the session is dead.
    Closed,
    /// The id names no live stream.
    UnknownStream,
    /// v2: the peer acknowledged more than we sent; the stream's sending is broken.
    ConsumedMoreThanSent,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteError::Blocked => "smux: stream send buffer full",
            WriteError::Closed => "smux: stream closed for writing",
            WriteError::UnknownStream => "smux: unknown stream",
            WriteError::ConsumedMoreThanSent => "smux: peer consumed more than sent",
        })
    }
}
impl std::error::Error for WriteError {}

/// [`Session::read`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Nothing buffered yet; an [`Event::Readable`] or [`Event::Finished`] follows.
    WouldBlock,
    /// The id names no live stream (or the stream was closed locally).
    UnknownStream,
    /// The session died before the peer finished the stream.
    SessionDead,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadError::WouldBlock => "smux: no data yet",
            ReadError::UnknownStream => "smux: unknown stream",
            ReadError::SessionDead => "smux: session is dead",
        })
    }
}
impl std::error::Error for ReadError {}

/// What happened, drained with [`Session::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer opened a stream: [`Session::accept`] returns it (emitted once per accepted SYN).
    Accepted(StreamId),
    /// Data arrived on a stream whose reader has not been told since its last `read`.
    Readable(StreamId),
    /// A stream that returned `Blocked` can take data again (or now fails definitively).
    Writable(StreamId),
    /// The peer sent FIN: reads return the rest, then `Ok(0)`.
    Finished(StreamId),
    /// The stream is forgotten (both directions done, or closed and its FIN sent).
    Closed(StreamId),
    /// The session is dead; every stream with it.
    SessionDead(SessionError),
}
