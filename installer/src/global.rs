//! `ims install -g SPEC...`: npm's global layout (spec `npm-registry-and-installers.md` §4.2).
//!
//! ```text
//! PREFIX/lib/node_modules/<name>/               the package, as shipped
//! PREFIX/lib/node_modules/<name>/node_modules/  its dependencies, hoisted below it only
//! PREFIX/bin/<cmd> -> ../lib/node_modules/<name>/<bin path>
//! ```
//!
//! Each global package is a small project of its own, as npm's global style keeps it: its
//! dependencies never land beside other global packages. The package is laid out and its
//! dependencies installed in a staging folder next to its final place, which replaces the old
//! install by two renames only once everything succeeded — a failed `-g` install leaves the
//! previous version working. Its `devDependencies` are neither resolved nor installed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::bins::{check_global_bins, link_global_bins, unlink_global_bins};
use super::error::{InstallError, LinkError};
use super::link::link_package;
use super::lockfile::normalize_bin;
use super::request::Request;
use super::resolve::{ManifestSource, Resolver};
use super::scripts;
use super::{InstallOptions, Installer, Save};
use indexer::upstream::Registry;

/// What one global install did.
#[derive(Debug, Clone)]
pub struct GlobalReport {
    /// The folder name under `lib/node_modules` (the alias for aliases).
    pub name: String,
    /// The installed version.
    pub version: String,
    /// `PREFIX/lib/node_modules/<name>`.
    pub dir: PathBuf,
    /// The links made in `PREFIX/bin`.
    pub bins: Vec<PathBuf>,
    /// Packages installed below it (its dependency tree).
    pub dependencies: usize,
    /// Packages whose install scripts were not run (not allowed).
    pub scripts: Vec<String>,
}

/// The normalised `bin` of the package installed at `dir` (none when nothing is there).
fn installed_bins(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = fs::read_to_string(dir.join("package.json")) else { return Vec::new() };
    let Ok(manifest) = serde_json::from_str::<indexer::model::Manifest>(&text) else { return Vec::new() };
    manifest.bin_entries().into_iter().filter_map(|(k, v)| normalize_bin(&k, &v)).collect()
}

fn io_err(to: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Link(LinkError::Io { from: PathBuf::new(), to: to.to_path_buf(), source })
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// npm's `uninstall -g NAME`: remove `PREFIX/lib/node_modules/<name>` (a link there, as
/// `npm link` leaves, is removed as a link) and the `PREFIX/bin` links that point into it;
/// commands another package or the user owns stay. Returns the removed folder, or `None` when
/// nothing by that name is installed.
pub fn uninstall_global(prefix: &Path, name: &str) -> Result<Option<PathBuf>, InstallError> {
    let dir = prefix.join("lib").join("node_modules").join(name);
    let Ok(meta) = fs::symlink_metadata(&dir) else { return Ok(None) };
    if meta.is_dir() {
        let bins = installed_bins(&dir);
        unlink_global_bins(prefix, name, &bins)?;
    }
    remove_any(&dir).map_err(io_err(&dir))?;
    // An emptied scope folder goes too, as npm leaves none.
    if let Some((scope, _)) = name.split_once('/') {
        let _ = fs::remove_dir(prefix.join("lib").join("node_modules").join(scope));
    }
    Ok(Some(dir))
}

/// Install `spec` globally under `prefix`, resolving through `source` and fetching from
/// `registry` into `opts.store`; `opts.project_dir` is ignored, and nothing is saved.
pub async fn install_global<S: ManifestSource + Clone + 'static>(
    source: S,
    registry: Registry,
    opts: &InstallOptions,
    prefix: &Path,
    spec: &Request,
) -> Result<GlobalReport, InstallError> {
    if !spec.spec.is_registry() {
        return Err(InstallError::Resolve(crate::ResolveError::Origin {
            spec: spec.spec.to_string(),
            reason: "a global install takes registry packages only".into(),
            hint: "install a local folder or git package into a project instead".into(),
        }));
    }
    let resolver = Resolver::new(source.clone(), opts.pick.clone());
    let picked = resolver.resolve(spec).await?;
    let Some(integrity) = picked.integrity.clone() else {
        return Err(InstallError::Unfetchable { location: format!("lib/node_modules/{}", picked.name) });
    };
    let manifest = picked.manifest();
    let url = manifest
        .dist
        .tarball
        .clone()
        .unwrap_or_else(|| registry.url().tarball(picked.package(), &picked.version));
    let unpacked = registry.fetch_tarball(&opts.store, &integrity, &url).await.map_err(|source| {
        InstallError::Fetch {
            path: format!("(global) > {}", picked.name),
            location: format!("lib/node_modules/{}", picked.name),
            package: picked.package().to_owned(),
            version: picked.version.clone(),
            source: Box::new(source),
        }
    })?;

    let lib = prefix.join("lib").join("node_modules");
    let dir = lib.join(&picked.name);
    // Beside the final folder (same filesystem, so the swap is two renames); dot-names are
    // never package names.
    let flat = picked.name.replace('/', "+");
    let staging = lib.join(format!(".ims-staging-{flat}-{}", std::process::id()));
    let old = lib.join(format!(".ims-old-{flat}-{}", std::process::id()));
    let parent = dir.parent().unwrap_or(&lib).to_path_buf();
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;

    let built = async {
        // Copied, not hardlinked, when its own scripts may run and write into it.
        link_package(&unpacked.path, &staging, manifest.has_install_script())?;
        let mut inner = opts.clone();
        inner.project_dir = staging.clone();
        inner.save = Save::No;
        inner.omit_dev = true;
        inner.resolve_dev = false;
        inner.use_lockfile = false;
        // The "project" here is the package being installed: its own `allowScripts` must not
        // grant scripts to its dependencies (only the user's flags do).
        inner.project_allow_scripts = false;
        let report = Installer::new(source, registry, inner).install(&[]).await?;
        // The package's own scripts run last, as npm runs a package's after its dependencies'.
        let id = format!("{}@{}", picked.package(), picked.version);
        let ran = manifest.has_install_script() && opts.scripts.allows(picked.package());
        if ran {
            scripts::run_install_scripts(&staging, &staging, &id, opts.path_env.as_ref())?;
        }
        Ok::<_, InstallError>((report, ran))
    }
    .await;
    let (report, root_ran) = match built {
        Ok(r) => r,
        Err(e) => {
            let _ = remove_any(&staging);
            return Err(e);
        }
    };

    // npm's EEXIST, before anything changes: a command of that name that is not a link into
    // this package (another package's, or the user's own file) is not replaced.
    if let Err(e) = check_global_bins(prefix, &picked.name, &installed_bins(&staging), opts.force) {
        let _ = remove_any(&staging);
        return Err(e.into());
    }

    // Swap: the previous install stays in place until the new one is complete.
    let previous_bins = installed_bins(&dir);
    remove_any(&old).map_err(io_err(&old))?;
    let had_previous = fs::symlink_metadata(&dir).is_ok();
    if had_previous {
        fs::rename(&dir, &old).map_err(io_err(&dir))?;
    }
    if let Err(e) = fs::rename(&staging, &dir) {
        if had_previous {
            let _ = fs::rename(&old, &dir);
        }
        let _ = remove_any(&staging);
        return Err(io_err(&dir)(e));
    }
    if had_previous && let Err(error) = remove_any(&old) {
        tracing::warn!(path = %old.display(), %error, "cannot remove the previous global install");
    }
    unlink_global_bins(prefix, &picked.name, &previous_bins)?;
    let bins = link_global_bins(prefix, &picked.name, &installed_bins(&dir), opts.force)?;
    let mut scripts = report.scripts;
    if manifest.has_install_script() && !root_ran {
        scripts.insert(0, format!("{}@{}", picked.package(), picked.version));
    }
    Ok(GlobalReport {
        name: picked.name.clone(),
        version: picked.version.clone(),
        dir,
        bins,
        // The inner install's packages are the dependencies (its root is not counted).
        dependencies: report.packages,
        scripts,
    })
}
