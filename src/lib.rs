//! `ims`: a peer-to-peer npm registry mirror and installer.
//!
//! This crate is the binary's library half: the command line ([`cli`]), global options resolved
//! once ([`context`]), the `IMS_HOME` layout ([`home`]), the one error printer ([`report`]) and
//! one module per subcommand ([`commands`]). Tests drive it without spawning the binary.

pub mod cli;
pub mod commands;
pub mod context;
pub mod home;
pub mod install;
pub mod npmrc;
pub mod remote;
pub mod report;
pub mod tarball_peers;
