//! `ims install --key K --peer ADDR` (DESIGN.md §The index, last point): the whole tree resolved from a peer's index
//! (`ims seed --listen 127.0.0.1:0 --no-dht` over an index built with `ims index
//! --from-registry` from the fixture registry) in one prefetch round trip, with no packument
//! asked of the registry; the same tree from a seeder that plans only trie keys or nothing
//! (block by block); and a package the peer's index lacks fetched upstream.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use fixtures::{Corpus, Registry};

use child::Kill;

use crate::support::{self, child};

fn command(home: &Path) -> Command {
    support::ims(home)
}

/// Run ims to completion (the fixture registry keeps serving from the runtime's other worker).
fn ims(home: &Path, args: &[&str]) -> Output {
    let out = tokio::task::block_in_place(|| command(home).args(args).output().expect("run ims"));
    assert!(
        out.status.success(),
        "ims {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ims seed` on a free port with this `--prefetch` mode; returns the process, address, key.
fn seed(home: &Path, prefetch: &str) -> (Kill, String, String) {
    let mut cmd = command(home);
    cmd.args(["seed", "--listen", "127.0.0.1:0", "--no-dht", "--prefetch", prefetch]);
    child::seed(cmd)
}

fn project(dir: &Path, deps: &BTreeMap<String, String>) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let pkg = serde_json::json!({ "name": "app", "version": "1.0.0", "dependencies": deps });
    std::fs::write(dir.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap() + "\n").unwrap();
    dir.to_path_buf()
}

/// Packument requests the registry saw for these names.
fn packument_hits<'a>(registry: &Registry, names: impl IntoIterator<Item = &'a str>) -> usize {
    names.into_iter().map(|n| registry.hits(&format!("/{}", indexer::names::url_segment(n)))).sum()
}

/// The counts of the `index from peer:` line: prefetch round trips, blocks prefetched, blocks
/// fetched one by one, packages from the peer, packages from upstream.
fn peer_counts(out: &Output) -> [u64; 5] {
    let err = String::from_utf8_lossy(&out.stderr);
    let l = err
        .lines()
        .find(|l| l.starts_with("index from peer:"))
        .unwrap_or_else(|| panic!("no peer line: {err}"));
    let numbers: Vec<u64> = l
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    numbers.try_into().unwrap_or_else(|n| panic!("unexpected peer line {l:?}: {n:?}"))
}

fn install(home: &Path, project: &Path, registry: &Registry, peer: Option<(&str, &str)>) -> Output {
    let url = registry.url();
    let mut args = vec!["--registry", url.as_str()];
    if let Some((key, addr)) = peer {
        args.extend(["--key", key, "--peer", addr]);
    }
    args.extend(["install", "--prefix", project.to_str().unwrap()]);
    ims(home, &args)
}

fn lockfile(project: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(project.join("package-lock.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_tree_from_a_peer_in_one_round_trip() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let roots: BTreeMap<String, String> = corpus.roots().clone();

    // The reference: the tree `ims install` resolves straight from the registry.
    // One reader home: the tarball store is shared, the replica is removed before each run.
    let reader = dir.path().join("home");
    let reference = project(&dir.path().join("reference"), &roots);
    install(&reader, &reference, &registry, None);
    let want = lockfile(&reference);
    assert!(want["packages"].as_object().unwrap().len() > 200);

    // The seeder's index: the whole corpus, ingested from the registry.
    let seeder = dir.path().join("home-seed");
    let mut args = vec!["index".to_owned(), "--from-registry".to_owned(), registry.url()];
    args.extend(corpus.names().map(str::to_owned));
    ims(&seeder, &args.iter().map(String::as_str).collect::<Vec<_>>());

    let names: Vec<&str> = corpus.names().collect();
    for (mode, one_round_trip) in [("resolve", true), ("keys", false), ("off", false)] {
        let (seed_proc, addr, key) = seed(&seeder, mode);
        let app = project(&dir.path().join(format!("app-{mode}")), &roots);
        let before = packument_hits(&registry, names.iter().copied());
        let _ = std::fs::remove_dir_all(reader.join("replicas"));
        let out = install(&reader, &app, &registry, Some((&key, &addr)));
        drop(seed_proc);
        assert_eq!(packument_hits(&registry, names.iter().copied()), before, "{mode}: no packument upstream");
        let [prefetches, prefetched, singly, from_peer, from_upstream] = peer_counts(&out);
        assert_eq!(prefetches, 1, "{mode}");
        assert_eq!(from_upstream, 0, "{mode}");
        assert!(from_peer > 150, "{mode}: {from_peer} packages from the peer");
        if one_round_trip {
            assert!(prefetched > 0, "{mode}");
            assert_eq!(
                singly,
                0,
                "{mode}: every block the resolution read came in the prefetch:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert_eq!(prefetched, 0, "{mode}: a key-only planner knows no resolve keys");
            assert!(singly > 100, "{mode}: block by block ({singly})");
        }
        assert_eq!(lockfile(&app), want, "{mode}: the same tree as from the registry");
        assert!(app.join("node_modules/express/package.json").is_file(), "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_the_peer_index_lacks_comes_from_upstream() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let roots: BTreeMap<String, String> = [("debug".to_owned(), "^2".to_owned())].into();
    let reference = project(&dir.path().join("reference"), &roots);
    install(&dir.path().join("home-ref"), &reference, &registry, None);

    // The peer indexed debug but not its dependency ms.
    let seeder = dir.path().join("home-seed");
    ims(&seeder, &["index", "--from-registry", &registry.url(), "debug"]);
    let (_seed, addr, key) = seed(&seeder, "resolve");
    let app = project(&dir.path().join("app"), &roots);
    let (debug, ms) = (registry.hits("/debug"), registry.hits("/ms"));
    let out = install(&dir.path().join("home"), &app, &registry, Some((&key, &addr)));
    assert_eq!(registry.hits("/debug"), debug, "debug comes from the peer");
    assert_eq!(registry.hits("/ms"), ms + 1, "ms comes from upstream, once");
    let [prefetches, prefetched, singly, from_peer, from_upstream] = peer_counts(&out);
    assert_eq!((prefetches, from_peer, from_upstream), (1, 1, 1));
    assert!(prefetched > 0);
    assert_eq!(
        singly,
        0,
        "the absence of ms was proven by the prefetched blocks: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lockfile(&app), lockfile(&reference));
    assert!(app.join("node_modules/ms/package.json").is_file());
}

/// The planner at library level: a resolve request is answered with exactly the blocks of the
/// packuments the resolution reads, plain keys as trie lookups, and the limits bound the work.
#[tokio::test]
async fn resolve_planner_answers_and_is_bounded() {
    use hypercore::replicate::BlockPlanner;
    use hypercore::{FeedBuilder, KeyPair, Storage};
    use hypertrie::Trie;
    use indexer::model::Packument;
    use indexer::{Document, Index, Update};
    use installer::planner::{PlanLimits, ResolvePlanner, ResolveQuery};
    use installer::{DepKind, PickOptions, Request};

    let corpus = Corpus::load().unwrap();
    let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    let trie = Trie::open(feed.clone()).await.unwrap();
    let mut index = Index::open(trie.clone()).await.unwrap();
    index.set_upstream(&"http://127.0.0.1:9/".parse().unwrap()).await.unwrap();
    let documents = ["debug", "ms", "express"]
        .iter()
        .map(|n| Document {
            packument: Packument::from_slice(corpus.packument(n).unwrap()).unwrap().into(),
            etag: None,
        })
        .collect();
    index.write(Update { documents, ..Update::default() }).await.unwrap();

    let roots = vec![(DepKind::Prod, Request::from_dependency("debug", "^2").unwrap())];
    let mut keys = ResolveQuery { roots, pick: PickOptions::default() }.to_keys();
    let plan = |limits: PlanLimits, keys: Vec<String>| {
        let (trie, feed) = (trie.clone(), feed.clone());
        async move { ResolvePlanner::new(trie, limits).blocks(&feed, &keys).await }
    };
    // What the resolution picks: debug, then the ms its manifest asks for.
    let resolver = installer::Resolver::new(index.clone(), PickOptions::default());
    let debug = resolver.resolve(&Request::from_dependency("debug", "^2").unwrap()).await.unwrap();
    let ms_range = debug.manifest().dependencies["ms"].clone();
    let ms = resolver.resolve(&Request::from_dependency("ms", &ms_range).unwrap()).await.unwrap();
    let picks = [("debug", debug.version.as_str()), ("ms", ms.version.as_str())];

    let full = plan(PlanLimits::default(), keys.clone()).await.unwrap();
    let want = index.touched_summaries(&["debug", "ms"], &picks).await.unwrap();
    assert_eq!(full, want, "the summaries of debug and its dependency, and the pages of the picks");
    assert!(full.is_subset(&index.touched_packuments(&["debug", "ms"]).await.unwrap()));
    // For a package of many pages, the pick reads one of them, not all.
    let summary = index.versions("express").await.unwrap().unwrap();
    assert!(summary.versions.len() > 64, "express has {} versions", summary.versions.len());
    let latest = summary.dist_tags["latest"].as_str();
    let picked = index.touched_summaries(&["express"], &[("express", latest)]).await.unwrap();
    let whole = index.touched_packuments(&["express"]).await.unwrap();
    assert!(
        picked.is_subset(&whole) && picked.len() < whole.len(),
        "a summary and one page touch fewer blocks than a whole packument ({} of {})",
        picked.len(),
        whole.len()
    );

    let one = PlanLimits { max_packages: 1, ..PlanLimits::default() };
    assert_eq!(
        plan(one, keys.clone()).await.unwrap(),
        index.touched_summaries(&["debug"], &picks[..1]).await.unwrap()
    );
    let none = PlanLimits { max_roots: 0, ..PlanLimits::default() };
    assert!(plan(none, keys.clone()).await.is_err(), "too many roots: not planned");

    keys.push("p/express".to_owned());
    let with_key = plan(PlanLimits::default(), keys).await.unwrap();
    let express = trie.touched("p/express").await.unwrap();
    assert!(with_key.is_superset(&full) && with_key.is_superset(&express));
}

/// Tarball requests the registry saw for these `(name, version)`s.
fn tarball_hits(registry: &Registry, packages: &[(&str, &str)]) -> usize {
    packages.iter().map(|(n, v)| registry.hits(&format!("/{n}/-/{n}-{v}.tgz"))).sum()
}

/// The counts of the `tarballs from peer:` line: delivered by the peer, fetched upstream instead.
fn tarball_counts(out: &Output) -> (u64, u64) {
    let err = String::from_utf8_lossy(&out.stderr);
    let l = err
        .lines()
        .find(|l| l.starts_with("tarballs from peer:"))
        .unwrap_or_else(|| panic!("no tarball line: {err}"));
    let n: Vec<u64> = l.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
    (n[0], n[1])
}

/// `ims seed --upstream URL` serves tarballs over `ims/tarball`: a reader gets every tarball
/// from the peer (its own registry sees no request at all), the seeder fetches each from its
/// upstream once and keeps it; a tarball the seeder holds corrupted fails verification and
/// comes from the reader's registry instead; a seeder without `--upstream` serves only its
/// store; and an install from a lockfile (no resolution) still takes its tarballs from the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarballs_come_from_the_peer_first() {
    let corpus = Corpus::load().unwrap();
    // The seeder's upstream, and the registry readers are configured with.
    let upstream = Registry::with_corpus(&corpus).await.unwrap();
    let own = Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let roots: BTreeMap<String, String> = [("debug".to_owned(), "^2".to_owned())].into();
    let reference = project(&dir.path().join("reference"), &roots);
    install(&dir.path().join("home-ref"), &reference, &own, None);
    let want = lockfile(&reference);
    let packages: Vec<(String, String)> = want["packages"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| !path.is_empty())
        .map(|(path, p)| {
            (path.trim_start_matches("node_modules/").to_owned(), p["version"].as_str().unwrap().to_owned())
        })
        .collect();
    let packages: Vec<(&str, &str)> = packages.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(packages.len(), 2, "debug and ms: {packages:?}");
    let own_hits = own.total_hits();

    let seeder = dir.path().join("home-seed");
    ims(&seeder, &["index", "--from-registry", &upstream.url(), "debug", "ms"]);
    let mut cmd = command(&seeder);
    cmd.args(["seed", "--listen", "127.0.0.1:0", "--no-dht", "--upstream", &upstream.url()]);
    let (seed_proc, addr, key) = child::seed(cmd);

    // Two readers in a row: the first makes the seeder fetch from its upstream, the second
    // is served from the seeder's store.
    for (i, upstream_fetches) in [(1, 2), (2, 2)] {
        let app = project(&dir.path().join(format!("app-{i}")), &roots);
        let out = install(&dir.path().join(format!("home-{i}")), &app, &own, Some((&key, &addr)));
        assert_eq!(tarball_counts(&out), (2, 0), "reader {i}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(own.total_hits(), own_hits, "reader {i}: nothing asked of the reader's registry");
        assert_eq!(
            tarball_hits(&upstream, &packages),
            upstream_fetches,
            "reader {i}: the seeder fetched each once"
        );
        assert_eq!(lockfile(&app), want, "reader {i}");
        assert!(app.join("node_modules/ms/package.json").is_file(), "reader {i}");
    }

    // The seeder's copy of ms is corrupted: the reader refuses it and asks its registry.
    let ms = packages.iter().find(|(n, _)| *n == "ms").unwrap();
    let integrity: indexer::tarballs::Integrity =
        want["packages"]["node_modules/ms"]["integrity"].as_str().unwrap().parse().unwrap();
    let stored =
        indexer::tarballs::TarballStore::open(seeder.join("store")).unwrap().tarball_path(&integrity);
    let mut bytes = std::fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    let app = project(&dir.path().join("app-corrupt"), &roots);
    let reader = dir.path().join("home-corrupt");
    let ms_hits = tarball_hits(&own, &[*ms]);
    let out = install(&reader, &app, &own, Some((&key, &addr)));
    assert_eq!(tarball_counts(&out), (1, 1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tarball_hits(&own, &[*ms]), ms_hits + 1, "ms came from the reader's registry");
    assert_eq!(lockfile(&app), want);
    let reader_store = indexer::tarballs::TarballStore::open(reader.join("store")).unwrap();
    assert_ne!(
        std::fs::read(reader_store.tarball_path(&integrity)).unwrap(),
        bytes,
        "the corrupt bytes were not kept"
    );

    // From a lockfile: no resolution, but the tarballs still come from the peer.
    let locked = project(&dir.path().join("app-locked"), &roots);
    std::fs::copy(reference.join("package-lock.json"), locked.join("package-lock.json")).unwrap();
    let before = own.total_hits();
    let out = install(&dir.path().join("home-locked"), &locked, &own, Some((&key, &addr)));
    assert_eq!(tarball_counts(&out), (1, 1), "debug from the peer, the corrupt ms from the registry");
    assert_eq!(own.total_hits(), before + 1);
    assert!(locked.join("node_modules/debug/package.json").is_file());
    drop(seed_proc);

    // A seeder without --upstream serves only what its store holds.
    let bare = dir.path().join("home-bare");
    ims(&bare, &["index", "--from-registry", &upstream.url(), "debug", "ms"]);
    let (_bare_proc, addr, key) = seed(&bare, "resolve");
    let app = project(&dir.path().join("app-bare"), &roots);
    let out = install(&dir.path().join("home-bare-reader"), &app, &own, Some((&key, &addr)));
    assert_eq!(tarball_counts(&out), (0, 2));
    assert_eq!(lockfile(&app), want);
}
