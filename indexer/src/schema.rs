//! The key layout of the index in the trie (spec: DESIGN.md §"The index"; the crate docs give
//! the reasons).
//!
//! | key | value |
//! |---|---|
//! | `p/<name>` | [`PackageRecord`](crate::records): dist-tags, versions with time, deprecation and `engines.node`, package times, tombstone, upstream ETag |
//! | `v/<name>/<page>` | a page of up to 32 version records (the install superset of spec §1.3) with their distinct dependency bundles, deflate-compressed |
//! | `meta/checkpoint` | [`Checkpoint`]: how far the `_changes` follower got |
//! | `meta/upstream` | the registry base URL canonical tarball URLs are relative to |

use serde::{Deserialize, Serialize};

/// The key of a package record.
pub(crate) fn package_key(name: &str) -> String {
    format!("p/{name}")
}

/// The key of a version page.
pub(crate) fn page_key(name: &str, page: u32) -> String {
    format!("v/{name}/{page}")
}

/// The key of the follower checkpoint.
pub(crate) const CHECKPOINT_KEY: &str = "meta/checkpoint";

/// The key of the upstream base URL.
pub(crate) const UPSTREAM_KEY: &str = "meta/upstream";

/// How far the `_changes` follower got, stored in the trie with the documents of the page it
/// finished (one batch), so a reader sees a checkpoint only together with what it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The feed it follows (the `--changes` URL).
    pub feed: String,
    /// The `since` to resume from: the last `last_seq` fully ingested (opaque to us, as npm
    /// advises; kept as the string it came as).
    pub since: String,
    /// The highest numeric sequence ever seen, to notice a sequence reset (spec §6.1).
    pub highest_seq: u64,
    /// Changes ingested in total.
    pub changes: u64,
}
