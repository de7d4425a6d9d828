//! Buffer management of [`Kcp`]: the segment-buffer pool, the receive ring, and what the session
//! holds (split from `session.rs` along that seam; the state is defined there).

use super::*;

impl Kcp {
    /// Heap bytes held: queues, rings, segment buffers and the pool.
    pub fn heap_bytes(&self) -> usize {
        use crate::proto::mem::{deque_bytes, vec_bytes};
        deque_bytes(&self.snd_queue)
            + self.snd_queue.iter().map(vec_bytes).sum::<usize>()
            + deque_bytes(&self.snd_buf)
            + self
                .snd_buf
                .iter()
                .map(|s| vec_bytes(&s.data))
                .sum::<usize>()
            + vec_bytes(&self.rcv_ring)
            + self.rcv_ring.iter().flatten().map(vec_bytes).sum::<usize>()
            + deque_bytes(&self.rcv_queue)
            + self.rcv_queue.iter().map(vec_bytes).sum::<usize>()
            + vec_bytes(&self.acklist)
            + vec_bytes(&self.ack_batch)
            + vec_bytes(&self.dup_sns)
            + vec_bytes(&self.ts_scratch)
            + vec_bytes(&self.pool)
            + self.pool.iter().map(vec_bytes).sum::<usize>()
    }

    pub(super) fn take_buf(&mut self) -> Vec<u8> {
        match self.pool.pop() {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(self.mss),
        }
    }

    pub(super) fn give_buf(&mut self, mut b: Vec<u8>) {
        if b.capacity() == 0 {
            return; // an acknowledged segment's emptied slot: nothing to keep
        }
        // The pool never holds more buffers than both windows can use.
        if self.pool.len() < (self.snd_wnd + 2 * self.rcv_wnd) as usize {
            b.clear();
            self.pool.push(b);
        }
    }

    /// After an mtu change, re-cut unnumbered data so no queued segment exceeds the new mss.
    pub(super) fn resplit_queue(&mut self) {
        if self.snd_queue.iter().all(|s| s.len() <= self.mss) {
            return;
        }
        let old: Vec<Vec<u8>> = self.snd_queue.drain(..).collect();
        for seg in old {
            for chunk in seg.chunks(self.mss.max(1)) {
                let mut b = self.take_buf();
                b.extend_from_slice(chunk);
                self.snd_queue.push_back(b);
            }
        }
    }

    /// Gives back what only traffic needs (the session went quiet): the pool of spare segment
    /// buffers, the receive ring if it holds nothing, and the capacity of empty queues. Segments
    /// still queued, in flight or unread are kept.
    pub fn release(&mut self) {
        self.pool = Vec::new();
        if self.plan.is_none() {
            self.dup_sns = Vec::new();
        }
        if self.rcv_ring.iter().all(Option::is_none) {
            self.rcv_ring = Vec::new();
            self.rcv_head = 0;
        }
        if self.snd_queue.is_empty() {
            self.snd_queue = VecDeque::new();
        }
        if self.snd_buf.is_empty() {
            self.snd_buf = VecDeque::new();
        }
        if self.rcv_queue.is_empty() {
            self.rcv_queue = VecDeque::new();
        }
        for v in [&mut self.acklist, &mut self.ack_batch] {
            if v.is_empty() {
                *v = Vec::new();
            }
        }
        self.ts_scratch = Vec::new();
    }

    /// Sequence numbers past `rcv_nxt` held (see [`rcv_span`]).
    pub(super) fn rcv_span(&self) -> usize {
        rcv_span(self.rcv_wnd)
    }

    /// The receive ring (`rcv_span` slots), allocated on the first segment after a release.
    pub(super) fn ring(&mut self) -> &mut [Option<Vec<u8>>] {
        if self.rcv_ring.is_empty() {
            let span = self.rcv_span();
            self.rcv_ring.resize_with(span, || None);
            self.rcv_head = 0;
        }
        &mut self.rcv_ring
    }

    /// Sets the receive window; segments the new ring has no slot for are dropped (the peer
    /// resends them). An unallocated ring stays unallocated.
    pub(super) fn resize_rcv_ring(&mut self, wnd: u32) {
        if self.rcv_ring.is_empty() {
            self.rcv_wnd = wnd;
            self.rcv_head = 0;
            return;
        }
        let old_len = self.rcv_ring.len();
        let mut ring: Vec<Option<Vec<u8>>> = Vec::new();
        ring.resize_with(rcv_span(wnd), || None);
        for off in 0..old_len {
            let idx = (self.rcv_head + off) % old_len;
            if let Some(b) = self.rcv_ring[idx].take() {
                if let Some(slot) = ring.get_mut(off) {
                    *slot = Some(b);
                } else {
                    self.give_buf(b);
                }
            }
        }
        self.rcv_ring = ring;
        self.rcv_head = 0;
        self.rcv_wnd = wnd;
        self.move_ready();
    }
}

/// Out-of-order segments are held up to half a window beyond the advertised one: a sender that
/// counts its window past repaired segments (see `repair`) may send that far before the repair
/// arrives, and the receiver then need not drop them. A window of 0 holds nothing.
pub(super) fn rcv_span(wnd: u32) -> usize {
    wnd as usize + wnd as usize / 2
}
