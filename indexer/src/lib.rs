//! indexer: the npm index — its schema, reads, and ingest from upstream — and everything
//! the installer, the seeder and the registry proxy share about registries, sources and
//! tarballs, so each rule (tarball URLs, integrity, freshness) is written once.
//!
//! ```text
//!  upstream npm registry ◀──upstream::Registry (the one HTTP client: deadlines, retries, caps)
//!        │                        │
//!        ├──ingest──▶ model (tolerant serde) ──records/codec──▶ hypertrie batch (Index::write)
//!        │
//!  source: ReplicaSource (a peer's index) ─▶ LayeredSource (local index, npm's cache policy)
//!          ─▶ Registry; what the registry sends is recorded back into the local index
//!        │
//!  installer, registry proxy ◀──Index::{versions, version_in, version, packument, abbreviated, touched_*}
//!  tarballs: TarballStore (content-addressed, verified) ◀── Registry, tarball_peers (ims/tarball)
//!  remote: a sparse replica of a peer's index over swarm (RemoteIndex: index + tarballs, one connection)
//! ```
//!
//! * [`model`] parses npm documents (full packuments, version manifests, `dist`) without ever
//!   failing on odd but legal input, and derives the abbreviated packument
//!   (`application/vnd.npm.install-v1+json`) from a full one.
//! * [`names`] validates package names (npm's rules) and rejects hostile ones with a reason.
//! * [`Index`] is the facade over the trie: reads for the proxy and the installer, and one
//!   atomic write path ([`Index::write`]) that validates, keeps versions immutable and
//!   tombstones final.
//! * [`ingest::Ingest`] fills it from any npm registry: a list of names, or npm's `_changes`
//!   feed followed from the checkpoint stored in the trie.
//! * [`upstream`]: [`upstream::Registry`], the one registry client, and
//!   [`upstream::RegistryUrl`], the one normalisation of a registry base and the one rule for
//!   tarball URLs.
//! * [`source`]: the [`source::ManifestSource`] seam resolution reads through, and the stack
//!   installs and the proxy use: [`source::LayeredSource`] over [`source::LocalIndex`], with a
//!   peer's [`source::ReplicaSource`] in front.
//! * [`tarballs`]: the content-addressed tarball store (integrity, safe extraction);
//!   [`tarball_peers`]: tarballs between peers (`ims/tarball`).
//! * [`remote`]: a sparse replica of a peer's index over a Noise connection
//!   ([`remote::RemoteIndex`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use hypercore::{FeedBuilder, Storage};
//! let feed = FeedBuilder::new(Storage::disk("/tmp/index")).open().await?;
//! let index = indexer::Index::open(hypertrie::Trie::open(feed).await?).await?;
//! let ingest = indexer::ingest::Ingest::new(index, "https://registry.npmjs.org/", Default::default()).await?;
//! ingest.names(&["express".to_owned()]).await?;
//! let express = ingest.index().versions("express").await?.expect("just indexed");
//! let latest = ingest.index().version("express", &express.dist_tags["latest"]).await?;
//! # let _ = latest; Ok(()) }
//! ```
//!
//! # The schema (keys, values, and why)
//!
//! Designed for npm's scale, about 3.5 M packages and 40 M+ versions (spec §6.2):
//!
//! | key | value | why |
//! |---|---|---|
//! | `p/<name>` | package record: dist-tags; per version its key, publish time, deprecation and `engines.node`; the other `time` entries; tombstone; upstream ETag | resolving a package is **one lookup**: npm's pick rules need exactly these fields, never a scan of version keys |
//! | `v/<name>/<page>` | a page of up to 32 version records (the install superset of spec §1.3) in ingest order, with a table of their distinct dependency bundles; deflate-compressed | reading a version is a **second lookup**; versions are immutable, so a page only ever grows until full; one trie node per page instead of per version cuts the trie's per-node cost (~100 B) 32-fold, and compressing a page removes what neighbouring versions repeat |
//! | `meta/checkpoint` | the `_changes` follower's position | written in the same batch as the page it covers, so peers see how fresh the index is and a resume never skips or repeats |
//! | `meta/upstream` | registry base URL | canonical tarball URLs are derived, not stored |
//!
//! Identical dependency maps are stored once per page (consecutive versions usually share
//! them); a map that recurs in another page costs only its compressed back-reference there.
//! On the corpus (216 packages, 22,411 versions) the whole feed is about 180 bytes per
//! version, 33 % of the abbreviated JSON.
//!
//! Values are tagged `postcard` records (module `codec`): no field names, varints, digests
//! as raw bytes, canonical timestamps as milliseconds, npm's signing key ids interned, and
//! anything unusual kept verbatim so reads give back exactly what was ingested. Trie keys are
//! split on `/` and hashed per component by hypertrie, so every key above is found in
//! O(log n) blocks of the feed, and [`Index::touched_blocks`] (or, for a whole resolution,
//! [`Index::touched_summaries`]) names those blocks for a one-round-trip prefetch from a peer.
//! Resolution reads the package record ([`Index::versions`]) and then only the page of the
//! picked version ([`Index::version_in`]), never every page.
//!
//! Spec: `spec/npm-registry-and-installers.md` §1.3 (fields, the install superset) and §6
//! (the replication feed).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod codec;
mod depmaps;
mod error;
mod index;
pub mod ingest;
pub mod model;
pub mod names;
mod records;
pub mod remote;
mod schema;
pub mod signatures;
pub mod source;
pub mod tarball_peers;
pub mod upstream;

pub use codec::CodecError;
pub use error::IndexError;
pub use index::{
    Document, Index, PackageSummary, Skipped, Update, VersionSummary, WriteReport, retain_indexable,
};
pub use schema::Checkpoint;

/// Milliseconds since the Unix epoch of an npm timestamp in the one form the registry writes
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`); `None` for any other text.
pub fn npm_time_millis(s: &str) -> Option<i64> {
    codec::parse_iso(s)
}
pub mod tarballs;
