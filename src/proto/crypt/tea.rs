//! TEA with 16 rounds (8 cycles) and XTEA with 32 cycles, as kcptun uses them (SPEC §2.3).
//!
//! Both take a 16-byte key read as four big-endian words and work on 8-byte blocks read as two
//! big-endian words. Only the encrypt direction exists: kcp-go's CFB never decrypts with the block
//! cipher. They plug into [`super::cfb::Cfb`] through the `cipher` crate's backend traits; the
//! parallel path interleaves four independent blocks, which CFB decryption uses.

use cipher::consts::{U4, U8};
use cipher::inout::InOut;
use cipher::{
    Block, BlockBackend, BlockClosure, BlockEncrypt, BlockSizeUser, ParBlocks, ParBlocksSizeUser,
};

const DELTA: u32 = 0x9E37_79B9;
const TEA_CYCLES: usize = 8;
const XTEA_CYCLES: usize = 32;
const LANES: usize = 4;

fn key_words(key: &[u8; 16]) -> [u32; 4] {
    let mut k = [0u32; 4];
    for (w, c) in k.iter_mut().zip(key.chunks_exact(4)) {
        *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    k
}

#[inline(always)]
fn load(b: &[u8]) -> (u32, u32) {
    (
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    )
}

#[inline(always)]
fn store(b: &mut [u8], v0: u32, v1: u32) {
    b[..4].copy_from_slice(&v0.to_be_bytes());
    b[4..8].copy_from_slice(&v1.to_be_bytes());
}

/// TEA, 8 cycles (Go's `tea.NewCipherWithRounds(key, 16)`).
#[derive(Clone, Debug)]
pub struct Tea {
    k: [u32; 4],
}

impl Tea {
    pub fn new(key: &[u8; 16]) -> Self {
        Tea { k: key_words(key) }
    }

    #[inline(always)]
    fn lanes<const N: usize>(&self, v0: &mut [u32; N], v1: &mut [u32; N]) {
        let [k0, k1, k2, k3] = self.k;
        let mut sum = 0u32;
        for _ in 0..TEA_CYCLES {
            sum = sum.wrapping_add(DELTA);
            for l in 0..N {
                let y = v1[l];
                v0[l] = v0[l].wrapping_add(
                    ((y << 4).wrapping_add(k0)) ^ y.wrapping_add(sum) ^ ((y >> 5).wrapping_add(k1)),
                );
                let z = v0[l];
                v1[l] = v1[l].wrapping_add(
                    ((z << 4).wrapping_add(k2)) ^ z.wrapping_add(sum) ^ ((z >> 5).wrapping_add(k3)),
                );
            }
        }
    }
}

/// XTEA, 32 cycles, with the 64 per-half-round `sum + key` values precomputed.
#[derive(Clone, Debug)]
pub struct Xtea {
    t: [u32; 2 * XTEA_CYCLES],
}

impl Xtea {
    pub fn new(key: &[u8; 16]) -> Self {
        let k = key_words(key);
        let mut t = [0u32; 2 * XTEA_CYCLES];
        let mut sum = 0u32;
        for pair in t.chunks_exact_mut(2) {
            pair[0] = sum.wrapping_add(k[(sum & 3) as usize]);
            sum = sum.wrapping_add(DELTA);
            pair[1] = sum.wrapping_add(k[((sum >> 11) & 3) as usize]);
        }
        Xtea { t }
    }

    #[inline(always)]
    fn lanes<const N: usize>(&self, v0: &mut [u32; N], v1: &mut [u32; N]) {
        for pair in self.t.chunks_exact(2) {
            for l in 0..N {
                let y = v1[l];
                v0[l] = v0[l].wrapping_add((((y << 4) ^ (y >> 5)).wrapping_add(y)) ^ pair[0]);
                let z = v0[l];
                v1[l] = v1[l].wrapping_add((((z << 4) ^ (z >> 5)).wrapping_add(z)) ^ pair[1]);
            }
        }
    }
}

/// The shared backend: `lanes` over 1 or [`LANES`] blocks.
trait Lanes {
    fn run1(&self, v0: &mut [u32; 1], v1: &mut [u32; 1]);
    fn run4(&self, v0: &mut [u32; LANES], v1: &mut [u32; LANES]);
}

impl Lanes for Tea {
    #[inline(always)]
    fn run1(&self, v0: &mut [u32; 1], v1: &mut [u32; 1]) {
        self.lanes(v0, v1)
    }
    #[inline(always)]
    fn run4(&self, v0: &mut [u32; LANES], v1: &mut [u32; LANES]) {
        self.lanes(v0, v1)
    }
}

impl Lanes for Xtea {
    #[inline(always)]
    fn run1(&self, v0: &mut [u32; 1], v1: &mut [u32; 1]) {
        self.lanes(v0, v1)
    }
    #[inline(always)]
    fn run4(&self, v0: &mut [u32; LANES], v1: &mut [u32; LANES]) {
        self.lanes(v0, v1)
    }
}

struct Backend<'a, T>(&'a T);

impl<T> BlockSizeUser for Backend<'_, T> {
    type BlockSize = U8;
}

impl<T> ParBlocksSizeUser for Backend<'_, T> {
    type ParBlocksSize = U4;
}

impl<T: Lanes> BlockBackend for Backend<'_, T> {
    #[inline(always)]
    fn proc_block(&mut self, mut block: InOut<'_, '_, Block<Self>>) {
        let (a, b) = load(block.get_in());
        let (mut v0, mut v1) = ([a], [b]);
        self.0.run1(&mut v0, &mut v1);
        store(block.get_out(), v0[0], v1[0]);
    }

    #[inline(always)]
    fn proc_par_blocks(&mut self, mut blocks: InOut<'_, '_, ParBlocks<Self>>) {
        let mut v0 = [0u32; LANES];
        let mut v1 = [0u32; LANES];
        for l in 0..LANES {
            let (a, b) = load(blocks.get(l).get_in());
            v0[l] = a;
            v1[l] = b;
        }
        self.0.run4(&mut v0, &mut v1);
        for l in 0..LANES {
            store(blocks.get(l).get_out(), v0[l], v1[l]);
        }
    }
}

macro_rules! block_encrypt {
    ($t:ty) => {
        impl BlockSizeUser for $t {
            type BlockSize = U8;
        }
        impl BlockEncrypt for $t {
            #[inline]
            fn encrypt_with_backend(&self, f: impl BlockClosure<BlockSize = U8>) {
                f.call(&mut Backend(self));
            }
        }
    };
}

block_encrypt!(Tea);
block_encrypt!(Xtea);

#[cfg(test)]
mod tests {
    use super::*;

    /// Straight transcription of SPEC §2.3 (one block at a time, no tables).
    fn tea_ref(key: &[u8; 16], block: [u8; 8]) -> [u8; 8] {
        let k = key_words(key);
        let (mut v0, mut v1) = load(&block);
        let mut sum = 0u32;
        for _ in 0..8 {
            sum = sum.wrapping_add(DELTA);
            v0 = v0.wrapping_add(
                ((v1 << 4).wrapping_add(k[0]))
                    ^ v1.wrapping_add(sum)
                    ^ ((v1 >> 5).wrapping_add(k[1])),
            );
            v1 = v1.wrapping_add(
                ((v0 << 4).wrapping_add(k[2]))
                    ^ v0.wrapping_add(sum)
                    ^ ((v0 >> 5).wrapping_add(k[3])),
            );
        }
        let mut out = [0u8; 8];
        store(&mut out, v0, v1);
        out
    }

    fn xtea_ref(key: &[u8; 16], block: [u8; 8]) -> [u8; 8] {
        let k = key_words(key);
        let (mut v0, mut v1) = load(&block);
        let mut sum = 0u32;
        for _ in 0..32 {
            v0 = v0.wrapping_add(
                (((v1 << 4) ^ (v1 >> 5)).wrapping_add(v1))
                    ^ sum.wrapping_add(k[(sum & 3) as usize]),
            );
            sum = sum.wrapping_add(DELTA);
            v1 = v1.wrapping_add(
                (((v0 << 4) ^ (v0 >> 5)).wrapping_add(v0))
                    ^ sum.wrapping_add(k[((sum >> 11) & 3) as usize]),
            );
        }
        let mut out = [0u8; 8];
        store(&mut out, v0, v1);
        out
    }

    #[test]
    fn xtea_known_answer() {
        // Published XTEA (32 cycles) test vector: key 000102..0f, plaintext 4142434445464748.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let x = Xtea::new(&key);
        let mut b = Block::<Xtea>::clone_from_slice(b"ABCDEFGH");
        x.encrypt_block(&mut b);
        assert_eq!(
            b.as_slice(),
            [0x49, 0x7d, 0xf3, 0xd0, 0x72, 0x61, 0x2c, 0xb5]
        );
    }

    #[test]
    fn single_and_parallel_paths_match_reference() {
        let key: [u8; 16] = core::array::from_fn(|i| (i * 37 + 5) as u8);
        let tea = Tea::new(&key);
        let xtea = Xtea::new(&key);
        let mut blocks: [Block<Tea>; 4] = Default::default();
        for (i, b) in blocks.iter_mut().enumerate() {
            for (j, x) in b.iter_mut().enumerate() {
                *x = (i * 8 + j * 13) as u8;
            }
        }
        let mut t = blocks;
        tea.encrypt_blocks(&mut t);
        let mut x = blocks;
        xtea.encrypt_blocks(&mut x);
        for i in 0..4 {
            let plain: [u8; 8] = blocks[i].into();
            assert_eq!(t[i].as_slice(), tea_ref(&key, plain));
            assert_eq!(x[i].as_slice(), xtea_ref(&key, plain));
            let mut one = blocks[i];
            tea.encrypt_block(&mut one);
            assert_eq!(one, t[i]);
        }
    }
}
