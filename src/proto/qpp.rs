//! qpp (in progress)
