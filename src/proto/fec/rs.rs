//! Reed-Solomon coding matrix and erasure decoding over GF(2^8) (SPEC §3.5).
//!
//! The field arithmetic (polynomial 0x11D, generator 2) comes from `reed-solomon-erasure`'s
//! `galois_8`; the matrix is built here so that every buffer is owned and preallocated: encoding
//! and decoding never allocate. The matrix is the "Vandermonde made systematic" construction that
//! klauspost/reedsolomon (kcp-go) and `reed-solomon-erasure` share: `V[r][c] = r^c`, `M = V ×
//! inverse(top ds rows of V)`; tests compare it with `fec.json` and with the crate's own codec.

use reed_solomon_erasure::galois_8::{div, exp, mul_slice, mul_slice_xor};

/// Rows `dst` (mutable) and `src` (shared) of a row-major matrix with rows of `k` bytes.
fn two_rows(m: &mut [u8], k: usize, dst: usize, src: usize) -> (&mut [u8], &[u8]) {
    debug_assert_ne!(dst, src);
    if dst < src {
        let (lo, hi) = m.split_at_mut(src * k);
        (&mut lo[dst * k..(dst + 1) * k], &hi[..k])
    } else {
        let (lo, hi) = m.split_at_mut(dst * k);
        (&mut hi[..k], &lo[src * k..(src + 1) * k])
    }
}

/// Inverts the `k`×`k` row-major matrix in `a` into `inv` by Gauss-Jordan elimination with
/// whole-row operations. `a` is destroyed. Returns false when the matrix is singular.
pub(crate) fn invert(a: &mut [u8], inv: &mut [u8], k: usize) -> bool {
    let a = &mut a[..k * k];
    let inv = &mut inv[..k * k];
    inv.fill(0);
    for i in 0..k {
        inv[i * k + i] = 1;
    }
    let mut tmp = [0u8; 256];
    for col in 0..k {
        // Find a pivot row at or below `col`.
        let Some(p) = (col..k).find(|&r| a[r * k + col] != 0) else {
            return false;
        };
        if p != col {
            for m in [&mut *a, &mut *inv] {
                let (x, y) = two_rows(m, k, col, p);
                tmp[..k].copy_from_slice(x);
                x.copy_from_slice(y);
                m[p * k..(p + 1) * k].copy_from_slice(&tmp[..k]);
            }
        }
        // Scale the pivot row to make the pivot 1.
        let scale = div(1, a[col * k + col]);
        if scale != 1 {
            for m in [&mut *a, &mut *inv] {
                tmp[..k].copy_from_slice(&m[col * k..(col + 1) * k]);
                mul_slice(scale, &tmp[..k], &mut m[col * k..(col + 1) * k]);
            }
        }
        // Eliminate the column from every other row.
        for r in 0..k {
            let f = a[r * k + col];
            if r == col || f == 0 {
                continue;
            }
            for m in [&mut *a, &mut *inv] {
                let (dst, src) = two_rows(m, k, r, col);
                mul_slice_xor(f, src, dst);
            }
        }
    }
    true
}

/// The systematic coding matrix of a (ds, ps) code plus scratch space for decoding.
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    ds: usize,
    ps: usize,
    /// (ds+ps) × ds, row-major; the top ds rows are the identity.
    matrix: Vec<u8>,
    /// ds × ds scratch: the rows of `matrix` for the shards used in a decode.
    sub: Vec<u8>,
    /// ds × ds: inverse of `sub` for the cached `valid` set.
    inv: Vec<u8>,
    /// Shard indexes (ascending) `inv` was computed for; empty = no cache.
    valid: Vec<u16>,
    cached: bool,
}

impl Codec {
    /// Builds the code. Caller guarantees `ds >= 1`, `ps >= 1`, `ds + ps <= 256`.
    pub(crate) fn new(ds: usize, ps: usize) -> Self {
        let n = ds + ps;
        let mut vand = vec![0u8; n * ds];
        for r in 0..n {
            for c in 0..ds {
                // r < 256 because n <= 256.
                vand[r * ds + c] = exp(r as u8, c);
            }
        }
        let mut top = vand[..ds * ds].to_vec();
        let mut top_inv = vec![0u8; ds * ds];
        // The top of a Vandermonde matrix with distinct points is always invertible.
        let ok = invert(&mut top, &mut top_inv, ds);
        debug_assert!(ok);
        // M = V × top⁻¹: the top ds rows are the identity; parity row r is
        // XOR over i of V[r][i] · (row i of top⁻¹).
        let mut matrix = vec![0u8; n * ds];
        for i in 0..ds {
            matrix[i * ds + i] = 1;
        }
        for r in ds..n {
            let out = &mut matrix[r * ds..(r + 1) * ds];
            for i in 0..ds {
                mul_slice_xor(vand[r * ds + i], &top_inv[i * ds..(i + 1) * ds], out);
            }
        }
        Codec {
            ds,
            ps,
            matrix,
            sub: vec![0; ds * ds],
            inv: vec![0; ds * ds],
            valid: Vec::with_capacity(ds),
            cached: false,
        }
    }

    /// Heap bytes held: the matrix and the decoding scratch.
    pub(crate) fn heap_bytes(&self) -> usize {
        use crate::proto::mem::vec_bytes;
        vec_bytes(&self.matrix)
            + vec_bytes(&self.sub)
            + vec_bytes(&self.inv)
            + vec_bytes(&self.valid)
    }

    /// Row `ds + j` of the coding matrix (ds coefficients).
    pub(crate) fn parity_row(&self, j: usize) -> &[u8] {
        let r = self.ds + j;
        &self.matrix[r * self.ds..(r + 1) * self.ds]
    }

    /// Computes the ps parity shards. `data` holds ds shards at stride `stride`, `parity` ps shards
    /// at the same stride; `len` bytes of each are used (`len <= stride`).
    pub(crate) fn encode(&self, data: &[u8], parity: &mut [u8], stride: usize, len: usize) {
        // The SIMD kernels (x86-64) index the first byte: never hand them empty slices.
        if len == 0 {
            return;
        }
        for j in 0..self.ps {
            let out = &mut parity[j * stride..j * stride + len];
            let row = self.parity_row(j);
            for (i, &coef) in row.iter().enumerate() {
                let input = &data[i * stride..i * stride + len];
                if i == 0 {
                    mul_slice(coef, input, out);
                } else {
                    mul_slice_xor(coef, input, out);
                }
            }
        }
    }

    /// Prepares the inverse for decoding from the shards whose indexes are yielded by `valid`
    /// (exactly ds ascending indexes < ds+ps). Returns false if the sub-matrix is singular.
    pub(crate) fn prepare(&mut self, valid: impl Iterator<Item = usize>) -> bool {
        let ds = self.ds;
        // Compare with the cached set while collecting the new one.
        let mut same = self.cached;
        let mut k = 0;
        for idx in valid.take(ds) {
            if same && self.valid.get(k).map(|&v| v as usize) != Some(idx) {
                same = false;
            }
            if k < self.valid.len() {
                self.valid[k] = idx as u16;
            } else {
                self.valid.push(idx as u16);
            }
            k += 1;
        }
        self.valid.truncate(k);
        if k != ds {
            self.cached = false;
            return false;
        }
        if same {
            return true;
        }
        for (row, &v) in self.valid.iter().enumerate() {
            let v = v as usize;
            self.sub[row * ds..(row + 1) * ds].copy_from_slice(&self.matrix[v * ds..(v + 1) * ds]);
        }
        self.cached = invert(&mut self.sub, &mut self.inv, ds);
        self.cached
    }

    /// After a successful [`Codec::prepare`]: writes data shard `missing` (< ds) into `out`
    /// (`len` bytes), from the prepared shards, each `len` bytes at `shards[v*stride..]`.
    pub(crate) fn reconstruct(
        &self,
        missing: usize,
        shards: &[u8],
        stride: usize,
        len: usize,
        out: &mut [u8],
    ) {
        let ds = self.ds;
        let out = &mut out[..len];
        if len == 0 {
            return; // see `encode`
        }
        let row = &self.inv[missing * ds..(missing + 1) * ds];
        for (k, (&coef, &v)) in row.iter().zip(self.valid.iter()).enumerate() {
            let v = v as usize;
            let input = &shards[v * stride..v * stride + len];
            if k == 0 {
                mul_slice(coef, input, out);
            } else {
                mul_slice_xor(coef, input, out);
            }
        }
    }
}
