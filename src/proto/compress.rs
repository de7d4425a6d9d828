//! Snappy *framed* stream (SPEC §6), byte-identical to golang/snappy's `BufferedWriter` + `Reader`
//! as kcptun's `CompStream` uses them, and incremental on the read side.
//!
//! Framing: `type (1) | length (3, LE) | body`. The stream identifier chunk
//! `ff 06 00 00 "sNaPpY"` goes once, lazily, before the first data chunk. Data chunks carry the
//! masked CRC-32C of the *uncompressed* bytes (4, LE) and then either a snappy block (type 0x00) or
//! the raw bytes (type 0x01). Padding (0xFE) and reserved skippable chunks (0x80–0xFD) are skipped;
//! reserved unskippable chunks (0x02–0x7F) are an error.
//!
//! [`Compressor::compress`] is one `CompStream.Write` + `Flush`: it appends whole chunks to the
//! caller's `Vec` and keeps one scratch block, grown to the largest piece, so the steady state
//! never allocates; [`Compressor::release`] gives it back when the session goes quiet.
//!
//! [`Decompressor::decompress`] takes any prefix of a framed stream, split anywhere, and appends
//! the decoded bytes to the caller's `Vec`. Invariants: a chunk is verified (length, snappy block,
//! CRC) before any of its bytes are delivered, so `out` only ever receives checked data; internal
//! buffering never exceeds one maximum chunk (4-byte header + [`MAX_CHUNK_LEN`] body), and only
//! chunks that straddle two calls are copied at all; after the first error every call returns the
//! same error (the stream is dead, as Go's reader is). Back-pressure: see
//! [`Decompressor::decompress`].

use std::fmt;

use snap::raw::{decompress_len, max_compress_len, Decoder, Encoder};

/// The stream identifier chunk, header included.
pub const STREAM_IDENTIFIER: [u8; 10] = *b"\xff\x06\x00\x00sNaPpY";
/// Largest uncompressed piece per data chunk (golang/snappy `maxBlockSize`).
pub const MAX_BLOCK_SIZE: usize = 65536;
/// Largest chunk body a reader accepts: CRC (4) + `MaxEncodedLen(65536)` (76490). Longer chunks
/// are "unsupported", as in Go.
pub const MAX_CHUNK_LEN: usize = 4 + 76490;

const CHUNK_HEADER_LEN: usize = 4;
const CHECKSUM_LEN: usize = 4;
const MAGIC_BODY: &[u8; 6] = b"sNaPpY";

const TYPE_COMPRESSED: u8 = 0x00;
const TYPE_UNCOMPRESSED: u8 = 0x01;
const TYPE_STREAM_IDENTIFIER: u8 = 0xff;

/// Masked CRC-32C of `data` as the framing format stores it.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes a chunk header (type + 24-bit LE length) to `out`. `len` fits 24 bits by construction.
fn push_header(out: &mut Vec<u8>, chunk_type: u8, len: usize) {
    let l = (len as u32).to_le_bytes();
    out.extend_from_slice(&[chunk_type, l[0], l[1], l[2]]);
}

/// Sender side of a snappy framed stream. Create one per session; reuse it for every write.
///
/// Its working state (the snappy encoder with its hash tables, and the block scratch) exists only
/// while the session sends: it is built by the first `compress` and dropped by
/// [`Compressor::release`], so an idle session holds none of it.
pub struct Compressor {
    work: Option<Box<Work>>,
    /// The stream identifier has been written.
    started: bool,
}

/// What a compressor needs while it compresses.
struct Work {
    encoder: Encoder,
    /// Holds one compressed block; grows to the worst case of the largest piece seen.
    scratch: Vec<u8>,
    /// A piece over 1 KiB went through: the encoder holds its 32 KiB hash table.
    big_table: bool,
}

/// Pieces longer than this make snappy's encoder allocate its large (32 KiB) hash table.
const SMALL_PIECE: usize = 1 << 10;
/// Bytes of that table.
const BIG_TABLE_BYTES: usize = 2 << 14;

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// A compressor that has written nothing yet.
    pub fn new() -> Self {
        Compressor {
            work: None,
            started: false,
        }
    }

    /// Heap bytes held: the working state, if any.
    pub fn heap_bytes(&self) -> usize {
        self.work.as_ref().map_or(0, |w| {
            std::mem::size_of::<Work>()
                + crate::proto::mem::vec_bytes(&w.scratch)
                + if w.big_table { BIG_TABLE_BYTES } else { 0 }
        })
    }

    /// Drops the working state (the session went quiet); the next `compress` rebuilds it.
    pub fn release(&mut self) {
        self.work = None;
    }

    /// One `CompStream.Write` + `Flush`: appends the framed bytes for `input` to `out`.
    ///
    /// The stream identifier precedes the first data chunk; empty input appends nothing. `input`
    /// is cut into pieces of at most 65536 bytes, each sent as a compressed chunk (0x00) if its
    /// snappy block is shorter than `len - len/8`, else as an uncompressed chunk (0x01), exactly as
    /// golang/snappy does.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if input.is_empty() {
            return;
        }
        if !self.started {
            out.extend_from_slice(&STREAM_IDENTIFIER);
            self.started = true;
        }
        let w = self.work.get_or_insert_with(|| {
            Box::new(Work {
                encoder: Encoder::new(),
                scratch: Vec::new(),
                big_table: false,
            })
        });
        let need = max_compress_len(input.len().min(MAX_BLOCK_SIZE));
        if w.scratch.len() < need {
            w.scratch.resize(need, 0);
        }
        w.big_table |= input.len() > SMALL_PIECE;
        for piece in input.chunks(MAX_BLOCK_SIZE) {
            let crc = masked_crc32c(piece).to_le_bytes();
            // Cannot fail for a piece <= 64 KiB and a scratch of max_compress_len(piece); should
            // it ever, the piece simply goes out uncompressed, which every reader accepts.
            let compressed = w.encoder.compress(piece, &mut w.scratch).ok();
            match compressed {
                Some(n) if n < piece.len() - piece.len() / 8 => {
                    push_header(out, TYPE_COMPRESSED, CHECKSUM_LEN + n);
                    out.extend_from_slice(&crc);
                    out.extend_from_slice(&w.scratch[..n]);
                }
                _ => {
                    push_header(out, TYPE_UNCOMPRESSED, CHECKSUM_LEN + piece.len());
                    out.extend_from_slice(&crc);
                    out.extend_from_slice(piece);
                }
            }
        }
    }
}

/// Why a framed stream was rejected. Go reports the first two as "snappy: corrupt input" and the
/// last two as "snappy: unsupported input"; `Display` keeps Go's wording and adds the detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressError {
    /// The first chunk is not the stream identifier, or a stream identifier is malformed.
    NotSnappyStream,
    /// Bad CRC, undecodable snappy block, data chunk shorter than its CRC, or a chunk decoding to
    /// more than 65536 bytes.
    Corrupt,
    /// Reserved unskippable chunk type 0x02–0x7F.
    ReservedChunkType(u8),
    /// Chunk length above [`MAX_CHUNK_LEN`].
    ChunkTooLong(usize),
}

impl fmt::Display for CompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressError::NotSnappyStream => {
                f.write_str("snappy: corrupt input (missing or malformed stream identifier)")
            }
            CompressError::Corrupt => f.write_str("snappy: corrupt input"),
            CompressError::ReservedChunkType(t) => {
                write!(
                    f,
                    "snappy: unsupported input (reserved chunk type {t:#04x})"
                )
            }
            CompressError::ChunkTooLong(n) => {
                write!(
                    f,
                    "snappy: unsupported input (chunk length {n} > {MAX_CHUNK_LEN})"
                )
            }
        }
    }
}

impl std::error::Error for CompressError {}

/// What the decompressor is in the middle of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Collecting a chunk header; `hdr[..hdr_len]` holds its first bytes.
    Header,
    /// Collecting the body of a data (0x00/0x01) or stream-identifier chunk of `len` bytes;
    /// `body` holds its first bytes when it straddles calls.
    Body { chunk_type: u8, len: usize },
    /// Discarding `remaining` bytes of a padding or skippable chunk.
    Skip { remaining: usize },
    /// The stream is dead.
    Failed(CompressError),
}

/// Receiver side of a snappy framed stream; feed it the session's byte stream in any pieces.
pub struct Decompressor {
    decoder: Decoder,
    state: State,
    hdr: [u8; CHUNK_HEADER_LEN],
    hdr_len: usize,
    /// Partial chunk body (only for chunks straddling calls); never longer than [`MAX_CHUNK_LEN`].
    body: Vec<u8>,
    /// A stream identifier chunk header has been seen.
    started: bool,
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

/// Outcome of delivering one complete chunk body.
enum Emit {
    Done,
    /// Its decoded bytes would exceed the room left under `max_out`.
    NoRoom,
}

impl Decompressor {
    /// A decompressor expecting the stream identifier first.
    pub fn new() -> Self {
        Decompressor {
            decoder: Decoder::new(),
            state: State::Header,
            hdr: [0; CHUNK_HEADER_LEN],
            hdr_len: 0,
            body: Vec::new(),
            started: false,
        }
    }

    /// Heap bytes held (the buffer of a chunk that straddles calls).
    pub fn heap_bytes(&self) -> usize {
        crate::proto::mem::vec_bytes(&self.body)
    }

    /// Gives back the buffer of straddling chunks if it holds nothing (the session went quiet).
    pub fn release(&mut self) {
        if self.body.is_empty() {
            self.body = Vec::new();
        }
    }

    /// Bytes held internally (partial header + partial chunk body); never more than
    /// `4 + MAX_CHUNK_LEN`.
    pub fn buffered(&self) -> usize {
        self.hdr_len + self.body.len()
    }

    /// Consumes a prefix of `input` (the next bytes of the framed stream) and appends the decoded
    /// bytes to `out`; returns how many bytes of `input` were consumed.
    ///
    /// Back-pressure: at most `max_out` bytes are appended by one call. Chunks are delivered
    /// whole, so decoding stops in front of the first chunk whose decoded bytes would not fit in
    /// what is left of `max_out`; the return value is then less than `input.len()` (or, if that
    /// chunk was already held internally, it stays held) and the caller resubmits the rest
    /// once it has drained `out`. A chunk decodes to at most [`MAX_BLOCK_SIZE`] bytes, so a call
    /// with `max_out >= MAX_BLOCK_SIZE` always makes progress; with `max_out == 0` only headers,
    /// stream identifiers and skippable chunks are consumed. A pending chunk held internally is
    /// delivered by a later call even with empty `input`.
    ///
    /// Errors are final: once one is returned, every later call returns it again. Data chunks
    /// before the bad one have been appended to `out`; nothing of the bad chunk is.
    pub fn decompress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<usize, CompressError> {
        let mut pos = 0;
        let base = out.len();
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Header => {
                    let take = (CHUNK_HEADER_LEN - self.hdr_len).min(input.len() - pos);
                    self.hdr[self.hdr_len..self.hdr_len + take]
                        .copy_from_slice(&input[pos..pos + take]);
                    self.hdr_len += take;
                    pos += take;
                    if self.hdr_len < CHUNK_HEADER_LEN {
                        return Ok(pos);
                    }
                    self.hdr_len = 0;
                    self.state = self.parse_header();
                }
                State::Skip { remaining } => {
                    let take = remaining.min(input.len() - pos);
                    pos += take;
                    if take < remaining {
                        self.state = State::Skip {
                            remaining: remaining - take,
                        };
                        return Ok(pos);
                    }
                    self.state = State::Header;
                }
                State::Body { chunk_type, len } => {
                    let avail = &input[pos..];
                    let room = max_out.saturating_sub(out.len() - base);
                    let emitted = if self.body.is_empty() && avail.len() >= len {
                        // Fast path: the whole body is in `input`; decode it from there.
                        match emit(&mut self.decoder, chunk_type, &avail[..len], out, room) {
                            Ok(Emit::Done) => {
                                pos += len;
                                Ok(Emit::Done)
                            }
                            other => other,
                        }
                    } else {
                        // `len` <= MAX_CHUNK_LEN (checked by parse_header).
                        if self.body.capacity() < len {
                            self.body.reserve_exact(len - self.body.len());
                        }
                        let take = (len - self.body.len()).min(avail.len());
                        self.body.extend_from_slice(&avail[..take]);
                        pos += take;
                        if self.body.len() < len {
                            return Ok(pos);
                        }
                        let r = emit(&mut self.decoder, chunk_type, &self.body, out, room);
                        if let Ok(Emit::Done) = r {
                            self.body.clear();
                        }
                        r
                    };
                    match emitted {
                        Ok(Emit::Done) => self.state = State::Header,
                        Ok(Emit::NoRoom) => return Ok(pos),
                        Err(e) => {
                            self.body = Vec::new();
                            self.state = State::Failed(e);
                        }
                    }
                }
            }
        }
    }

    /// Validates a complete chunk header and picks the next state.
    fn parse_header(&mut self) -> State {
        let chunk_type = self.hdr[0];
        let len = usize::from(self.hdr[1])
            | usize::from(self.hdr[2]) << 8
            | usize::from(self.hdr[3]) << 16;
        if !self.started {
            if chunk_type != TYPE_STREAM_IDENTIFIER {
                return State::Failed(CompressError::NotSnappyStream);
            }
            self.started = true;
        }
        if len > MAX_CHUNK_LEN {
            return State::Failed(CompressError::ChunkTooLong(len));
        }
        match chunk_type {
            TYPE_COMPRESSED | TYPE_UNCOMPRESSED if len < CHECKSUM_LEN => {
                State::Failed(CompressError::Corrupt)
            }
            TYPE_COMPRESSED | TYPE_UNCOMPRESSED => State::Body { chunk_type, len },
            TYPE_STREAM_IDENTIFIER if len != MAGIC_BODY.len() => {
                State::Failed(CompressError::NotSnappyStream)
            }
            TYPE_STREAM_IDENTIFIER => State::Body { chunk_type, len },
            0x02..=0x7f => State::Failed(CompressError::ReservedChunkType(chunk_type)),
            _ => State::Skip { remaining: len },
        }
    }
}

/// Verifies one complete chunk body and appends its decoded bytes to `out` if they fit in `room`.
fn emit(
    decoder: &mut Decoder,
    chunk_type: u8,
    body: &[u8],
    out: &mut Vec<u8>,
    room: usize,
) -> Result<Emit, CompressError> {
    if chunk_type == TYPE_STREAM_IDENTIFIER {
        return if body == MAGIC_BODY {
            Ok(Emit::Done)
        } else {
            Err(CompressError::NotSnappyStream)
        };
    }
    let (crc, data) = body.split_at(CHECKSUM_LEN);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let n = if chunk_type == TYPE_COMPRESSED {
        decompress_len(data).map_err(|_| CompressError::Corrupt)?
    } else {
        data.len()
    };
    if n > MAX_BLOCK_SIZE {
        return Err(CompressError::Corrupt);
    }
    if n > room {
        return Ok(Emit::NoRoom);
    }
    let start = out.len();
    if chunk_type == TYPE_COMPRESSED {
        out.resize(start + n, 0);
        let ok = matches!(decoder.decompress(data, &mut out[start..]), Ok(m) if m == n);
        if !ok || masked_crc32c(&out[start..]) != crc {
            out.truncate(start);
            return Err(CompressError::Corrupt);
        }
    } else {
        if masked_crc32c(data) != crc {
            return Err(CompressError::Corrupt);
        }
        out.extend_from_slice(data);
    }
    Ok(Emit::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A released compressor holds nothing, rebuilds on the next write, and the stream goes on:
    /// one stream identifier, every byte decodes.
    #[test]
    fn release_between_writes_keeps_one_valid_stream() {
        let mut c = Compressor::new();
        let mut framed = Vec::new();
        let a: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let b = b"after the quiet spell".repeat(100);
        c.compress(&a, &mut framed);
        assert!(c.heap_bytes() > 0);
        c.release();
        assert_eq!(c.heap_bytes(), 0);
        c.compress(&b, &mut framed);
        assert_eq!(
            framed
                .windows(STREAM_IDENTIFIER.len())
                .filter(|w| *w == STREAM_IDENTIFIER)
                .count(),
            1
        );
        let mut d = Decompressor::new();
        let mut out = Vec::new();
        assert_eq!(d.decompress(&framed, &mut out, 1 << 20), Ok(framed.len()));
        assert_eq!(out, [a, b].concat());
        d.release();
        assert_eq!(d.heap_bytes(), 0);
    }
}
