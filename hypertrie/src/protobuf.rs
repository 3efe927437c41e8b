//! The few protobuf wire-format pieces the header and node messages use (spec §6.2, §6.3).
//!
//! Hand-written rather than generated with prost: the output must be byte-identical to JS
//! `protocol-buffers` (fields in number order, `flags` written even when 0, an absent value distinct
//! from an empty one), and decoding borrows from the block instead of copying every field.

use crate::error::DecodeError;
use crate::varint;

/// One field's payload.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire types 1 and 5, skipped.
    Fixed,
}

/// Iterate the fields of a message: `(field number, value)`.
pub(crate) fn fields(mut buf: &[u8]) -> impl Iterator<Item = Result<(u64, Value<'_>), DecodeError>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        Some(next_field(&mut buf).inspect_err(|_| buf = &[]))
    })
}

fn next_field<'a>(buf: &mut &'a [u8]) -> Result<(u64, Value<'a>), DecodeError> {
    let prefix = varint::decode(buf)?;
    let field = prefix >> 3;
    let wire_type = (prefix & 7) as u8;
    let value = match wire_type {
        0 => Value::Varint(varint::decode(buf)?),
        2 => {
            let len = varint::decode(buf)?;
            let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
            if len > buf.len() {
                return Err(DecodeError::Truncated);
            }
            let (bytes, rest) = buf.split_at(len);
            *buf = rest;
            Value::Bytes(bytes)
        }
        1 | 5 => {
            let len = if wire_type == 1 { 8 } else { 4 };
            if len > buf.len() {
                return Err(DecodeError::Truncated);
            }
            *buf = &buf[len..];
            Value::Fixed
        }
        _ => return Err(DecodeError::WireType { field, wire_type }),
    };
    Ok((field, value))
}

/// Expect a length-delimited payload for `field`.
pub(crate) fn bytes(field: u64, value: Value<'_>) -> Result<&[u8], DecodeError> {
    match value {
        Value::Bytes(b) => Ok(b),
        Value::Varint(_) => Err(DecodeError::WireType { field, wire_type: 0 }),
        Value::Fixed => Err(DecodeError::WireType { field, wire_type: 1 }),
    }
}

/// Expect a varint payload for `field`.
pub(crate) fn uint(field: u64, value: Value<'_>) -> Result<u64, DecodeError> {
    match value {
        Value::Varint(n) => Ok(n),
        Value::Bytes(_) => Err(DecodeError::WireType { field, wire_type: 2 }),
        Value::Fixed => Err(DecodeError::WireType { field, wire_type: 1 }),
    }
}

/// Append a length-delimited field.
pub(crate) fn put_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint::encode(field << 3 | 2, out);
    varint::encode(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Append a varint field.
pub(crate) fn put_uint(field: u64, n: u64, out: &mut Vec<u8>) {
    varint::encode(field << 3, out);
    varint::encode(n, out);
}
