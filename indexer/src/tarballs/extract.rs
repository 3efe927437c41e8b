//! Safe extraction of an npm package tarball into a fresh directory (spec
//! `npm-registry-and-installers.md` §5.1, "Rules for our Rust extractor").
//!
//! Only regular files and directories are written. The first path component is stripped
//! whatever its name. Absolute, `..`, backslash and drive-letter paths are refused, names that
//! collide after Unicode and case folding are refused, modes are normalised to 0644/0755, and
//! the inflated size and entry count are capped against gzip bombs. Links are never created:
//! npm drops them, so we skip those that stay inside the package and refuse those that point
//! out (a hostile archive); devices and FIFOs are refused.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tar::EntryType;
use unicode_normalization::UnicodeNormalization as _;

use super::error::ExtractError;

/// Caps that bound what a tarball can make us write. Defaults fit every real npm package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a compressed tarball may have.
    pub max_tarball_bytes: u64,
    /// Most bytes of inflated tar stream (the gzip-bomb bound).
    pub max_unpacked_bytes: u64,
    /// Most tar entries.
    pub max_entries: u64,
    /// Longest entry path in bytes.
    pub max_path_bytes: usize,
    /// Deepest entry path in components.
    pub max_depth: usize,
    /// Most memory the table of paths seen (kept to find names that collide after case and
    /// Unicode folding, and to make each directory once) may take: each distinct file or
    /// directory costs its name twice plus a fixed overhead.
    pub max_path_table_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tarball_bytes: 512 << 20,
            max_unpacked_bytes: 2 << 30,
            max_entries: 200_000,
            max_path_bytes: 4096,
            max_depth: 128,
            max_path_table_bytes: 64 << 20,
        }
    }
}

/// Why an entry was left out without failing the extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry path as it appeared in the archive.
    pub entry: String,
    /// Why it was not written (for logs and the install summary).
    pub reason: &'static str,
}

/// What an extraction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Regular files written.
    pub files: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Entries deliberately not written (links inside the package, empty paths, PAX globals).
    pub skipped: Vec<Skipped>,
}

/// A reader that fails once more than `limit` bytes have come through: the gzip-bomb bound is
/// enforced on the inflated stream itself, so no header can talk us past it.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(BombMarker));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct BombMarker;
impl std::fmt::Display for BombMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("inflated size limit reached")
    }
}
impl std::error::Error for BombMarker {}

fn is_bomb(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<BombMarker>())
}

/// Extract the (gzip-compressed or plain) tar `archive` into `dest`, which must be an empty
/// directory we created ourselves (so there are no pre-existing links to follow).
///
/// On error `dest` may hold part of the package; callers extract into a staging directory and
/// delete it on failure, so nothing partial ever becomes visible.
pub fn extract(archive: &[u8], dest: &Path, limits: &Limits) -> Result<ExtractReport, ExtractError> {
    let gz = archive.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + '_> =
        if gz { Box::new(flate2::read::GzDecoder::new(archive)) } else { Box::new(archive) };
    let bounded = Bounded { inner: reader, read: 0, limit: limits.max_unpacked_bytes };
    let bomb = |e: io::Error| {
        if is_bomb(&e) {
            ExtractError::UnpackedTooLarge { limit: limits.max_unpacked_bytes }
        } else {
            ExtractError::Corrupt { source: e }
        }
    };

    let mut tar = tar::Archive::new(bounded);
    let mut report = ExtractReport::default();
    let mut paths = PathTable::new(limits.max_path_table_bytes);
    let mut count = 0u64;
    for entry in tar.entries().map_err(bomb)? {
        let mut entry = entry.map_err(bomb)?;
        count += 1;
        if count > limits.max_entries {
            return Err(ExtractError::TooManyEntries { limit: limits.max_entries });
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                check_link(&raw, &target, kind == EntryType::Symlink)?;
                report.skipped.push(Skipped { entry: raw, reason: "link (npm drops links)" });
                continue;
            }
            EntryType::XGlobalHeader => {
                report.skipped.push(Skipped { entry: raw, reason: "pax global header" });
                continue;
            }
            other => {
                return Err(ExtractError::UnsupportedEntry { entry: raw, kind: kind_name(other) });
            }
        }
        let Some(rel) = sanitize(&raw, limits)? else {
            report.skipped.push(Skipped { entry: raw, reason: "empty after stripping" });
            continue;
        };
        let (node, unmade) = paths.insert(&rel, &raw)?;
        let path = dest.join(&rel);
        let io_err = |source| ExtractError::Io { path: path.clone(), source };
        if kind == EntryType::Directory {
            if !paths.is_made(node) {
                fs::create_dir_all(&path).map_err(io_err)?;
                paths.mark_made(node);
            }
            continue;
        }
        if let Some(parent) = unmade {
            let parent_rel: PathBuf = rel.iter().take(paths.depth(parent)).collect();
            let at = dest.join(parent_rel);
            fs::create_dir_all(&at).map_err(|source| ExtractError::Io { path: at.clone(), source })?;
            paths.mark_made(parent);
        }
        let exec = entry.header().mode().map(|m| m & 0o111 != 0).unwrap_or(false);
        let mut file = open_new(&path, exec).map_err(io_err)?;
        let n = io::copy(&mut entry, &mut file).map_err(|e| {
            if is_bomb(&e) {
                ExtractError::UnpackedTooLarge { limit: limits.max_unpacked_bytes }
            } else {
                ExtractError::Io { path: path.clone(), source: e }
            }
        })?;
        report.files += 1;
        report.bytes += n;
    }
    Ok(report)
}

#[cfg(unix)]
fn open_new(path: &Path, exec: bool) -> io::Result<fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mode = if exec { 0o755 } else { 0o644 };
    match fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path) {
        Ok(file) => Ok(file),
        // A duplicate entry replaces the earlier file, as tar does. `dest` is ours and holds
        // no links, so truncating an existing path cannot write through one; its mode is set
        // exactly, as the first entry's may differ.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let file = fs::OpenOptions::new().write(true).truncate(true).open(path)?;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            Ok(file)
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn open_new(path: &Path, _exec: bool) -> io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::GNUSparse => "GNU sparse file",
        _ => "unsupported entry type",
    }
}

/// Turn an archive path into a safe relative path below the package folder, or `None` when
/// nothing is left after stripping the first component (the `package/` directory itself).
fn sanitize(raw: &str, limits: &Limits) -> Result<Option<PathBuf>, ExtractError> {
    let refuse = |reason: &'static str| ExtractError::UnsafePath { entry: raw.to_owned(), reason };
    if raw.len() > limits.max_path_bytes {
        return Err(refuse("path too long"));
    }
    if raw.contains('\0') {
        return Err(refuse("NUL byte in path"));
    }
    if raw.contains('\\') {
        return Err(refuse("backslash in path"));
    }
    if raw.starts_with('/') {
        return Err(refuse("absolute path"));
    }
    let mut parts = raw.split('/').filter(|c| !c.is_empty() && *c != ".");
    let first = parts.next();
    if first.is_some_and(is_drive) {
        return Err(refuse("drive-letter path"));
    }
    if first == Some("..") {
        return Err(refuse("`..` component"));
    }
    let mut rel = PathBuf::new();
    let mut depth = 0;
    for part in parts {
        if part == ".." {
            return Err(refuse("`..` component"));
        }
        if is_drive(part) {
            return Err(refuse("drive-letter path"));
        }
        depth += 1;
        if depth > limits.max_depth {
            return Err(refuse("path too deep"));
        }
        rel.push(part);
    }
    Ok(if depth == 0 { None } else { Some(rel) })
}

/// `C:` or `C:x`: a Windows drive prefix, which would escape on Windows (CVE-2021-37713).
fn is_drive(component: &str) -> bool {
    let b = component.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Refuse a link whose target leaves the package (absolute, or climbing above its root).
fn check_link(raw: &str, target: &str, symlink: bool) -> Result<(), ExtractError> {
    let escapes = || ExtractError::LinkEscapes { entry: raw.to_owned(), target: target.to_owned() };
    if target.starts_with('/') || target.contains('\\') || target.split('/').next().is_some_and(is_drive) {
        return Err(escapes());
    }
    // Symlink targets are relative to the link's directory; hardlink targets to the archive
    // root. Count the depth available below the stripped package root.
    let mut depth: i64 =
        if symlink { raw.split('/').filter(|c| !c.is_empty() && *c != ".").count() as i64 - 2 } else { -1 };
    for part in target.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if part == ".." {
            depth -= 1;
            if depth < 0 {
                return Err(escapes());
            }
        } else {
            depth += 1;
        }
    }
    Ok(())
}

/// Unicode NFKC plus lowercase (with `ß` as `ss`): names equal under this fold would land on
/// one file on a case-insensitive or normalising filesystem (CVE-2021-37712, CVE-2026-23950).
fn fold(s: &str) -> String {
    s.nfkc().flat_map(char::to_lowercase).collect::<String>().replace('ß', "ss")
}

/// The paths an extraction has seen, as a tree of components keyed by their folded spelling:
/// each distinct file or directory is one node holding its name as first spelled, so memory
/// grows with the names written (capped), not with every prefix of every path, and each entry
/// costs one walk of its own components.
struct PathTable {
    /// (parent node, folded component) -> node.
    children: HashMap<(u32, String), u32>,
    nodes: Vec<Node>,
    bytes: u64,
    limit: u64,
}

struct Node {
    /// The component as first spelled.
    name: String,
    parent: u32,
    depth: u32,
    /// Whether its directory was created (files are never "made").
    made: bool,
}

/// What one table node costs beyond its names (map entry, vector slot, allocations).
const NODE_OVERHEAD: u64 = 96;

impl PathTable {
    fn new(limit: u64) -> Self {
        // Node 0 is the package root, made by the caller.
        let root = Node { name: String::new(), parent: 0, depth: 0, made: true };
        PathTable { children: HashMap::new(), nodes: vec![root], bytes: 0, limit }
    }

    /// Record `rel` and its parent directories; refuse a spelling that differs from an earlier
    /// one of the same fold (case or Unicode normalisation), and a table past its cap. Returns
    /// the node of `rel` and the deepest parent directory not made yet, if any.
    fn insert(&mut self, rel: &Path, raw: &str) -> Result<(u32, Option<u32>), ExtractError> {
        let mut at = 0u32;
        for comp in rel.iter() {
            let comp = comp.to_string_lossy();
            let key = (at, fold(&comp));
            at = match self.children.get(&key) {
                Some(&node) => {
                    if self.nodes[node as usize].name != comp {
                        let other = self.spelling(node);
                        return Err(ExtractError::CaseCollision { entry: raw.to_owned(), other });
                    }
                    node
                }
                None => {
                    self.bytes += NODE_OVERHEAD + (key.1.len() + comp.len()) as u64;
                    if self.bytes > self.limit {
                        return Err(ExtractError::TooManyPaths { limit: self.limit });
                    }
                    let id = u32::try_from(self.nodes.len())
                        .map_err(|_| ExtractError::TooManyPaths { limit: self.limit })?;
                    let depth = self.nodes[at as usize].depth + 1;
                    self.nodes.push(Node { name: comp.into_owned(), parent: at, depth, made: false });
                    self.children.insert(key, id);
                    id
                }
            };
        }
        let parent = self.nodes[at as usize].parent;
        let unmade = (at != 0 && !self.nodes[parent as usize].made).then_some(parent);
        Ok((at, unmade))
    }

    /// The path of `node` as first spelled.
    fn spelling(&self, mut node: u32) -> String {
        let mut parts = Vec::new();
        while node != 0 {
            let n = &self.nodes[node as usize];
            parts.push(n.name.as_str());
            node = n.parent;
        }
        parts.reverse();
        parts.join("/")
    }

    fn depth(&self, node: u32) -> usize {
        self.nodes[node as usize].depth as usize
    }

    fn is_made(&self, node: u32) -> bool {
        self.nodes[node as usize].made
    }

    /// Note that the directory of `node` and all its parents exist.
    fn mark_made(&mut self, mut node: u32) {
        while node != 0 && !self.nodes[node as usize].made {
            self.nodes[node as usize].made = true;
            node = self.nodes[node as usize].parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_first_component_whatever_its_name() {
        let l = Limits::default();
        assert_eq!(sanitize("package/a/b.js", &l).unwrap(), Some(PathBuf::from("a/b.js")));
        assert_eq!(sanitize("node-v1/index.js", &l).unwrap(), Some(PathBuf::from("index.js")));
        assert_eq!(sanitize("./package/./x", &l).unwrap(), Some(PathBuf::from("x")));
        assert_eq!(sanitize("package/", &l).unwrap(), None);
    }

    #[test]
    fn refuses_escapes() {
        let l = Limits::default();
        for bad in ["package/../x", "../x", "/etc/passwd", "////etc/x", "package/C:x", "C:../x", "a\\..\\b"] {
            assert!(sanitize(bad, &l).is_err(), "{bad}");
        }
    }

    #[test]
    fn link_targets() {
        assert!(check_link("package/a", "b", true).is_ok());
        assert!(check_link("package/d/a", "../b", true).is_ok());
        assert!(check_link("package/a", "../b", true).is_err());
        assert!(check_link("package/a", "/etc/passwd", true).is_err());
        assert!(check_link("package/a", "package/b", false).is_ok());
        assert!(check_link("package/a", "../../x", false).is_err());
    }

    #[test]
    fn folds_case_and_unicode() {
        assert_eq!(fold("README"), fold("readme"));
        assert_eq!(fold("straße"), fold("STRASSE"));
        assert_eq!(fold("e\u{301}"), fold("\u{e9}"));
    }
}
