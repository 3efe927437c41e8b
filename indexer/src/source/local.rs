//! The local index as `ims install` uses it: opened (or created, exactly as `ims index` does)
//! on first use, so an install from a matching lockfile never pays for it; and the local
//! bookkeeping of when each package was last fetched from which registry.
//!
//! Fetch times are not index content: the index is replicated to peers, and when this machine
//! asked upstream is nobody else's business. They live in one small JSON file next to the
//! index (`$IMS_HOME/index-fetched.json`), read once and rewritten once per install (tmp +
//! rename, no fsync: losing it only costs a revalidation).
//!
//! One index per registry: the shared index (`$IMS_HOME/index`, what `ims seed` serves and
//! `ims view` reads) belongs to the registry in its `meta/upstream`, set by its first writer,
//! and only that registry's answers are ever recorded into it. An install from any other
//! registry (a project's `.npmrc` pointing elsewhere) reads and records its own index under
//! [`LocalIndex::others_under`] (`$IMS_HOME/registries/<id>/`), with its own fetch times. So a
//! hostile registry's record of `lodash@4.17.21` can never be what a later install from the
//! honest registry reads (`--prefer-offline`, within the max-age, or after a `304` to an ETag
//! the hostile registry copied), nor what `ims seed` serves to peers as its upstream's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Index;
use crate::upstream::RegistryUrl;
use hypercore::{FeedBuilder, Storage};
use hypertrie::Trie;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// The local index could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalIndexError {
    /// Creating the directory failed.
    #[error("could not create {dir}")]
    Create {
        /// The index directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The feed could not be opened.
    #[error("could not open the index feed in {dir}")]
    Feed {
        /// The index directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: hypercore::OpenError,
    },
    /// The trie over it could not be opened.
    #[error("could not open the index trie in {dir}")]
    Trie {
        /// The index directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: hypertrie::OpenError,
    },
    /// Reading the index failed.
    #[error(transparent)]
    Index(#[from] crate::IndexError),
    /// [`Open::Existing`], and no index was ever written there.
    #[error("there is no local index in {dir}")]
    Missing {
        /// The index directory.
        dir: PathBuf,
    },
    /// [`Open::Existing`], and the feed holds no block yet (opening would write its header).
    #[error("the local index in {dir} is empty (not even a header block yet)")]
    Empty {
        /// The index directory.
        dir: PathBuf,
    },
}

/// Whether opening the local index may create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Create it (with a fresh key pair, and the trie's header) when there is none: what
    /// `ims index` and `ims install` do.
    OrCreate,
    /// Only an index already written; opening it writes nothing ([`LocalIndexError::Missing`],
    /// [`LocalIndexError::Empty`] otherwise): what `ims key`, `view`, `trie` and `seed` do.
    Existing,
}

/// Open the index stored in `dir` — the one opener, so `ims key` and `ims seed` serve what
/// `ims index` and `ims install` wrote.
pub async fn open_index(dir: &Path, open: Open) -> Result<Index, LocalIndexError> {
    match open {
        Open::OrCreate => std::fs::create_dir_all(dir)
            .map_err(|source| LocalIndexError::Create { dir: dir.to_owned(), source })?,
        Open::Existing if !dir.join("log").exists() => {
            return Err(LocalIndexError::Missing { dir: dir.to_owned() });
        }
        Open::Existing => {}
    }
    let feed = FeedBuilder::new(Storage::disk(dir))
        .open()
        .await
        .map_err(|source| LocalIndexError::Feed { dir: dir.to_owned(), source })?;
    if open == Open::Existing && feed.is_empty() {
        return Err(LocalIndexError::Empty { dir: dir.to_owned() });
    }
    let trie =
        Trie::open(feed).await.map_err(|source| LocalIndexError::Trie { dir: dir.to_owned(), source })?;
    Ok(Index::open(trie).await?)
}

/// When each package was last fetched (200 or 304) from each registry, in Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchTimes {
    /// Registry base URL -> package name -> time.
    registries: BTreeMap<String, BTreeMap<String, u64>>,
}

impl FetchTimes {
    /// Read `file`; a missing or unreadable file is empty bookkeeping (logged), never an error.
    pub fn load(file: &Path) -> Self {
        match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(file = %file.display(), %error, "ignoring unreadable fetch times");
                Self::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(error) => {
                tracing::warn!(file = %file.display(), %error, "ignoring unreadable fetch times");
                Self::default()
            }
        }
    }

    /// Write to `file` atomically (a temporary file renamed over it).
    pub fn save(&self, file: &Path) -> std::io::Result<()> {
        let tmp = file.with_extension(format!("json.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, file));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// When `name` was last fetched from `registry`.
    pub fn get(&self, registry: &str, name: &str) -> Option<SystemTime> {
        let ms = *self.registries.get(registry)?.get(name)?;
        UNIX_EPOCH.checked_add(Duration::from_millis(ms))
    }

    /// Note that `name` was fetched from `registry` at `at`.
    pub fn set(&mut self, registry: &str, name: &str, at: SystemTime) {
        let ms =
            at.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.registries.entry(registry.to_owned()).or_default().insert(name.to_owned(), ms);
    }

    /// Whether `name` was fetched from `registry` less than `max_age` before `now`.
    pub fn is_fresh(&self, registry: &str, name: &str, max_age: Duration, now: SystemTime) -> bool {
        self.get(registry, name).and_then(|at| now.duration_since(at).ok()).is_some_and(|age| age < max_age)
    }

    /// Every registry anything was fetched from.
    pub fn registries(&self) -> impl Iterator<Item = &str> {
        self.registries.keys().map(String::as_str)
    }
}

/// The opened index with its bookkeeping.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) index: Index,
    /// The registries canonical tarball URLs in this index may be relative to: its
    /// `meta/upstream` and every registry recorded from.
    pub(crate) bases: Vec<String>,
    /// Where the fetch times of this index are kept.
    times_file: Option<PathBuf>,
    times: Mutex<FetchTimes>,
    changed: Mutex<BTreeSet<String>>,
}

impl Opened {
    fn times(&self) -> MutexGuard<'_, FetchTimes> {
        // The sections under this lock cannot panic; recover the data if one ever did.
        self.times.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn is_fresh(&self, registry: &str, name: &str, max_age: Duration) -> bool {
        self.times().is_fresh(registry, name, max_age, SystemTime::now())
    }

    /// Note a fetch now (kept in memory until [`LocalIndex::save_times`]).
    pub(crate) fn fetched(&self, registry: &str, name: &str, at: SystemTime) {
        self.times().set(registry, name, at);
        self.changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_owned());
    }
}

enum Opener {
    Dir(PathBuf),
    Ready(Index),
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opener::Dir(d) => f.debug_tuple("Dir").field(d).finish(),
            Opener::Ready(_) => f.write_str("Ready"),
        }
    }
}

/// The local index, opened on first use, with its fetch-time bookkeeping.
#[derive(Debug)]
pub struct LocalIndex {
    opener: Opener,
    times_file: Option<PathBuf>,
    /// The registry to set as `meta/upstream` of a fresh index.
    upstream: Option<RegistryUrl>,
    /// Where registries other than the shared index's upstream keep their own index.
    others: Option<PathBuf>,
    cell: OnceCell<Opened>,
}

/// The folder name of `registry`'s own index under [`LocalIndex::others_under`]: its host and
/// port for people, and a hash of the whole base URL (scheme and path too) for uniqueness.
pub fn registry_dir_name(registry: &RegistryUrl) -> String {
    use sha2::Digest as _;
    let base = registry.as_str();
    let digest = sha2::Sha256::digest(base.as_bytes());
    let host: String = base
        .split("://")
        .nth(1)
        .unwrap_or(base)
        .split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .take(64)
        .collect();
    format!("{host}-{}", hex::encode(&digest[..8]))
}

impl LocalIndex {
    /// The index stored in `dir` (created on first use), with fetch times in `times_file`.
    pub fn at(dir: PathBuf, times_file: PathBuf) -> Self {
        Self::with(Opener::Dir(dir), Some(times_file))
    }

    /// An index already open (tests, in-memory tries); fetch times are kept in `times_file`
    /// when given, else only in memory.
    pub fn from_index(index: Index, times_file: Option<PathBuf>) -> Self {
        Self::with(Opener::Ready(index), times_file)
    }

    fn with(opener: Opener, times_file: Option<PathBuf>) -> Self {
        LocalIndex { opener, times_file, upstream: None, others: None, cell: OnceCell::new() }
    }

    /// Make `registry` the `meta/upstream` of the index if it has none yet (what `ims index`
    /// does on its first ingest): canonical tarball URLs are then stored as such.
    pub fn upstream(mut self, registry: &RegistryUrl) -> Self {
        self.upstream = Some(registry.clone());
        self
    }

    /// Keep the index of a registry other than the shared index's upstream in its own folder
    /// under `root` (`root/<`[`registry_dir_name`]`>/index`, fetch times beside it), never in
    /// the shared one. Without it (tests, in-memory indexes) the index given is used whatever
    /// its upstream.
    pub fn others_under(mut self, root: PathBuf) -> Self {
        self.others = Some(root);
        self
    }

    /// The opened index, opening it on the first call.
    pub(crate) async fn get(&self) -> Result<&Opened, LocalIndexError> {
        self.cell
            .get_or_try_init(|| async {
                let (mut index, times_file) = match &self.opener {
                    Opener::Dir(dir) => {
                        let shared = open_index(dir, Open::OrCreate).await?;
                        match (&self.upstream, &self.others, shared.upstream()) {
                            (Some(up), Some(root), Some(owner)) if owner != up.as_str() => {
                                let own = root.join(registry_dir_name(up));
                                tracing::debug!(
                                    shared = owner,
                                    registry = up.as_str(),
                                    dir = %own.display(),
                                    "another registry than the shared index's: using its own index"
                                );
                                let index = open_index(&own.join("index"), Open::OrCreate).await?;
                                (index, Some(own.join("fetched.json")))
                            }
                            _ => (shared, self.times_file.clone()),
                        }
                    }
                    Opener::Ready(index) => (index.clone(), self.times_file.clone()),
                };
                if index.upstream().is_none()
                    && let Some(up) = &self.upstream
                {
                    index.set_upstream(up).await?;
                }
                let times = times_file.as_deref().map(FetchTimes::load).unwrap_or_default();
                let mut bases: Vec<String> = index.upstream().into_iter().map(str::to_owned).collect();
                for r in times.registries() {
                    if !bases.iter().any(|b| b == r) {
                        bases.push(r.to_owned());
                    }
                }
                Ok(Opened { index, bases, times_file, times: Mutex::new(times), changed: Mutex::default() })
            })
            .await
    }

    /// The index if it was opened during this install.
    pub fn opened(&self) -> Option<&Index> {
        self.cell.get().map(|o| &o.index)
    }

    /// Write the fetch times back if any changed; merged with the file as it is now, so two
    /// installs in the same home lose neither's times.
    pub(crate) fn save_times(&self) -> std::io::Result<usize> {
        let Some(opened) = self.cell.get() else { return Ok(0) };
        let Some(file) = &opened.times_file else { return Ok(0) };
        let changed =
            std::mem::take(&mut *opened.changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if changed.is_empty() {
            return Ok(0);
        }
        let mut on_disk = FetchTimes::load(file);
        let ours = opened.times();
        for (registry, names) in &ours.registries {
            for name in names.keys().filter(|n| changed.contains(*n)) {
                if let Some(at) = ours.get(registry, name) {
                    on_disk.set(registry, name, at);
                }
            }
        }
        on_disk.save(file)?;
        Ok(changed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_times_round_trip_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        let now = SystemTime::now();
        let mut t = FetchTimes::default();
        t.set("http://a/", "x", now - Duration::from_secs(10));
        t.save(&file).unwrap();
        let back = FetchTimes::load(&file);
        assert_eq!(back, t);
        assert!(back.is_fresh("http://a/", "x", Duration::from_secs(300), now));
        assert!(!back.is_fresh("http://a/", "x", Duration::from_secs(5), now));
        assert!(!back.is_fresh("http://b/", "x", Duration::from_secs(300), now), "another registry");
        assert!(!back.is_fresh("http://a/", "y", Duration::from_secs(300), now));
        std::fs::write(&file, b"{not json").unwrap();
        assert_eq!(FetchTimes::load(&file), FetchTimes::default());
    }

    #[test]
    fn each_registry_has_its_own_folder() {
        let a = RegistryUrl::parse("http://127.0.0.1:4873/").unwrap();
        let b = RegistryUrl::parse("http://127.0.0.1:4873/other/").unwrap();
        let c = RegistryUrl::parse("https://127.0.0.1:4873/").unwrap();
        let names = [registry_dir_name(&a), registry_dir_name(&b), registry_dir_name(&c)];
        assert!(names[0].starts_with("127.0.0.1_4873-"), "{}", names[0]);
        assert_ne!(names[0], names[1]);
        assert_ne!(names[0], names[2]);
        assert_eq!(names[0], registry_dir_name(&a));
        assert!(names.iter().all(|n| !n.contains('/') && !n.contains("..")));
    }
}
