//! The install engine's error enums; each names the package, spec or file it is about.

use std::io;
use std::path::PathBuf;

use indexer::names::NameError;
use indexer::remote::RemoteError;
use indexer::upstream::{FetchError, FetchTarballError};

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

/// The root `package.json`'s `overrides` cannot be applied (npm's EOVERRIDE and the errors
/// arborist throws reading them).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OverrideError {
    /// An override changes what the project itself asks for (npm's EOVERRIDE).
    #[error("EOVERRIDE: override for {name}@{spec} conflicts with direct dependency")]
    Conflict {
        /// The dependency name.
        name: String,
        /// The project's own spec for it.
        spec: String,
    },
    /// A `$name` value naming a dependency the project does not have.
    #[error("unable to resolve reference {reference} ({key})")]
    UnresolvedReference {
        /// The value as written (`$foo`).
        reference: String,
        /// Where it is written (`overrides.foo`).
        key: String,
    },
    /// A key that does not name a package.
    #[error("{path}: {reason}")]
    BadKey {
        /// Where (`overrides.parent.key`).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A value that is neither a spec nor an object of overrides.
    #[error("{path}: {reason}")]
    BadValue {
        /// Where.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl OverrideError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            OverrideError::Conflict { .. } => {
                "make the override the same spec as the dependency, or write it as \"$name\" to follow the dependency's own spec"
            }
            OverrideError::UnresolvedReference { .. } => {
                "a \"$name\" override must name a dependency of the root package.json; add it there or write the spec out"
            }
            OverrideError::BadKey { .. } | OverrideError::BadValue { .. } => {
                "each key of overrides is a package name (name@range) and each value a spec or an object of overrides"
            }
        }
    }
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
    /// `dist.integrity` is present but unusable: refused rather than falling back to the
    /// weaker `dist.shasum` (a hostile registry would otherwise choose SHA-1 for us).
    #[error("{name}@{version} has an unusable dist.integrity (not falling back to dist.shasum)")]
    BadIntegrity {
        /// The registry name.
        name: String,
        /// The version.
        version: String,
        /// Why it does not parse.
        #[source]
        source: indexer::tarballs::IntegrityParseError,
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
    /// The project's `overrides` cannot be applied.
    #[error(transparent)]
    Override(#[from] OverrideError),
    /// A local package (a workspace, a `file:` folder or tarball) cannot be used.
    #[error("{spec}: {reason}")]
    Local {
        /// The spec or folder as written (`file:../lib`, `packages/*`).
        spec: String,
        /// What is wrong with it (`no package.json in ../lib`).
        reason: String,
    },
    /// A local package's version is not semver.
    #[error("{name} has version {version:?}, which is not a semantic version")]
    BadLocalVersion {
        /// Its name.
        name: String,
        /// Its version field.
        version: String,
    },
    /// A package fetched from git or a URL could not be had.
    #[error("{spec}: {reason}")]
    Origin {
        /// The spec as written.
        spec: String,
        /// Why.
        reason: String,
        /// What to do about it.
        hint: String,
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
    /// A symbolic link where ims would write or remove under `node_modules` (a committed
    /// `node_modules -> ../..`, or a link inside it): following it would leave the project.
    #[error(
        "{path} is a symbolic link (to {target}): ims does not write or remove through links in node_modules"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// `node_modules/.package-lock.json` names a location that is not a `node_modules` path.
    #[error(transparent)]
    HiddenLockfile(LockfileError),
    /// npm's EEXIST: a global command of that name belongs to something else.
    #[error("EEXIST: {path} already exists and is not a command of {package}")]
    BinExists {
        /// `PREFIX/bin/<cmd>`.
        path: PathBuf,
        /// The package being installed.
        package: String,
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
    /// An entry whose location is not a `node_modules/<name>(/node_modules/<name>)*` chain of
    /// valid package names: laying it out would write outside `node_modules`.
    #[error("{path}: the entry {location:?} is not a node_modules/<name> path: {reason}")]
    BadLocation {
        /// The file.
        path: PathBuf,
        /// The entry's key.
        location: String,
        /// What is wrong.
        reason: String,
    },
}

/// A script that failed.
#[derive(Debug, thiserror::Error)]
#[error("{package}: `{event}` script failed ({status})")]
pub struct ScriptError {
    /// `name@version`.
    pub package: String,
    /// `preinstall`, `install` or `postinstall`.
    pub event: String,
    /// The exit status, or why it did not start.
    pub status: String,
}

/// Why a resolve key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad resolve key {key:?}: {reason}")]
pub struct QueryError {
    /// The key (after the prefix).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
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
        source: Box<FetchTarballError>,
    },
    /// A lockfile entry has no usable `integrity` or `resolved`.
    #[error("{location} has no usable integrity or resolved URL in the lockfile")]
    Unfetchable {
        /// The lockfile location.
        location: String,
    },
    /// A lockfile's `resolved` URL is on a host that is neither the configured registry nor
    /// one the user allowed.
    #[error("{location} would be fetched from {url}, which is not the registry {registry}")]
    ForeignTarball {
        /// The lockfile location.
        location: String,
        /// The `resolved` URL.
        url: String,
        /// The configured registry.
        registry: String,
        /// The URL's `host[:port]`, for the hint.
        host: String,
    },
    /// `ims ci` / `--frozen-lockfile` without a `package-lock.json`.
    #[error("there is no package-lock.json or npm-shrinkwrap.json in {dir}")]
    NoLockfile {
        /// The project folder.
        dir: PathBuf,
    },
    /// `ims ci` / `--frozen-lockfile`: the lockfile does not give what `package.json` asks for.
    #[error("package.json and package-lock.json are not in sync:\n{}", problems.join("\n"))]
    OutOfSync {
        /// npm's lines: `Missing: a@^1 from lock file`, `Invalid: lock file's b@1.0.0 does not
        /// satisfy b@^2`, and `Removed: …` for a dependency the lockfile has and package.json
        /// no longer does.
        problems: Vec<String>,
    },
    /// Writing `node_modules` failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// An allowed install script failed.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The peer holding the index to resolve from could not be reached.
    #[error(transparent)]
    Peer(#[from] RemoteError),
    /// The peer's index could not be read.
    #[error("reading the peer's index {key}")]
    PeerIndex {
        /// The index key (hex).
        key: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What kind of failure an install ended in, for a CLI's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The request itself is wrong: a bad SPEC, a bad `package.json` entry.
    Usage,
    /// A registry or peer could not be reached, or kept failing.
    Network,
    /// Bytes did not match the integrity the index or lockfile promises.
    Integrity,
    /// The tree cannot be built as asked: npm's ERESOLVE (peer conflict).
    Conflict,
    /// Anything else: a missing package or version, the file system, a script.
    Other,
}

impl InstallError {
    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        match self {
            InstallError::Request(_)
            | InstallError::Project(ProjectError::BadDependency { .. })
            | InstallError::NoLockfile { .. }
            | InstallError::OutOfSync { .. } => FailureKind::Usage,
            InstallError::Resolve(e) => match e.innermost() {
                ResolveError::PeerConflict { .. } => FailureKind::Conflict,
                ResolveError::BadDependency { .. }
                | ResolveError::Local { .. }
                | ResolveError::BadLocalVersion { .. }
                | ResolveError::Override(_) => FailureKind::Usage,
                e if unreachable(e) => FailureKind::Network,
                _ => FailureKind::Other,
            },
            InstallError::Fetch { source, .. } if source.is_integrity_mismatch() => FailureKind::Integrity,
            InstallError::Fetch { source, .. } if unreachable(source.as_ref()) => FailureKind::Network,
            InstallError::Peer(_) => FailureKind::Network,
            _ => FailureKind::Other,
        }
    }

    /// The failure as the user reads it first: which dependency path failed and how
    /// (`app > express > qs: no version of qs matches "^99"`); `registry` is the upstream
    /// registry the install used.
    pub fn headline(&self, registry: &str) -> String {
        match self {
            InstallError::Resolve(e) => {
                let at = match e {
                    ResolveError::Dependency { path, .. } => format!("{path}: "),
                    _ => String::new(),
                };
                match e.innermost() {
                    ResolveError::UnknownPackage { name } => {
                        format!("{at}package {name} does not exist in the registry")
                    }
                    ResolveError::NoMatchingVersion { name, spec, .. } => {
                        format!("{at}no version of {name} matches {spec:?}")
                    }
                    ResolveError::PeerConflict { .. } => {
                        "peer dependency conflict (npm's ERESOLVE)".to_owned()
                    }
                    e @ (ResolveError::Local { .. }
                    | ResolveError::BadLocalVersion { .. }
                    | ResolveError::Origin { .. }
                    | ResolveError::Override(_)) => format!("{at}{e}"),
                    e if unreachable(e) => format!("{at}cannot reach the registry"),
                    _ => format!("{at}resolving against {registry} failed"),
                }
            }
            InstallError::Fetch { path, package, version, source, .. } => {
                if source.is_integrity_mismatch() {
                    format!("{path}: the tarball of {package}@{version} fails its integrity check")
                } else {
                    format!("{path}: cannot download {package}@{version}")
                }
            }
            InstallError::Peer(e) => e.to_string(),
            InstallError::PeerIndex { .. } => self.to_string(),
            InstallError::Request(e) => e.to_string(),
            InstallError::Project(e) => format!("reading or saving package.json: {e}"),
            InstallError::Lockfile(e) => format!("reading or saving package-lock.json: {e}"),
            InstallError::Unfetchable { .. } | InstallError::ForeignTarball { .. } => self.to_string(),
            InstallError::NoLockfile { .. } => {
                format!("a frozen install (ims ci, --frozen-lockfile) needs a lockfile: {self}")
            }
            InstallError::OutOfSync { .. } => {
                format!(
                    "a frozen install (ims ci, --frozen-lockfile) can only install a lockfile in sync with package.json; {self}"
                )
            }
            InstallError::Link(e @ (LinkError::Symlink { .. } | LinkError::HiddenLockfile(_))) => {
                format!("refusing to write node_modules: {e}")
            }
            InstallError::Link(e @ LinkError::BinExists { .. }) => e.to_string(),
            InstallError::Link(e) => format!("writing node_modules: {e}"),
            InstallError::Script(e) => format!("running allowed install scripts: {e}"),
        }
    }

    /// What to do about it; `registry` is the upstream registry the install used.
    pub fn hint(&self, registry: &str) -> String {
        let unchanged = "node_modules was not changed";
        let offline = format!(
            "is the registry at {registry} running and reachable? Check --registry and .npmrc, or install what was fetched before with --offline; {unchanged}"
        );
        match self {
            InstallError::Resolve(e) => match e.innermost() {
                ResolveError::UnknownPackage { name } => format!(
                    "check the name where it is asked for (`npm view {name}`), or that {registry} is the registry meant; {unchanged}"
                ),
                ResolveError::NoMatchingVersion { name, .. } => format!(
                    "see what is published with `npm view {name} versions` and change the range; {unchanged}"
                ),
                ResolveError::PeerConflict { .. } => format!(
                    "fix the upstream dependency conflict, or retry with --legacy-peer-deps (peer dependencies are then not installed); {unchanged}"
                ),
                ResolveError::Local { .. } | ResolveError::BadLocalVersion { .. } => format!(
                    "check the path in package.json (relative to the package.json that names it) and the package.json there; {unchanged}"
                ),
                ResolveError::Origin { hint, .. } => format!("{hint}; {unchanged}"),
                ResolveError::Override(e) => format!("{}; {unchanged}", e.hint()),
                e => match offline_hint(e) {
                    Some(h) => h,
                    None if unreachable(e) => offline,
                    None => format!("check the name and range with `npm view`; {unchanged}"),
                },
            },
            InstallError::Fetch { source, .. } => {
                if source.is_integrity_mismatch() {
                    format!(
                        "the registry served other bytes than its packument or the lockfile promises (a broken mirror or proxy?); retry later or report it; {unchanged}"
                    )
                } else if let Some(h) = offline_hint(source.as_ref()) {
                    h
                } else if unreachable(source.as_ref()) {
                    offline
                } else {
                    format!("retry; {unchanged}")
                }
            }
            InstallError::Peer(e) => e.hint().unwrap_or("check --key and --peer").to_owned(),
            InstallError::PeerIndex { .. } => "check that --key names an ims index".to_owned(),
            InstallError::Request(_) | InstallError::Project(ProjectError::BadDependency { .. }) => {
                format!("write the dependency as name@version, name@range or name@tag; {unchanged}")
            }
            InstallError::Project(_) => (
                "fix the file named above (it must be a JSON object) and run again; if it was saving that failed, node_modules is installed but the file may not list the change"
            )
            .to_owned(),
            InstallError::Lockfile(_) | InstallError::Unfetchable { .. } => (
                "fix or delete package-lock.json and run again (ims then resolves from package.json); if it was saving that failed, node_modules is installed but the lockfile is stale"
            )
            .to_owned(),
            InstallError::NoLockfile { .. } => {
                format!("run `ims install` to resolve and write package-lock.json, and commit it; {unchanged}")
            }
            InstallError::OutOfSync { .. } => {
                format!("update the lock file with `ims install` (or `npm install`) and commit it; {unchanged}")
            }
            InstallError::ForeignTarball { host, .. } => format!(
                "ims fetches tarballs only from the configured registry and from peers; if {host} is trusted, pass --allow-tarball-host {host} (or IMS_ALLOW_TARBALL_HOST={host}); {unchanged}"
            ),
            InstallError::Link(LinkError::Symlink { path, .. }) => format!(
                "a cloned project must not bring links into node_modules: remove {} (or the whole node_modules) and run again; nothing was written through it",
                path.display()
            ),
            InstallError::Link(LinkError::HiddenLockfile(_)) => {
                "delete node_modules/.package-lock.json (or the whole node_modules) and run again; nothing was removed".to_owned()
            }
            InstallError::Link(LinkError::BinExists { path, .. }) => format!(
                "remove {} and try again, or pass --force to replace it (as npm's --force); the previous install was left in place",
                path.display()
            ),
            InstallError::Link(_) => "node_modules may be incomplete: fix the cause above (permissions, disk space) and run the install again".to_owned(),
            InstallError::Script(_) => "node_modules is in place but this package's install script did not finish: see its output above, fix the cause and run the install again".to_owned(),
        }
    }
}

impl ResolveError {
    /// The failure below any [`ResolveError::Dependency`] wrappers.
    pub fn innermost(&self) -> &ResolveError {
        match self {
            ResolveError::Dependency { source, .. } => source.innermost(),
            e => e,
        }
    }
}

/// Whether `err` or one of its causes is a request that never got an answer (refused,
/// reset, timed out).
fn unreachable(err: &(dyn std::error::Error + 'static)) -> bool {
    causes(err).any(|e| {
        e.downcast_ref::<FetchError>()
            .is_some_and(|f| matches!(f, FetchError::Http { .. } | FetchError::Tls { .. }))
    })
}

/// The registry client's own hint somewhere in `err`'s causes (an `--offline` miss, an
/// untrusted certificate).
fn offline_hint(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    causes(err).find_map(|e| e.downcast_ref::<FetchError>().and_then(FetchError::hint))
}

fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failures after node_modules began to change must not claim it was left alone.
    #[test]
    fn link_and_script_failures_say_what_they_were_doing_and_do_not_claim_node_modules_unchanged() {
        let link: InstallError = LinkError::Io {
            from: "/store/a".into(),
            to: "node_modules/a".into(),
            source: io::Error::other("disk full"),
        }
        .into();
        let script: InstallError =
            ScriptError { package: "a@1.0.0".into(), event: "postinstall".into(), status: "exit 1".into() }
                .into();
        for (err, doing) in [(link, "writing node_modules"), (script, "running allowed install scripts")] {
            assert!(err.headline("r").starts_with(doing), "{}", err.headline("r"));
            assert!(!err.hint("r").contains("not changed"), "{}", err.hint("r"));
            assert_eq!(err.kind(), FailureKind::Other);
        }
    }
}
