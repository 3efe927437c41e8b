//! [`RegistryUrl`]: a registry's base URL, normalised once, and the one rule for tarball URLs.
//!
//! Every place that needs a registry URL — the packument URL, the canonical tarball URL a
//! lockfile leaves out, a tarball URL recorded from one registry and fetched from another —
//! asks this type, so the installer, the seeder and the registry proxy agree byte for byte.

use std::fmt;

use crate::names;

/// A well-known lockfile prefix, not a default: npm writes the public registry's tarball URLs
/// into `resolved` of the lockfiles it makes, and (npm's `replace-registry-host=npmjs`
/// default) fetches them from the configured registry instead. We do the same, so an
/// npm-written lockfile installs from the registry npm's configuration names; this host is
/// never contacted unless it is the configured registry.
pub const NPM_LOCKFILE_PREFIX: &str = "https://registry.npmjs.org/";

/// A registry base URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an http:// or https:// URL")]
pub struct UrlError {
    /// The value given (cut to 200 characters).
    pub value: String,
}

/// A registry's base URL: `http://` or `https://`, always ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryUrl(String);

impl RegistryUrl {
    /// Normalise `base`: surrounding white space is dropped and a trailing `/` added.
    pub fn parse(base: &str) -> Result<Self, UrlError> {
        let base = base.trim();
        let lower = base.to_ascii_lowercase();
        let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(UrlError { value: base.chars().take(200).collect() });
        }
        Ok(RegistryUrl(Self::with_slash(base)))
    }

    /// `base` with a trailing `/` (for bases recorded in an index, which were parsed when
    /// they were recorded).
    fn with_slash(base: &str) -> String {
        if base.ends_with('/') { base.to_owned() } else { format!("{base}/") }
    }

    /// The base URL, with its trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the packument of `name` is (`@scope%2fname` for scoped names).
    pub fn packument(&self, name: &str) -> String {
        format!("{}{}", self.0, names::url_segment(name))
    }

    /// The canonical tarball URL of `name@version` here: `{base}{name}/-/{file}` (what a
    /// lockfile without `resolved` means).
    pub fn tarball(&self, name: &str, version: &str) -> String {
        format!("{}{}", self.0, canonical_path(name, version))
    }

    /// The URL to fetch the tarball at `resolved` (a lockfile's or packument's URL) from: the
    /// public registry's prefix that npm writes into its lockfiles is replaced by this
    /// registry (npm's `replace-registry-host`); any other URL is kept.
    pub fn fetch_url(&self, resolved: &str) -> String {
        match resolved.strip_prefix(NPM_LOCKFILE_PREFIX) {
            Some(rest) if self.0 != NPM_LOCKFILE_PREFIX => format!("{}{rest}", self.0),
            _ => resolved.to_owned(),
        }
    }

    /// Re-point the tarball URL of `name@version` recorded under one of `bases` at this
    /// registry, when it is the canonical URL there (`{base}{name}/-/{file}`): that is what
    /// this registry's own packument says for it. Other URLs — an unknown host, a
    /// non-canonical path — are kept as they are (`None`).
    pub fn retarget<'a>(
        &self,
        url: &str,
        name: &str,
        version: &str,
        bases: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let path = canonical_path(name, version);
        let prefix = url.strip_suffix(path.as_str())?;
        if prefix == self.0 || !bases.into_iter().any(|b| Self::with_slash(b) == prefix) {
            return None;
        }
        Some(format!("{}{path}", self.0))
    }
}

/// `{name}/-/{file}`: the path of a tarball below its registry's base.
fn canonical_path(name: &str, version: &str) -> String {
    format!("{name}/-/{}", names::tarball_file_name(name, version))
}

impl fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RegistryUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialEq<&str> for RegistryUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for RegistryUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RegistryUrl {
        RegistryUrl::parse(s).unwrap()
    }

    #[test]
    fn bases_are_normalised_once() {
        assert_eq!(url("http://127.0.0.1:9").as_str(), "http://127.0.0.1:9/");
        assert_eq!(url(" https://r.example/npm/ ").as_str(), "https://r.example/npm/");
        for bad in ["", "ftp://x/", "http://", "http:///x", "127.0.0.1:4873"] {
            assert!(RegistryUrl::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(url("http://a/").packument("@s/a"), "http://a/@s%2fa");
        assert_eq!(url("http://a/").tarball("@s/a", "1.0.0"), "http://a/@s/a/-/a-1.0.0.tgz");
    }

    #[test]
    fn npmjs_urls_are_rewritten_to_the_registry() {
        let s = url("http://127.0.0.1:9/");
        assert_eq!(
            s.fetch_url("https://registry.npmjs.org/a/-/a-1.0.0.tgz"),
            "http://127.0.0.1:9/a/-/a-1.0.0.tgz"
        );
        assert_eq!(s.fetch_url("http://other/x.tgz"), "http://other/x.tgz");
    }

    #[test]
    fn canonical_urls_of_known_registries_are_repointed() {
        let bases = ["http://a/", "http://b/x/"];
        let to = url("http://c/");
        assert_eq!(
            to.retarget("http://b/x/@s/a/-/a-1.0.0.tgz", "@s/a", "1.0.0", bases).as_deref(),
            Some("http://c/@s/a/-/a-1.0.0.tgz")
        );
        // An unknown host, or a non-canonical path, is kept.
        for odd in ["http://elsewhere/@s/a/-/a-1.0.0.tgz", "http://a/files/a.tgz"] {
            assert_eq!(to.retarget(odd, "@s/a", "1.0.0", bases), None, "{odd}");
        }
        // Already here.
        assert_eq!(
            url("http://a/").retarget("http://a/@s/a/-/a-1.0.0.tgz", "@s/a", "1.0.0", ["http://a/"]),
            None
        );
        // A base recorded without its slash.
        assert_eq!(
            to.retarget("http://a/q/-/q-2.0.0.tgz", "q", "2.0.0", ["http://a"]).as_deref(),
            Some("http://c/q/-/q-2.0.0.tgz")
        );
    }
}
