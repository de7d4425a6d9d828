//! The datagram pipeline of SPEC §1: KCP datagram ⇄ FEC ⇄ crypt, in place in caller buffers.
//!
//! [`Outbound`] turns a KCP datagram that the caller wrote at `buf[headroom()..]` into the final
//! UDP payload in the same buffer: FEC header (when FEC is on), then nonce + CRC + encryption (or
//! the AEAD seal). Completed FEC groups leave parity datagrams behind; drain them with
//! [`Outbound::poll_parity`] right after the data datagram that completed the group, as kcp-go
//! sends them.
//!
//! [`Inbound`] opens a received datagram in place and classifies it. Data and parity packets are
//! handed to the FEC decoder at once (a decoder is created lazily with (1, 1) when FEC packets reach
//! a session configured without FEC: auto-tune then learns the peer's shards), so after feeding
//! the returned KCP bytes to KCP the caller drains [`Inbound::poll_recovered`].
//!
//! Call order per received datagram: `open` → feed `Opened::Kcp` bytes to KCP → drain
//! `poll_recovered` into KCP (flagged as recovered). Per sent KCP datagram: write it at
//! `headroom()`, `seal` → send → drain `poll_parity` → send each.
//!
//! Nothing here allocates in steady state: FEC buffers are allocated by the first packets that
//! need them and kept until `release` (called when the session goes quiet).

use std::time::Instant;

use super::crypt::{Crypt, Method};
use super::fec::{self, FecConfigError, FecDecoder, FecEncoder, PacketKind};
use super::rng::Rng;
use super::snmp::Snmp;

/// Largest datagram either side accepts (SPEC §1.3, kcp-go's `mtuLimit`).
pub const MTU_LIMIT: usize = 1500;

/// KCP mtu for a given UDP mtu and pipeline (SPEC §1.4).
pub fn kcp_mtu(udp_mtu: usize, method: Method, fec_on: bool) -> usize {
    udp_mtu
        .saturating_sub(method.header_len())
        .saturating_sub(if fec_on { fec::FEC_HEADER } else { 0 })
        .saturating_sub(method.trailer_len())
}

/// Sending half: FEC encoder + cipher + nonce source.
pub struct Outbound {
    crypt: Crypt,
    fec: Option<FecEncoder>,
    rng: Rng,
    stats: Snmp,
}

impl Outbound {
    /// `fec` is `Some((ds, ps))` when both are > 0.
    pub fn new(
        crypt: Crypt,
        fec: Option<(usize, usize)>,
        rng: Rng,
        now: Instant,
    ) -> Result<Self, FecConfigError> {
        let fec = match fec {
            Some((ds, ps)) => Some(FecEncoder::new(ds, ps, now)?),
            None => None,
        };
        Ok(Outbound {
            crypt,
            fec,
            rng,
            stats: Snmp::default(),
        })
    }

    /// Bytes the caller leaves free in front of the KCP datagram.
    pub fn headroom(&self) -> usize {
        self.crypt.header_len()
            + if self.fec.is_some() {
                fec::FEC_HEADER
            } else {
                0
            }
    }

    /// Total bytes added around a KCP datagram (headroom + AEAD tag).
    pub fn overhead(&self) -> usize {
        self.headroom() + self.crypt.trailer_len()
    }

    /// Seals the KCP datagram at `buf[headroom()..headroom() + kcp_len]` in place and returns the
    /// datagram length. `buf` must have room for the AEAD tag after the payload.
    pub fn seal(&mut self, now: Instant, buf: &mut [u8], kcp_len: usize) -> usize {
        let ch = self.crypt.header_len();
        let mut payload_len = kcp_len;
        if let Some(enc) = &mut self.fec {
            payload_len += fec::FEC_HEADER;
            enc.encode(now, &mut buf[ch..ch + payload_len]);
        }
        let n = self.crypt.seal(&mut self.rng, buf, payload_len);
        self.stats.out_pkts += 1;
        self.stats.out_bytes += n as u64;
        n
    }

    /// Writes the next pending parity datagram (sealed) into `buf`; `None` when none is left.
    pub fn poll_parity(&mut self, buf: &mut [u8]) -> Option<usize> {
        let ch = self.crypt.header_len();
        let enc = self.fec.as_mut()?;
        let len = enc.poll_parity(&mut buf[ch..])?;
        let n = self.crypt.seal(&mut self.rng, buf, len);
        self.stats.out_pkts += 1;
        self.stats.out_bytes += n as u64;
        Some(n)
    }

    /// Gives back the FEC encoder's buffer (the session went quiet; see [`FecEncoder::release`]).
    pub fn release(&mut self) {
        if let Some(enc) = &mut self.fec {
            enc.release();
        }
    }

    /// Heap bytes of the cipher state and of the FEC encoder.
    pub fn heap_bytes(&self) -> (usize, usize) {
        (
            self.crypt.heap_bytes(),
            self.fec.as_ref().map_or(0, FecEncoder::heap_bytes),
        )
    }

    /// OutPkts/OutBytes here; FEC encoder counters added in.
    pub fn stats(&self) -> Snmp {
        let mut s = self.stats;
        if let Some(enc) = &self.fec {
            s.add(enc.stats());
        }
        s
    }
}

/// What a received datagram turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened<'a> {
    /// KCP bytes to feed to KCP (a plain datagram, or the payload of an FEC data packet).
    Kcp(&'a [u8]),
    /// A parity or out-of-band packet: nothing for KCP directly (recoveries may be pending).
    Nothing,
}

/// Why a datagram was dropped; each is counted in [`Inbound::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Wrong key or cipher, or corrupted (`InCsumErrors`).
    Integrity,
    /// Too short to be a datagram of this pipeline.
    TooShort,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpenError::Integrity => "datagram failed the integrity check (wrong key or cipher?)",
            OpenError::TooShort => "datagram too short",
        })
    }
}

impl std::error::Error for OpenError {}

/// Receiving half: cipher + FEC decoder.
pub struct Inbound {
    crypt: Crypt,
    fec: Option<FecDecoder>,
    stats: Snmp,
}

impl Inbound {
    /// `fec` is `Some((ds, ps))` when both are > 0; otherwise a decoder appears when needed.
    pub fn new(crypt: Crypt, fec: Option<(usize, usize)>) -> Result<Self, FecConfigError> {
        let fec = match fec {
            Some((ds, ps)) => Some(FecDecoder::new(ds, ps)?),
            None => None,
        };
        Ok(Inbound {
            crypt,
            fec,
            stats: Snmp::default(),
        })
    }

    /// Decrypts and checks `dgram` in place, feeds FEC packets to the decoder, and returns the KCP
    /// bytes to input (if any). Never panics, whatever the bytes.
    pub fn open<'a>(&mut self, dgram: &'a mut [u8]) -> Result<Opened<'a>, OpenError> {
        let payload: &'a [u8] = match self.crypt.open(dgram) {
            Ok(p) => p,
            Err(super::crypt::OpenError::TooShort) => return Err(OpenError::TooShort),
            Err(_) => {
                self.stats.in_csum_errors += 1;
                return Err(OpenError::Integrity);
            }
        };
        self.accept(payload)
    }

    /// The part of [`Inbound::open`] after the crypto layer: for a datagram someone else already
    /// opened (a server opens the first datagram of a new peer before the session exists).
    pub fn accept<'a>(&mut self, payload: &'a [u8]) -> Result<Opened<'a>, OpenError> {
        self.stats.in_pkts += 1;
        self.stats.in_bytes += payload.len() as u64;
        let kind = fec::classify(payload);
        match kind {
            PacketKind::Plain => Ok(Opened::Kcp(payload)),
            PacketKind::Data | PacketKind::Parity => {
                if payload.len() < fec::FEC_HEADER {
                    self.stats.in_errs += 1;
                    return Err(OpenError::TooShort);
                }
                let dec = match &mut self.fec {
                    Some(d) => d,
                    None => self
                        .fec
                        .insert(FecDecoder::new(1, 1).expect("(1,1) is a valid FEC shape")),
                };
                dec.input(payload);
                if kind == PacketKind::Data {
                    Ok(Opened::Kcp(&payload[fec::FEC_HEADER..]))
                } else {
                    Ok(Opened::Nothing)
                }
            }
            PacketKind::Oob => {
                self.stats.oob_packets += 1;
                Ok(Opened::Nothing)
            }
        }
    }

    /// The next KCP datagram recovered by FEC since the last `open`.
    pub fn poll_recovered(&mut self) -> Option<&[u8]> {
        self.fec.as_mut()?.poll_recovered()
    }

    /// Gives back the FEC decoder's buffers (the session went quiet; see [`FecDecoder::release`]).
    pub fn release(&mut self) {
        if let Some(dec) = &mut self.fec {
            dec.release();
        }
    }

    /// Heap bytes of the cipher state and of the FEC decoder.
    pub fn heap_bytes(&self) -> (usize, usize) {
        (
            self.crypt.heap_bytes(),
            self.fec.as_ref().map_or(0, FecDecoder::heap_bytes),
        )
    }

    /// InPkts/InBytes/InCsumErrors/InErrs here; FEC decoder counters added in.
    pub fn stats(&self) -> Snmp {
        let mut s = self.stats;
        if let Some(dec) = &self.fec {
            s.add(dec.stats());
        }
        s
    }
}

/// Builds both halves of a pipeline from the settings both ends share.
pub fn pipeline(
    method: Method,
    pass: &[u8; 32],
    fec: Option<(usize, usize)>,
    rng: Rng,
    now: Instant,
) -> Result<(Outbound, Inbound), FecConfigError> {
    Ok((
        Outbound::new(Crypt::new(method, pass), fec, rng, now)?,
        Inbound::new(Crypt::new(method, pass), fec)?,
    ))
}
