//! The install engine behind `ims install` (DESIGN.md §Install; spec
//! `npm-registry-and-installers.md` §1.9, §4.2–4.4, §5).
//!
//! ```text
//!  SPEC / package.json ──request, project──▶ resolve (npm pick rules over a ManifestSource)
//!        ──▶ fetch + verify (indexer::tarballs, sha512 while streaming) ──▶ extract once into
//!        the store ──▶ link (hardlink, else copy) into node_modules
//! ```
//!
//! * [`request`]: SPEC parsing (`name`, `name@range`, `name@tag`, `@scope/name`, `npm:` aliases).
//! * [`project`]: `package.json` read and save (`-D`, `-E`, `--no-save`), formatting kept.
//! * [`resolve`]: npm-pick-manifest's rules and the [`ManifestSource`](resolve::ManifestSource)
//!   seam (the index, or an upstream registry).
//! * [`semver`]: npm-flavoured semver behind a guard.
//! * [`tree`], [`hoist`]: the ideal tree, built breadth-first and placed where npm's arborist
//!   would place each package.
//! * [`link`]: store → `node_modules` by hardlink, falling back to copy.
//!
//! Tarball integrity and safe extraction live in [`indexer::tarballs`], shared with serve and
//! seed.

pub mod error;
pub mod hoist;
pub mod link;
pub mod project;
pub mod request;
pub mod resolve;
pub mod semver;
pub mod tree;

pub use error::{ProjectError, RequestError, ResolveError};
pub use project::{DepKind, Project};
pub use request::{Request, VersionSpec};
pub use resolve::{ManifestSource, PickOptions, Resolved, Resolver};
