//! Everything the OS touches: the mio event loop, UDP and TCP sockets, timers, signals.
