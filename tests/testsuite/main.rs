//! The `ims` package's end-to-end tests, in one binary (cargo's `tests/testsuite` layout): one
//! link instead of one per file, and one [`support`] module for the `ims` command, child
//! processes and the JS reference packages.
//!
//! Groups run by module path:
//! * `cargo test --test testsuite` — everything;
//! * `cargo test --test testsuite interop::` — the heavy group: real npm, pnpm, yarn and bun
//!   clients against ims's results, JS reference peers, and seeders in child processes;
//! * `cargo test --test testsuite security::` — the security group: one test per attack;
//! * any other module name (`install_errors`, `peer_deps`, …) — that file alone.

mod support;

mod index_cli;
mod install_ci;
mod install_cli;
mod install_errors;
mod install_global;
mod install_index;
mod install_layout;
mod install_omit;
mod install_realworld;
mod install_report;
mod install_resolve;
mod install_tarballs;
mod install_tls;
mod install_update;
mod interop;
mod peer_deps;
mod resolve_ahead;
mod security;
mod tarball_peers;
mod trie_cli;
mod verify;
