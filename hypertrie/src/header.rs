//! The header block, block 0 of every hypertrie feed (spec §6.2).

use crate::error::DecodeError;
use crate::protobuf::{self, put_bytes};

/// The `type` every hypertrie header carries.
pub const HYPERTRIE_TYPE: &str = "hypertrie";

/// The decoded header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The data-structure type: `"hypertrie"` for tries this crate writes.
    pub kind: String,
    /// Free-form metadata given when the trie was created.
    pub metadata: Option<Vec<u8>>,
    /// An application-defined subtype.
    pub subtype: Option<String>,
}

impl Header {
    /// A hypertrie header with optional metadata and subtype.
    pub fn new(metadata: Option<Vec<u8>>, subtype: Option<String>) -> Self {
        Self { kind: HYPERTRIE_TYPE.to_owned(), metadata, subtype }
    }

    /// Encode as JS does: fields in number order, absent ones left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.kind.len());
        put_bytes(1, self.kind.as_bytes(), &mut out);
        if let Some(m) = &self.metadata {
            put_bytes(2, m, &mut out);
        }
        if let Some(s) = &self.subtype {
            put_bytes(3, s.as_bytes(), &mut out);
        }
        out
    }

    /// Decode a header block. `type` is required; unknown fields are skipped.
    pub fn decode(block: &[u8]) -> Result<Self, DecodeError> {
        let (mut kind, mut metadata, mut subtype) = (None, None, None);
        for field in protobuf::fields(block) {
            let (number, value) = field?;
            match number {
                1 => kind = Some(utf8(protobuf::bytes(1, value)?, "type")?),
                2 => metadata = Some(protobuf::bytes(2, value)?.to_vec()),
                3 => subtype = Some(utf8(protobuf::bytes(3, value)?, "subtype")?),
                _ => {}
            }
        }
        let kind = kind.ok_or(DecodeError::MissingField("type"))?;
        Ok(Self { kind, metadata, subtype })
    }
}

fn utf8(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_header_bytes() {
        let h = Header::new(None, None);
        assert_eq!(h.encode(), b"\x0a\x09hypertrie");
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn missing_type_is_an_error() {
        assert_eq!(Header::decode(b"\x12\x01x"), Err(DecodeError::MissingField("type")));
        assert_eq!(Header::decode(b"\x0a\x05hy"), Err(DecodeError::Truncated));
    }
}
