//! Store → `node_modules`: each package folder is recreated and its files hardlinked from the
//! store's unpacked copy (falling back to a copy across filesystems), so a warm install
//! writes no file content at all (DESIGN.md §Install; spec §4.2 "Extraction").
//!
//! Packages that will run install scripts must be copied instead (`copy = true`): a script
//! writing into a hardlinked file would change the shared store.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::bins::link_bins;
use super::error::{LinkError, LockfileError};
use super::lockfile::{LockedLink, LockedPackage, Lockfile};
use super::safe_fs;

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

impl LinkStats {
    fn add(&mut self, other: LinkStats) {
        self.linked += other.linked;
        self.copied += other.copied;
        self.dirs += other.dirs;
    }
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

/// One package to lay out: its lockfile entry and its unpacked folder in the store.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The lockfile entry (location, bins, integrity, ...).
    pub package: LockedPackage,
    /// The unpacked package in the store.
    pub source: PathBuf,
}

/// What a layout pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutReport {
    /// Packages (re)linked.
    pub linked: usize,
    /// Packages left as they were (same location and integrity as last time).
    pub unchanged: usize,
    /// Locations removed (no longer wanted).
    pub removed: usize,
    /// File-level counts.
    pub stats: LinkStats,
    /// The locations (re)linked, in order.
    pub relinked: Vec<String>,
}

/// npm's "hidden lockfile": what is installed in `node_modules`, read on the next run to
/// touch only what changed.
const HIDDEN: &str = "node_modules/.package-lock.json";

/// The most threads linking at once.
const MAX_LINK_THREADS: usize = 8;

/// The top-level folder a location is under (`node_modules/a` for
/// `node_modules/a/node_modules/b`): a package and those nested in it are linked in order by
/// one thread, since relinking a package replaces its whole folder.
fn top_level(location: &str) -> &str {
    match location.find("/node_modules/") {
        Some(i) => &location[..i],
        None => location,
    }
}

/// Link every one of `todo` (sorted by location) into `project`, the top-level folders spread
/// over a few threads: on a warm install this is nearly all syscalls (a `mkdir` per folder,
/// a `link` per file), which the kernel runs in parallel for different folders.
fn link_all(
    project: &Path,
    todo: &[&Placement],
    copy: &(dyn Fn(&LockedPackage) -> bool + Sync),
) -> Result<LinkStats, LinkError> {
    let mut groups: Vec<&[&Placement]> = Vec::new();
    let mut rest = todo;
    while let Some(first) = rest.first() {
        let top = top_level(&first.package.location);
        let n = rest.iter().take_while(|p| top_level(&p.package.location) == top).count();
        let (group, tail) = rest.split_at(n);
        groups.push(group);
        rest = tail;
    }
    let link_group = |group: &[&Placement]| -> Result<LinkStats, LinkError> {
        let mut stats = LinkStats::default();
        for p in group {
            // Checked here, not up front: a package relinked earlier in this group (a link
            // `npm link` made, say) has already been replaced by a real folder.
            safe_fs::check_inside(project, &p.package.location)?;
            stats.add(link_package(&p.source, &project.join(&p.package.location), copy(&p.package))?);
        }
        Ok(stats)
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, MAX_LINK_THREADS);
    if threads == 1 || groups.len() < 2 {
        return groups.into_iter().try_fold(LinkStats::default(), |mut total, g| {
            total.add(link_group(g)?);
            Ok(total)
        });
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Result<LinkStats, LinkError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(groups.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut stats = LinkStats::default();
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return Ok(stats);
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(group) = groups.get(i) else { return Ok(stats) };
                        match link_group(group) {
                            Ok(s) => stats.add(s),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut total = LinkStats::default();
    for r in results {
        total.add(r?);
    }
    Ok(total)
}

/// `npm ci`'s first step: remove `project/node_modules`. A `node_modules` that is a symbolic
/// link is removed as a link (never followed); links inside it are removed, not entered.
pub fn remove_node_modules(project: &Path) -> Result<(), LinkError> {
    let nm = project.join("node_modules");
    let io = |source| LinkError::Io { from: PathBuf::new(), to: nm.clone(), source };
    match fs::symlink_metadata(&nm) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(e)),
        Ok(m) if m.is_dir() => fs::remove_dir_all(&nm).map_err(io),
        Ok(_) => fs::remove_file(&nm).map_err(io),
    }
}

/// Make `project/node_modules` hold exactly `placements`, touching only what differs from the
/// previous run (recorded in `node_modules/.package-lock.json`). Packages that will run
/// install scripts are copied rather than hardlinked (`copy`).
pub fn layout(
    project: &Path,
    placements: &[Placement],
    links: &[LockedLink],
    wanted: &Lockfile,
    copy: &(dyn Fn(&LockedPackage) -> bool + Sync),
) -> Result<LayoutReport, LinkError> {
    safe_fs::check_node_modules(project)?;
    let hidden_path = project.join(HIDDEN);
    let (before, links_before): (BTreeMap<String, Option<String>>, Vec<LockedLink>) =
        match read_hidden(&hidden_path)? {
            Some(l) => (l.entries().into_iter().map(|e| (e.location, e.integrity)).collect(), l.links()),
            None => (BTreeMap::new(), Vec::new()),
        };
    let mut report = LayoutReport::default();
    let mut want: BTreeSet<&str> = placements.iter().map(|p| p.package.location.as_str()).collect();
    want.extend(links.iter().map(|l| l.location.as_str()));
    // Links no longer wanted go (as links: never followed).
    for l in links_before.iter().filter(|l| !want.contains(l.location.as_str())) {
        safe_fs::check_inside(project, &l.location)?;
        let path = project.join(&l.location);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            fs::remove_file(&path).map_err(|source| LinkError::Io {
                from: PathBuf::new(),
                to: path.clone(),
                source,
            })?;
            report.removed += 1;
        }
    }
    for loc in before.keys().filter(|l| !want.contains(l.as_str())) {
        // `remove_dir_all` removes a link itself; the folders above it must be real.
        safe_fs::check_inside(project, loc)?;
        match fs::remove_dir_all(project.join(loc)) {
            Ok(()) => report.removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(LinkError::Io { from: PathBuf::new(), to: project.join(loc), source }),
        }
    }
    let mut sorted: Vec<&Placement> = placements.iter().collect();
    sorted.sort_by(|a, b| a.package.location.cmp(&b.package.location));
    // Relinking a package replaces its folder, nested node_modules included: everything
    // below it must be relinked too.
    let mut relinked: Vec<String> = Vec::new();
    let mut todo: Vec<&Placement> = Vec::new();
    for p in sorted.iter().copied() {
        let loc = &p.package.location;
        let dest = project.join(loc);
        let under_relinked = relinked.iter().any(|r| loc.starts_with(&format!("{r}/node_modules/")));
        // Kept only when it is a real folder reached through real folders: a committed link
        // is relinked (replaced), never trusted.
        let same = before.get(loc).is_some_and(|i| *i == p.package.integrity)
            && fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir())
            && safe_fs::check_inside(project, loc).is_ok();
        if same && !under_relinked {
            report.unchanged += 1;
            continue;
        }
        todo.push(p);
        relinked.push(loc.clone());
    }
    report.stats.add(link_all(project, &todo, copy)?);
    report.linked += todo.len();
    report.relinked = relinked;
    let mut links_changed = 0;
    for l in links {
        if make_link(project, l)? {
            links_changed += 1;
        }
    }
    report.linked += links_changed;
    if report.linked == 0 && report.removed == 0 {
        return Ok(report);
    }
    // Bins: rebuild every `.bin` (cheap symlinks), so removed packages leave no stale links.
    for p in &sorted {
        if let Some(i) = p.package.location.rfind("node_modules/") {
            let bin_dir = project.join(&p.package.location[..i]).join("node_modules/.bin");
            let _ = fs::remove_dir_all(&bin_dir);
        }
    }
    for l in links {
        if let Some(i) = l.location.rfind("node_modules/") {
            let _ = fs::remove_dir_all(project.join(&l.location[..i]).join("node_modules/.bin"));
        }
    }
    // npm's order (arborist's `sortNodes`: depth, then path), the first package to claim a
    // command in a `.bin` keeping it (bin-links' collision rule).
    let depth = |loc: &str| loc.matches("node_modules/").count();
    let mut with_bins: Vec<(usize, &str, Option<&Placement>, Option<&LockedLink>)> = sorted
        .iter()
        .filter(|p| !p.package.bin.is_empty())
        .map(|p| (depth(&p.package.location), p.package.location.as_str(), Some(*p), None))
        .chain(
            links
                .iter()
                .filter(|l| !l.bin.is_empty())
                .map(|l| (depth(&l.location), l.location.as_str(), None, Some(l))),
        )
        .collect();
    with_bins.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    for (_, location, placement, link) in with_bins {
        let bin_dir = location.rfind("node_modules/").map(|i| &location[..i]).unwrap_or("");
        let map = placement.map(|p| &p.package.bin).or(link.map(|l| &l.bin));
        let bins: Vec<(String, String)> = map
            .into_iter()
            .flatten()
            .filter(|(cmd, _)| {
                let name = cmd.rsplit('/').next().unwrap_or(cmd);
                claimed.insert(format!("{bin_dir}node_modules/.bin/{name}"))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match (placement, link) {
            (Some(p), _) => {
                link_bins(project, &p.package.location, &bins)?;
            }
            (None, Some(l)) => {
                super::bins::link_bins_of_folder(project, &l.location, &l.target, &bins)?;
            }
            (None, None) => {}
        }
    }
    let mut hidden = wanted.clone();
    hidden.packages.retain(|loc, _| want.contains(loc.as_str()));
    let io_err = |source| LinkError::Io { from: PathBuf::new(), to: hidden_path.clone(), source };
    fs::create_dir_all(project.join("node_modules")).map_err(io_err)?;
    safe_fs::write_replacing(&hidden_path, hidden.render().as_bytes()).map_err(io_err)?;
    // npm (and `ims ls`) trust the hidden lockfile only while it is newer than every folder
    // in node_modules, and its rename just changed node_modules itself: stamp it now, after.
    if let Ok(file) = fs::File::options().write(true).open(&hidden_path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
    Ok(report)
}

/// Make `project/<link.location>` a relative symbolic link to the folder `link.target` (both
/// relative to the project), as npm links workspaces and `file:` folders; whatever else is
/// there is replaced. Returns whether anything changed.
fn make_link(project: &Path, link: &LockedLink) -> Result<bool, LinkError> {
    safe_fs::check_inside(project, &link.location)?;
    let path = project.join(&link.location);
    let parent_depth = link.location.split('/').count() - 1;
    let mut rel = PathBuf::new();
    for _ in 0..parent_depth {
        rel.push("..");
    }
    // The target is already normalised (`packages/a`, `../lib`): only `..` may lead.
    rel.push(&link.target);
    let io = |source| LinkError::Io { from: project.join(&link.target), to: path.clone(), source };
    match fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => {
            if fs::read_link(&path).is_ok_and(|t| t == rel) {
                return Ok(false);
            }
            fs::remove_file(&path).map_err(io)?;
        }
        Ok(m) if m.is_dir() => fs::remove_dir_all(&path).map_err(io)?,
        Ok(_) => fs::remove_file(&path).map_err(io)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    symlink_dir(&rel, &path).map_err(io)?;
    Ok(true)
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink_dir(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_dir(target, link)
}

/// The locations (packages and links) the last install laid out, from the hidden lockfile.
pub(crate) fn installed_locations(project: &Path) -> BTreeSet<String> {
    match read_hidden(&project.join(HIDDEN)) {
        Ok(Some(l)) => l.packages.into_keys().filter(|k| !k.is_empty()).collect(),
        _ => BTreeSet::new(),
    }
}

/// The hidden lockfile, if there is a readable one. One that is not JSON (a crash while it
/// was written by an older ims) counts as none: everything is relinked. One naming a location
/// outside `node_modules` is refused: it can only be planted.
fn read_hidden(path: &Path) -> Result<Option<Lockfile>, LinkError> {
    let Ok(text) = fs::read_to_string(path) else { return Ok(None) };
    match Lockfile::parse(path, &text) {
        Ok(l) => Ok(Some(l)),
        Err(e @ LockfileError::BadLocation { .. }) => Err(LinkError::HiddenLockfile(e)),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the hidden lockfile; relinking everything");
            Ok(None)
        }
    }
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

    fn placement(store: &Path, location: &str) -> Placement {
        let name = location.rsplit_once("node_modules/").map_or(location, |(_, n)| n).to_owned();
        let source = store.join(name.replace('/', "+"));
        fs::create_dir_all(source.join("lib")).unwrap();
        fs::write(source.join("package.json"), format!("{{\"name\":\"{name}\"}}")).unwrap();
        fs::write(source.join("lib/index.js"), &name).unwrap();
        let package = LockedPackage {
            location: location.to_owned(),
            name: name.clone(),
            package: name,
            version: "1.0.0".to_owned(),
            resolved: None,
            integrity: None,
            dev: false,
            optional: false,
            dev_optional: false,
            peer: false,
            os: Vec::new(),
            cpu: Vec::new(),
            libc: Vec::new(),
            engine_node: None,
            bin: BTreeMap::new(),
            has_install_script: false,
            in_bundle: false,
        };
        Placement { package, source }
    }

    #[test]
    fn nested_packages_are_linked_after_the_folder_holding_them() {
        assert_eq!(top_level("node_modules/a/node_modules/@s/b"), "node_modules/a");
        assert_eq!(top_level("node_modules/@s/d"), "node_modules/@s/d");
        let dir = tempfile::tempdir().unwrap();
        let (store, project) = (dir.path().join("store"), dir.path().join("app"));
        let locations = [
            "node_modules/@s/d",
            "node_modules/a",
            "node_modules/a/node_modules/b",
            "node_modules/a/node_modules/b/node_modules/@s/e",
            "node_modules/c",
            "node_modules/c/node_modules/b",
        ];
        let placements: Vec<Placement> = locations.iter().map(|l| placement(&store, l)).collect();
        // A stale copy where the nested one goes: replaced, not kept.
        fs::create_dir_all(project.join("node_modules/a/node_modules/b")).unwrap();
        fs::write(project.join("node_modules/a/node_modules/b/stale.js"), "old").unwrap();
        let todo: Vec<&Placement> = placements.iter().collect();
        let stats = link_all(&project, &todo, &|_| false).unwrap();
        assert_eq!(stats.linked + stats.copied, 2 * locations.len() as u64);
        for (l, p) in locations.iter().zip(&placements) {
            let got = fs::read_to_string(project.join(l).join("lib/index.js")).unwrap();
            assert_eq!(got, p.package.name, "{l}");
        }
        assert!(!project.join("node_modules/a/node_modules/b/stale.js").exists());
    }
}
