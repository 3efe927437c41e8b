//! The node identity: an X25519 key pair whose public half is the node's P2P name and its
//! Noise static key (DESIGN.md "Identity"; wire spec §3.1), loaded or created under `--home`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;
use tokio::io::AsyncWriteExt;
use x25519_dalek::{PublicKey, StaticSecret};

/// A node's public name: its 32-byte X25519 static public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; 32]);

impl NodeId {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

/// Loading or creating the node identity failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The identity file could not be read or written.
    #[error("identity file {path}: {source}")]
    Io {
        /// The identity file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The identity file does not hold 64 hex digits (a 32-byte X25519 secret key).
    #[error("identity file {path} is malformed: expected 64 hex digits")]
    Malformed {
        /// The identity file.
        path: PathBuf,
    },
    /// The operating system's random source failed.
    #[error("random source unavailable: {0}")]
    Random(String),
}

/// Parsing a [`NodeId`] from hex failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a node id is 64 hex digits")]
pub struct ParseNodeIdError;

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut bytes).map_err(|_| ParseNodeIdError)?;
        Ok(Self(bytes))
    }
}

/// The node key pair: X25519, used as the Noise static key.
///
/// The secret is stored as libsodium does: 32 raw, unclamped bytes; X25519 clamps when it
/// multiplies, so the same bytes give the same public key here, in snow and in JS.
#[derive(Clone)]
pub struct Identity {
    secret: [u8; 32],
    public: NodeId,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("public", &self.public).finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh random identity.
    ///
    /// # Panics
    /// Never in practice: only if the operating system has no random source, which would make
    /// every handshake insecure anyway. Use [`Identity::try_generate`] to handle that case.
    pub fn generate() -> Self {
        #[allow(clippy::expect_used)]
        Self::try_generate().expect("operating system random source")
    }

    /// A fresh random identity, reporting a failing random source.
    pub fn try_generate() -> Result<Self, IdentityError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| IdentityError::Random(e.to_string()))?;
        Ok(Self::from_secret_bytes(secret))
    }

    /// The identity with this secret key.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        let public = PublicKey::from(&StaticSecret::from(secret));
        Self { secret, public: NodeId(public.to_bytes()) }
    }

    /// The key pair JS's `hypercore-protocol.keyPair(seed)` derives
    /// (`crypto_kx_seed_keypair`: secret = BLAKE2b-256(seed), unkeyed).
    pub fn from_seed(seed: &[u8]) -> Self {
        let secret: [u8; 32] = Blake2b::<U32>::digest(seed).into();
        Self::from_secret_bytes(secret)
    }

    /// The public key: this node's name.
    pub fn public_key(&self) -> NodeId {
        self.public
    }

    /// The raw secret key (to hand to snow).
    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Loads the identity stored at `path`, or creates a random one there (mode 0600, written
    /// to a temporary file and renamed, so a crash never leaves a half-written key).
    pub async fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        let io = |source| IdentityError::Io { path: path.to_path_buf(), source };
        match tokio::fs::read_to_string(path).await {
            Ok(text) => {
                let mut secret = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut secret)
                    .map_err(|_| IdentityError::Malformed { path: path.to_path_buf() })?;
                Ok(Self::from_secret_bytes(secret))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Self::try_generate()?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir).await.map_err(io)?;
                }
                let tmp = path.with_extension("tmp");
                let mut options = tokio::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                options.mode(0o600);
                let mut file = options.open(&tmp).await.map_err(io)?;
                file.write_all(format!("{}\n", hex::encode(identity.secret)).as_bytes()).await.map_err(io)?;
                file.sync_all().await.map_err(io)?;
                drop(file);
                tokio::fs::rename(&tmp, path).await.map_err(io)?;
                tracing::info!(path = %path.display(), node = %identity.public, "created node identity");
                Ok(identity)
            }
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_hex_roundtrip() {
        let id = Identity::from_secret_bytes([7; 32]).public_key();
        assert_eq!(id.to_hex().parse::<NodeId>(), Ok(id));
        assert!("abc".parse::<NodeId>().is_err());
    }

    #[tokio::test]
    async fn load_or_create_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/identity");
        let a = Identity::load_or_create(&path).await.expect("create");
        let b = Identity::load_or_create(&path).await.expect("load");
        assert_eq!(a.public_key(), b.public_key());
        std::fs::write(&path, "zz").expect("write");
        assert!(matches!(Identity::load_or_create(&path).await, Err(IdentityError::Malformed { .. })));
    }
}
