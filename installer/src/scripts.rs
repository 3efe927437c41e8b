//! Install scripts (`preinstall`, `install`, `postinstall`): never run by default, as pnpm
//! and bun do (spec §5.4); run only for packages the user allows, by flag or by the
//! `allowScripts` field of the project's `package.json` (a list of names, or an object of
//! `name: true`) (DESIGN.md §Install).

pub use crate::error::ScriptError;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::project::Project;

/// Which packages may run their install scripts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ScriptPolicy {
    /// None (the default).
    #[default]
    Deny,
    /// Every package (`--allow-scripts` with no names).
    All,
    /// These package names.
    Names(BTreeSet<String>),
}

impl ScriptPolicy {
    /// The policy from `package.json`'s `allowScripts`, merged with `extra` names from the
    /// command line.
    pub fn from_project(project: &Project, extra: &[String]) -> Self {
        let mut names: BTreeSet<String> = extra.iter().cloned().collect();
        match project.field("allowScripts") {
            Some(Value::Array(a)) => names.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned))),
            Some(Value::Object(m)) => {
                names.extend(m.iter().filter(|(_, v)| v.as_bool() == Some(true)).map(|(k, _)| k.clone()))
            }
            _ => {}
        }
        if names.is_empty() { ScriptPolicy::Deny } else { ScriptPolicy::Names(names) }
    }

    /// Whether `package` may run its scripts.
    pub fn allows(&self, package: &str) -> bool {
        match self {
            ScriptPolicy::Deny => false,
            ScriptPolicy::All => true,
            ScriptPolicy::Names(n) => n.contains(package),
        }
    }
}

/// Run the lifecycle scripts of the package installed at `dir` (whose `package.json` names
/// them), with `node_modules/.bin` folders first on `PATH` (`path` is the caller's PATH).
pub fn run_install_scripts(
    project: &Path,
    dir: &Path,
    package: &str,
    path: Option<&OsString>,
) -> Result<usize, ScriptError> {
    run_scripts(project, dir, package, path, &["preinstall", "install", "postinstall"])
}

/// The lifecycle scripts npm runs to build a git dependency before packing it (its `npm
/// install`, then `npm pack`'s `prepack`), in that order.
pub const GIT_BUILD_EVENTS: &[&str] = &[
    "preinstall",
    "install",
    "postinstall",
    "prepublish",
    "preprepare",
    "prepare",
    "postprepare",
    "prepack",
];

/// Run the `events` scripts of the package at `dir` that its `package.json` has, in order.
pub fn run_scripts(
    project: &Path,
    dir: &Path,
    package: &str,
    path: Option<&OsString>,
    events: &[&str],
) -> Result<usize, ScriptError> {
    let manifest: Value = std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let mut bins: Vec<PathBuf> = vec![dir.join("node_modules/.bin"), project.join("node_modules/.bin")];
    if let Some(p) = path {
        bins.extend(std::env::split_paths(p));
    }
    let joined = std::env::join_paths(bins).unwrap_or_default();
    let mut ran = 0;
    for &event in events {
        let Some(script) = manifest.get("scripts").and_then(|s| s.get(event)).and_then(Value::as_str) else {
            continue;
        };
        tracing::info!(package, event, script, "running install script");
        // POSIX sh by absolute path: `PATH` below is the script's, not ours.
        let status = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("PATH", &joined)
            .env("npm_lifecycle_event", event)
            .env("npm_package_name", manifest.get("name").and_then(Value::as_str).unwrap_or_default())
            .env("npm_package_version", manifest.get("version").and_then(Value::as_str).unwrap_or_default())
            .status()
            .map_err(|e| ScriptError {
                package: package.to_owned(),
                event: event.to_owned(),
                status: e.to_string(),
            })?;
        if !status.success() {
            return Err(ScriptError {
                package: package.to_owned(),
                event: event.to_owned(),
                status: status.to_string(),
            });
        }
        ran += 1;
    }
    Ok(ran)
}
