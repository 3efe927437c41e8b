//! npm registry signatures (spec `npm-registry-and-installers.md` §5.2): the registry signs
//! `${name}@${version}:${integrity}` with ECDSA P-256 and publishes its public keys at
//! `/-/npm/v1/keys`. A version's signature is checked against the key of the same id, and
//! only if that key had not expired when the version was published — as pacote does for
//! `npm audit signatures`.
//!
//! The P-256 check is `ring`'s (already in the tree through rustls), not hand-written.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::model::Signature;

/// DER prefix of a P-256 SubjectPublicKeyInfo (`id-ecPublicKey`, `prime256v1`, then the
/// uncompressed point in a BIT STRING): what `/-/npm/v1/keys` carries, base64, as `key`.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// One registry signing key, as `/-/npm/v1/keys` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryKey {
    /// `SHA256:<base64>`: what signatures name.
    pub keyid: String,
    /// `ecdsa-sha2-nistp256`.
    #[serde(default)]
    pub keytype: String,
    /// `ecdsa-sha2-nistp256`.
    #[serde(default)]
    pub scheme: String,
    /// Base64 DER SubjectPublicKeyInfo.
    pub key: String,
    /// When the key stopped being valid (ISO 8601), if it did.
    #[serde(default)]
    pub expires: Option<String>,
}

/// The registry's key set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryKeys {
    /// The keys.
    pub keys: Vec<RegistryKey>,
}

/// The `/-/npm/v1/keys` document is not what npm serves.
#[derive(Debug, thiserror::Error)]
#[error("the registry's key set is not valid: {0}")]
pub struct KeysError(String);

/// What checking one version's signatures found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Every signature verified against a key valid at publish time.
    Verified,
    /// The version carries no signature, though the registry has keys.
    Missing,
    /// A signature does not verify, names no known key, or its key had expired.
    Invalid {
        /// The signature's key id.
        keyid: String,
        /// Why.
        reason: String,
    },
}

impl RegistryKeys {
    /// Parse the `/-/npm/v1/keys` document.
    pub fn parse(doc: &serde_json::Value) -> Result<Self, KeysError> {
        let keys: RegistryKeys = serde_json::from_value(doc.clone()).map_err(|e| KeysError(e.to_string()))?;
        for k in &keys.keys {
            p256_point(&k.key)
                .ok_or_else(|| KeysError(format!("key {} is not a P-256 public key", k.keyid)))?;
        }
        Ok(keys)
    }

    /// Check `name@version`'s signatures over `integrity`; `published` is `time[version]`.
    pub fn check(
        &self,
        name: &str,
        version: &str,
        integrity: &str,
        signatures: &[Signature],
        published: Option<&str>,
    ) -> SignatureCheck {
        if signatures.is_empty() {
            return SignatureCheck::Missing;
        }
        let message = format!("{name}@{version}:{integrity}");
        for sig in signatures {
            let invalid = |reason: String| SignatureCheck::Invalid { keyid: sig.keyid.clone(), reason };
            let Some(key) = self.keys.iter().find(|k| k.keyid == sig.keyid) else {
                return invalid(format!("no registry key has the id {}", sig.keyid));
            };
            // ISO 8601 UTC timestamps compare in time order as strings.
            if let (Some(expires), Some(published)) = (&key.expires, published)
                && published >= expires.as_str()
            {
                return invalid(format!("published {published}, after its key expired ({expires})"));
            }
            let Some(point) = p256_point(&key.key) else {
                return invalid("the registry key is not a P-256 public key".to_owned());
            };
            let Ok(der) = base64::engine::general_purpose::STANDARD.decode(sig.sig.trim()) else {
                return invalid("the signature is not base64".to_owned());
            };
            let verifier =
                ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point);
            if verifier.verify(message.as_bytes(), &der).is_err() {
                return invalid(format!("the signature does not match {message}"));
            }
        }
        SignatureCheck::Verified
    }
}

/// The uncompressed point of a base64 P-256 SubjectPublicKeyInfo.
fn p256_point(spki_b64: &str) -> Option<Vec<u8>> {
    let der = base64::engine::general_purpose::STANDARD.decode(spki_b64.trim()).ok()?;
    let point = der.strip_prefix(&P256_SPKI_PREFIX[..])?;
    (point.len() == 65 && point[0] == 0x04).then(|| point.to_vec())
}

/// The base64 SubjectPublicKeyInfo of an uncompressed P-256 point (for test registries that
/// sign with their own key).
pub fn p256_spki_base64(point: &[u8]) -> String {
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point);
    base64::engine::general_purpose::STANDARD.encode(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public registry's current key (spec §1.1, `/-/npm/v1/keys`) and the signature it
    /// published for `is-number@7.0.0`.
    const NPM_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g==";

    #[test]
    fn the_registry_key_parses_and_a_foreign_signature_is_invalid() {
        let keys = RegistryKeys::parse(&serde_json::json!({"keys": [{
            "keyid": "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U",
            "keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256",
            "key": NPM_KEY, "expires": null
        }]}))
        .unwrap();
        let sig = Signature { keyid: keys.keys[0].keyid.clone(), sig: "MEUCIQ==".into() };
        assert!(matches!(keys.check("a", "1.0.0", "sha512-x", &[sig], None), SignatureCheck::Invalid { .. }));
        assert_eq!(keys.check("a", "1.0.0", "sha512-x", &[], None), SignatureCheck::Missing);
        let other = Signature { keyid: "SHA256:other".into(), sig: "MEUCIQ==".into() };
        assert!(matches!(
            keys.check("a", "1.0.0", "sha512-x", &[other], None),
            SignatureCheck::Invalid { .. }
        ));
        assert!(RegistryKeys::parse(&serde_json::json!({"keys": [{"keyid": "k", "key": "AAAA"}]})).is_err());
    }

    #[test]
    fn a_signature_made_after_the_key_expired_is_invalid_and_a_good_one_verifies() {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let key = RegistryKey {
            keyid: "SHA256:test".into(),
            keytype: "ecdsa-sha2-nistp256".into(),
            scheme: "ecdsa-sha2-nistp256".into(),
            key: p256_spki_base64(pair.public_key().as_ref()),
            expires: Some("2025-01-29T00:00:00.000Z".into()),
        };
        let keys = RegistryKeys { keys: vec![key] };
        let sig = pair.sign(&rng, b"a@1.0.0:sha512-x").unwrap();
        let sig = Signature {
            keyid: "SHA256:test".into(),
            sig: base64::engine::general_purpose::STANDARD.encode(sig.as_ref()),
        };
        let check = |published| keys.check("a", "1.0.0", "sha512-x", std::slice::from_ref(&sig), published);
        assert_eq!(check(Some("2024-06-01T00:00:00.000Z")), SignatureCheck::Verified);
        assert!(matches!(check(Some("2025-02-01T00:00:00.000Z")), SignatureCheck::Invalid { .. }));
        assert!(matches!(
            keys.check("a", "1.0.1", "sha512-x", std::slice::from_ref(&sig), None),
            SignatureCheck::Invalid { .. }
        ));
    }
}
