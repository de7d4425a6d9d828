//! The receiver half (SPEC §3.3 latest rules, §3.4 auto-tune) with memory bounded by construction.
//!
//! Groups live in [`SLOTS`] fixed slots (the SPEC's expiry keeps at most 4 groups: the newest and
//! the 3 before it; one more slot takes the incoming packet of a new group before expiry runs).
//! Each slot's shard buffer (`(ds+ps) × 1494` bytes) is allocated on first use and reused; the
//! recovered shards go to a separate buffer (allocated by the first recovery), valid until the
//! next `input`. [`FecDecoder::release`] gives all of them back when the session goes quiet.

use super::autotune::AutoTune;
use super::rs::Codec;
use super::{check_params, paws, FecConfigError, SHARD_CAP, SHARD_OFFSET};
use super::{FEC_HEADER, TYPE_DATA, TYPE_PARITY};
use crate::proto::snmp::Snmp;

/// Group slots: 4 live groups + 1 for a newcomer.
const SLOTS: usize = 5;
/// Groups older than this many groups behind the newest are dropped.
const KEEP_GROUPS: i64 = 3;

#[derive(Debug, Default)]
struct Slot {
    active: bool,
    /// seqid of the group's first shard (`seqid - seqid % n`).
    base: u32,
    count: usize,
    present: [u64; 4],
    lens: Vec<u16>,
    buf: Vec<u8>,
}

impl Slot {
    fn has(&self, i: usize) -> bool {
        self.present[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize) {
        self.present[i / 64] |= 1 << (i % 64);
    }
    fn reset(&mut self, base: u32, n: usize) {
        self.active = true;
        self.base = base;
        self.count = 0;
        self.present = [0; 4];
        if self.lens.len() != n {
            self.buf = Vec::new();
            self.lens = vec![0; n];
        }
    }

    /// Makes room for shard `idx`: the buffer grows with the highest shard seen, so a group of
    /// one keep-alive holds one shard, and a slot in steady use holds the whole group.
    fn room_for(&mut self, idx: usize, n: usize) {
        let need = (idx + 1) * SHARD_CAP;
        if self.buf.len() < need {
            let grown = need.max(2 * self.buf.len()).min(n * SHARD_CAP);
            self.buf.resize(grown, 0);
        }
    }
}

/// FEC decoder of one session direction. See the module docs for the call order.
#[derive(Debug)]
pub struct FecDecoder {
    ds: usize,
    ps: usize,
    n: usize,
    paws: u32,
    slots: [Slot; SLOTS],
    /// Base seqid of the newest group seen.
    newest: Option<u32>,
    codec: Codec,
    /// Recovered data shards of the last input, each at stride `SHARD_CAP`, `recov_len` long.
    recov: Vec<u8>,
    recov_len: usize,
    recov_count: usize,
    recov_next: usize,
    tune: AutoTune,
    tune_pending: bool,
    /// Packets input so far, and when the next change of shape may happen (see `retune`).
    inputs: u64,
    next_shape_at: u64,
    shape_gap: u64,
    shape_changes: u64,
    stats: Snmp,
}

/// Spacing of changes to a large shape grows to this many packets: rebuilding the code for one
/// costs milliseconds, and a peer flipping shapes must not turn that into a CPU drain.
const MAX_SHAPE_GAP: u64 = 1 << 16;
/// Shapes up to this many shards rebuild in microseconds and are never held back (a wrong
/// detection under loss is then corrected at once).
const CHEAP_SHAPE: usize = 32;

/// Wrap-aware `a - b`.
fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

impl FecDecoder {
    /// A decoder for (ds, ps). A session without FEC that receives FEC packets creates one with
    /// (1, 1); auto-tune then learns the sender's parameters.
    pub fn new(ds: usize, ps: usize) -> Result<Self, FecConfigError> {
        check_params(ds, ps)?;
        Ok(FecDecoder {
            ds,
            ps,
            n: ds + ps,
            paws: paws(ds + ps),
            slots: Default::default(),
            newest: None,
            codec: Codec::new(ds, ps),
            recov: Vec::new(),
            recov_len: 0,
            recov_count: 0,
            recov_next: 0,
            tune: AutoTune::new(),
            tune_pending: false,
            inputs: 0,
            next_shape_at: 0,
            shape_gap: 0,
            shape_changes: 0,
            stats: Snmp::default(),
        })
    }

    /// Current `(ds, ps)` (changes when auto-tune detects the sender's).
    pub fn params(&self) -> (usize, usize) {
        (self.ds, self.ps)
    }

    /// Counters: `FECFullShardSet`, `FECRecovered`, `FECErrs` (undecodable group, or a recovered
    /// shard whose size field is invalid), `FECParityShards` (parity packets received),
    /// `FECShardSet` (groups tracked), `FECShardMin` (newest group id), `InErrs` (packet shorter
    /// than 8 bytes or longer than 1500).
    pub fn stats(&self) -> &Snmp {
        &self.stats
    }

    /// Heap bytes held: group slots, recovered shards, coding matrix.
    pub fn heap_bytes(&self) -> usize {
        use crate::proto::mem::vec_bytes;
        self.slots
            .iter()
            .map(|s| vec_bytes(&s.buf) + vec_bytes(&s.lens))
            .sum::<usize>()
            + vec_bytes(&self.recov)
            + self.codec.heap_bytes()
    }

    /// Gives back the group slots' buffers and the recovery buffer (the session went quiet). The
    /// groups still open are dropped: after a quiet spell no shard of theirs is coming, and
    /// what they could recover was retransmitted and acknowledged long ago.
    pub fn release(&mut self) {
        self.slots = Default::default();
        self.recov = Vec::new();
        self.recov_count = 0;
        self.recov_next = 0;
    }

    /// How many times auto-tune switched to another (ds, ps).
    pub fn shape_changes(&self) -> u64 {
        self.shape_changes
    }

    fn retune(&mut self, ds: usize, ps: usize) {
        if (ds, ps) != (self.ds, self.ps) {
            // Changes to large shapes: the first is free (a session learning its peer's shape),
            // each further one waits twice as many packets as the last, up to MAX_SHAPE_GAP.
            self.shape_changes += 1;
            if ds + ps > CHEAP_SHAPE {
                self.next_shape_at = self.inputs + self.shape_gap;
                self.shape_gap = (self.shape_gap * 2).clamp(64, MAX_SHAPE_GAP);
            }
            self.ds = ds;
            self.ps = ps;
            self.n = ds + ps;
            self.paws = paws(self.n);
            self.codec = Codec::new(ds, ps);
            self.recov = Vec::new();
            // Drop the old slot buffers; they are reallocated at the new size on first use.
            self.slots = Default::default();
        }
        for s in &mut self.slots {
            s.active = false;
        }
        self.newest = None;
    }

    /// Feeds one FEC packet (data or parity, from its header on). Returns how many data shards it
    /// recovered; read them with [`FecDecoder::poll_recovered`] before the next `input`.
    pub fn input(&mut self, pkt: &[u8]) -> usize {
        self.recov_count = 0;
        self.recov_next = 0;
        self.inputs += 1;
        if pkt.len() < FEC_HEADER || pkt.len() - SHARD_OFFSET > SHARD_CAP {
            self.stats.in_errs += 1;
            return 0;
        }
        let seqid = u32::from_le_bytes([pkt[0], pkt[1], pkt[2], pkt[3]]);
        let is_data = match u16::from_le_bytes([pkt[4], pkt[5]]) {
            TYPE_DATA => true,
            TYPE_PARITY => {
                self.stats.fec_parity_shards += 1;
                false
            }
            _ => return 0,
        };
        if seqid >= self.paws {
            return 0;
        }

        // Auto-tune (§3.4): a sticky mismatch flag, cleared by a successful detection.
        self.tune.sample(is_data, seqid);
        let expect_data = (seqid % self.n as u32) < self.ds as u32;
        if expect_data != is_data {
            self.tune_pending = true;
        }
        if self.tune_pending {
            let (ads, aps) = self.tune.detect();
            if ads == 0 || aps == 0 || ads + aps >= 256 {
                return 0;
            }
            if (ads, aps) != (self.ds, self.ps)
                && ads + aps > CHEAP_SHAPE
                && self.inputs < self.next_shape_at
            {
                return 0; // a change of shape too soon after the last: stay pending
            }
            self.retune(ads, aps);
            self.tune_pending = false;
            if seqid >= self.paws {
                return 0;
            }
        }

        let n = self.n as u32;
        let idx = (seqid % n) as usize;
        let base = seqid - idx as u32;
        let newest = match self.newest {
            Some(nw) if diff(base, nw) <= 0 => nw,
            _ => base,
        };
        self.newest = Some(newest);

        let si = self.slot_for(base, newest);
        let slot = &mut self.slots[si];
        if !slot.has(idx) {
            slot.room_for(idx, self.n);
            let shard = &pkt[SHARD_OFFSET..];
            let at = idx * SHARD_CAP;
            slot.buf[at..at + shard.len()].copy_from_slice(shard);
            slot.lens[idx] = shard.len() as u16;
            slot.set(idx);
            slot.count += 1;
            if slot.count >= self.ds {
                self.take_out(si);
            }
        }
        self.expire(newest);
        self.recov_count
    }

    /// The active slot of group `base`, or a fresh one (a free slot, else the oldest is evicted).
    fn slot_for(&mut self, base: u32, newest: u32) -> usize {
        if let Some(i) = self.slots.iter().position(|s| s.active && s.base == base) {
            return i;
        }
        let i = match self.slots.iter().position(|s| !s.active) {
            Some(i) => i,
            None => {
                // Unreachable with the expiry below, kept as a bound: evict the oldest group.
                let age = |s: &Slot| i64::from(diff(newest, s.base)).rem_euclid(1 << 32);
                (0..SLOTS).max_by_key(|&i| age(&self.slots[i])).unwrap_or(0)
            }
        };
        self.slots[i].reset(base, self.n);
        i
    }

    /// The group reached ds packets: recover its missing data shards (if any) and empty it.
    fn take_out(&mut self, si: usize) {
        let ds = self.ds;
        let n = self.n;
        let slot = &mut self.slots[si];
        if (0..ds).all(|i| slot.has(i)) {
            self.stats.fec_full_shard_set += 1;
        } else {
            let len = (0..n)
                .filter(|&i| slot.has(i))
                .map(|i| slot.lens[i] as usize)
                .max()
                .unwrap_or(0);
            for i in 0..n {
                if slot.has(i) {
                    let at = i * SHARD_CAP;
                    slot.buf[at + slot.lens[i] as usize..at + len].fill(0);
                }
            }
            let slot = &self.slots[si];
            if len > 0 && self.codec.prepare((0..n).filter(|&i| slot.has(i))) {
                if self.recov.is_empty() {
                    self.recov = vec![0; self.ps * SHARD_CAP];
                }
                let mut r = 0;
                for m in (0..ds).filter(|&m| !slot.has(m)) {
                    let out = &mut self.recov[r * SHARD_CAP..(r + 1) * SHARD_CAP];
                    self.codec.reconstruct(m, &slot.buf, SHARD_CAP, len, out);
                    r += 1;
                }
                self.recov_count = r;
                self.recov_len = len;
                self.stats.fec_recovered += r as u64;
            } else {
                self.stats.fec_errs += 1;
            }
        }
        let slot = &mut self.slots[si];
        slot.count = 0;
        slot.present = [0; 4];
    }

    /// Drops groups more than 3 groups older than the newest (or "newer" than it, which only a
    /// hostile jump of more than 2^31 can produce), then updates the gauges.
    fn expire(&mut self, newest: u32) {
        let limit = KEEP_GROUPS * self.n as i64;
        let mut live = 0;
        for s in &mut self.slots {
            if s.active {
                let d = i64::from(diff(newest, s.base));
                if !(0..=limit).contains(&d) {
                    s.active = false;
                } else {
                    live += 1;
                }
            }
        }
        self.stats.fec_shard_set = live;
        self.stats.fec_shard_min = u64::from(newest / self.n as u32);
    }

    /// Next recovered shard of the last input, whole: size field, KCP bytes, zero padding.
    pub fn poll_recovered_shard(&mut self) -> Option<&[u8]> {
        if self.recov_next >= self.recov_count {
            return None;
        }
        let at = self.recov_next * SHARD_CAP;
        self.recov_next += 1;
        Some(&self.recov[at..at + self.recov_len])
    }

    /// Next recovered KCP datagram of the last input: `shard[2..size]`, `size` = u16 LE
    /// `shard[0..2]`; shards with `size < 2` or `size > len` are skipped (and counted in
    /// `FECErrs`).
    pub fn poll_recovered(&mut self) -> Option<&[u8]> {
        while self.recov_next < self.recov_count {
            let at = self.recov_next * SHARD_CAP;
            self.recov_next += 1;
            let len = self.recov_len;
            if len >= 2 {
                let size = u16::from_le_bytes([self.recov[at], self.recov[at + 1]]) as usize;
                if (2..=len).contains(&size) {
                    return Some(&self.recov[at + 2..at + size]);
                }
            }
            self.stats.fec_errs += 1;
        }
        None
    }
}
