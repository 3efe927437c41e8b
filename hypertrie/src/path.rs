//! Key hashes and trie paths: SipHash-2-4 of each component, read as base-4 digits (spec §6.5).

use std::fmt;
use std::sync::Arc;

use siphasher::sip::SipHasher24;

use crate::key;

/// A user hash function: normalised key in, hash bytes out.
pub type CustomHash = dyn Fn(&str) -> Vec<u8> + Send + Sync;

/// How a key is hashed into its path.
///
/// Always [`KeyHash::SipHash`] for real tries; [`KeyHash::Custom`] exists to reproduce the JS
/// `opts.hash` hook, which is only used to force collisions in tests. A trie written with a custom
/// hash can only be read with the same hash.
#[derive(Clone, Default)]
pub enum KeyHash {
    /// SipHash-2-4 with a zero key over each component, 8 bytes per component (the standard).
    #[default]
    SipHash,
    /// A user function from the normalised key to its hash bytes (any length).
    Custom(Arc<CustomHash>),
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SipHash => f.write_str("SipHash"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl KeyHash {
    /// The hash of a normalised key.
    pub fn hash(&self, key: &str) -> Vec<u8> {
        match self {
            Self::SipHash => {
                let mut out = Vec::with_capacity(16);
                for component in key::split(key) {
                    out.extend_from_slice(&siphash24(component.as_bytes()));
                }
                out
            }
            Self::Custom(f) => f(key),
        }
    }
}

/// SipHash-2-4 with 16 zero key bytes, as libsodium's `crypto_shorthash` serialises it
/// (little-endian).
pub fn siphash24(bytes: &[u8]) -> [u8; 8] {
    SipHasher24::new_with_keys(0, 0).hash(bytes).to_le_bytes()
}

/// Whether position `i` is the last digit of a component, where a full 64-bit hash collision is
/// possible and component strings are compared.
pub(crate) fn is_terminator(i: usize) -> bool {
    i > 0 && i.is_multiple_of(32)
}

/// A normalised key with its hash: everything a walk through the trie needs to compare paths.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyPath {
    key: Box<str>,
    hash: Box<[u8]>,
    hidden: bool,
}

impl fmt::Debug for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPath").field("key", &self.key).field("hidden", &self.hidden).finish()
    }
}

impl KeyPath {
    /// The path of `key` (normalised here), in the hidden or the visible sub-tree.
    pub(crate) fn new(key: &str, hidden: bool, hasher: &KeyHash) -> Self {
        let key = key::normalize(key);
        Self { hash: hasher.hash(key).into(), key: key.into(), hidden }
    }

    /// The normalised key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The hash bytes the path is read from.
    #[cfg(test)]
    pub(crate) fn hash(&self) -> &[u8] {
        &self.hash
    }

    /// The number of path positions: `4 * hash length + 2`.
    pub(crate) fn len(&self) -> usize {
        self.hash.len() * 4 + 2
    }

    /// The digit (0..=4) at position `i`: the hidden bit, then 2-bit groups of the hash read from
    /// the least-significant bits of each byte, then 4 ("the key ends here").
    #[inline]
    pub(crate) fn digit(&self, i: usize) -> usize {
        if i == 0 {
            return usize::from(self.hidden);
        }
        let j = i - 1;
        match self.hash.get(j >> 2) {
            Some(byte) => usize::from((byte >> (2 * (j & 3))) & 3),
            None => 4,
        }
    }

    /// Whether two keys whose paths agree up to `i` are nevertheless different there (JS
    /// `Node.collides`): at the last position the whole keys are compared, elsewhere the component
    /// that position belongs to.
    pub(crate) fn collides(&self, other: &KeyPath, i: usize) -> bool {
        if i == 0 {
            return false;
        }
        if i == self.len() - 1 {
            return self.key != other.key;
        }
        let j = (i - 1) / 32;
        match (key::component(&self.key, j), key::component(&other.key, j)) {
            (Some(a), Some(b)) => a != b,
            // JS compares `undefined` with a string, or two `undefined`s (equal).
            (None, None) => false,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_matches_spec_examples() {
        assert_eq!(siphash24(b"a"), [0x49, 0xa2, 0x93, 0xcd, 0x60, 0x08, 0xc2, 0x96]);
        assert_eq!(siphash24(b""), [0xd7, 0x00, 0x77, 0x73, 0x9d, 0x4b, 0x92, 0x1e]);
    }

    #[test]
    fn path_of_a() {
        let p = KeyPath::new("a", false, &KeyHash::SipHash);
        assert_eq!(p.len(), 34);
        let digits: Vec<usize> = (0..p.len()).map(|i| p.digit(i)).collect();
        assert_eq!(&digits[..9], &[0, 1, 2, 0, 1, 2, 0, 2, 2]);
        assert_eq!(digits[33], 4);
        let hidden = KeyPath::new("a", true, &KeyHash::SipHash);
        assert_eq!(hidden.digit(0), 1);
    }

    #[test]
    fn terminators_and_collisions() {
        assert!(!is_terminator(0));
        assert!(is_terminator(32) && is_terminator(64) && !is_terminator(33));
        let h = KeyHash::SipHash;
        let a = KeyPath::new("x/a", false, &h);
        let b = KeyPath::new("x/b", false, &h);
        assert!(!a.collides(&b, 32), "same first component");
        assert!(a.collides(&b, 64), "second components differ");
        assert!(a.collides(&KeyPath::new("x/a/", false, &h), a.len() - 1), "whole key differs");
        assert!(!a.collides(&b, 0));
    }
}
