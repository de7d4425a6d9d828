//! crypt (in progress)
