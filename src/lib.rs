//! kcptun: a KCP-over-UDP TCP tunnel, wire-compatible with Go kcptun.
//!
//! Layers point one way: [`cmd`] (command line, settings) → [`io`] (the mio event loop, sockets,
//! signals) → [`proto`] (the sans-IO, deterministic protocol core).

pub mod cmd;
pub mod io;
pub mod proto;
#[cfg(test)]
mod test_clock;
