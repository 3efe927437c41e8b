//! Tarballs between peers: the `ims/tarball` extension on the index's replication channel
//! (DESIGN.md: "fetches tarballs from peers or upstream, verifies every byte"; `ims seed
//! --upstream URL` "fetches tarballs on demand from upstream, verifies and caches them, and
//! serves them to peers").
//!
//! ```text
//!  reader (ims install --key K --peer P)               seeder (ims seed)
//!   Request{id, name, version, integrity}  ──────▶  store hit? else (--upstream) the index's
//!                                                   manifest must name this integrity, then
//!                                                   download + verify + keep
//!   Chunk{id, bytes} …  End{id, total}     ◀──────  the stored tarball, 64 KiB at a time
//!   Missing{id, reason}                    ◀──────  not here / not in the index / busy
//!   Cancel{id}                             ──────▶  the reader gave up on it
//! ```
//!
//! The seeder is not trusted: the reader streams the chunks into the store's
//! [`PendingTarball`](crate::tarballs::PendingTarball), which hashes them and moves the
//! tarball into place only when it matches the integrity the reader's own resolution (the
//! signed index, or a lockfile) names; anything else — a mismatch, a stall, a malformed
//! message, an oversized answer, the peer leaving — fails that one tarball, which the install
//! then fetches from upstream. The seeder, in turn, never fetches a URL a peer sends: only the
//! tarball its own index records for the requested version, and only when the integrities agree.

pub mod client;
pub mod server;
pub mod wire;

pub use client::{PeerFetchError, TarballClient};
pub use server::TarballServer;

/// The extension's name, listed in Options by both sides.
pub const TARBALL_EXTENSION: &str = "ims/tarball";
