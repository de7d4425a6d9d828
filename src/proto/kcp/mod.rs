//! kcp (in progress)
