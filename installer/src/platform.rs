//! `os` / `cpu` / `libc` filtering for optional dependencies, with npm-install-checks' list
//! rules (`"any"`, `!negations`), and the running platform in Node's spelling
//! (DESIGN.md §Install); and the running Node.js version an optional package's
//! `engines.node` is checked against ([`NodeRuntime`]).

use std::ffi::OsString;
use std::sync::{Arc, OnceLock};

use super::semver::{self, Version};

/// A platform in Node's names (`process.platform`, `process.arch`, glibc/musl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `darwin`, `win32`, ...
    pub os: String,
    /// `x64`, `arm64`, `ia32`, ...
    pub cpu: String,
    /// `glibc` or `musl` on Linux; `None` elsewhere.
    pub libc: Option<String>,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn current() -> Self {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            "windows" => "win32",
            other => other,
        };
        let cpu = match std::env::consts::ARCH {
            "x86_64" => "x64",
            "aarch64" => "arm64",
            "x86" => "ia32",
            "powerpc64" => "ppc64",
            other => other,
        };
        let libc = (os == "linux").then_some(if cfg!(target_env = "musl") { "musl" } else { "glibc" });
        Platform { os: os.to_owned(), cpu: cpu.to_owned(), libc: libc.map(str::to_owned) }
    }

    /// Whether a package declaring these lists can be installed here.
    pub fn allows(&self, os: &[String], cpu: &[String], libc: &[String]) -> bool {
        check_list(&self.os, os)
            && check_list(&self.cpu, cpu)
            // npm checks libc only on Linux.
            && self.libc.as_deref().is_none_or(|l| check_list(l, libc))
    }
}

/// The Node.js that will run the packages: its version, asked of `node --version` the first
/// time an optional package declares `engines.node` (most installs never ask). Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeRuntime {
    inner: Arc<NodeInner>,
}

#[derive(Debug)]
struct NodeInner {
    program: Option<OsString>,
    version: OnceLock<Option<Version>>,
}

impl NodeRuntime {
    /// Ask `program --version` (normally `node`, found on `PATH`) when first needed. A Node.js
    /// that cannot be run is an unknown version: engines are then not checked.
    pub fn probe(program: impl Into<OsString>) -> Self {
        NodeRuntime { inner: Arc::new(NodeInner { program: Some(program.into()), version: OnceLock::new() }) }
    }

    /// A known version (`None`: unknown, engines are not checked).
    pub fn known(version: Option<Version>) -> Self {
        NodeRuntime { inner: Arc::new(NodeInner { program: None, version: OnceLock::from(version) }) }
    }

    /// The version, probing once.
    pub fn version(&self) -> Option<&Version> {
        self.inner
            .version
            .get_or_init(|| {
                let program = self.inner.program.as_ref()?;
                let out = std::process::Command::new(program).arg("--version").output().ok()?;
                let v = semver::parse_version(String::from_utf8_lossy(&out.stdout).trim());
                if v.is_none() {
                    tracing::debug!("cannot tell the Node.js version; engines are not checked");
                }
                v
            })
            .as_ref()
    }

    /// npm-install-checks' engine check for `engines.node`: satisfied with prereleases
    /// included; no range, an unreadable range or an unknown Node.js never excludes.
    pub fn satisfies(&self, engine_node: Option<&str>) -> bool {
        let Some(range) = engine_node.and_then(semver::parse_range) else { return true };
        self.version().is_none_or(|v| range.satisfies_with_prerelease(v, true))
    }
}

/// npm-install-checks' `checkList`: empty or `["any"]` allows all; `!x` excludes x; a list of
/// only negations allows everything else.
fn check_list(value: &str, list: &[String]) -> bool {
    if list.is_empty() || (list.len() == 1 && list[0] == "any") {
        return true;
    }
    let (mut negated, mut matched) = (0, false);
    for entry in list {
        match entry.strip_prefix('!') {
            Some(test) => {
                negated += 1;
                if value == test {
                    return false;
                }
            }
            None => matched |= value == entry,
        }
    }
    matched || negated == list.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn lists() {
        let p = Platform { os: "linux".into(), cpu: "x64".into(), libc: Some("glibc".into()) };
        assert!(p.allows(&[], &[], &[]));
        assert!(!p.allows(&l(&["darwin"]), &[], &[]));
        assert!(p.allows(&l(&["!win32"]), &l(&["x64", "arm64"]), &[]));
        assert!(!p.allows(&l(&["!linux"]), &[], &[]));
        assert!(!p.allows(&[], &[], &l(&["musl"])));
        assert!(p.allows(&l(&["any"]), &[], &[]));
    }

    #[test]
    fn engines() {
        let node = NodeRuntime::known(semver::parse_version("20.1.0"));
        assert!(node.satisfies(Some(">=18")));
        assert!(!node.satisfies(Some(">=999")));
        assert!(node.satisfies(Some(">=20.1.0-rc.1")), "prereleases included");
        assert!(node.satisfies(None));
        assert!(node.satisfies(Some("not a range")), "an unreadable range never excludes");
        assert!(NodeRuntime::known(None).satisfies(Some(">=999")), "unknown Node.js: not checked");
        let missing = NodeRuntime::probe("/nonexistent/node");
        assert!(missing.version().is_none() && missing.satisfies(Some(">=999")));
    }
}
