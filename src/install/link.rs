//! Store → `node_modules`: each package folder is recreated and its files hardlinked from the
//! store's unpacked copy (falling back to a copy across filesystems), so a warm install
//! writes no file content at all (DESIGN.md §Install; spec §4.2 "Extraction").
//!
//! Packages that will run install scripts must be copied instead (`copy = true`): a script
//! writing into a hardlinked file would change the shared store.

use std::fs;
use std::io;
use std::path::Path;

use super::error::LinkError;

/// What one link pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Files hardlinked.
    pub linked: u64,
    /// Files copied (by request or because hardlinking failed).
    pub copied: u64,
    /// Directories created.
    pub dirs: u64,
}

/// Recreate `src` (an unpacked package in the store) at `dest`, replacing whatever `dest`
/// held. Only directories and regular files are followed: the store holds nothing else.
pub fn link_package(src: &Path, dest: &Path, copy: bool) -> Result<LinkStats, LinkError> {
    let err = |from: &Path, to: &Path| {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        move |source| LinkError::Io { from, to, source }
    };
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(dest).map_err(err(src, dest))?,
        Ok(_) => fs::remove_file(dest).map_err(err(src, dest))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(src, dest)(e)),
    }
    let mut stats = LinkStats::default();
    let mut stack = vec![(src.to_path_buf(), dest.to_path_buf())];
    let mut hardlinks_work = !copy;
    while let Some((from_dir, to_dir)) = stack.pop() {
        fs::create_dir_all(&to_dir).map_err(err(&from_dir, &to_dir))?;
        stats.dirs += 1;
        for entry in fs::read_dir(&from_dir).map_err(err(&from_dir, &to_dir))? {
            let entry = entry.map_err(err(&from_dir, &to_dir))?;
            let kind = entry.file_type().map_err(err(&entry.path(), &to_dir))?;
            let from = entry.path();
            let to = to_dir.join(entry.file_name());
            if kind.is_dir() {
                stack.push((from, to));
            } else if kind.is_file() {
                if hardlinks_work {
                    match fs::hard_link(&from, &to) {
                        Ok(()) => {
                            stats.linked += 1;
                            continue;
                        }
                        // Across filesystems (EXDEV) or where links are not allowed: copy
                        // this and every later file.
                        Err(e) => {
                            tracing::debug!(error = %e, from = %from.display(), "hardlink failed, copying");
                            hardlinks_work = false;
                        }
                    }
                }
                fs::copy(&from, &to).map_err(err(&from, &to))?;
                stats.copied += 1;
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_then_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("store/pkg");
        fs::create_dir_all(src.join("lib")).unwrap();
        fs::write(src.join("package.json"), "{}").unwrap();
        fs::write(src.join("lib/a.js"), "a").unwrap();
        let dest = dir.path().join("node_modules/pkg");
        fs::create_dir_all(&dest).unwrap();
        fs::write(dest.join("stale.js"), "old").unwrap();
        let stats = link_package(&src, &dest, false).unwrap();
        assert_eq!(stats.linked + stats.copied, 2);
        assert!(!dest.join("stale.js").exists());
        assert_eq!(fs::read_to_string(dest.join("lib/a.js")).unwrap(), "a");
        let copied = link_package(&src, &dir.path().join("c"), true).unwrap();
        assert_eq!(copied.copied, 2);
    }
}
