//! The disk half of the layout (see the parent module): opening an existing feed directory
//! (header and secret key checks), creating one, and the atomic writes both use.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Backend, HEADER_LEN, Storage, Store, corrupt, header_bytes, io};
use crate::crypto::{PublicKey, SecretKey};
use crate::error::StorageError;

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

/// Create the directory `dir` and its `log` holding only `header`.
pub(super) fn create(dir: &Path, header: &[u8]) -> Result<Store, StorageError> {
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    write_atomic(dir, "log", header)?;
    let path = dir.join("log");
    let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io("open", &path))?;
    Ok(Store { backend: Backend::Disk(file), path })
}
