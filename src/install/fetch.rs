//! Fetching from an npm registry over HTTP: packuments (a [`ManifestSource`] for when no peer
//! has the index) and tarballs, streamed into the store and verified on the way in, many at
//! once (DESIGN.md §Install; spec §1.1, §5.1 rule 7).

use std::sync::Arc;

use futures_util::StreamExt as _;
use indexer::model::Packument;
use indexer::names;
use indexer::tarballs::{Integrity, TarballStore, Unpacked};

use super::error::FetchError;
use super::resolve::{ManifestSource, SourceError};

/// A well-known lockfile prefix, not a default: npm writes the public registry's tarball URLs
/// into `resolved` of the lockfiles it makes, and (npm's `replace-registry-host=npmjs`
/// default) fetches them from the configured registry instead. We do the same, so an
/// npm-written lockfile installs from the registry npm's configuration names (see
/// [`crate::npmrc`]); this host is never contacted unless it is the configured registry.
const NPM_LOCKFILE_PREFIX: &str = "https://registry.npmjs.org/";

/// An npm-compatible registry reached over HTTP.
#[derive(Debug, Clone)]
pub struct RegistrySource {
    client: reqwest::Client,
    base: String,
    offline: bool,
}

/// What a (conditional) packument request answered.
#[derive(Debug)]
pub enum Revalidated {
    /// `200`: the document, parsed, with its `ETag`.
    Modified {
        /// The packument (boxed: it dwarfs the other variants).
        packument: Box<Packument>,
        /// Its `ETag`, for the next `If-None-Match`.
        etag: Option<String>,
    },
    /// `304`: the copy whose `ETag` was sent is current.
    NotModified,
    /// `404` / `410`: no such package.
    NotFound,
}

impl RegistrySource {
    /// A source for the registry at `base` (`http://127.0.0.1:4873/`; a trailing `/` is added
    /// when missing).
    pub fn new(client: reqwest::Client, base: &str) -> Self {
        let base = if base.ends_with('/') { base.to_owned() } else { format!("{base}/") };
        RegistrySource { client, base, offline: false }
    }

    /// `--offline`: never touch the network; tarballs come from the store only, anything else
    /// is a [`FetchError::Offline`] naming the package (packuments then come from the local
    /// index, see [`LayeredSource`](super::LayeredSource)).
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// The registry URL (with its trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL a tarball is fetched from: the lockfile's or packument's URL, with the public
    /// registry's prefix in npm-written lockfiles replaced by ours.
    pub fn tarball_url(&self, resolved: &str) -> String {
        match resolved.strip_prefix(NPM_LOCKFILE_PREFIX) {
            Some(rest) if self.base != NPM_LOCKFILE_PREFIX => format!("{}{rest}", self.base),
            _ => resolved.to_owned(),
        }
    }

    /// GET the full packument of `name`; with `etag`, conditionally (`If-None-Match`), so an
    /// unchanged document costs a `304` and no body.
    pub async fn fetch_packument(&self, name: &str, etag: Option<&str>) -> Result<Revalidated, FetchError> {
        if self.offline {
            return Err(FetchError::Offline { what: name.to_owned() });
        }
        let url = format!("{}{}", self.base, names::url_segment(name));
        let http = |source| FetchError::Http { url: url.clone(), source };
        // The full document: npm 11 asks for it too (it carries `libc`, `time`).
        let mut req = self.client.get(&url).header(reqwest::header::ACCEPT, "application/json");
        if let Some(etag) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let resp = req.send().await.map_err(http)?;
        match resp.status().as_u16() {
            304 if etag.is_some() => return Ok(Revalidated::NotModified),
            404 | 410 => return Ok(Revalidated::NotFound),
            200 => {}
            status => return Err(FetchError::Status { url, status }),
        }
        let etag = resp.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.bytes().await.map_err(http)?;
        // Parsing a large document is CPU work: keep it off the async workers.
        let parsed = tokio::task::spawn_blocking(move || Packument::from_slice(&body))
            .await
            .map_err(|e| FetchError::Join(e.to_string()))?;
        let packument = parsed.map_err(|source| FetchError::BadPackument { url, source })?;
        Ok(Revalidated::Modified { packument: Box::new(packument), etag })
    }

    /// Download a tarball into `store`, verifying `integrity` while it streams, and unpack it.
    /// Returns at once when the store already has it unpacked.
    pub async fn fetch_tarball(
        &self,
        store: &TarballStore,
        integrity: &Integrity,
        resolved: &str,
    ) -> Result<Unpacked, FetchTarballError> {
        if let Some(path) = store.unpacked(integrity) {
            return Ok(Unpacked { path, report: None });
        }
        if !store.has_tarball(integrity) {
            self.download_tarball(store, integrity, resolved).await?;
        }
        unpack(store, integrity).await
    }

    /// Download a tarball into `store` (not unpacked), verifying `integrity` while it
    /// streams; nothing is stored unless it matches.
    pub async fn download_tarball(
        &self,
        store: &TarballStore,
        integrity: &Integrity,
        resolved: &str,
    ) -> Result<(), FetchTarballError> {
        if self.offline {
            return Err(FetchError::Offline { what: resolved.to_owned() }.into());
        }
        let url = self.tarball_url(resolved);
        let http = |source| FetchError::Http { url: url.clone(), source };
        let resp = self.client.get(&url).send().await.map_err(http)?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(FetchError::Status { url, status }.into());
        }
        let mut pending = store.begin(integrity)?;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            pending.write_chunk(&chunk.map_err(http)?)?;
        }
        pending.commit()?;
        Ok(())
    }
}

/// Unpack a stored tarball (once; later calls find it unpacked).
pub async fn unpack(store: &TarballStore, integrity: &Integrity) -> Result<Unpacked, FetchTarballError> {
    if let Some(path) = store.unpacked(integrity) {
        return Ok(Unpacked { path, report: None });
    }
    // Extraction is file-system work: keep it off the async workers.
    let (store, integrity) = (store.clone(), integrity.clone());
    let unpacked = tokio::task::spawn_blocking(move || store.unpack(&integrity))
        .await
        .map_err(|e| FetchTarballError::Join(e.to_string()))??;
    Ok(unpacked)
}

/// Why one tarball could not be made available in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchTarballError {
    /// The download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The store refused it (integrity mismatch, hostile entries, IO).
    #[error(transparent)]
    Store(#[from] indexer::tarballs::TarballError),
    /// The extraction task died.
    #[error("extraction task failed: {0}")]
    Join(String),
}

/// The registry alone, nothing recorded: every packument is a request.
impl ManifestSource for RegistrySource {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        match self.fetch_packument(name, None).await? {
            Revalidated::Modified { packument, .. } => Ok(Some(Arc::new(*packument))),
            Revalidated::NotModified | Revalidated::NotFound => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npmjs_urls_are_rewritten_to_the_registry() {
        let s = RegistrySource::new(reqwest::Client::new(), "http://127.0.0.1:9/");
        assert_eq!(
            s.tarball_url("https://registry.npmjs.org/a/-/a-1.0.0.tgz"),
            "http://127.0.0.1:9/a/-/a-1.0.0.tgz"
        );
        assert_eq!(s.tarball_url("http://other/x.tgz"), "http://other/x.tgz");
    }
}
