//! kcp-go's forward error correction layer (SPEC §1.2, §3): Reed-Solomon over groups of `ds` data
//! packets plus `ps` parity packets, wire-exact with kcp-go (latest v5.6.64; the decoder also
//! accepts what the 2021 v5.6.1 encoder sends).
//!
//! Every FEC packet starts with an 8-byte header, `seqid` u32 LE, `type` u16 LE (0xF1 data, 0xF2
//! parity, 0xF3 out-of-band) and, for data, `size` u16 LE = 2 + KCP datagram length. A parity
//! packet's bytes from offset 6 on are the parity shard. All slices handed to this module start at
//! the FEC header, i.e. after any crypt header; the caller owns the buffers.
//!
//! Invariants: buffers are allocated by the first packets that need them (and again after a
//! decoder re-tune or a `release`, which a session calls when it goes quiet) and then reused, so [`FecEncoder::encode`], [`FecEncoder::poll_parity`], [`FecDecoder::input`] and
//! [`FecDecoder::poll_recovered`] never allocate after warm-up; the decoder keeps a fixed number
//! of group slots, so no input (hostile seqids, types, lengths, endless re-tunes) grows memory or
//! panics.
//!
//! Call order. Sender: for each KCP datagram, put it at `buf[8..]`, call `encode(now, buf)`, send
//! `buf`, then drain `poll_parity` until `None` and send each parity packet. Receiver: [`classify`]
//! the decrypted packet; give data packets' `pkt[8..]` to KCP, then (data or parity) call
//! `input(pkt)` and drain `poll_recovered` before the next `input`, feeding each result to KCP as
//! a recovered packet.

mod autotune;
mod decoder;
mod encoder;
mod rs;

pub use decoder::FecDecoder;
pub use encoder::FecEncoder;

use std::fmt;

/// Length of the FEC header (seqid, type, size).
pub const FEC_HEADER: usize = 8;
/// Type field of a data packet.
pub const TYPE_DATA: u16 = 0xF1;
/// Type field of a parity packet.
pub const TYPE_PARITY: u16 = 0xF2;
/// Type field of an out-of-band packet (latest kcp-go; kcptun never sends it).
pub const TYPE_OOB: u16 = 0xF3;
/// Longest packet (from the FEC header on) the encoder and decoder handle: kcp-go's `mtuLimit`.
pub const MTU_LIMIT: usize = 1500;
/// Offset of the shard (size field + KCP datagram, or parity bytes) inside a FEC packet.
pub(crate) const SHARD_OFFSET: usize = 6;
/// Longest shard: `MTU_LIMIT - 6`.
pub(crate) const SHARD_CAP: usize = MTU_LIMIT - SHARD_OFFSET;

/// What a decrypted datagram carries, from the u16 LE at offset 4 (SPEC §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// FEC data packet (0xF1): KCP datagram at `[8..]`, then the FEC decoder.
    Data,
    /// FEC parity packet (0xF2): FEC decoder only.
    Parity,
    /// Out-of-band packet (0xF3): ignored by kcptun.
    Oob,
    /// No FEC header: the whole packet is a KCP datagram.
    Plain,
}

/// Classifies a decrypted packet. Packets shorter than 6 bytes are [`PacketKind::Plain`] (KCP will
/// reject them); a Data/Parity packet shorter than [`FEC_HEADER`] is the decoder's to count.
pub fn classify(pkt: &[u8]) -> PacketKind {
    match pkt.get(4..6) {
        Some(&[a, b]) => match u16::from_le_bytes([a, b]) {
            TYPE_DATA => PacketKind::Data,
            TYPE_PARITY => PacketKind::Parity,
            TYPE_OOB => PacketKind::Oob,
            _ => PacketKind::Plain,
        },
        _ => PacketKind::Plain,
    }
}

/// Invalid (ds, ps) for an encoder or decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FecConfigError {
    /// ds or ps is 0 (FEC off is expressed by not creating an encoder).
    ZeroShards,
    /// ds + ps > 256.
    TooManyShards,
}

impl fmt::Display for FecConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FecConfigError::ZeroShards => {
                f.write_str("FEC data and parity shard counts must be >= 1")
            }
            FecConfigError::TooManyShards => f.write_str("FEC data + parity shards must be <= 256"),
        }
    }
}

impl std::error::Error for FecConfigError {}

pub(crate) fn check_params(ds: usize, ps: usize) -> Result<(), FecConfigError> {
    if ds == 0 || ps == 0 {
        Err(FecConfigError::ZeroShards)
    } else if ds + ps > 256 {
        Err(FecConfigError::TooManyShards)
    } else {
        Ok(())
    }
}

/// `floor(0xFFFFFFFF / n) * n`: the seqid modulus, a multiple of the group size (SPEC §3.2).
pub(crate) fn paws(n: usize) -> u32 {
    let n = n as u32;
    (u32::MAX / n) * n
}

#[cfg(test)]
mod tests;
