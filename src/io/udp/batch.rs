//! The caller-owned batches [`TxBatch`] and [`RxBatch`] (split from `udp.rs` along that seam).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::{MAX_DGRAM, RX_ARENA, RX_MSGS, TX_CAP};

/// Returned by [`TxBatch::push`] when the batch holds [`TX_CAP`] datagrams already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxFull;

impl std::fmt::Display for TxFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("send batch is full")
    }
}

impl std::error::Error for TxFull {}

/// A ring of up to [`TX_CAP`] outgoing datagrams, each up to [`MAX_DGRAM`] bytes. Its arena grows
/// with the slots in use (a ring that empties starts over at slot 0, so a quiet socket needs one
/// or two) and [`release`](Self::release) gives it back.
///
/// Fill it with [`push`](Self::push) or in place with [`push_with`](Self::push_with), then hand it
/// to [`UdpSock::send_batch`], which removes what it sent from the front.
pub struct TxBatch {
    /// Slot `s` is `buf[s * MAX_DGRAM..][..MAX_DGRAM]`; every slot holding a datagram is inside.
    pub(super) buf: Vec<u8>,
    pub(super) lens: [u16; TX_CAP],
    pub(super) dsts: [SocketAddr; TX_CAP],
    pub(super) head: usize,
    pub(super) len: usize,
}

impl Default for TxBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxBatch").field("len", &self.len).finish()
    }
}

impl TxBatch {
    /// An empty batch (its arena, at most 96 KB, is allocated as datagrams need it).
    pub fn new() -> Self {
        TxBatch {
            buf: Vec::new(),
            lens: [0; TX_CAP],
            dsts: [SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); TX_CAP],
            head: 0,
            len: 0,
        }
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No datagram waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No room for another datagram.
    pub fn is_full(&self) -> bool {
        self.len == TX_CAP
    }

    /// Gives back the arena if no datagram is waiting (the sender went quiet).
    pub fn release(&mut self) {
        if self.is_empty() {
            self.buf = Vec::new();
            self.head = 0;
        }
    }

    /// Heap bytes of the arena.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Grows the arena to hold slot `s` (doubling, up to the whole ring).
    fn room_for(&mut self, s: usize) {
        let need = (s + 1) * MAX_DGRAM;
        if self.buf.len() < need {
            let grown = need.max(2 * self.buf.len()).min(TX_CAP * MAX_DGRAM);
            self.buf.resize(grown, 0);
        }
    }

    /// Drops every waiting datagram.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    pub(super) fn slot(&self, i: usize) -> usize {
        (self.head + i) % TX_CAP
    }

    /// Appends a copy of `data` for `dst`.
    ///
    /// # Panics
    /// If `data` is longer than [`MAX_DGRAM`] (a caller bug: the MTU is capped at 1500).
    pub fn push(&mut self, dst: SocketAddr, data: &[u8]) -> Result<(), TxFull> {
        assert!(data.len() <= MAX_DGRAM, "datagram longer than MAX_DGRAM");
        self.push_with(dst, |b| {
            b[..data.len()].copy_from_slice(data);
            data.len()
        })
    }

    /// Appends a datagram for `dst` written in place: `fill` gets a [`MAX_DGRAM`]-byte buffer and
    /// returns how many bytes it wrote.
    ///
    /// # Panics
    /// If `fill` returns more than [`MAX_DGRAM`].
    pub fn push_with(
        &mut self,
        dst: SocketAddr,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), TxFull> {
        if self.is_full() {
            return Err(TxFull);
        }
        let s = self.slot(self.len);
        self.room_for(s);
        let n = fill(&mut self.buf[s * MAX_DGRAM..(s + 1) * MAX_DGRAM]);
        assert!(n <= MAX_DGRAM, "fill wrote more than MAX_DGRAM");
        self.lens[s] = n as u16;
        self.dsts[s] = dst;
        self.len += 1;
        Ok(())
    }

    /// Like [`push_with`](Self::push_with), but `fill` may decline (`None`): then nothing is
    /// appended. Returns what `fill` returned.
    pub fn push_try_with(
        &mut self,
        dst: SocketAddr,
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<Option<usize>, TxFull> {
        if self.is_full() {
            return Err(TxFull);
        }
        let s = self.slot(self.len);
        self.room_for(s);
        let Some(n) = fill(&mut self.buf[s * MAX_DGRAM..(s + 1) * MAX_DGRAM]) else {
            return Ok(None);
        };
        assert!(n <= MAX_DGRAM, "fill wrote more than MAX_DGRAM");
        self.lens[s] = n as u16;
        self.dsts[s] = dst;
        self.len += 1;
        Ok(Some(n))
    }

    /// The `i`-th waiting datagram (0 = next to go).
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        if i >= self.len {
            return None;
        }
        let s = self.slot(i);
        let start = s * MAX_DGRAM;
        Some((
            self.dsts[s],
            &self.buf[start..start + self.lens[s] as usize],
        ))
    }

    /// Removes `n` datagrams from the front.
    pub(super) fn advance(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % TX_CAP;
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
    }
}

#[derive(Clone, Copy)]
pub(super) struct RxMeta {
    pub(super) src: SocketAddr,
    pub(super) len: usize,
    pub(super) stride: usize,
}

/// Caller-owned receive buffers: one 1 MiB arena, allocated once, which one event loop can share
/// between all its sockets. [`UdpSock::recv_batch`] fills it; [`iter_mut`](Self::iter_mut)
/// yields the datagrams, GRO-coalesced ones already split.
pub struct RxBatch {
    pub(super) buf: Box<[u8]>,
    pub(super) slot: usize,
    pub(super) msgs: [RxMeta; RX_MSGS],
    pub(super) n_msgs: usize,
    pub(super) n_dgrams: usize,
}

impl Default for RxBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxBatch")
            .field("datagrams", &self.n_dgrams)
            .finish()
    }
}

impl RxBatch {
    /// Allocates the arena.
    pub fn new() -> Self {
        let unspec = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        RxBatch {
            buf: vec![0u8; RX_ARENA].into_boxed_slice(),
            slot: MAX_DGRAM,
            msgs: [RxMeta {
                src: unspec,
                len: 0,
                stride: 1,
            }; RX_MSGS],
            n_msgs: 0,
            n_dgrams: 0,
        }
    }

    /// Returns the arena's pages to the OS (the process went quiet). The arena holds nothing
    /// between receives; the pages come back, zeroed, when a receive touches them.
    pub fn release_pages(&mut self) {
        #[cfg(target_os = "linux")]
        {
            const PAGE: usize = 4096;
            let start = self.buf.as_mut_ptr() as usize;
            let first = start.next_multiple_of(PAGE);
            let end = (start + self.buf.len()) / PAGE * PAGE;
            if end > first {
                // SAFETY: [first, end) is page-aligned and inside `buf`, which we own exclusively
                // (`&mut self`); MADV_DONTNEED on this private anonymous memory only replaces its
                // contents with zero pages, and no datagram is kept in it between receives.
                #[allow(unsafe_code)]
                unsafe {
                    libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED);
                }
            }
        }
        self.n_msgs = 0;
        self.n_dgrams = 0;
    }

    /// Datagrams from the last receive.
    pub fn len(&self) -> usize {
        self.n_dgrams
    }

    /// The last receive produced no datagram.
    pub fn is_empty(&self) -> bool {
        self.n_dgrams == 0
    }

    /// The datagrams of the last receive, in arrival order, each with its source address and at
    /// most [`MAX_DGRAM`] bytes, mutable so the codec can work in place.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SocketAddr, &mut [u8])> + '_ {
        let msgs = &self.msgs[..self.n_msgs];
        self.buf
            .chunks_mut(self.slot)
            .zip(msgs.iter())
            .flat_map(|(b, m)| {
                let (src, stride) = (m.src, m.stride);
                b[..m.len].chunks_mut(stride).map(move |c| {
                    let l = c.len().min(MAX_DGRAM);
                    (src, &mut c[..l])
                })
            })
    }

    /// Prepares for a receive: `slot` bytes per message; returns how many messages fit.
    pub(super) fn reset(&mut self, slot: usize) -> usize {
        self.slot = slot;
        self.n_msgs = 0;
        self.n_dgrams = 0;
        (RX_ARENA / slot).min(RX_MSGS)
    }

    /// Records message `i` with `len` bytes and GRO segment size `seg` (0: not coalesced).
    pub(super) fn set_msg(&mut self, i: usize, src: SocketAddr, len: usize, seg: usize) {
        let len = len.min(self.slot);
        let stride = if seg == 0 || seg > len {
            len.max(1)
        } else {
            seg
        };
        self.msgs[i] = RxMeta { src, len, stride };
        self.n_msgs = i + 1;
        self.n_dgrams += len.div_ceil(stride);
    }
}
