//! installer: the install engine behind `ims install` (DESIGN.md §Install; spec
//! `npm-registry-and-installers.md` §1.9, §4.2–4.4, §5).
//!
//! ```text
//!  SPEC / package.json ──request, project──▶ resolve (npm pick rules over a ManifestSource;
//!        a peer's index in front when one is linked) ──▶ fetch + verify (peers first, then the
//!        registry; sha512 while streaming) ──▶ extract once into the store ──▶ link (hardlink,
//!        else copy) into node_modules ──▶ allowed scripts ──▶ package.json, package-lock.json
//!
//!  overlapped: each pick ──▶ its dependencies' packuments asked at once (fetch ahead)
//!                       └──▶ its tarball downloaded and unpacked into the store (ahead)
//! ```
//!
//! [`Installer::install`] does all of it and returns an [`InstallReport`]; the caller maps its
//! options in and prints the report. Errors say what failed on which dependency path, with a
//! [`hint`](InstallError::hint) and a [`kind`](InstallError::kind) a CLI maps to exit codes.
//!
//! * [`request`]: SPEC parsing (`name`, `name@range`, `name@tag`, `@scope/name`, `npm:` aliases).
//! * [`project`]: `package.json` read and save (`-D`, `-E`, `--no-save`), formatting kept.
//! * [`resolve`]: npm-pick-manifest's rules over an [`indexer::source::ManifestSource`] (the
//!   local index with the registry behind it, a peer's replica, or a registry alone); with
//!   [`Resolver::fetch_ahead`] a picked version's dependencies are asked for at once, so a
//!   tree takes about as many request rounds as it is deep. `ahead` starts each picked
//!   version's tarball while the tree is still being placed.
//! * [`semver`]: npm-flavoured semver behind a guard.
//! * [`tree`], [`ideal_tree`], [`hoist`]: the ideal tree, built breadth-first and placed where
//!   npm's arborist would place each package.
//!   Peers go beside their dependent (the dependent nests when its peer set cannot hoist); a
//!   peer conflict involving the project's own dependencies (any, with `--strict-peer-deps`)
//!   is npm's ERESOLVE ([`ResolveError::PeerConflict`]), deeper ones are overridden with a
//!   warning; `--legacy-peer-deps` drops peer edges.
//! * [`overrides`]: npm's `overrides` of the root `package.json`, the rules each node and edge
//!   of the ideal tree is governed by, and EOVERRIDE.
//! * [`lockfile`]: `package-lock.json`, and its `require` graph ([`lockfile::Graph`]): npm's
//!   optional sets (what a skipped optional package takes with it) and the dependency path
//!   an error names (`app > express > body-parser`).
//! * [`link`], [`bins`]: store → `node_modules` by hardlink, falling back to copy; `.bin` links.
//! * [`scripts`], [`platform`]: which install scripts may run; os/cpu/libc and engines.
//! * [`global`]: `-g`, npm's global layout.
//! * [`actual`], [`listing`]: the installed tree as npm reads it, and `ims ls` / `ims why` over it.
//! * [`planner`]: resolution from a peer's index in one round trip: the key form of a resolve
//!   prefetch ([`planner::ResolveQuery`]) and the seeder's [`planner::ResolvePlanner`].
//!
//! Registry HTTP, the source stack, the tarball store and tarballs from peers live in
//! [`indexer`], shared with the seeder and the registry proxy.

pub mod actual;
mod ahead;
pub mod bins;
pub mod error;
pub mod git;
pub mod global;
pub mod hoist;
pub mod ideal_tree;
mod install;
pub mod link;
pub mod listing;
pub mod local;
pub mod lockfile;
mod options;
pub mod overrides;
pub mod pack;
pub mod places;
pub mod planner;
pub mod platform;
pub mod project;
pub mod request;
pub mod resolve;
mod safe_fs;
pub mod scripts;
pub mod semver;
pub mod tree;

pub use error::{FailureKind, InstallError, OverrideError, ProjectError, RequestError, ResolveError};
pub use lockfile::Lockfile;
pub use platform::{NodeRuntime, Platform};
pub use project::{DepKind, Project};
pub use request::{Request, VersionSpec};
pub use resolve::{Origin, PickOptions, Resolved, Resolver};
pub use scripts::ScriptPolicy;

pub use install::{Fetched, InstallReport, Installer, Plan, RemoteIndexReport};
pub use options::{Event, InstallOptions, Progress, Save};
