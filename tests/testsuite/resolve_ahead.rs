//! Fetching ahead: the resolver asks for the packuments of a picked version's dependencies the
//! moment it is picked, so resolving a tree takes about as many sequential request rounds as
//! the tree is deep, asks for no package twice, and builds the same tree as resolving one
//! node at a time (DESIGN.md §Install; issue 15).
//!
//! The source here answers in rounds: requests queue until none has arrived for a moment, then
//! the whole queue is answered at once, as a registry 50 ms away answers everything sent
//! within one round trip together.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixtures::Corpus;
use indexer::model::Packument;
use installer::ideal_tree::build;
use installer::resolve::{ManifestSource, MemorySource, SourceError};
use installer::semver::parse_version;
use installer::tree::{BuildOptions, root_edges};
use installer::{DepKind, PickOptions, Request, Resolver};
use tokio::sync::oneshot;

/// Requests waiting for the next round, and what was asked in all.
#[derive(Default)]
struct Rounds {
    waiting: Vec<oneshot::Sender<()>>,
    asked: HashMap<String, usize>,
    rounds: usize,
}

#[derive(Clone)]
struct RoundSource {
    inner: MemorySource,
    rounds: Arc<Mutex<Rounds>>,
}

impl ManifestSource for RoundSource {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut r = self.rounds.lock().unwrap();
            *r.asked.entry(name.to_owned()).or_default() += 1;
            r.waiting.push(tx);
        }
        rx.await.map_err(|e| Box::new(e) as SourceError)?;
        self.inner.packument(name).await
    }
}

/// Answer whatever is queued once nothing new has arrived for a while, counting rounds, until
/// `done` fires.
async fn answer_in_rounds(rounds: Arc<Mutex<Rounds>>, mut done: oneshot::Receiver<()>) {
    let quiet = Duration::from_millis(15);
    let mut last_len = 0;
    loop {
        tokio::select! {
            _ = &mut done => return,
            _ = tokio::time::sleep(quiet) => {}
        }
        let mut r = rounds.lock().unwrap();
        let len = r.waiting.len();
        if len > 0 && len == last_len {
            r.rounds += 1;
            for tx in r.waiting.drain(..) {
                let _ = tx.send(());
            }
            last_len = 0;
        } else {
            last_len = len;
        }
    }
}

struct Outcome {
    tree: BTreeMap<String, String>,
    depth: usize,
    rounds: usize,
    asked: HashMap<String, usize>,
}

async fn resolve_corpus(ahead: bool) -> Outcome {
    let corpus = Corpus::load().unwrap();
    let mut inner = MemorySource::new();
    for (_, json) in corpus.packuments() {
        inner.insert(Packument::from_slice(json).unwrap());
    }
    let rounds = Arc::new(Mutex::new(Rounds::default()));
    let source = RoundSource { inner, rounds: rounds.clone() };
    let opts = PickOptions { node_version: parse_version("20.20.2"), ..PickOptions::default() };
    let mut resolver = Resolver::new(source, opts);
    if ahead {
        resolver = resolver.fetch_ahead(64);
    }
    let requests: Vec<(DepKind, Request)> = corpus
        .roots()
        .iter()
        .map(|(n, s)| (DepKind::Prod, Request::from_dependency(n, s).unwrap()))
        .collect();
    let (stop, done) = oneshot::channel();
    let answering = tokio::spawn(answer_in_rounds(rounds.clone(), done));
    let tree = build(&resolver, root_edges(&requests), BuildOptions::default()).await.unwrap();
    let _ = stop.send(());
    answering.await.unwrap();
    // How deep the tree is: the longest of the shortest dependency paths to a package.
    let depth = tree
        .packages()
        .into_iter()
        .map(|id| tree.dependency_path(id).matches(" > ").count())
        .max()
        .unwrap_or(0);
    let placed = tree
        .packages()
        .into_iter()
        .map(|id| {
            let r = tree.node(id).resolved.as_ref().unwrap();
            (tree.location(id), format!("{}@{}", r.package(), r.version))
        })
        .collect();
    let r = rounds.lock().unwrap();
    Outcome { tree: placed, depth, rounds: r.rounds, asked: r.asked.clone() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_resolves_in_about_as_many_rounds_as_it_is_deep() {
    let one_by_one = resolve_corpus(false).await;
    let ahead = resolve_corpus(true).await;
    tracing::info!(
        packages = ahead.tree.len(),
        depth = ahead.depth,
        one_by_one = one_by_one.rounds,
        ahead = ahead.rounds,
        "request rounds"
    );
    assert_eq!(ahead.tree, one_by_one.tree, "fetching ahead changed the tree");
    assert!(ahead.tree.len() > 200, "{}", ahead.tree.len());
    let twice: Vec<_> = ahead.asked.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "asked more than once: {twice:?}");
    // Nothing the tree does not need is asked for.
    let needed: std::collections::BTreeSet<&str> =
        ahead.tree.values().map(|v| v.rsplit_once('@').unwrap().0).collect();
    let extra: Vec<_> = ahead.asked.keys().filter(|n| !needed.contains(n.as_str())).collect();
    assert!(extra.is_empty(), "asked for packages not in the tree: {extra:?}");
    assert!(
        ahead.rounds <= ahead.depth + 2,
        "{} rounds for a tree {} deep (one node at a time: {})",
        ahead.rounds,
        ahead.depth,
        one_by_one.rounds
    );
    assert!(one_by_one.rounds > ahead.rounds * 2, "{} vs {}", one_by_one.rounds, ahead.rounds);
}
