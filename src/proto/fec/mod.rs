//! fec (in progress)
