//! The real-world corpus (`fixtures/realworld/`): `ims install` of a real project's
//! `package.json` (webpack, jest, eslint, typescript, ...: 442 placements) from the fixture
//! registry places exactly what npm's committed `package-lock.json` places, and reports how many
//! sequential packument request rounds its resolution took.

use std::collections::BTreeMap;
use std::fs;

use fixtures::{Corpus, Registry};
use serde_json::Value;

use crate::support::{ims_install, output};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realworld_install_places_what_npm_places() {
    let corpus = Corpus::realworld().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    fs::copy(Corpus::realworld_dir().join("package.json"), project.join("package.json")).unwrap();

    let out = output(
        ims_install(&dir.path().join("home"), &registry.url(), &project)
            .env("npm_config_node_version", "20.20.2"),
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // npm's placements (location -> version), without the optional packages for other platforms.
    let darwin_only = ["node_modules/fsevents"];
    let expected: BTreeMap<&str, &str> = corpus
        .resolved()
        .iter()
        .filter(|n| !(cfg!(target_os = "linux") && darwin_only.contains(&n.path.as_str())))
        .map(|n| (n.path.as_str(), n.version.as_str()))
        .collect();
    let lock: Value = serde_json::from_slice(&fs::read(project.join("package-lock.json")).unwrap()).unwrap();
    let got: BTreeMap<String, String> = lock["packages"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.is_empty() && !darwin_only.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v["version"].as_str().unwrap_or("").to_owned()))
        .collect();
    let got: BTreeMap<&str, &str> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let missing: Vec<_> = expected.iter().filter(|(k, v)| got.get(*k) != Some(*v)).collect();
    let extra: Vec<_> = got.iter().filter(|(k, v)| expected.get(*k) != Some(*v)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "npm places but ims does not: {missing:?}\nims places but npm does not: {extra:?}"
    );
    // What is installed is what the lockfile says.
    for (location, version) in &expected {
        let pkg: Value =
            serde_json::from_slice(&fs::read(project.join(location).join("package.json")).unwrap()).unwrap();
        assert_eq!(pkg["version"].as_str(), Some(*version), "{location}");
    }
    let stats = registry.stats();
    let mut asked: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &stats.packuments {
        *asked.entry(r.name.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = asked.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "packuments asked more than once: {twice:?}");
    tracing::info!(
        requests = stats.packuments.len(),
        rounds = stats.round_count(),
        bytes = stats.packument_bytes,
        "realworld packuments"
    );
}
