//! The `IMS_HOME` layout: where the node key, the local index, replicas and tarballs live.
//!
//! ```text
//! $IMS_HOME/
//!   identity            the node's Noise/Ed25519 identity (swarm)
//!   index/              the local index feed (hypercore storage), written by `ims index`
//!                       and by `ims install` (what it fetched upstream)
//!   index-fetched.json  when install last fetched each package from which registry (local
//!                       bookkeeping for the max-age policy; not replicated)
//!   registries/<id>/    the index (and fetch times) of each registry other than the one
//!                       `index/` records (its `meta/upstream`): never mixed into `index/`
//!   replicas/<KEYHEX>/  sparse replicas of remote tries (`--key`)
//!   store/              content-addressed tarball store, keyed by integrity
//! ```

use std::path::{Path, PathBuf};

/// Paths under one `IMS_HOME`.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// A layout rooted at `root` (nothing is created yet).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
    /// The home directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The node identity file.
    pub fn identity_file(&self) -> PathBuf {
        self.root.join("identity")
    }
    /// The local index feed's storage directory.
    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }
    /// Where registries other than the local index's upstream keep their own index.
    pub fn registries_dir(&self) -> PathBuf {
        self.root.join("registries")
    }
    /// The storage directory of a sparse replica of the feed with this public key.
    pub fn replica_dir(&self, key_hex: &str) -> PathBuf {
        self.root.join("replicas").join(key_hex)
    }
    /// The content-addressed tarball store.
    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }
    /// When `ims install` last fetched each package of the local index, per registry.
    pub fn index_fetch_times_file(&self) -> PathBuf {
        self.root.join("index-fetched.json")
    }
}
