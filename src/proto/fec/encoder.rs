//! The sender half: numbers data packets, remembers their shards and produces the group's parity
//! packets (SPEC §3.1, latest rules: parity is skipped when the group's last data packet came
//! >= 500 ms after the previous one, seqids still advance by ps).

use std::time::{Duration, Instant};

use super::rs::Codec;
use super::{check_params, paws, FecConfigError, MTU_LIMIT, SHARD_CAP, SHARD_OFFSET};
use super::{TYPE_DATA, TYPE_PARITY};
use crate::proto::snmp::Snmp;

/// Time gap after which the latest kcp-go encoder skips a group's parity.
const SKIP_PARITY_GAP: Duration = Duration::from_millis(500);

/// FEC encoder of one session direction. See the module docs for the call order.
#[derive(Debug)]
pub struct FecEncoder {
    ds: usize,
    ps: usize,
    paws: u32,
    next: u32,
    /// Data shards remembered in the current group.
    count: usize,
    /// Longest packet of the current group, measured from the FEC header.
    max_len: usize,
    /// ds data shards then ps parity shards, each at stride `SHARD_CAP`; grown as the group fills
    /// (empty after [`FecEncoder::release`]).
    shards: Vec<u8>,
    /// Length of each remembered data shard.
    lens: Vec<usize>,
    /// Time of the previous `encode` call ("time 0" = construction).
    last: Instant,
    /// Shard length of the ready parity.
    parity_len: usize,
    parity_seq: u32,
    parity_ready: usize,
    parity_next: usize,
    codec: Codec,
    stats: Snmp,
}

impl FecEncoder {
    /// An encoder for (ds, ps), seqids from 0. `now` is the session start, the "time 0" against
    /// which the first packet's gap is measured.
    pub fn new(ds: usize, ps: usize, now: Instant) -> Result<Self, FecConfigError> {
        check_params(ds, ps)?;
        Ok(FecEncoder {
            ds,
            ps,
            paws: paws(ds + ps),
            next: 0,
            count: 0,
            max_len: 0,
            shards: Vec::new(),
            lens: vec![0; ds],
            last: now,
            parity_len: 0,
            parity_seq: 0,
            parity_ready: 0,
            parity_next: 0,
            codec: Codec::new(ds, ps),
            stats: Snmp::default(),
        })
    }

    /// Heap bytes held: the group's shards and the coding matrix.
    pub fn heap_bytes(&self) -> usize {
        use crate::proto::mem::vec_bytes;
        vec_bytes(&self.shards) + vec_bytes(&self.lens) + self.codec.heap_bytes()
    }

    /// Gives back the shard buffer (the session went quiet). A group in progress is abandoned:
    /// numbering jumps to the next group, so the peer sees its missing tail as lost packets (its
    /// data was acknowledged long ago) and no parity ever covers shards that are gone.
    pub fn release(&mut self) {
        if self.parity_next < self.parity_ready {
            return; // parity not yet sent: keep it
        }
        if self.count > 0 {
            self.advance(self.ds - self.count + self.ps);
            self.count = 0;
            self.max_len = 0;
        }
        self.shards = Vec::new();
    }

    /// Starts numbering at `seqid` (reduced modulo paws). Meant for tests of the wrap-around.
    pub fn with_next_seqid(mut self, seqid: u32) -> Self {
        self.next = seqid % self.paws;
        self
    }

    /// The seqid the next packet gets.
    pub fn next_seqid(&self) -> u32 {
        self.next
    }

    /// `(ds, ps)`.
    pub fn params(&self) -> (usize, usize) {
        (self.ds, self.ps)
    }

    fn advance(&mut self, by: usize) {
        self.next = ((u64::from(self.next) + by as u64) % u64::from(self.paws)) as u32;
    }

    /// `pkt[..8]` is room for the FEC header, `pkt[8..]` the KCP datagram; `pkt.len()` must be in
    /// `8..=1500` (otherwise the packet is left untouched and 0 is returned). Writes seqid, type
    /// and size in place and remembers the shard. Returns how many parity packets became ready
    /// (0 or ps); drain them with [`FecEncoder::poll_parity`] before the next `encode`, which
    /// otherwise discards them when it completes a group.
    pub fn encode(&mut self, now: Instant, pkt: &mut [u8]) -> usize {
        let len = pkt.len();
        if !(super::FEC_HEADER..=MTU_LIMIT).contains(&len) {
            return 0;
        }
        pkt[0..4].copy_from_slice(&self.next.to_le_bytes());
        pkt[4..6].copy_from_slice(&TYPE_DATA.to_le_bytes());
        // len <= 1500, so the size fits in a u16.
        pkt[6..8].copy_from_slice(&((len - SHARD_OFFSET) as u16).to_le_bytes());
        self.advance(1);

        let shard = &pkt[SHARD_OFFSET..];
        let at = self.count * SHARD_CAP;
        if self.shards.len() < at + SHARD_CAP {
            // Whole groups once the first one completes; until then, as far as it got.
            let want = if self.count + 1 < self.ds {
                (at + SHARD_CAP).max(self.shards.len() * 2)
            } else {
                (self.ds + self.ps) * SHARD_CAP
            };
            self.shards
                .resize(want.min((self.ds + self.ps) * SHARD_CAP), 0);
        }
        self.shards[at..at + shard.len()].copy_from_slice(shard);
        self.lens[self.count] = shard.len();
        self.count += 1;
        self.max_len = self.max_len.max(len);

        let gap = now.saturating_duration_since(self.last);
        self.last = now;
        if self.count < self.ds {
            return 0;
        }

        let shard_len = self.max_len - SHARD_OFFSET;
        self.count = 0;
        self.max_len = 0;
        self.parity_ready = 0;
        self.parity_next = 0;
        if gap >= SKIP_PARITY_GAP {
            self.advance(self.ps);
            return 0;
        }
        self.shards.resize((self.ds + self.ps) * SHARD_CAP, 0);
        for i in 0..self.ds {
            let at = i * SHARD_CAP;
            self.shards[at + self.lens[i]..at + shard_len].fill(0);
        }
        let (data, parity) = self.shards.split_at_mut(self.ds * SHARD_CAP);
        self.codec.encode(data, parity, SHARD_CAP, shard_len);
        self.parity_len = shard_len;
        self.parity_seq = self.next;
        self.parity_ready = self.ps;
        self.advance(self.ps);
        self.ps
    }

    /// Writes the next ready parity packet (FEC header + parity shard, as long as the group's
    /// longest data packet) into `out` and returns its length; `None` when none is left, or when
    /// `out` is too short (the packet then stays queued).
    pub fn poll_parity(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.parity_next >= self.parity_ready {
            return None;
        }
        let total = SHARD_OFFSET + self.parity_len;
        let out = out.get_mut(..total)?;
        let j = self.parity_next;
        let seq = ((u64::from(self.parity_seq) + j as u64) % u64::from(self.paws)) as u32;
        out[0..4].copy_from_slice(&seq.to_le_bytes());
        out[4..6].copy_from_slice(&TYPE_PARITY.to_le_bytes());
        let at = (self.ds + j) * SHARD_CAP;
        out[SHARD_OFFSET..].copy_from_slice(&self.shards[at..at + self.parity_len]);
        self.parity_next += 1;
        Some(total)
    }

    /// Counters. kcp-go counts nothing on the sending side (`FECParityShards` counts parity
    /// packets *received*, see [`super::FecDecoder::stats`]), so these stay zero.
    pub fn stats(&self) -> &Snmp {
        &self.stats
    }
}
