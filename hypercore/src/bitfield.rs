//! Growable MSB-first bitfields: which blocks are present, which tree nodes are held (spec §4.4).
//!
//! Bit `n` is bit `0x80 >> (n & 7)` of byte `n >> 3`, as in the JS `sparse-bitfield`, so
//! [`Bitfield::as_bytes`] is exactly the byte run the wire protocol's `Have` RLE encodes.

/// A growable bitfield that remembers the highest byte ever set, like the JS one.
#[derive(Debug, Clone, Default)]
pub struct Bitfield {
    bytes: Vec<u8>,
}

impl Bitfield {
    /// An empty bitfield.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether bit `n` is set.
    #[inline]
    pub fn get(&self, n: u64) -> bool {
        let Ok(byte) = usize::try_from(n >> 3) else { return false };
        match self.bytes.get(byte) {
            Some(b) => b & (0x80 >> (n & 7)) != 0,
            None => false,
        }
    }

    /// Set or clear bit `n`; returns true if it changed.
    #[inline]
    pub fn set(&mut self, n: u64, value: bool) -> bool {
        let byte = (n >> 3) as usize;
        let mask = 0x80u8 >> (n & 7);
        if byte >= self.bytes.len() {
            if !value {
                return false;
            }
            // Grow geometrically but never past what is needed for `byte`.
            self.bytes.resize(byte + 1, 0);
        }
        let b = &mut self.bytes[byte];
        let old = *b;
        if value { *b |= mask } else { *b &= !mask }
        *b != old
    }

    /// Length in bits: `8 *` (highest byte ever touched + 1), the JS `bitfield.length`.
    pub fn bit_len(&self) -> u64 {
        8 * self.bytes.len() as u64
    }

    /// The underlying bytes (MSB-first bits).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
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
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.bit_len(), 16);
        assert!(b.get(9) && !b.get(8) && !b.get(1000));
        assert!(!b.set(1000, false));
        assert_eq!(b.count_ones(0, 16), 2);
    }
}
