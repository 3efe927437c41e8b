//! The content-addressed tarball store keyed by integrity, shared by install, serve and seed
//! (DESIGN.md §Install; spec `npm-registry-and-installers.md` §5.1 rules 5–7, §5.2).
//!
//! Layout under the store root (one filesystem, so renames are atomic):
//!
//! ```text
//! tarballs/<alg>/<hh>/<hex>.tgz     verified compressed tarballs, exactly as published
//! unpacked/<alg>/<hh>/<hex>/        each tarball extracted once (first component stripped)
//! unpacked/<alg>/<hh>/<hex>.verified  written after that folder is in place: the hash ims
//!                                   verified the bytes against (a folder without it is
//!                                   not trusted, and is unpacked again)
//! tmp/                              staging: temp files and directories, renamed into place
//! ```
//!
//! `<hex>` is always the hash the bytes were verified against, never another hash an integrity
//! string lists beside it: `sha512-<A> sha512-<B>` is satisfied by bytes hashing to `B`
//! (ssri's rule), and those bytes are then stored as `B` only, so they can never be handed out
//! to an install that asks for `A`.
//!
//! Nothing becomes visible before it is verified: bytes are hashed while they stream into a
//! temp file ([`PendingTarball`]) and renamed into place only when the hash matches; extraction
//! goes into a staging directory renamed into place only when every entry passed the checks of
//! [`extract()`]. Installs then link files from `unpacked/` into `node_modules`.
//!
//! ```no_run
//! # fn main() -> Result<(), indexer::tarballs::TarballError> {
//! use indexer::tarballs::{Integrity, TarballStore};
//! let store = TarballStore::open("/tmp/store")?;
//! let integrity: Integrity = "sha512-...".parse()?;
//! let bytes = std::fs::read("pkg.tgz").unwrap_or_default();
//! let unpacked = store.put_and_unpack(&integrity, &bytes)?;
//! println!("{}", unpacked.path.display());
//! # Ok(()) }
//! ```

mod error;
mod extract;
mod integrity;

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{ExtractError, TarballError};
pub use extract::{ExtractReport, Limits, Skipped, extract};
pub use integrity::{Algorithm, Hash, Hasher, Integrity, IntegrityParseError};

/// Handle on a tarball store directory. Cheap to clone; safe to share between threads and
/// processes (every write is a rename of a finished temp file or directory).
#[derive(Debug, Clone)]
pub struct TarballStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    limits: Limits,
}

/// A package extracted in the store.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The package folder (what `node_modules/<name>` should contain).
    pub path: PathBuf,
    /// What extraction wrote, when this call extracted it (`None` if it was already there).
    pub report: Option<ExtractReport>,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TarballError + '_ {
    move |source| TarballError::Io { path: path.to_path_buf(), source }
}

impl TarballStore {
    /// Open (creating if needed) a store rooted at `root`, with default [`Limits`].
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, TarballError> {
        let root = root.into();
        for sub in ["tarballs", "unpacked", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        Ok(TarballStore { inner: Arc::new(Inner { root, limits: Limits::default() }) })
    }

    /// The same store with other caps.
    pub fn with_limits(self, limits: Limits) -> Self {
        TarballStore { inner: Arc::new(Inner { root: self.inner.root.clone(), limits }) }
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The caps in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Where content with exactly this hash lives under `top` (`tarballs`, `unpacked`).
    fn hash_path(&self, top: &str, hash: &Hash, ext: &str) -> PathBuf {
        let hex = hash.hex();
        let (head, _) = hex.split_at(2);
        self.inner.root.join(top).join(hash.algorithm.name()).join(head).join(format!("{hex}{ext}"))
    }

    /// Where the verified tarball whose bytes hash to `hash` lives (whether or not it is there).
    pub fn tarball_file(&self, hash: &Hash) -> PathBuf {
        self.hash_path("tarballs", hash, ".tgz")
    }

    /// Where the package extracted from the tarball whose bytes hash to `hash` lives (whether
    /// or not it is there).
    pub fn unpacked_dir(&self, hash: &Hash) -> PathBuf {
        self.hash_path("unpacked", hash, "")
    }

    /// The marker that says ims itself verified and unpacked the package at
    /// [`unpacked_dir`](Self::unpacked_dir)`(hash)`: it holds the hash, written only after the
    /// staged directory was renamed into place.
    fn marker_file(&self, hash: &Hash) -> PathBuf {
        self.hash_path("unpacked", hash, ".verified")
    }

    /// Where the verified tarball with this integrity lives: the file of the first of its
    /// hashes the store holds, else where its first hash's file would go. Content is keyed by
    /// the hash it was verified against, never by a hash merely listed beside it.
    pub fn tarball_path(&self, integrity: &Integrity) -> PathBuf {
        integrity
            .hashes()
            .iter()
            .map(|h| self.tarball_file(h))
            .find(|p| p.is_file())
            .unwrap_or_else(|| self.tarball_file(integrity.primary()))
    }

    /// Where the extracted package with this integrity lives: the directory of the first of
    /// its hashes that the store holds verified, else where its first hash's would go.
    pub fn unpacked_path(&self, integrity: &Integrity) -> PathBuf {
        self.unpacked(integrity).unwrap_or_else(|| self.unpacked_dir(integrity.primary()))
    }

    /// Whether the store holds a tarball satisfying the integrity.
    pub fn has_tarball(&self, integrity: &Integrity) -> bool {
        integrity.hashes().iter().any(|h| self.tarball_file(h).is_file())
    }

    /// The extracted package folder, if ims unpacked it before from bytes it verified against
    /// one of the integrity's hashes (the folder's marker names that hash). A folder without
    /// its marker — left by an older ims, or by anyone else — is not trusted: it is unpacked
    /// again from a verified tarball.
    pub fn unpacked(&self, integrity: &Integrity) -> Option<PathBuf> {
        integrity.hashes().iter().find_map(|h| self.trusted_dir(h))
    }

    fn trusted_dir(&self, hash: &Hash) -> Option<PathBuf> {
        let path = self.unpacked_dir(hash);
        let marker = fs::read_to_string(self.marker_file(hash)).ok()?;
        (marker.trim() == hash.to_string() && path.is_dir()).then_some(path)
    }

    /// Start streaming a tarball into the store: feed it with [`PendingTarball::write_chunk`],
    /// then [`PendingTarball::commit`] verifies and renames it into place.
    pub fn begin(&self, expected: &Integrity) -> Result<PendingTarball, TarballError> {
        let tmp = self.inner.root.join("tmp");
        let file = tempfile::Builder::new().prefix("tgz-").tempfile_in(&tmp).map_err(io_at(&tmp))?;
        Ok(PendingTarball {
            file,
            store: self.clone(),
            kept: None,
            hasher: expected.hasher(),
            expected: expected.clone(),
            written: 0,
            limit: self.inner.limits.max_tarball_bytes,
        })
    }

    /// Verify `bytes` against `expected` and store them. Nothing is written on a mismatch.
    pub fn put_bytes(&self, expected: &Integrity, bytes: &[u8]) -> Result<PathBuf, TarballError> {
        check_size(expected, bytes.len() as u64, self.inner.limits.max_tarball_bytes)?;
        verify(expected, bytes)?;
        let mut pending = self.begin(expected)?;
        // Already verified above; the pending writer hashes again, which costs little.
        pending.write_chunk(bytes)?;
        pending.commit()
    }

    /// Verify, store and extract a tarball held in memory; the usual path for an install that
    /// fetched it. Returns at once if it was already unpacked.
    pub fn put_and_unpack(&self, expected: &Integrity, bytes: &[u8]) -> Result<Unpacked, TarballError> {
        let hash = verify(expected, bytes)?;
        if let Some(path) = self.trusted_dir(&hash) {
            return Ok(Unpacked { path, report: None });
        }
        self.put_bytes(expected, bytes)?;
        self.unpack_verified(&hash, bytes)
    }

    /// Extract a stored tarball (verifying it again first), once: later calls return the
    /// existing folder. A stored file that no longer matches its name is deleted (it is
    /// then [`TarballError::IntegrityMismatch`] once, and missing after that).
    pub fn unpack(&self, integrity: &Integrity) -> Result<Unpacked, TarballError> {
        if let Some(path) = self.unpacked(integrity) {
            return Ok(Unpacked { path, report: None });
        }
        let src = self.tarball_path(integrity);
        let bytes = match fs::read(&src) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(TarballError::Missing { integrity: integrity.to_string() });
            }
            Err(e) => return Err(io_at(&src)(e)),
        };
        let hash = match verify(integrity, &bytes) {
            Ok(hash) => hash,
            Err(e) => {
                // Not what its name says (an older ims keyed content by a hash it had not
                // verified): never serve it again.
                tracing::warn!(file = %src.display(), "removing a stored tarball that fails its integrity");
                let _ = fs::remove_file(&src);
                return Err(e);
            }
        };
        self.unpack_verified(&hash, &bytes)
    }

    /// Extract `bytes`, already verified to hash to `hash`, into the folder of `hash`.
    fn unpack_verified(&self, hash: &Hash, bytes: &[u8]) -> Result<Unpacked, TarballError> {
        let tmp = self.inner.root.join("tmp");
        let staging = tempfile::Builder::new().prefix("pkg-").tempdir_in(&tmp).map_err(io_at(&tmp))?;
        let report = extract(bytes, staging.path(), &self.inner.limits)
            .map_err(|source| TarballError::Extract { integrity: hash.to_string(), source })?;
        let dest = self.unpacked_dir(hash);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, &dest) {
            if !dest.is_dir() {
                let _ = fs::remove_dir_all(&staged);
                return Err(io_at(&dest)(e));
            }
            // Another process unpacked the same content first: theirs is as good as ours once
            // it has written its marker (right after its rename).
            for _ in 0..40 {
                if let Some(path) = self.trusted_dir(hash) {
                    let _ = fs::remove_dir_all(&staged);
                    return Ok(Unpacked { path, report: None });
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            // No marker: a folder ims did not verify (an older store, or a crash between the
            // rename and the marker). Ours replaces it.
            tracing::warn!(dir = %dest.display(), "replacing an unpacked package ims did not verify");
            let aside = tempfile::Builder::new().prefix("old-").tempdir_in(&tmp).map_err(io_at(&tmp))?;
            let old = aside.path().join("pkg");
            fs::rename(&dest, &old).map_err(io_at(&dest))?;
            if let Err(e) = fs::rename(&staged, &dest) {
                let _ = fs::remove_dir_all(&staged);
                return Err(io_at(&dest)(e));
            }
        }
        self.write_marker(hash)?;
        tracing::debug!(%hash, files = report.files, "unpacked tarball");
        Ok(Unpacked { path: dest, report: Some(report) })
    }

    /// Write the marker of `hash` atomically (a temp file renamed into place).
    fn write_marker(&self, hash: &Hash) -> Result<(), TarballError> {
        let marker = self.marker_file(hash);
        let tmp = self.inner.root.join("tmp");
        let mut file = tempfile::Builder::new().prefix("mark-").tempfile_in(&tmp).map_err(io_at(&tmp))?;
        file.write_all(hash.to_string().as_bytes()).map_err(io_at(&marker))?;
        file.persist(&marker).map_err(|e| TarballError::Io { path: marker.clone(), source: e.error })?;
        Ok(())
    }
}

fn check_size(expected: &Integrity, len: u64, limit: u64) -> Result<(), TarballError> {
    if len > limit {
        return Err(TarballError::TooLarge { integrity: expected.to_string(), limit });
    }
    Ok(())
}

/// Check `bytes` against `expected` (its strongest algorithm, as `ssri` does); returns the
/// hash they matched, which is the one the store keys them by.
pub fn verify(expected: &Integrity, bytes: &[u8]) -> Result<Hash, TarballError> {
    let mut hasher = expected.hasher();
    hasher.update(bytes);
    let actual = hasher.finish();
    if expected.matches(&actual) {
        Ok(actual)
    } else {
        Err(TarballError::IntegrityMismatch { expected: expected.to_string(), actual: actual.to_string() })
    }
}

/// A tarball being streamed into the store: hashed as it is written to a temp file, which is
/// renamed into place only by a [`commit`](PendingTarball::commit) whose hash matches. Dropping
/// it without committing deletes the temp file.
#[derive(Debug)]
pub struct PendingTarball {
    file: tempfile::NamedTempFile,
    store: TarballStore,
    /// The bytes written, when they are to be unpacked right after the commit
    /// ([`keep_bytes`](Self::keep_bytes)).
    kept: Option<Vec<u8>>,
    hasher: Hasher,
    expected: Integrity,
    written: u64,
    limit: u64,
}

impl PendingTarball {
    /// Append the next chunk of the download.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), TarballError> {
        self.written += chunk.len() as u64;
        check_size(&self.expected, self.written, self.limit)?;
        self.hasher.update(chunk);
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(chunk);
        }
        let path = self.file.path().to_path_buf();
        self.file.write_all(chunk).map_err(io_at(&path))
    }

    /// Keep the bytes in memory too (at most the store's tarball cap), so that
    /// [`commit_and_unpack`](Self::commit_and_unpack) extracts them without reading the file
    /// back and hashing it again. `size_hint` (a `Content-Length`) sizes the buffer once.
    pub fn keep_bytes(mut self, size_hint: Option<u64>) -> Self {
        let cap = size_hint.unwrap_or(0).min(self.limit).min(64 << 20);
        self.kept = Some(Vec::with_capacity(usize::try_from(cap).unwrap_or(0)));
        self
    }

    /// [`commit`](Self::commit), then extract what was written, once (blocking: call it off
    /// the async workers). The bytes were hashed as they came, so they are not hashed again.
    pub fn commit_and_unpack(mut self) -> Result<Unpacked, TarballError> {
        let kept = self.kept.take();
        let store = self.store.clone();
        let (hash, path) = self.commit_verified()?;
        if let Some(dir) = store.trusted_dir(&hash) {
            return Ok(Unpacked { path: dir, report: None });
        }
        match kept {
            Some(bytes) => store.unpack_verified(&hash, &bytes),
            None => {
                let bytes = fs::read(&path).map_err(io_at(&path))?;
                let integrity = Integrity::from(hash.clone());
                verify(&integrity, &bytes)?;
                store.unpack_verified(&hash, &bytes)
            }
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verify the hash and move the tarball into place; returns its store path.
    pub fn commit(self) -> Result<PathBuf, TarballError> {
        self.commit_verified().map(|(_, path)| path)
    }

    /// [`commit`](Self::commit), returning the hash the bytes were verified against (the key
    /// they are stored under) as well.
    pub fn commit_verified(self) -> Result<(Hash, PathBuf), TarballError> {
        let actual = self.hasher.finish();
        if !self.expected.matches(&actual) {
            return Err(TarballError::IntegrityMismatch {
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            });
        }
        // Keyed by what the bytes hash to: an integrity listing another hash beside this one
        // can never put these bytes under that other hash's name.
        let dest = self.store.tarball_file(&actual);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        self.file.persist(&dest).map_err(|e| TarballError::Io { path: dest.clone(), source: e.error })?;
        Ok((actual, dest))
    }
}
