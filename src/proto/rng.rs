//! The one source of randomness in the protocol core.
//!
//! [`Rng`] is an AES-128 counter-mode keystream: given a 32-byte seed (16 bytes key, 16 bytes
//! initial counter) it is fully deterministic, so tests pass fixed seeds and replay exactly;
//! production code seeds it once from the OS (`io` does that, never `proto`). It serves datagram
//! nonces (unpredictable to an observer who lacks the seed, as kcp-go's AES-based nonce generator
//! is), KCP conversation ids and any jitter.
//!
//! Output is produced a 16-byte block at a time; `fill` is allocation-free and runs at AES-NI
//! speed where the CPU has it.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

/// Deterministic cryptographically strong generator (AES-128-CTR keystream).
#[derive(Clone)]
pub struct Rng {
    aes: Aes128,
    counter: u128,
    block: [u8; 16],
    /// Bytes of `block` already handed out (16 = block exhausted).
    used: usize,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rng").finish_non_exhaustive()
    }
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut key = [0u8; 16];
        key.copy_from_slice(&seed[..16]);
        let mut ctr = [0u8; 16];
        ctr.copy_from_slice(&seed[16..]);
        Rng {
            aes: Aes128::new(&key.into()),
            counter: u128::from_le_bytes(ctr),
            block: [0; 16],
            used: 16,
        }
    }

    fn refill(&mut self) {
        let mut b = self.counter.to_le_bytes().into();
        self.aes.encrypt_block(&mut b);
        self.block.copy_from_slice(&b);
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }

    /// Fills `out` with keystream bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            if self.used == 16 {
                self.refill();
            }
            let n = (16 - self.used).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.block[self.used..self.used + n]);
            self.used += n;
            done += n;
        }
    }

    pub fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_le_bytes(b)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }

    /// A uniformly distributed value in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let n = n.max(1);
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// A new independent generator seeded from this one's output.
    pub fn fork(&mut self) -> Rng {
        let mut seed = [0u8; 32];
        self.fill(&mut seed);
        Rng::from_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_split_independent() {
        let mut a = Rng::from_seed([7; 32]);
        let mut b = Rng::from_seed([7; 32]);
        let mut x = [0u8; 37];
        a.fill(&mut x);
        let mut y = [0u8; 37];
        b.fill(&mut y[..5]);
        b.fill(&mut y[5..]);
        assert_eq!(x, y);
        let mut c = Rng::from_seed([8; 32]);
        let mut z = [0u8; 37];
        c.fill(&mut z);
        assert_ne!(x, z);
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::from_seed([1; 32]);
        for n in 1..200u64 {
            assert!(r.below(n) < n);
        }
    }
}
