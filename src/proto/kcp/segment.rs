//! The 24-byte KCP segment header (SPEC §4.1), as a checked view and a small `Copy` repr.
//!
//! Layout, all little-endian: conv u32 @0, cmd u8 @4, frg u8 @5, wnd u16 @6, ts u32 @8, sn u32 @12,
//! una u32 @16, len u32 @20, then `len` data bytes. [`Header::parse`] checks the length once
//! (header present, `len` fits in what follows) and the conv/cmd; after it succeeds the payload
//! slice it returns is in bounds by construction. [`Header::write`] emits into a caller buffer of
//! at least [`OVERHEAD`] bytes and never reads stale bytes.

use super::InputError;

/// Bytes of header in front of every segment.
pub const OVERHEAD: usize = 24;

/// Data segment.
pub const CMD_PUSH: u8 = 81;
/// Acknowledgement of one PUSH.
pub const CMD_ACK: u8 = 82;
/// Window probe ("ask").
pub const CMD_WASK: u8 = 83;
/// Window size ("tell").
pub const CMD_WINS: u8 = 84;

mod field {
    use std::ops::Range;
    pub const CONV: Range<usize> = 0..4;
    pub const CMD: usize = 4;
    pub const FRG: usize = 5;
    pub const WND: Range<usize> = 6..8;
    pub const TS: Range<usize> = 8..12;
    pub const SN: Range<usize> = 12..16;
    pub const UNA: Range<usize> = 16..20;
    pub const LEN: Range<usize> = 20..24;
}

/// One decoded segment header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub conv: u32,
    pub cmd: u8,
    pub frg: u8,
    pub wnd: u16,
    pub ts: u32,
    pub sn: u32,
    pub una: u32,
    pub len: u32,
}

#[inline]
fn u32_at(h: &[u8; OVERHEAD], r: std::ops::Range<usize>) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&h[r]);
    u32::from_le_bytes(b)
}

impl Header {
    /// Decodes the fixed 24 bytes (no semantic checks).
    #[inline]
    pub fn decode(h: &[u8; OVERHEAD]) -> Header {
        Header {
            conv: u32_at(h, field::CONV),
            cmd: h[field::CMD],
            frg: h[field::FRG],
            wnd: u16::from_le_bytes([h[field::WND.start], h[field::WND.start + 1]]),
            ts: u32_at(h, field::TS),
            sn: u32_at(h, field::SN),
            una: u32_at(h, field::UNA),
            len: u32_at(h, field::LEN),
        }
    }

    /// Parses the segment at the start of `buf` for a session with conversation `conv`.
    ///
    /// Checks, in kcp-go's order: conv, then that `len` data bytes follow, then the command.
    /// Returns the header, its payload and the bytes after it.
    #[inline]
    pub fn parse(buf: &[u8], conv: u32) -> Result<(Header, &[u8], &[u8]), InputError> {
        let Some((head, rest)) = buf.split_first_chunk::<OVERHEAD>() else {
            return Err(InputError::Truncated);
        };
        let h = Header::decode(head);
        if h.conv != conv {
            return Err(InputError::ConvMismatch);
        }
        let len = h.len as usize;
        if len > rest.len() {
            return Err(InputError::Truncated);
        }
        if !(CMD_PUSH..=CMD_WINS).contains(&h.cmd) {
            return Err(InputError::BadCommand);
        }
        let (payload, after) = rest.split_at(len);
        Ok((h, payload, after))
    }

    /// Writes the header into `out[..24]`. `out` must hold at least [`OVERHEAD`] bytes.
    #[inline]
    pub fn write(&self, out: &mut [u8]) {
        let h = &mut out[..OVERHEAD];
        h[field::CONV].copy_from_slice(&self.conv.to_le_bytes());
        h[field::CMD] = self.cmd;
        h[field::FRG] = self.frg;
        h[field::WND].copy_from_slice(&self.wnd.to_le_bytes());
        h[field::TS].copy_from_slice(&self.ts.to_le_bytes());
        h[field::SN].copy_from_slice(&self.sn.to_le_bytes());
        h[field::UNA].copy_from_slice(&self.una.to_le_bytes());
        h[field::LEN].copy_from_slice(&self.len.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let h = Header {
            conv: 0x11223344,
            cmd: CMD_PUSH,
            frg: 0,
            wnd: 512,
            ts: 123456,
            sn: 7,
            una: 3,
            len: 5,
        };
        let mut buf = [0u8; 29];
        h.write(&mut buf);
        buf[24..].copy_from_slice(b"hello");
        let (p, data, rest) = Header::parse(&buf, 0x11223344).unwrap();
        assert_eq!((p, data, rest.len()), (h, &b"hello"[..], 0));
        assert_eq!(Header::parse(&buf, 1), Err(InputError::ConvMismatch));
        assert_eq!(
            Header::parse(&buf[..28], 0x11223344),
            Err(InputError::Truncated)
        );
        assert_eq!(
            Header::parse(&buf[..23], 0x11223344),
            Err(InputError::Truncated)
        );
        buf[4] = 85;
        assert_eq!(Header::parse(&buf, 0x11223344), Err(InputError::BadCommand));
        // An absurd length is a truncation, not a panic.
        buf[4] = CMD_PUSH;
        buf[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Header::parse(&buf, 0x11223344), Err(InputError::Truncated));
    }
}
