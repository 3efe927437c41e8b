//! The seam between the HTTP API and where answers come from: a [`Source`] gives packuments
//! by name and verified tarball files by version. [`crate::stack::Stack`] is the one `ims
//! serve` uses (local index, a peer's index, upstream, the tarball store); tests use small
//! ones of their own.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use indexer::model::{Manifest, Packument};

use crate::error::SourceError;

/// Where the proxy's answers come from. Every method is called concurrently.
pub trait Source: Send + Sync + 'static {
    /// The packument of `name` (a valid npm name, scoped ones with their `/`). `Ok(None)`:
    /// no such package (answered 404). The tarball URLs in it are rewritten by the proxy.
    fn packument(&self, name: &str) -> impl Future<Output = Result<Option<Arc<Packument>>, SourceError>> + Send;

    /// A file holding the tarball of `name@version`, verified against `manifest.dist`'s
    /// integrity before this returns (fetched into the store first when missing). Concurrent
    /// calls for one tarball are already merged by the proxy.
    fn tarball(
        &self,
        name: &str,
        version: &str,
        manifest: &Manifest,
    ) -> impl Future<Output = Result<PathBuf, SourceError>> + Send;

    /// The registry's signing keys (`/-/npm/v1/keys`) as upstream sends them; `Ok(None)`:
    /// none known (404).
    fn keys(&self) -> impl Future<Output = Result<Option<serde_json::Value>, SourceError>> + Send {
        async { Ok(None) }
    }

    /// Up to `limit` package names this source holds without asking anyone (for search and
    /// `GET /`).
    fn names(&self, limit: usize) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send {
        let _ = limit;
        async { Ok(Vec::new()) }
    }
}
