//! Quantum Permutation Pads (SPEC §7.9; xtaci/qpp v1.1.25 as kcptun `--QPP` uses it).
//!
//! [`Qpp`] holds `count` byte permutations ("pads") and their inverses, derived once from the
//! seed (the raw `--key` bytes); build it once per process and share it (`Arc`). Each direction of
//! each smux stream owns a [`QppPrng`], created fresh from the same seed, so a writer's PRNG and
//! the matching reader's PRNG start identical. The PRNG is xoshiro256**: every 64-bit output word
//! `r` covers 8 stream bytes; it selects the pad `(r mod 2^16) mod count` and byte `k` of the word
//! (`r >> 8k`) is XORed in, before the pad on encryption and after the inverse pad on decryption.
//!
//! Invariants: the ciphertext depends only on a byte's position in the stream, never on how the
//! stream is cut into calls; [`Qpp::encrypt`]/[`Qpp::decrypt`] work in place, eight bytes per
//! PRNG word, and never allocate. Call order: `Qpp::new` once; per stream direction
//! `QppPrng::new(seed)`, then `encrypt` (or `decrypt`) on each successive piece of that direction.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes256;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Number of 32-byte seed chunks: ceil(211 / 32), 211 bytes = the entropy of 256!.
pub const CHUNK_COUNT: usize = 7;
/// `QPPMinimumSeedLength(8)`: a key shorter than this draws a startup warning.
pub const MIN_SEED_LEN: usize = 211;
/// `QPPMinimumPads(8)`: fewer pads draw a startup warning.
pub const MIN_PADS: u16 = 7;

const SEED_DERIVE_SALT: &[u8] = b"___QUANTUM_PERMUTATION_PAD_SEED_DERIVE___";
const SHUFFLE_SALT: &[u8] = b"___QUANTUM_PERMUTATION_PAD_SHUFFLE_SALT___";
const PRNG_SALT: &[u8] = b"___QUANTUM_PERMUTATION_PAD_PRNG_SALT___";
const PRNG_SELECTOR: &[u8] = b"PERMUTATION_MATRIX_SELECTOR";
const SEED_EXPAND_ROUNDS: u32 = 128;
const CHUNK_DERIVE_ROUNDS: u32 = 1024;
const SHUFFLE_KEY_ROUNDS: u32 = 128;
const PRNG_ROUNDS: u32 = 128;

fn pbkdf2_sha1_32(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, rounds, &mut out);
    out
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The seven derived 32-byte seed chunks (`seedToChunks(seed, 8)`): a seed shorter than 32 bytes
/// is first stretched to 32 with PBKDF2; chunk `i` takes 32 bytes cyclically from offset `32 i`
/// and is then passed through PBKDF2-SHA1 (1024 rounds).
pub fn seed_chunks(seed: &[u8]) -> [[u8; 32]; CHUNK_COUNT] {
    let expanded;
    let seed = if seed.len() < 32 {
        expanded = pbkdf2_sha1_32(seed, SEED_DERIVE_SALT, SEED_EXPAND_ROUNDS);
        &expanded[..]
    } else {
        seed
    };
    let mut chunks = [[0u8; 32]; CHUNK_COUNT];
    for (i, chunk) in chunks.iter_mut().enumerate() {
        let mut raw = [0u8; 32];
        for (j, b) in raw.iter_mut().enumerate() {
            *b = seed[(32 * i + j) % seed.len()];
        }
        *chunk = pbkdf2_sha1_32(&raw, SEED_DERIVE_SALT, CHUNK_DERIVE_ROUNDS);
    }
    chunks
}

/// `s` read as a 256-bit big-endian integer, modulo `m` (m >= 1).
fn be256_mod(s: &[u8; 32], m: u64) -> u64 {
    let m = u128::from(m);
    let mut rem: u128 = 0;
    for limb in s.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(limb);
        rem = ((rem << 64) | u128::from(u64::from_be_bytes(w))) % m;
    }
    rem as u64
}

/// The pads and inverse pads. Immutable once built; share it between streams.
pub struct Qpp {
    pads: Box<[[u8; 256]]>,
    rpads: Box<[[u8; 256]]>,
    count: u16,
}

impl std::fmt::Debug for Qpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qpp")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl Qpp {
    /// Derives `count` pads from `seed` (SPEC §7.9). `count` must be at least 1 (the caller
    /// rejects 0 as Go does; here it is treated as 1 rather than dividing by zero).
    /// Costs about 3,600 AES block encryptions per pad plus ~8,000 PBKDF2 rounds, once.
    pub fn new(seed: &[u8], count: u16) -> Self {
        debug_assert!(count >= 1, "QPP needs at least one pad");
        let count = count.max(1);
        let chunks = seed_chunks(seed);
        let ciphers: Vec<Aes256> = chunks
            .iter()
            .map(|c| {
                let key = pbkdf2_sha1_32(c, SHUFFLE_SALT, SHUFFLE_KEY_ROUNDS);
                Aes256::new(GenericArray::from_slice(&key))
            })
            .collect();

        let mut pads = vec![[0u8; 256]; usize::from(count)].into_boxed_slice();
        let mut rpads = vec![[0u8; 256]; usize::from(count)].into_boxed_slice();
        for (p, (pad, rpad)) in pads.iter_mut().zip(rpads.iter_mut()).enumerate() {
            for (v, slot) in pad.iter_mut().enumerate() {
                *slot = v as u8;
            }
            let msg = format!("QPP_{p:b}");
            let mut s = hmac_sha256(&chunks[p % CHUNK_COUNT], msg.as_bytes());
            for i in (1..256usize).rev() {
                for aes in &ciphers {
                    let (lo, hi) = s.split_at_mut(16);
                    aes.encrypt_block(GenericArray::from_mut_slice(lo));
                    aes.encrypt_block(GenericArray::from_mut_slice(hi));
                }
                let j = be256_mod(&s, i as u64 + 1) as usize;
                pad.swap(i, j);
            }
            for (v, &x) in pad.iter().enumerate() {
                rpad[usize::from(x)] = v as u8;
            }
        }
        Qpp { pads, rpads, count }
    }

    /// Number of pads.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Pad `i` (a permutation of 0..=255). Panics if `i >= count`.
    pub fn pad(&self, i: usize) -> &[u8; 256] {
        &self.pads[i]
    }

    /// Inverse of pad `i`. Panics if `i >= count`.
    pub fn inverse_pad(&self, i: usize) -> &[u8; 256] {
        &self.rpads[i]
    }

    /// Encrypts the next `data.len()` bytes of the stream in place, advancing `prng`.
    pub fn encrypt(&self, prng: &mut QppPrng, data: &mut [u8]) {
        self.apply::<true>(prng, data);
    }

    /// Decrypts the next `data.len()` bytes of the stream in place, advancing `prng`.
    pub fn decrypt(&self, prng: &mut QppPrng, data: &mut [u8]) {
        self.apply::<false>(prng, data);
    }

    /// The table for the word `r`.
    #[inline(always)]
    fn table<const ENC: bool>(&self, r: u64) -> &[u8; 256] {
        let i = usize::from(r as u16 % self.count);
        if ENC {
            &self.pads[i]
        } else {
            &self.rpads[i]
        }
    }

    #[inline(always)]
    fn map<const ENC: bool>(table: &[u8; 256], b: u8, k: u8) -> u8 {
        if ENC {
            table[usize::from(b ^ k)]
        } else {
            table[usize::from(b)] ^ k
        }
    }

    fn apply<const ENC: bool>(&self, prng: &mut QppPrng, data: &mut [u8]) {
        let mut rest = data;
        // Finish the current word.
        if prng.count != 0 {
            let table = self.table::<ENC>(prng.r);
            let n = (8 - usize::from(prng.count)).min(rest.len());
            let (head, tail) = rest.split_at_mut(n);
            for b in head {
                *b = Self::map::<ENC>(table, *b, (prng.r >> (8 * prng.count)) as u8);
                prng.count += 1;
            }
            if prng.count < 8 {
                return;
            }
            prng.advance();
            rest = tail;
        }
        // Whole words: one pad and one 8-byte key stream per PRNG output.
        let mut words = rest.chunks_exact_mut(8);
        for word in &mut words {
            let table = self.table::<ENC>(prng.r);
            let key = prng.r.to_le_bytes();
            for (d, &k) in word.iter_mut().zip(key.iter()) {
                *d = Self::map::<ENC>(table, *d, k);
            }
            prng.advance();
        }
        // Start a new word with the remainder.
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let table = self.table::<ENC>(prng.r);
            for b in tail {
                *b = Self::map::<ENC>(table, *b, (prng.r >> (8 * prng.count)) as u8);
                prng.count += 1;
            }
        }
    }
}

/// Per stream-direction PRNG: xoshiro256** state, the current output word and how many of its
/// eight bytes are used (0..=7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QppPrng {
    s: [u64; 4],
    r: u64,
    count: u8,
}

impl QppPrng {
    /// `CreatePRNG(seed)`: state from PBKDF2(HMAC-SHA256(seed, selector)); the first output word
    /// is drawn at once.
    pub fn new(seed: &[u8]) -> Self {
        let m = hmac_sha256(seed, PRNG_SELECTOR);
        let x = pbkdf2_sha1_32(&m, PRNG_SALT, PRNG_ROUNDS);
        let mut s = [0u64; 4];
        for (v, b) in s.iter_mut().zip(x.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            *v = u64::from_le_bytes(w);
        }
        let mut prng = QppPrng { s, r: 0, count: 0 };
        prng.advance();
        prng
    }

    /// `(xoshiro state s0..s3, current word, bytes of it used)`.
    pub fn state(&self) -> ([u64; 4], u64, u8) {
        (self.s, self.r, self.count)
    }

    /// Draws the next word (xoshiro256**) and restarts the byte count.
    #[inline(always)]
    fn advance(&mut self) {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        self.r = result;
        self.count = 0;
    }
}

/// Startup warnings exactly as Go kcptun prints them for `--QPP` (not fatal): key shorter than
/// 211 bytes, fewer than 7 pads, pad count not coprime to 8. (`count == 0` is fatal and is the
/// caller's check.)
pub fn warnings(seed: &[u8], count: u16) -> Vec<String> {
    let mut w = Vec::new();
    if seed.len() < MIN_SEED_LEN {
        w.push(format!(
            "QPP Warning: 'key' has size of {} bytes, required {} bytes at least",
            seed.len(),
            MIN_SEED_LEN
        ));
    }
    if count < MIN_PADS {
        w.push(format!(
            "QPP Warning: QPPCount {count}, required {MIN_PADS} at least"
        ));
    }
    // gcd(count, 8) != 1 exactly when count is even (0 included).
    if count % 2 == 0 {
        w.push(format!(
            "QPP Warning: QPPCount {count}, choose a prime number for security"
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn be256_mod_matches_bytewise() {
        let mut s = [0u8; 32];
        for (i, b) in s.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(97).wrapping_add(13);
        }
        for m in 1..=256u64 {
            let slow = s.iter().fold(0u64, |r, &b| (r * 256 + u64::from(b)) % m);
            assert_eq!(be256_mod(&s, m), slow, "m={m}");
        }
        assert_eq!(be256_mod(&[0xff; 32], 1), 0);
    }

    #[test]
    fn xoshiro_reference_sequence() {
        // xoshiro256** from state 1,2,3,4: 11520, 0, 1509978240, 1215971899390074240 (reference C).
        let mut p = QppPrng {
            s: [1, 2, 3, 4],
            r: 0,
            count: 0,
        };
        let mut got = Vec::new();
        for _ in 0..4 {
            p.advance();
            got.push(p.r);
        }
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn warnings_text() {
        assert!(warnings(&[0; 211], 61).is_empty());
        assert_eq!(
            warnings(b"it's a secrect", 61),
            ["QPP Warning: 'key' has size of 14 bytes, required 211 bytes at least"]
        );
        assert_eq!(
            warnings(&[0; 300], 6),
            [
                "QPP Warning: QPPCount 6, required 7 at least",
                "QPP Warning: QPPCount 6, choose a prime number for security"
            ]
        );
        assert_eq!(
            warnings(&[0; 300], 64),
            ["QPP Warning: QPPCount 64, choose a prime number for security"]
        );
        assert_eq!(
            warnings(&[0; 300], 1),
            ["QPP Warning: QPPCount 1, required 7 at least"]
        );
    }

    #[test]
    fn pads_are_permutations_with_inverses() {
        let q = Qpp::new(b"unit", 3);
        for i in 0..3 {
            let mut seen = [false; 256];
            for &x in q.pad(i) {
                seen[usize::from(x)] = true;
            }
            assert!(seen.iter().all(|&b| b));
            for v in 0..256 {
                assert_eq!(usize::from(q.inverse_pad(i)[usize::from(q.pad(i)[v])]), v);
            }
        }
    }
}
