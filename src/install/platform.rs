//! `os` / `cpu` / `libc` filtering for optional dependencies, with npm-install-checks' list
//! rules (`"any"`, `!negations`), and the running platform in Node's spelling
//! (DESIGN.md §Install).

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
}
