//! The run-length encoding of `Have.bitfield` (wire spec §8.3; JS `bitfield-rle` with
//! `align(4)`, as hypercore 9's `lib/replicate.js` uses it), byte-identical to JS.
//!
//! The bitfield is MSB first: block *i* is bit `0x80 >> (i & 7)` of byte `i >> 3`. The RLE is
//! a sequence of varints: `n` even = a literal run of `n / 2` bytes follows; `n` odd = `n >> 2`
//! bytes of `0xff` (if `n & 2`) or `0x00`. Trailing zero bytes are not encoded; the decoder
//! pads to a multiple of 4 bytes.
//!
//! Ported by hand (no maintained Rust crate implements this format); the encoder keeps JS's
//! cost rule so that our `Have` messages match JS's byte for byte. Unlike JS, the decoder is
//! bounded: a peer can declare a run of 2^54 bytes in 8 bytes, so the total is checked against
//! the caller's limit before anything is allocated.

use super::varint::{self, Varint};

/// A `Have.bitfield` that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RleError {
    /// A run header is not a valid varint.
    #[error("bitfield RLE: malformed varint")]
    BadVarint,
    /// A literal run extends past the end of the input.
    #[error("bitfield RLE: literal run past the end")]
    Truncated,
    /// The decoded bitfield would exceed the limit.
    #[error("bitfield RLE decodes to more than {max} bytes")]
    TooLong {
        /// The caller's limit.
        max: usize,
    },
}

/// Encodes a bitfield (bytes, MSB first) as JS's `bitfield-rle` does.
pub fn encode(bitfield: &[u8]) -> Vec<u8> {
    let mut input_len = bitfield.len();
    while input_len > 0 && bitfield[input_len - 1] == 0 {
        input_len -= 1;
    }
    let mut enc = Encoder { input: &bitfield[..input_len], offset: 0, out: Vec::new() };
    let mut len = 0usize;
    let mut bits = 0u8;
    for (i, &byte) in bitfield[..input_len].iter().enumerate() {
        if byte == bits {
            len += 1;
            continue;
        }
        if len > 0 {
            enc.update(i, len, bits);
        }
        if byte == 0 || byte == 0xff {
            bits = byte;
            len = 1;
        } else {
            len = 0;
        }
    }
    if len > 0 {
        enc.update(input_len, len, bits);
    }
    enc.finish()
}

struct Encoder<'a> {
    input: &'a [u8],
    /// Input bytes before this are already encoded.
    offset: usize,
    out: Vec<u8>,
}

impl Encoder<'_> {
    fn head(&mut self, end: usize) {
        let head = &self.input[self.offset..end];
        varint::encode(2 * head.len() as u64, &mut self.out);
        self.out.extend_from_slice(head);
    }

    /// A run of `len` bytes equal to `bit` ends at `i`: encode it as a repeat if that is
    /// strictly cheaper than leaving it in a literal (JS `encodeUpdate`).
    fn update(&mut self, i: usize, len: usize, bit: u8) {
        let head_len = i - len - self.offset;
        let head_cost = if head_len > 0 { varint::encoded_len(2 * head_len as u64) + head_len } else { 0 };
        let run = 4 * len as u64 + if bit != 0 { 2 } else { 0 } + 1;
        let enc_cost = head_cost + varint::encoded_len(run);
        let base_cost = varint::encoded_len(2 * (i - self.offset) as u64) + i - self.offset;
        if enc_cost >= base_cost {
            return;
        }
        if head_len > 0 {
            self.head(i - len);
        }
        varint::encode(run, &mut self.out);
        self.offset = i;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.offset < self.input.len() {
            self.head(self.input.len());
        }
        self.out
    }
}

/// One run of the encoding.
enum Run<'a> {
    Literal(&'a [u8]),
    Repeat(u8, usize),
}

/// Walks the runs of `rle`, calling `f` with each.
fn runs<'a>(mut rle: &'a [u8], mut f: impl FnMut(Run<'a>) -> Result<(), RleError>) -> Result<(), RleError> {
    while !rle.is_empty() {
        let Varint::Value(next, n) = varint::decode(rle) else { return Err(RleError::BadVarint) };
        rle = &rle[n..];
        if next & 1 == 1 {
            let len = usize::try_from(next >> 2).map_err(|_| RleError::TooLong { max: usize::MAX })?;
            f(Run::Repeat(if next & 2 != 0 { 0xff } else { 0 }, len))?;
        } else {
            let len = usize::try_from(next / 2).map_err(|_| RleError::Truncated)?;
            let literal = rle.get(..len).ok_or(RleError::Truncated)?;
            rle = &rle[len..];
            f(Run::Literal(literal))?;
        }
    }
    Ok(())
}

/// Decodes `rle` into at most `max_len` bytes (checked before allocating), padded with
/// zeros to a multiple of 4 as JS's `align(4)` does.
pub fn decode(rle: &[u8], max_len: usize) -> Result<Vec<u8>, RleError> {
    let mut total = 0usize;
    runs(rle, |run| {
        let len = match run {
            Run::Literal(bytes) => bytes.len(),
            Run::Repeat(_, len) => len,
        };
        total = total.checked_add(len).filter(|t| *t <= max_len).ok_or(RleError::TooLong { max: max_len })?;
        Ok(())
    })?;
    let padded = total.next_multiple_of(4);
    let mut out = Vec::with_capacity(padded);
    runs(rle, |run| {
        match run {
            Run::Literal(bytes) => out.extend_from_slice(bytes),
            Run::Repeat(byte, len) => out.resize(out.len() + len, byte),
        }
        Ok(())
    })?;
    out.resize(padded, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_and_runs() {
        assert_eq!(encode(&[0xf8]), [0x02, 0xf8]);
        assert_eq!(decode(&[0x02, 0xf8], 16), Ok(vec![0xf8, 0, 0, 0]));
        assert_eq!(encode(&[]), Vec::<u8>::new());
        assert_eq!(encode(&[0, 0, 0]), Vec::<u8>::new());
        // 100 bytes of 0xff: one repeat run, 4*100+2+1 = 403 = varint 93 03.
        assert_eq!(encode(&[0xff; 100]), [0x93, 0x03]);
        assert_eq!(decode(&[0x93, 0x03], 100), Ok(vec![0xff; 100]));
    }

    #[test]
    fn hostile_input_is_bounded() {
        // A repeat run of 2^40 bytes declared in 6 bytes.
        let mut huge = Vec::new();
        varint::encode((1u64 << 42) | 1, &mut huge);
        assert_eq!(decode(&huge, 1 << 20), Err(RleError::TooLong { max: 1 << 20 }));
        assert_eq!(decode(&[0x08, 1, 2], 64), Err(RleError::Truncated));
        assert_eq!(decode(&[0xff; 9], 64), Err(RleError::BadVarint));
    }
}
