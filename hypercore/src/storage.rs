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

mod record;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::crypto::{PublicKey, SecretKey, leaf_hash};
use crate::error::StorageError;
pub(crate) use record::{Meta, encode_header};

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

/// An in-memory log: contiguous segments covering `0..len`, keyed by their offset. Large
/// writes keep their own buffer ([`Store::write_owned`] takes it without a copy), so the log
/// is never copied as it grows, unlike one `Vec` that is reallocated.
#[derive(Default)]
struct MemoryLog {
    segments: std::collections::BTreeMap<u64, bytes::Bytes>,
    len: u64,
}

impl MemoryLog {
    fn truncate(&mut self, len: u64) {
        if len >= self.len {
            return;
        }
        let _ = self.segments.split_off(&len);
        if let Some((&at, seg)) = self.segments.iter_mut().next_back() {
            seg.truncate((len - at) as usize);
        }
        self.len = len;
    }

    /// `truncate(offset)` (zero-filling up to `offset` if the log is shorter), then `bytes`.
    fn write(&mut self, offset: u64, bytes: Vec<u8>) {
        self.truncate(offset);
        if offset > self.len {
            let gap = (offset - self.len) as usize;
            self.segments.insert(self.len, vec![0; gap].into());
            self.len = offset;
        }
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len() as u64;
        self.segments.insert(offset, bytes.into());
    }

    /// The `len` bytes at `offset` if they lie in one segment, without a copy.
    fn view(&self, offset: u64, len: usize) -> Option<bytes::Bytes> {
        let (&at, seg) = self.segments.range(..=offset).next_back()?;
        let from = (offset - at) as usize;
        let to = from.checked_add(len).filter(|&to| to <= seg.len())?;
        Some(seg.slice(from..to))
    }

    /// Copies out `buf.len()` bytes at `offset`; false if that runs past the end.
    fn read(&self, offset: u64, buf: &mut [u8]) -> bool {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.len) {
            return false;
        }
        let mut done = 0;
        for (&at, seg) in self.segments.range(..offset + buf.len() as u64).rev() {
            // Walk back from the last segment that starts before the end of the read.
            let seg_end = at + seg.len() as u64;
            let from = offset.max(at);
            let to = (offset + buf.len() as u64).min(seg_end);
            if from < to {
                let (dst, src) = ((from - offset) as usize, (from - at) as usize);
                let n = (to - from) as usize;
                buf[dst..dst + n].copy_from_slice(&seg[src..src + n]);
                done += n;
            }
            if at <= offset {
                break;
            }
        }
        done == buf.len()
    }
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

fn header_bytes(public: &PublicKey) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(LOG_MAGIC);
    h[8..12].copy_from_slice(&LOG_VERSION.to_be_bytes());
    h[12..44].copy_from_slice(public.as_bytes());
    let sum = crate::crypto::blake2b_256(&h[..44]);
    h[44..].copy_from_slice(&sum);
    h
}

/// What opening storage found.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) store: Store,
    pub(crate) public: PublicKey,
    pub(crate) secret: Option<SecretKey>,
}

/// Open existing storage; `Ok(None)` if it holds no feed yet.
pub(crate) fn open_existing(storage: &Storage) -> Result<Option<Found>, StorageError> {
    let Storage::Disk(dir) = storage else { return Ok(None) };
    let log_path = dir.join("log");
    let file = match OpenOptions::new().read(true).write(true).open(&log_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", &log_path)(e)),
    };
    let store = Store { backend: Backend::Disk(file), path: log_path.clone() };
    let mut header = [0u8; HEADER_LEN as usize];
    if store.len()? < HEADER_LEN {
        return Err(corrupt(&log_path, 0, "file shorter than its header"));
    }
    store.read_at(0, &mut header)?;
    let public = PublicKey::from_bytes(&header[12..44]).map_err(|e| corrupt(&log_path, 12, e.to_string()))?;
    if header != header_bytes(&public) {
        return Err(corrupt(&log_path, 0, "bad log header (magic, version or checksum)"));
    }
    let sk_path = dir.join("secret_key");
    let secret = match std::fs::read(&sk_path) {
        Ok(bytes) => Some(SecretKey::from_bytes(&bytes).map_err(|e| corrupt(&sk_path, 0, e.to_string()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("read", &sk_path)(e)),
    };
    if let Some(sk) = &secret
        && sk.public_key() != public
    {
        return Err(corrupt(&sk_path, 32, "secret key belongs to another feed"));
    }
    Ok(Some(Found { store, public, secret }))
}

/// Write `bytes` to `path` atomically: temporary file, sync, rename, sync the directory.
/// Files are created owner-only (0600): `secret_key` must not be readable by others.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("sync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync", dir))
}

/// Store a secret key for an existing or new feed (before its log exists, for new ones).
pub(crate) fn save_secret_key(storage: &Storage, secret: &SecretKey) -> Result<(), StorageError> {
    let Storage::Disk(dir) = storage else { return Ok(()) };
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    write_atomic(dir, "secret_key", secret.as_bytes())
}

/// Create a new, empty feed in `storage`.
pub(crate) fn create(storage: &Storage, public: &PublicKey) -> Result<Store, StorageError> {
    let header = header_bytes(public);
    match storage {
        Storage::Memory => Ok(Store {
            backend: Backend::Memory(RwLock::new({
                let mut log = MemoryLog::default();
                log.write(0, header.to_vec());
                log
            })),
            path: PathBuf::from("<memory>/log"),
        }),
        Storage::Disk(dir) => {
            std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
            write_atomic(dir, "log", &header)?;
            let path = dir.join("log");
            let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io("open", &path))?;
            Ok(Store { backend: Backend::Disk(file), path })
        }
    }
}

/// Replay every record: calls `apply(meta, data_offset)` in order and returns the log end.
/// Cuts off an incomplete tail record (see the module docs); reports other damage.
pub(crate) fn replay(
    store: &Store,
    mut apply: impl FnMut(Meta, u64) -> Result<(), String>,
) -> Result<u64, StorageError> {
    let path = store.path().to_path_buf();
    let file_len = store.len()?;
    let mut pos = HEADER_LEN;
    let mut reader = ReadAhead { store, file_len, start: 0, buf: Vec::new() };
    let mut prefix_bytes = [0u8; record::PREFIX_LEN];
    let mut meta_buf = Vec::new();
    while pos < file_len {
        let torn = |reason: &str| {
            tracing::warn!(file = %path.display(), offset = pos, reason, "cutting off incomplete tail record");
        };
        if file_len - pos < record::PREFIX_LEN as u64 {
            torn("short prefix");
            store.truncate(pos)?;
            return Ok(pos);
        }
        reader.read(pos, &mut prefix_bytes)?;
        let Some(prefix) = record::parse_prefix(&prefix_bytes) else {
            if is_zero_tail(store, pos, file_len)? {
                torn("zero-filled tail");
                store.truncate(pos)?;
                return Ok(pos);
            }
            return Err(corrupt(&path, pos, "bad record magic"));
        };
        let meta_start = pos + record::PREFIX_LEN as u64;
        let data_start = meta_start + u64::from(prefix.meta_len);
        let end = data_start.saturating_add(prefix.data_len);
        if prefix.meta_len > record::MAX_META_LEN || end > file_len {
            torn("record runs past the end of the file");
            store.truncate(pos)?;
            return Ok(pos);
        }
        let is_last = end == file_len;
        meta_buf.resize(prefix.meta_len as usize, 0);
        reader.read(meta_start, &mut meta_buf)?;
        let metas = match record::decode_meta(&prefix_bytes, &prefix, &meta_buf) {
            Ok(metas) => metas,
            Err(reason) if is_last => {
                torn(reason);
                store.truncate(pos)?;
                return Ok(pos);
            }
            Err(reason) => return Err(corrupt(&path, pos, reason)),
        };
        // The leaf nodes of each call's blocks must account for exactly the record's data.
        let sizes: Vec<Vec<u64>> = metas.iter().map(leaf_sizes).collect();
        let total = sizes.iter().flatten().try_fold(0u64, |acc, s| acc.checked_add(*s));
        if total != Some(prefix.data_len)
            || metas.iter().zip(&sizes).any(|(m, s)| s.len() != m.block_count as usize)
        {
            if is_last {
                torn("leaf sizes do not match data length");
                store.truncate(pos)?;
                return Ok(pos);
            }
            return Err(corrupt(&path, pos, "leaf sizes do not match data length"));
        }
        if is_last && !tail_data_ok(store, &metas, data_start)? {
            torn("data does not match leaf hashes");
            store.truncate(pos)?;
            return Ok(pos);
        }
        let mut data_offset = data_start;
        for (meta, sizes) in metas.into_iter().zip(&sizes) {
            apply(meta, data_offset).map_err(|reason| corrupt(&path, pos, reason))?;
            data_offset += sizes.iter().sum::<u64>();
        }
        pos = end;
    }
    Ok(pos)
}

/// Bytes read ahead at a time while replaying: record headers are small and mostly adjacent,
/// so this turns two syscalls per record into one per megabyte.
const READ_AHEAD: usize = 1 << 20;

/// A read-ahead window over the log for the sequential replay scan.
struct ReadAhead<'a> {
    store: &'a Store,
    file_len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl ReadAhead<'_> {
    /// Fill `out` from `offset`; the caller has checked the range lies within the file.
    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), StorageError> {
        let end = offset + out.len() as u64;
        if offset < self.start || end > self.start + self.buf.len() as u64 {
            if out.len() > READ_AHEAD {
                return self.store.read_at(offset, out);
            }
            let n = (self.file_len.saturating_sub(offset)).min(READ_AHEAD as u64) as usize;
            self.buf.resize(n.max(out.len()), 0);
            self.store.read_at(offset, &mut self.buf)?;
            self.start = offset;
        }
        let i = (offset - self.start) as usize;
        out.copy_from_slice(&self.buf[i..i + out.len()]);
        Ok(())
    }
}

/// The sizes of the leaf nodes of a call's blocks, in block order (shorter if some are
/// missing). Linear in the nodes: a batch may hold a million blocks.
fn leaf_sizes(meta: &Meta) -> Vec<u64> {
    leaves(meta).into_iter().map_while(|l| l.map(|n| n.size)).collect()
}

/// The leaf node of each of a call's blocks, in block order, `None` where it is missing.
fn leaves(meta: &Meta) -> Vec<Option<&crate::tree::Node>> {
    let count = meta.block_count as usize;
    let mut out = vec![None; count.min(meta.nodes.len())];
    for n in &meta.nodes {
        if n.index % 2 == 0
            && let Some(k) = (n.index / 2).checked_sub(meta.first_seq)
            && let Some(slot) = out.get_mut(k as usize)
            && slot.is_none()
        {
            *slot = Some(n);
        }
    }
    out
}

fn tail_data_ok(store: &Store, metas: &[Meta], data_start: u64) -> Result<bool, StorageError> {
    let mut off = data_start;
    let mut buf = Vec::new();
    for meta in metas {
        let leaves = leaves(meta);
        if leaves.len() != meta.block_count as usize {
            return Ok(false);
        }
        for leaf in leaves {
            let Some(leaf) = leaf else { return Ok(false) };
            buf.resize(leaf.size as usize, 0);
            store.read_at(off, &mut buf)?;
            if leaf_hash(&buf) != leaf.hash {
                return Ok(false);
            }
            off += leaf.size;
        }
    }
    Ok(true)
}

fn is_zero_tail(store: &Store, pos: u64, file_len: u64) -> Result<bool, StorageError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = pos;
    while off < file_len {
        let n = ((file_len - off) as usize).min(buf.len());
        store.read_at(off, &mut buf[..n])?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        off += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::MemoryLog;

    fn read(log: &MemoryLog, offset: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0xee; len];
        log.read(offset, &mut buf).then_some(buf)
    }

    #[test]
    fn memory_log_reads_across_segments_and_truncates_inside_one() {
        let mut log = MemoryLog::default();
        log.write(0, b"head".to_vec());
        log.write(4, (0..100u8).collect());
        log.write(104, b"tail".to_vec());
        assert_eq!(log.len, 108);
        let whole: Vec<u8> = b"head".iter().copied().chain(0..100u8).chain(*b"tail").collect();
        assert_eq!(read(&log, 0, 108).as_deref(), Some(&whole[..]));
        assert_eq!(read(&log, 2, 10).as_deref(), Some(&whole[2..12]));
        assert_eq!(read(&log, 100, 8).as_deref(), Some(&whole[100..108]));
        assert_eq!(read(&log, 108, 0).as_deref(), Some(&[][..]));
        assert_eq!(read(&log, 100, 9), None);
        assert_eq!(read(&log, u64::MAX, 2), None);
        // Cut inside the middle segment, then write over the cut.
        log.truncate(50);
        assert_eq!(log.len, 50);
        assert_eq!(read(&log, 0, 50).as_deref(), Some(&whole[..50]));
        assert_eq!(read(&log, 49, 2), None);
        log.write(20, b"new".to_vec());
        assert_eq!(log.len, 23);
        assert_eq!(read(&log, 18, 5).as_deref(), Some(&[whole[18], whole[19], b'n', b'e', b'w'][..]));
        // A write past the end zero-fills the gap, as a file would.
        log.write(30, b"x".to_vec());
        assert_eq!(read(&log, 22, 9).as_deref(), Some(&[b'w', 0, 0, 0, 0, 0, 0, 0, b'x'][..]));
        log.truncate(0);
        assert_eq!((log.len, log.segments.len()), (0, 0));
    }
}
