//! `dist`: where a version's tarball is and how to check it — integrity, shasum, npm's registry
//! signatures, fileCount, unpackedSize (spec §1.3 "`dist` in detail").

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient;

/// The `dist` object of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dist {
    /// The SRI string (`sha512-<base64>`), on publishes since about 2017.
    #[serde(default, deserialize_with = "lenient::string", skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
    /// Hex SHA-1 of the tarball; the only check old versions have.
    #[serde(default, deserialize_with = "lenient::string", skip_serializing_if = "Option::is_none")]
    pub shasum: Option<String>,
    /// Where upstream serves the tarball (a mirror rewrites it to itself).
    #[serde(default, deserialize_with = "lenient::string", skip_serializing_if = "Option::is_none")]
    pub tarball: Option<String>,
    /// How many files the tarball holds.
    #[serde(default, deserialize_with = "lenient::count", skip_serializing_if = "Option::is_none")]
    pub file_count: Option<u64>,
    /// The unpacked size in bytes.
    #[serde(default, deserialize_with = "lenient::count", skip_serializing_if = "Option::is_none")]
    pub unpacked_size: Option<u64>,
    /// npm's ECDSA P-256 signatures over `${name}@${version}:${integrity}`, kept verbatim.
    #[serde(default, deserialize_with = "lenient::any", skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
    /// npm provenance: `{url, provenance: {predicateType}}`, kept verbatim.
    #[serde(default, deserialize_with = "lenient::value", skip_serializing_if = "Option::is_none")]
    pub attestations: Option<Value>,
}

/// One registry signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signing key's id, e.g. `SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U`.
    pub keyid: String,
    /// The base64 DER signature.
    pub sig: String,
}

impl Dist {
    /// The strongest integrity known: `integrity` if present, else `shasum` as an SRI
    /// `sha1-<base64>` string (what npm's lockfile records for such versions).
    pub fn best_integrity(&self) -> Option<String> {
        if let Some(sri) = &self.integrity {
            return Some(sri.clone());
        }
        let hex = self.shasum.as_deref()?;
        let bytes = decode_hex(hex)?;
        Some(format!("sha1-{}", encode_base64(&bytes)))
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Standard base64 with padding. Hand-written (12 lines) to avoid a dependency for one
/// 20-byte conversion.
fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shasum_becomes_sha1_sri() {
        let dist =
            Dist { shasum: Some("574c8138ce1d2b5861f0b44579dbadd60c6615b2".into()), ..Dist::default() };
        assert_eq!(dist.best_integrity().as_deref(), Some("sha1-V0yBOM4dK1hh8LRFedut1gxmFbI="));
        let bad = Dist { shasum: Some("zz".into()), ..Dist::default() };
        assert_eq!(bad.best_integrity(), None);
    }

    #[test]
    fn odd_fields_are_dropped_not_fatal() {
        let dist: Dist = serde_json::from_str(
            r#"{"shasum":"ab","fileCount":"7","signatures":"nope","npm-signature":"x"}"#,
        )
        .unwrap();
        assert_eq!(dist.shasum.as_deref(), Some("ab"));
        assert_eq!(dist.file_count, None);
        assert!(dist.signatures.is_empty());
    }
}
