//! Errors of the tarball store: storing (integrity, size, IO) and extracting (hostile entries).

use std::io;
use std::path::PathBuf;

use super::integrity::IntegrityParseError;

/// Why a tarball could not be extracted. Each variant names the archive entry at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The entry's path would land outside the package folder or is malformed.
    #[error("tar entry {entry:?} refused: {reason}")]
    UnsafePath {
        /// The path as it appeared in the archive.
        entry: String,
        /// What is wrong with it (absolute, `..`, drive letter, ...).
        reason: &'static str,
    },
    /// A symlink or hardlink whose target points outside the package.
    #[error("tar entry {entry:?} refused: link to {target:?} points outside the package")]
    LinkEscapes {
        /// The link's path in the archive.
        entry: String,
        /// Where it points.
        target: String,
    },
    /// A device, FIFO or other entry type that is never extracted.
    #[error("tar entry {entry:?} refused: {kind} entries are never extracted")]
    UnsupportedEntry {
        /// The path in the archive.
        entry: String,
        /// The entry type.
        kind: &'static str,
    },
    /// Two names that differ only by case or Unicode normalisation.
    #[error("tar entry {entry:?} refused: it collides with {other:?} on case-insensitive filesystems")]
    CaseCollision {
        /// The later entry.
        entry: String,
        /// The earlier path it collides with (after stripping).
        other: String,
    },
    /// The inflated stream exceeded the cap (a gzip bomb, or an absurd package).
    #[error("tarball inflates past {limit} bytes")]
    UnpackedTooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// More entries than the cap.
    #[error("tarball has more than {limit} entries")]
    TooManyEntries {
        /// The cap.
        limit: u64,
    },
    /// The tarball names more distinct files and directories (or longer ones) than the
    /// extractor will keep track of.
    #[error("tarball names too many paths (their table would pass {limit} bytes)")]
    TooManyPaths {
        /// The cap in bytes.
        limit: u64,
    },
    /// Not valid gzip or tar.
    #[error("tarball is corrupt")]
    Corrupt {
        /// The decoder's complaint.
        #[source]
        source: io::Error,
    },
    /// Writing the extracted file or directory failed.
    #[error("could not write {path}")]
    Io {
        /// The path being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Why the store could not store, find or unpack a tarball. Each variant names the integrity
/// (content key) or the file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarballError {
    /// The bytes do not hash to the expected integrity; nothing was stored.
    #[error("integrity mismatch: expected {expected}, got {actual}")]
    IntegrityMismatch {
        /// What the metadata or lockfile promised.
        expected: String,
        /// What the bytes hash to (same algorithm).
        actual: String,
    },
    /// The integrity string itself is malformed.
    #[error(transparent)]
    BadIntegrity(#[from] IntegrityParseError),
    /// The compressed tarball is larger than the cap; nothing was stored.
    #[error("tarball {integrity} is larger than {limit} bytes")]
    TooLarge {
        /// Its expected integrity.
        integrity: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The store holds no tarball with this integrity.
    #[error("tarball {integrity} is not in the store")]
    Missing {
        /// The integrity asked for.
        integrity: String,
    },
    /// Extraction refused the tarball; nothing was made visible.
    #[error("could not extract tarball {integrity}")]
    Extract {
        /// The tarball's integrity.
        integrity: String,
        /// What was wrong.
        #[source]
        source: ExtractError,
    },
    /// A store file or directory could not be read or written.
    #[error("tarball store IO failed on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}
