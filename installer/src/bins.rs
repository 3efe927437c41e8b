//! `node_modules/.bin` links: for each package's `bin`, a relative symlink in the
//! `node_modules/.bin` that holds the package, its target made executable (npm's `bin-links`)
//! (DESIGN.md §Install). Command names and targets that would leave their folder are refused.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::LinkError;
use super::lockfile::check_location;
use super::safe_fs::{self, lexical, regular_file_within};

/// Whether a relative path stays inside its base (no `..`, not absolute).
fn contained(p: &str) -> bool {
    let path = Path::new(p);
    !p.contains('\\') && path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// What may be replaced at `bin_dir/<cmd>`.
#[derive(Debug, Clone, Copy)]
enum Clobber<'a> {
    /// Anything (a project's `node_modules/.bin`, rebuilt by ims on every change).
    Any,
    /// npm's global rule (bin-links' `check-bin`): nothing, or a link into this package
    /// folder; anything else is EEXIST unless `force`.
    Owned {
        /// The package folder the links point into.
        pkg_dir: &'a Path,
        /// The package, for the error.
        package: &'a str,
        /// npm's `--force`.
        force: bool,
    },
}

/// Link the `bins` (command → path inside the package) of the package installed at
/// `project/<location>`. Returns the links made.
pub fn link_bins(
    project: &Path,
    location: &str,
    bins: &[(String, String)],
) -> Result<Vec<PathBuf>, LinkError> {
    // Only a `node_modules/<name>` chain, the project's or a folder's (the lockfile checked
    // it; a hand-made location such as `node_modules//usr/bin` would give an absolute link
    // target).
    if !location.contains("node_modules/") || location.starts_with("..") || check_location(location).is_err()
    {
        tracing::warn!(location, "refusing bins of a location outside node_modules");
        return Ok(Vec::new());
    }
    // `.bin` lives in the node_modules folder that holds the package (scopes included).
    let Some(i) = location.rfind("node_modules/") else { return Ok(Vec::new()) };
    let nm = project.join(&location[..i + "node_modules".len()]);
    let name_in_nm = &location[i + "node_modules/".len()..];
    link_into(
        &project.join(location),
        &nm.join(".bin"),
        &Path::new("..").join(name_in_nm),
        location,
        bins,
        Clobber::Any,
    )
}

/// The `bins` of a linked folder: `.bin/<cmd>` in the `node_modules` holding the link at
/// `location`, pointing through the link (`../@s/c/cli.js`), the target made executable in
/// the folder itself (`project/<folder>`, relative to the project).
pub fn link_bins_of_folder(
    project: &Path,
    location: &str,
    folder: &str,
    bins: &[(String, String)],
) -> Result<Vec<PathBuf>, LinkError> {
    if !location.contains("node_modules/") || location.starts_with("..") || check_location(location).is_err()
    {
        tracing::warn!(location, "refusing bins of a location outside node_modules");
        return Ok(Vec::new());
    }
    let Some(i) = location.rfind("node_modules/") else { return Ok(Vec::new()) };
    let nm = project.join(&location[..i + "node_modules".len()]);
    let name_in_nm = &location[i + "node_modules/".len()..];
    link_into(
        &project.join(folder),
        &nm.join(".bin"),
        &Path::new("..").join(name_in_nm),
        location,
        bins,
        Clobber::Any,
    )
}

/// npm's global bin links: `PREFIX/bin/<cmd>` → `../lib/node_modules/<name>/<target>` for the
/// package installed at `PREFIX/lib/node_modules/<name>` (Unix layout). A `PREFIX/bin/<cmd>`
/// that is not a link into that folder is npm's EEXIST ([`LinkError::BinExists`]) unless
/// `force`. Returns the links made.
pub fn link_global_bins(
    prefix: &Path,
    name: &str,
    bins: &[(String, String)],
    force: bool,
) -> Result<Vec<PathBuf>, LinkError> {
    let rel = Path::new("..").join("lib").join("node_modules").join(name);
    let pkg_dir = prefix.join("lib").join("node_modules").join(name);
    let clobber = Clobber::Owned { pkg_dir: &pkg_dir, package: name, force };
    link_into(&pkg_dir, &prefix.join("bin"), &rel, name, bins, clobber)
}

/// Check before anything changes that [`link_global_bins`] will not meet npm's EEXIST: each
/// `PREFIX/bin/<cmd>` of `bins` is missing or a link into `PREFIX/lib/node_modules/<name>`
/// (or `force`).
pub fn check_global_bins(
    prefix: &Path,
    name: &str,
    bins: &[(String, String)],
    force: bool,
) -> Result<(), LinkError> {
    let pkg_dir = prefix.join("lib").join("node_modules").join(name);
    let bin_dir = prefix.join("bin");
    for (cmd, _) in bins {
        let Some(cmd) = command_name(cmd) else { continue };
        may_replace(&bin_dir.join(cmd), Clobber::Owned { pkg_dir: &pkg_dir, package: name, force })?;
    }
    Ok(())
}

/// The file name a `bin` command is linked as: npm's basename of a scoped command.
fn command_name(cmd: &str) -> Option<&str> {
    let cmd = cmd.rsplit('/').next().unwrap_or(cmd);
    (!cmd.is_empty() && cmd != "." && cmd != "..").then_some(cmd)
}

/// Whether `link` may be replaced under `clobber` (npm's `check-bin`: a symlink resolving into
/// the package folder, or nothing there).
fn may_replace(link: &Path, clobber: Clobber<'_>) -> Result<(), LinkError> {
    let Clobber::Owned { pkg_dir, package, force } = clobber else { return Ok(()) };
    if force || fs::symlink_metadata(link).is_err() {
        return Ok(());
    }
    let ours = fs::read_link(link).is_ok_and(|t| {
        let resolved = lexical(&link.parent().unwrap_or(Path::new("")).join(t));
        resolved.starts_with(lexical(pkg_dir))
    });
    if ours {
        Ok(())
    } else {
        Err(LinkError::BinExists { path: link.to_path_buf(), package: package.to_owned() })
    }
}

/// Remove the global bin links of `bins` that point into the package `name` (an upgrade or
/// reinstall replaces them; links another package owns are left alone).
pub fn unlink_global_bins(prefix: &Path, name: &str, bins: &[(String, String)]) -> Result<(), LinkError> {
    let pkg_dir = prefix.join("lib").join("node_modules").join(name);
    for (cmd, _) in bins {
        let Some(cmd) = command_name(cmd) else { continue };
        let link = prefix.join("bin").join(cmd);
        let owned = Clobber::Owned { pkg_dir: &pkg_dir, package: name, force: false };
        if fs::read_link(&link).is_ok() && may_replace(&link, owned).is_ok() {
            fs::remove_file(&link).map_err(|source| LinkError::Io {
                from: pkg_dir.clone(),
                to: link,
                source,
            })?;
        }
    }
    Ok(())
}

/// Links each of `bins` as `bin_dir/<cmd>` → `rel_pkg/<target>` (relative to `bin_dir`), the
/// target being `pkg_dir/<target>`; `what` names the package in warnings. A target reached
/// through a symbolic link, or not a regular file, is skipped (npm's bin-links keeps targets
/// inside the package).
fn link_into(
    pkg_dir: &Path,
    bin_dir: &Path,
    rel_pkg: &Path,
    what: &str,
    bins: &[(String, String)],
    clobber: Clobber<'_>,
) -> Result<Vec<PathBuf>, LinkError> {
    let mut made = Vec::new();
    for (cmd, target) in bins {
        let Some(cmd) = command_name(cmd).filter(|_| contained(target)) else {
            tracing::warn!(package = what, cmd, target, "refusing bin that leaves its folder");
            continue;
        };
        let err = |source| LinkError::Io { from: pkg_dir.join(target), to: bin_dir.join(cmd), source };
        let Some(dest) = regular_file_within(pkg_dir, target) else {
            tracing::warn!(
                package = what,
                cmd,
                target,
                "bin target missing, or not a file inside the package"
            );
            continue;
        };
        let link = bin_dir.join(cmd);
        may_replace(&link, clobber)?;
        fs::create_dir_all(bin_dir).map_err(err)?;
        // Never a chmod of the store's inode: a hardlinked target gets its own copy first.
        safe_fs::make_executable(&dest).map_err(err)?;
        match fs::symlink_metadata(&link) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&link).map_err(err)?,
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
