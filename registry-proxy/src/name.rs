//! Request paths → what they ask for (spec §1.1 and its routing trap): every spelling of a
//! scoped name (`@scope%2fname`, `%2F`, a raw `/`), `/NAME/VERSION` against `/@scope/NAME`
//! told apart by the leading `@`, and tarballs by the literal `-` segment. Each segment is
//! percent-decoded on its own, strictly; a name must pass npm's rules, so traversal (`..`,
//! `%2e%2e`, a decoded `/` where none may be) never reaches a lookup.

use std::borrow::Cow;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /`.
    Root,
    /// `/-/ping`.
    Ping,
    /// `/-/v1/search`.
    Search,
    /// `/-/npm/v1/keys`.
    Keys,
    /// `/-/npm/v1/security/advisories/bulk`.
    AuditBulk,
    /// `/-/npm/v1/security/audits[/quick]`: retired upstream.
    AuditLegacy,
    /// `/-/package/NAME/dist-tags`.
    DistTags(String),
    /// `/-/whoami`, `/-/user/...`, `/-/npm/v1/user`, tokens: login is not served.
    Login,
    /// `/NAME`.
    Packument(String),
    /// `/NAME/VERSION` or `/NAME/TAG`.
    Version(String, String),
    /// `/NAME/-/FILE.tgz`.
    Tarball(String, String),
    /// Anything else a registry has under `/-/` or `/NAME/-/` (`rev`, attestations, ...).
    Unknown,
}

/// Why a path was refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
    #[error("bad percent-encoding in the request path")]
    Encoding,
    /// Not a package name npm would accept (traversal, control characters, ...).
    #[error("{0:?} is not a valid package name")]
    Name(String),
}

/// The most bytes a path may have: npm names are at most 214 characters, so a tarball path
/// (name twice, a version, percent-encoding) fits easily.
pub(crate) const MAX_PATH: usize = 2048;

/// What `path` (the raw, still percent-encoded path of the request URI) asks for.
pub(crate) fn route(path: &str) -> Result<Route, PathError> {
    if path.len() > MAX_PATH {
        return Err(PathError::Name(format!("{}…", path.chars().take(64).collect::<String>())));
    }
    let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let raw: &[&str] = if raw == [""] { &[] } else { &raw };
    if raw.is_empty() {
        return Ok(Route::Root);
    }
    let seg: Vec<Cow<'_, str>> = raw.iter().map(|s| decode(s)).collect::<Result<_, _>>()?;
    let seg: Vec<&str> = seg.iter().map(|s| s.as_ref()).collect();
    if seg[0] == "-" {
        return Ok(special(&seg[1..])?);
    }
    // `@scope/name` as two raw segments, else the first (decoded) segment is the whole name.
    let (name, rest) = if seg[0].starts_with('@') && !seg[0].contains('/') && seg.len() >= 2 {
        (format!("{}/{}", seg[0], seg[1]), &seg[2..])
    } else {
        (seg[0].to_owned(), &seg[1..])
    };
    let name = valid(name)?;
    Ok(match rest {
        [] => Route::Packument(name),
        [""] => Route::Packument(name),
        [version] => Route::Version(name, (*version).to_owned()),
        ["-", file] => Route::Tarball(name, (*file).to_owned()),
        _ => Route::Unknown,
    })
}

fn special(seg: &[&str]) -> Result<Route, PathError> {
    Ok(match seg {
        ["ping"] => Route::Ping,
        ["v1", "search"] => Route::Search,
        ["npm", "v1", "keys"] => Route::Keys,
        ["npm", "v1", "security", "advisories", "bulk"] => Route::AuditBulk,
        ["npm", "v1", "security", "audits"] | ["npm", "v1", "security", "audits", "quick"] => {
            Route::AuditLegacy
        }
        ["whoami"] | ["user", ..] | ["npm", "v1", "user"] | ["npm", "v1", "tokens", ..] => Route::Login,
        ["package", name, "dist-tags", ..] => Route::DistTags(valid((*name).to_owned())?),
        ["package", scope, name, "dist-tags", ..] if scope.starts_with('@') => {
            Route::DistTags(valid(format!("{scope}/{name}"))?)
        }
        _ => Route::Unknown,
    })
}

/// The name if npm's rules accept it (legacy names too: old packages have them).
fn valid(name: String) -> Result<String, PathError> {
    match indexer::names::validate(&name) {
        Ok(_) => Ok(name),
        Err(_) => Err(PathError::Name(name.chars().take(100).collect())),
    }
}

/// Percent-decode one segment, refusing malformed escapes and non-UTF-8 results.
fn decode(segment: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return Err(PathError::Encoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(segment).decode_utf8().map_err(|_| PathError::Encoding)
}

/// The version a tarball file name of `name` stands for: `NAME-VERSION.tgz`, the scope
/// dropped (spec §1.1).
pub(crate) fn tarball_version<'f>(name: &str, file: &'f str) -> Option<&'f str> {
    let base = name.rsplit('/').next().unwrap_or(name);
    file.strip_suffix(".tgz")?.strip_prefix(base)?.strip_prefix('-').filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: &str) -> Route {
        route(p).unwrap()
    }

    #[test]
    fn every_scoped_spelling_names_the_same_package() {
        let want = Route::Packument("@babel/core".into());
        assert_eq!(r("/@babel%2fcore"), want);
        assert_eq!(r("/@babel%2Fcore"), want);
        assert_eq!(r("/@babel/core"), want);
        assert_eq!(r("/express"), Route::Packument("express".into()));
        assert_eq!(r("/express/"), Route::Packument("express".into()));
    }

    #[test]
    fn versions_tags_and_tarballs_are_told_apart() {
        assert_eq!(r("/express/4.21.2"), Route::Version("express".into(), "4.21.2".into()));
        assert_eq!(r("/express/latest"), Route::Version("express".into(), "latest".into()));
        assert_eq!(r("/@babel/core/7.26.0"), Route::Version("@babel/core".into(), "7.26.0".into()));
        assert_eq!(r("/@babel%2fcore/next"), Route::Version("@babel/core".into(), "next".into()));
        assert_eq!(r("/a/-/a-1.0.0.tgz"), Route::Tarball("a".into(), "a-1.0.0.tgz".into()));
        assert_eq!(r("/@s/a/-/a-1.0.0.tgz"), Route::Tarball("@s/a".into(), "a-1.0.0.tgz".into()));
        assert_eq!(r("/@s%2fa/-/a-1.0.0.tgz"), Route::Tarball("@s/a".into(), "a-1.0.0.tgz".into()));
        assert_eq!(tarball_version("@s/a", "a-1.0.0-rc.1.tgz"), Some("1.0.0-rc.1"));
        assert_eq!(tarball_version("a", "b-1.0.0.tgz"), None);
        assert_eq!(tarball_version("a", "a-.tgz"), None);
    }

    #[test]
    fn special_routes() {
        assert_eq!(r("/"), Route::Root);
        assert_eq!(r(""), Route::Root);
        assert_eq!(r("/-/ping"), Route::Ping);
        assert_eq!(r("/-/v1/search"), Route::Search);
        assert_eq!(r("/-/npm/v1/keys"), Route::Keys);
        assert_eq!(r("/-/npm/v1/security/advisories/bulk"), Route::AuditBulk);
        assert_eq!(r("/-/npm/v1/security/audits/quick"), Route::AuditLegacy);
        assert_eq!(r("/-/whoami"), Route::Login);
        assert_eq!(r("/-/user/org.couchdb.user:me"), Route::Login);
        assert_eq!(r("/-/package/@s%2fa/dist-tags"), Route::DistTags("@s/a".into()));
        assert_eq!(r("/-/package/@s/a/dist-tags"), Route::DistTags("@s/a".into()));
        assert_eq!(r("/-/nothing"), Route::Unknown);
    }

    #[test]
    fn traversal_and_bad_encoding_are_refused() {
        for bad in ["/..", "/%2e%2e", "/%2e%2e%2fetc", "/@s/..", "/.hidden", "/a%00b", "/%C0%AE", "/a b"] {
            assert!(matches!(route(bad), Err(PathError::Name(_) | PathError::Encoding)), "{bad}");
        }
        assert_eq!(route("/a%zz"), Err(PathError::Encoding));
        assert_eq!(route("/a%2"), Err(PathError::Encoding));
        assert_eq!(route("/%ff"), Err(PathError::Encoding));
        assert!(route(&format!("/{}", "a".repeat(MAX_PATH))).is_err());
        assert!(route("/@s%2f..%2fx").is_err());
    }
}
