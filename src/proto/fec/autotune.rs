//! Detection of the sender's (ds, ps) from the data/parity pattern of recent seqids (SPEC §3.4).
//!
//! Keeps the last [`SAMPLES`] (is-data, seqid) pairs in a fixed ring; [`AutoTune::detect`] sorts a
//! copy (on the stack, no allocation) by seqid relative to the newest sample, a total order, and
//! measures one run of data and one run of parity packets.

/// Ring size, as kcp-go.
pub(crate) const SAMPLES: usize = 258;

#[derive(Debug, Clone)]
pub(crate) struct AutoTune {
    ring: [(u32, bool); SAMPLES],
    len: usize,
    pos: usize,
}

impl AutoTune {
    pub(crate) fn new() -> Self {
        AutoTune {
            ring: [(0, false); SAMPLES],
            len: 0,
            pos: 0,
        }
    }

    /// Records one FEC packet.
    pub(crate) fn sample(&mut self, is_data: bool, seqid: u32) {
        self.ring[self.pos] = (seqid, is_data);
        self.pos = (self.pos + 1) % SAMPLES;
        self.len = (self.len + 1).min(SAMPLES);
    }

    /// `(data run, parity run)`; 0 where no run could be measured.
    pub(crate) fn detect(&mut self) -> (usize, usize) {
        let n = self.len;
        if n < 2 {
            return (0, 0);
        }
        let newest = self.ring[(self.pos + SAMPLES - 1) % SAMPLES].0;
        // The sorted copy lives on the stack (2 KiB): detection is rare, session state is not.
        let mut sorted = [(0u32, false); SAMPLES];
        sorted[..n].copy_from_slice(&self.ring[..n]);
        sorted[..n].sort_unstable_by_key(|&(s, _)| s.wrapping_sub(newest) as i32);
        let s = &sorted[..n];
        (period(s, true), period(s, false))
    }
}

/// Length of the first complete run of `bit` in seqid order; 0 if a seqid gap comes first.
fn period(s: &[(u32, bool)], bit: bool) -> usize {
    let mut left = None;
    for i in 1..s.len() {
        let (prev, cur) = (s[i - 1], s[i]);
        if cur.0 != prev.0.wrapping_add(1) {
            return 0;
        }
        match left {
            None => {
                if prev.1 != bit && cur.1 == bit {
                    left = Some(i);
                }
            }
            Some(l) => {
                if prev.1 == bit && cur.1 != bit {
                    return i - l;
                }
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_10_3_and_fails_on_gaps() {
        let mut t = AutoTune::new();
        for seq in 0u32..40 {
            t.sample(seq % 13 < 10, seq);
        }
        assert_eq!(t.detect(), (10, 3));
        let mut t = AutoTune::new();
        for seq in (0u32..40).filter(|s| s % 7 != 3) {
            t.sample(seq % 13 < 10, seq);
        }
        assert_eq!(t.detect(), (0, 0));
    }

    #[test]
    fn detects_across_u32_wrap_in_any_order() {
        let mut t = AutoTune::new();
        let start = u32::MAX - 20;
        let mut seqs: Vec<u32> = (0..40).map(|i| start.wrapping_add(i)).collect();
        seqs.reverse();
        for &s in &seqs {
            let pos = s.wrapping_sub(start) % 7;
            t.sample(pos < 5, s);
        }
        assert_eq!(t.detect(), (5, 2));
    }
}
