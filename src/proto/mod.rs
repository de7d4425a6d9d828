//! The protocol core: sans-IO and deterministic.
//!
//! Nothing here opens a socket, spawns a thread, reads the clock or touches a global RNG: time comes
//! in as `now: Instant` arguments and randomness from a [`rng::Rng`] handed in at construction.
//! Every parser of network input checks lengths once and then reads infallibly; no input can make
//! it panic or grow memory without bound. Multi-byte fields use explicit byte order
//! (`from_le_bytes`/`to_le_bytes`), never transmutes: routers run big-endian MIPS.
#![deny(unsafe_code)]

pub mod codec;
pub mod compress;
pub mod crypt;
pub mod demux;
pub mod fec;
pub mod kcp;
pub mod mem;
pub mod qpp;
pub mod rng;
pub mod sim;
pub mod smux;
pub mod snmp;
pub mod tunnel;
