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

    /// Whether this spec is satisfied by `version` (tags never are: they must be looked up).
    pub fn satisfies(&self, version: &Version) -> bool {
        match self {
            VersionSpec::Version(v) => v == version,
            VersionSpec::Range { range, .. } => range.satisfies(version),
            VersionSpec::Tag(_) => false,
        }
    }
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSpec::Version(v) => write!(f, "{v}"),
            VersionSpec::Range { raw, .. } => f.write_str(raw),
            VersionSpec::Tag(t) => f.write_str(t),
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
        if let Some(kind) = unsupported_kind(spec) {
            return Err(RequestError::Unsupported { name: name.to_owned(), spec: spec.to_owned(), kind });
        }
        Ok(Request {
            name: name.to_owned(),
            package: name.to_owned(),
            spec: VersionSpec::parse(spec)?,
            bare: false,
        })
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

/// Specs npm accepts that are not registry specs (git, files, URLs): named so the error can
/// say what it was.
fn unsupported_kind(spec: &str) -> Option<&'static str> {
    let s = spec.trim();
    let lower = s.to_ascii_lowercase();
    if ["git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:"].iter().any(|p| lower.starts_with(p)) {
        return Some("git");
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some("remote tarball");
    }
    if lower.starts_with("file:")
        || s.starts_with('.')
        || s.starts_with('/')
        || s.starts_with('~') && s.contains('/')
    {
        return Some("local path");
    }
    if lower.starts_with("link:") || lower.starts_with("workspace:") {
        return Some("workspace or link");
    }
    // `user/repo` is GitHub shorthand.
    if s.contains('/') && !s.contains(' ') && !s.starts_with('@') {
        return Some("git");
    }
    None
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
        assert!(matches!(Request::parse("../evil"), Err(RequestError::BadName { .. })));
        assert!(matches!(
            Request::parse("x@git+https://h/r.git"),
            Err(RequestError::Unsupported { kind: "git", .. })
        ));
        assert!(matches!(Request::parse("x@file:../y"), Err(RequestError::Unsupported { .. })));
        assert!(matches!(Request::parse("x@user/repo"), Err(RequestError::Unsupported { .. })));
        assert!(matches!(Request::parse("x@not a tag!"), Err(RequestError::BadSpec { .. })));
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
