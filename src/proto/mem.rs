//! Heap accounting: what each layer of a session holds, from the capacities it keeps.
//!
//! The figures are the bytes of heap blocks a value owns (capacity × element size, boxed state),
//! not what the allocator rounds them up to. They exist to show where a session's memory is
//! (`kcptun bench sessions`, `tests/mem_sessions.rs`); nothing depends on them.

use std::collections::VecDeque;
use std::fmt;

/// Heap bytes of a `Vec`'s buffer.
pub fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// Heap bytes of a `VecDeque`'s buffer.
pub fn deque_bytes<T>(v: &VecDeque<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// Heap bytes one tunnel session holds, by layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapUsage {
    /// KCP: send queue and buffer, receive ring and queue, segment pool, ACK lists.
    pub kcp: usize,
    /// FEC encoder: the current group's shards and the coding matrix.
    pub fec_enc: usize,
    /// FEC decoder: group slots, recovered shards, coding matrix.
    pub fec_dec: usize,
    /// Both directions' keyed cipher state.
    pub crypt: usize,
    /// snappy compressor and decompressor state.
    pub compress: usize,
    /// smux: streams and their buffers, queues.
    pub smux: usize,
    /// The tunnel's own staging buffers between the layers.
    pub buffers: usize,
}

impl HeapUsage {
    pub fn total(&self) -> usize {
        self.kcp
            + self.fec_enc
            + self.fec_dec
            + self.crypt
            + self.compress
            + self.smux
            + self.buffers
    }
}

impl fmt::Display for HeapUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "total {} = kcp {} + fec-enc {} + fec-dec {} + crypt {} + compress {} + smux {} + buffers {}",
            self.total(),
            self.kcp,
            self.fec_enc,
            self.fec_dec,
            self.crypt,
            self.compress,
            self.smux,
            self.buffers
        )
    }
}
