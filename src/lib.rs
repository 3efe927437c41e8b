//! `ims`: a peer-to-peer npm registry mirror and installer.
//!
//! This crate is the binary's library half, CLI code only: the command line ([`cli`]), global
//! options resolved once into typed fields ([`context`]), the `IMS_HOME` layout ([`home`]),
//! npm's configuration ([`npmrc`]), the one error printer with its exit codes ([`report`]) and
//! one module per subcommand ([`commands`]). The engines are library crates: `installer`
//! (the install engine), `indexer` (the index, the registry client, the source stack, the
//! tarball store, peers' indexes and tarballs), `hypertrie`, `hypercore` and `swarm`.

pub mod cli;
pub mod commands;
pub mod context;
pub mod home;
pub mod npmrc;
pub mod report;
