//! The smux frame header (SPEC §5.1): a checked view over 8 borrowed bytes plus a small `Copy` repr.
//!
//! Layout: `ver u8 | cmd u8 | length u16 LE | sid u32 LE`, then `length` payload bytes. An UPD
//! payload is `consumed u32 LE | window u32 LE`.
//!
//! Contract: [`Frame::new_checked`] verifies the buffer holds the 8-byte header; after that no
//! accessor panics. [`Frame::payload`] returns `None` while the buffer does not yet hold the whole
//! payload (`length` comes from the wire). Emitting goes through [`Frame::new_unchecked`] on a buffer
//! the caller sized with [`HEADER_LEN`] + payload length. Values of `ver` and `cmd` are not judged
//! here; [`Header::parse`] returns raw fields and the session decides what is valid.

/// Size of the frame header.
pub const HEADER_LEN: usize = 8;
/// Payload length of an UPD frame.
pub const UPD_LEN: usize = 8;

mod field {
    use std::ops::Range;
    pub const VER: usize = 0;
    pub const CMD: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const SID: Range<usize> = 4..8;
}

/// Frame commands (SPEC §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Open a stream.
    Syn = 0,
    /// The sender's direction of the stream ended.
    Fin = 1,
    /// Stream data.
    Psh = 2,
    /// Keep-alive.
    Nop = 3,
    /// v2 flow-control update.
    Upd = 4,
}

impl Cmd {
    /// The command for a wire byte, `None` for unknown values.
    pub fn from_u8(b: u8) -> Option<Cmd> {
        match b {
            0 => Some(Cmd::Syn),
            1 => Some(Cmd::Fin),
            2 => Some(Cmd::Psh),
            3 => Some(Cmd::Nop),
            4 => Some(Cmd::Upd),
            _ => None,
        }
    }
}

/// The header is shorter than 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("smux frame shorter than its 8-byte header")
    }
}
impl std::error::Error for Truncated {}

/// A view of one frame over a borrowed buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps without checking; accessors may panic on a buffer shorter than 8 bytes.
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps after checking that the 8-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Truncated);
        }
        Ok(Frame { buffer })
    }

    /// Version byte (1 or 2 on a valid stream).
    #[inline]
    pub fn ver(&self) -> u8 {
        self.buffer.as_ref()[field::VER]
    }

    /// Raw command byte.
    #[inline]
    pub fn cmd(&self) -> u8 {
        self.buffer.as_ref()[field::CMD]
    }

    /// Payload length.
    #[inline]
    pub fn length(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_le_bytes([b[0], b[1]])
    }

    /// Stream id.
    #[inline]
    pub fn sid(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SID];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The payload, or `None` while the buffer holds fewer than `length` payload bytes.
    pub fn payload(&self) -> Option<&[u8]> {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..HEADER_LEN + usize::from(self.length()))
    }

    /// Whole frame length (header + payload).
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + usize::from(self.length())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the version byte.
    #[inline]
    pub fn set_ver(&mut self, v: u8) {
        self.buffer.as_mut()[field::VER] = v;
    }
    /// Sets the command byte.
    #[inline]
    pub fn set_cmd(&mut self, c: u8) {
        self.buffer.as_mut()[field::CMD] = c;
    }
    /// Sets the payload length.
    #[inline]
    pub fn set_length(&mut self, l: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&l.to_le_bytes());
    }
    /// Sets the stream id.
    #[inline]
    pub fn set_sid(&mut self, s: u32) {
        self.buffer.as_mut()[field::SID].copy_from_slice(&s.to_le_bytes());
    }
    /// The payload area, `None` if the buffer is shorter than header + `length`.
    pub fn payload_mut(&mut self) -> Option<&mut [u8]> {
        let end = HEADER_LEN + usize::from(self.length());
        self.buffer.as_mut().get_mut(HEADER_LEN..end)
    }
}

/// Parsed header fields (raw: `ver` and `cmd` are not validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Version byte.
    pub ver: u8,
    /// Command byte.
    pub cmd: u8,
    /// Payload length.
    pub length: u16,
    /// Stream id.
    pub sid: u32,
}

impl Header {
    /// Reads the fields of an 8-byte header.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let f = Frame::new_unchecked(&b[..]);
        Header {
            ver: f.ver(),
            cmd: f.cmd(),
            length: f.length(),
            sid: f.sid(),
        }
    }

    /// Writes the header into the first 8 bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than [`HEADER_LEN`] (a caller bug, never wire-driven).
    pub fn emit(&self, out: &mut [u8]) {
        let mut f = Frame::new_unchecked(&mut out[..HEADER_LEN]);
        f.set_ver(self.ver);
        f.set_cmd(self.cmd);
        f.set_length(self.length);
        f.set_sid(self.sid);
    }
}

/// Decodes an UPD payload into `(consumed, window)`.
pub fn parse_upd(b: &[u8; UPD_LEN]) -> (u32, u32) {
    (
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    )
}

/// Encodes an UPD payload into `out[..8]`.
///
/// # Panics
/// If `out` is shorter than [`UPD_LEN`] (caller bug).
pub fn emit_upd(consumed: u32, window: u32, out: &mut [u8]) {
    out[..4].copy_from_slice(&consumed.to_le_bytes());
    out[4..8].copy_from_slice(&window.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSH_HELLO: [u8; 13] = [
        0x02, 0x02, 0x05, 0x00, 0x03, 0x00, 0x00, 0x00, b'h', b'e', b'l', b'l', b'o',
    ];

    #[test]
    fn deconstruct() {
        let f = Frame::new_checked(&PSH_HELLO[..]).unwrap();
        assert_eq!(f.ver(), 2);
        assert_eq!(Cmd::from_u8(f.cmd()), Some(Cmd::Psh));
        assert_eq!(f.length(), 5);
        assert_eq!(f.sid(), 3);
        assert_eq!(f.payload(), Some(&b"hello"[..]));
        assert_eq!(f.frame_len(), 13);
    }

    #[test]
    fn construct_overwrites_every_field() {
        let mut buf = [0xa5u8; 13];
        Header {
            ver: 2,
            cmd: 2,
            length: 5,
            sid: 3,
        }
        .emit(&mut buf);
        Frame::new_unchecked(&mut buf[..])
            .payload_mut()
            .unwrap()
            .copy_from_slice(b"hello");
        assert_eq!(buf, PSH_HELLO);
    }

    #[test]
    fn impossible_len() {
        assert_eq!(Frame::new_checked(&PSH_HELLO[..7]).unwrap_err(), Truncated);
        // Header present, payload truncated: no panic, payload is None.
        let f = Frame::new_checked(&PSH_HELLO[..10]).unwrap();
        assert_eq!(f.payload(), None);
        let huge = [1u8, 2, 0xff, 0xff, 0, 0, 0, 0];
        assert_eq!(Frame::new_checked(&huge[..]).unwrap().payload(), None);
    }

    #[test]
    fn upd_round_trip() {
        let mut b = [0u8; 8];
        emit_upd(5, 2_097_152, &mut b);
        assert_eq!(b, [5, 0, 0, 0, 0, 0, 0x20, 0]);
        assert_eq!(parse_upd(&b), (5, 2_097_152));
        assert_eq!(Cmd::from_u8(5), None);
    }
}
