//! Unsigned LEB128 varints with v8's limits (wire spec §1): decoding tells an incomplete
//! varint apart from an invalid one (more than 8 bytes, as JS rejects).
//!
//! Hand-written: prost's `decode_varint` cannot say "incomplete", which the frame decoder
//! needs to wait for more bytes.

/// Appends `value` as a varint.
pub(crate) fn encode(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Encoded size of `value`.
pub(crate) fn encoded_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Result of decoding a varint at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Varint {
    /// The value and the number of bytes it used.
    Value(u64, usize),
    /// The buffer ends inside the varint; `partial` is the value of the bytes seen so far
    /// (a lower bound of the final value).
    Incomplete { partial: u64 },
    /// More than 8 bytes.
    TooLong,
}

/// Decodes a varint from the start of `buf`.
pub(crate) fn decode(buf: &[u8]) -> Varint {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate() {
        if i >= 8 {
            return Varint::TooLong;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Varint::Value(value, i + 1);
        }
    }
    if buf.len() >= 8 { Varint::TooLong } else { Varint::Incomplete { partial: value } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_sizes_and_limits() {
        for v in [0u64, 1, 127, 128, 16383, 16384, 8 << 20, (1 << 56) - 1] {
            let mut out = Vec::new();
            encode(v, &mut out);
            assert_eq!(out.len(), encoded_len(v), "{v}");
            assert_eq!(decode(&out), Varint::Value(v, out.len()));
            assert!(matches!(decode(&out[..out.len() - 1]), Varint::Incomplete { .. }));
        }
        assert_eq!(decode(&[0xff; 9]), Varint::TooLong);
        assert_eq!(decode(&[0x80, 0x80, 0x80, 0x80]), Varint::Incomplete { partial: 0 });
    }
}
