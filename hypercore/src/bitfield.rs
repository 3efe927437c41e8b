//! Sparse MSB-first bitfields: which blocks are present, which tree nodes are held (spec §4.4).
//!
//! Bit `n` is bit `0x80 >> (n & 7)` of byte `n >> 3`, as in the JS `sparse-bitfield`, so
//! [`Bitfield::bytes`] is exactly the byte run the wire protocol's `Have` RLE encodes.

use crate::pages::Pages;

/// Bytes per bitfield page.
const PAGE_BYTES: usize = 4096;
type Page = [u8; PAGE_BYTES];

/// A sparse MSB-first bitfield that remembers the highest byte ever set, like the JS one.
#[derive(Debug, Clone, Default)]
pub struct Bitfield {
    pages: Pages<Page>,
    byte_len: u64,
}

impl Bitfield {
    /// An empty bitfield.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether bit `n` is set.
    #[inline]
    pub fn get(&self, n: u64) -> bool {
        self.byte(n >> 3) & (0x80 >> (n & 7)) != 0
    }

    /// Byte `i` of the bitfield (0 where nothing was set).
    #[inline]
    pub fn byte(&self, i: u64) -> u8 {
        let p = i / PAGE_BYTES as u64;
        self.pages.get(p).map_or(0, |page| page[(i % PAGE_BYTES as u64) as usize])
    }

    /// Set or clear bit `n`; returns true if it changed.
    #[inline]
    pub fn set(&mut self, n: u64, value: bool) -> bool {
        let i = n >> 3;
        let mask = 0x80u8 >> (n & 7);
        if !value && self.byte(i) & mask == 0 {
            return false;
        }
        let page = self.pages.get_or_insert_with(i / PAGE_BYTES as u64, || Box::new([0u8; PAGE_BYTES]));
        let b = &mut page[(i % PAGE_BYTES as u64) as usize];
        let old = *b;
        if value {
            *b |= mask
        } else {
            *b &= !mask
        }
        if *b == old {
            return false;
        }
        if i >= self.byte_len {
            self.byte_len = i + 1;
        }
        true
    }

    /// Length in bits: `8 *` (highest byte ever changed + 1), the JS `bitfield.length`.
    pub fn bit_len(&self) -> u64 {
        8 * self.byte_len
    }

    /// Bytes `[start, end)` (MSB-first bits), e.g. for a `Have` message's RLE.
    pub fn bytes(&self, start: u64, end: u64) -> Vec<u8> {
        (start..end).map(|i| self.byte(i)).collect()
    }

    /// Number of set bits in `[start, end)`.
    pub fn count_ones(&self, start: u64, end: u64) -> u64 {
        (start..end).filter(|&i| self.get(i)).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::Bitfield;

    #[test]
    fn msb_first_and_growth() {
        let mut b = Bitfield::new();
        assert!(b.set(0, true));
        assert!(!b.set(0, true));
        assert!(b.set(9, true));
        assert_eq!(b.bytes(0, 2), vec![0x80, 0x40]);
        assert_eq!(b.bit_len(), 16);
        assert!(!b.set(1000, false));
        assert!(b.get(9) && !b.get(8) && !b.get(1000));
        assert_eq!(b.count_ones(0, 16), 2);
        // Far bits allocate one page, not everything below them.
        assert!(b.set(1 << 40, true) && b.get(1 << 40));
        assert_eq!(b.bit_len(), (1 << 40) + 8);
    }
}
