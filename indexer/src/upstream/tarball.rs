//! Tarballs from a registry: streamed into the [`TarballStore`] and verified on the way in
//! (nothing is stored unless it matches its integrity), then unpacked once (spec §5.1 rule 7).

use crate::tarballs::{Algorithm, Integrity, PendingTarball, TarballError, TarballStore, Unpacked};

use super::{FetchError, Registry};

/// Why one tarball could not be made available in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchTarballError {
    /// The download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The store refused it (integrity mismatch, hostile entries, IO).
    #[error(transparent)]
    Store(#[from] TarballError),
    /// The extraction task died.
    #[error("extraction task failed: {0}")]
    Join(String),
}

impl FetchTarballError {
    /// Whether the bytes fetched are not the ones their integrity promises.
    pub fn is_integrity_mismatch(&self) -> bool {
        matches!(self, FetchTarballError::Store(TarballError::IntegrityMismatch { .. }))
    }

    /// Whether the registry could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FetchTarballError::Fetch(e) if e.is_unreachable())
    }
}

impl Registry {
    /// Download a tarball into `store`, verifying `integrity` while it streams, and unpack it.
    /// Returns at once when the store already has it unpacked. `resolved` is the lockfile's
    /// or packument's URL ([`RegistryUrl::fetch_url`](super::RegistryUrl::fetch_url) applies).
    pub async fn fetch_tarball(
        &self,
        store: &TarballStore,
        integrity: &Integrity,
        resolved: &str,
    ) -> Result<Unpacked, FetchTarballError> {
        if let Some(path) = store.unpacked(integrity) {
            return Ok(Unpacked { path, report: None });
        }
        if store.has_tarball(integrity) {
            match unpack(store, integrity).await {
                // A stored file that fails its check was deleted by the store: fetch it anew.
                Err(FetchTarballError::Store(TarballError::IntegrityMismatch { .. })) => {}
                done => return done,
            }
        }
        // One pass: hashed while it streams, unpacked from memory after the commit.
        let pending = self.download(store, integrity, resolved, true).await?;
        let unpacked = tokio::task::spawn_blocking(move || pending.commit_and_unpack())
            .await
            .map_err(|e| FetchTarballError::Join(e.to_string()))??;
        Ok(unpacked)
    }

    /// Download a tarball into `store` (not unpacked), verifying `integrity` while it
    /// streams; nothing is stored unless it matches.
    pub async fn download_tarball(
        &self,
        store: &TarballStore,
        integrity: &Integrity,
        resolved: &str,
    ) -> Result<(), FetchTarballError> {
        self.download(store, integrity, resolved, false).await?.commit()?;
        Ok(())
    }

    /// Download a tarball whose integrity nothing states yet — a tarball-URL dependency on
    /// its first install — into `store`, unpacked. The bytes are kept under what they hash
    /// to (sha512), which is returned for the lockfile to record; later installs verify
    /// against it with [`fetch_tarball`](Self::fetch_tarball). Bounded by the store's cap.
    pub async fn fetch_new_tarball(
        &self,
        store: &TarballStore,
        url: &str,
    ) -> Result<(Integrity, Unpacked), FetchTarballError> {
        let (mut res, started) = self.send(url, None, "*/*").await?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            return Err(FetchError::Status { url: url.to_owned(), status, attempts: 1 }.into());
        }
        let max = store.limits().max_tarball_bytes;
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        let bytes = match self.bounded_body(url, started, &mut res, limit).await? {
            Ok(bytes) => bytes,
            Err(bytes) => return Err(FetchError::TooLarge { url: url.to_owned(), bytes, max: limit }.into()),
        };
        let integrity = Integrity::of_bytes(Algorithm::Sha512, &bytes);
        let (store, expected) = (store.clone(), integrity.clone());
        let unpacked = tokio::task::spawn_blocking(move || store.put_and_unpack(&expected, &bytes))
            .await
            .map_err(|e| FetchTarballError::Join(e.to_string()))??;
        Ok((integrity, unpacked))
    }

    /// Stream a tarball into a pending store entry (hashed as it comes), not yet committed.
    async fn download(
        &self,
        store: &TarballStore,
        integrity: &Integrity,
        resolved: &str,
        keep: bool,
    ) -> Result<PendingTarball, FetchTarballError> {
        let url = self.url().fetch_url(resolved);
        let (mut res, started) = self.send(&url, None, "*/*").await?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            return Err(FetchError::Status { url, status, attempts: 1 }.into());
        }
        let max = store.limits().max_tarball_bytes;
        let too_large = |bytes: u64| FetchError::TooLarge {
            url: url.clone(),
            bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
            max: usize::try_from(max).unwrap_or(usize::MAX),
        };
        if let Some(len) = res.content_length().filter(|l| *l > max) {
            return Err(too_large(len).into());
        }
        let mut pending = store.begin(integrity)?;
        if keep {
            pending = pending.keep_bytes(res.content_length());
        }
        while let Some(chunk) = res.chunk().await.map_err(self.body_error(&url, started))? {
            if pending.written() + chunk.len() as u64 > max {
                return Err(too_large(pending.written() + chunk.len() as u64).into());
            }
            pending.write_chunk(&chunk)?;
        }
        Ok(pending)
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
