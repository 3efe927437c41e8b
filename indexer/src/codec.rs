//! Value encoding of the index records: serde structs written with `postcard` (varint
//! integers, length-prefixed strings, no field names), each value prefixed by a one-byte
//! record tag so that a reader can tell a record's kind and format version apart.
//!
//! Compactness comes from what is *not* stored: name and version are in the key, the tarball
//! URL is stored only when it is not the canonical `{upstream}{name}/-/{base}-{version}.tgz`,
//! integrity and shasum are stored as raw digest bytes (64 + 20 bytes instead of 95 + 40
//! characters), registry signatures as raw DER with their key id interned, timestamps in npm's
//! canonical form as milliseconds, dependency maps once per page ([`crate::depmaps`]), and
//! version pages deflate-compressed as a whole.
//! Anything that does not fit the compact form is kept verbatim, so decoding always gives back
//! exactly what was ingested.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// Tags of the record kinds (first byte of every value). Bumping a tag is how a format change
/// is made visible to old readers.
pub(crate) mod tag {
    /// [`crate::records::PackageRecord`], format 1.
    pub(crate) const PACKAGE: u8 = 0x50;
    /// [`crate::records::VersionPage`], format 1, deflate-compressed.
    pub(crate) const PAGE: u8 = 0x56;
    /// [`crate::schema::Checkpoint`], format 1.
    pub(crate) const CHECKPOINT: u8 = 0x43;
}

/// Why a stored value could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value's first byte is not the tag expected for this key.
    #[error("expected a record tagged {expected:#04x}, found {found:?}")]
    WrongTag {
        /// The tag the key implies.
        expected: u8,
        /// The first byte found (`None`: empty value).
        found: Option<u8>,
    },
    /// The body is not a valid record.
    #[error("malformed record: {0}")]
    Malformed(#[from] postcard::Error),
    /// A compressed body does not inflate, or inflates past the cap.
    #[error("the compressed record is corrupt or larger than {MAX_INFLATED} bytes")]
    Inflate,
}

/// The most a compressed record may inflate to: bounds what a hostile peer's block can make
/// us allocate (a page holds at most 64 versions; real ones inflate to a few tens of KB).
pub(crate) const MAX_INFLATED: u64 = 16 << 20;

/// zlib's level for index records: they are written on every install that fetched something,
/// so the cost of writing counts as much as the size (level 6, zlib's default, cost a third of
/// a cold install's recording time for a few percent of size).
const COMPRESSION_LEVEL: u32 = 2;

/// Encode `record` behind its tag, deflate-compressed.
pub(crate) fn encode_compressed<T: Serialize>(tag: u8, record: &T) -> Vec<u8> {
    use std::io::Write as _;
    let plain = postcard::to_allocvec(record).unwrap_or_default();
    let mut z = flate2::write::DeflateEncoder::new(vec![tag], flate2::Compression::new(COMPRESSION_LEVEL));
    // Writing into a Vec cannot fail.
    let _ = z.write_all(&plain);
    z.finish().unwrap_or_default()
}

/// Decode a value written by [`encode_compressed`] with the same tag.
pub(crate) fn decode_compressed<T: serde::de::DeserializeOwned>(
    tag: u8,
    bytes: &[u8],
) -> Result<T, CodecError> {
    use std::io::Read as _;
    let body = match bytes.split_first() {
        Some((&t, body)) if t == tag => body,
        other => return Err(CodecError::WrongTag { expected: tag, found: other.map(|(t, _)| *t) }),
    };
    let mut plain = Vec::new();
    flate2::read::DeflateDecoder::new(body)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut plain)
        .map_err(|_| CodecError::Inflate)?;
    if plain.len() as u64 > MAX_INFLATED {
        return Err(CodecError::Inflate);
    }
    Ok(postcard::from_bytes(&plain)?)
}

/// Encode `record` behind its tag.
pub(crate) fn encode<T: Serialize>(tag: u8, record: &T) -> Vec<u8> {
    let mut out = vec![tag];
    // postcard only fails on sequences of unknown length and on a full fixed buffer; neither
    // happens with owned structs written to a Vec.
    out.extend(postcard::to_allocvec(record).unwrap_or_default());
    out
}

/// Decode a value written by [`encode`] with the same tag.
pub(crate) fn decode<'a, T: Deserialize<'a>>(tag: u8, bytes: &'a [u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        Some((&t, body)) if t == tag => Ok(postcard::from_bytes(body)?),
        other => Err(CodecError::WrongTag { expected: tag, found: other.map(|(t, _)| *t) }),
    }
}

/// An SRI string: a single sha512 digest as raw bytes, or anything else verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Sri {
    Sha512(Vec<u8>),
    Text(String),
}

impl Sri {
    pub(crate) fn pack(s: &str) -> Self {
        if let Some(b64) = s.strip_prefix("sha512-")
            && let Ok(raw) = B64.decode(b64)
            && raw.len() == 64
            && B64.encode(&raw) == b64
        {
            return Self::Sha512(raw);
        }
        Self::Text(s.to_owned())
    }
    pub(crate) fn unpack(&self) -> String {
        match self {
            Self::Sha512(raw) => format!("sha512-{}", B64.encode(raw)),
            Self::Text(s) => s.clone(),
        }
    }
}

/// A hex digest (`shasum`) as raw bytes when it is lowercase hex, else verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Hex {
    Raw(Vec<u8>),
    Text(String),
}

impl Hex {
    pub(crate) fn pack(s: &str) -> Self {
        match hex::decode(s) {
            Ok(raw) if hex::encode(&raw) == s => Self::Raw(raw),
            _ => Self::Text(s.to_owned()),
        }
    }
    pub(crate) fn unpack(&self) -> String {
        match self {
            Self::Raw(raw) => hex::encode(raw),
            Self::Text(s) => s.clone(),
        }
    }
}

/// Base64 bytes (a signature) as raw bytes when the encoding is canonical, else verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum B64Bytes {
    Raw(Vec<u8>),
    Text(String),
}

impl B64Bytes {
    pub(crate) fn pack(s: &str) -> Self {
        match B64.decode(s) {
            Ok(raw) if B64.encode(&raw) == s => Self::Raw(raw),
            _ => Self::Text(s.to_owned()),
        }
    }
    pub(crate) fn unpack(&self) -> String {
        match self {
            Self::Raw(raw) => B64.encode(raw),
            Self::Text(s) => s.clone(),
        }
    }
}

/// npm's registry signing key ids, interned (spec §1.1, `/-/npm/v1/keys`).
const KEY_IDS: [&str; 2] = [
    "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA",
    "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U",
];

/// A signature key id: one of npm's known ids by number, or verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum KeyId {
    Known(u8),
    Text(String),
}

impl KeyId {
    pub(crate) fn pack(s: &str) -> Self {
        match KEY_IDS.iter().position(|k| *k == s) {
            Some(i) => Self::Known(i as u8),
            None => Self::Text(s.to_owned()),
        }
    }
    pub(crate) fn unpack(&self) -> String {
        match self {
            Self::Known(i) => KEY_IDS.get(usize::from(*i)).map_or_else(String::new, |s| (*s).to_owned()),
            Self::Text(s) => s.clone(),
        }
    }
}

/// A timestamp: npm's canonical `YYYY-MM-DDTHH:MM:SS.mmmZ` as milliseconds since the epoch,
/// anything else verbatim ("upstream `time` is kept as is").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Time {
    Millis(i64),
    Text(String),
}

impl Time {
    pub(crate) fn pack(s: &str) -> Self {
        match parse_iso(s) {
            Some(ms) if format_iso(ms) == s => Self::Millis(ms),
            _ => Self::Text(s.to_owned()),
        }
    }
    pub(crate) fn unpack(&self) -> String {
        match self {
            Self::Millis(ms) => format_iso(*ms),
            Self::Text(s) => s.clone(),
        }
    }
}

/// Parse exactly `YYYY-MM-DDTHH:MM:SS.mmmZ`. Hand-written (with [`format_iso`], Howard
/// Hinnant's civil-date algorithm) because only this one fixed form is packed, and a date
/// crate would add weight for no gain; the round-trip check in [`Time::pack`] guards it.
pub(crate) fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}

fn format_iso(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        (rem / 60_000) % 60,
        (rem / 1000) % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_round_trip_and_odd_ones_stay_verbatim() {
        for t in ["2024-12-07T08:03:45.988Z", "1970-01-01T00:00:00.000Z", "2000-02-29T23:59:59.999Z"] {
            assert!(matches!(Time::pack(t), Time::Millis(_)), "{t}");
            assert_eq!(Time::pack(t).unpack(), t);
        }
        for t in ["2024-12-07T08:03:45.988000+00:00", "2024-13-01T00:00:00.000Z", "yesterday"] {
            assert_eq!(Time::pack(t), Time::Text(t.into()), "{t}");
        }
        let sri =
            "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==";
        assert!(matches!(Sri::pack(sri), Sri::Sha512(_)));
        assert_eq!(Sri::pack(sri).unpack(), sri);
        assert_eq!(Sri::pack("sha1-abc sha512-x"), Sri::Text("sha1-abc sha512-x".into()));
        assert!(matches!(Hex::pack("574c8138ce1d2b5861f0b44579dbadd60c6615b2"), Hex::Raw(_)));
        assert_eq!(Hex::pack("ABCD"), Hex::Text("ABCD".into()));
        assert_eq!(KeyId::pack(KEY_IDS[1]), KeyId::Known(1));
        assert_eq!(KeyId::pack("x").unpack(), "x");
    }

    #[test]
    fn wrong_tags_and_garbage_are_errors() {
        let bytes = encode(tag::PACKAGE, &(1u32, "x".to_owned()));
        assert!(matches!(decode::<(u32, String)>(tag::PAGE, &bytes), Err(CodecError::WrongTag { .. })));
        assert!(matches!(
            decode::<(u32, String)>(tag::PACKAGE, &[tag::PACKAGE, 1, 200]),
            Err(CodecError::Malformed(_))
        ));
        assert_eq!(decode::<(u32, String)>(tag::PACKAGE, &bytes).unwrap(), (1, "x".to_owned()));
        let z = encode_compressed(tag::PAGE, &vec!["same".to_owned(); 100]);
        assert!(z.len() < 100);
        assert_eq!(decode_compressed::<Vec<String>>(tag::PAGE, &z).unwrap().len(), 100);
        assert!(matches!(
            decode_compressed::<Vec<String>>(tag::PAGE, &[tag::PAGE, 0xff, 0]),
            Err(CodecError::Inflate)
        ));
    }

    proptest::proptest! {
        #[test]
        fn canonical_times_pack_to_millis_and_back(ms in -62_135_596_800_000i64..253_402_300_799_999i64) {
            let text = format_iso(ms);
            proptest::prop_assert_eq!(parse_iso(&text), Some(ms));
            proptest::prop_assert_eq!(Time::pack(&text), Time::Millis(ms));
        }

        #[test]
        fn any_text_round_trips_verbatim(s in ".{0,40}") {
            proptest::prop_assert_eq!(Time::pack(&s).unpack(), s.clone());
            proptest::prop_assert_eq!(Sri::pack(&s).unpack(), s.clone());
            proptest::prop_assert_eq!(Hex::pack(&s).unpack(), s.clone());
            proptest::prop_assert_eq!(B64Bytes::pack(&s).unpack(), s.clone());
            proptest::prop_assert_eq!(KeyId::pack(&s).unpack(), s);
        }
    }
}
