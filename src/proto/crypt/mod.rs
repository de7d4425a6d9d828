//! The crypto layer of every datagram (SPEC §1.2, §1.3, §2): every kcptun `--crypt` method, the
//! key derivation, and the nonce + CRC32 header, all working in place in caller-owned buffers.
//!
//! Call order: derive the 32-byte key once with [`derive_key`], build one [`Crypt`] per direction
//! with [`Crypt::new`] (all key schedules, `E(IV)` and the xor pad happen there), then per
//! datagram call [`Crypt::seal`] on a buffer laid out as `header_len` bytes of room, the payload
//! (FEC packet or KCP datagram) and `trailer_len` more bytes of room, or [`Crypt::open`] on a
//! received datagram, which returns the payload as a sub-slice. Nothing allocates per datagram.
//!
//! Invariants: `open` never panics, whatever the length or content of its input; it returns
//! [`OpenError::TooShort`] below `header_len + trailer_len` bytes and [`OpenError::Integrity`] when
//! the CRC (or the GCM tag) does not match. `null` has no header and detects nothing. Unknown
//! method names are an error ([`UnknownCipher`]); unlike Go kcptun we never fall back to `aes`.
//!
//! Implementations: AES (AES-NI when present), AES-GCM, Blowfish, CAST5 and Salsa20 come from the
//! RustCrypto crates; TEA/XTEA (kcptun's round counts), 3DES, Twofish and SM4 are written here
//! (table-driven; the crates' versions of the last three are 1.2x to 30x slower than Go's), each
//! checked against its crate and the Go vectors. Every block cipher runs in the `cfb` submodule's kcp-go CFB,
//! whose decryption encrypts several ciphertext blocks at once. Dispatch is one `match` per
//! datagram over concrete types.

mod cfb;
mod des;
mod lanes;
mod sm4;
mod tea;
mod twofish;

use std::fmt;
use std::str::FromStr;

use aes::{Aes128Enc, Aes192Enc, Aes256Enc};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::Aes128Gcm;
use cipher::{KeyInit, KeyIvInit, StreamCipher};
use sha1::Sha1;

use self::cfb::Cfb;
use self::des::TdesEde3;
use self::sm4::Sm4;
use self::tea::{Tea, Xtea};
use self::twofish::Twofish;
use super::rng::Rng;

pub use self::cfb::IV as CFB_IV;

/// Length of the xor method's pad: kcp-go's `mtuLimit`.
pub const XOR_PAD_LEN: usize = 1500;
/// Nonce (16) + CRC32 (4): the header of every method except aes-128-gcm and null.
pub const NONCE_CRC_LEN: usize = 20;
const NONCE_LEN: usize = 16;
const GCM_NONCE_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;

/// A `--crypt` method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Aes,
    Aes128,
    Aes192,
    Aes128Gcm,
    Salsa20,
    Blowfish,
    Twofish,
    Cast5,
    TripleDes,
    Tea,
    Xtea,
    Xor,
    Sm4,
    None,
    Null,
}

impl Method {
    /// Every method, in the order their names are listed to users.
    pub const ALL: [Method; 15] = [
        Method::Aes,
        Method::Aes128,
        Method::Aes192,
        Method::Aes128Gcm,
        Method::Salsa20,
        Method::Blowfish,
        Method::Twofish,
        Method::Cast5,
        Method::TripleDes,
        Method::Tea,
        Method::Xtea,
        Method::Xor,
        Method::Sm4,
        Method::None,
        Method::Null,
    ];

    /// The `--crypt` name Go kcptun uses.
    pub fn name(self) -> &'static str {
        match self {
            Method::Aes => "aes",
            Method::Aes128 => "aes-128",
            Method::Aes192 => "aes-192",
            Method::Aes128Gcm => "aes-128-gcm",
            Method::Salsa20 => "salsa20",
            Method::Blowfish => "blowfish",
            Method::Twofish => "twofish",
            Method::Cast5 => "cast5",
            Method::TripleDes => "3des",
            Method::Tea => "tea",
            Method::Xtea => "xtea",
            Method::Xor => "xor",
            Method::Sm4 => "sm4",
            Method::None => "none",
            Method::Null => "null",
        }
    }

    /// Bytes in front of the payload: nonce + CRC (20), the GCM nonce (12), or nothing (null).
    pub fn header_len(self) -> usize {
        match self {
            Method::Aes128Gcm => GCM_NONCE_LEN,
            Method::Null => 0,
            _ => NONCE_CRC_LEN,
        }
    }

    /// Bytes after the payload: the GCM tag (16), else nothing.
    pub fn trailer_len(self) -> usize {
        match self {
            Method::Aes128Gcm => GCM_TAG_LEN,
            _ => 0,
        }
    }

    /// `header_len() + trailer_len()`.
    pub fn overhead(self) -> usize {
        self.header_len() + self.trailer_len()
    }

    /// Whether the Debian 2021 kcptun knows this method (it silently uses `aes` for the others).
    pub fn in_2021(self) -> bool {
        !matches!(self, Method::Aes128Gcm | Method::Null)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--crypt` value that names no method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCipher {
    pub name: String,
}

impl fmt::Display for UnknownCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown cipher {:?} for --crypt; valid names are: ",
            self.name
        )?;
        for (i, m) in Method::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(m.name())?;
        }
        f.write_str(
            ". Use one of them, the same on client and server \
             (Go kcptun would silently use aes for an unknown name)",
        )
    }
}

impl std::error::Error for UnknownCipher {}

impl FromStr for Method {
    type Err = UnknownCipher;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .iter()
            .copied()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownCipher { name: s.to_owned() })
    }
}

/// Why [`Crypt::open`] rejected a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than the method's header plus trailer (Go drops these silently).
    TooShort,
    /// CRC32 or GCM tag mismatch: wrong key, wrong method, or corruption (`InCsumErrors`).
    Integrity,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::TooShort => "datagram shorter than the crypt header",
            OpenError::Integrity => "datagram failed the integrity check (wrong key or cipher?)",
        })
    }
}

impl std::error::Error for OpenError {}

/// kcptun's session key: PBKDF2-HMAC-SHA1(password, salt "kcp-go", 4096 iterations, 32 bytes).
pub fn derive_key(password: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha1>(password, b"kcp-go", 4096, &mut out);
    out
}

/// The xor method's pad: PBKDF2-HMAC-SHA1(pass, salt "sH3CIVoF#rWLtJo6", 32 iterations, 1500 bytes).
pub fn xor_pad(pass: &[u8; 32]) -> [u8; XOR_PAD_LEN] {
    let mut out = [0u8; XOR_PAD_LEN];
    pbkdf2::pbkdf2_hmac::<Sha1>(pass, b"sH3CIVoF#rWLtJo6", 32, &mut out);
    out
}

/// The keyed cipher state, one variant per concrete type (no dynamic dispatch per block).
#[derive(Clone)]
enum Inner {
    Aes256(Box<Cfb<Aes256Enc>>),
    Aes128(Box<Cfb<Aes128Enc>>),
    Aes192(Box<Cfb<Aes192Enc>>),
    Gcm(Box<Aes128Gcm>),
    Salsa20([u8; 32]),
    Blowfish(Box<Cfb<blowfish::Blowfish>>),
    Twofish(Box<Cfb<Twofish>>),
    Cast5(Box<Cfb<cast5::Cast5>>),
    TripleDes(Box<Cfb<TdesEde3>>),
    Tea(Cfb<Tea>),
    Xtea(Box<Cfb<Xtea>>),
    Xor(Box<[u8; XOR_PAD_LEN]>),
    Sm4(Box<Cfb<Sm4>>),
    None,
    Null,
}

/// One direction's crypto layer: seals or opens datagrams in place.
#[derive(Clone)]
pub struct Crypt {
    method: Method,
    inner: Inner,
}

impl fmt::Debug for Crypt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crypt")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

fn key16(pass: &[u8; 32]) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(&pass[..16]);
    k
}

impl Crypt {
    /// Keys `method` with the bytes of `pass` that Go kcptun gives it (SPEC §2.2).
    pub fn new(method: Method, pass: &[u8; 32]) -> Crypt {
        let k16 = key16(pass);
        let inner = match method {
            Method::Aes => Inner::Aes256(Box::new(Cfb::new(Aes256Enc::new(pass.into())))),
            Method::Aes128 => Inner::Aes128(Box::new(Cfb::new(Aes128Enc::new(&k16.into())))),
            Method::Aes192 => {
                let mut k = [0u8; 24];
                k.copy_from_slice(&pass[..24]);
                Inner::Aes192(Box::new(Cfb::new(Aes192Enc::new(&k.into()))))
            }
            Method::Aes128Gcm => Inner::Gcm(Box::new(Aes128Gcm::new(&k16.into()))),
            Method::Salsa20 => Inner::Salsa20(*pass),
            Method::Blowfish => Inner::Blowfish(Box::new(Cfb::new(
                // 32 bytes is within Blowfish's 4..=56 key range, so this cannot fail.
                blowfish::Blowfish::new_from_slice(pass).expect("32-byte blowfish key"),
            ))),
            Method::Twofish => Inner::Twofish(Box::new(Cfb::new(Twofish::new(pass)))),
            Method::Cast5 => Inner::Cast5(Box::new(Cfb::new(cast5::Cast5::new(&k16.into())))),
            Method::TripleDes => {
                let mut k = [0u8; 24];
                k.copy_from_slice(&pass[..24]);
                Inner::TripleDes(Box::new(Cfb::new(TdesEde3::new(&k))))
            }
            Method::Tea => Inner::Tea(Cfb::new(Tea::new(&k16))),
            Method::Xtea => Inner::Xtea(Box::new(Cfb::new(Xtea::new(&k16)))),
            Method::Xor => Inner::Xor(Box::new(xor_pad(pass))),
            Method::Sm4 => Inner::Sm4(Box::new(Cfb::new(Sm4::new(&k16)))),
            Method::None => Inner::None,
            Method::Null => Inner::Null,
        };
        Crypt { method, inner }
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// Heap bytes of the keyed cipher state.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of_val;
        match &self.inner {
            Inner::Aes256(b) => size_of_val(&**b),
            Inner::Aes128(b) => size_of_val(&**b),
            Inner::Aes192(b) => size_of_val(&**b),
            Inner::Gcm(b) => size_of_val(&**b),
            Inner::Blowfish(b) => size_of_val(&**b),
            Inner::Twofish(b) => size_of_val(&**b),
            Inner::Cast5(b) => size_of_val(&**b),
            Inner::TripleDes(b) => size_of_val(&**b),
            Inner::Xtea(b) => size_of_val(&**b),
            Inner::Xor(b) => size_of_val(&**b),
            Inner::Sm4(b) => size_of_val(&**b),
            Inner::Salsa20(_) | Inner::Tea(_) | Inner::None | Inner::Null => 0,
        }
    }

    pub fn header_len(&self) -> usize {
        self.method.header_len()
    }

    pub fn trailer_len(&self) -> usize {
        self.method.trailer_len()
    }

    /// Seals one datagram in place with a fresh nonce from `rng`.
    ///
    /// `buf[..header_len]` is room for the header, `buf[header_len..header_len + payload_len]` the
    /// payload, and `buf` has at least `trailer_len` bytes after it. Returns the datagram length
    /// `header_len + payload_len + trailer_len`.
    ///
    /// # Panics
    /// If `buf` is shorter than that length (a caller bug, never network input).
    pub fn seal(&mut self, rng: &mut Rng, buf: &mut [u8], payload_len: usize) -> usize {
        let mut nonce = [0u8; NONCE_LEN];
        match self.method {
            Method::Null => {}
            Method::Aes128Gcm => rng.fill(&mut nonce[..GCM_NONCE_LEN]),
            _ => rng.fill(&mut nonce),
        }
        self.seal_inner(&nonce, buf, payload_len)
    }

    /// [`Crypt::seal`] with a given nonce: 16 bytes for the nonce+CRC methods, 12 for
    /// aes-128-gcm, ignored for null. For test vectors and reproducible output.
    ///
    /// # Panics
    /// If the nonce is shorter than the method's nonce, or `buf` is too short (caller bugs).
    pub fn seal_with_nonce(&mut self, nonce: &[u8], buf: &mut [u8], payload_len: usize) -> usize {
        let mut n = [0u8; NONCE_LEN];
        match self.method {
            Method::Null => {}
            Method::Aes128Gcm => n[..GCM_NONCE_LEN].copy_from_slice(&nonce[..GCM_NONCE_LEN]),
            _ => n.copy_from_slice(&nonce[..NONCE_LEN]),
        }
        self.seal_inner(&n, buf, payload_len)
    }

    fn seal_inner(&mut self, nonce: &[u8; NONCE_LEN], buf: &mut [u8], payload_len: usize) -> usize {
        let hl = self.header_len();
        let total = hl + payload_len + self.trailer_len();
        assert!(
            buf.len() >= total,
            "seal: buffer of {} bytes cannot hold a {total}-byte datagram",
            buf.len()
        );
        let dgram = &mut buf[..total];
        match &self.inner {
            Inner::Null => return total,
            Inner::Gcm(gcm) => {
                dgram[..GCM_NONCE_LEN].copy_from_slice(&nonce[..GCM_NONCE_LEN]);
                let (head, rest) = dgram.split_at_mut(GCM_NONCE_LEN);
                let (body, tag_room) = rest.split_at_mut(payload_len);
                let tag = gcm
                    .encrypt_in_place_detached((&*head).into(), b"", body)
                    // Only fails above 64 GiB of plaintext, impossible for a datagram.
                    .expect("GCM seal of a datagram");
                tag_room.copy_from_slice(&tag);
                return total;
            }
            _ => {}
        }
        dgram[..NONCE_LEN].copy_from_slice(nonce);
        let crc = crc32fast::hash(&dgram[NONCE_CRC_LEN..]);
        dgram[NONCE_LEN..NONCE_CRC_LEN].copy_from_slice(&crc.to_le_bytes());
        match &self.inner {
            Inner::Aes256(c) => c.encrypt(dgram),
            Inner::Aes128(c) => c.encrypt(dgram),
            Inner::Aes192(c) => c.encrypt(dgram),
            Inner::Blowfish(c) => c.encrypt(dgram),
            Inner::Twofish(c) => c.encrypt(dgram),
            Inner::Cast5(c) => c.encrypt(dgram),
            Inner::TripleDes(c) => c.encrypt(dgram),
            Inner::Tea(c) => c.encrypt(dgram),
            Inner::Xtea(c) => c.encrypt(dgram),
            Inner::Sm4(c) => c.encrypt(dgram),
            Inner::Salsa20(key) => salsa20_apply(key, dgram),
            Inner::Xor(pad) => xor_apply(pad, dgram),
            Inner::None | Inner::Null | Inner::Gcm(_) => {}
        }
        total
    }

    /// Decrypts and verifies one received datagram in place; returns its payload (the FEC packet
    /// or KCP datagram) as a sub-slice of `dgram`. Never panics, for any input.
    pub fn open<'a>(&mut self, dgram: &'a mut [u8]) -> Result<&'a mut [u8], OpenError> {
        let len = dgram.len();
        if len < self.method.overhead() {
            return Err(OpenError::TooShort);
        }
        match &self.inner {
            Inner::Null => return Ok(dgram),
            Inner::Gcm(gcm) => {
                let (head, rest) = dgram.split_at_mut(GCM_NONCE_LEN);
                let (body, tag) = rest.split_at_mut(len - GCM_NONCE_LEN - GCM_TAG_LEN);
                gcm.decrypt_in_place_detached((&*head).into(), b"", body, (&*tag).into())
                    .map_err(|_| OpenError::Integrity)?;
                return Ok(body);
            }
            Inner::Aes256(c) => c.decrypt(dgram),
            Inner::Aes128(c) => c.decrypt(dgram),
            Inner::Aes192(c) => c.decrypt(dgram),
            Inner::Blowfish(c) => c.decrypt(dgram),
            Inner::Twofish(c) => c.decrypt(dgram),
            Inner::Cast5(c) => c.decrypt(dgram),
            Inner::TripleDes(c) => c.decrypt(dgram),
            Inner::Tea(c) => c.decrypt(dgram),
            Inner::Xtea(c) => c.decrypt(dgram),
            Inner::Sm4(c) => c.decrypt(dgram),
            Inner::Salsa20(key) => salsa20_apply(key, dgram),
            Inner::Xor(pad) => xor_apply(pad, dgram),
            Inner::None => {}
        }
        let (head, payload) = dgram.split_at_mut(NONCE_CRC_LEN);
        let want = u32::from_le_bytes([head[16], head[17], head[18], head[19]]);
        if crc32fast::hash(payload) != want {
            return Err(OpenError::Integrity);
        }
        Ok(payload)
    }
}

impl Crypt {
    /// Benchmark hook: runs the bare cipher over all of `buf` (no nonce, no CRC), encrypting if
    /// `enc`, then decrypting if `dec`; both is the work kcp-go's `benchCrypt` measures per op.
    /// Not part of the protocol API.
    #[doc(hidden)]
    pub fn bench_cipher(&mut self, buf: &mut [u8], enc: bool, dec: bool) {
        macro_rules! both {
            ($c:expr) => {{
                if enc {
                    $c.encrypt(buf);
                }
                if dec {
                    $c.decrypt(buf);
                }
            }};
        }
        match &self.inner {
            Inner::Aes256(c) => both!(c),
            Inner::Aes128(c) => both!(c),
            Inner::Aes192(c) => both!(c),
            Inner::Blowfish(c) => both!(c),
            Inner::Twofish(c) => both!(c),
            Inner::Cast5(c) => both!(c),
            Inner::TripleDes(c) => both!(c),
            Inner::Tea(c) => both!(c),
            Inner::Xtea(c) => both!(c),
            Inner::Sm4(c) => both!(c),
            Inner::Salsa20(key) if buf.len() >= 8 => {
                for _ in 0..(enc as u8 + dec as u8) {
                    salsa20_apply(key, buf);
                }
            }
            Inner::Xor(pad) => {
                for _ in 0..(enc as u8 + dec as u8) {
                    xor_apply(pad, buf);
                }
            }
            Inner::Gcm(gcm) if buf.len() >= GCM_NONCE_LEN + GCM_TAG_LEN => {
                let (head, rest) = buf.split_at_mut(GCM_NONCE_LEN);
                let body_len = rest.len() - GCM_TAG_LEN;
                let (body, tag_room) = rest.split_at_mut(body_len);
                if enc {
                    if let Ok(tag) = gcm.encrypt_in_place_detached((&*head).into(), b"", body) {
                        tag_room.copy_from_slice(&tag);
                    }
                }
                if dec {
                    let tag = aes_gcm::Tag::clone_from_slice(tag_room);
                    let _ = gcm.decrypt_in_place_detached((&*head).into(), b"", body, &tag);
                }
            }
            _ => {}
        }
    }
}

/// Salsa20/20 keyed with `pass`, nonce `dgram[0..8]`, keystream over `dgram[8..]`.
/// The caller guarantees `dgram.len() >= 20`.
fn salsa20_apply(key: &[u8; 32], dgram: &mut [u8]) {
    let (nonce, rest) = dgram.split_at_mut(8);
    let mut c = salsa20::Salsa20::new(key.into(), (&*nonce).into());
    c.apply_keystream(rest);
}

/// XOR with the pad. Go's `xorBytes` stops at the shorter operand, so bytes past 1500 (which no
/// kcptun sends, and which Go's 1500-byte receive buffer would cut off) stay as they are.
fn xor_apply(pad: &[u8; XOR_PAD_LEN], dgram: &mut [u8]) {
    for (d, p) in dgram.iter_mut().zip(pad.iter()) {
        *d ^= *p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass() -> [u8; 32] {
        derive_key(b"it's a secrect")
    }

    #[test]
    fn names_round_trip_and_unknown_lists_all() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        let e = "aes256".parse::<Method>().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("\"aes256\""), "{msg}");
        for m in Method::ALL {
            assert!(msg.contains(m.name()), "{msg} lacks {}", m.name());
        }
        assert!("AES".parse::<Method>().is_err());
        assert!("".parse::<Method>().is_err());
    }

    #[test]
    fn header_trailer_table() {
        for m in Method::ALL {
            let (h, t) = match m {
                Method::Aes128Gcm => (12, 16),
                Method::Null => (0, 0),
                _ => (20, 0),
            };
            assert_eq!((m.header_len(), m.trailer_len()), (h, t), "{m}");
            assert_eq!(m.in_2021(), !matches!(m, Method::Aes128Gcm | Method::Null));
        }
    }

    #[test]
    fn too_short_on_every_short_length() {
        let p = pass();
        for m in Method::ALL {
            let mut c = Crypt::new(m, &p);
            for n in 0..m.overhead() {
                let mut buf = vec![0xa5u8; n];
                assert_eq!(c.open(&mut buf), Err(OpenError::TooShort), "{m} len {n}");
            }
        }
    }

    #[test]
    fn empty_payload_round_trips() {
        let p = pass();
        let mut rng = Rng::from_seed([3; 32]);
        for m in Method::ALL {
            let mut c = Crypt::new(m, &p);
            let mut buf = [0u8; 64];
            let n = c.seal(&mut rng, &mut buf, 0);
            assert_eq!(n, m.overhead());
            assert_eq!(c.open(&mut buf[..n]).map(|p| p.len()), Ok(0), "{m}");
        }
    }

    #[test]
    fn open_never_panics_on_any_length() {
        let p = pass();
        let mut rng = Rng::from_seed([9; 32]);
        let mut buf = vec![0u8; 65535];
        for m in Method::ALL {
            let mut c = Crypt::new(m, &p);
            for len in (0..200).chain([1499, 1500, 1501, 4096, 65535]) {
                rng.fill(&mut buf[..len]);
                let r = c.open(&mut buf[..len]);
                if m == Method::Null {
                    assert!(r.is_ok());
                } else if len < m.overhead() {
                    assert_eq!(r, Err(OpenError::TooShort));
                }
            }
        }
    }

    #[test]
    fn xor_beyond_pad_round_trips_and_never_panics() {
        let p = pass();
        let mut rng = Rng::from_seed([4; 32]);
        let mut c = Crypt::new(Method::Xor, &p);
        let mut buf = vec![0u8; 2000];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = i as u8;
        }
        let plain = buf.clone();
        let n = c.seal(&mut rng, &mut buf, 1980);
        assert_eq!(n, 2000);
        assert_eq!(c.open(&mut buf).unwrap(), &plain[20..]);
    }

    /// SPEC §2.3 written out block by block with `encrypt_block`, for both directions.
    fn cfb_reference<C: cipher::BlockEncrypt>(c: &C, buf: &mut [u8], decrypt: bool) {
        use cipher::typenum::Unsigned;
        let bs = C::BlockSize::USIZE;
        let mut s = cipher::Block::<C>::clone_from_slice(&CFB_IV[..bs]);
        c.encrypt_block(&mut s);
        for chunk in buf.chunks_mut(bs) {
            let ct: Vec<u8> = if decrypt { chunk.to_vec() } else { Vec::new() };
            for (x, k) in chunk.iter_mut().zip(s.iter()) {
                *x ^= *k;
            }
            if chunk.len() == bs {
                s.copy_from_slice(if decrypt { &ct } else { chunk });
                c.encrypt_block(&mut s);
            }
        }
    }

    fn check_cfb<C: cipher::BlockEncrypt + Clone>(name: &str, c: C) {
        let cfb = Cfb::new(c.clone());
        for len in 0..300usize {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut want = plain.clone();
            cfb_reference(&c, &mut want, false);
            let mut got = plain.clone();
            cfb.encrypt(&mut got);
            assert_eq!(got, want, "{name} encrypt len {len}");
            cfb_reference(&c, &mut want, true);
            assert_eq!(want, plain, "{name} reference decrypt len {len}");
            cfb.decrypt(&mut got);
            assert_eq!(got, plain, "{name} decrypt len {len}");
        }
    }

    #[test]
    fn cfb_matches_sequential_definition_every_length() {
        // The parallel decryption paths (8 blocks for AES-NI, 4 for TEA/XTEA/3DES/Twofish/SM4,
        // 1 for the crate ciphers) must agree with the plain SPEC loop at every length, including
        // lengths ending inside and exactly at group boundaries.
        let p = pass();
        let k16 = key16(&p);
        let mut k24 = [0u8; 24];
        k24.copy_from_slice(&p[..24]);
        check_cfb("aes", Aes256Enc::new((&p).into()));
        check_cfb("aes-128", Aes128Enc::new((&k16).into()));
        check_cfb("tea", Tea::new(&k16));
        check_cfb("xtea", Xtea::new(&k16));
        check_cfb("3des", TdesEde3::new(&k24));
        check_cfb("twofish", Twofish::new(&p));
        check_cfb("sm4", Sm4::new(&k16));
        check_cfb("cast5", cast5::Cast5::new((&k16).into()));
        check_cfb(
            "blowfish",
            <blowfish::Blowfish>::new_from_slice(&p).unwrap(),
        );
    }
}
