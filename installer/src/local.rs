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
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    match project.field("workspaces") {
        Some(v @ serde_json::Value::Array(_)) => strings(&v),
        Some(serde_json::Value::Object(m)) => m.get("packages").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    }
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

/// The workspaces `wanted` names (each a name or a folder, npm's `-w`), or all of them;
/// a name no workspace has is npm's error.
pub fn select(all: &[Workspace], wanted: &[String], every: bool) -> Result<Vec<Workspace>, ResolveError> {
    if every {
        if all.is_empty() {
            return Err(ResolveError::Local {
                spec: "--workspaces".into(),
                reason: "no workspaces found: package.json has no `workspaces`".into(),
            });
        }
        return Ok(all.to_vec());
    }
    wanted
        .iter()
        .map(|w| {
            let folder = w.trim_start_matches("./").trim_end_matches('/');
            all.iter().find(|ws| ws.name == *w || ws.path == folder).cloned().ok_or_else(|| {
                ResolveError::Local {
                    spec: format!("--workspace={w}"),
                    reason: format!(
                        "no workspaces found: the workspaces are {}",
                        all.iter().map(|ws| ws.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                }
            })
        })
        .collect()
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
