//! registry-proxy: the npm registry HTTP API of ims (`ims serve`), so that npm, pnpm, Yarn
//! and bun install through ims with only their registry URL pointed at it.
//!
//! ```text
//!  client ──HTTP──▶ server (hyper: head deadline, size and connection caps)
//!                    └─▶ router: path → name::Route (scoped spellings, traversal refused)
//!                         ├─ packument: negotiate (Accept → full | abbreviated, gzip)
//!                         │             caching (rendered once, strong ETag per form, 304)
//!                         ├─ tarball:   fill (one fetch per missing tarball), streamed
//!                         └─ search, keys, ping, audit (answered at once), writes refused
//!                    Source ◀── stack::Stack: peer's index → local index → upstream;
//!                                             store → peer → upstream (all verified)
//! ```
//!
//! What each client asks for and reads is in `spec/npm-registry-and-installers.md` §1; in
//! short:
//!
//! | client | asks for | reads `time` | checks the content type |
//! |---|---|---|---|
//! | npm 11 | full (`application/json`) | yes | no |
//! | pnpm 10+ | abbreviated, full as fallback | yes | yes (`application/vnd.npm.install-v1+json`) |
//! | Yarn 1 | abbreviated | no | no |
//! | Yarn Berry | nothing (full) | yes (its age gate) | no |
//! | bun | abbreviated | when extended | no |
//!
//! Tarball URLs are always rewritten to [`Config::public_url`] in the canonical pattern, so
//! lockfiles made through the proxy stay portable (pnpm, Yarn Berry) and bun fetches them
//! from the same origin. Credentials clients send are ignored, never forwarded or logged.
//!
//! ```no_run
//! # async fn demo(source: impl registry_proxy::Source) -> std::io::Result<()> {
//! use registry_proxy::{Config, Limits, Server, router};
//! let url = "http://127.0.0.1:4873/".parse().expect("a URL");
//! let app = router(source, Config::new(url));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4873").await?;
//! let server = Server::start(listener, app, Limits::default())?;
//! # server.shutdown().await; Ok(()) }
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod caching;
mod error;
mod fill;
mod name;
mod negotiate;
mod router;
mod routes;
mod server;
mod source;
pub mod stack;

pub use error::SourceError;
pub use router::{Config, router};
pub use server::{Limits, Server, serve};
pub use source::Source;
