//! The event loop's one timer queue: at most one deadline per key (a session, a stream, the
//! snmplog tick), kept in a binary heap with lazy cancellation.
//!
//! [`set`](TimerQueue::set) replaces a key's deadline, [`cancel`](TimerQueue::cancel) removes it;
//! both leave the old heap entry in place and mark it stale through a generation number, so each
//! costs O(log n). Invariants: the heap's top entry is always live (stale tops are discarded
//! eagerly), so [`next_deadline`](TimerQueue::next_deadline) is exact and O(1); stale entries
//! never outnumber live ones by more than 2:1 plus a small constant (the heap is rebuilt from the
//! live set when they would), so memory stays bounded by the number of keys.
//!
//! Call order per loop turn: `poll(timeout = next_deadline() - now)`, then
//! `while let Some(k) = pop_expired(now) { … }`, where handling a key may `set` it again.
//! Keys with equal deadlines pop in the order they were set.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Stale entries tolerated beyond twice the live ones before the heap is rebuilt.
const SLACK: usize = 64;

struct Entry<K> {
    at: Instant,
    gen: u64,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.gen == o.gen
    }
}
impl<K> Eq for Entry<K> {}
impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<K> Ord for Entry<K> {
    /// Reversed so that `BinaryHeap` (a max-heap) yields the earliest deadline first; the
    /// generation (unique, increasing) breaks ties in set order.
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at).then(o.gen.cmp(&self.gen))
    }
}

/// One deadline per key, earliest first. See the module docs.
pub struct TimerQueue<K: Copy + Eq + Hash> {
    heap: BinaryHeap<Entry<K>>,
    /// Live keys → (generation of their live heap entry, deadline).
    live: HashMap<K, (u64, Instant)>,
    next_gen: u64,
}

impl<K: Copy + Eq + Hash> Default for TimerQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash> std::fmt::Debug for TimerQueue<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerQueue")
            .field("live", &self.live.len())
            .field("heap", &self.heap.len())
            .finish()
    }
}

impl<K: Copy + Eq + Hash> TimerQueue<K> {
    /// An empty queue.
    pub fn new() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            next_gen: 0,
        }
    }

    /// Number of keys with a deadline.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// No key has a deadline.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Sets `key` to fire at `at`, replacing its previous deadline. Setting the same deadline
    /// again is a no-op (no heap growth when a state machine re-reports an unchanged deadline).
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(&(_, old)) = self.live.get(&key) {
            if old == at {
                return;
            }
        }
        let gen = self.next_gen;
        self.next_gen += 1;
        self.live.insert(key, (gen, at));
        self.heap.push(Entry { at, gen, key });
        self.settle();
    }

    /// The deadline of `key`, if it has one.
    pub fn deadline(&self, key: K) -> Option<Instant> {
        self.live.get(&key).map(|&(_, at)| at)
    }

    /// Removes `key`'s deadline, if any.
    pub fn cancel(&mut self, key: K) {
        if self.live.remove(&key).is_some() {
            self.settle();
        }
    }

    /// The earliest deadline of any key.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes and returns a key whose deadline is at or before `now`, earliest first.
    pub fn pop_expired(&mut self, now: Instant) -> Option<K> {
        let top = self.heap.peek()?;
        if top.at > now {
            return None;
        }
        let e = self.heap.pop()?;
        self.live.remove(&e.key);
        self.settle();
        Some(e.key)
    }

    fn is_live(&self, e: &Entry<K>) -> bool {
        matches!(self.live.get(&e.key), Some(&(g, _)) if g == e.gen)
    }

    /// Restores the invariants: a live top, and bounded garbage.
    fn settle(&mut self) {
        if self.heap.len() > 2 * self.live.len() + SLACK {
            let live = &self.live;
            self.heap
                .retain(|e| matches!(live.get(&e.key), Some(&(g, _)) if g == e.gen));
        }
        while let Some(top) = self.heap.peek() {
            if self.is_live(top) {
                break;
            }
            self.heap.pop();
        }
    }

    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.set(3u32, ms(t0, 30));
        q.set(1, ms(t0, 10));
        q.set(2, ms(t0, 20));
        assert_eq!(q.next_deadline(), Some(ms(t0, 10)));
        assert_eq!(q.pop_expired(ms(t0, 5)), None);
        assert_eq!(q.pop_expired(ms(t0, 25)), Some(1));
        assert_eq!(q.pop_expired(ms(t0, 25)), Some(2));
        assert_eq!(q.pop_expired(ms(t0, 25)), None);
        assert_eq!(q.next_deadline(), Some(ms(t0, 30)));
        assert_eq!(q.pop_expired(ms(t0, 30)), Some(3));
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn equal_deadlines_pop_in_set_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        for k in [5u8, 2, 9, 1] {
            q.set(k, ms(t0, 7));
        }
        let got: Vec<u8> = std::iter::from_fn(|| q.pop_expired(ms(t0, 7))).collect();
        assert_eq!(got, vec![5, 2, 9, 1]);
    }

    #[test]
    fn set_replaces_earlier_and_later() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.set('a', ms(t0, 10));
        q.set('b', ms(t0, 20));
        q.set('a', ms(t0, 30)); // later: the old 10 ms entry must not fire
        assert_eq!(q.next_deadline(), Some(ms(t0, 20)));
        assert_eq!(q.pop_expired(ms(t0, 15)), None);
        q.set('b', ms(t0, 5)); // earlier
        assert_eq!(q.next_deadline(), Some(ms(t0, 5)));
        assert_eq!(q.deadline('a'), Some(ms(t0, 30)));
        assert_eq!(q.pop_expired(ms(t0, 100)), Some('b'));
        assert_eq!(q.pop_expired(ms(t0, 100)), Some('a'));
        assert_eq!(q.pop_expired(ms(t0, 100)), None, "a key fires once per set");
    }

    #[test]
    fn cancel_removes_and_is_idempotent() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.set(1u64, ms(t0, 10));
        q.set(2, ms(t0, 20));
        q.cancel(1);
        q.cancel(1);
        q.cancel(99);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_deadline(), Some(ms(t0, 20)));
        assert_eq!(q.pop_expired(ms(t0, 50)), Some(2));
        assert_eq!(q.pop_expired(ms(t0, 50)), None);
        q.set(1, ms(t0, 60));
        assert_eq!(
            q.pop_expired(ms(t0, 60)),
            Some(1),
            "a cancelled key can be set again"
        );
    }

    #[test]
    fn garbage_stays_bounded() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        for round in 0..10_000u64 {
            for k in 0..10u32 {
                q.set(k, ms(t0, 1_000_000 - round)); // distinct deadlines, each makes garbage
            }
            assert!(
                q.heap_len() <= 2 * q.len() + SLACK + 1,
                "heap {}",
                q.heap_len()
            );
        }
        assert_eq!(q.len(), 10);
        let mut n = 0;
        while q.pop_expired(ms(t0, 2_000_000)).is_some() {
            n += 1;
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn matches_a_model_under_random_operations() {
        use crate::proto::rng::Rng;
        let t0 = Instant::now();
        let mut rng = Rng::from_seed([7; 32]);
        let mut q = TimerQueue::new();
        let mut model: HashMap<u32, Instant> = HashMap::new();
        let mut now = 0u64;
        for _ in 0..20_000 {
            match rng.below(4) {
                0 | 1 => {
                    let k = rng.below(50) as u32;
                    let at = ms(t0, now + rng.below(100));
                    q.set(k, at);
                    model.insert(k, at);
                }
                2 => {
                    let k = rng.below(50) as u32;
                    q.cancel(k);
                    model.remove(&k);
                }
                _ => {
                    now += rng.below(20);
                    while let Some(k) = q.pop_expired(ms(t0, now)) {
                        let at = model.remove(&k).expect("popped key must be live");
                        assert!(at <= ms(t0, now));
                        assert!(model.values().all(|&o| o >= at), "earliest first");
                    }
                    assert!(
                        model.values().all(|&o| o > ms(t0, now)),
                        "all due keys popped"
                    );
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.next_deadline(), model.values().min().copied());
        }
    }
}
