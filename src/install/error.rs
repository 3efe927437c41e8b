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
