//! The project's own folders: npm workspaces (`workspaces` globs in the root `package.json`,
//! or `{ "packages": [...] }`) and `file:`/`link:` folders, each read from its `package.json`
//! and linked into `node_modules` as npm 11 links them (arborist's `Link` nodes; spec
//! `npm-registry-and-installers.md` §1.9).
//!
//! A folder inside the project is a full member of the tree: its dependencies (dev ones too,
//! as for the root) are resolved and hoisted with the root's, nesting under
//! `<folder>/node_modules` only on conflict. A folder outside the project (`file:../lib`) is
//! only linked: npm installs nothing into it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use indexer::model::Manifest;

use super::error::ResolveError;
use super::project::{DepKind, Project};
use super::request::Request;
use super::resolve::{Origin, Resolved};
use super::tree::{self, Edge};

/// The most folders a workspace glob may look at (a hostile `**` in a deep tree stops here).
const MAX_GLOB_VISITS: usize = 100_000;

/// One workspace: its package name and folder (relative to the root, `/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The `name` of its `package.json`.
    pub name: String,
    /// Its folder, relative to the project root.
    pub path: String,
}

/// The `workspaces` patterns of a root `package.json`: an array, or the object form's
/// `packages` (yarn's, which npm reads too).
pub fn patterns(project: &Project) -> Vec<String> {
    patterns_in(project.field("workspaces").as_ref())
}

/// [`patterns`] from the `workspaces` value itself.
pub fn patterns_in(workspaces: Option<&serde_json::Value>) -> Vec<String> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    match workspaces {
        Some(v @ serde_json::Value::Array(_)) => strings(v),
        Some(serde_json::Value::Object(m)) => m.get("packages").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The workspaces an installed project has, for reading it (`ims ls`, `ims why`): what
/// [`workspaces`] finds, without its errors — a pattern that matches nothing or climbs out of
/// the project, a folder whose `package.json` is not usable and a second workspace of one
/// name are passed over, as a listing must still show the rest.
pub fn workspaces_lenient(patterns: &[String], root: &Path) -> Vec<Workspace> {
    let mut found: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for pattern in patterns {
        let (negate, pat) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        let pat = pat.trim().trim_start_matches("./").trim_end_matches('/');
        if pat.is_empty() || pat.starts_with('/') || pat.split('/').any(|s| s == "..") {
            continue;
        }
        for m in glob(root, pat) {
            if negate {
                found.remove(&m);
            } else if root.join(&m).join("package.json").is_file() {
                found.insert(m);
            }
        }
    }
    let mut out: Vec<Workspace> = Vec::new();
    for path in found {
        let Ok(manifest) = read_manifest(root, &path, &path) else { continue };
        if !out.iter().any(|w| w.name == manifest.name) {
            out.push(Workspace { name: manifest.name, path });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The workspaces of the project at `root`, by name, as `@npmcli/map-workspaces` finds them:
/// each pattern's matching folders that hold a `package.json` (a `!pattern` drops matches),
/// a pattern that matches no folder is an error (npm warns and goes on; ims says so, naming
/// it), and two workspaces with one name are npm's error.
pub fn workspaces(project: &Project, root: &Path) -> Result<Vec<Workspace>, ResolveError> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for pattern in patterns(project) {
        let (negate, pat) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        let pat = pat.trim().trim_start_matches("./").trim_end_matches('/');
        if pat.is_empty() || pat.starts_with('/') || pat.split('/').any(|s| s == "..") {
            return Err(ResolveError::Local {
                spec: pattern.clone(),
                reason: "a workspace pattern must name folders inside the project".into(),
            });
        }
        let matches = glob(root, pat);
        if negate {
            for m in matches {
                found.remove(&m);
            }
            continue;
        }
        let with_manifest: Vec<String> =
            matches.into_iter().filter(|m| root.join(m).join("package.json").is_file()).collect();
        if with_manifest.is_empty() {
            return Err(ResolveError::Local {
                spec: pattern.clone(),
                reason: "this workspace pattern matches no folder with a package.json".into(),
            });
        }
        for m in with_manifest {
            found.insert(m.clone(), m);
        }
    }
    let mut out = Vec::new();
    for path in found.into_values() {
        let manifest = read_manifest(root, &path, &path)?;
        if let Some(other) = by_name.insert(manifest.name.clone(), path.clone()) {
            return Err(ResolveError::Local {
                spec: path.clone(),
                reason: format!(
                    "must not have multiple workspaces with the same name: {} is also {other}",
                    manifest.name
                ),
            });
        }
        out.push(Workspace { name: manifest.name, path });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Folders under `root` matching `pattern` (`/`-separated segments; `*` and `?` within a
/// segment, `**` for any depth), relative and sorted. Hand-written rather than a glob crate:
/// the patterns are short, only folders are matched, and the walk must skip `node_modules`,
/// dot folders and links and stop at a bound, which general glob crates do not do for us.
fn glob(root: &Path, pattern: &str) -> Vec<String> {
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    let mut out = Vec::new();
    let mut visits = 0usize;
    walk(root, String::new(), &segments, &mut out, &mut visits);
    out.sort();
    out.dedup();
    out
}

fn walk(dir: &Path, rel: String, segments: &[&str], out: &mut Vec<String>, visits: &mut usize) {
    *visits += 1;
    if *visits > MAX_GLOB_VISITS {
        return;
    }
    let Some((first, rest)) = segments.split_first() else {
        if !rel.is_empty() {
            out.push(rel);
        }
        return;
    };
    let join = |name: &str| if rel.is_empty() { name.to_owned() } else { format!("{rel}/{name}") };
    if *first == "**" {
        // Zero folders, or one more and `**` again.
        walk(dir, rel.clone(), rest, out, visits);
        for name in subfolders(dir) {
            walk(&dir.join(&name), join(&name), segments, out, visits);
        }
        return;
    }
    if !first.contains(['*', '?', '[']) {
        let next = dir.join(first);
        if fs::symlink_metadata(&next).is_ok_and(|m| m.is_dir()) {
            walk(&next, join(first), rest, out, visits);
        }
        return;
    }
    for name in subfolders(dir) {
        if segment_matches(first, &name) {
            walk(&dir.join(&name), join(&name), rest, out, visits);
        }
    }
}

/// Real folders in `dir` (no links, no `node_modules`, no dot folders), sorted.
fn subfolders(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "node_modules" && !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// `*`, `?` and `[abc]` within one path segment.
fn segment_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some(('[', rest)) => match rest.iter().position(|&c| c == ']') {
                Some(end) if !n.is_empty() => rest[..end].contains(&n[0]) && go(&rest[end + 1..], &n[1..]),
                _ => false,
            },
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    go(&p, &n)
}

/// The `package.json` of the folder `path` (relative to `root`), as a manifest; `spec` names
/// it in errors. Its name must be a valid package name and its version semver.
pub fn read_manifest(root: &Path, path: &str, spec: &str) -> Result<Manifest, ResolveError> {
    read_manifest_edited(root, path, spec, None)
}

/// [`read_manifest`], from `edited` (the folder's `package.json` as this install changed it)
/// when given.
pub fn read_manifest_edited(
    root: &Path,
    path: &str,
    spec: &str,
    edited: Option<&Project>,
) -> Result<Manifest, ResolveError> {
    let file = root.join(path).join("package.json");
    let local = |reason: String| ResolveError::Local { spec: spec.to_owned(), reason };
    let read = match edited {
        Some(p) => Ok(p.render()),
        None => fs::read_to_string(&file),
    };
    let text = match read {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let what = if root.join(path).is_dir() { "has no package.json" } else { "does not exist" };
            return Err(local(format!("{} {what}", display(root, path))));
        }
        Err(e) => return Err(local(format!("cannot read {}: {e}", file.display()))),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut manifest: Manifest = serde_json::from_str(text)
        .map_err(|e| local(format!("{} is not valid JSON: {e}", file.display())))?;
    if manifest.name.is_empty() {
        // npm names an unnamed folder after itself.
        manifest.name = path.rsplit('/').next().unwrap_or(path).to_owned();
    }
    indexer::names::validate(&manifest.name).map_err(|e| {
        local(format!("{:?} in {} is not a package name ({e})", manifest.name, file.display()))
    })?;
    if manifest.version.is_empty() {
        // arborist gives an unversioned folder no version; ranges then do not match it.
        manifest.version = "0.0.0".to_owned();
    }
    Ok(manifest)
}

fn display(root: &Path, path: &str) -> String {
    let p: PathBuf = root.join(path);
    p.display().to_string()
}

/// The workspaces `wanted` selects (npm's `-w`, each matched as `get-workspaces` matches it),
/// or all of them for `every` (`--workspaces`) when none is named. A filter selects the
/// workspace of that name, the workspace in that folder, and every workspace directly inside
/// that folder (`-w packages` selects `packages/a` and `packages/b`; a glob such as
/// `packages/*` works too). Folders are relative to the project root, as
/// [`filter_from_cwd`] makes them. Only when nothing at all is selected is it npm's error
/// (`No workspaces found: --workspace=x`); a filter that matches nothing beside one that
/// does is let go, as npm lets it go. Returned in npm's order: by filter, then as listed.
pub fn select(all: &[Workspace], wanted: &[String], every: bool) -> Result<Vec<Workspace>, ResolveError> {
    select_in(all, wanted, every, "")
}

/// [`select`] as typed in the folder `at` of the project (relative to the root; `""` for the
/// root, or when run from outside the project), as npm matches there: a folder filter is
/// resolved from `at`, and tried as a glob against each workspace's folder as seen from `at`.
pub fn select_in(
    all: &[Workspace],
    wanted: &[String],
    every: bool,
    at: &str,
) -> Result<Vec<Workspace>, ResolveError> {
    let mut out: Vec<Workspace> = Vec::new();
    if wanted.is_empty() && every {
        out = all.to_vec();
    }
    for filter in wanted {
        for ws in all {
            if filter_matches(filter, ws, at) && !out.contains(ws) {
                out.push(ws.clone());
            }
        }
    }
    if out.is_empty() {
        let (spec, reason) = if wanted.is_empty() {
            ("--workspaces".to_owned(), "No workspaces found! package.json has no `workspaces`".to_owned())
        } else {
            let flags: Vec<String> = wanted.iter().map(|w| format!("--workspace={w}")).collect();
            let names: Vec<&str> = all.iter().map(|ws| ws.name.as_str()).collect();
            let known = if names.is_empty() {
                "the project has no workspaces".to_owned()
            } else {
                format!("the workspaces are {}", names.join(", "))
            };
            (flags.join(" "), format!("No workspaces found ({known})"))
        };
        return Err(ResolveError::Local { spec, reason });
    }
    Ok(out)
}

/// Whether one `-w` filter typed in `at` selects `ws` (npm's `get-workspaces`): its name, its
/// folder, or a folder (or glob) that holds it directly — `minimatch(folder from at,
/// filter + "/*")`, with the filter both as resolved to the root and as typed.
fn filter_matches(filter: &str, ws: &Workspace, at: &str) -> bool {
    if filter == ws.name {
        return true;
    }
    let typed_dot = filter.starts_with("./");
    let from_at = relative_from(at, &ws.path);
    let seen = if typed_dot { format!("./{from_at}") } else { from_at };
    let joined = if at.is_empty() { filter.to_owned() } else { format!("{at}/{filter}") };
    if let Some(folder) = normalize(&joined) {
        if folder == ws.path {
            return true;
        }
        if !folder.is_empty() && path_matches(&format!("{folder}/*"), &seen) {
            return true;
        }
    }
    path_matches(&format!("{filter}/*"), &seen)
}

/// A relative path with `.` and empty segments dropped and `..` applied (`None` if it climbs
/// out of the root or is absolute).
fn normalize(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}

/// A `/`-separated glob (`*`, `?`, `[..]` in a segment, `**` for any number of folders)
/// against a path, segment by segment; `*` does not match a leading dot, as in minimatch.
fn path_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[&str], n: &[&str]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((&"**", rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((seg, rest)) => n.first().is_some_and(|name| {
                (!name.starts_with('.') || seg.starts_with('.'))
                    && segment_matches(seg, name)
                    && go(rest, &n[1..])
            }),
        }
    }
    let p: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let n: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    go(&p, &n)
}

/// Where `cwd` is in the project at `root` (both absolute), for [`select_in`]: relative to the
/// root, `""` at the root or outside it (npm then matches from the root).
pub fn folder_in(root: &Path, cwd: &Path) -> String {
    cwd.strip_prefix(root).map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default()
}

/// The package a folder holds, for the link named `name` (its own name when empty).
pub fn resolve_dir(root: &Path, name: &str, path: &str, spec: &str) -> Result<Resolved, ResolveError> {
    resolve_dir_edited(root, name, path, spec, None)
}

/// [`resolve_dir`], reading an edited `package.json` from memory (see [`read_manifest_edited`]).
pub fn resolve_dir_edited(
    root: &Path,
    name: &str,
    path: &str,
    spec: &str,
    edited: Option<&Project>,
) -> Result<Resolved, ResolveError> {
    if path.starts_with("~/") {
        return Err(ResolveError::Local {
            spec: spec.to_owned(),
            reason:
                "a path from the home folder (`~/`) is not expanded: write it relative to the package.json"
                    .into(),
        });
    }
    let manifest = read_manifest_edited(root, path, spec, edited)?;
    let name = if name.is_empty() { manifest.name.clone() } else { name.to_owned() };
    Resolved::local(&name, manifest, Origin::Link { path: path.to_owned() }, None)
}

/// `path` (relative to the root) as seen from the folder `base` (relative to the root too):
/// `relative_from("packages/a", "packages/b")` is `../b`.
pub fn relative_from(base: &str, path: &str) -> String {
    let b: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let common = b.iter().zip(&p).take_while(|(x, y)| x == y && **x != "..").count();
    let mut out: Vec<&str> = std::iter::repeat_n("..", b.len() - common).collect();
    out.extend(&p[common..]);
    if out.is_empty() { ".".to_owned() } else { out.join("/") }
}

/// Whether a folder (relative to the root) is inside the project: npm resolves and installs
/// the dependencies of those only.
pub fn inside(path: &str) -> bool {
    !path.starts_with("..") && !path.is_empty()
}

/// The edges of the folder `path` inside the project: its `package.json` sections like the
/// root's (dev dependencies included), `file:` paths made relative to the root; `edited` is
/// its `package.json` as changed by this install, when it was. A folder outside the project
/// gets none (npm installs nothing into it).
pub fn folder_edges(root: &Path, path: &str, edited: Option<&Project>) -> Result<Vec<Edge>, ResolveError> {
    if !inside(path) {
        return Ok(Vec::new());
    }
    let loaded;
    let project = match edited {
        Some(p) => p,
        None => {
            loaded = Project::load(&root.join(path))
                .map_err(|e| ResolveError::Local { spec: path.to_owned(), reason: e.to_string() })?;
            &loaded
        }
    };
    let requests = project
        .requests(false)
        .map_err(|e| ResolveError::Local { spec: path.to_owned(), reason: e.to_string() })?;
    Ok(tree::root_edges(&rebased(requests, path, root)))
}

/// Every folder the project links, by path relative to the root: its workspaces and the
/// `file:`/`link:` folders the root's `package.json` names, and, through the folders inside
/// the project, theirs (bounded: a cycle or a deep chain stops).
pub fn declared_folders(
    project: &Project,
    root: &Path,
) -> Result<std::collections::BTreeSet<String>, ResolveError> {
    use super::request::VersionSpec;
    let mut out = std::collections::BTreeSet::new();
    let mut todo: Vec<(String, Vec<(DepKind, Request)>)> = Vec::new();
    let root_requests = project.requests(false).unwrap_or_default();
    todo.push((String::new(), root_requests));
    for ws in workspaces(project, root)? {
        out.insert(ws.path.clone());
        todo.push((ws.path.clone(), Vec::new()));
    }
    let mut visited = 0;
    while let Some((base, mut requests)) = todo.pop() {
        visited += 1;
        if visited > 1000 {
            break;
        }
        if !base.is_empty() {
            if !inside(&base) {
                continue;
            }
            requests = Project::load(&root.join(&base))
                .ok()
                .and_then(|p| p.requests(false).ok())
                .unwrap_or_default();
        }
        for (_, r) in rebased(requests, &base, root) {
            if let VersionSpec::Directory { path, .. } = &r.spec
                && out.insert(path.clone())
            {
                todo.push((path.clone(), Vec::new()));
            }
        }
    }
    Ok(out)
}

/// What the project's own `package.json` files (the root's, its workspaces' and its `file:`
/// folders') name outside the registry: each `file:` tarball as `file:<path from the root>`,
/// each tarball URL, and each git repository as its lockfile `resolved` without the commit.
/// A lockfile entry fetched from such a place must be one of these.
pub fn declared_places(
    project: &Project,
    root: &Path,
) -> Result<std::collections::BTreeSet<String>, ResolveError> {
    use super::request::VersionSpec;
    let mut out = std::collections::BTreeSet::new();
    let mut folders = vec![(String::new(), project.requests(false).unwrap_or_default())];
    for folder in declared_folders(project, root)? {
        if inside(&folder) {
            let requests = Project::load(&root.join(&folder))
                .ok()
                .and_then(|p| p.requests(false).ok())
                .unwrap_or_default();
            folders.push((folder, requests));
        }
    }
    for (base, requests) in folders {
        for (_, r) in rebased(requests, &base, root) {
            match &r.spec {
                VersionSpec::File { path, .. } => {
                    out.insert(format!("file:{path}"));
                }
                VersionSpec::Remote(url) => {
                    out.insert(url.clone());
                }
                VersionSpec::Git(raw) => {
                    if let Ok(spec) = super::git::GitSpec::parse(raw) {
                        out.insert(spec.base);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// `requests` from the `package.json` in `base` with their `file:` paths made relative to
/// the root.
pub fn rebased(requests: Vec<(DepKind, Request)>, base: &str, root: &Path) -> Vec<(DepKind, Request)> {
    requests
        .into_iter()
        .map(|(k, mut r)| {
            r.rebase(base, root);
            (k, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_a_folder() {
        assert_eq!(relative_from("", "vendor/x"), "vendor/x");
        assert_eq!(relative_from("packages/a", "packages/b"), "../b");
        assert_eq!(relative_from("packages/a", "../lib"), "../../../lib");
        assert_eq!(relative_from("packages/a", "packages/a/sub"), "sub");
    }

    #[test]
    fn segments_match_like_minimatch() {
        assert!(segment_matches("*", "a"));
        assert!(segment_matches("pkg-*", "pkg-a"));
        assert!(!segment_matches("pkg-*", "lib-a"));
        assert!(segment_matches("a?c", "abc"));
        assert!(segment_matches("[ab]x", "bx"));
        assert!(!segment_matches("[ab]x", "cx"));
    }

    #[test]
    fn globs_find_folders_and_skip_node_modules() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["packages/a", "packages/b/deep", "packages/node_modules/x", "packages/.hidden", "apps/web"]
        {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        assert_eq!(glob(dir.path(), "packages/*"), ["packages/a", "packages/b"]);
        assert_eq!(
            glob(dir.path(), "packages/**"),
            ["packages", "packages/a", "packages/b", "packages/b/deep"]
        );
        assert_eq!(glob(dir.path(), "apps/web"), ["apps/web"]);
        assert!(glob(dir.path(), "nothing/*").is_empty());
    }

    #[test]
    fn workspaces_named_from_their_package_json() {
        let dir = tempfile::tempdir().unwrap();
        let write = |p: &str, text: &str| {
            fs::create_dir_all(dir.path().join(p)).unwrap();
            fs::write(dir.path().join(p).join("package.json"), text).unwrap();
        };
        write("", r#"{"workspaces":["packages/*","!packages/skip"]}"#);
        write("packages/a", r#"{"name":"@s/a","version":"1.0.0"}"#);
        write("packages/b", r#"{"name":"b","version":"2.0.0"}"#);
        write("packages/skip", r#"{"name":"skip","version":"1.0.0"}"#);
        fs::create_dir_all(dir.path().join("packages/no-manifest")).unwrap();
        let project = Project::load(dir.path()).unwrap();
        let ws = workspaces(&project, dir.path()).unwrap();
        assert_eq!(
            ws,
            [
                Workspace { name: "@s/a".into(), path: "packages/a".into() },
                Workspace { name: "b".into(), path: "packages/b".into() },
            ]
        );
        write("", r#"{"workspaces":["libs/*"]}"#);
        let err = workspaces(&Project::load(dir.path()).unwrap(), dir.path()).unwrap_err();
        assert!(err.to_string().contains("libs/*"), "{err}");
        write("", r#"{"workspaces":["../up"]}"#);
        assert!(workspaces(&Project::load(dir.path()).unwrap(), dir.path()).is_err());
        write("packages/c", r#"{"name":"b","version":"3.0.0"}"#);
        write("", r#"{"workspaces":{"packages":["packages/b","packages/c"]}}"#);
        let err = workspaces(&Project::load(dir.path()).unwrap(), dir.path()).unwrap_err();
        assert!(err.to_string().contains("same name"), "{err}");
    }

    fn ws(name: &str, path: &str) -> Workspace {
        Workspace { name: name.into(), path: path.into() }
    }

    fn names(all: &[Workspace], wanted: &[&str]) -> Result<Vec<String>, String> {
        let wanted: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
        select(all, &wanted, false)
            .map(|v| v.into_iter().map(|w| w.name).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn workspace_filters_match_as_npm_matches_them() {
        let all = [
            ws("a", "packages/a"),
            ws("b", "packages/b"),
            ws("@x/c", "packages/c"),
            ws("web", "apps/web"),
            ws("deep", "apps/tools/deep"),
        ];
        assert_eq!(names(&all, &["b"]).unwrap(), ["b"]);
        assert_eq!(names(&all, &["@x/c"]).unwrap(), ["@x/c"]);
        // A folder, spelled any way npm accepts.
        for f in ["packages/c", "./packages/c", "packages/c/", "packages//c", "apps/../packages/c"] {
            assert_eq!(names(&all, &[f]).unwrap(), ["@x/c"], "{f}");
        }
        // A parent folder selects the workspaces directly inside it, in their order.
        assert_eq!(names(&all, &["packages"]).unwrap(), ["a", "b", "@x/c"]);
        assert_eq!(names(&all, &["./packages/"]).unwrap(), ["a", "b", "@x/c"]);
        assert_eq!(names(&all, &["apps"]).unwrap(), ["web"], "only direct children, as `apps/*`");
        assert_eq!(names(&all, &["apps/**"]).unwrap(), ["web", "deep"]);
        assert_eq!(names(&all, &["pack*"]).unwrap(), ["a", "b", "@x/c"], "a glob folder");
        // By filter, then as listed; each once.
        assert_eq!(names(&all, &["b", "packages", "a"]).unwrap(), ["b", "a", "@x/c"]);
        // One filter matching nothing beside one that does is let go, as npm does.
        assert_eq!(names(&all, &["nope", "a"]).unwrap(), ["a"]);
        // Nothing at all: npm's error, every filter named.
        let err = names(&all, &["nope", "../packages/a", "."]).unwrap_err();
        assert!(
            err.contains("--workspace=nope --workspace=../packages/a --workspace=.")
                && err.contains("No workspaces found"),
            "{err}"
        );
        assert!(err.contains("the workspaces are a, b, @x/c, web, deep"), "{err}");
        // `--workspaces`: all of them, unless there are none.
        assert_eq!(select(&all, &[], true).unwrap().len(), 5);
        assert!(select(&[], &[], true).unwrap_err().to_string().contains("No workspaces found"));
        // `./` holds the top-level folders; `.` names no workspace.
        let top = [ws("t", "t")];
        assert_eq!(names(&top, &["./"]).unwrap(), ["t"]);
        assert!(names(&top, &["."]).is_err());
    }

    #[test]
    fn workspace_filters_typed_below_the_root_match_from_there() {
        let all = [ws("a", "packages/a"), ws("b", "packages/b")];
        let from = |f: &str| {
            select_in(&all, &[f.to_owned()], false, "packages")
                .map(|v| v.into_iter().map(|w| w.name).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(from("./a"), ["a"]);
        assert_eq!(from("../packages/b"), ["b"]);
        assert_eq!(from("b"), ["b"], "a name is a name anywhere");
        // npm matches the folder as seen from here against the filter resolved to the root:
        // `.` below the root selects nothing, as in npm.
        assert!(from(".").is_empty());
        assert_eq!(folder_in(Path::new("/p/mono"), Path::new("/p/mono/packages")), "packages");
        assert_eq!(folder_in(Path::new("/p/mono"), Path::new("/elsewhere")), "");
    }

    #[test]
    fn missing_folders_and_manifests_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_dir(dir.path(), "x", "../nope", "file:../nope").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        let err = resolve_dir(dir.path(), "x", "empty", "file:empty").unwrap_err();
        assert!(err.to_string().contains("has no package.json"), "{err}");
        fs::write(dir.path().join("empty/package.json"), r#"{"name":"../evil","version":"1.0.0"}"#).unwrap();
        assert!(resolve_dir(dir.path(), "x", "empty", "file:empty").is_err());
        fs::write(dir.path().join("empty/package.json"), r#"{"name":"ok","version":"1.0.0"}"#).unwrap();
        let r = resolve_dir(dir.path(), "", "empty", "file:empty").unwrap();
        assert_eq!((r.name.as_str(), r.version.as_str()), ("ok", "1.0.0"));
        assert!(r.is_link());
    }
}
