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

/// The public registry's tarball prefix, rewritten to the configured registry (npm's
/// `replace-registry-host` default) so lockfiles made against it install from a mirror.
const NPMJS: &str = "https://registry.npmjs.org/";

/// An npm-compatible registry reached over HTTP.
#[derive(Debug, Clone)]
pub struct RegistrySource {
    client: reqwest::Client,
    base: String,
}

impl RegistrySource {
    /// A source for the registry at `base` (`http://127.0.0.1:4873/`; a trailing `/` is added
    /// when missing).
    pub fn new(client: reqwest::Client, base: &str) -> Self {
        let base = if base.ends_with('/') { base.to_owned() } else { format!("{base}/") };
        RegistrySource { client, base }
    }

    /// The registry URL (with its trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL a tarball is fetched from: the lockfile's or packument's URL, with the public
    /// registry's host replaced by ours.
    pub fn tarball_url(&self, resolved: &str) -> String {
        match resolved.strip_prefix(NPMJS) {
            Some(rest) if self.base != NPMJS => format!("{}{rest}", self.base),
            _ => resolved.to_owned(),
        }
    }

    async fn fetch_packument(&self, name: &str) -> Result<Option<Packument>, FetchError> {
        let url = format!("{}{}", self.base, names::url_segment(name));
        let http = |source| FetchError::Http { url: url.clone(), source };
        let resp = self
            .client
            .get(&url)
            // The full document: npm 11 asks for it too (it carries `libc`, `time`).
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(http)?;
        match resp.status().as_u16() {
            404 => return Ok(None),
            200 => {}
            status => return Err(FetchError::Status { url, status }),
        }
        let body = resp.bytes().await.map_err(http)?;
        Packument::from_slice(&body).map(Some).map_err(|source| FetchError::BadPackument { url, source })
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
        }
        // Extraction is file-system work: keep it off the async workers.
        let (store, integrity) = (store.clone(), integrity.clone());
        let unpacked = tokio::task::spawn_blocking(move || store.unpack(&integrity))
            .await
            .map_err(|e| FetchTarballError::Join(e.to_string()))??;
        Ok(unpacked)
    }
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

impl ManifestSource for RegistrySource {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        Ok(self.fetch_packument(name).await?.map(Arc::new))
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
