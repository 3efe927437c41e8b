//! The abbreviated ("corgi") packument, `application/vnd.npm.install-v1+json`, and how it is
//! derived from a full one — the public registry's field list (spec §1.3, 2024 revision).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Bin, BundleDependencies, DepMap, Dist, Engines, Manifest, Packument};

/// The content type of the abbreviated form, as clients send it in `Accept` and pnpm checks it
/// in the response.
pub const ABBREVIATED_CONTENT_TYPE: &str = "application/vnd.npm.install-v1+json";

/// The abbreviated packument: `name`, `modified`, `dist-tags`, `versions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbbreviatedPackument {
    /// The package name.
    pub name: String,
    /// `time.modified` of the full document (absent when upstream has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// `dist-tags`.
    #[serde(rename = "dist-tags", default)]
    pub dist_tags: BTreeMap<String, String>,
    /// Every version, abbreviated.
    #[serde(default)]
    pub versions: BTreeMap<String, AbbreviatedManifest>,
}

/// One version in the abbreviated form. Not in it, as on the public registry: `libc`, `time`,
/// `scripts`, `license`, `gypfile`, `dependenciesMeta`, `dist.attestations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // each field is the manifest field of the same name
pub struct AbbreviatedManifest {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<String>,
    #[serde(default, skip_serializing_if = "DepMap::is_empty")]
    pub dependencies: DepMap,
    #[serde(default, skip_serializing_if = "DepMap::is_empty")]
    pub accept_dependencies: DepMap,
    #[serde(default, skip_serializing_if = "DepMap::is_empty")]
    pub optional_dependencies: DepMap,
    #[serde(default, skip_serializing_if = "DepMap::is_empty")]
    pub dev_dependencies: DepMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_dependencies: Option<BundleDependencies>,
    #[serde(default, skip_serializing_if = "DepMap::is_empty")]
    pub peer_dependencies: DepMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_dependencies_meta: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<Bin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directories: Option<Map<String, Value>>,
    pub dist: Dist,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engines: Option<Engines>,
    #[serde(default, rename = "_hasShrinkwrap", skip_serializing_if = "Option::is_none")]
    pub has_shrinkwrap: Option<bool>,
    /// Present (and `true`) only when the version has an install script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_install_script: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<String>,
}

impl From<&Manifest> for AbbreviatedManifest {
    fn from(m: &Manifest) -> Self {
        Self {
            name: m.name.clone(),
            version: m.version.clone(),
            deprecated: m.deprecated.clone(),
            dependencies: m.dependencies.clone(),
            accept_dependencies: m.accept_dependencies.clone(),
            optional_dependencies: m.optional_dependencies.clone(),
            dev_dependencies: m.dev_dependencies.clone(),
            bundle_dependencies: m.bundle_dependencies.clone(),
            peer_dependencies: m.peer_dependencies.clone(),
            peer_dependencies_meta: m.peer_dependencies_meta.clone(),
            bin: m.bin.clone(),
            directories: m.directories.clone(),
            dist: Dist { attestations: None, ..m.dist.clone() },
            engines: m.engines.clone(),
            has_shrinkwrap: m.has_shrinkwrap,
            has_install_script: m.has_install_script().then_some(true),
            funding: m.funding.clone(),
            cpu: m.cpu.clone(),
            os: m.os.clone(),
        }
    }
}

impl Packument {
    /// The abbreviated form, derived as the registry derives it: `modified` from
    /// `time.modified`, and each version cut to the abbreviated field list.
    pub fn abbreviated(&self) -> AbbreviatedPackument {
        AbbreviatedPackument {
            name: self.name.clone(),
            modified: self.time.get("modified").cloned().or_else(|| self.modified.clone()),
            dist_tags: self.dist_tags.clone(),
            versions: self.versions.iter().map(|(v, m)| (v.clone(), AbbreviatedManifest::from(m))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corgi_drops_what_the_registry_drops() {
        let p = Packument::from_slice(
            br#"{"name":"a","dist-tags":{"latest":"1.0.0"},"time":{"modified":"2024-01-01T00:00:00.000Z"},
               "versions":{"1.0.0":{"name":"a","version":"1.0.0","libc":["glibc"],"license":"MIT",
               "scripts":{"postinstall":"x"},"dist":{"integrity":"sha512-x","attestations":{"url":"u"}}}}}"#,
        )
        .unwrap();
        let corgi = serde_json::to_value(p.abbreviated()).unwrap();
        let v = &corgi["versions"]["1.0.0"];
        assert_eq!(corgi["modified"], "2024-01-01T00:00:00.000Z");
        assert_eq!(v["hasInstallScript"], true);
        assert!(v.get("libc").is_none() && v.get("license").is_none() && v.get("scripts").is_none());
        assert!(v["dist"].get("attestations").is_none());
        assert_eq!(v["dist"]["integrity"], "sha512-x");
        let back: AbbreviatedPackument = serde_json::from_value(corgi).unwrap();
        assert_eq!(back, p.abbreviated());
    }
}
