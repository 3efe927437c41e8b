//! npm 7+'s peer dependency placement in the ideal tree, from memory (no npm, no network):
//! peers beside their dependent, a peer set that cannot hoist nests with its dependent, a
//! conflict with the project's own dependency is ERESOLVE naming both sides, and
//! `--legacy-peer-deps` installs no peers. `tests/testsuite/interop/npm_parity.rs` checks the same trees
//! against real npm.

use std::collections::BTreeMap;

use indexer::model::Packument;
use installer::ideal_tree::build;
use installer::resolve::MemorySource;
use installer::tree::{BuildOptions, Tree, root_edges};
use installer::{DepKind, PickOptions, Request, ResolveError, Resolver};
use serde_json::{Map, Value, json};

/// `(name, version, manifest fields)`; the highest version of each name is `latest`.
fn source(packages: &[(&str, &str, Value)]) -> MemorySource {
    let mut docs: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (name, version, extra) in packages {
        let mut m = json!({
            "name": name,
            "version": version,
            "dist": {
                "tarball": format!("http://127.0.0.1:9/{name}-{version}.tgz"),
                "integrity": "sha512-GYrCADwpu6yV5OAvchkQ27Z5wwMxWAEMg5NNWjyHh/5DboFFqbdbvYNIvZouQpxXyeMPoTOh0vdPYKlf0ZswdQ=="
            }
        });
        m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        docs.entry(name).or_default().insert((*version).to_owned(), m);
    }
    let mut s = MemorySource::new();
    for (name, versions) in docs {
        let latest = versions.keys().next_back().unwrap().clone();
        let doc = json!({ "name": name, "dist-tags": { "latest": latest }, "versions": versions });
        s.insert(Packument::from_value(doc).unwrap());
    }
    s
}

fn peers_registry() -> MemorySource {
    let none = json!({});
    source(&[
        ("host", "1.1.0", none.clone()),
        ("host", "2.0.0", none.clone()),
        ("plugin", "1.0.0", json!({ "peerDependencies": { "host": "^1" } })),
        ("a-plugin", "1.0.0", json!({ "peerDependencies": { "host": "^1" } })),
        ("user", "1.0.0", json!({ "dependencies": { "plugin": "^1" } })),
        ("base", "1.0.0", none.clone()),
        ("mid", "1.0.0", json!({ "peerDependencies": { "base": "^1" } })),
        ("top", "1.0.0", json!({ "peerDependencies": { "mid": "^1" } })),
    ])
}

async fn tree_for(deps: &[(&str, &str)], legacy_peer_deps: bool) -> Result<Tree, ResolveError> {
    let resolver = Resolver::new(peers_registry(), PickOptions::default());
    let requests: Vec<(DepKind, Request)> =
        deps.iter().map(|(n, s)| (DepKind::Prod, Request::from_dependency(n, s).unwrap())).collect();
    let opts = BuildOptions { root_name: "app".into(), legacy_peer_deps, strict_peer_deps: false };
    build(&resolver, root_edges(&requests), opts).await
}

fn layout(tree: &Tree) -> Vec<String> {
    tree.packages()
        .into_iter()
        .map(|id| format!("{} {}", tree.location(id), tree.node(id).resolved.as_ref().unwrap().version))
        .collect()
}

#[tokio::test]
async fn peers_of_peers_go_beside_their_dependents() {
    let tree = tree_for(&[("top", "1"), ("user", "1")], false).await.unwrap();
    assert_eq!(
        layout(&tree),
        [
            "node_modules/base 1.0.0",
            "node_modules/host 1.1.0",
            "node_modules/mid 1.0.0",
            "node_modules/plugin 1.0.0",
            "node_modules/top 1.0.0",
            "node_modules/user 1.0.0",
        ]
    );
}

#[tokio::test]
async fn a_peer_set_that_cannot_hoist_nests_with_its_dependent() {
    let tree = tree_for(&[("host", "2"), ("user", "1")], false).await.unwrap();
    assert_eq!(
        layout(&tree),
        [
            "node_modules/host 2.0.0",
            "node_modules/user 1.0.0",
            "node_modules/user/node_modules/host 1.1.0",
            "node_modules/user/node_modules/plugin 1.0.0",
        ]
    );
}

#[tokio::test]
async fn a_peer_conflicting_with_a_root_dependency_is_eresolve() {
    // The host placed first, then the plugin whose peer does not fit.
    let err = tree_for(&[("host", "2"), ("plugin", "1")], false).await.unwrap_err();
    let ResolveError::PeerConflict { found, wanted } = &err else { panic!("{err}") };
    assert_eq!(found, "host@2.0.0\nnode_modules/host\n  host@\"2\" from the root project");
    assert_eq!(
        wanted,
        "peer host@\"^1\" from plugin@1.0.0\nnode_modules/plugin\n  plugin@\"1\" from the root project"
    );
    assert!(err.to_string().starts_with("ERESOLVE unable to resolve dependency tree"));
    // The plugin (sorting first) placed first: its peer would break the root's own edge.
    let err = tree_for(&[("a-plugin", "1"), ("host", "2")], false).await.unwrap_err();
    let ResolveError::PeerConflict { found, wanted } = &err else { panic!("{err}") };
    assert_eq!(found, "host@\"2\" wanted by the root project");
    assert!(wanted.starts_with("peer host@\"^1\" from a-plugin@1.0.0\nnode_modules/a-plugin"), "{wanted}");
}

#[tokio::test]
async fn legacy_peer_deps_installs_no_peers() {
    let tree = tree_for(&[("host", "2"), ("plugin", "1"), ("top", "1")], true).await.unwrap();
    assert_eq!(
        layout(&tree),
        ["node_modules/host 2.0.0", "node_modules/plugin 1.0.0", "node_modules/top 1.0.0"]
    );
}
