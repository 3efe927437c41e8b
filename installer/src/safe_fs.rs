//! Writing into a project that may be hostile (a cloned repository can commit symlinks and
//! lockfiles): every path ims writes, chmods or removes under `node_modules` is checked to
//! stay there once symlinks are taken into account (npm's CVE-2021-39134/39135 class).
//!
//! A project is not a concurrent attacker: what it can plant is committed files and links,
//! so checking each path component with `lstat` before the write is enough, and a final
//! component that is a link is replaced or removed itself, never followed.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};

use crate::error::LinkError;

/// Where a link was found that a write into `node_modules` would have followed.
fn symlink_error(path: &Path) -> LinkError {
    LinkError::Symlink { path: path.to_path_buf(), target: fs::read_link(path).unwrap_or_default() }
}

/// Refuse a `project/node_modules` that is a symbolic link (`node_modules -> ../..`), as npm
/// and pnpm do: everything ims writes below it would land wherever the link points.
pub(crate) fn check_node_modules(project: &Path) -> Result<(), LinkError> {
    let nm = project.join("node_modules");
    match fs::symlink_metadata(&nm) {
        Ok(m) if m.file_type().is_symlink() => Err(symlink_error(&nm)),
        _ => Ok(()),
    }
}

/// Check that writing or removing `project/<location>` (a `node_modules/...` path) stays inside
/// `project/node_modules`: no component between `project` and the last one may be a symbolic
/// link. The last one may be (it is then replaced or removed itself, never followed).
pub(crate) fn check_inside(project: &Path, location: &str) -> Result<(), LinkError> {
    let parts: Vec<&str> = location.split('/').collect();
    let mut at = project.to_path_buf();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(symlink_error(&at)),
            Ok(_) => {}
            // Nothing further down exists: it will be created as real folders.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// The regular file `dir/<relative>`, reached without following any symbolic link: `None`
/// when a component is a link, the file is not a regular file, or it does not exist.
pub(crate) fn regular_file_within(dir: &Path, relative: &str) -> Option<PathBuf> {
    let mut at = dir.to_path_buf();
    let rel = Path::new(relative);
    let mut components = rel.components().peekable();
    while let Some(c) = components.next() {
        let Component::Normal(part) = c else { return None };
        at.push(part);
        let meta = fs::symlink_metadata(&at).ok()?;
        if meta.file_type().is_symlink() {
            return None;
        }
        let last = components.peek().is_none();
        if last && !meta.is_file() || !last && !meta.is_dir() {
            return None;
        }
    }
    Some(at)
}

/// `path` with `.` dropped and `..` applied to the components before it (no file system
/// access): how a symlink's target reads once joined to the folder holding the link.
pub(crate) fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A fresh temporary sibling of `path`, opened with `O_CREAT|O_EXCL` (a link planted at that
/// name is removed first, never followed).
fn create_temp(path: &Path) -> io::Result<(PathBuf, fs::File)> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.ims-tmp-{}", std::process::id()));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    Ok((tmp, file))
}

/// Write `contents` to `path` by a fresh temporary file renamed over it: a symbolic link at
/// `path` (or at the temporary name) is replaced, never written through.
pub(crate) fn write_replacing(path: &Path, contents: &[u8]) -> io::Result<()> {
    let (tmp, mut file) = create_temp(path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Make the regular file at `path` executable (`mode | 0755`) without touching an inode other
/// paths share: a file hardlinked from the store is first replaced by its own copy, so the
/// store (and every other project linked to it) keeps its mode.
#[cfg(unix)]
pub(crate) fn make_executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = fs::symlink_metadata(path)?;
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0o111 {
        return Ok(());
    }
    let wanted = fs::Permissions::from_mode((mode | 0o755) & 0o777);
    if meta.nlink() <= 1 {
        return fs::set_permissions(path, wanted);
    }
    let (tmp, mut file) = create_temp(path)?;
    let copied = fs::File::open(path)
        .and_then(|mut from| io::copy(&mut from, &mut file))
        .and_then(|_| file.set_permissions(wanted));
    drop(file);
    if let Err(e) = copied.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn make_executable(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt as _, symlink};

    #[test]
    fn links_in_the_path_are_refused_the_last_one_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (project, outside) = (dir.path().join("p"), dir.path().join("outside"));
        fs::create_dir_all(project.join("node_modules/@s")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        symlink(&outside, project.join("node_modules/link")).unwrap();
        assert!(check_inside(&project, "node_modules/link").is_ok(), "the last one is replaced");
        assert!(matches!(
            check_inside(&project, "node_modules/link/node_modules/x"),
            Err(LinkError::Symlink { .. })
        ));
        assert!(check_inside(&project, "node_modules/@s/a/node_modules/b").is_ok());
        assert!(check_node_modules(&project).is_ok());
        let evil = dir.path().join("evil");
        fs::create_dir_all(&evil).unwrap();
        symlink(&outside, evil.join("node_modules")).unwrap();
        assert!(matches!(check_node_modules(&evil), Err(LinkError::Symlink { .. })));
        fs::write(outside.join("f"), "x").unwrap();
        assert_eq!(regular_file_within(&project, "node_modules/link/f"), None);
        assert_eq!(lexical(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
    }

    #[test]
    fn writes_replace_links_and_chmod_copies_shared_inodes() {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious");
        fs::write(&precious, "keep").unwrap();
        let lock = dir.path().join("lock.json");
        symlink(&precious, &lock).unwrap();
        write_replacing(&lock, b"new").unwrap();
        assert_eq!(fs::read_to_string(&precious).unwrap(), "keep");
        assert_eq!(fs::read_to_string(&lock).unwrap(), "new");

        let store = dir.path().join("store-file");
        fs::write(&store, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&store, fs::Permissions::from_mode(0o644)).unwrap();
        let linked = dir.path().join("bin");
        fs::hard_link(&store, &linked).unwrap();
        make_executable(&linked).unwrap();
        assert_eq!(fs::metadata(&store).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(fs::metadata(&linked).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(fs::read_to_string(&linked).unwrap(), "#!/bin/sh\n");
    }
}
