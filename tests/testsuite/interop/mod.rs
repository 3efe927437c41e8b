//! The heavy group: what ims does held against the real thing — npm's own installs of the same
//! fixtures (`npm_parity`), npm, pnpm, yarn and bun installing what ims wrote (`npm_clients`),
//! and peers in other processes: `ims seed` children (`install_from_seeder`) and the JS
//! hypertrie@5 reference peer (`trie_peer`).

mod install_from_seeder;
mod ls_projects;
mod npm_clients;
mod npm_overrides;
mod npm_parity;
mod npm_places;
mod npm_projects;
mod trie_peer;
