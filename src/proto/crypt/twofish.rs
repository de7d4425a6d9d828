//! Twofish-256, encrypt direction only, with full key-dependent S-box tables.
//!
//! Written from the Twofish specification (Schneier et al., 1998): the fixed permutations q0/q1
//! built from their 4-bit t-tables, the MDS matrix over GF(2^8)/0x169, the RS matrix over
//! GF(2^8)/0x14D, the h function, 40 subkeys and 16 Feistel rounds. The g function is folded
//! into four 256-entry u32 tables at key setup (`S-box ∘ MDS column`), so a round costs eight
//! table loads; the `twofish` crate recomputes the S-boxes per byte and is ~30x slower. Only
//! 256-bit keys are needed (kcptun passes all 32 bytes of the derived key). Verified against the
//! crate and the Go vectors in the tests.

use cipher::consts::{U16, U4};
use cipher::inout::InOut;
use cipher::{
    Block, BlockBackend, BlockClosure, BlockEncrypt, BlockSizeUser, ParBlocks, ParBlocksSizeUser,
};

/// t-tables of q0 and q1 (the spec's t0..t3 for each permutation).
const T: [[[u8; 16]; 4]; 2] = [
    [
        [8, 1, 7, 13, 6, 15, 3, 2, 0, 11, 5, 9, 14, 12, 10, 4],
        [14, 12, 11, 8, 1, 2, 3, 5, 15, 4, 10, 6, 7, 0, 9, 13],
        [11, 10, 5, 14, 6, 13, 9, 0, 12, 8, 15, 3, 2, 4, 7, 1],
        [13, 7, 15, 4, 1, 2, 6, 14, 9, 11, 3, 0, 8, 5, 12, 10],
    ],
    [
        [2, 8, 11, 13, 15, 7, 6, 14, 3, 1, 9, 4, 0, 10, 12, 5],
        [1, 14, 2, 11, 4, 12, 3, 7, 6, 13, 10, 5, 15, 9, 0, 8],
        [4, 12, 7, 5, 1, 6, 9, 10, 0, 14, 13, 8, 2, 11, 3, 15],
        [11, 9, 5, 1, 12, 3, 13, 14, 6, 4, 7, 15, 2, 0, 8, 10],
    ],
];

const fn ror4(x: u8) -> u8 {
    ((x >> 1) | (x << 3)) & 15
}

const fn build_q(t: &[[u8; 16]; 4]) -> [u8; 256] {
    let mut q = [0u8; 256];
    let mut x = 0;
    while x < 256 {
        let (a0, b0) = ((x >> 4) as u8, (x & 15) as u8);
        let a1 = a0 ^ b0;
        let b1 = (a0 ^ ror4(b0) ^ (a0 << 3)) & 15;
        let (a2, b2) = (t[0][a1 as usize], t[1][b1 as usize]);
        let a3 = a2 ^ b2;
        let b3 = (a2 ^ ror4(b2) ^ (a2 << 3)) & 15;
        let (a4, b4) = (t[2][a3 as usize], t[3][b3 as usize]);
        q[x] = (b4 << 4) | a4;
        x += 1;
    }
    q
}

const Q0: [u8; 256] = build_q(&T[0]);
const Q1: [u8; 256] = build_q(&T[1]);

/// MDS matrix, rows; z_i = sum_j MDS[i][j] * y_j over GF(2^8) mod 0x169.
const MDS: [[u8; 4]; 4] = [
    [0x01, 0xEF, 0x5B, 0x5B],
    [0x5B, 0xEF, 0xEF, 0x01],
    [0xEF, 0x5B, 0x01, 0xEF],
    [0xEF, 0x01, 0xEF, 0x5B],
];

/// RS matrix over GF(2^8) mod 0x14D, for the S-box key words.
const RS: [[u8; 8]; 4] = [
    [0x01, 0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E],
    [0xA4, 0x56, 0x82, 0xF3, 0x1E, 0xC6, 0x68, 0xE5],
    [0x02, 0xA1, 0xFC, 0xC1, 0x47, 0xAE, 0x3D, 0x19],
    [0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E, 0x03],
];

fn gf_mul(mut a: u8, mut b: u8, poly: u16) -> u8 {
    let mut r = 0u8;
    while a != 0 {
        if a & 1 != 0 {
            r ^= b;
        }
        a >>= 1;
        let carry = b & 0x80 != 0;
        b <<= 1;
        if carry {
            b ^= (poly & 0xff) as u8;
        }
    }
    r
}

/// Column `j` of the MDS product for input byte `y` at position `j`.
fn mds_col(j: usize, y: u8) -> u32 {
    let mut z = 0u32;
    for (i, row) in MDS.iter().enumerate() {
        z |= (gf_mul(row[j], y, 0x169) as u32) << (8 * i);
    }
    z
}

/// The S-box chain of h for byte position `j` with key list `l` (k = 4): L3 applied first.
fn sbox(j: usize, x: u8, l: &[[u8; 4]; 4]) -> u8 {
    let (q0, q1) = (&Q0, &Q1);
    let q = |t: &[u8; 256], v: u8| t[v as usize];
    match j {
        0 => q(
            q1,
            q(q0, q(q0, q(q1, q(q1, x) ^ l[3][0]) ^ l[2][0]) ^ l[1][0]) ^ l[0][0],
        ),
        1 => q(
            q0,
            q(q0, q(q1, q(q1, q(q0, x) ^ l[3][1]) ^ l[2][1]) ^ l[1][1]) ^ l[0][1],
        ),
        2 => q(
            q1,
            q(q1, q(q0, q(q0, q(q0, x) ^ l[3][2]) ^ l[2][2]) ^ l[1][2]) ^ l[0][2],
        ),
        _ => q(
            q0,
            q(q1, q(q1, q(q0, q(q1, x) ^ l[3][3]) ^ l[2][3]) ^ l[1][3]) ^ l[0][3],
        ),
    }
}

fn h(x: u32, l: &[[u8; 4]; 4]) -> u32 {
    let b = x.to_le_bytes();
    (0..4).fold(0, |z, j| z ^ mds_col(j, sbox(j, b[j], l)))
}

/// Twofish with a 256-bit key: 40 subkeys and the four g tables.
#[derive(Clone)]
pub struct Twofish {
    k: [u32; 40],
    g: [[u32; 256]; 4],
}

impl std::fmt::Debug for Twofish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Twofish { .. }")
    }
}

impl Twofish {
    pub fn new(key: &[u8; 32]) -> Self {
        let m = |i: usize| [key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]];
        let me = [m(0), m(2), m(4), m(6)];
        let mo = [m(1), m(3), m(5), m(7)];
        // S_i = RS . key[8i..8i+8]; g uses them reversed: L0 = S3, ..., L3 = S0.
        let mut s = [[0u8; 4]; 4];
        for (i, si) in s.iter_mut().enumerate() {
            for (r, row) in RS.iter().enumerate() {
                si[r] = row
                    .iter()
                    .zip(&key[8 * i..8 * i + 8])
                    .fold(0, |acc, (&c, &b)| acc ^ gf_mul(c, b, 0x14D));
            }
        }
        let l = [s[3], s[2], s[1], s[0]];
        let mut k = [0u32; 40];
        const RHO: u32 = 0x0101_0101;
        for i in 0..20u32 {
            let a = h(2 * i * RHO, &me);
            let b = h((2 * i + 1) * RHO, &mo).rotate_left(8);
            k[2 * i as usize] = a.wrapping_add(b);
            k[2 * i as usize + 1] = a.wrapping_add(b.wrapping_mul(2)).rotate_left(9);
        }
        let mut g = [[0u32; 256]; 4];
        for (j, table) in g.iter_mut().enumerate() {
            for (x, e) in table.iter_mut().enumerate() {
                *e = mds_col(j, sbox(j, x as u8, &l));
            }
        }
        Twofish { k, g }
    }

    #[inline(always)]
    fn g0(&self, x: u32) -> u32 {
        let b = x.to_le_bytes();
        self.g[0][b[0] as usize]
            ^ self.g[1][b[1] as usize]
            ^ self.g[2][b[2] as usize]
            ^ self.g[3][b[3] as usize]
    }

    /// Encrypts `N` independent 16-byte blocks (words little-endian) with their rounds
    /// interleaved (instruction-level parallelism for CFB decryption).
    #[inline(always)]
    fn encrypt_lanes<const N: usize>(&self, blks: [&mut [u8]; N]) {
        let k = &self.k;
        let (mut a, mut b, mut c, mut d) = ([0u32; N], [0u32; N], [0u32; N], [0u32; N]);
        for (i, blk) in blks.iter().enumerate() {
            let w = |j: usize| {
                u32::from_le_bytes([blk[4 * j], blk[4 * j + 1], blk[4 * j + 2], blk[4 * j + 3]])
            };
            (a[i], b[i], c[i], d[i]) = (w(0) ^ k[0], w(1) ^ k[1], w(2) ^ k[2], w(3) ^ k[3]);
        }
        for rk in k[8..].chunks_exact(4) {
            for i in 0..N {
                let t0 = self.g0(a[i]);
                let t1 = self.g0(b[i].rotate_left(8));
                c[i] = (c[i] ^ t0.wrapping_add(t1).wrapping_add(rk[0])).rotate_right(1);
                d[i] =
                    d[i].rotate_left(1) ^ t0.wrapping_add(t1.wrapping_mul(2)).wrapping_add(rk[1]);
            }
            for i in 0..N {
                let t0 = self.g0(c[i]);
                let t1 = self.g0(d[i].rotate_left(8));
                a[i] = (a[i] ^ t0.wrapping_add(t1).wrapping_add(rk[2])).rotate_right(1);
                b[i] =
                    b[i].rotate_left(1) ^ t0.wrapping_add(t1.wrapping_mul(2)).wrapping_add(rk[3]);
            }
        }
        for (i, blk) in blks.into_iter().enumerate() {
            let out = [c[i] ^ k[4], d[i] ^ k[5], a[i] ^ k[6], b[i] ^ k[7]];
            for (j, v) in out.iter().enumerate() {
                blk[4 * j..4 * j + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
    }

    /// Encrypts one 16-byte block.
    #[cfg(test)]
    pub fn encrypt(&self, blk: &mut [u8; 16]) {
        self.encrypt_lanes([&mut blk[..]]);
    }
}

struct Backend<'a>(&'a Twofish);

impl BlockSizeUser for Backend<'_> {
    type BlockSize = U16;
}

impl ParBlocksSizeUser for Backend<'_> {
    type ParBlocksSize = U4;
}

impl BlockBackend for Backend<'_> {
    #[inline(always)]
    fn proc_block(&mut self, mut block: InOut<'_, '_, Block<Self>>) {
        let mut b: [u8; 16] = (*block.get_in()).into();
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

impl BlockSizeUser for Twofish {
    type BlockSize = U16;
}

impl BlockEncrypt for Twofish {
    #[inline]
    fn encrypt_with_backend(&self, f: impl BlockClosure<BlockSize = U16>) {
        f.call(&mut Backend(self));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cipher::KeyInit;

    #[test]
    fn matches_twofish_crate() {
        for seed in 0..20u32 {
            let key: [u8; 32] = core::array::from_fn(|i| (i as u32 * 73 + seed * 151 + 11) as u8);
            let ours = Twofish::new(&key);
            let theirs = twofish::Twofish::new(&key.into());
            for n in 0..8u32 {
                let plain: [u8; 16] =
                    core::array::from_fn(|i| (i as u32 * 29 + n * 97 + seed) as u8);
                let mut a = plain;
                ours.encrypt(&mut a);
                let mut b = Block::<twofish::Twofish>::from(plain);
                cipher::BlockEncrypt::encrypt_block(&theirs, &mut b);
                assert_eq!(a, b.as_slice(), "key seed {seed} block {n}");
            }
        }
    }

    #[test]
    fn parallel_path_matches_single() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 5 + 2) as u8);
        let t = Twofish::new(&key);
        let mut blocks: [Block<Twofish>; 9] = Default::default();
        for (i, b) in blocks.iter_mut().enumerate() {
            b.copy_from_slice(&(i as u128 * 0x0123_4567_89ab_cdef_1122_3344).to_le_bytes());
        }
        let mut par = blocks;
        cipher::BlockEncrypt::encrypt_blocks(&t, &mut par);
        for (p, b) in par.iter().zip(blocks) {
            let mut one: [u8; 16] = b.into();
            t.encrypt(&mut one);
            assert_eq!(p.as_slice(), one);
        }
    }

    #[test]
    fn known_answer_zero_key() {
        // Twofish paper, 256-bit key of zeros, plaintext of zeros.
        let t = Twofish::new(&[0; 32]);
        let mut b = [0u8; 16];
        t.encrypt(&mut b);
        assert_eq!(
            b,
            [
                0x57, 0xFF, 0x73, 0x9D, 0x4D, 0xC9, 0x2C, 0x1B, 0xD7, 0xFC, 0x01, 0x70, 0x0C, 0xC8,
                0x21, 0x6F
            ]
        );
    }
}
