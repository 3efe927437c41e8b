//! Tarballs fetched while the tree is still being resolved: the moment the resolver picks a
//! version ([`Resolver::on_pick`](crate::Resolver::on_pick)), its tarball starts downloading
//! into the store and unpacking, so by the time the tree is placed most of the store work is
//! done. The fetch step then takes what was started here and fetches the rest itself.
//!
//! Only what will very likely be installed starts early: not versions for another platform
//! (an optional `@esbuild/*` for each OS), not anything under `--omit=dev` (dev-ness is known
//! only once the tree is built), and not when a peer serves tarballs (it goes first). A
//! version picked ahead that ends up not in the tree costs one download into the store, which
//! keeps it for next time. A failure here is only logged: the fetch step fetches that tarball
//! again and reports its own error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use indexer::tarballs::{Integrity, TarballStore};
use indexer::upstream::Registry;
use tokio::sync::Semaphore;

use crate::platform::Platform;
use crate::resolve::Resolved;

/// An unpacked store folder, or `None` when the early fetch failed.
type Pending = Shared<BoxFuture<'static, Option<PathBuf>>>;

/// The tarballs started early, by integrity.
pub(crate) struct TarballsAhead {
    registry: Registry,
    store: TarballStore,
    platform: Platform,
    slots: Arc<Semaphore>,
    started: Mutex<HashMap<Integrity, Pending>>,
}

impl TarballsAhead {
    /// Fetch into `store` from `registry`, at most `in_flight` at once.
    pub(crate) fn new(registry: Registry, store: TarballStore, platform: Platform, in_flight: usize) -> Self {
        TarballsAhead {
            registry,
            store,
            platform,
            slots: Arc::new(Semaphore::new(in_flight.max(1))),
            started: Mutex::default(),
        }
    }

    /// Start fetching the tarball of a picked version (once per integrity).
    pub(crate) fn start(&self, picked: &Resolved) {
        let m = picked.manifest();
        if !self.platform.allows(&m.os, &m.cpu, &m.libc) {
            return;
        }
        let Some(url) = m.dist.tarball.clone() else { return };
        let Some(integrity) = picked.integrity.clone() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let Ok(mut started) = self.started.lock() else { return };
        if started.contains_key(&integrity) {
            return;
        }
        let (registry, store, slots) = (self.registry.clone(), self.store.clone(), self.slots.clone());
        let key = integrity.clone();
        let id = format!("{}@{}", picked.package(), picked.version);
        let fetch = async move {
            let _slot = slots.acquire_owned().await.ok()?;
            match registry.fetch_tarball(&store, &integrity, &url).await {
                Ok(u) => Some(u.path),
                Err(e) => {
                    tracing::debug!(package = %id, error = %e, "early tarball fetch failed; fetched again when needed");
                    None
                }
            }
        }
        .boxed()
        .shared();
        runtime.spawn(fetch.clone());
        started.insert(key, fetch);
    }

    /// The store folder of `integrity` if it was started early and succeeded (waiting for it
    /// when still in flight); `None` when it was never started or failed.
    pub(crate) async fn take(&self, integrity: &Integrity) -> Option<PathBuf> {
        let pending = self.started.lock().ok()?.get(integrity).cloned()?;
        pending.await
    }

    /// How many tarballs were started early.
    pub(crate) fn started(&self) -> usize {
        self.started.lock().map(|s| s.len()).unwrap_or(0)
    }
}
