//! Lockfile interop with real npm (the `npm` on PATH, installed by CI) against a fixture
//! registry on 127.0.0.1: `npm ci` accepts the lockfile ims writes and installs the same tree,
//! and ims installs from the lockfile npm writes without resolving.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use fixtures::{Corpus, Registry};
use indexer::source::{LayeredSource, LocalIndex, Network, Policy};
use indexer::tarballs::TarballStore;
use installer::semver::parse_version;
use installer::{InstallOptions, Installer, Lockfile, PickOptions};
use serde_json::Value;

fn npm(project: &Path, cache: &Path, registry: &str, args: &[&str]) {
    let out = tokio::task::block_in_place(|| {
        Command::new("npm")
            .args(args)
            .args(["--registry", registry, "--cache"])
            .arg(cache)
            .args(["--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error"])
            .current_dir(project)
            .env_remove("NPM_CONFIG_REGISTRY")
            .output()
            .expect("npm must be installed (CI installs it)")
    });
    assert!(out.status.success(), "npm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A subset of the corpus roots that keeps npm's part of the test short while covering bins,
/// funding, nested copies (semver 6 under @babel/*) and a platform-specific optional
/// (fsevents).
const ROOTS: [&str; 5] = ["@babel/core", "chalk", "chokidar", "express", "semver"];

fn write_package_json(project: &Path, corpus: &Corpus) {
    fs::create_dir_all(project).unwrap();
    let deps: serde_json::Map<String, Value> = corpus
        .roots()
        .iter()
        .filter(|(k, _)| ROOTS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let pkg = serde_json::json!({ "name": "app", "version": "1.0.0", "dependencies": deps });
    fs::write(project.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap() + "\n").unwrap();
}

/// The default path of `ims install`: the local index under `home`, then the registry.
fn installer(
    registry: &Registry,
    home: &Path,
    project: &Path,
    store: &TarballStore,
    network: Network,
) -> (Installer<LayeredSource>, LayeredSource) {
    let registry =
        indexer::upstream::Registry::new(registry.url().parse().unwrap(), Default::default()).unwrap();
    let local = LocalIndex::at(home.join("index"), home.join("index-fetched.json")).upstream(registry.url());
    let policy = Policy { network, ..Policy::default() };
    let source = LayeredSource::new(local, registry.clone(), policy);
    let mut opts = InstallOptions::new(project, store.clone());
    opts.pick = PickOptions {
        node_version: parse_version("20.20.2"),
        npm_version: parse_version("11.19.1"),
        ..PickOptions::default()
    };
    (Installer::new(source.clone(), registry, opts), source)
}

/// location -> (version, integrity) of what a lockfile (or npm's hidden lockfile) lists.
fn listing(lock: &Lockfile) -> BTreeMap<String, (String, Option<String>)> {
    lock.entries().into_iter().map(|e| (e.location, (e.version, e.integrity))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ci_accepts_ims_lockfile_and_ims_installs_npm_lockfile() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("npm-cache");
    let store = TarballStore::open(dir.path().join("store")).unwrap();

    // ims resolves and writes package-lock.json; npm ci installs from it.
    let a = dir.path().join("a");
    write_package_json(&a, &corpus);
    let home = dir.path().join("ims-home");
    let (ims, source) = installer(&registry, &home, &a, &store, Network::Online);
    ims.install(&[]).await.unwrap();
    assert!(source.finish().await.unwrap().recorded.packages > 0);
    let ims_lock = Lockfile::load(&a).unwrap().unwrap();
    let b = dir.path().join("b");
    write_package_json(&b, &corpus);
    fs::copy(a.join("package-lock.json"), b.join("package-lock.json")).unwrap();
    npm(&b, &cache, &url, &["ci"]);
    let hidden = fs::read_to_string(b.join("node_modules/.package-lock.json")).unwrap();
    let hidden = Lockfile::parse(Path::new(".package-lock.json"), &hidden).unwrap();
    let mut want = listing(&ims_lock);
    if cfg!(target_os = "linux") {
        want.remove("node_modules/fsevents");
    }
    assert_eq!(listing(&hidden), want, "npm ci installed exactly the ims lockfile's tree");

    // npm resolves and writes package-lock.json; ims installs from it without resolving.
    let c = dir.path().join("c");
    write_package_json(&c, &corpus);
    npm(&c, &cache, &url, &["install", "--package-lock-only"]);
    let npm_lock = Lockfile::load(&c).unwrap().unwrap();
    assert_eq!(listing(&npm_lock), listing(&ims_lock), "npm and ims lock the same tree");
    let report = installer(&registry, &home, &c, &store, Network::Online).0.install(&[]).await.unwrap();
    assert!(report.from_lockfile, "npm's lockfile was used as is");
    assert_eq!(report.layout.linked + report.skipped_optional.len(), npm_lock.entries().len());
    for e in npm_lock.entries() {
        if report.skipped_optional.contains(&e.location) {
            continue;
        }
        assert!(c.join(&e.location).join("package.json").is_file(), "{}", e.location);
    }

    // The lockfile texts: ims writes what npm writes for the same tree (npm leaves `resolved`
    // out for this registry; ims records it, which `npm ci` accepted above).
    let text = |p: &Path| {
        let t = fs::read_to_string(p.join("package-lock.json")).unwrap();
        t.lines()
            .filter(|l| !l.trim_start().starts_with("\"resolved\":"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (ims_text, npm_text) = (text(&a), text(&c));
    let differing: Vec<(&str, &str)> =
        ims_text.lines().zip(npm_text.lines()).filter(|(x, y)| x != y).take(5).collect();
    assert_eq!(differing, vec![], "first differing lines (ims, npm)");
    assert_eq!(ims_text.lines().count(), npm_text.lines().count());

    // Resolved again from what the first install recorded, offline: the very same lockfile
    // text, `resolved` included (everything the lockfile needs survives the index).
    let d = dir.path().join("d");
    write_package_json(&d, &corpus);
    let (ims, source) = installer(&registry, &home, &d, &store, Network::Offline);
    ims.install(&[]).await.unwrap();
    let report = source.finish().await.unwrap();
    assert_eq!((report.fetched, report.not_modified), (0, 0));
    assert!(report.fresh > 0);
    assert_eq!(
        fs::read_to_string(d.join("package-lock.json")).unwrap(),
        fs::read_to_string(a.join("package-lock.json")).unwrap()
    );
}
