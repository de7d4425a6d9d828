//! kcp-go's CFB mode (SPEC §2.3) over any block cipher with the `cipher` 0.4 backend interface.
//!
//! The mode is standard full-block CFB with the fixed IV [`IV`] (its first 8 bytes for 8-byte
//! ciphers), applied to the whole datagram; a short final block uses the leading bytes of its
//! keystream block. Only the block cipher's encrypt direction is used, for both directions.
//!
//! `E(IV)` is the same for every datagram, so it is computed once in [`Cfb::new`]. Encryption is
//! inherently sequential (the keystream of block i is `E(C[i-1])`), but decryption knows every
//! `C[i-1]` up front, so it encrypts groups of ciphertext blocks at once with the backend's
//! parallel path (8 blocks per AES-NI call). Both loops run inside the cipher's
//! `encrypt_with_backend`, so hardware backends are selected once per datagram, not per block.

use cipher::generic_array::{ArrayLength, GenericArray};
use cipher::typenum::Unsigned;
use cipher::{Block, BlockBackend, BlockClosure, BlockEncrypt, BlockSizeUser, ParBlocks};

/// kcp-go's fixed CFB initial vector.
pub const IV: [u8; 16] = [
    0xa7, 0x73, 0x4f, 0x9c, 0x12, 0xac, 0x1b, 0x01, 0xa4, 0x15, 0xf2, 0xc1, 0xfc, 0x78, 0xe6, 0x6b,
];

/// A block cipher keyed once, plus its precomputed first keystream block `E(IV)`.
#[derive(Clone)]
pub struct Cfb<C: BlockEncrypt> {
    cipher: C,
    s0: Block<C>,
}

impl<C: BlockEncrypt> Cfb<C> {
    pub fn new(cipher: C) -> Self {
        let bs = C::BlockSize::USIZE;
        let mut s0 = Block::<C>::default();
        s0.copy_from_slice(&IV[..bs]);
        cipher.encrypt_block(&mut s0);
        Cfb { cipher, s0 }
    }

    /// Encrypts `buf` in place (any length, including 0).
    #[inline]
    pub fn encrypt(&self, buf: &mut [u8]) {
        self.cipher.encrypt_with_backend(Enc { s0: &self.s0, buf });
    }

    /// Decrypts `buf` in place (any length, including 0).
    #[inline]
    pub fn decrypt(&self, buf: &mut [u8]) {
        self.cipher.encrypt_with_backend(Dec { s0: &self.s0, buf });
    }
}

#[inline(always)]
fn xor_into(dst: &mut [u8], ks: &[u8]) {
    // An 8-byte block as one word (the byte loop's setup cost dominates such small blocks);
    // 16-byte blocks and tails byte by byte, which the compiler turns into one vector xor.
    if let (Ok(d), Some(k)) = (<&mut [u8; 8]>::try_from(&mut *dst), ks.first_chunk::<8>()) {
        *d = (u64::from_ne_bytes(*d) ^ u64::from_ne_bytes(*k)).to_ne_bytes();
        return;
    }
    for (d, k) in dst.iter_mut().zip(ks) {
        *d ^= *k;
    }
}

struct Enc<'a, BS: ArrayLength<u8>> {
    s0: &'a GenericArray<u8, BS>,
    buf: &'a mut [u8],
}

impl<BS: ArrayLength<u8>> BlockSizeUser for Enc<'_, BS> {
    type BlockSize = BS;
}

impl<BS: ArrayLength<u8>> BlockClosure for Enc<'_, BS> {
    #[inline(always)]
    fn call<B: BlockBackend<BlockSize = BS>>(self, backend: &mut B) {
        let bs = BS::USIZE;
        // `ks` is the keystream for the next block; after a block it holds that block's
        // ciphertext until the next block needs it encrypted (no wasted final encryption).
        let mut ks = self.s0.clone();
        let mut chunks = self.buf.chunks_exact_mut(bs);
        let mut first = true;
        for c in chunks.by_ref() {
            if !first {
                backend.proc_block_inplace(&mut ks);
            }
            first = false;
            xor_into(c, &ks);
            ks.copy_from_slice(c);
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            if !first {
                backend.proc_block_inplace(&mut ks);
            }
            xor_into(tail, &ks);
        }
    }
}

struct Dec<'a, BS: ArrayLength<u8>> {
    s0: &'a GenericArray<u8, BS>,
    buf: &'a mut [u8],
}

impl<BS: ArrayLength<u8>> BlockSizeUser for Dec<'_, BS> {
    type BlockSize = BS;
}

impl<BS: ArrayLength<u8>> BlockClosure for Dec<'_, BS> {
    #[inline(always)]
    fn call<B: BlockBackend<BlockSize = BS>>(self, backend: &mut B) {
        let bs = BS::USIZE;
        let p = B::ParBlocksSize::USIZE;
        let buf = self.buf;
        let len = buf.len();
        if len == 0 {
            return;
        }
        // Block 0 uses the precomputed E(IV); remember its ciphertext first.
        let mut prev = GenericArray::<u8, BS>::default();
        let first = len.min(bs);
        prev[..first].copy_from_slice(&buf[..first]);
        xor_into(&mut buf[..first], self.s0);
        // Blocks i.. need E(C[i-1]); encrypt `p` of those at a time.
        let mut tmp = ParBlocks::<B>::default();
        let mut pos = bs; // byte offset of block i
        while pos < len {
            // tmp[0] = C[i-1] (saved), tmp[j] = C[i+j-1] still in buf (full blocks).
            let mut used = 0;
            for (j, t) in tmp.iter_mut().enumerate() {
                let start = pos + j * bs;
                if start >= len {
                    break;
                }
                if j == 0 {
                    t.copy_from_slice(&prev);
                } else {
                    t.copy_from_slice(&buf[start - bs..start]);
                }
                used = j + 1;
            }
            // Save the last ciphertext block of this group before it is overwritten.
            let last_start = pos + (used - 1) * bs;
            let last_end = (last_start + bs).min(len);
            if last_end - last_start == bs {
                prev.copy_from_slice(&buf[last_start..last_end]);
            }
            if p == 1 {
                backend.proc_block_inplace(&mut tmp[0]);
            } else {
                backend.proc_par_blocks_inplace(&mut tmp);
            }
            for (j, t) in tmp.iter().take(used).enumerate() {
                let start = pos + j * bs;
                let end = (start + bs).min(len);
                xor_into(&mut buf[start..end], t);
            }
            pos += p * bs;
        }
    }
}
