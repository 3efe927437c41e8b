//! Ed25519 key pairs in libsodium's layout and signatures over the signable (spec §1.1, §1.3).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::hash::Signable;

/// A malformed key or signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The input has the wrong number of bytes.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// Which kind of key.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// The input is not valid hex.
    #[error("{what}: invalid hex")]
    Hex {
        /// Which kind of key.
        what: &'static str,
    },
    /// The bytes are not a valid Ed25519 public key (not a curve point).
    #[error("public key {0} is not a valid Ed25519 point")]
    InvalidPoint(String),
    /// The operating system could not supply random bytes for a new key.
    #[error("operating system entropy source unavailable")]
    Entropy,
    /// The secret key's public half does not match the public key derived from its seed.
    #[error("secret key does not match its public key")]
    Mismatch,
}

/// A feed's 32-byte Ed25519 public key; also the feed's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parse 32 bytes. Checks the length only; [`PublicKey::verifier`] checks the point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
            what: "public key",
            expected: 32,
            got: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A prepared verifier (decompresses the point once).
    pub fn verifier(&self) -> Result<Verifier, KeyError> {
        VerifyingKey::from_bytes(&self.0)
            .map(|key| Verifier { key })
            .map_err(|_| KeyError::InvalidPoint(self.to_hex()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(s).map_err(|_| KeyError::Hex { what: "public key" })?;
        Self::from_bytes(&bytes)
    }
}

/// The 64-byte libsodium secret key: `seed (32) ‖ public key (32)`.
#[derive(Clone)]
pub struct SecretKey([u8; 64]);

impl SecretKey {
    /// Parse 64 bytes and check that the public half matches the seed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 64] = bytes.try_into().map_err(|_| KeyError::Length {
            what: "secret key",
            expected: 64,
            got: bytes.len(),
        })?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&arr[..32]);
        let derived = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        if derived[..] != arr[32..] {
            return Err(KeyError::Mismatch);
        }
        Ok(Self(arr))
    }

    /// The raw 64 bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&self.0[32..]);
        PublicKey(pk)
    }

    /// A prepared signer.
    pub fn signer(&self) -> Signer {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&self.0[..32]);
        Signer { key: SigningKey::from_bytes(&seed) }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A public key with its secret key.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The public key (the feed's identity).
    pub public: PublicKey,
    /// The secret key (libsodium layout).
    pub secret: SecretKey,
}

impl KeyPair {
    /// A fresh random key pair (seed from the operating system).
    ///
    /// # Panics
    ///
    /// If the operating system has no entropy source at all; see [`KeyPair::try_generate`].
    pub fn generate() -> Self {
        #[allow(clippy::expect_used)]
        Self::try_generate().expect("operating system entropy source unavailable")
    }

    /// A fresh random key pair, or an error if the OS cannot supply randomness.
    pub fn try_generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| KeyError::Entropy)?;
        Ok(Self::from_seed(&seed))
    }

    /// The deterministic key pair of a 32-byte seed (libsodium `crypto_sign_seed_keypair`).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let public = signing.verifying_key().to_bytes();
        let mut secret = [0u8; 64];
        secret[..32].copy_from_slice(seed);
        secret[32..].copy_from_slice(&public);
        Self { public: PublicKey(public), secret: SecretKey(secret) }
    }
}

/// A 64-byte Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Parse 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 64] = bytes.try_into().map_err(|_| KeyError::Length {
            what: "signature",
            expected: 64,
            got: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

/// A prepared Ed25519 signing key.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// Sign the 40-byte signable (deterministic, byte-identical to libsodium).
    pub fn sign(&self, signable: &Signable) -> Signature {
        Signature(self.key.sign(signable).to_bytes())
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(..)")
    }
}

/// A prepared Ed25519 verifying key.
#[derive(Clone, Copy, Debug)]
pub struct Verifier {
    key: VerifyingKey,
}

impl Verifier {
    /// True if `signature` signs `signable`, or (legacy, hypercore <= 7) its first 32 bytes.
    pub fn verify(&self, signable: &Signable, signature: &Signature) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        // verify_strict rejects small-order keys and malleable signatures, as libsodium does.
        self.key.verify_strict(signable, &sig).is_ok()
            || self.key.verify_strict(&signable[..32], &sig).is_ok()
    }
}
