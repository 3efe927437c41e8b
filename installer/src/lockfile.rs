//! `package-lock.json` version 3, read and written as npm 7+ does (arborist's
//! `shrinkwrap.js`): one entry per location under `packages`, npm's per-package fields, the
//! dev/optional/peer flags computed from the tree's edges, and npm's key order (DESIGN.md
//! §Install). An install from a lockfile lays out exactly its `packages` without resolving.

pub mod graph;
mod json;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::error::LockfileError;
use super::project::{DepKind, Project};
use super::tree::{EdgeKind, NodeId, Tree};

pub use graph::Graph;

/// A parsed or generated lockfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Lockfile {
    /// Top-level `name`.
    pub name: Option<String>,
    /// Top-level `version`.
    pub version: Option<String>,
    /// `packages`: location (`""` for the root) → entry.
    pub packages: BTreeMap<String, Map<String, Value>>,
}

/// One link of a lockfile (`node_modules/a` → `packages/a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedLink {
    /// Where the link is: `node_modules/a`.
    pub location: String,
    /// The folder, relative to the project root (the entry's `resolved`).
    pub target: String,
    /// The folder's `bin` commands.
    pub bin: BTreeMap<String, String>,
    /// The folder is needed only for development.
    pub dev: bool,
    /// The folder is needed only optionally.
    pub optional: bool,
}

/// One package of a lockfile: what the layout step needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    /// `node_modules/a/node_modules/b`.
    pub location: String,
    /// The folder name (last path segment, scope included).
    pub name: String,
    /// The registry package (differs from `name` for aliases).
    pub package: String,
    /// The version.
    pub version: String,
    /// The tarball URL.
    pub resolved: Option<String>,
    /// The SRI integrity.
    pub integrity: Option<String>,
    /// Only needed for development.
    pub dev: bool,
    /// Only needed optionally (failures are not fatal).
    pub optional: bool,
    /// Needed only by dev or optional paths, but not by one kind alone.
    pub dev_optional: bool,
    /// Only reachable through peer dependencies.
    pub peer: bool,
    /// Platform lists.
    pub os: Vec<String>,
    /// CPU list.
    pub cpu: Vec<String>,
    /// libc list.
    pub libc: Vec<String>,
    /// `engines.node`: an optional package whose range the running Node.js does not
    /// satisfy is left out (npm's reify).
    pub engine_node: Option<String>,
    /// `bin` commands: name → path inside the package.
    pub bin: BTreeMap<String, String>,
    /// Whether it has install scripts.
    pub has_install_script: bool,
    /// Shipped inside a parent's tarball (not fetched separately).
    pub in_bundle: bool,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Which nodes carry npm's dev / optional / devOptional / peer flags: a node lacks a flag when
/// some path from the root reaches it without an edge of that kind (arborist's
/// `calc-dep-flags.js`).
fn flags(tree: &Tree) -> BTreeMap<NodeId, (bool, bool, bool, bool)> {
    let reach = |skip: &dyn Fn(EdgeKind) -> bool| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![Tree::ROOT];
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            stack.extend(tree.out_nodes(n, |k| !skip(k)));
        }
        seen
    };
    let not_dev = reach(&|k| k == EdgeKind::Dev);
    let not_optional = reach(&|k| matches!(k, EdgeKind::Optional | EdgeKind::PeerOptional));
    let not_dev_optional =
        reach(&|k| matches!(k, EdgeKind::Dev | EdgeKind::Optional | EdgeKind::PeerOptional));
    let not_peer = reach(&|k| matches!(k, EdgeKind::Peer | EdgeKind::PeerOptional));
    tree.packages()
        .into_iter()
        .map(|id| {
            let dev = !not_dev.contains(&id);
            let optional = !not_optional.contains(&id);
            let dev_optional = !not_dev_optional.contains(&id) && !dev && !optional;
            (id, (dev, optional, dev_optional, !not_peer.contains(&id)))
        })
        .collect()
}

/// npm's `normalize-package-bin`: the command is a basename, the path is normalised inside
/// the package (`./bin/x` → `bin/x`; `..` cannot climb out). `None` when nothing is left.
pub(crate) fn normalize_bin(cmd: &str, path: &str) -> Option<(String, String)> {
    let cmd = cmd.replace(['\\', ':'], "/");
    let cmd = cmd.rsplit('/').find(|c| !c.is_empty() && *c != "." && *c != "..")?;
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| (cmd.to_owned(), parts.join("/")))
}

/// Whether `location` is a key ims may meet in `packages`: `""` (the project), a
/// `node_modules/<name>(/node_modules/<name>)*` chain of valid package names (scoped names are
/// two segments), or a folder of the project holding no `node_modules` at all (a workspace or
/// a link's target, which ims does not lay out). Anything else — an empty segment
/// (`node_modules//usr/bin`), `.` or `..`, an absolute path, a backslash, a name npm would not
/// publish — is refused with the reason: laying it out would write outside `node_modules`.
pub(crate) fn check_location(location: &str) -> Result<(), String> {
    if location.is_empty() {
        return Ok(());
    }
    if location.contains('\\') {
        return Err("it contains a backslash".to_owned());
    }
    // A folder of the project (a workspace, a `file:` folder) and the node_modules chain
    // below it; a folder outside the project (`../lib`) has no node_modules ims writes.
    let (folder, chain) = match location.find("/node_modules/") {
        _ if location.starts_with("node_modules/") => ("", location),
        Some(i) => (&location[..i], &location[i + 1..]),
        None if location.ends_with("/node_modules") || location == "node_modules" => {
            return Err("it names a node_modules folder, not a package".to_owned());
        }
        None => (location, ""),
    };
    if !folder.is_empty() {
        let mut segments = folder.split('/').peekable();
        // Leading `..` only: a folder beside the project.
        let mut up = false;
        while segments.peek() == Some(&"..") {
            segments.next();
            up = true;
        }
        if up && !chain.is_empty() {
            return Err("ims writes no node_modules outside the project".to_owned());
        }
        let mut any = false;
        for s in segments {
            any = true;
            if s.is_empty() || s == "." || s == ".." || s == "node_modules" {
                return Err(format!("it has a {s:?} segment"));
            }
        }
        if !any {
            return Err("it names no folder".to_owned());
        }
        if chain.is_empty() {
            return Ok(());
        }
    }
    let mut rest = chain;
    loop {
        let Some(after) = rest.strip_prefix("node_modules/") else {
            return Err(format!("{rest:?} is not node_modules/<name>"));
        };
        let segments = if after.starts_with('@') { 2 } else { 1 };
        let mut it = after.splitn(segments + 1, '/');
        let name: Vec<&str> = it.by_ref().take(segments).collect();
        let name = name.join("/");
        if let Err(e) = indexer::names::validate(&name) {
            return Err(format!("{name:?} is not a package name ({e})"));
        }
        match it.next() {
            None => return Ok(()),
            Some(tail) => rest = tail,
        }
    }
}

/// npm records `funding` with strings turned into `{ "url": ... }` (normalize-package-data).
fn normalize_funding(v: &Value) -> Value {
    match v {
        Value::String(url) => json!({ "url": url }),
        Value::Array(items) => Value::Array(items.iter().map(normalize_funding).collect()),
        other => other.clone(),
    }
}

fn put(meta: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(_) => false,
    };
    if !empty {
        meta.insert(key.to_owned(), value);
    }
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

impl Lockfile {
    /// The lockfile npm would write for `tree`, rooted at `project`.
    pub fn from_tree(tree: &Tree, project: &Project) -> Self {
        let mut packages = BTreeMap::new();
        let mut root = Map::new();
        let name = project.name();
        let version = project.field("version").and_then(|v| v.as_str().map(str::to_owned));
        if let Some(n) = &name {
            put(&mut root, "name", json!(n));
        }
        if let Some(v) = &version {
            put(&mut root, "version", json!(v));
        }
        for kind in [DepKind::Prod, DepKind::Dev, DepKind::Optional, DepKind::Peer] {
            let deps: Map<String, Value> =
                project.dependencies(kind).map(|(k, v)| (k.to_owned(), json!(v))).collect();
            put(&mut root, kind.key(), Value::Object(deps));
        }
        for key in ["license", "bin", "engines", "workspaces"] {
            if let Some(v) = project.field(key) {
                put(&mut root, key, v);
            }
        }
        packages.insert(String::new(), root);

        let flags = flags(tree);
        for id in tree.packages() {
            let node = tree.node(id);
            let Some(r) = &node.resolved else { continue };
            let m = r.manifest();
            let mut meta = Map::new();
            if node.link.is_some() {
                // npm's link entry: where it points, nothing else (the folder's entry has the rest).
                if let crate::resolve::Origin::Link { path } = &r.origin {
                    put(&mut meta, "resolved", json!(path));
                }
                put(&mut meta, "link", json!(true));
                packages.insert(tree.location(id), meta);
                continue;
            }
            put(&mut meta, "version", json!(r.version));
            let folder = node.fs_path.as_deref().map(|p| p.rsplit('/').next().unwrap_or(p));
            if r.package() != folder.unwrap_or(&node.name) {
                put(&mut meta, "name", json!(r.package()));
            }
            match &r.origin {
                crate::resolve::Origin::Registry => {
                    put(&mut meta, "resolved", json!(m.dist.tarball));
                    put(&mut meta, "integrity", json!(m.dist.best_integrity()));
                }
                crate::resolve::Origin::Tarball { resolved, git } => {
                    put(&mut meta, "resolved", json!(resolved));
                    if !git {
                        put(&mut meta, "integrity", json!(r.integrity.as_ref().map(|i| i.to_string())));
                    }
                }
                crate::resolve::Origin::Link { .. } => {
                    // A folder's own entry: its dev dependencies are part of the tree.
                    put(&mut meta, "devDependencies", to_value(&m.dev_dependencies));
                }
            }
            let (dev, optional, dev_optional, peer) = flags.get(&id).copied().unwrap_or_default();
            put(&mut meta, "dev", json!(dev));
            put(&mut meta, "optional", json!(optional));
            put(&mut meta, "devOptional", json!(dev_optional));
            put(&mut meta, "peer", json!(peer));
            put(&mut meta, "dependencies", to_value(&m.dependencies));
            put(&mut meta, "optionalDependencies", to_value(&m.optional_dependencies));
            put(&mut meta, "peerDependencies", to_value(&m.peer_dependencies));
            put(&mut meta, "peerDependenciesMeta", to_value(&m.peer_dependencies_meta));
            put(&mut meta, "bundleDependencies", to_value(&m.bundle_dependencies));
            put(&mut meta, "funding", m.funding.as_ref().map(normalize_funding).unwrap_or(Value::Null));
            put(&mut meta, "engines", to_value(&m.engines));
            put(&mut meta, "os", to_value(&m.os));
            put(&mut meta, "cpu", to_value(&m.cpu));
            put(&mut meta, "libc", to_value(&m.libc));
            // npm records a license object's `type` only.
            let license = m.license.as_ref().map(|l| l.get("type").cloned().unwrap_or_else(|| l.clone()));
            put(&mut meta, "license", license.unwrap_or(Value::Null));
            put(&mut meta, "hasShrinkwrap", json!(m.has_shrinkwrap.unwrap_or(false)));
            put(&mut meta, "hasInstallScript", json!(m.has_install_script()));
            let bins: Map<String, Value> = m
                .bin_entries()
                .into_iter()
                .filter_map(|(k, v)| normalize_bin(&k, &v))
                .map(|(k, v)| (k, json!(v)))
                .collect();
            put(&mut meta, "bin", Value::Object(bins));
            put(&mut meta, "deprecated", json!(m.deprecated));
            packages.insert(tree.location(id), meta);
        }
        Lockfile { name, version, packages }
    }

    /// The file's text, as npm writes it.
    pub fn render(&self) -> String {
        let mut top = Map::new();
        if let Some(n) = &self.name {
            top.insert("name".into(), json!(n));
        }
        if let Some(v) = &self.version {
            top.insert("version".into(), json!(v));
        }
        top.insert("lockfileVersion".into(), json!(3));
        top.insert("requires".into(), json!(true));
        let packages: Map<String, Value> =
            self.packages.iter().map(|(k, v)| (k.clone(), Value::Object(v.clone()))).collect();
        top.insert("packages".into(), Value::Object(packages));
        json::stringify_nice(&Value::Object(top), &json::LOCK_KEY_ORDER)
    }

    /// Parse a lockfile's text (version 2 or 3: both have `packages`).
    pub fn parse(path: &Path, text: &str) -> Result<Self, LockfileError> {
        let invalid = |reason: String| LockfileError::Invalid { path: path.to_path_buf(), reason };
        let top: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let version = top.get("lockfileVersion").and_then(Value::as_u64).unwrap_or(1);
        if version < 2 {
            return Err(invalid(format!(
                "lockfileVersion {version} has no `packages` (npm 6); run `npm install` once with npm 7+"
            )));
        }
        let Some(Value::Object(pkgs)) = top.get("packages") else {
            return Err(invalid("no `packages` object".into()));
        };
        let mut packages = BTreeMap::new();
        for (loc, entry) in pkgs {
            let Value::Object(entry) = entry else {
                return Err(invalid(format!("entry {loc:?} is not an object")));
            };
            check_location(loc).map_err(|reason| LockfileError::BadLocation {
                path: path.to_path_buf(),
                location: loc.clone(),
                reason,
            })?;
            packages.insert(loc.clone(), entry.clone());
        }
        Ok(Lockfile {
            name: top.get("name").and_then(Value::as_str).map(str::to_owned),
            version: top.get("version").and_then(Value::as_str).map(str::to_owned),
            packages,
        })
    }

    /// Read `<dir>/package-lock.json` if there is one.
    pub fn load(dir: &Path) -> Result<Option<Self>, LockfileError> {
        let path = dir.join("package-lock.json");
        match fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockfileError::Io { path, source }),
        }
    }

    /// Write `<dir>/package-lock.json` (temp file, then rename).
    pub fn save(&self, dir: &Path) -> Result<PathBuf, LockfileError> {
        let path = dir.join("package-lock.json");
        // A committed link at either name is replaced, never written through.
        crate::safe_fs::write_replacing(&path, self.render().as_bytes())
            .map_err(|source| LockfileError::Io { path: path.clone(), source })?;
        Ok(path)
    }

    /// The links (`"link": true` entries): a workspace or `file:` folder linked at a
    /// `node_modules` location, with the folder's `bin`.
    pub fn links(&self) -> Vec<LockedLink> {
        let mut out = Vec::new();
        for (loc, e) in &self.packages {
            if !e.get("link").and_then(Value::as_bool).unwrap_or(false) || !loc.contains("node_modules/") {
                continue;
            }
            let Some(target) = e.get("resolved").and_then(Value::as_str) else { continue };
            let folder = self.packages.get(target);
            let bin = match folder.and_then(|f| f.get("bin")) {
                Some(Value::Object(m)) => {
                    m.iter().filter_map(|(k, v)| v.as_str().and_then(|v| normalize_bin(k, v))).collect()
                }
                _ => BTreeMap::new(),
            };
            let flag = |k: &str| folder.and_then(|f| f.get(k)).and_then(Value::as_bool).unwrap_or(false);
            out.push(LockedLink {
                location: loc.clone(),
                target: target.to_owned(),
                bin,
                dev: flag("dev"),
                optional: flag("optional"),
            });
        }
        out
    }

    /// The packages to lay out (every entry in a `node_modules`: the project's own, and
    /// those of its workspaces and folders); links and the folders' own entries are not
    /// packages to fetch and are skipped ([`Lockfile::links`] has the links).
    pub fn entries(&self) -> Vec<LockedPackage> {
        let mut out = Vec::new();
        for (loc, e) in &self.packages {
            // Only node_modules chains are laid out ([`check_location`]).
            let Some(i) = loc.rfind("node_modules/") else { continue };
            if !loc.starts_with("node_modules/") && !loc.contains("/node_modules/") {
                continue;
            }
            if e.get("link").and_then(Value::as_bool).unwrap_or(false) {
                continue;
            }
            let name = loc[i + "node_modules/".len()..].to_owned();
            let flag = |k: &str| e.get(k).and_then(Value::as_bool).unwrap_or(false);
            let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
            let bin = match e.get("bin") {
                Some(Value::Object(m)) => {
                    m.iter().filter_map(|(k, v)| v.as_str().and_then(|v| normalize_bin(k, v))).collect()
                }
                _ => BTreeMap::new(),
            };
            out.push(LockedPackage {
                location: loc.clone(),
                package: text("name").unwrap_or_else(|| name.clone()),
                name,
                version: text("version").unwrap_or_default(),
                resolved: text("resolved"),
                integrity: text("integrity"),
                dev: flag("dev"),
                optional: flag("optional"),
                dev_optional: flag("devOptional"),
                peer: flag("peer"),
                os: strings(e.get("os")),
                cpu: strings(e.get("cpu")),
                libc: strings(e.get("libc")),
                engine_node: e
                    .get("engines")
                    .and_then(|v| v.get("node"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                bin,
                has_install_script: flag("hasInstallScript"),
                in_bundle: flag("inBundle"),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_funding_normalised_like_npm() {
        assert_eq!(
            normalize_bin("semver", "./bin/semver.js"),
            Some(("semver".into(), "bin/semver.js".into()))
        );
        assert_eq!(normalize_bin("@s/x", "../../x.js"), Some(("x".into(), "x.js".into())));
        assert_eq!(normalize_bin("..", "a.js"), None);
        assert_eq!(normalize_funding(&json!("u")), json!({"url": "u"}));
    }

    #[test]
    fn locations_are_node_modules_chains_of_package_names() {
        for ok in [
            "",
            "node_modules/a",
            "node_modules/@s/a",
            "node_modules/a/node_modules/@s/b/node_modules/c",
            "packages/app",
            "packages/app/node_modules/x",
            "packages/app/node_modules/@s/x/node_modules/y",
            "../lib",
            "../../a/b",
        ] {
            assert_eq!(check_location(ok), Ok(()), "{ok}");
        }
        for bad in [
            "node_modules//usr/bin",
            "node_modules/link/payload",
            "node_modules/a/../b",
            "node_modules/.",
            "node_modules/a/",
            "node_modules/@s",
            "node_modules/@s/",
            "node_modules/a\\b",
            "/etc",
            "../outside/node_modules/x",
            "packages/../../x",
            "packages/node_modules",
            "..",
            "node_modules/a/node_modules",
            "a//b",
        ] {
            assert!(check_location(bad).is_err(), "{bad}");
        }
        let text = r#"{"lockfileVersion":3,"packages":{"":{},"node_modules//usr/bin":{"version":"1.0.0"}}}"#;
        let err = Lockfile::parse(Path::new("package-lock.json"), text).unwrap_err();
        assert!(
            matches!(&err, LockfileError::BadLocation { location, .. } if location == "node_modules//usr/bin")
        );
        assert!(err.to_string().contains("node_modules//usr/bin"), "{err}");
    }
}
