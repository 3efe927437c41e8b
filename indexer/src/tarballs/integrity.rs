//! Subresource Integrity strings (`sha512-<base64>`) and a hasher that checks them while bytes
//! stream past (spec `npm-registry-and-installers.md` §5.1 rule 7, §5.2).
//!
//! Hand-written rather than the `ssri` crate: we need only parsing, the strongest-algorithm
//! choice and a streaming check, and `ssri` pulls in miette, serde and xxhash as well.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::Digest as _;

/// A hash algorithm an SRI string can name, weakest first (the derive order is the strength
/// order used to pick which hash to check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// SHA-1: npm's legacy `dist.shasum`. Accepted only when nothing stronger is known.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512: what npm publishes in `dist.integrity` since about 2017.
    Sha512,
}

impl Algorithm {
    /// The SRI prefix (`sha512`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// One `algorithm-digest` pair of an SRI string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hash {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The raw digest bytes (length checked against the algorithm).
    pub digest: Vec<u8>,
}

impl Hash {
    /// The digest as lowercase hex (used for store paths).
    pub fn hex(&self) -> String {
        hex::encode(&self.digest)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.algorithm.name(), STANDARD.encode(&self.digest))
    }
}

/// A parsed integrity value: every hash of the strongest supported algorithm it names.
///
/// SRI allows several hashes; like `ssri` we keep only the strongest algorithm present (hashes
/// in unknown algorithms are ignored), and content matches when it equals any of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Integrity {
    hashes: Vec<Hash>,
}

/// Why an integrity string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityParseError {
    /// No `algorithm-base64` pair in a supported algorithm.
    #[error("integrity {value:?} names no sha512, sha384, sha256 or sha1 hash")]
    NoSupportedHash {
        /// The string as given (cut to 200 characters).
        value: String,
    },
    /// A supported algorithm with a digest that is not base64 of the right length.
    #[error("integrity {value:?} has a malformed {algorithm} digest")]
    BadDigest {
        /// The string as given (cut to 200 characters).
        value: String,
        /// The algorithm whose digest is bad.
        algorithm: &'static str,
    },
    /// A `shasum` that is not 40 hex digits.
    #[error("shasum {value:?} is not 40 hex digits")]
    BadShasum {
        /// The string as given (cut to 200 characters).
        value: String,
    },
}

fn cut(s: &str) -> String {
    s.chars().take(200).collect()
}

impl Integrity {
    /// Integrity from npm's legacy `dist.shasum` (hex SHA-1).
    pub fn from_shasum(hex_sha1: &str) -> Result<Self, IntegrityParseError> {
        let bad = || IntegrityParseError::BadShasum { value: cut(hex_sha1) };
        let digest = hex::decode(hex_sha1.trim()).map_err(|_| bad())?;
        if digest.len() != 20 {
            return Err(bad());
        }
        Ok(Integrity { hashes: vec![Hash { algorithm: Algorithm::Sha1, digest }] })
    }

    /// Integrity of `bytes` in one algorithm.
    pub fn of_bytes(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        Integrity { hashes: vec![hasher.finish()] }
    }

    /// The algorithm that will be checked.
    pub fn algorithm(&self) -> Algorithm {
        // Parsing guarantees at least one hash.
        self.hashes.first().map_or(Algorithm::Sha512, |h| h.algorithm)
    }

    /// The hashes that content may match (all in [`Integrity::algorithm`]).
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The first hash. Not a store key: content is stored under the hash it was verified
    /// against (see [`TarballStore`](super::TarballStore)), which may be any of [`Self::hashes`].
    pub fn primary(&self) -> &Hash {
        // Invariant: `hashes` is never empty (constructors ensure it).
        &self.hashes[0]
    }

    /// A fresh hasher for this integrity's algorithm.
    pub fn hasher(&self) -> Hasher {
        Hasher::new(self.algorithm())
    }

    /// Whether a computed hash matches one of ours (ssri's rule: only hashes in the strongest
    /// algorithm listed count, and content need match just one of them).
    pub fn matches(&self, computed: &Hash) -> bool {
        self.hashes.iter().any(|h| h == computed)
    }
}

impl From<Hash> for Integrity {
    fn from(hash: Hash) -> Self {
        Integrity { hashes: vec![hash] }
    }
}

impl FromStr for Integrity {
    type Err = IntegrityParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut best: Option<Algorithm> = None;
        let mut hashes = Vec::new();
        for token in value.split_ascii_whitespace() {
            let Some((alg, rest)) = token.split_once('-') else { continue };
            let Some(algorithm) = Algorithm::from_name(alg) else { continue };
            // SRI options follow a `?`; they carry nothing we use.
            let b64 = rest.split('?').next().unwrap_or("");
            let digest =
                STANDARD.decode(b64).ok().filter(|d| d.len() == algorithm.digest_len()).ok_or_else(|| {
                    IntegrityParseError::BadDigest { value: cut(value), algorithm: algorithm.name() }
                })?;
            match best {
                Some(b) if b > algorithm => continue,
                Some(b) if b < algorithm => hashes.clear(),
                _ => {}
            }
            best = Some(algorithm);
            hashes.push(Hash { algorithm, digest });
        }
        if hashes.is_empty() {
            return Err(IntegrityParseError::NoSupportedHash { value: cut(value) });
        }
        Ok(Integrity { hashes })
    }
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, h) in self.hashes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{h}")?;
        }
        Ok(())
    }
}

/// An incremental hasher in one algorithm: feed it the bytes as they stream by.
#[derive(Debug, Clone)]
pub struct Hasher(Inner);

#[derive(Debug, Clone)]
enum Inner {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        Hasher(match algorithm {
            Algorithm::Sha1 => Inner::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Inner::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Inner::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Inner::Sha512(sha2::Sha512::new()),
        })
    }

    /// Feed more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            Inner::Sha1(h) => h.update(bytes),
            Inner::Sha256(h) => h.update(bytes),
            Inner::Sha384(h) => h.update(bytes),
            Inner::Sha512(h) => h.update(bytes),
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(self) -> Hash {
        let (algorithm, digest) = match self.0 {
            Inner::Sha1(h) => (Algorithm::Sha1, h.finalize().to_vec()),
            Inner::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Inner::Sha384(h) => (Algorithm::Sha384, h.finalize().to_vec()),
            Inner::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Hash { algorithm, digest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sha512() {
        let s =
            "sha512-GYrCADwpu6yV5OAvchkQ27Z5wwMxWAEMg5NNWjyHh/5DboFFqbdbvYNIvZouQpxXyeMPoTOh0vdPYKlf0ZswdQ==";
        let i: Integrity = s.parse().unwrap();
        assert_eq!(i.algorithm(), Algorithm::Sha512);
        assert_eq!(i.to_string(), s);
    }

    #[test]
    fn keeps_strongest_algorithm_only() {
        let one = Integrity::of_bytes(Algorithm::Sha1, b"x").to_string();
        let five = Integrity::of_bytes(Algorithm::Sha512, b"x").to_string();
        let i: Integrity = format!("{one} {five}?opt unknown-abc").parse().unwrap();
        assert_eq!(i.algorithm(), Algorithm::Sha512);
        assert_eq!(i.hashes().len(), 1);
        assert!(i.matches(&Integrity::of_bytes(Algorithm::Sha512, b"x").hashes()[0]));
    }

    #[test]
    fn refuses_bad_strings() {
        assert!(matches!("md5-abc".parse::<Integrity>(), Err(IntegrityParseError::NoSupportedHash { .. })));
        assert!(matches!("sha512-AAAA".parse::<Integrity>(), Err(IntegrityParseError::BadDigest { .. })));
        assert!(Integrity::from_shasum("zz").is_err());
    }

    #[test]
    fn shasum_matches_sha1() {
        let i = Integrity::from_shasum("a9993e364706816aba3e25717850c26c9cd0d89d").unwrap();
        let mut h = i.hasher();
        h.update(b"abc");
        assert!(i.matches(&h.finish()));
    }
}
