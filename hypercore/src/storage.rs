//! Where a feed keeps its bytes: in memory or in a crash-safe directory of this crate's own
//! layout (spec §4 describes JS's files, which we deliberately do not copy).
//!
//! # Directory layout
//!
//! ```text
//! <dir>/secret_key   64 bytes, seed ‖ public key; writers only; written before `log` exists
//! <dir>/log          header, then records, appended only
//! ```
//!
//! `log` header (76 bytes): `"IMSHCLOG"` · u32be version (1) · public key (32) ·
//! BLAKE2b-256 of the previous 44 bytes. It is written to a temporary file, synced and renamed,
//! so a `log` file always has a whole header.
//!
//! Each record is one `append`/`append_batch` call of a writer or one verified `put` of a
//! replica ("HCR1"), or a group of such calls committed together ("HCR2"):
//!
//! ```text
//! "HCR1" · u32be meta_len · u64be data_len · checksum (32) · call · data
//! "HCR2" · u32be meta_len · u64be data_len · checksum (32) · u32be count · count × call · data
//! call = u64be first_seq · u32be block_count · u32be node_count
//!        · u8 has_sig [· u64be slot · signature (64)] · node_count × (u64be index · hash · u64be size)
//! data = each call's block_count blocks end to end, calls in order; their sizes are the sizes
//!        of their leaf nodes in the call's meta
//! ```
//!
//! The checksum is BLAKE2b-256 over the first 16 bytes and the meta (everything before the
//! data); the data is covered by the leaf hashes in the meta, checked when a block is read.
//!
//! # Crash safety
//!
//! A record is written at the end of the log and synced (`fdatasync`) before any call in it
//! returns, so an append that returned is durable. Concurrent calls share one record, one write
//! and one sync (group commit, `commit.rs`): a group is one record, not several, because the
//! pages of one write may reach the disk in any order, and only the last record may be torn.
//! Records are written one after another, so only the last one can be incomplete after a crash. Opening scans the record headers (skipping data):
//! a tail record that is short, zero-filled, fails its checksum, or whose data does not match
//! its leaf hashes is cut off (it was never acknowledged). Anything wrong *before* the last
//! record is corruption and is reported as [`StorageError::Corrupt`] naming the file. The
//! replayed state is then checked against the signature before the feed is handed out.
//!
//! # Code
//!
//! This file holds [`Storage`], the open log handle (`Store`, over either backend) and the log
//! header; `memory` is the memory backend, `disk` opens and creates feed directories,
//! `replay` is the crash replay on open, and `record` the record codec.

mod disk;
mod memory;
mod record;
mod replay;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::crypto::PublicKey;
use crate::error::StorageError;
pub(crate) use disk::{open_existing, save_secret_key};
use memory::MemoryLog;
pub(crate) use record::{Meta, encode_header};
pub(crate) use replay::replay;

/// Where a feed lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// In memory; gone when the last handle drops. For tests and short-lived replicas.
    Memory,
    /// A directory on disk (created if missing): `secret_key` (writers only) and `log`, an
    /// append-only file of checksummed records, one per append call or verified put (or per
    /// group of concurrent ones), synced before the calls return. The full layout and crash rules are in `src/storage.rs`.
    Disk(PathBuf),
}

impl Storage {
    /// In-memory storage.
    pub fn memory() -> Self {
        Storage::Memory
    }

    /// A directory on disk.
    pub fn disk(path: impl Into<PathBuf>) -> Self {
        Storage::Disk(path.into())
    }

    /// The path errors name: the directory, or `<memory>`.
    pub fn path(&self) -> PathBuf {
        match self {
            Storage::Memory => PathBuf::from("<memory>"),
            Storage::Disk(p) => p.clone(),
        }
    }
}

const LOG_MAGIC: &[u8; 8] = b"IMSHCLOG";
const LOG_VERSION: u32 = 1;
/// Length of the log header.
pub(crate) const HEADER_LEN: u64 = 76;

enum Backend {
    Memory(RwLock<MemoryLog>),
    Disk(File),
}

/// The open log: positioned reads and writes, sync, truncate.
pub(crate) struct Store {
    backend: Backend,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io { op, path: path.to_path_buf(), source }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt { path: path.to_path_buf(), offset, reason: reason.into() }
}

impl Store {
    /// The log file's path (or `<memory>/log`), for errors.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> Result<u64, StorageError> {
        match &self.backend {
            Backend::Memory(v) => Ok(v.read().map_or(0, |v| v.len)),
            Backend::Disk(f) => Ok(f.metadata().map_err(io("stat", &self.path))?.len()),
        }
    }

    pub(crate) fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Memory(v) => {
                let mut v = v.write().map_err(|_| corrupt(&self.path, offset, "memory store poisoned"))?;
                v.write(offset, bytes.to_vec());
                Ok(())
            }
            Backend::Disk(f) => f.write_all_at(bytes, offset).map_err(io("write", &self.path)),
        }
    }

    /// [`write_at`](Self::write_at) of a buffer we may keep: in memory it becomes part of the
    /// log as it is, without a copy. A backend that does not keep it (disk) hands it back,
    /// for the caller to reuse.
    pub(crate) fn write_owned(&self, offset: u64, bytes: Vec<u8>) -> Result<Option<Vec<u8>>, StorageError> {
        match &self.backend {
            Backend::Memory(v) => {
                let mut v = v.write().map_err(|_| corrupt(&self.path, offset, "memory store poisoned"))?;
                v.write(offset, bytes);
                Ok(None)
            }
            Backend::Disk(_) => self.write_at(offset, &bytes).map(|()| Some(bytes)),
        }
    }

    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Memory(v) => {
                let v = v.read().map_err(|_| corrupt(&self.path, offset, "memory store poisoned"))?;
                if v.read(offset, buf) { Ok(()) } else { Err(corrupt(&self.path, offset, "read past end")) }
            }
            Backend::Disk(f) => f.read_exact_at(buf, offset).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    corrupt(&self.path, offset, "file is shorter than its records say")
                } else {
                    io("read", &self.path)(e)
                }
            }),
        }
    }

    /// The `len` bytes at `offset` as a new buffer (from memory: one copy, no zeroing first
    /// when they lie in one segment, as a block does).
    pub(crate) fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        match &self.backend {
            Backend::Memory(v) => {
                let v = v.read().map_err(|_| corrupt(&self.path, offset, "memory store poisoned"))?;
                if let Some(view) = v.view(offset, len) {
                    return Ok(view.to_vec());
                }
                let mut buf = vec![0u8; len];
                if v.read(offset, &mut buf) {
                    Ok(buf)
                } else {
                    Err(corrupt(&self.path, offset, "read past end"))
                }
            }
            Backend::Disk(_) => {
                let mut buf = vec![0u8; len];
                self.read_at(offset, &mut buf)?;
                Ok(buf)
            }
        }
    }

    /// [`read_vec`](Self::read_vec) as shared bytes: from memory, a view of the log (no
    /// copy) when they lie in one segment, as a block does.
    pub(crate) fn read_shared(&self, offset: u64, len: usize) -> Result<bytes::Bytes, StorageError> {
        if let Backend::Memory(v) = &self.backend {
            let v = v.read().map_err(|_| corrupt(&self.path, offset, "memory store poisoned"))?;
            if let Some(view) = v.view(offset, len) {
                return Ok(view);
            }
        }
        self.read_vec(offset, len).map(bytes::Bytes::from)
    }

    /// Make every write so far durable.
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Disk(f) => f.sync_data().map_err(io("sync", &self.path)),
        }
    }

    pub(crate) fn truncate(&self, len: u64) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Memory(v) => {
                if let Ok(mut v) = v.write() {
                    v.truncate(len);
                }
                Ok(())
            }
            Backend::Disk(f) => {
                f.set_len(len).map_err(io("truncate", &self.path))?;
                f.sync_all().map_err(io("sync", &self.path))
            }
        }
    }

    /// Whether this is in-memory storage (no I/O to wait for).
    pub(crate) fn is_memory(&self) -> bool {
        matches!(self.backend, Backend::Memory(_))
    }

    /// Whether block reads should be re-hashed (disk can rot; memory cannot).
    pub(crate) fn checks_reads(&self) -> bool {
        matches!(self.backend, Backend::Disk(_))
    }
}

/// The log header of the feed with key `public` (layout above).
fn header_bytes(public: &PublicKey) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(LOG_MAGIC);
    h[8..12].copy_from_slice(&LOG_VERSION.to_be_bytes());
    h[12..44].copy_from_slice(public.as_bytes());
    let sum = crate::crypto::blake2b_256(&h[..44]);
    h[44..].copy_from_slice(&sum);
    h
}

/// Create a new, empty feed in `storage`.
pub(crate) fn create(storage: &Storage, public: &PublicKey) -> Result<Store, StorageError> {
    let header = header_bytes(public);
    match storage {
        Storage::Memory => Ok(Store {
            backend: Backend::Memory(RwLock::new(MemoryLog::with_header(&header))),
            path: PathBuf::from("<memory>/log"),
        }),
        Storage::Disk(dir) => disk::create(dir, &header),
    }
}
