//! Triple DES (DES-EDE3, K1 = key[0:8], K2 = key[8:16], K3 = key[16:24]), encrypt direction only.
//!
//! Written from FIPS 46-3: the tables below are the standard's IP, E (implicit, see `round`), P,
//! PC-1, PC-2, shift schedule and S-boxes. At key setup nothing but the 48 subkeys is computed;
//! S-box and P are merged into eight 64-entry u32 "SP" tables at compile time, and IP/FP are
//! applied with nibble lookup tables, once per 3DES block (the FP/IP between the three DES stages
//! cancel). The `des` crate permutes bit by bit and is ~2.5x slower than Go; this is faster.

use cipher::consts::{U4, U8};
use cipher::inout::InOut;
use cipher::{
    Block, BlockBackend, BlockClosure, BlockEncrypt, BlockSizeUser, ParBlocks, ParBlocksSizeUser,
};

/// Bit positions are 1-based from the most significant bit, as in FIPS 46-3.
const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, //
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8, //
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, //
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, //
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, //
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, //
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, //
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, //
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, //
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, //
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

const SHIFTS: [u8; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// S-boxes as printed in the standard: 4 rows of 16 columns each.
const S: [[[u8; 16]; 4]; 8] = [
    [
        [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7],
        [0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8],
        [4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0],
        [15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
    ],
    [
        [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10],
        [3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5],
        [0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15],
        [13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
    ],
    [
        [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8],
        [13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1],
        [13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7],
        [1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
    ],
    [
        [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15],
        [13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9],
        [10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4],
        [3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
    ],
    [
        [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9],
        [14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6],
        [4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14],
        [11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
    ],
    [
        [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11],
        [10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8],
        [9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6],
        [4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
    ],
    [
        [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1],
        [13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6],
        [1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2],
        [6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
    ],
    [
        [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7],
        [1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2],
        [7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8],
        [2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
    ],
];

/// Applies a FIPS-style permutation: output bit j (1-based from the MSB of `out_bits`) is input
/// bit `table[j-1]` (1-based from the MSB of `in_bits`).
const fn permute(x: u64, table: &[u8], in_bits: u32, out_bits: u32) -> u64 {
    let mut out = 0u64;
    let mut j = 0;
    while j < table.len() {
        let bit = (x >> (in_bits - table[j] as u32)) & 1;
        out |= bit << (out_bits - 1 - j as u32);
        j += 1;
    }
    out
}

/// SP[i][x]: P applied to S-box i's output for the 6-bit input x (b1 = MSB), at its position.
const fn build_sp() -> [[u32; 64]; 8] {
    let mut sp = [[0u32; 64]; 8];
    let mut i = 0;
    while i < 8 {
        let mut x = 0;
        while x < 64 {
            let row = ((x >> 4) & 2) | (x & 1);
            let col = (x >> 1) & 15;
            let s = S[i][row][col] as u64;
            sp[i][x] = permute(s << (28 - 4 * i), &P, 32, 32) as u32;
            x += 1;
        }
        i += 1;
    }
    sp
}

const SP: [[u32; 64]; 8] = build_sp();

/// Inverse of IP.
const fn inverse(p: &[u8; 64]) -> [u8; 64] {
    let mut inv = [0u8; 64];
    let mut j = 0;
    while j < 64 {
        inv[p[j] as usize - 1] = j as u8 + 1;
        j += 1;
    }
    inv
}

const FP: [u8; 64] = inverse(&IP);

/// A 64-bit permutation as 16 nibble tables: out = OR_n T[n][nibble n of x].
const fn nibble_tables(p: &[u8; 64]) -> [[u64; 16]; 16] {
    let mut t = [[0u64; 16]; 16];
    let mut n = 0;
    while n < 16 {
        let mut v = 0;
        while v < 16 {
            t[n][v] = permute((v as u64) << (60 - 4 * n), p, 64, 64);
            v += 1;
        }
        n += 1;
    }
    t
}

const IP_T: [[u64; 16]; 16] = nibble_tables(&IP);
const FP_T: [[u64; 16]; 16] = nibble_tables(&FP);

#[inline(always)]
fn apply(t: &[[u64; 16]; 16], x: u64) -> u64 {
    let mut out = 0;
    for (n, tn) in t.iter().enumerate() {
        out |= tn[((x >> (60 - 4 * n)) & 15) as usize];
    }
    out
}

/// The 16 subkeys of one DES key, each as eight 6-bit chunks (chunk 0 = key bits 1..6).
fn subkeys(key: &[u8]) -> [[u8; 8]; 16] {
    let k = u64::from_be_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let cd = permute(k, &PC1, 64, 56);
    let (mut c, mut d) = ((cd >> 28) as u32, (cd & 0x0fff_ffff) as u32);
    let rot28 = |v: u32, s: u8| ((v << s) | (v >> (28 - s))) & 0x0fff_ffff;
    let mut out = [[0u8; 8]; 16];
    for (r, &s) in SHIFTS.iter().enumerate() {
        c = rot28(c, s);
        d = rot28(d, s);
        let k48 = permute(((c as u64) << 28) | d as u64, &PC2, 56, 48);
        for (i, chunk) in out[r].iter_mut().enumerate() {
            *chunk = ((k48 >> (42 - 6 * i)) & 0x3f) as u8;
        }
    }
    out
}

/// A round key packed for [`f`]: E's 6-bit group i is R rotated right by `27 - 4i` (mod 32), so
/// the even groups sit at the four byte positions of `R.rotate_right(3)` (0, 2, 4, 6 from the top
/// byte down) and the odd ones at those of `R.rotate_right(7)` (7, 1, 3, 5).
#[derive(Clone, Copy, Default)]
struct RoundKey {
    even: u32,
    odd: u32,
}

impl RoundKey {
    fn pack(c: &[u8; 8]) -> Self {
        let w = |a: u8, b: u8, x: u8, y: u8| u32::from_be_bytes([a, b, x, y]);
        RoundKey {
            even: w(c[0], c[2], c[4], c[6]),
            odd: w(c[7], c[1], c[3], c[5]),
        }
    }
}

/// f(R, K) = P(S(E(R) xor K)), with S and P merged into the SP tables.
#[inline(always)]
fn f(r: u32, k: RoundKey) -> u32 {
    let t = r.rotate_right(3) ^ k.even;
    let u = r.rotate_right(7) ^ k.odd;
    let b = |x: u32, sh: u32| ((x >> sh) & 0x3f) as usize;
    SP[0][b(t, 24)]
        ^ SP[2][b(t, 16)]
        ^ SP[4][b(t, 8)]
        ^ SP[6][b(t, 0)]
        ^ SP[7][b(u, 24)]
        ^ SP[1][b(u, 16)]
        ^ SP[3][b(u, 8)]
        ^ SP[5][b(u, 0)]
}

/// DES-EDE3: the 48 round keys in execution order (K1 forward, K2 reversed, K3 forward).
#[derive(Clone)]
pub struct TdesEde3 {
    k: [RoundKey; 48],
}

impl std::fmt::Debug for TdesEde3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TdesEde3 { .. }")
    }
}

impl TdesEde3 {
    pub fn new(key: &[u8; 24]) -> Self {
        let (k1, k2, k3) = (
            subkeys(&key[..8]),
            subkeys(&key[8..16]),
            subkeys(&key[16..]),
        );
        let order = k1.iter().chain(k2.iter().rev()).chain(k3.iter());
        let mut k = [RoundKey::default(); 48];
        for (dst, src) in k.iter_mut().zip(order) {
            *dst = RoundKey::pack(src);
        }
        TdesEde3 { k }
    }

    /// Encrypts `N` independent blocks with their rounds interleaved (instruction-level
    /// parallelism for CFB decryption; `N = 1` is the plain cipher).
    #[inline(always)]
    fn encrypt_lanes<const N: usize>(&self, blks: [&mut [u8]; N]) {
        let mut l = [0u32; N];
        let mut r = [0u32; N];
        for (i, b) in blks.iter().enumerate() {
            let x = apply(
                &IP_T,
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            );
            (l[i], r[i]) = ((x >> 32) as u32, x as u32);
        }
        for stage in self.k.chunks_exact(16) {
            for pair in stage.chunks_exact(2) {
                for i in 0..N {
                    l[i] ^= f(r[i], pair[0]);
                }
                for i in 0..N {
                    r[i] ^= f(l[i], pair[1]);
                }
            }
            core::mem::swap(&mut l, &mut r);
        }
        for (i, b) in blks.into_iter().enumerate() {
            b[..8]
                .copy_from_slice(&apply(&FP_T, ((l[i] as u64) << 32) | r[i] as u64).to_be_bytes());
        }
    }

    /// Encrypts one block.
    #[cfg(test)]
    pub fn encrypt(&self, blk: &mut [u8; 8]) {
        self.encrypt_lanes([&mut blk[..]]);
    }
}

struct Backend<'a>(&'a TdesEde3);

impl BlockSizeUser for Backend<'_> {
    type BlockSize = U8;
}

impl ParBlocksSizeUser for Backend<'_> {
    type ParBlocksSize = U4;
}

impl BlockBackend for Backend<'_> {
    #[inline(always)]
    fn proc_block(&mut self, mut block: InOut<'_, '_, Block<Self>>) {
        let mut b: [u8; 8] = (*block.get_in()).into();
        self.0.encrypt_lanes([&mut b[..]]);
        block.get_out().copy_from_slice(&b);
    }

    #[inline(always)]
    fn proc_par_blocks_inplace(&mut self, blocks: &mut ParBlocks<Self>) {
        let [a, b, c, d] = blocks.as_mut_slice() else {
            return;
        };
        self.0
            .encrypt_lanes([&mut a[..], &mut b[..], &mut c[..], &mut d[..]]);
    }

    #[inline(always)]
    fn proc_par_blocks(&mut self, mut blocks: InOut<'_, '_, ParBlocks<Self>>) {
        let mut tmp = blocks.clone_in();
        self.proc_par_blocks_inplace(&mut tmp);
        *blocks.get_out() = tmp;
    }
}

impl BlockSizeUser for TdesEde3 {
    type BlockSize = U8;
}

impl BlockEncrypt for TdesEde3 {
    #[inline]
    fn encrypt_with_backend(&self, f: impl BlockClosure<BlockSize = U8>) {
        f.call(&mut Backend(self));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cipher::KeyInit;

    #[test]
    fn matches_des_crate() {
        for seed in 0..16u32 {
            let key: [u8; 24] = core::array::from_fn(|i| (i as u32 * 89 + seed * 53 + 3) as u8);
            let ours = TdesEde3::new(&key);
            let theirs = des::TdesEde3::new(&key.into());
            for n in 0..16u32 {
                let plain: [u8; 8] =
                    core::array::from_fn(|i| (i as u32 * 41 + n * 67 + seed) as u8);
                let mut a = plain;
                ours.encrypt(&mut a);
                let mut b = Block::<des::TdesEde3>::from(plain);
                cipher::BlockEncrypt::encrypt_block(&theirs, &mut b);
                assert_eq!(a, b.as_slice(), "key seed {seed} block {n}");
            }
        }
    }

    #[test]
    fn parallel_path_matches_single() {
        let key: [u8; 24] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let c = TdesEde3::new(&key);
        let mut blocks: [Block<TdesEde3>; 9] = Default::default();
        for (i, b) in blocks.iter_mut().enumerate() {
            b.copy_from_slice(&(i as u64 * 0x0123_4567_89ab_cdef).to_be_bytes());
        }
        let mut par = blocks;
        cipher::BlockEncrypt::encrypt_blocks(&c, &mut par);
        for (p, b) in par.iter().zip(blocks) {
            let mut one: [u8; 8] = b.into();
            c.encrypt(&mut one);
            assert_eq!(p.as_slice(), one);
        }
    }

    #[test]
    fn single_des_known_answer() {
        // The classic worked example: key 133457799BBCDFF1, plaintext 0123456789ABCDEF
        // -> 85E813540F0AB405. With K1 = K2 = K3, EDE3 is single DES.
        let k = [0x13, 0x34, 0x57, 0x79, 0x9B, 0xBC, 0xDF, 0xF1];
        let mut key = [0u8; 24];
        for c in key.chunks_exact_mut(8) {
            c.copy_from_slice(&k);
        }
        let mut b = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
        TdesEde3::new(&key).encrypt(&mut b);
        assert_eq!(b, [0x85, 0xE8, 0x13, 0x54, 0x0F, 0x0A, 0xB4, 0x05]);
    }
}
