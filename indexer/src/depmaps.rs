//! Dependency maps stored once: a version's runtime dependency maps travel together as one
//! [`DepBundle`], and its `devDependencies` as another. A bundle whose encoding is small is
//! kept inline in the version record; a larger one is stored under `d/<id>`, where the id is
//! the first 16 bytes of the SHA-256 of its encoding, so every version (of any package) with
//! the same maps points at one value. Consecutive versions of a package usually share their
//! maps, which is where most of the index's saving over JSON comes from.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::codec::{self, tag};
use crate::model::{BundleDependencies, DepMap, Manifest};

/// Bundles at most this many encoded bytes are stored inline: a reference costs 17 bytes in
/// the record plus a whole trie node and a second lookup.
pub(crate) const INLINE_MAX: usize = 48;

/// The bytes of a bundle id.
pub(crate) type DepsId = [u8; 16];

/// The dependency maps of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DepBundle {
    pub(crate) dependencies: Vec<(String, String)>,
    pub(crate) optional: Vec<(String, String)>,
    pub(crate) peer: Vec<(String, String)>,
    /// `peerDependenciesMeta` as compact JSON.
    pub(crate) peer_meta: Option<String>,
    pub(crate) bundle: Option<BundleRec>,
    pub(crate) accept: Vec<(String, String)>,
    /// `dependenciesMeta` as compact JSON.
    pub(crate) meta: Option<String>,
}

/// `bundleDependencies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BundleRec {
    All,
    Names(Vec<String>),
}

/// How a version record refers to a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DepsRef {
    /// No maps at all.
    None,
    /// Small: stored in the version record.
    Inline(DepBundle),
    /// Stored once under [`key`]`(id)`.
    Shared(DepsId),
}

fn pairs(m: &DepMap) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn json(v: Option<&serde_json::Map<String, serde_json::Value>>) -> Option<String> {
    v.map(|m| serde_json::Value::Object(m.clone()).to_string())
}

impl DepBundle {
    /// The runtime maps of a manifest.
    pub(crate) fn runtime(m: &Manifest) -> Self {
        Self {
            dependencies: pairs(&m.dependencies),
            optional: pairs(&m.optional_dependencies),
            peer: pairs(&m.peer_dependencies),
            peer_meta: json(m.peer_dependencies_meta.as_ref()),
            bundle: m.bundle_dependencies.as_ref().map(|b| match b {
                BundleDependencies::All => BundleRec::All,
                BundleDependencies::Names(n) => BundleRec::Names(n.clone()),
            }),
            accept: pairs(&m.accept_dependencies),
            meta: json(m.dependencies_meta.as_ref()),
        }
    }

    /// The `devDependencies` of a manifest, as a bundle of its own.
    pub(crate) fn dev(m: &Manifest) -> Self {
        Self { dependencies: pairs(&m.dev_dependencies), ..Self::default() }
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Write the runtime maps into a manifest.
    pub(crate) fn apply_runtime(self, m: &mut Manifest) {
        m.dependencies = self.dependencies.into_iter().collect();
        m.optional_dependencies = self.optional.into_iter().collect();
        m.peer_dependencies = self.peer.into_iter().collect();
        m.peer_dependencies_meta = self.peer_meta.and_then(|s| serde_json::from_str(&s).ok());
        m.bundle_dependencies = self.bundle.map(|b| match b {
            BundleRec::All => BundleDependencies::All,
            BundleRec::Names(n) => BundleDependencies::Names(n),
        });
        m.accept_dependencies = self.accept.into_iter().collect();
        m.dependencies_meta = self.meta.and_then(|s| serde_json::from_str(&s).ok());
    }

    /// Place the bundle: `(reference, Some((id, encoded value)))` when it must be stored
    /// under its own key.
    pub(crate) fn place(self) -> (DepsRef, Option<(DepsId, Vec<u8>)>) {
        if self.is_empty() {
            return (DepsRef::None, None);
        }
        let bytes = codec::encode(tag::DEPS, &self);
        if bytes.len() <= INLINE_MAX {
            return (DepsRef::Inline(self), None);
        }
        let digest = sha2::Sha256::digest(&bytes);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        (DepsRef::Shared(id), Some((id, bytes)))
    }
}

/// The trie key of a shared bundle: `d/<32 hex digits>`.
pub(crate) fn key(id: &DepsId) -> String {
    format!("d/{}", hex::encode(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bundles_inline_large_ones_shared_by_content() {
        let mut m = Manifest::default();
        assert_eq!(DepBundle::runtime(&m).place().0, DepsRef::None);
        m.dependencies.insert("a".into(), "^1".into());
        assert!(matches!(DepBundle::runtime(&m).place().0, DepsRef::Inline(_)));
        for i in 0..10 {
            m.dependencies.insert(format!("package-number-{i}"), "^1.2.3".into());
        }
        let (r1, blob1) = DepBundle::runtime(&m).place();
        let (r2, blob2) = DepBundle::runtime(&m.clone()).place();
        assert!(matches!(r1, DepsRef::Shared(_)));
        assert_eq!(r1, r2);
        assert_eq!(blob1, blob2);
        let (_, bytes) = blob1.unwrap();
        let back: DepBundle = codec::decode(tag::DEPS, &bytes).unwrap();
        let mut m2 = Manifest::default();
        back.apply_runtime(&mut m2);
        assert_eq!(m2.dependencies, m.dependencies);
    }
}
