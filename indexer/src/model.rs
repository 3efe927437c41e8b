//! Tolerant serde for npm documents: full packuments, version manifests (the install superset of
//! spec §1.3), `dist`, and the abbreviated ("corgi") form derived from a full packument.
//!
//! Parsing never fails on odd but legal input. Unknown fields are ignored; a known field whose
//! shape is unexpected is normalised where npm itself normalises it (array `dependencies`,
//! `bundledDependencies` spelling, string `bin`, string `os`) and otherwise dropped, so one
//! strange field in one old version never costs a whole document. Only a document that is not a
//! JSON object, or has no `name`, is rejected.
//!
//! The normalisations (documented once, here, because the abbreviated form inherits them):
//! * dependency maps: array or whitespace/comma string forms become `{name: range}` (range `*`
//!   when absent, as npm's normalize-package-data does); entries whose range is not a string are
//!   dropped; empty maps are omitted.
//! * `bundleDependencies`/`bundledDependencies`: a list of names, or `true` (bundle every
//!   dependency); `false` and empty lists are omitted.
//! * `deprecated`: a string; `false` and other non-strings (which mean "not deprecated") are
//!   omitted.
//! * `os`, `cpu`, `libc`: lists of strings; a single string becomes a one-element list.
//! * `dist.npm-signature` (legacy PGP, read by no client) is not kept.
//! * the lifecycle part of `scripts` only (`preinstall`, `install`, `postinstall`, `prepare`).

mod abbreviated;
mod dist;
mod lenient;
mod manifest;
mod packument;

pub use abbreviated::{ABBREVIATED_CONTENT_TYPE, AbbreviatedManifest, AbbreviatedPackument};
pub use dist::{Dist, Signature};
pub use manifest::{Bin, BundleDependencies, DepMap, Engines, LIFECYCLE_SCRIPTS, Manifest};
pub use packument::{Packument, ParseError, Unpublished};
