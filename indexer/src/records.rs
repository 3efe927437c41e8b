//! The record kinds of the index and their conversion from and to the model: the per-name
//! [`PackageRecord`] (what resolution reads first) and the [`VersionRecord`] of each version
//! (the install superset, spec §1.3), kept in [`VersionPage`]s of up to [`PAGE_MAX`] versions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::{B64Bytes, Hex, KeyId, Sri, Time};
use crate::depmaps::{BundleTable, DepBundle, DepsRef};
use crate::model::{Bin, Dist, Engines, Manifest, Packument, Signature, Unpublished};
use crate::names;

/// `p/<name>`: everything needed to pick a version, without reading any version record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackageRecord {
    pub(crate) dist_tags: Vec<(String, String)>,
    /// In version-key order.
    pub(crate) versions: Vec<VersionEntry>,
    /// Interned strings: deprecation messages and `engines.node` ranges repeat across versions.
    pub(crate) strings: Vec<String>,
    /// `time` entries that are not a current version's (`created`, `modified`, removed versions).
    pub(crate) times: Vec<(String, Time)>,
    /// Set when the whole package was unpublished: a tombstone.
    pub(crate) unpublished: Option<UnpublishedRec>,
    pub(crate) modified: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) keywords: Vec<String>,
    /// The upstream ETag of the full document this record came from (for `If-None-Match`).
    pub(crate) etag: Option<String>,
}

/// One version as resolution sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionEntry {
    pub(crate) version: String,
    /// The page holding its version record.
    pub(crate) page: u32,
    pub(crate) time: Option<Time>,
    /// Index into `strings`.
    pub(crate) deprecated: Option<u32>,
    /// Index into `strings`.
    pub(crate) engine_node: Option<u32>,
}

/// `time.unpublished`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UnpublishedRec {
    pub(crate) time: Option<String>,
    pub(crate) versions: Vec<String>,
}

/// Versions per page. A page is read whole to get one version, and compressed whole: 32
/// versions keep a read at a few KB while letting compression find what versions share.
pub(crate) const PAGE_MAX: usize = 32;

/// `v/<name>/<page>`: version records of up to [`PAGE_MAX`] versions, in the order they were
/// first ingested, with the distinct dependency bundles they use. Records in a page never
/// change; a page only grows until it is full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionPage {
    pub(crate) bundles: BundleTable,
    pub(crate) versions: Vec<(String, VersionRecord)>,
}

impl VersionPage {
    pub(crate) fn get(&self, version: &str) -> Option<&VersionRecord> {
        self.versions.iter().find(|(v, _)| v == version).map(|(_, r)| r)
    }
}

/// One version's record: the install superset minus what the key and the package record hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    /// The manifest's `name` when it differs from the package name (it practically never does).
    pub(crate) name: Option<String>,
    /// The manifest's `version` when it differs from the key.
    pub(crate) version: Option<String>,
    pub(crate) deps: DepsRef,
    pub(crate) dev: DepsRef,
    pub(crate) bin: Option<BinRec>,
    /// `directories`, compact JSON.
    pub(crate) directories: Option<String>,
    pub(crate) engines: Option<EnginesRec>,
    pub(crate) os: Vec<String>,
    pub(crate) cpu: Vec<String>,
    pub(crate) libc: Vec<String>,
    pub(crate) has_install_script: Option<bool>,
    pub(crate) has_shrinkwrap: Option<bool>,
    pub(crate) gypfile: Option<bool>,
    pub(crate) scripts: Vec<(String, String)>,
    pub(crate) license: Option<Loose>,
    /// `funding`, compact JSON.
    pub(crate) funding: Option<String>,
    pub(crate) dist: DistRec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BinRec {
    Path(String),
    Map(Vec<(String, String)>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum EnginesRec {
    Map(Vec<(String, String)>),
    List(Vec<String>),
    Text(String),
}

/// A JSON value that is usually a plain string (`license: "MIT"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Loose {
    Str(String),
    Json(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DistRec {
    pub(crate) integrity: Option<Sri>,
    pub(crate) shasum: Option<Hex>,
    pub(crate) tarball: TarballRec,
    pub(crate) file_count: Option<u64>,
    pub(crate) unpacked_size: Option<u64>,
    pub(crate) signatures: Vec<(KeyId, B64Bytes)>,
    /// `attestations`, compact JSON.
    pub(crate) attestations: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TarballRec {
    Absent,
    /// `{upstream}{name}/-/{base}-{version}.tgz`, with `upstream` from `meta/upstream`.
    Canonical,
    Other(String),
}

/// The canonical tarball URL of `name@version` under a registry base URL (with trailing `/`).
pub(crate) fn canonical_tarball(upstream: &str, name: &str, version: &str) -> String {
    format!("{upstream}{name}/-/{}", names::tarball_file_name(name, version))
}

fn intern(strings: &mut Vec<String>, s: &str) -> u32 {
    match strings.iter().position(|x| x == s) {
        Some(i) => i as u32,
        None => {
            strings.push(s.to_owned());
            (strings.len() - 1) as u32
        }
    }
}

impl PackageRecord {
    /// The package-level part of a packument, for the versions in `keep` (in that order).
    pub(crate) fn from_packument(
        p: &Packument,
        keep: &[&str],
        pages: &std::collections::HashMap<&str, u32>,
        etag: Option<String>,
    ) -> Self {
        let mut strings = Vec::new();
        let versions = keep
            .iter()
            .filter_map(|v| p.versions.get(*v).map(|m| (*v, m)))
            .map(|(v, m)| VersionEntry {
                version: v.to_owned(),
                page: pages.get(v).copied().unwrap_or_default(),
                time: p.time.get(v).map(|t| Time::pack(t)),
                deprecated: m.deprecated.as_deref().map(|d| intern(&mut strings, d)),
                engine_node: m.engine("node").map(|e| intern(&mut strings, e)),
            })
            .collect();
        let times = p
            .time
            .iter()
            .filter(|(k, _)| !keep.contains(&k.as_str()))
            .map(|(k, t)| (k.clone(), Time::pack(t)))
            .collect();
        Self {
            dist_tags: p.dist_tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            versions,
            strings,
            times,
            unpublished: p
                .unpublished
                .as_ref()
                .map(|u| UnpublishedRec { time: u.time.clone(), versions: u.versions.clone() }),
            modified: p.modified.clone(),
            description: p.description.clone(),
            keywords: p.keywords.clone(),
            etag,
        }
    }

    pub(crate) fn string(&self, i: Option<u32>) -> Option<String> {
        i.and_then(|i| self.strings.get(i as usize)).cloned()
    }

    /// The package-level fields of the packument (versions are filled in by the caller).
    pub(crate) fn to_packument(&self, name: &str) -> Packument {
        let mut time: std::collections::BTreeMap<String, String> =
            self.times.iter().map(|(k, t)| (k.clone(), t.unpack())).collect();
        for e in &self.versions {
            if let Some(t) = &e.time {
                time.insert(e.version.clone(), t.unpack());
            }
        }
        Packument {
            name: name.to_owned(),
            dist_tags: self.dist_tags.iter().cloned().collect(),
            versions: Default::default(),
            time,
            unpublished: self
                .unpublished
                .as_ref()
                .map(|u| Unpublished { time: u.time.clone(), versions: u.versions.clone() }),
            modified: self.modified.clone(),
            description: self.description.clone(),
            keywords: self.keywords.clone(),
            invalid_versions: Vec::new(),
        }
    }
}

fn compact(v: &Value) -> String {
    v.to_string()
}

impl VersionRecord {
    /// The record of a manifest; its dependency maps go into the page's `table`.
    pub(crate) fn from_manifest(
        m: &Manifest,
        name: &str,
        version: &str,
        upstream: Option<&str>,
        table: &mut BundleTable,
    ) -> Self {
        let deps = table.intern(DepBundle::runtime(m));
        let dev = table.intern(DepBundle::dev(m));
        let tarball = match (&m.dist.tarball, upstream) {
            (None, _) => TarballRec::Absent,
            (Some(t), Some(up)) if *t == canonical_tarball(up, name, version) => TarballRec::Canonical,
            (Some(t), _) => TarballRec::Other(t.clone()),
        };
        let d = &m.dist;
        Self {
            name: (m.name != name).then(|| m.name.clone()),
            version: (m.version != version).then(|| m.version.clone()),
            deps,
            dev,
            bin: m.bin.as_ref().map(|b| match b {
                Bin::Path(p) => BinRec::Path(p.clone()),
                Bin::Map(map) => BinRec::Map(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            }),
            directories: m.directories.as_ref().map(|d| compact(&Value::Object(d.clone()))),
            engines: m.engines.as_ref().map(|e| match e {
                Engines::Map(map) => {
                    EnginesRec::Map(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                }
                Engines::List(l) => EnginesRec::List(l.clone()),
                Engines::Text(t) => EnginesRec::Text(t.clone()),
            }),
            os: m.os.clone(),
            cpu: m.cpu.clone(),
            libc: m.libc.clone(),
            has_install_script: m.has_install_script,
            has_shrinkwrap: m.has_shrinkwrap,
            gypfile: m.gypfile,
            scripts: m.scripts.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            license: m.license.as_ref().map(|l| match l {
                Value::String(s) => Loose::Str(s.clone()),
                other => Loose::Json(compact(other)),
            }),
            funding: m.funding.as_ref().map(compact),
            dist: DistRec {
                integrity: d.integrity.as_deref().map(Sri::pack),
                shasum: d.shasum.as_deref().map(Hex::pack),
                tarball,
                file_count: d.file_count,
                unpacked_size: d.unpacked_size,
                signatures: d
                    .signatures
                    .iter()
                    .map(|s| (KeyId::pack(&s.keyid), B64Bytes::pack(&s.sig)))
                    .collect(),
                attestations: d.attestations.as_ref().map(compact),
            },
        }
    }

    /// Rebuild the manifest, given the package-level deprecation and the page's bundles.
    pub(crate) fn to_manifest(
        &self,
        name: &str,
        version: &str,
        deprecated: Option<String>,
        table: &BundleTable,
        upstream: Option<&str>,
    ) -> Manifest {
        let this = self.clone();
        let (deps, dev) = (table.get(&self.deps), table.get(&self.dev));
        let parse = |s: String| serde_json::from_str::<Value>(&s).ok();
        let d = this.dist;
        let mut m = Manifest {
            name: this.name.unwrap_or_else(|| name.to_owned()),
            version: this.version.unwrap_or_else(|| version.to_owned()),
            deprecated,
            bin: this.bin.map(|b| match b {
                BinRec::Path(p) => Bin::Path(p),
                BinRec::Map(m) => Bin::Map(m.into_iter().collect()),
            }),
            directories: this.directories.and_then(parse).and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            }),
            engines: this.engines.map(|e| match e {
                EnginesRec::Map(m) => Engines::Map(m.into_iter().collect()),
                EnginesRec::List(l) => Engines::List(l),
                EnginesRec::Text(t) => Engines::Text(t),
            }),
            os: this.os,
            cpu: this.cpu,
            libc: this.libc,
            has_install_script: this.has_install_script,
            has_shrinkwrap: this.has_shrinkwrap,
            scripts: this.scripts.into_iter().collect(),
            gypfile: this.gypfile,
            license: this.license.and_then(|l| match l {
                Loose::Str(s) => Some(Value::String(s)),
                Loose::Json(j) => parse(j),
            }),
            funding: this.funding.and_then(parse),
            dist: Dist {
                integrity: d.integrity.map(|s| s.unpack()),
                shasum: d.shasum.map(|h| h.unpack()),
                tarball: match d.tarball {
                    TarballRec::Absent => None,
                    TarballRec::Canonical => upstream.map(|up| canonical_tarball(up, name, version)),
                    TarballRec::Other(t) => Some(t),
                },
                file_count: d.file_count,
                unpacked_size: d.unpacked_size,
                signatures: d
                    .signatures
                    .into_iter()
                    .map(|(k, s)| Signature { keyid: k.unpack(), sig: s.unpack() })
                    .collect(),
                attestations: d.attestations.and_then(parse),
            },
            ..Manifest::default()
        };
        deps.apply_runtime(&mut m);
        m.dev_dependencies = dev.dependencies.into_iter().collect();
        m
    }
}
