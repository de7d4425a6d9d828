//! Everything the OS touches: the mio event loop, UDP and TCP sockets, timers, signals.

pub mod net;
pub mod signals;
pub mod timers;
pub mod udp;
pub mod driver;
pub mod relay;
pub mod report;
