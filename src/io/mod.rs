//! Everything the OS touches: the mio event loop, UDP and TCP sockets, timers, signals.

pub mod daemon;
pub mod driver;
pub mod heap;
pub mod metrics;
pub mod net;
pub mod ratelog;
pub mod relay;
pub mod report;
pub mod sched;
pub mod signals;
pub mod timers;
pub mod udp;
