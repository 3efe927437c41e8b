//! npm 7+'s peer dependency placement in the ideal tree, from memory (no npm, no network):
//! peers beside their dependent, a peer set that cannot hoist nests with its dependent, a
//! conflict with the project's own dependency is ERESOLVE naming both sides, and
//! `--legacy-peer-deps` installs no peers. `tests/testsuite/interop/npm_parity.rs` checks the same trees
//! against real npm.
//!
//! The `fixtures/trees/peer-*` trees carry their own packages (`registry.json`) and what npm
//! did with them (`npm.json`: the placements of its `package-lock.json`, or its ERESOLVE), per
//! set of flags; every test here builds ims's tree for one of them and compares. The ignored
//! `npm_json_is_what_npm_does` runs the real npm against the same packages served on
//! 127.0.0.1 and checks (or, with `IMS_RECORD_NPM=1`, rewrites) the recorded results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexer::model::Packument;
use installer::ideal_tree::build;
use installer::resolve::MemorySource;
use installer::tree::{BuildOptions, Tree, root_edges};
use installer::{DepKind, PickOptions, Request, ResolveError, Resolver};
use serde_json::{Map, Value, json};

/// `(name, version, manifest fields)`; the last version listed of each name is `latest` (as
/// when published in that order).
fn source(packages: &[(&str, &str, Value)]) -> MemorySource {
    let mut docs: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, version, extra) in packages {
        latest.insert(name, version);
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
        let doc = json!({ "name": name, "dist-tags": { "latest": latest[name] }, "versions": versions });
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
    let opts = BuildOptions {
        root_name: "app".into(),
        legacy_peer_deps,
        strict_peer_deps: false,
        ..Default::default()
    };
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
    // The plugin sorting first changes nothing: its peer set is resolved against the root's
    // own edge before anything is placed, and npm reports the same as above.
    let err = tree_for(&[("a-plugin", "1"), ("host", "2")], false).await.unwrap_err();
    let ResolveError::PeerConflict { found, wanted } = &err else { panic!("{err}") };
    assert_eq!(found, "host@2.0.0\nnode_modules/host\n  host@\"2\" from the root project");
    assert_eq!(
        wanted,
        "peer host@\"^1\" from a-plugin@1.0.0\nnode_modules/a-plugin\n  a-plugin@\"1\" from the root project"
    );
}

#[tokio::test]
async fn legacy_peer_deps_installs_no_peers() {
    let tree = tree_for(&[("host", "2"), ("plugin", "1"), ("top", "1")], true).await.unwrap();
    assert_eq!(
        layout(&tree),
        ["node_modules/host 2.0.0", "node_modules/plugin 1.0.0", "node_modules/top 1.0.0"]
    );
}

// ---- fixture trees checked against npm's recorded result ----

/// The runs recorded for each tree: npm's flags (ims takes the same).
const CASES: &[(&str, &[&str])] = &[
    ("peer-eslint-stylistic", &[]),
    ("peer-eslint-stylistic", &["--strict-peer-deps"]),
    ("peer-replace-root-pick", &[]),
    ("peer-react-conflict", &[]),
    ("peer-react-conflict", &["--legacy-peer-deps"]),
    ("peer-root-pin-later", &[]),
    ("peer-of-peer-root-range", &[]),
    ("peer-deep-conflict", &[]),
    ("peer-deep-conflict", &["--strict-peer-deps"]),
    ("peer-deep-conflict", &["--legacy-peer-deps"]),
];

fn tree_dir(tree: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trees").join(tree)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The manifests of `registry.json`, in publish order (each name's versions ascending).
fn registry_manifests(tree: &str) -> Vec<Value> {
    read_json(&tree_dir(tree).join("registry.json")).as_array().expect("registry.json is a list").clone()
}

/// The root's requests from the tree's `package.json`.
fn root_requests(tree: &str) -> Vec<(DepKind, Request)> {
    let pkg = read_json(&tree_dir(tree).join("package.json"));
    let mut out = Vec::new();
    for (field, kind) in [
        ("dependencies", DepKind::Prod),
        ("devDependencies", DepKind::Dev),
        ("optionalDependencies", DepKind::Optional),
        ("peerDependencies", DepKind::Peer),
    ] {
        for (name, spec) in pkg.get(field).and_then(Value::as_object).into_iter().flatten() {
            out.push((kind, Request::from_dependency(name, spec.as_str().unwrap()).unwrap()));
        }
    }
    out
}

/// What a run gives, in the shape `npm.json` records: `{"tree": {location: version}}` or
/// `{"eresolve": {"found": …, "wanted": …}}`.
async fn ims_result(tree: &str, args: &[&str]) -> Value {
    let manifests = registry_manifests(tree);
    let packages: Vec<(&str, &str, Value)> = manifests
        .iter()
        .map(|m| {
            let mut extra = m.as_object().unwrap().clone();
            extra.remove("name");
            extra.remove("version");
            (m["name"].as_str().unwrap(), m["version"].as_str().unwrap(), Value::Object(extra))
        })
        .collect();
    let resolver = Resolver::new(source(&packages), PickOptions::default());
    let opts = BuildOptions {
        root_name: tree.to_owned(),
        legacy_peer_deps: args.contains(&"--legacy-peer-deps"),
        strict_peer_deps: args.contains(&"--strict-peer-deps"),
        ..Default::default()
    };
    match build(&resolver, root_edges(&root_requests(tree)), opts).await {
        Ok(t) => {
            let placed: Map<String, Value> = t
                .packages()
                .into_iter()
                .map(|id| (t.location(id), t.node(id).resolved.as_ref().unwrap().version.to_string().into()))
                .collect();
            json!({ "tree": placed })
        }
        Err(ResolveError::PeerConflict { found, wanted }) => {
            json!({ "eresolve": { "found": found, "wanted": wanted } })
        }
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// npm's recorded result for a run.
fn npm_result(tree: &str, args: &[&str]) -> Value {
    let recorded = read_json(&tree_dir(tree).join("npm.json"));
    let key = args.join(" ");
    recorded["runs"].get(&key).cloned().unwrap_or_else(|| panic!("{tree}: npm.json has no run {key:?}"))
}

async fn assert_like_npm(tree: &str, args: &[&str]) {
    assert_eq!(ims_result(tree, args).await, npm_result(tree, args), "{tree} {args:?}");
}

/// The real case: `eslint@^9.5.0` at the root, a plugin whose peer is `eslint@>=8.40.0` while
/// eslint 10 is `latest`. The peer is resolved from the root's own edge (9.x), not from its
/// range alone (10.0.0, which the root refuses).
#[tokio::test]
async fn a_broad_peer_takes_the_roots_version_like_npm() {
    assert_like_npm("peer-eslint-stylistic", &[]).await;
    assert_like_npm("peer-eslint-stylistic", &["--strict-peer-deps"]).await;
}

/// The root's range picks graphql 16 first; the plugin's peer wants ^15, which the root's
/// range also accepts: npm replaces 16 with 15 rather than fail.
#[tokio::test]
async fn a_peer_compatible_with_the_roots_range_replaces_its_pick_like_npm() {
    assert_like_npm("peer-replace-root-pick", &[]).await;
}

/// A real conflict with the project's own dependency: ERESOLVE naming react on both sides.
#[tokio::test]
async fn a_peer_conflicting_with_the_roots_dependency_is_eresolve_like_npm() {
    assert_like_npm("peer-react-conflict", &[]).await;
    assert_like_npm("peer-react-conflict", &["--legacy-peer-deps"]).await;
}

/// The root pins the peer (`webpack@5.90.0`), which sorts after the plugin: the pin is what
/// the plugin's peer gets, not the newest 5.x.
#[tokio::test]
async fn a_peer_pinned_by_the_root_placed_later_like_npm() {
    assert_like_npm("peer-root-pin-later", &[]).await;
}

/// A peer of a peer (plugin → parser → eslint) also takes the root's eslint.
#[tokio::test]
async fn a_peer_of_a_peer_takes_the_roots_version_like_npm() {
    assert_like_npm("peer-of-peer-root-range", &[]).await;
}

/// A conflict below the root (ui-kit wants react 18, its widget peers react 16): npm keeps
/// react 18 with a warning; `--strict-peer-deps` makes it ERESOLVE; `--legacy-peer-deps`
/// ignores the peer.
#[tokio::test]
async fn a_deep_peer_conflict_is_overridden_unless_strict_like_npm() {
    assert_like_npm("peer-deep-conflict", &[]).await;
    assert_like_npm("peer-deep-conflict", &["--strict-peer-deps"]).await;
    assert_like_npm("peer-deep-conflict", &["--legacy-peer-deps"]).await;
}

/// Every case of [`CASES`] has a test above.
#[test]
fn every_recorded_run_is_checked() {
    for (tree, args) in CASES {
        npm_result(tree, args);
    }
}

/// The `ims` binary takes `--strict-peer-deps` as npm does: the deep conflict installs
/// without it and is ERESOLVE with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_strict_peer_deps() {
    let registry = serve("peer-deep-conflict").await;
    let dir = tempfile::tempdir().unwrap();
    for (strict, side) in [(false, "loose"), (true, "strict")] {
        let project = dir.path().join(side);
        std::fs::create_dir_all(&project).unwrap();
        std::fs::copy(tree_dir("peer-deep-conflict").join("package.json"), project.join("package.json"))
            .unwrap();
        let mut cmd = crate::support::ims_install(&dir.path().join("home"), &registry.url(), &project);
        if strict {
            cmd.arg("--strict-peer-deps");
        }
        let out = crate::support::output(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if strict {
            assert!(!out.status.success());
            assert!(stderr.contains("ERESOLVE"), "{stderr}");
            assert!(stderr.contains("peer react@\"^16.8.0\" from old-widget@1.0.0"), "{stderr}");
        } else {
            assert!(out.status.success(), "{stderr}");
            assert!(project.join("node_modules/old-widget/package.json").exists());
        }
    }
}

/// A fixture registry serving the tree's `registry.json` (needs a tokio runtime).
async fn serve(tree: &str) -> fixtures::Registry {
    let registry = fixtures::Registry::start().await.unwrap();
    for m in registry_manifests(tree) {
        let mut pkg = fixtures::Package::new(m["name"].as_str().unwrap(), m["version"].as_str().unwrap());
        for (k, v) in m.as_object().unwrap() {
            if k != "name" && k != "version" {
                pkg = pkg.field(k, v.clone());
            }
        }
        registry.publish(pkg).unwrap();
    }
    registry
}

/// npm's answer on one run, read from what it left: the placements of its
/// `package-lock.json`, or the `Found:` and `Could not resolve dependency:` blocks of its
/// ERESOLVE.
fn run_npm(registry: &str, tree: &str, args: &[&str]) -> Value {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(tree_dir(tree).join("package.json"), project.join("package.json")).unwrap();
    let (user, global, home) =
        (dir.path().join("user.npmrc"), dir.path().join("global.npmrc"), dir.path().join("home"));
    std::fs::write(&user, "").unwrap();
    std::fs::write(&global, "").unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new("npm");
    cmd.arg("install").args(args).args(["--registry", registry, "--cache"]).arg(dir.path().join("cache"));
    cmd.arg("--userconfig").arg(&user).arg("--globalconfig").arg(&global);
    cmd.args(["--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier"]);
    cmd.current_dir(&project).env("HOME", &home);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().to_ascii_uppercase().starts_with("NPM_CONFIG_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("npm on PATH");
    if out.status.success() {
        let lock = read_json(&project.join("package-lock.json"));
        let placed: Map<String, Value> = lock["packages"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.clone(), v["version"].clone()))
            .collect();
        return json!({ "tree": placed });
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("npm error").map(|l| l.strip_prefix(' ').unwrap_or(l)))
        .collect();
    let block = |head: &str| -> Option<String> {
        let i = lines.iter().position(|l| l.starts_with(head))?;
        let mut out = vec![lines[i][head.len()..].trim_start()];
        out.extend(lines[i + 1..].iter().take_while(|l| !l.is_empty()));
        Some(out.into_iter().filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n"))
    };
    match (block("Found:"), block("Could not resolve dependency:")) {
        (Some(found), Some(wanted)) => json!({ "eresolve": { "found": found, "wanted": wanted } }),
        _ => json!({ "error": stderr }),
    }
}

/// The recorded `npm.json` files are what the npm on PATH does on the same packages; with
/// `IMS_RECORD_NPM=1` they are rewritten instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs the real npm: cargo test --test testsuite peer_deps -- --ignored"]
async fn npm_json_is_what_npm_does() {
    #[allow(clippy::disallowed_methods)] // a test switch
    let record = std::env::var_os("IMS_RECORD_NPM").is_some();
    let version = std::process::Command::new("npm").arg("--version").output().expect("npm on PATH");
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let mut by_tree: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (tree, args) in CASES {
        let registry = serve(tree).await;
        let url = registry.url();
        let got = tokio::task::block_in_place(|| run_npm(&url, tree, args));
        if !record {
            assert_eq!(got, npm_result(tree, args), "{tree} {args:?}: npm {version} now does otherwise");
        }
        by_tree.entry(tree).or_default().insert(args.join(" "), got);
    }
    if record {
        for (tree, runs) in by_tree {
            let doc = json!({ "npm": version, "runs": runs });
            let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
            std::fs::write(tree_dir(tree).join("npm.json"), text).unwrap();
        }
    }
}
