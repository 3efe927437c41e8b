//! The [`Index`] facade: the read API shared by the registry proxy and the installer
//! (packument, abbreviated packument, one version, versions + dist-tags for resolution, the
//! blocks a resolution touches) and the one write path, [`Index::write`].

mod write;

use std::collections::{BTreeMap, BTreeSet};

use hypertrie::Trie;

use crate::IndexError;
use crate::codec::{self, tag};
use crate::model::{AbbreviatedPackument, Manifest, Packument};
use crate::records::{PackageRecord, VersionPage};
use crate::schema::{self, Checkpoint};

pub use write::{Document, Skipped, Update, WriteReport, retain_indexable};

/// The npm index over one hypertrie: a cheap, cloneable handle.
#[derive(Debug, Clone)]
pub struct Index {
    trie: Trie,
    upstream: Option<String>,
}

/// What resolution needs about a package, from its one package record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSummary {
    /// The package name.
    pub name: String,
    /// `dist-tags`.
    pub dist_tags: BTreeMap<String, String>,
    /// Every version, in version-key order.
    pub versions: Vec<VersionSummary>,
    /// `time.modified`, as upstream has it.
    pub modified: Option<String>,
    /// When the whole package was unpublished (a tombstone): it then has no versions.
    pub unpublished: Option<String>,
    /// Whether the package is a tombstone (unpublished as a whole, no versions), even when
    /// upstream gave no time for it.
    pub tombstone: bool,
}

/// One version, as npm's pick rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSummary {
    /// The version.
    pub version: String,
    /// The deprecation message.
    pub deprecated: Option<String>,
    /// `engines.node`.
    pub engine_node: Option<String>,
    /// The publish time (`time[version]`), as upstream has it.
    pub time: Option<String>,
    /// The page holding its version record (what [`Index::version_in`] reads).
    pub page: u32,
}

impl Index {
    /// Open the index stored in `trie` (an empty trie is an empty index).
    pub async fn open(trie: Trie) -> Result<Self, IndexError> {
        let mut index = Self { trie, upstream: None };
        index.upstream =
            index.get_raw(schema::UPSTREAM_KEY).await?.map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(index)
    }

    /// The trie underneath.
    pub fn trie(&self) -> &Trie {
        &self.trie
    }

    /// The registry base URL that canonical tarball URLs are relative to, once set.
    pub fn upstream(&self) -> Option<&str> {
        self.upstream.as_deref()
    }

    /// Set the upstream base URL (with a trailing `/`) if the index has none yet; the first
    /// one stays. Returns the one in effect.
    pub async fn set_upstream(&mut self, url: &crate::upstream::RegistryUrl) -> Result<&str, IndexError> {
        if self.upstream.is_none() {
            let url = url.as_str();
            self.trie
                .put(schema::UPSTREAM_KEY, url.as_bytes())
                .await
                .map_err(|source| IndexError::Write { ops: 1, source })?;
            self.upstream = Some(url.to_owned());
        }
        Ok(self.upstream.as_deref().unwrap_or_default())
    }

    async fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, IndexError> {
        let node =
            self.trie.get(key).await.map_err(|source| IndexError::Read { key: key.to_owned(), source })?;
        Ok(node.and_then(|n| n.value().map(<[u8]>::to_vec)))
    }

    async fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        tag: u8,
        key: &str,
    ) -> Result<Option<T>, IndexError> {
        let Some(bytes) = self.get_raw(key).await? else { return Ok(None) };
        codec::decode(tag, &bytes)
            .map(Some)
            .map_err(|source| IndexError::Corrupt { key: key.to_owned(), source })
    }

    pub(crate) async fn package_record(&self, name: &str) -> Result<Option<PackageRecord>, IndexError> {
        self.get_record(tag::PACKAGE, &schema::package_key(name)).await
    }

    pub(crate) async fn page(&self, name: &str, page: u32) -> Result<Option<VersionPage>, IndexError> {
        let key = schema::page_key(name, page);
        let Some(bytes) = self.get_raw(&key).await? else { return Ok(None) };
        codec::decode_compressed(tag::PAGE, &bytes)
            .map(Some)
            .map_err(|source| IndexError::Corrupt { key, source })
    }

    /// Versions and dist-tags of `name`, for resolution: one lookup.
    pub async fn versions(&self, name: &str) -> Result<Option<PackageSummary>, IndexError> {
        let Some(rec) = self.package_record(name).await? else { return Ok(None) };
        Ok(Some(PackageSummary {
            name: name.to_owned(),
            dist_tags: rec.dist_tags.iter().cloned().collect(),
            versions: rec
                .versions
                .iter()
                .map(|e| VersionSummary {
                    version: e.version.clone(),
                    deprecated: rec.string(e.deprecated),
                    engine_node: rec.string(e.engine_node),
                    time: e.time.as_ref().map(|t| t.unpack()),
                    page: e.page,
                })
                .collect(),
            modified: rec.times.iter().find(|(k, _)| k == "modified").map(|(_, t)| t.unpack()),
            unpublished: rec
                .unpublished
                .as_ref()
                .and_then(|u| u.time.clone())
                .filter(|_| rec.versions.is_empty()),
            tombstone: rec.unpublished.is_some() && rec.versions.is_empty(),
        }))
    }

    /// One version's manifest given the package's summary (from [`Index::versions`]): one
    /// lookup, the page holding the version. `None` when the summary lists no such version
    /// or its page lacks it.
    pub async fn version_in(
        &self,
        summary: &PackageSummary,
        version: &str,
    ) -> Result<Option<Manifest>, IndexError> {
        let Some(entry) = summary.versions.iter().find(|e| e.version == version) else { return Ok(None) };
        let Some(page) = self.page(&summary.name, entry.page).await? else { return Ok(None) };
        Ok(page.get(version).map(|vr| {
            vr.to_manifest(
                &summary.name,
                version,
                entry.deprecated.clone(),
                &page.bundles,
                self.upstream.as_deref(),
            )
        }))
    }

    /// One version's manifest (the install superset): two lookups (the package record, then
    /// the page holding the version).
    pub async fn version(&self, name: &str, version: &str) -> Result<Option<Manifest>, IndexError> {
        let Some(rec) = self.package_record(name).await? else { return Ok(None) };
        let Some(entry) = rec.versions.iter().find(|e| e.version == version) else { return Ok(None) };
        let Some(page) = self.page(name, entry.page).await? else { return Ok(None) };
        Ok(page.get(version).map(|vr| {
            vr.to_manifest(
                name,
                version,
                rec.string(entry.deprecated),
                &page.bundles,
                self.upstream.as_deref(),
            )
        }))
    }

    /// The full packument as the index has it: package fields plus every version's install
    /// superset. `None` for unknown names.
    pub async fn packument(&self, name: &str) -> Result<Option<Packument>, IndexError> {
        let Some(rec) = self.package_record(name).await? else { return Ok(None) };
        let mut p = rec.to_packument(name);
        let mut pages: BTreeMap<u32, Option<VersionPage>> = BTreeMap::new();
        for e in &rec.versions {
            if let std::collections::btree_map::Entry::Vacant(slot) = pages.entry(e.page) {
                slot.insert(self.page(name, e.page).await?);
            }
            let Some(Some(page)) = pages.get(&e.page) else { continue };
            if let Some(vr) = page.get(&e.version) {
                let m = vr.to_manifest(
                    name,
                    &e.version,
                    rec.string(e.deprecated),
                    &page.bundles,
                    self.upstream.as_deref(),
                );
                p.versions.insert(e.version.clone(), m);
            }
        }
        Ok(Some(p))
    }

    /// The abbreviated packument (`application/vnd.npm.install-v1+json`).
    pub async fn abbreviated(&self, name: &str) -> Result<Option<AbbreviatedPackument>, IndexError> {
        Ok(self.packument(name).await?.map(|p| p.abbreviated()))
    }

    /// The upstream ETag of the document `name` was last ingested from.
    pub async fn etag(&self, name: &str) -> Result<Option<String>, IndexError> {
        Ok(self.package_record(name).await?.and_then(|r| r.etag))
    }

    /// The follower checkpoint, if a `_changes` follow has run.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, IndexError> {
        self.get_record(tag::CHECKPOINT, schema::CHECKPOINT_KEY).await
    }

    /// The feed blocks (seqs) that reading these packages and picked versions touches: the
    /// package records and the pages holding the picked versions, with every trie node on the
    /// way. A peer that sends exactly these blocks lets a sparse replica resolve locally (the
    /// one-round-trip `resolve` extension).
    pub async fn touched_blocks(&self, picks: &[(&str, Option<&str>)]) -> Result<BTreeSet<u64>, IndexError> {
        let mut keys = Vec::new();
        for (name, version) in picks {
            keys.push(schema::package_key(name));
            if let Some(v) = version {
                let rec = self.package_record(name).await?;
                if let Some(e) = rec.as_ref().and_then(|r| r.versions.iter().find(|e| e.version == *v)) {
                    keys.push(schema::page_key(name, e.page));
                }
            }
        }
        self.trie
            .touched_many(keys.iter().map(String::as_str))
            .await
            .map_err(|source| IndexError::Read { key: keys.first().cloned().unwrap_or_default(), source })
    }

    /// The feed blocks that opening this index ([`Index::open`]), reading the summary
    /// ([`Index::versions`]) of each of `names` and the manifest ([`Index::version_in`]) of
    /// each of `picks` touch: the upstream key, each package record and the pages holding the
    /// picked versions, with every trie node on the way (for names the index lacks, the blocks
    /// that prove the absence). This is what a reader resolving with npm's pick rules from
    /// summaries over a sparse replica reads.
    pub async fn touched_summaries(
        &self,
        names: &[&str],
        picks: &[(&str, &str)],
    ) -> Result<BTreeSet<u64>, IndexError> {
        let mut keys = vec![schema::UPSTREAM_KEY.to_owned()];
        keys.extend(names.iter().map(|name| schema::package_key(name)));
        let mut pages = BTreeSet::new();
        let mut last: Option<(&str, Option<PackageSummary>)> = None;
        for &(name, version) in picks {
            if last.as_ref().is_none_or(|(n, _)| *n != name) {
                last = Some((name, self.versions(name).await?));
            }
            let Some((_, Some(summary))) = &last else { continue };
            if let Some(e) = summary.versions.iter().find(|e| e.version == version) {
                pages.insert(schema::page_key(name, e.page));
            }
        }
        keys.extend(pages);
        self.trie
            .touched_many(keys.iter().map(String::as_str))
            .await
            .map_err(|source| IndexError::Read { key: keys.first().cloned().unwrap_or_default(), source })
    }

    /// The feed blocks that opening this index ([`Index::open`]) and reading the whole
    /// packument ([`Index::packument`]) of each of `names` touch: the upstream key, each
    /// package record and every page it names, with every trie node on the way. For names the
    /// index lacks, the blocks that prove the absence. This is what a reader resolving with
    /// npm's pick rules over a sparse replica reads.
    pub async fn touched_packuments(&self, names: &[&str]) -> Result<BTreeSet<u64>, IndexError> {
        let mut keys = vec![schema::UPSTREAM_KEY.to_owned()];
        for name in names {
            keys.push(schema::package_key(name));
            if let Some(rec) = self.package_record(name).await? {
                let pages: BTreeSet<u32> = rec.versions.iter().map(|e| e.page).collect();
                keys.extend(pages.into_iter().map(|page| schema::page_key(name, page)));
            }
        }
        self.trie
            .touched_many(keys.iter().map(String::as_str))
            .await
            .map_err(|source| IndexError::Read { key: keys.first().cloned().unwrap_or_default(), source })
    }
}
