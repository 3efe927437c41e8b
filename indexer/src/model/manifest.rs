//! The version manifest as the index keeps it: the install superset of spec §1.3 (every field
//! some installer reads), parsed tolerantly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Dist, lenient};

/// A dependency map (`name -> range`), ordered by name so that equal maps encode equally.
pub type DepMap = BTreeMap<String, String>;

/// The lifecycle scripts kept from `scripts` (spec §1.3: install-time ones, plus `prepare` for
/// git sources).
pub const LIFECYCLE_SCRIPTS: [&str; 4] = ["preinstall", "install", "postinstall", "prepare"];

/// One version of a package: the fields installers read (spec §1.3, "the union to store").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawManifest", rename_all = "camelCase")]
pub struct Manifest {
    /// The package name (as the version object states it).
    pub name: String,
    /// The version string (as the version object states it).
    pub version: String,
    /// The deprecation message, if the version is deprecated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<String>,
    /// `dependencies`.
    #[serde(skip_serializing_if = "DepMap::is_empty")]
    pub dependencies: DepMap,
    /// `optionalDependencies`.
    #[serde(skip_serializing_if = "DepMap::is_empty")]
    pub optional_dependencies: DepMap,
    /// `peerDependencies`.
    #[serde(skip_serializing_if = "DepMap::is_empty")]
    pub peer_dependencies: DepMap,
    /// `peerDependenciesMeta` (`{name: {optional: true}}`), kept verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_dependencies_meta: Option<Map<String, Value>>,
    /// `devDependencies` (read only when the package is itself an install root).
    #[serde(skip_serializing_if = "DepMap::is_empty")]
    pub dev_dependencies: DepMap,
    /// `acceptDependencies`.
    #[serde(skip_serializing_if = "DepMap::is_empty")]
    pub accept_dependencies: DepMap,
    /// `bundleDependencies` (also spelled `bundledDependencies` upstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_dependencies: Option<BundleDependencies>,
    /// `dependenciesMeta`, kept verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies_meta: Option<Map<String, Value>>,
    /// `bin`: one path (named after the package) or a map of command names to paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<Bin>,
    /// `directories` (installers read `directories.bin`), kept verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directories: Option<Map<String, Value>>,
    /// `engines`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engines: Option<Engines>,
    /// `os` filter (`["darwin"]`, `["!win32"]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<String>,
    /// `cpu` filter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu: Vec<String>,
    /// `libc` filter (not in the public registry's abbreviated form).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub libc: Vec<String>,
    /// `hasInstallScript` as upstream stated it (see [`Manifest::has_install_script`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_install_script: Option<bool>,
    /// `_hasShrinkwrap`.
    #[serde(rename = "_hasShrinkwrap", skip_serializing_if = "Option::is_none")]
    pub has_shrinkwrap: Option<bool>,
    /// The lifecycle scripts only ([`LIFECYCLE_SCRIPTS`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub scripts: BTreeMap<String, String>,
    /// `gypfile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gypfile: Option<bool>,
    /// `license`: an SPDX string, or a legacy `{type, url}` object, kept verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<Value>,
    /// `funding`: a string, an object or a list, kept verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funding: Option<Value>,
    /// `dist`.
    pub dist: Dist,
}

/// `bin` in either of its shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bin {
    /// `"bin": "./cli.js"`: one command named after the package (without its scope).
    Path(String),
    /// `"bin": {"cmd": "./cli.js"}`.
    Map(BTreeMap<String, String>),
}

/// `engines` in the shapes found on the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Engines {
    /// `{"node": ">=14"}`: the normal shape.
    Map(BTreeMap<String, String>),
    /// `["node", "rhino"]`: old packages; names without ranges.
    List(Vec<String>),
    /// `">=0.10.40"`: old packages; a bare node range.
    Text(String),
}

/// `bundleDependencies`: a list of names, or `true` for all of `dependencies`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleDependencies {
    /// `true`: every dependency is bundled.
    All,
    /// The bundled names.
    Names(Vec<String>),
}

impl Serialize for BundleDependencies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => s.serialize_bool(true),
            Self::Names(names) => names.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BundleDependencies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(bundle_from(Value::deserialize(d)?).unwrap_or(Self::Names(Vec::new())))
    }
}

fn bundle_from(v: Value) -> Option<BundleDependencies> {
    match v {
        Value::Bool(true) => Some(BundleDependencies::All),
        Value::Array(items) => {
            let names: Vec<String> =
                items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
            (!names.is_empty()).then_some(BundleDependencies::Names(names))
        }
        _ => None,
    }
}

impl Manifest {
    /// Whether installing this version runs a script: upstream's `hasInstallScript`, or any of
    /// `preinstall`/`install`/`postinstall` present (what the registry computes at publish).
    pub fn has_install_script(&self) -> bool {
        self.has_install_script.unwrap_or(false)
            || ["preinstall", "install", "postinstall"].iter().any(|s| self.scripts.contains_key(*s))
    }

    /// The commands this version links, as `(command, path)` pairs. A string `bin` is named
    /// after the package without its scope, as npm does.
    pub fn bin_entries(&self) -> Vec<(String, String)> {
        match &self.bin {
            None => Vec::new(),
            Some(Bin::Map(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(Bin::Path(p)) => {
                let cmd = self.name.rsplit('/').next().unwrap_or(&self.name);
                vec![(cmd.to_owned(), p.clone())]
            }
        }
    }

    /// The range this version declares for an engine (`"node"`), when it has a usable one.
    pub fn engine(&self, engine: &str) -> Option<&str> {
        match &self.engines {
            Some(Engines::Map(m)) => m.get(engine).map(String::as_str),
            Some(Engines::Text(range)) if engine == "node" => Some(range),
            _ => None,
        }
    }

    /// Whether `peerDependenciesMeta` marks the peer `name` optional (used only when something
    /// else brings it).
    pub fn is_optional_peer(&self, name: &str) -> bool {
        self.peer_dependencies_meta
            .as_ref()
            .and_then(|meta| meta.get(name))
            .and_then(|v| v.get("optional"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// The names this version bundles (all of `dependencies` for `bundleDependencies: true`).
    pub fn bundled_names(&self) -> Vec<&str> {
        match &self.bundle_dependencies {
            None => Vec::new(),
            Some(BundleDependencies::All) => self.dependencies.keys().map(String::as_str).collect(),
            Some(BundleDependencies::Names(n)) => n.iter().map(String::as_str).collect(),
        }
    }
}

/// The wire shape, with both spellings of `bundleDependencies`; converted into [`Manifest`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    version: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    deprecated: Option<String>,
    #[serde(default, deserialize_with = "lenient::dep_map")]
    dependencies: DepMap,
    #[serde(default, deserialize_with = "lenient::dep_map")]
    optional_dependencies: DepMap,
    #[serde(default, deserialize_with = "lenient::dep_map")]
    peer_dependencies: DepMap,
    #[serde(default, deserialize_with = "lenient::object")]
    peer_dependencies_meta: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "lenient::dep_map")]
    dev_dependencies: DepMap,
    #[serde(default, deserialize_with = "lenient::dep_map")]
    accept_dependencies: DepMap,
    #[serde(default, deserialize_with = "lenient::value")]
    bundle_dependencies: Option<Value>,
    #[serde(default, deserialize_with = "lenient::value")]
    bundled_dependencies: Option<Value>,
    #[serde(default, deserialize_with = "lenient::object")]
    dependencies_meta: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "lenient::any")]
    bin: Option<Bin>,
    #[serde(default, deserialize_with = "lenient::object")]
    directories: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "lenient::any")]
    engines: Option<Engines>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    os: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    cpu: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    libc: Vec<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    has_install_script: Option<bool>,
    #[serde(default, rename = "_hasShrinkwrap", deserialize_with = "lenient::boolean")]
    has_shrinkwrap: Option<bool>,
    #[serde(default, deserialize_with = "lenient::string_map")]
    scripts: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    gypfile: Option<bool>,
    #[serde(default, deserialize_with = "lenient::value")]
    license: Option<Value>,
    #[serde(default, deserialize_with = "lenient::value")]
    funding: Option<Value>,
    #[serde(default, deserialize_with = "lenient::any")]
    dist: Dist,
}

impl From<RawManifest> for Manifest {
    fn from(raw: RawManifest) -> Self {
        let mut scripts = raw.scripts;
        scripts.retain(|k, _| LIFECYCLE_SCRIPTS.contains(&k.as_str()));
        let bundle_dependencies = raw
            .bundle_dependencies
            .and_then(bundle_from)
            .or_else(|| raw.bundled_dependencies.and_then(bundle_from));
        Self {
            name: raw.name.unwrap_or_default(),
            version: raw.version.unwrap_or_default(),
            deprecated: raw.deprecated,
            dependencies: raw.dependencies,
            optional_dependencies: raw.optional_dependencies,
            peer_dependencies: raw.peer_dependencies,
            peer_dependencies_meta: raw.peer_dependencies_meta,
            dev_dependencies: raw.dev_dependencies,
            accept_dependencies: raw.accept_dependencies,
            bundle_dependencies,
            dependencies_meta: raw.dependencies_meta,
            bin: raw.bin,
            directories: raw.directories,
            engines: raw.engines,
            os: raw.os,
            cpu: raw.cpu,
            libc: raw.libc,
            has_install_script: raw.has_install_script,
            has_shrinkwrap: raw.has_shrinkwrap,
            scripts,
            gypfile: raw.gypfile,
            license: raw.license,
            funding: raw.funding,
            dist: raw.dist,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_but_legal_shapes_parse() {
        let m: Manifest = serde_json::from_str(
            r#"{"name":"@s/tool","version":"1.0.0","bin":"./cli.js","engines":["node","rhino"],
                "dependencies":["a","b@^2"],"bundledDependencies":["a"],"deprecated":false,
                "os":"darwin","scripts":{"test":"x","install":"node-gyp rebuild"},
                "license":{"type":"MIT"},"dist":{"shasum":"00"},"readme":"ignored"}"#,
        )
        .unwrap();
        assert_eq!(m.bin_entries(), vec![("tool".to_owned(), "./cli.js".to_owned())]);
        assert_eq!(m.engines, Some(Engines::List(vec!["node".into(), "rhino".into()])));
        assert_eq!(m.dependencies.get("b").map(String::as_str), Some("^2"));
        assert_eq!(m.dependencies.get("a").map(String::as_str), Some("*"));
        assert_eq!(m.bundled_names(), vec!["a"]);
        assert_eq!(m.deprecated, None);
        assert_eq!(m.os, vec!["darwin"]);
        assert!(m.has_install_script());
        assert_eq!(m.scripts.len(), 1);
    }

    #[test]
    fn missing_everything_is_still_a_manifest() {
        let m: Manifest = serde_json::from_str(r#"{"dist":7,"bin":{"a":1},"engines":{"node":3}}"#).unwrap();
        assert_eq!(m.name, "");
        assert_eq!(m.bin, None);
        assert_eq!(m.engines, None);
        assert_eq!(m.dist, Dist::default());
    }

    #[test]
    fn string_engines_is_a_node_range() {
        let m: Manifest = serde_json::from_str(r#"{"engines":">=0.10.40"}"#).unwrap();
        assert_eq!(m.engine("node"), Some(">=0.10.40"));
    }
}
