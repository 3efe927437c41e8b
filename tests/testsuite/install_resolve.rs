//! Resolution: npm-pick-manifest's rules (spec §1.9) on synthetic packuments, and parity with
//! npm's own resolution of the real corpus (`fixtures/npm/resolved.json`, made by npm 11.19.1
//! on Node 20.20.2).

use std::collections::BTreeMap;

use fixtures::Corpus;
use indexer::model::Packument;
use installer::resolve::{MemorySource, pick};
use installer::semver::parse_version;
use installer::{PickOptions, Request, ResolveError, Resolver, VersionSpec};
use serde_json::{Value, json};

fn packument(name: &str, latest: &str, versions: &[(&str, Value)]) -> Packument {
    let mut vs = serde_json::Map::new();
    for (v, extra) in versions {
        let mut m = json!({
            "name": name,
            "version": v,
            "dist": {
                "tarball": format!("http://x/{name}-{v}.tgz"),
                "integrity": "sha512-GYrCADwpu6yV5OAvchkQ27Z5wwMxWAEMg5NNWjyHh/5DboFFqbdbvYNIvZouQpxXyeMPoTOh0vdPYKlf0ZswdQ=="
            }
        });
        if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(extra.clone());
        }
        vs.insert((*v).to_owned(), m);
    }
    let doc =
        json!({ "name": name, "dist-tags": { "latest": latest, "next": "3.0.0-rc.1" }, "versions": vs });
    Packument::from_slice(doc.to_string().as_bytes()).unwrap()
}

fn spec(s: &str) -> VersionSpec {
    VersionSpec::parse(s).unwrap()
}

fn picked(p: &Packument, s: &str, opts: &PickOptions) -> String {
    pick(p, &spec(s), opts).map(|m| m.version.clone()).unwrap_or_else(|e| format!("error: {e}"))
}

fn sample() -> Packument {
    let none = json!({});
    packument(
        "p",
        "2.1.0",
        &[
            ("1.0.0", none.clone()),
            ("1.5.0", json!({ "deprecated": "use 2" })),
            ("2.0.0", none.clone()),
            ("2.1.0", none.clone()),
            ("2.2.0", json!({ "engines": { "node": ">=99" } })),
            ("3.0.0-rc.1", none.clone()),
        ],
    )
}

#[test]
fn latest_preferred_when_it_satisfies() {
    let p = sample();
    let o = PickOptions::default();
    // 2.2.0 is higher, but `latest` (2.1.0) satisfies `^2`, so npm takes latest.
    assert_eq!(picked(&p, "^2", &o), "2.1.0");
    assert_eq!(picked(&p, "*", &o), "2.1.0");
    // A range latest does not satisfy: highest satisfying.
    assert_eq!(picked(&p, ">=2.2", &o), "2.2.0");
}

#[test]
fn tags_and_exact_versions() {
    let p = sample();
    let o = PickOptions::default();
    assert_eq!(picked(&p, "next", &o), "3.0.0-rc.1");
    assert_eq!(picked(&p, "latest", &o), "2.1.0");
    assert_eq!(picked(&p, "1.5.0", &o), "1.5.0", "an exact deprecated version is still exact");
    assert!(picked(&p, "nope", &o).starts_with("error"));
}

#[test]
fn prereleases_only_when_the_range_asks() {
    let p = sample();
    let o = PickOptions::default();
    assert_eq!(picked(&p, ">=2.2.0", &o), "2.2.0");
    assert_eq!(picked(&p, "^3.0.0-rc.0", &o), "3.0.0-rc.1");
    assert!(picked(&p, "^3", &o).starts_with("error"));
}

#[test]
fn deprecated_avoided_unless_nothing_else() {
    let p = sample();
    let o = PickOptions::default();
    assert_eq!(picked(&p, "^1", &o), "1.0.0", "1.5.0 is deprecated");
    assert_eq!(picked(&p, "~1.5", &o), "1.5.0", "only a deprecated one matches");
}

#[test]
fn engines_only_when_a_node_version_is_given() {
    let p = sample();
    assert_eq!(picked(&p, ">=2.1.1", &PickOptions::default()), "2.2.0");
    let o = PickOptions { node_version: parse_version("20.0.0"), ..PickOptions::default() };
    // 2.2.0 wants node >=99: still picked (nothing else matches), engines are a preference.
    assert_eq!(picked(&p, ">=2.1.1", &o), "2.2.0");
    assert_eq!(picked(&p, ">=2.0.0 <3", &o), "2.1.0");
}

#[test]
fn errors_name_the_package() {
    let p = sample();
    let err = pick(&p, &spec("^9"), &PickOptions::default()).unwrap_err();
    assert!(matches!(err, ResolveError::NoMatchingVersion { .. }));
    let msg = err.to_string();
    assert!(msg.contains("p") && msg.contains("^9") && msg.contains("2.1.0"), "{msg}");
}

#[tokio::test]
async fn resolver_reports_unknown_packages_and_aliases() {
    let mut src = MemorySource::new();
    src.insert(sample());
    let r = Resolver::new(src, PickOptions::default());
    let err = r.resolve(&Request::parse("nope").unwrap()).await.unwrap_err();
    assert!(matches!(err, ResolveError::UnknownPackage { ref name } if name == "nope"));
    let got = r.resolve(&Request::parse("q@npm:p@^1").unwrap()).await.unwrap();
    assert_eq!((got.name.as_str(), got.package(), got.version.as_str()), ("q", "p", "1.0.0"));
}

fn corpus_resolver(corpus: &Corpus) -> Resolver<MemorySource> {
    let mut src = MemorySource::new();
    for (_, json) in corpus.packuments() {
        src.insert(Packument::from_slice(json).unwrap());
    }
    let opts = PickOptions {
        node_version: parse_version("20.20.2"),
        npm_version: parse_version("11.19.1"),
        ..PickOptions::default()
    };
    Resolver::new(src, opts)
}

/// The roots resolve to exactly what npm installed at `node_modules/<root>`.
#[tokio::test]
async fn corpus_roots_match_npm() {
    let corpus = Corpus::load().unwrap();
    let r = corpus_resolver(&corpus);
    let at: BTreeMap<&str, &str> =
        corpus.resolved().iter().map(|n| (n.path.as_str(), n.version.as_str())).collect();
    assert_eq!(corpus.roots().len(), 11);
    for (name, range) in corpus.roots() {
        let got = r.resolve(&Request::from_dependency(name, range).unwrap()).await.unwrap();
        let want = at[format!("node_modules/{name}").as_str()];
        assert_eq!(got.version, want, "{name}@{range}");
        let node = corpus.resolved().iter().find(|n| n.path == format!("node_modules/{name}")).unwrap();
        assert_eq!(got.integrity.as_ref().unwrap().to_string(), node.integrity, "{name}");
    }
}

/// Every dependency edge in npm's tree: the version we pick for `(name, range)` is the one
/// npm placed where Node's resolution finds it from the dependent.
#[tokio::test]
async fn corpus_edges_match_npm() {
    let corpus = Corpus::load().unwrap();
    let r = corpus_resolver(&corpus);
    let at: BTreeMap<&str, &str> =
        corpus.resolved().iter().map(|n| (n.path.as_str(), n.version.as_str())).collect();
    let (mut edges, mut mismatches) = (0, Vec::new());
    for node in corpus.resolved() {
        let packument = r.packument(&node.name).await.unwrap();
        let manifest = &packument.versions[&node.version];
        for (dep, range) in manifest.dependencies.iter().chain(&manifest.peer_dependencies) {
            let found = lookup(&at, &node.path, dep);
            // Optional peers npm did not install are not edges.
            let Some(found) = found else { continue };
            edges += 1;
            let got = r.resolve(&Request::from_dependency(dep, range).unwrap()).await.unwrap();
            if got.version != found {
                mismatches.push(format!(
                    "{}@{} -> {dep}@{range}: npm {found}, ims {}",
                    node.name, node.version, got.version
                ));
            }
        }
    }
    assert!(edges > 250, "walked {edges} edges");
    assert_eq!(mismatches, Vec::<String>::new());
}

/// Node's lookup: `<from>/node_modules/<dep>`, then each ancestor package's, then the root's.
fn lookup<'a>(at: &BTreeMap<&str, &'a str>, from: &str, dep: &str) -> Option<&'a str> {
    let mut base = from.to_owned();
    loop {
        if let Some(v) = at.get(format!("{base}/node_modules/{dep}").as_str()) {
            return Some(v);
        }
        match base.rfind("/node_modules/") {
            Some(i) => base.truncate(i),
            None => break,
        }
    }
    at.get(format!("node_modules/{dep}").as_str()).copied()
}

/// The whole ideal tree: every (location, name, version) equals npm's.
#[tokio::test]
async fn corpus_tree_matches_npm() {
    use installer::DepKind;
    use installer::ideal_tree::build;
    use installer::tree::{BuildOptions, root_edges};
    let corpus = Corpus::load().unwrap();
    let r = corpus_resolver(&corpus);
    let requests: Vec<(DepKind, Request)> = corpus
        .roots()
        .iter()
        .map(|(n, s)| (DepKind::Prod, Request::from_dependency(n, s).unwrap()))
        .collect();
    let tree = build(&r, root_edges(&requests), BuildOptions::default()).await.unwrap();
    let ours: BTreeMap<String, String> = tree
        .packages()
        .into_iter()
        .map(|id| {
            let n = tree.node(id);
            (
                tree.location(id),
                format!(
                    "{}@{}",
                    n.resolved.as_ref().unwrap().package(),
                    n.resolved.as_ref().unwrap().version
                ),
            )
        })
        .collect();
    let npm: BTreeMap<String, String> =
        corpus.resolved().iter().map(|n| (n.path.clone(), format!("{}@{}", n.name, n.version))).collect();
    let only_ours: Vec<_> = ours.iter().filter(|(k, v)| npm.get(*k) != Some(v)).collect();
    let only_npm: Vec<_> = npm.iter().filter(|(k, v)| ours.get(*k) != Some(v)).collect();
    assert_eq!((only_ours, only_npm), (vec![], vec![]));
    assert_eq!(ours.len(), 229);
}

/// The same tree resolved from the local index (the corpus ingested into an in-memory
/// hypertrie) instead of raw packuments: resolution through the index loses nothing npm needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_tree_from_the_index_matches_npm() {
    use hypercore::{FeedBuilder, KeyPair, Storage};
    use hypertrie::Trie;
    use indexer::{Document, Index, Update};
    use installer::DepKind;
    use installer::ideal_tree::build;
    use installer::tree::{BuildOptions, root_edges};

    let corpus = Corpus::load().unwrap();
    let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    let mut index = Index::open(Trie::open(feed).await.unwrap()).await.unwrap();
    index.set_upstream(&"https://registry.npmjs.org/".parse().unwrap()).await.unwrap();
    let docs: Vec<Packument> = corpus.packuments().map(|(_, j)| Packument::from_slice(j).unwrap()).collect();
    for chunk in docs.chunks(32) {
        let documents = chunk.iter().map(|p| Document { packument: p.clone().into(), etag: None }).collect();
        index.write(Update { documents, ..Update::default() }).await.unwrap();
    }
    let opts = PickOptions {
        node_version: parse_version("20.20.2"),
        npm_version: parse_version("11.19.1"),
        ..PickOptions::default()
    };
    let r = Resolver::new(index, opts);
    let requests: Vec<(DepKind, Request)> = corpus
        .roots()
        .iter()
        .map(|(n, s)| (DepKind::Prod, Request::from_dependency(n, s).unwrap()))
        .collect();
    let tree = build(&r, root_edges(&requests), BuildOptions::default()).await.unwrap();
    let ours: BTreeMap<String, (String, String)> = tree
        .packages()
        .into_iter()
        .map(|id| {
            let res = tree.node(id).resolved.as_ref().unwrap();
            (tree.location(id), (res.version.clone(), res.integrity.as_ref().unwrap().to_string()))
        })
        .collect();
    let npm: BTreeMap<String, (String, String)> = corpus
        .resolved()
        .iter()
        .map(|n| (n.path.clone(), (n.version.clone(), n.integrity.clone())))
        .collect();
    assert_eq!(ours, npm);
}

/// The corpus tree resolved the way `ims install` does on a fresh machine — from the fixture
/// registry, recording into a local index on disk — and then again offline from what was
/// recorded: both equal npm's, tarball URLs included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_tree_recorded_from_the_registry_matches_npm() {
    use indexer::source::{LayeredSource, LocalIndex, Network, Policy};
    use installer::DepKind;
    use installer::ideal_tree::build;
    use installer::tree::root_edges;

    let corpus = Corpus::load().unwrap();
    let registry = fixtures::Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = PickOptions {
        node_version: parse_version("20.20.2"),
        npm_version: parse_version("11.19.1"),
        ..PickOptions::default()
    };
    let requests: Vec<(DepKind, Request)> = corpus
        .roots()
        .iter()
        .map(|(n, s)| (DepKind::Prod, Request::from_dependency(n, s).unwrap()))
        .collect();
    let npm: BTreeMap<String, (String, String, String)> = corpus
        .resolved()
        .iter()
        .map(|n| {
            let file = indexer::names::tarball_file_name(&n.name, &n.version);
            (
                n.path.clone(),
                (n.version.clone(), n.integrity.clone(), format!("{}{}/-/{file}", registry.url(), n.name)),
            )
        })
        .collect();
    for network in [Network::Online, Network::Offline] {
        let upstream =
            indexer::upstream::Registry::new(registry.url().parse().unwrap(), Default::default()).unwrap();
        let local =
            LocalIndex::at(dir.path().join("index"), dir.path().join("times.json")).upstream(upstream.url());
        let source = LayeredSource::new(local, upstream, Policy { network, ..Policy::default() });
        let r = Resolver::new(source.clone(), opts.clone());
        let tree = build(&r, root_edges(&requests), Default::default()).await.unwrap();
        let ours: BTreeMap<String, (String, String, String)> = tree
            .packages()
            .into_iter()
            .map(|id| {
                let res = tree.node(id).resolved.as_ref().unwrap();
                let tarball = res.manifest().dist.tarball.clone().unwrap();
                (
                    tree.location(id),
                    (res.version.clone(), res.integrity.as_ref().unwrap().to_string(), tarball),
                )
            })
            .collect();
        assert_eq!(ours, npm, "{network:?}");
        let report = source.finish().await.unwrap();
        match network {
            Network::Online => assert!(report.fetched > 100 && report.recorded.packages == report.fetched),
            _ => assert_eq!((report.fetched, report.fresh > 100), (0, true), "{report}"),
        }
    }
}
