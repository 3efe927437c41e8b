//! `FeedBuilder`: opens or creates a feed in some storage, as a writer (key pair) or a sparse
//! read-only replica (public key only), and replays its log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::block_source::BlockSource;
use crate::commit::Committer;
use crate::crypto::{KeyPair, PublicKey, SecretKey};
use crate::error::{OpenError, StorageError};
use crate::feed::{Feed, Inner};
use crate::state::{State, Writer};
use crate::storage::{self, Storage};

/// How long [`Feed::get`] waits for a missing block by default.
pub const DEFAULT_GET_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a [`Feed`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use hypercore::{FeedBuilder, KeyPair, Storage};
/// let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await?;
/// let seq = feed.append(b"hello").await?;
/// assert_eq!(feed.get(seq).await?, b"hello");
/// # Ok(()) }
/// ```
pub struct FeedBuilder {
    storage: Storage,
    key_pair: Option<KeyPair>,
    public: Option<PublicKey>,
    source: Option<Arc<dyn BlockSource>>,
    get_timeout: Duration,
}

impl std::fmt::Debug for FeedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedBuilder")
            .field("storage", &self.storage)
            .field("public", &self.public.or(self.key_pair.as_ref().map(|k| k.public)))
            .field("writable", &self.key_pair.is_some())
            .field("block_source", &self.source.is_some())
            .field("get_timeout", &self.get_timeout)
            .finish()
    }
}

impl FeedBuilder {
    /// Start building a feed in `storage`.
    pub fn new(storage: Storage) -> Self {
        Self { storage, key_pair: None, public: None, source: None, get_timeout: DEFAULT_GET_TIMEOUT }
    }

    /// Open as the writer with this key pair.
    pub fn key_pair(mut self, key_pair: KeyPair) -> Self {
        self.key_pair = Some(key_pair);
        self
    }

    /// Open as a read-only (sparse) replica of the feed with this public key.
    pub fn public_key(mut self, public: PublicKey) -> Self {
        self.public = Some(public);
        self
    }

    /// Where a replica asks for missing blocks.
    pub fn block_source(mut self, source: Arc<dyn BlockSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// How long [`Feed::get`] waits for a missing block.
    pub fn get_timeout(mut self, timeout: Duration) -> Self {
        self.get_timeout = timeout;
        self
    }

    /// Open the feed: read its key and log from storage (creating it if empty, with a fresh
    /// key pair if none was given), check it against the key given, replay and verify it.
    pub async fn open(self) -> Result<Feed, OpenError> {
        match self.storage {
            Storage::Memory => self.open_blocking(),
            Storage::Disk(_) => {
                tokio::task::spawn_blocking(move || self.open_blocking()).await.map_err(|e| {
                    OpenError::Storage(StorageError::Io {
                        op: "open",
                        path: "<open task>".into(),
                        source: std::io::Error::other(e.to_string()),
                    })
                })?
            }
        }
    }

    fn open_blocking(self) -> Result<Feed, OpenError> {
        let path = self.storage.path();
        let given = self.key_pair.as_ref().map(|k| k.public).or(self.public);
        if let (Some(kp), Some(pk)) = (&self.key_pair, &self.public)
            && kp.public != *pk
        {
            return Err(OpenError::KeyMismatch { path, stored: pk.to_hex(), given: kp.public.to_hex() });
        }
        let (store, public, secret): (_, PublicKey, Option<SecretKey>) =
            match storage::open_existing(&self.storage)? {
                Some(found) => {
                    if let Some(given) = given
                        && given != found.public
                    {
                        return Err(OpenError::KeyMismatch {
                            path,
                            stored: found.public.to_hex(),
                            given: given.to_hex(),
                        });
                    }
                    let secret = match (&self.key_pair, found.secret) {
                        (Some(kp), None) => {
                            storage::save_secret_key(&self.storage, &kp.secret)?;
                            Some(kp.secret.clone())
                        }
                        (_, stored) => stored,
                    };
                    // A replica handle is read-only even if a secret key is stored.
                    let secret = if self.public.is_some() && self.key_pair.is_none() { None } else { secret };
                    (found.store, found.public, secret)
                }
                None => {
                    let key_pair = match (&self.key_pair, self.public) {
                        (Some(kp), _) => Some(kp.clone()),
                        (None, Some(_)) => None,
                        (None, None) => Some(KeyPair::try_generate()?),
                    };
                    let public = key_pair
                        .as_ref()
                        .map(|k| k.public)
                        .or(self.public)
                        .ok_or(OpenError::NoKey { path })?;
                    if let Some(kp) = &key_pair {
                        storage::save_secret_key(&self.storage, &kp.secret)?;
                    }
                    (storage::create(&self.storage, &public)?, public, key_pair.map(|k| k.secret))
                }
            };

        let mut state = State::new();
        let end = storage::replay(&store, |meta, data_offset| state.apply(&meta, data_offset))?;
        let verifier = public.verifier()?;
        state.check_signature(&verifier).map_err(|reason| OpenError::Verify {
            key: public.to_hex(),
            path: store.path().to_path_buf(),
            reason,
        })?;
        tracing::debug!(key = %public, len = state.length, "opened feed");
        let (events, _) = broadcast::channel(1024);
        Ok(Feed {
            inner: Arc::new(Inner {
                public,
                discovery: public.discovery_key(),
                verifier,
                signer: secret.map(|s| s.signer()),
                store: Arc::new(store),
                state: Mutex::new(state),
                writer: tokio::sync::Mutex::new(Writer::default()),
                committer: Committer::new(end),
                events,
                source: self.source,
                get_timeout: self.get_timeout,
            }),
        })
    }
}
