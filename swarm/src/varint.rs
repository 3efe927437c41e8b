//! Unsigned LEB128 varints as used by hypercore-protocol v8 framing (wire spec §1).
//!
//! Hand-written (20 lines) rather than pulling a protobuf crate into `swarm` for one length
//! prefix and one payload field.

/// Appends `value` as a varint to `out`.
pub(crate) fn encode(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Outcome of decoding a varint at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Varint {
    /// The value and how many bytes it took.
    Value(u64, usize),
    /// The buffer ends inside the varint.
    Incomplete,
    /// More than 8 bytes (JS rejects those; values stay below 2^56).
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
    if buf.len() >= 8 { Varint::TooLong } else { Varint::Incomplete }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_limits() {
        for v in [0u64, 1, 127, 128, 300, 65535, 1 << 20, (1 << 56) - 1] {
            let mut out = Vec::new();
            encode(v, &mut out);
            assert_eq!(decode(&out), Varint::Value(v, out.len()));
            assert_eq!(decode(&out[..out.len() - 1]), Varint::Incomplete);
        }
        assert_eq!(decode(&[0x80; 9]), Varint::TooLong);
        assert_eq!(decode(&[0x3a]), Varint::Value(58, 1));
    }
}
