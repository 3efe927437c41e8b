//! The write path: turn upstream packuments, deletions and a checkpoint into one trie batch,
//! validating as it goes (bad names and versions are skipped with a reason), keeping versions
//! immutable and tombstones final.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hypertrie::BatchOp;

use super::Index;
use crate::IndexError;
use crate::codec::{self, tag};
use crate::model::Packument;
use crate::names;
use crate::records::{PAGE_MAX, PackageRecord, UnpublishedRec, VersionPage, VersionRecord};
use crate::schema::{self, Checkpoint};

/// One upstream document to ingest.
#[derive(Debug, Clone)]
pub struct Document {
    /// The parsed full packument (shared: a resolver reading it meanwhile need not copy it).
    pub packument: Arc<Packument>,
    /// Its upstream `ETag`, kept for the next `If-None-Match`.
    pub etag: Option<String>,
}

/// What one [`Index::write`] applies, atomically (one trie batch).
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// Documents to ingest.
    pub documents: Vec<Document>,
    /// Packages deleted upstream (unpublished), with the time if known: tombstoned.
    pub deletions: Vec<(String, Option<String>)>,
    /// The follower checkpoint to store with them.
    pub checkpoint: Option<Checkpoint>,
}

/// Something that was not ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The package.
    pub name: String,
    /// The version, when only one version was skipped.
    pub version: Option<String>,
    /// Why.
    pub reason: String,
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Package records written (new or changed).
    pub packages: usize,
    /// Documents that changed nothing.
    pub unchanged: usize,
    /// New version records.
    pub versions: usize,
    /// Version pages written (new or grown).
    pub pages: usize,
    /// Packages tombstoned.
    pub tombstoned: usize,
    /// What was skipped.
    pub skipped: Vec<Skipped>,
    /// Trie operations in the batch.
    pub ops: usize,
    /// Bytes of keys and values written (before the trie's own node overhead).
    pub record_bytes: usize,
}

fn skip(name: &str, version: Option<&str>, reason: impl Into<String>) -> Skipped {
    Skipped { name: name.to_owned(), version: version.map(str::to_owned), reason: reason.into() }
}

/// Why a version key cannot be indexed, if it cannot.
fn version_problem(p: &Packument, key: &str) -> Option<String> {
    let m = &p.versions[key];
    match nodejs_semver::Version::parse(key) {
        Ok(v) if v.to_string() == key => {}
        _ => return Some("not a canonical semver version".into()),
    }
    if m.version != key {
        return Some(format!("its manifest says version {:?}", m.version));
    }
    if m.dist.best_integrity().is_none() {
        return Some("no integrity or shasum".into());
    }
    None
}

/// Drop from `p` the versions [`Index::write`] refuses (non-canonical semver keys, manifests
/// naming another version, versions with neither integrity nor shasum) and say why, so that a
/// packument used straight from upstream resolves exactly as it will once recorded and read
/// back from the index.
pub fn retain_indexable(p: &mut Packument) -> Vec<Skipped> {
    let refused: Vec<(String, String)> =
        p.versions.keys().filter_map(|k| version_problem(p, k).map(|r| (k.clone(), r))).collect();
    refused
        .into_iter()
        .map(|(version, reason)| {
            p.versions.remove(&version);
            skip(&p.name, Some(&version), reason)
        })
        .collect()
}

impl Index {
    /// Apply an update in one trie batch. Nothing is written for skipped input, and nothing
    /// already in the index is lost: versions are never rewritten, tombstoned versions never
    /// come back.
    pub async fn write(&self, update: Update) -> Result<WriteReport, IndexError> {
        let mut report = WriteReport::default();
        let mut ops = Vec::new();
        let mut seen = HashSet::new();
        for doc in update.documents {
            // A name twice in one batch would plan against the same old record twice.
            if seen.insert(doc.packument.name.clone()) {
                self.plan_document(doc, &mut ops, &mut report).await?;
            }
        }
        for (name, time) in update.deletions {
            let Some(mut rec) = self.package_record(&name).await? else { continue };
            if rec.versions.is_empty() && rec.unpublished.is_some() {
                continue;
            }
            let versions = rec.versions.drain(..).map(|e| e.version).collect();
            rec.unpublished = Some(UnpublishedRec { time, versions });
            rec.dist_tags.clear();
            ops.push(BatchOp::put(schema::package_key(&name), codec::encode(tag::PACKAGE, &rec)));
            report.tombstoned += 1;
        }
        if let Some(cp) = &update.checkpoint {
            ops.push(BatchOp::put(schema::CHECKPOINT_KEY, codec::encode(tag::CHECKPOINT, cp)));
        }
        report.ops = ops.len();
        report.record_bytes = ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { key, value, .. } => key.len() + value.len(),
                BatchOp::Del { key, .. } => key.len(),
            })
            .sum();
        if !ops.is_empty() {
            self.trie.batch(&ops).await.map_err(|source| IndexError::Write { ops: ops.len(), source })?;
        }
        Ok(report)
    }

    async fn plan_document(
        &self,
        doc: Document,
        ops: &mut Vec<BatchOp>,
        report: &mut WriteReport,
    ) -> Result<(), IndexError> {
        let p: &Packument = &doc.packument;
        if let Err(e) = names::validate(&p.name) {
            report.skipped.push(skip(&p.name.chars().take(64).collect::<String>(), None, e.to_string()));
            return Ok(());
        }
        for bad in &p.invalid_versions {
            report.skipped.push(skip(&p.name, Some(bad), "the version is not a JSON object"));
        }
        let old = self.package_record(&p.name).await?;
        let old_versions: HashSet<&str> =
            old.iter().flat_map(|r| r.versions.iter().map(|e| e.version.as_str())).collect();
        let buried: HashSet<&str> = old
            .iter()
            .flat_map(|r| r.unpublished.iter().flat_map(|u| u.versions.iter().map(String::as_str)))
            .collect();
        let mut keep = Vec::new();
        for key in p.versions.keys() {
            if let Some(reason) = version_problem(p, key) {
                report.skipped.push(skip(&p.name, Some(key), reason));
            } else if buried.contains(key.as_str()) && !old_versions.contains(key.as_str()) {
                report.skipped.push(skip(&p.name, Some(key), "unpublished versions are never resurrected"));
            } else {
                keep.push(key.as_str());
            }
        }
        // New versions go into pages, in publish order: the last page grows until it holds
        // PAGE_MAX versions, then a new one starts. Records already in a page never change.
        let mut new: Vec<&str> = keep.iter().copied().filter(|v| !old_versions.contains(v)).collect();
        new.sort_by_cached_key(|v| (p.time.get(*v), *v));
        let mut pages: HashMap<&str, u32> =
            old.iter().flat_map(|r| r.versions.iter().map(|e| (e.version.as_str(), e.page))).collect();
        let mut written = Vec::new();
        if !new.is_empty() {
            let last = old.as_ref().and_then(|r| r.versions.iter().map(|e| e.page).max());
            let (mut n, mut page) = match last {
                Some(last) => match self.page(&p.name, last).await? {
                    Some(page) if page.versions.len() < PAGE_MAX => (last, page),
                    _ => (last + 1, VersionPage::default()),
                },
                None => (0, VersionPage::default()),
            };
            for v in new {
                if page.versions.len() >= PAGE_MAX {
                    written.push((n, std::mem::take(&mut page)));
                    n += 1;
                }
                let vr = VersionRecord::from_manifest(
                    &p.versions[v],
                    &p.name,
                    v,
                    self.upstream.as_deref(),
                    &mut page.bundles,
                );
                page.versions.push((v.to_owned(), vr));
                pages.insert(v, n);
                report.versions += 1;
            }
            written.push((n, page));
        }
        // A tombstone stays a tombstone for the versions it buried; new versions may follow.
        let mut rec = PackageRecord::from_packument(p, &keep, &pages, doc.etag.clone());
        if rec.unpublished.is_none()
            && !keep.is_empty()
            && let Some(u) = old.as_ref().and_then(|o| o.unpublished.clone())
        {
            rec.unpublished = Some(u);
        }
        if old.as_ref() == Some(&rec) {
            report.unchanged += 1;
            return Ok(());
        }
        for (n, page) in written {
            ops.push(BatchOp::put(schema::page_key(&p.name, n), codec::encode_compressed(tag::PAGE, &page)));
            report.pages += 1;
        }
        ops.push(BatchOp::put(schema::package_key(&p.name), codec::encode(tag::PACKAGE, &rec)));
        report.packages += 1;
        Ok(())
    }
}
