//! npm-flavoured semver behind a guard: `nodejs-semver` with the thin local fixes of spec
//! `npm-registry-and-installers.md` §4.6 (empty range is `*`, `x` bounds in hyphen ranges,
//! `~x`/`^x`), and parsing that can never take the installer down.

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use nodejs_semver::{Range, Version};

/// Parse a version as npm's `semver.valid` would (a leading `v` or `=` allowed).
pub fn parse_version(raw: &str) -> Option<Version> {
    let s = raw.trim();
    let s = s.strip_prefix('=').unwrap_or(s).trim_start();
    let s = s.strip_prefix('v').unwrap_or(s);
    // The crate is not known to panic on versions, but this runs on registry input.
    catch_unwind(AssertUnwindSafe(|| Version::parse(s))).ok()?.ok()
}

/// Parse a range as npm's `semver.validRange` would. `None` means npm would not read it as a
/// range either (it may then be a dist-tag).
pub fn parse_range(raw: &str) -> Option<Range> {
    let fixed = normalize(raw);
    // Spec §4.6: semver crates have panicked on real-world ranges; a range from a registry
    // document must never abort an install.
    catch_unwind(AssertUnwindSafe(|| Range::parse(&fixed))).ok()?.ok()
}

/// Whether a range names an exact version only (`1.2.3`, `=1.2.3`, `v1.2.3`).
pub fn exact_version(raw: &str) -> Option<Version> {
    let s = raw.trim();
    if s.contains(' ') || s.contains("||") {
        return None;
    }
    parse_version(s)
}

fn is_wild(part: &str) -> bool {
    matches!(part, "x" | "X" | "*" | "")
}

/// The local fixes npm's own fixtures need (§4.6): rewrite each `||` alternative.
fn normalize(raw: &str) -> String {
    raw.split("||")
        .map(|alt| {
            let alt = alt.trim();
            if let Some((lo, hi)) = alt.split_once(" - ") {
                let (lo, hi) = (lo.trim(), hi.trim());
                return match (is_wild(lo), is_wild(hi)) {
                    (true, true) => "*".to_owned(),
                    (false, true) => format!(">={lo}"),
                    (true, false) => format!("<={hi}"),
                    (false, false) => alt.to_owned(),
                };
            }
            alt.split_whitespace()
                .map(|tok| match tok {
                    "~x" | "^x" | "~X" | "^X" | "~*" | "^*" => "*",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .map(|alt| if alt.is_empty() { "*".to_owned() } else { alt })
        .collect::<Vec<_>>()
        .join(" || ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sat(range: &str, version: &str) -> bool {
        parse_range(range).unwrap().satisfies(&parse_version(version).unwrap())
    }

    #[test]
    fn npm_semantics_not_cargo() {
        assert!(sat("1.0.0", "1.0.0"));
        assert!(!sat("1.0.0", "1.0.1"), "a bare version is exact in npm");
        assert!(sat("^1.2.3 || 3.x", "3.9.0"));
        assert!(sat("1.2.3 - 2.3.4", "2.3.4"));
        assert!(sat("", "7.7.7"));
        assert!(sat("~x", "0.0.1"));
        assert!(sat("1.0.0 - x", "9.0.0"));
        assert!(sat("v1.2.3", "1.2.3"));
        assert!(sat(">= 1.2", "1.2.0"));
    }

    #[test]
    fn prereleases_only_when_asked() {
        assert!(!sat("^1.0.0", "1.1.0-beta.1"));
        assert!(sat("^1.1.0-beta.0", "1.1.0-beta.1"));
        assert!(!sat("^1.1.0-beta.0", "1.2.0-beta.1"));
        assert!(!sat("*", "2.0.0-rc.1"));
    }

    #[test]
    fn tags_are_not_ranges() {
        assert!(parse_range("latest").is_none());
        assert!(parse_range("next").is_none());
        assert!(exact_version("1.2.3").is_some());
        assert!(exact_version("^1.2.3").is_none());
    }
}
