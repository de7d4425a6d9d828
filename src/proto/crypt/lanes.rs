//! `cipher` trait plumbing for the table-driven block ciphers written here (3DES, SM4, Twofish).
//!
//! Each has an inherent `encrypt_lanes(&self, [&mut [u8]; N])` that encrypts N = 1 or 4 blocks
//! with their rounds interleaved. [`four_lane_cipher!`] implements `BlockEncrypt` on top, with
//! 4-block parallel batches: CFB decryption (the keystream of block i is E(C[i-1])) runs four
//! independent blocks at once, encryption one after another.

/// `four_lane_cipher!(Type, BlockSize)`: `BlockSizeUser` + `BlockEncrypt` for `Type`.
macro_rules! four_lane_cipher {
    ($ty:ty, $bs:ty) => {
        const _: () = {
            use cipher::consts::U4;
            use cipher::inout::InOut;
            use cipher::{
                Block, BlockBackend, BlockClosure, BlockEncrypt, BlockSizeUser, ParBlocks,
                ParBlocksSizeUser,
            };

            struct Backend<'a>(&'a $ty);

            impl BlockSizeUser for Backend<'_> {
                type BlockSize = $bs;
            }

            impl ParBlocksSizeUser for Backend<'_> {
                type ParBlocksSize = U4;
            }

            impl BlockBackend for Backend<'_> {
                #[inline(always)]
                fn proc_block(&mut self, mut block: InOut<'_, '_, Block<Self>>) {
                    let mut b = block.clone_in();
                    self.0.encrypt_lanes([&mut b[..]]);
                    *block.get_out() = b;
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

            impl BlockSizeUser for $ty {
                type BlockSize = $bs;
            }

            impl BlockEncrypt for $ty {
                #[inline]
                fn encrypt_with_backend(&self, f: impl BlockClosure<BlockSize = $bs>) {
                    f.call(&mut Backend(self));
                }
            }
        };
    };
}

pub(crate) use four_lane_cipher;
