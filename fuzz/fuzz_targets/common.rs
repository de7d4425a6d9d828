//! Shared helpers of the fuzz targets: a cursor that reads choices and length-prefixed chunks
//! from the fuzzer's input, and a virtual clock.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Reads choices and chunks from the input; past the end every read yields zeros / empty.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }

    /// A chunk whose length is a u16 prefix modulo `max + 1`.
    pub fn chunk(&mut self, max: usize) -> &'a [u8] {
        let n = self.u16() as usize % (max + 1);
        self.take(n)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }
}

/// A clock that only moves forward, by amounts the input chooses.
pub struct Clock {
    pub now: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            now: Instant::now(),
        }
    }

    /// Advances by a choice of the input: small steps mostly, sometimes seconds or minutes.
    pub fn advance(&mut self, b: u8) -> Instant {
        let ms = match b >> 6 {
            0 => u64::from(b & 0x3f),
            1 => u64::from(b & 0x3f) * 10,
            2 => u64::from(b & 0x3f) * 1000,
            _ => u64::from(b & 0x3f) * 60_000,
        };
        self.now += Duration::from_millis(ms);
        self.now
    }
}
