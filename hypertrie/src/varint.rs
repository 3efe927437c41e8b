//! Protobuf varints (unsigned LEB128), shared by the node/header codec and the trie field
//! (spec §6.3, §6.6).
//!
//! Hand-written rather than taken from a crate: it is a dozen lines, and the decoder must report
//! truncation and overlong encodings as typed errors instead of panicking on hostile blocks.

use crate::error::DecodeError;

/// Append `n` as a varint.
pub(crate) fn encode(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Read one varint from the front of `buf`, advancing it.
#[inline]
pub(crate) fn decode(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    // Most varints in a trie field are one byte.
    if let Some((&byte, rest)) = buf.split_first()
        && byte < 0x80
    {
        *buf = rest;
        return Ok(u64::from(byte));
    }
    let mut n: u64 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        if i == 10 || (i == 9 && byte > 1) {
            return Err(DecodeError::VarintOverflow);
        }
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(n);
        }
    }
    Err(DecodeError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for n in [0, 1, 127, 128, 300, 16383, 16384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            encode(n, &mut out);
            let mut slice = out.as_slice();
            assert_eq!(decode(&mut slice).unwrap(), n);
            assert!(slice.is_empty());
        }
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert!(matches!(decode(&mut &[0x80u8][..]), Err(DecodeError::Truncated)));
        assert!(matches!(decode(&mut &[][..]), Err(DecodeError::Truncated)));
        let overlong = [0xffu8; 11];
        assert!(matches!(decode(&mut &overlong[..]), Err(DecodeError::VarintOverflow)));
    }
}
