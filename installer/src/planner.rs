//! Resolution from a peer's index in one round trip (DESIGN.md §The index, last point; wire
//! spec §7.5 for the `ims/prefetch` extension that carries it).
//!
//! ```text
//! reader                                              seeding peer (ims seed)
//!   ResolveQuery{roots, pick}.to_keys() ──ims/prefetch──▶ ResolvePlanner: the same resolver
//!                                                        (ideal_tree::build over its own index,
//!                                                        recording every summary and
//!                                                        manifest read)
//!   replica ◀── every block those reads touch, verified ── Index::touched_summaries
//!   ideal_tree::build over ReplicaSource (replica, then upstream) — locally, no further round trip
//! ```
//!
//! **The key form.** The prefetch carries opaque strings (hypercore knows nothing of tries).
//! A resolve request is a set of keys that start with [`RESOLVE_PREFIX`]; the index's own keys
//! start with `p/`, `v/` or `meta/`, so a resolve key is never one of them. Fields are
//! separated by NUL (package names cannot hold it; a spec, which may hold spaces, is last):
//!
//! ```text
//! \0ims/resolve/1\0root\0<kind>\0<name>\0<spec>   one per root dependency, kind one of
//!                                                 prod, dev, optional, peer; spec as in
//!                                                 package.json (npm:pkg@range for aliases)
//! \0ims/resolve/1\0option\0<name>\0<value>        pick options the result depends on:
//!                                                 tag (default dist-tag), node, npm (versions
//!                                                 for engine preference)
//! ```
//!
//! Any other key of the same prefetch is a plain trie key for [`TriePlanner`]. A peer that does
//! not understand a resolve key (an older ims, JS) answers less or nothing; the reader then
//! reads the missing blocks one by one. Unknown options are ignored by the planner: the answer
//! may then miss blocks, never mislead, since the reader resolves itself over verified blocks.
//!
//! **Bounded.** A resolve request is untrusted input that makes the seeder work, so
//! [`PlanLimits`] caps the roots, the packuments read, the wall time and how many plans run at
//! once; past a limit the planner answers with what it has read so far.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypercore::Feed;
use hypercore::replicate::prefetch::{MAX_PREFETCH_KEY_LEN, MAX_PREFETCH_KEYS};
use hypercore::replicate::{BlockPlanner, PlanFuture};
use hypertrie::Trie;
use hypertrie::extension::TriePlanner;
use indexer::model::{Manifest, Packument};
use indexer::{Index, PackageSummary};
use tokio::sync::Semaphore;

pub use super::error::QueryError;
use super::project::DepKind;
use super::request::Request;
use super::resolve::{ManifestSource, PickOptions, Resolver, SourceError, Summary};
use super::semver;
use super::tree;

/// What every resolve key starts with (never a key of the index).
pub const RESOLVE_PREFIX: &str = "\0ims/resolve/1\0";

/// A whole resolution asked of a peer: the root dependencies and the pick options.
#[derive(Debug, Clone)]
pub struct ResolveQuery {
    /// The project's dependencies, as `Project::requests` gives them.
    pub roots: Vec<(DepKind, Request)>,
    /// npm's pick preferences the tree depends on.
    pub pick: PickOptions,
}

fn kind_name(kind: DepKind) -> &'static str {
    match kind {
        DepKind::Prod => "prod",
        DepKind::Dev => "dev",
        DepKind::Optional => "optional",
        DepKind::Peer => "peer",
    }
}

fn kind_from(name: &str) -> Option<DepKind> {
    Some(match name {
        "prod" => DepKind::Prod,
        "dev" => DepKind::Dev,
        "optional" => DepKind::Optional,
        "peer" => DepKind::Peer,
        _ => return None,
    })
}

/// The spec as `package.json` writes it, so that `Request::from_dependency` gives it back.
fn dependency_spec(r: &Request) -> String {
    if r.is_alias() { format!("npm:{}@{}", r.package, r.spec) } else { r.spec.to_string() }
}

impl ResolveQuery {
    /// The prefetch keys for this query (see the module docs for the form). Roots whose key
    /// would be longer than a prefetch key may be, or past the most keys a prefetch carries,
    /// are left out (the reader then reads their blocks one by one).
    pub fn to_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .roots
            .iter()
            // A peer is never asked about folders, git or URLs: only the registry's packages.
            .filter(|(_, r)| r.spec.is_registry())
            .map(|(kind, r)| {
                format!("{RESOLVE_PREFIX}root\0{}\0{}\0{}", kind_name(*kind), r.name, dependency_spec(r))
            })
            .filter(|k| k.len() <= MAX_PREFETCH_KEY_LEN)
            .take(MAX_PREFETCH_KEYS - 3)
            .collect();
        let option = |name: &str, value: &str| format!("{RESOLVE_PREFIX}option\0{name}\0{value}");
        keys.push(option("tag", &self.pick.default_tag));
        if let Some(v) = &self.pick.node_version {
            keys.push(option("node", &v.to_string()));
        }
        if let Some(v) = &self.pick.npm_version {
            keys.push(option("npm", &v.to_string()));
        }
        keys
    }

    /// Splits prefetch keys into a resolve query (`None` when no key is a resolve key) and the
    /// plain trie keys.
    pub fn from_keys(keys: &[String]) -> Result<(Option<Self>, Vec<String>), QueryError> {
        let mut plain = Vec::new();
        let mut query: Option<Self> = None;
        for key in keys {
            let Some(rest) = key.strip_prefix(RESOLVE_PREFIX) else {
                plain.push(key.clone());
                continue;
            };
            let bad = |reason: &str| QueryError { key: rest.to_owned(), reason: reason.to_owned() };
            let q =
                query.get_or_insert_with(|| ResolveQuery { roots: Vec::new(), pick: PickOptions::default() });
            let mut fields = rest.splitn(4, '\0');
            match (fields.next(), fields.next(), fields.next(), fields.next()) {
                (Some("root"), Some(kind), Some(name), Some(spec)) => {
                    let kind = kind_from(kind).ok_or_else(|| bad("unknown dependency kind"))?;
                    let request = Request::from_dependency(name, spec).map_err(|e| bad(&e.to_string()))?;
                    if !request.spec.is_registry() {
                        return Err(bad("only registry specs are planned"));
                    }
                    q.roots.push((kind, request));
                }
                (Some("option"), Some(name), Some(value), None) => match name {
                    "tag" => q.pick.default_tag = value.to_owned(),
                    "node" => {
                        q.pick.node_version = Some(parse_version(value).ok_or_else(|| bad("not a version"))?)
                    }
                    "npm" => {
                        q.pick.npm_version = Some(parse_version(value).ok_or_else(|| bad("not a version"))?)
                    }
                    other => tracing::debug!(option = other, "unknown resolve option ignored"),
                },
                _ => return Err(bad("expected root\\0KIND\\0NAME\\0SPEC or option\\0NAME\\0VALUE")),
            }
        }
        Ok((query, plain))
    }
}

fn parse_version(v: &str) -> Option<semver::Version> {
    semver::parse_version(v)
}

/// How much work one resolve request may make the serving peer do.
#[derive(Debug, Clone)]
pub struct PlanLimits {
    /// Most root dependencies in one request (more: the request is not planned).
    pub max_roots: usize,
    /// Most packuments one plan reads; the resolution stops there.
    pub max_packages: usize,
    /// Longest a plan runs (waiting for a slot included).
    pub time: Duration,
    /// Plans running at once over all connections.
    pub concurrent: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits { max_roots: 1024, max_packages: 4096, time: Duration::from_secs(10), concurrent: 2 }
    }
}

/// The seeder's [`BlockPlanner`]: resolve keys are answered with every block a whole
/// resolution reads (the reader's own resolver run here over the local index), plain keys with
/// [`TriePlanner`]'s blocks.
#[derive(Debug, Clone)]
pub struct ResolvePlanner {
    trie: Trie,
    keys: TriePlanner,
    limits: PlanLimits,
    slots: Arc<Semaphore>,
}

impl ResolvePlanner {
    /// A planner over the seeder's index `trie`.
    pub fn new(trie: Trie, limits: PlanLimits) -> Self {
        let slots = Arc::new(Semaphore::new(limits.concurrent.max(1)));
        ResolvePlanner { keys: TriePlanner::new(trie.clone()), trie, limits, slots }
    }

    /// The blocks resolving `query` reads from this index (bounded by the limits): opening the
    /// index, the summary of every package the resolver asked for and the page of every
    /// version it picked (the whole packument where it asked for one).
    pub async fn resolve_blocks(&self, query: &ResolveQuery) -> Result<BTreeSet<u64>, String> {
        if query.roots.len() > self.limits.max_roots {
            return Err(format!("{} roots, more than {}", query.roots.len(), self.limits.max_roots));
        }
        let index = Index::open(self.trie.snapshot()).await.map_err(|e| e.to_string())?;
        let reads = Arc::new(Mutex::new(Reads::default()));
        let recording = Recording {
            index: index.clone(),
            reads: reads.clone(),
            summaries: Mutex::default(),
            max: self.limits.max_packages,
        };
        let resolver = Resolver::new(recording, query.pick.clone());
        let run = async {
            let Ok(_slot) = self.slots.acquire().await else { return };
            // Only registry specs are planned: a reader's folder, git or URL specs name nothing
            // in this index (and a folder is never read from this machine's disk).
            let roots: Vec<_> = query.roots.iter().filter(|(_, r)| r.spec.is_registry()).cloned().collect();
            if let Err(e) = super::ideal_tree::build(
                &resolver,
                tree::root_edges(&roots),
                tree::BuildOptions {
                    root_name: "(root)".to_owned(),
                    // Peers are planned too: a reader with --legacy-peer-deps reads a subset.
                    legacy_peer_deps: false,
                    strict_peer_deps: false,
                    root_dir: std::path::PathBuf::new(),
                    workspaces: Vec::new(),
                    edited: Default::default(),
                    // Git and tarball specs are not in any index: never planned or asked.
                    places: None,
                    // A reader's overrides are its own: the plan reads what the packages ask.
                    overrides: None,
                },
            )
            .await
            {
                // The reader meets the same error, or resolves past it with upstream's help
                // (a package this index lacks); what was read so far is still the answer.
                tracing::debug!(error = %e, "resolve plan stopped early");
            }
        };
        if tokio::time::timeout(self.limits.time, run).await.is_err() {
            tracing::debug!(limit = ?self.limits.time, "resolve plan hit its time limit");
        }
        drop(resolver);
        let reads = reads.lock().map(|r| r.clone()).unwrap_or_default();
        tracing::debug!(
            roots = query.roots.len(),
            packages = reads.names.len(),
            versions = reads.versions.len(),
            "resolve planned"
        );
        let names: Vec<&str> = reads.names.iter().map(String::as_str).collect();
        let versions: Vec<(&str, &str)> =
            reads.versions.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut blocks = index.touched_summaries(&names, &versions).await.map_err(|e| e.to_string())?;
        if !reads.whole.is_empty() {
            let whole: Vec<&str> = reads.whole.iter().map(String::as_str).collect();
            blocks.extend(index.touched_packuments(&whole).await.map_err(|e| e.to_string())?);
        }
        Ok(blocks)
    }
}

impl BlockPlanner for ResolvePlanner {
    fn blocks<'a>(&'a self, feed: &'a Feed, keys: &'a [String]) -> PlanFuture<'a> {
        Box::pin(async move {
            if feed.discovery_key() != self.trie.feed().discovery_key() {
                return Ok(BTreeSet::new());
            }
            let (query, plain) = ResolveQuery::from_keys(keys).map_err(|e| e.to_string())?;
            let mut blocks =
                if plain.is_empty() { BTreeSet::new() } else { self.keys.blocks(feed, &plain).await? };
            if let Some(query) = query {
                blocks.extend(self.resolve_blocks(&query).await?);
            }
            Ok(blocks)
        })
    }
}

/// What a plan's resolution read of the index.
#[derive(Debug, Clone, Default)]
struct Reads {
    /// Package records (summaries).
    names: BTreeSet<String>,
    /// Picked versions (their pages).
    versions: BTreeSet<(String, String)>,
    /// Whole packuments.
    whole: BTreeSet<String>,
}

/// The seeder's local index, recording what the resolver reads (at most `max` packages).
#[derive(Debug)]
struct Recording {
    index: Index,
    reads: Arc<Mutex<Reads>>,
    summaries: Mutex<HashMap<String, Arc<PackageSummary>>>,
    max: usize,
}

/// A plan read more packuments than [`PlanLimits::max_packages`].
#[derive(Debug, thiserror::Error)]
#[error("the resolution reads more than {0} packages")]
struct TooManyPackages(usize);

impl Recording {
    fn note(&self, name: &str, what: impl FnOnce(&mut Reads)) -> Result<(), SourceError> {
        let mut reads = self.reads.lock().map_err(|_| "recording lock poisoned")?;
        if reads.names.len() >= self.max && !reads.names.contains(name) {
            return Err(Box::new(TooManyPackages(self.max)));
        }
        reads.names.insert(name.to_owned());
        what(&mut reads);
        Ok(())
    }
}

impl ManifestSource for Recording {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        self.note(name, |r| {
            r.whole.insert(name.to_owned());
        })?;
        Ok(self.index.packument(name).await?.map(Arc::new))
    }

    async fn summary(&self, name: &str) -> Result<Option<Summary>, SourceError> {
        self.note(name, |_| ())?;
        let Some(s) = self.index.versions(name).await? else { return Ok(None) };
        let summary = Summary::from_index(&s);
        self.summaries.lock().map_err(|_| "recording lock poisoned")?.insert(name.to_owned(), Arc::new(s));
        Ok(Some(summary))
    }

    async fn manifest(&self, name: &str, version: &str) -> Result<Option<Manifest>, SourceError> {
        self.note(name, |r| {
            r.versions.insert((name.to_owned(), version.to_owned()));
        })?;
        let known = self.summaries.lock().map_err(|_| "recording lock poisoned")?.get(name).cloned();
        let Some(s) = known else { return Ok(self.index.version(name, version).await?) };
        Ok(self.index.version_in(&s, version).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_plain_keys_pass_through() {
        let roots = vec![
            (DepKind::Prod, Request::from_dependency("express", "^4.18 || >=5 <6").unwrap()),
            (DepKind::Dev, Request::from_dependency("@babel/core", "7.26.0").unwrap()),
            (DepKind::Optional, Request::from_dependency("old", "npm:left-pad@^1").unwrap()),
            (DepKind::Peer, Request::from_dependency("react", "next").unwrap()),
        ];
        let pick = PickOptions {
            default_tag: "beta".into(),
            node_version: parse_version("20.1.0"),
            npm_version: None,
            prefer: Default::default(),
        };
        let mut keys = ResolveQuery { roots, pick }.to_keys();
        keys.push("p/ms".into());
        let (query, plain) = ResolveQuery::from_keys(&keys).unwrap();
        let q = query.unwrap();
        assert_eq!(plain, ["p/ms"]);
        let got: Vec<(DepKind, String)> = q.roots.iter().map(|(k, r)| (*k, r.to_string())).collect();
        assert_eq!(
            got,
            [
                (DepKind::Prod, "express@^4.18 || >=5 <6".to_owned()),
                (DepKind::Dev, "@babel/core@7.26.0".to_owned()),
                (DepKind::Optional, "old@npm:left-pad@^1".to_owned()),
                (DepKind::Peer, "react@next".to_owned()),
            ]
        );
        assert_eq!(q.pick.default_tag, "beta");
        assert_eq!(q.pick.node_version, parse_version("20.1.0"));
        assert_eq!(q.pick.npm_version, None);
    }

    #[test]
    fn malformed_resolve_keys_are_errors() {
        for bad in ["root\0prod\0x", "root\0weird\0x\0^1", "option\0node\0nope", "root\0prod\0..\0^1", ""] {
            let key = format!("{RESOLVE_PREFIX}{bad}");
            assert!(ResolveQuery::from_keys(&[key]).is_err(), "{bad:?}");
        }
        let (q, plain) = ResolveQuery::from_keys(&["v/ms/0".to_owned()]).unwrap();
        assert!(q.is_none() && plain == ["v/ms/0"]);
    }
}
