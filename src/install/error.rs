//! The install engine's error enums; each names the package, spec or file it is about.

use std::io;
use std::path::PathBuf;

use indexer::names::NameError;

/// A SPEC (command line or `package.json` value) that cannot be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The package name breaks npm's naming rules.
    #[error("{arg:?} is not a valid package name")]
    BadName {
        /// The argument as given.
        arg: String,
        /// Which rule it breaks.
        #[source]
        source: NameError,
    },
    /// Neither a version, a range nor a dist-tag.
    #[error("{spec:?} is not a version, a range or a dist-tag")]
    BadSpec {
        /// The spec as given.
        spec: String,
    },
    /// A git, file or URL spec: npm takes them, `ims install` installs from the registry only.
    #[error("{name}@{spec}: {kind} dependencies are not supported (registry packages only)")]
    Unsupported {
        /// The dependency name.
        name: String,
        /// The spec as given.
        spec: String,
        /// What kind of spec it is.
        kind: &'static str,
    },
}

/// `package.json` could not be read, parsed or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    /// Reading or writing the file failed.
    #[error("could not access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Not JSON, or not a JSON object.
    #[error("{path} is not a valid package.json: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A dependency entry in it is not installable.
    #[error("{path}: dependency {name:?}")]
    BadDependency {
        /// The file.
        path: PathBuf,
        /// The dependency name.
        name: String,
        /// Why.
        #[source]
        source: RequestError,
    },
}

/// Why a request could not be resolved to a version. Each variant names the package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The source has no package of that name.
    #[error("package {name} does not exist in the registry")]
    UnknownPackage {
        /// The registry name.
        name: String,
    },
    /// The package exists but no version matches.
    #[error("no version of {name} matches {spec:?} (latest is {latest})")]
    NoMatchingVersion {
        /// The registry name.
        name: String,
        /// The spec asked for.
        spec: String,
        /// The `latest` dist-tag, or `none`.
        latest: String,
    },
    /// The package was unpublished.
    #[error("package {name} was unpublished")]
    Unpublished {
        /// The registry name.
        name: String,
    },
    /// A version lacks the `dist` needed to fetch it.
    #[error("{name}@{version} has no usable dist.integrity or dist.shasum")]
    NoIntegrity {
        /// The registry name.
        name: String,
        /// The version.
        version: String,
    },
    /// The manifest source failed (network, index, malformed document).
    #[error("could not fetch the packument of {name}")]
    Source {
        /// The registry name.
        name: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Resolving a dependency deep in the tree failed: `path` is how the project reaches it.
    #[error("cannot resolve {path}")]
    Dependency {
        /// The dependency path from the project: `app > express > body-parser`.
        path: String,
        /// What went wrong.
        #[source]
        source: Box<ResolveError>,
    },
    /// npm's ERESOLVE: a peer dependency cannot be placed because a package the project needs
    /// is already there in a version the peer range excludes.
    #[error(
        "ERESOLVE unable to resolve dependency tree\n\nFound: {found}\n\nCould not resolve dependency:\n{wanted}"
    )]
    PeerConflict {
        /// What occupies the place: `name@version`, its location, and who depends on it.
        found: String,
        /// The peer dependency that does not fit: `peer name@"range" from dependent@version`,
        /// its dependent's location, and who depends on that.
        wanted: String,
    },
    /// A dependency spec inside a manifest cannot be installed.
    #[error("{parent} depends on {name}@{spec}")]
    BadDependency {
        /// The `name@version` declaring it.
        parent: String,
        /// The dependency name.
        name: String,
        /// The spec.
        spec: String,
        /// Why.
        #[source]
        source: Box<RequestError>,
    },
}

/// A package could not be linked or copied from the store into `node_modules`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Reading the store or writing `node_modules` failed.
    #[error("could not link {from} to {to}")]
    Io {
        /// The store file or directory.
        from: PathBuf,
        /// The `node_modules` path.
        to: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// `package-lock.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockfileError {
    /// Reading or writing failed.
    #[error("could not access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Not a lockfile this version understands.
    #[error("{path} is not a usable package-lock.json: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A download failed (network, HTTP status, or the store refused the bytes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed or the server answered with an error status.
    #[error("GET {url} failed")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an unexpected status.
    #[error("GET {url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The registry document is not a packument.
    #[error("{url} is not a valid packument")]
    BadPackument {
        /// The URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: indexer::model::ParseError,
    },
    /// `--offline` and this was never recorded into the local index or the store.
    #[error(
        "{what} is not available offline (not in the local index or tarball store of this --home)\nhint: run the install once without --offline, or `ims index --from-registry URL NAME`"
    )]
    Offline {
        /// The package (packument name, or `name@version` for a tarball).
        what: String,
    },
    /// The task parsing a document died.
    #[error("the packument parser task failed: {0}")]
    Join(String),
}

impl FetchError {
    /// Whether the server could not be reached at all (connection refused, DNS, timeout), as
    /// opposed to answering badly: then asking it again for the next package is pointless.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FetchError::Http { source, .. } if source.is_connect() || source.is_timeout())
    }
}

/// Why `ims install` failed. Each variant names the package (location or spec) involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// `package.json` could not be read or saved.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// A SPEC on the command line is not installable.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Resolution failed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// `package-lock.json` could not be read or written.
    #[error(transparent)]
    Lockfile(#[from] LockfileError),
    /// A package's tarball could not be fetched, verified or unpacked.
    #[error("could not fetch {package}@{version} ({path}, at {location})")]
    Fetch {
        /// The dependency path that needs it: `app > express > body-parser`.
        path: String,
        /// Where it goes (`node_modules/a/node_modules/b`).
        location: String,
        /// The registry name.
        package: String,
        /// The version.
        version: String,
        /// The cause.
        #[source]
        source: Box<crate::install::fetch::FetchTarballError>,
    },
    /// A lockfile entry has no usable `integrity` or `resolved`.
    #[error("{location} has no usable integrity or resolved URL in the lockfile")]
    Unfetchable {
        /// The lockfile location.
        location: String,
    },
    /// Writing `node_modules` failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// An allowed install script failed.
    #[error(transparent)]
    Script(#[from] crate::install::scripts::ScriptError),
}
