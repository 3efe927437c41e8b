//! indexer: the npm index — its schema, reads, and ingest from upstream.
//!
//! ```text
//!  upstream npm registry ──ingest──▶ model (tolerant serde) ──schema/codec──▶ hypertrie
//!                                         │
//!                                         └─▶ abbreviated ("corgi") form, derived as the registry does
//! ```
//!
//! * [`model`] parses npm documents (full packuments, version manifests, `dist`) without ever
//!   failing on odd but legal input, and derives the abbreviated packument
//!   (`application/vnd.npm.install-v1+json`) from a full one.
//! * [`names`] validates package names (npm's rules) and rejects hostile ones with a reason.
//!
//! Spec: `spec/npm-registry-and-installers.md` §1.3 (fields, the install superset) and §6
//! (the replication feed).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod model;
pub mod names;
pub mod tarballs;
