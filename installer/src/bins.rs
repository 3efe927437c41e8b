//! `node_modules/.bin` links: for each package's `bin`, a relative symlink in the
//! `node_modules/.bin` that holds the package, its target made executable (npm's `bin-links`)
//! (DESIGN.md §Install). Command names and targets that would leave their folder are refused.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::LinkError;

/// Whether a relative path stays inside its base (no `..`, not absolute).
fn contained(p: &str) -> bool {
    let path = Path::new(p);
    !p.contains('\\') && path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Link the `bins` (command → path inside the package) of the package installed at
/// `project/<location>`. Returns the links made.
pub fn link_bins(
    project: &Path,
    location: &str,
    bins: &[(String, String)],
) -> Result<Vec<PathBuf>, LinkError> {
    // `.bin` lives in the node_modules folder that holds the package (scopes included).
    let Some(i) = location.rfind("node_modules/") else { return Ok(Vec::new()) };
    let nm = project.join(&location[..i + "node_modules".len()]);
    let name_in_nm = &location[i + "node_modules/".len()..];
    link_into(&project.join(location), &nm.join(".bin"), &Path::new("..").join(name_in_nm), location, bins)
}

/// npm's global bin links: `PREFIX/bin/<cmd>` → `../lib/node_modules/<name>/<target>` for the
/// package installed at `PREFIX/lib/node_modules/<name>` (Unix layout). Returns the links made.
pub fn link_global_bins(
    prefix: &Path,
    name: &str,
    bins: &[(String, String)],
) -> Result<Vec<PathBuf>, LinkError> {
    let rel = Path::new("..").join("lib").join("node_modules").join(name);
    let pkg_dir = prefix.join("lib").join("node_modules").join(name);
    link_into(&pkg_dir, &prefix.join("bin"), &rel, name, bins)
}

/// Remove the global bin links of `bins` that point into the package `name` (an upgrade or
/// reinstall replaces them; links another package owns are left alone).
pub fn unlink_global_bins(prefix: &Path, name: &str, bins: &[(String, String)]) -> Result<(), LinkError> {
    let ours = Path::new("..").join("lib").join("node_modules").join(name);
    for (cmd, _) in bins {
        let cmd = cmd.rsplit('/').next().unwrap_or(cmd);
        if cmd.is_empty() || cmd == "." || cmd == ".." {
            continue;
        }
        let link = prefix.join("bin").join(cmd);
        if fs::read_link(&link).is_ok_and(|t| t.starts_with(&ours)) {
            fs::remove_file(&link).map_err(|source| LinkError::Io {
                from: ours.clone(),
                to: link,
                source,
            })?;
        }
    }
    Ok(())
}

/// Links each of `bins` as `bin_dir/<cmd>` → `rel_pkg/<target>` (relative to `bin_dir`), the
/// target being `pkg_dir/<target>`; `what` names the package in warnings.
fn link_into(
    pkg_dir: &Path,
    bin_dir: &Path,
    rel_pkg: &Path,
    what: &str,
    bins: &[(String, String)],
) -> Result<Vec<PathBuf>, LinkError> {
    let mut made = Vec::new();
    for (cmd, target) in bins {
        // npm uses the basename of a scoped command name.
        let cmd = cmd.rsplit('/').next().unwrap_or(cmd);
        if cmd.is_empty() || cmd == "." || cmd == ".." || !contained(target) {
            tracing::warn!(package = what, cmd, target, "refusing bin that leaves its folder");
            continue;
        }
        let err = |source| LinkError::Io { from: pkg_dir.join(target), to: bin_dir.join(cmd), source };
        fs::create_dir_all(bin_dir).map_err(err)?;
        let link = bin_dir.join(cmd);
        let dest = pkg_dir.join(target);
        if !dest.is_file() {
            tracing::warn!(package = what, cmd, target, "bin target missing");
            continue;
        }
        set_executable(&dest).map_err(err)?;
        match fs::symlink_metadata(&link) {
            Ok(_) => fs::remove_file(&link).map_err(err)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        symlink(&rel_pkg.join(target), &link).map_err(err)?;
        made.push(link);
    }
    Ok(made)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o111 != 0o111 {
        // The store file may be hardlinked; its mode is shared, which is what we want: every
        // install of this package marks the same bin executable.
        fs::set_permissions(path, fs::Permissions::from_mode((mode | 0o755) & 0o777))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    fs::copy(link.parent().unwrap_or(link).join(target), link).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("node_modules/@s/tool");
        fs::create_dir_all(pkg.join("bin")).unwrap();
        fs::write(pkg.join("bin/cli.js"), "#!/usr/bin/env node\n").unwrap();
        let bins = vec![
            ("@s/tool".to_owned(), "bin/cli.js".to_owned()),
            ("evil".to_owned(), "../../../etc/passwd".to_owned()),
        ];
        let made = link_bins(dir.path(), "node_modules/@s/tool", &bins).unwrap();
        assert_eq!(made, vec![dir.path().join("node_modules/.bin/tool")]);
        assert_eq!(fs::read_link(&made[0]).unwrap(), Path::new("../@s/tool/bin/cli.js"));
        assert!(fs::read_to_string(&made[0]).unwrap().starts_with("#!"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(pkg.join("bin/cli.js")).unwrap().permissions().mode() & 0o111, 0o111);
        }
    }
}
