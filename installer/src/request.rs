//! SPEC parsing for `ims install SPEC...` and `package.json` dependency values, as npm's
//! `npm-package-arg` reads registry specs: `name`, `name@range`, `name@version`, `name@tag`,
//! `@scope/name@...` and `alias@npm:name@range` (DESIGN.md §Install; spec §1.9).

use std::fmt;

use indexer::names;

use super::error::RequestError;
use super::semver::{self, Range, Version};

/// What version of a package a request asks for.
#[derive(Debug, Clone)]
pub enum VersionSpec {
    /// Exactly this version (`1.2.3`, `=1.2.3`, `v1.2.3`).
    Version(Version),
    /// Any version in this range (`^1.2`, `>=2 <3`, `*`, ...). `raw` is the text as written.
    Range {
        /// The range as written (empty becomes `*`).
        raw: String,
        /// The parsed range.
        range: Range,
    },
    /// Whatever this dist-tag points at (`latest`, `next`, ...).
    Tag(String),
    /// A folder (`file:../lib`, `link:../lib`, `./lib`, `~/lib`): linked into `node_modules`,
    /// not copied. `path` is where it is, relative to the project root once
    /// [rebased](Request::rebase) (what npm writes as the link's `resolved`), with `/`.
    Directory {
        /// The spec as written.
        raw: String,
        /// The folder, relative to the project root (`../lib`, `vendor/x`).
        path: String,
    },
    /// A tarball on disk (`file:x.tgz`, `./x.tar.gz`): extracted like a registry package.
    File {
        /// The spec as written.
        raw: String,
        /// The file, relative to the project root.
        path: String,
    },
    /// A tarball URL (`https://host/x.tgz`).
    Remote(String),
    /// A git repository (`git+https://…`, `git+ssh://…`, `git://…`, `github:u/r`, `u/r`,
    /// each with `#ref` or `#semver:RANGE`), as written.
    Git(String),
    /// `workspace:RANGE` (pnpm, yarn and bun): the project's own workspace of that name, whose
    /// version must fit `RANGE` (`*`, `^`, `~` accept any).
    Workspace(String),
}

impl VersionSpec {
    /// Classify a spec string the way npm-package-arg does: a valid version, else a valid
    /// range, else a dist-tag (which must be URL-safe).
    pub fn parse(raw: &str) -> Result<Self, RequestError> {
        let trimmed = raw.trim();
        let spec = if trimmed.is_empty() { "*" } else { trimmed };
        if let Some(v) = semver::exact_version(spec) {
            return Ok(VersionSpec::Version(v));
        }
        if let Some(range) = semver::parse_range(spec) {
            return Ok(VersionSpec::Range { raw: spec.to_owned(), range });
        }
        if is_tag(spec) {
            return Ok(VersionSpec::Tag(spec.to_owned()));
        }
        Err(RequestError::BadSpec { spec: raw.to_owned() })
    }

    /// Whether this spec is satisfied by `version` (tags never are: they must be looked up;
    /// nor are the specs that name a place rather than a version).
    pub fn satisfies(&self, version: &Version) -> bool {
        match self {
            VersionSpec::Version(v) => v == version,
            VersionSpec::Range { range, .. } => range.satisfies(version),
            VersionSpec::Workspace(raw) => workspace_range(raw).is_none_or(|r| r.satisfies(version)),
            _ => false,
        }
    }

    /// Whether this spec asks the registry (a version, range or tag).
    pub fn is_registry(&self) -> bool {
        matches!(self, VersionSpec::Version(_) | VersionSpec::Range { .. } | VersionSpec::Tag(_))
    }

    /// A spec that names a place, not a registry version: what npm-package-arg calls
    /// `directory`, `file`, `remote` and `git` (and `workspace:`), classified by its rules.
    /// `None` for a registry spec.
    pub fn parse_place(raw: &str) -> Option<Self> {
        let s = raw.trim();
        let lower = s.to_ascii_lowercase();
        if let Some(range) = s.strip_prefix("workspace:") {
            return Some(VersionSpec::Workspace(range.trim().to_owned()));
        }
        if is_git(s) {
            return Some(VersionSpec::Git(s.to_owned()));
        }
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Some(VersionSpec::Remote(s.to_owned()));
        }
        let path = if let Some(p) = s.strip_prefix("file:").or_else(|| s.strip_prefix("link:")) {
            Some(p)
        } else if s.starts_with('.') || s.starts_with('/') || s.starts_with("~/") || s.starts_with('\\') {
            Some(s)
        } else {
            None
        }?;
        let is_tarball = [".tgz", ".tar.gz", ".tar"].iter().any(|ext| lower.ends_with(ext));
        let path = path.to_owned();
        Some(if is_tarball && !lower.starts_with("link:") {
            VersionSpec::File { raw: s.to_owned(), path }
        } else {
            VersionSpec::Directory { raw: s.to_owned(), path }
        })
    }
}

/// The range of a `workspace:` spec (`None`: any version).
fn workspace_range(raw: &str) -> Option<Range> {
    match raw.trim() {
        "" | "*" | "^" | "~" => None,
        r => semver::parse_range(r),
    }
}

/// npm-package-arg's git test: a `git+` or `git://` URL, scp-like `user@host:path`, a
/// hosted shorthand (`github:`, `gitlab:`, `bitbucket:`, `gist:`), or bare `user/repo`.
fn is_git(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if ["git+", "git://", "github:", "gitlab:", "bitbucket:", "gist:"].iter().any(|p| lower.starts_with(p)) {
        return true;
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        // hosted-git-info knows these hosts' repository URLs.
        let rest = &lower[lower.find("://").map_or(0, |i| i + 3)..];
        let host = rest.split('/').next().unwrap_or("");
        let segments = rest.split(['#', '?']).next().unwrap_or("").trim_end_matches('/').split('/').count();
        return matches!(host, "github.com" | "www.github.com" | "gitlab.com" | "bitbucket.org")
            && segments == 3
            && !lower.ends_with(".tgz")
            && !lower.contains("/archive/");
    }
    // scp-like: `git@github.com:user/repo.git`.
    if let Some((user_host, path)) = s.split_once(':')
        && let Some((user, host)) = user_host.split_once('@')
        && !user.is_empty()
        && host.contains('.')
        && !path.is_empty()
        && !path.starts_with("//")
    {
        return true;
    }
    // `user/repo` (GitHub), optionally `#ref`.
    let base = s.split('#').next().unwrap_or("");
    match base.split_once('/') {
        Some((user, repo)) => {
            let ok =
                |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            !s.starts_with('@') && !s.starts_with('.') && ok(user) && ok(repo) && !user.starts_with('.')
        }
        None => false,
    }
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSpec::Version(v) => write!(f, "{v}"),
            VersionSpec::Range { raw, .. } => f.write_str(raw),
            VersionSpec::Tag(t) => f.write_str(t),
            VersionSpec::Directory { raw, .. } | VersionSpec::File { raw, .. } => f.write_str(raw),
            VersionSpec::Remote(raw) | VersionSpec::Git(raw) => f.write_str(raw),
            VersionSpec::Workspace(raw) => write!(f, "workspace:{raw}"),
        }
    }
}

/// A tag is anything `encodeURIComponent` leaves unchanged (npm-package-arg's rule).
fn is_tag(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c))
}

/// One thing to install: the folder name it gets in `node_modules`, the registry package it
/// comes from (they differ for `npm:` aliases) and the version spec.
#[derive(Debug, Clone)]
pub struct Request {
    /// The name under `node_modules` and in `package.json` (the alias, for aliases).
    pub name: String,
    /// The registry package to fetch.
    pub package: String,
    /// Which version(s).
    pub spec: VersionSpec,
    /// Whether the spec came with no version part at all (`ims install foo`); npm then saves
    /// `^<picked version>`.
    pub bare: bool,
}

impl Request {
    /// Parse a command-line SPEC (`name`, `name@spec`, `@scope/name@spec`,
    /// `alias@npm:name@spec`).
    pub fn parse(arg: &str) -> Result<Self, RequestError> {
        // `ims install ../lib`, `ims install github:u/r`: the name comes from the package.
        if let Some(place) = VersionSpec::parse_place(arg).filter(|_| !arg.trim().starts_with('@')) {
            let (name, spec) = split_name(arg);
            let named =
                spec.is_some_and(|s| VersionSpec::parse_place(s).is_some()) && names::validate(name).is_ok();
            if !named {
                return Ok(Request { name: String::new(), package: String::new(), spec: place, bare: false });
            }
        }
        let (name, spec) = split_name(arg);
        check_name(name, arg)?;
        match spec {
            None => Ok(Request {
                name: name.to_owned(),
                package: name.to_owned(),
                spec: VersionSpec::parse("*")?,
                bare: true,
            }),
            Some(spec) => Self::from_dependency(name, spec),
        }
    }

    /// A `package.json` dependency entry: `"name": "spec"`.
    pub fn from_dependency(name: &str, spec: &str) -> Result<Self, RequestError> {
        check_name(name, name)?;
        if let Some(target) = spec.trim().strip_prefix("npm:") {
            let (package, inner) = split_name(target);
            check_name(package, spec)?;
            if inner.is_some_and(|s| s.trim().starts_with("npm:")) {
                return Err(RequestError::BadSpec { spec: spec.to_owned() });
            }
            return Ok(Request {
                name: name.to_owned(),
                package: package.to_owned(),
                spec: VersionSpec::parse(inner.unwrap_or("*"))?,
                bare: inner.is_none(),
            });
        }
        if let Some(place) = VersionSpec::parse_place(spec) {
            return Ok(Request { name: name.to_owned(), package: name.to_owned(), spec: place, bare: false });
        }
        Ok(Request {
            name: name.to_owned(),
            package: name.to_owned(),
            spec: VersionSpec::parse(spec)?,
            bare: false,
        })
    }

    /// Whether the name is still to be read from the package (`ims install ../lib`).
    pub fn is_unnamed(&self) -> bool {
        self.name.is_empty()
    }

    /// Make a `file:` path relative to the project root: `base` is the folder of the
    /// `package.json` that declares it, relative to the root (`""` for the root itself,
    /// `packages/a` for a workspace); `root` is the root's absolute path (for absolute and
    /// `~/` paths). Other specs are left as they are.
    pub fn rebase(&mut self, base: &str, root: &std::path::Path) {
        if let VersionSpec::Directory { path, .. } | VersionSpec::File { path, .. } = &mut self.spec {
            *path = rebase_path(base, path, root);
        }
    }

    /// Whether this request installs under another name (`alias@npm:real@...`).
    pub fn is_alias(&self) -> bool {
        self.name != self.package
    }

    /// What to write into `package.json` once `picked` was chosen, as npm's arborist does:
    /// `^picked` (or `picked` with `save_exact`), unless the request was a range that this
    /// would widen (`1.x <1.2.3`), in which case the range is kept as written.
    pub fn save_spec(&self, picked: &Version, save_exact: bool) -> String {
        let prefixed = if save_exact { picked.to_string() } else { format!("^{picked}") };
        let version = match &self.spec {
            VersionSpec::Range { raw, range } if raw != "*" => match semver::parse_range(&prefixed) {
                Some(p) if range.allows_all(&p) => prefixed,
                _ => raw.clone(),
            },
            _ => prefixed,
        };
        if self.is_alias() { format!("npm:{}@{version}", self.package) } else { version }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_alias() {
            write!(f, "{}@npm:{}@{}", self.name, self.package, self.spec)
        } else {
            write!(f, "{}@{}", self.name, self.spec)
        }
    }
}

/// `rel` (as written in a `package.json` in `base`) as a normalised path relative to `root`,
/// with `/` separators: `..` may lead (a folder beside the project), never follow a name.
pub(crate) fn rebase_path(base: &str, rel: &str, root: &std::path::Path) -> String {
    let rel = rel.replace('\\', "/");
    let mut parts: Vec<String> = Vec::new();
    let push = |parts: &mut Vec<String>, seg: &str| match seg {
        "" | "." => {}
        ".." => {
            if parts.last().is_some_and(|p| p != "..") {
                parts.pop();
            } else {
                parts.push("..".to_owned());
            }
        }
        s => parts.push(s.to_owned()),
    };
    // `~/` is left as written (a library reads no environment): reading it fails with a
    // message saying so (`local::resolve_dir`).
    if rel.starts_with("~/") {
        return rel;
    }
    let absolute = rel.starts_with('/').then(|| rel.clone());
    match absolute {
        Some(abs) => {
            // Relative to the root: the common prefix dropped, `..` for the rest of the root.
            let root = root.to_string_lossy().replace('\\', "/");
            let root_parts: Vec<&str> = root.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
            let mut abs_parts: Vec<String> = Vec::new();
            for seg in abs.split('/') {
                push(&mut abs_parts, seg);
            }
            let common = root_parts.iter().zip(&abs_parts).take_while(|(a, b)| **a == b.as_str()).count();
            parts.extend(std::iter::repeat_n("..".to_owned(), root_parts.len() - common));
            parts.extend(abs_parts.into_iter().skip(common));
        }
        None => {
            for seg in base.split('/').chain(rel.split('/')) {
                push(&mut parts, seg);
            }
        }
    }
    parts.join("/")
}

/// Split `name@spec`, minding the scope's leading `@`.
pub(crate) fn split_name(arg: &str) -> (&str, Option<&str>) {
    let arg = arg.trim();
    let search_from = if arg.starts_with('@') { arg.find('/').unwrap_or(0) } else { 1 };
    match arg.get(search_from..).and_then(|rest| rest.find('@')) {
        Some(at) => {
            let at = search_from + at;
            (&arg[..at], Some(&arg[at + 1..]))
        }
        None => (arg, None),
    }
}

fn check_name(name: &str, arg: &str) -> Result<(), RequestError> {
    names::validate(name).map(|_| ()).map_err(|source| RequestError::BadName { arg: arg.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Request {
        Request::parse(s).unwrap()
    }

    #[test]
    fn plain_name_is_bare_star() {
        let r = req("lodash");
        assert_eq!((r.name.as_str(), r.package.as_str(), r.bare), ("lodash", "lodash", true));
        assert!(matches!(r.spec, VersionSpec::Range { ref raw, .. } if raw == "*"));
    }

    #[test]
    fn ranges_versions_tags() {
        assert!(matches!(req("express@4").spec, VersionSpec::Range { .. }));
        assert!(matches!(req("express@^4.18.0").spec, VersionSpec::Range { .. }));
        assert!(matches!(req("express@4.18.2").spec, VersionSpec::Version(_)));
        assert!(matches!(req("express@v4.18.2").spec, VersionSpec::Version(_)));
        assert!(matches!(req("react@next").spec, VersionSpec::Tag(ref t) if t == "next"));
        assert!(matches!(req("react@latest").spec, VersionSpec::Tag(_)));
        assert!(matches!(req("x@>=1 <2 || 3.x").spec, VersionSpec::Range { .. }));
    }

    #[test]
    fn scoped_names() {
        let r = req("@babel/core@^7.0.0");
        assert_eq!(r.name, "@babel/core");
        assert!(matches!(r.spec, VersionSpec::Range { .. }));
        let r = req("@babel/core");
        assert_eq!(r.name, "@babel/core");
        assert!(r.bare);
    }

    #[test]
    fn aliases() {
        let r = req("my-react@npm:react@^18");
        assert_eq!((r.name.as_str(), r.package.as_str()), ("my-react", "react"));
        assert!(r.is_alias());
        let r = req("b@npm:@babel/core");
        assert_eq!(r.package, "@babel/core");
        assert!(r.bare);
        assert_eq!(r.to_string(), "b@npm:@babel/core@*");
        assert!(Request::parse("a@npm:b@npm:c").is_err());
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(matches!(Request::parse("../evil/"), Ok(r) if r.is_unnamed()));
        assert!(matches!(Request::parse("a/../../b@1"), Err(RequestError::BadName { .. })));
        assert!(matches!(Request::parse("x@not a tag!"), Err(RequestError::BadSpec { .. })));
    }

    #[test]
    fn places_classified_as_npm_package_arg_does() {
        let kind = |s: &str| match req(&format!("x@{s}")).spec {
            VersionSpec::Git(_) => "git",
            VersionSpec::Remote(_) => "remote",
            VersionSpec::File { .. } => "file",
            VersionSpec::Directory { .. } => "directory",
            VersionSpec::Workspace(_) => "workspace",
            _ => "registry",
        };
        for (spec, want) in [
            ("git+https://h/r.git", "git"),
            ("git+ssh://git@github.com/u/r.git#v1", "git"),
            ("git://h/r.git", "git"),
            ("git+file:///tmp/r.git#semver:^1", "git"),
            ("github:u/r", "git"),
            ("user/repo", "git"),
            ("user/repo#main", "git"),
            ("git@github.com:u/r.git", "git"),
            ("https://github.com/u/r", "git"),
            ("https://h.test/x-1.0.0.tgz", "remote"),
            ("https://github.com/u/r/archive/main.tar.gz", "remote"),
            ("file:../y", "directory"),
            ("link:../y", "directory"),
            ("./y", "directory"),
            ("../y", "directory"),
            ("/abs/y", "directory"),
            ("~/y", "directory"),
            ("file:y-1.0.0.tgz", "file"),
            ("./y.tar.gz", "file"),
            ("workspace:*", "workspace"),
            ("^1.2.3", "registry"),
            ("latest", "registry"),
        ] {
            assert_eq!(kind(spec), want, "{spec}");
        }
        assert_eq!(req("x@file:../y").spec.to_string(), "file:../y");
        assert!(VersionSpec::Workspace("^1".into()).satisfies(&semver::parse_version("1.2.0").unwrap()));
        assert!(!VersionSpec::Workspace("^2".into()).satisfies(&semver::parse_version("1.2.0").unwrap()));
    }

    #[test]
    fn paths_rebased_on_the_project_root() {
        let root = std::path::Path::new("/w/app");
        assert_eq!(rebase_path("", "../lib", root), "../lib");
        assert_eq!(rebase_path("", "./vendor/x/", root), "vendor/x");
        assert_eq!(rebase_path("packages/a", "../b", root), "packages/b");
        assert_eq!(rebase_path("packages/a", "../../../up", root), "../up");
        assert_eq!(rebase_path("", "/w/app/vendor", root), "vendor");
        assert_eq!(rebase_path("", "/w/other/x", root), "../other/x");
        assert_eq!(rebase_path("", "/elsewhere", root), "../../elsewhere");
        let r = req("../lib");
        assert!(r.is_unnamed() && matches!(r.spec, VersionSpec::Directory { .. }));
        let r = req("lib@file:../lib");
        assert_eq!(r.name, "lib");
        assert!(req("@s/x@file:../x").spec.to_string() == "file:../x");
    }

    #[test]
    fn save_spec_follows_npm() {
        let v = semver::parse_version("4.18.2").unwrap();
        assert_eq!(req("express").save_spec(&v, false), "^4.18.2");
        assert_eq!(req("express@latest").save_spec(&v, false), "^4.18.2");
        assert_eq!(req("express@4").save_spec(&v, false), "^4.18.2");
        assert_eq!(req("express@4.18.2").save_spec(&v, false), "^4.18.2");
        assert_eq!(req("express@>=4.0.0 <4.18.3").save_spec(&v, false), ">=4.0.0 <4.18.3");
        assert_eq!(req("express@4").save_spec(&v, true), "4.18.2");
        assert_eq!(req("e@npm:express").save_spec(&v, false), "npm:express@^4.18.2");
    }
}
