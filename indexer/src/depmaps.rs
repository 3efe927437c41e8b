//! Dependency maps stored once: a version's runtime dependency maps travel together as one
//! [`DepBundle`], and its `devDependencies` as another. Version records live in pages
//! (`crate::records::VersionPage`) of up to [`crate::records::PAGE_MAX`] versions, and each
//! page keeps a table of the distinct bundles of its versions: consecutive versions of a package
//! usually share their maps, so a map shared by a run of versions is stored once per page, and
//! the page's compression removes most of what remains between pages.

use crate::model::{BundleDependencies, DepMap, Manifest};
use serde::{Deserialize, Serialize};

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

/// How a version record refers to a bundle of its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DepsRef {
    /// No maps at all.
    None,
    /// An index into the page's bundle table.
    Table(u32),
}

/// The distinct bundles of one page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BundleTable(pub(crate) Vec<DepBundle>);

impl BundleTable {
    /// Store `bundle` once and refer to it.
    pub(crate) fn intern(&mut self, bundle: DepBundle) -> DepsRef {
        if bundle.is_empty() {
            return DepsRef::None;
        }
        let i = match self.0.iter().position(|b| *b == bundle) {
            Some(i) => i,
            None => {
                self.0.push(bundle);
                self.0.len() - 1
            }
        };
        DepsRef::Table(i as u32)
    }

    /// The bundle a reference names (empty for `None` or a dangling index).
    pub(crate) fn get(&self, r: &DepsRef) -> DepBundle {
        match r {
            DepsRef::None => DepBundle::default(),
            DepsRef::Table(i) => self.0.get(*i as usize).cloned().unwrap_or_default(),
        }
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_stored_once_per_table() {
        let mut m = Manifest::default();
        let mut table = BundleTable::default();
        assert_eq!(table.intern(DepBundle::runtime(&m)), DepsRef::None);
        m.dependencies.insert("a".into(), "^1".into());
        let r1 = table.intern(DepBundle::runtime(&m));
        let r2 = table.intern(DepBundle::runtime(&m.clone()));
        assert_eq!(r1, r2);
        assert_eq!(table.0.len(), 1);
        let mut back = Manifest::default();
        table.get(&r1).apply_runtime(&mut back);
        assert_eq!(back.dependencies, m.dependencies);
        assert_eq!(table.get(&DepsRef::Table(9)), DepBundle::default());
    }
}
