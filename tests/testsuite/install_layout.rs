//! End to end: install the corpus roots from a fixture npm registry on 127.0.0.1 into a fresh
//! project, compare the installed `node_modules` with npm's resolution, check the lockfile,
//! the bins and a no-op re-run, and (when Node is installed) that every root loads.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use fixtures::{Corpus, Registry};
use indexer::tarballs::TarballStore;
use installer::semver::parse_version;
use installer::{InstallOptions, Installer, Lockfile, PickOptions, Request, Save};
use serde_json::Value;

fn installer(
    registry: &Registry,
    project: &Path,
    store: &TarballStore,
) -> Installer<indexer::upstream::Registry> {
    let source =
        indexer::upstream::Registry::new(registry.url().parse().unwrap(), Default::default()).unwrap();
    let mut opts = InstallOptions::new(project, store.clone());
    // The corpus was resolved by npm 11.19.1 on Node 20.20.2.
    opts.pick = PickOptions {
        node_version: parse_version("20.20.2"),
        npm_version: parse_version("11.19.1"),
        ..PickOptions::default()
    };
    Installer::new(source.clone(), source, opts)
}

fn version_at(project: &Path, location: &str) -> Option<String> {
    let text = fs::read_to_string(project.join(location).join("package.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_install_matches_npm_and_reruns_as_noop() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    let deps: serde_json::Map<String, Value> =
        corpus.roots().iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let pkg = serde_json::json!({ "name": "app", "version": "1.0.0", "dependencies": deps });
    fs::write(project.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
    let store = TarballStore::open(dir.path().join("store")).unwrap();

    let first = installer(&registry, &project, &store);
    let report = first.install(&[]).await.unwrap();
    assert!(!report.from_lockfile);
    assert_eq!(report.packages, 229);
    // The progress counts a display polls agree with the report.
    let progress = &first.options().progress;
    let n = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(n(&progress.resolved), 229);
    assert_eq!(n(&progress.fetched), n(&progress.to_fetch));
    assert_eq!(n(&progress.linked), report.layout.linked);
    // fsevents is darwin-only and optional: left out on this platform, as npm does.
    if cfg!(target_os = "linux") {
        assert_eq!(report.skipped_optional, vec!["node_modules/fsevents".to_owned()]);
    }
    assert_eq!(report.layout.linked, 229 - report.skipped_optional.len());
    // Every installed tarball started downloading while the tree was being resolved, and the
    // registry served each once: what started early was not fetched again.
    let distinct: std::collections::BTreeSet<&str> = corpus
        .resolved()
        .iter()
        .filter(|n| !report.skipped_optional.contains(&n.path))
        .map(|n| n.integrity.as_str())
        .collect();
    assert!(
        report.early_tarballs >= distinct.len(),
        "{} of {} started early",
        report.early_tarballs,
        distinct.len()
    );
    let packuments = corpus.packuments().count();
    assert!(
        registry.total_hits() <= packuments + report.early_tarballs,
        "{} requests for {packuments} packuments and {} tarballs",
        registry.total_hits(),
        report.early_tarballs
    );

    // Every (location, version) npm resolved is installed there, and nothing else.
    for node in corpus.resolved() {
        if report.skipped_optional.contains(&node.path) {
            continue;
        }
        assert_eq!(version_at(&project, &node.path).as_deref(), Some(node.version.as_str()), "{}", node.path);
    }
    let top: Vec<String> = fs::read_dir(project.join("node_modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    let expected_top = corpus
        .resolved()
        .iter()
        .filter(|n| !n.path["node_modules/".len()..].contains("/node_modules/"))
        .filter(|n| !report.skipped_optional.contains(&n.path))
        .map(|n| n.name.split('/').next().unwrap_or("").to_owned())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(top.iter().cloned().collect::<std::collections::BTreeSet<_>>(), expected_top);

    // The lockfile records all 229 with npm's integrities.
    let lock = Lockfile::load(&project).unwrap().unwrap();
    let locked: BTreeMap<String, (String, Option<String>)> =
        lock.entries().into_iter().map(|e| (e.location, (e.version, e.integrity))).collect();
    assert_eq!(locked.len(), 229);
    for node in corpus.resolved() {
        assert_eq!(locked[&node.path], (node.version.clone(), Some(node.integrity.clone())), "{}", node.path);
    }

    // Bins are linked and executable.
    let semver_bin = project.join("node_modules/.bin/semver");
    assert!(fs::symlink_metadata(&semver_bin).unwrap().file_type().is_symlink());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(fs::metadata(&semver_bin).unwrap().permissions().mode() & 0o111, 0o111);
    }

    // Re-run with nothing changed: from the lockfile, nothing relinked.
    let again = installer(&registry, &project, &store).install(&[]).await.unwrap();
    assert!(again.from_lockfile);
    assert_eq!((again.layout.linked, again.layout.removed), (0, 0));

    // Node loads every root (skipped when Node is not installed).
    if Command::new("node").arg("--version").output().is_ok() {
        let roots: Vec<&String> = corpus.roots().keys().collect();
        let script =
            format!("for (const r of {}) {{ await import(r) }}", serde_json::to_string(&roots).unwrap());
        let out = Command::new("node")
            .args(["--input-type=module", "-e", &script])
            .current_dir(&project)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new(&semver_bin).arg("1.2.3").current_dir(&project).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.2.3");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_spec_saves_like_npm_and_no_save_does_not() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("package.json"), "{\n    \"name\": \"app\"\n}\n").unwrap();
    let store = TarballStore::open(dir.path().join("store")).unwrap();

    let mut i = installer(&registry, &project, &store);
    i.install(&[Request::parse("ms").unwrap()]).await.unwrap();
    let text = fs::read_to_string(project.join("package.json")).unwrap();
    let ms = version_at(&project, "node_modules/ms").unwrap();
    assert_eq!(
        text,
        format!(
            "{{\n    \"name\": \"app\",\n    \"dependencies\": {{\n        \"ms\": \"^{ms}\"\n    }}\n}}\n"
        )
    );

    let mut opts = i.options().clone();
    opts.save = Save::No;
    let source =
        indexer::upstream::Registry::new(registry.url().parse().unwrap(), Default::default()).unwrap();
    i = Installer::new(source.clone(), source, opts);
    i.install(&[Request::parse("semver@7").unwrap()]).await.unwrap();
    assert!(project.join("node_modules/semver/package.json").is_file());
    assert_eq!(fs::read_to_string(project.join("package.json")).unwrap(), text, "--no-save");

    // An unknown package is a clear error naming it.
    let err = i.install(&[Request::parse("no-such-package-xyz").unwrap()]).await.unwrap_err();
    assert!(err.to_string().contains("no-such-package-xyz"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_scripts_run_only_when_allowed() {
    let registry = Registry::start().await.unwrap();
    registry
        .publish(fixtures::Package::new("scripted", "1.0.0").script("postinstall", "echo ran > ran.txt"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("package.json"), r#"{"name":"app","dependencies":{"scripted":"1"}}"#).unwrap();
    let store = TarballStore::open(dir.path().join("store")).unwrap();

    let report = installer(&registry, &project, &store).install(&[]).await.unwrap();
    assert_eq!(report.scripts, vec!["scripted@1.0.0".to_owned()], "listed, not run");
    assert!(report.scripts_run.is_empty());
    assert!(!project.join("node_modules/scripted/ran.txt").exists());
    // Its scripts will not run, so it is hardlinked from the store like any other package.
    #[cfg(unix)]
    let store_manifest = {
        use std::os::unix::fs::MetadataExt as _;
        let lock = Lockfile::load(&project).unwrap().unwrap();
        let integrity = lock.entries()[0].integrity.clone().unwrap().parse().unwrap();
        let in_store = store.unpacked(&integrity).unwrap().join("package.json");
        let linked = fs::metadata(project.join("node_modules/scripted/package.json")).unwrap();
        assert_eq!(linked.ino(), fs::metadata(&in_store).unwrap().ino(), "not hardlinked");
        in_store
    };

    // Allowed by package.json: it runs (in a copy, so the store stays pristine).
    fs::write(
        project.join("package.json"),
        r#"{"name":"app","dependencies":{"scripted":"1"},"allowScripts":["scripted"]}"#,
    )
    .unwrap();
    fs::remove_dir_all(project.join("node_modules")).unwrap();
    let report = installer(&registry, &project, &store).install(&[]).await.unwrap();
    assert_eq!(report.scripts_run, vec!["scripted@1.0.0".to_owned()]);
    assert!(report.scripts.is_empty());
    assert_eq!(fs::read_to_string(project.join("node_modules/scripted/ran.txt")).unwrap().trim(), "ran");
    let lock = Lockfile::load(&project).unwrap().unwrap();
    let integrity = lock.entries()[0].integrity.clone().unwrap().parse().unwrap();
    assert!(!store.unpacked(&integrity).unwrap().join("ran.txt").exists(), "store untouched");
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let copied = fs::metadata(project.join("node_modules/scripted/package.json")).unwrap();
        assert_ne!(copied.ino(), fs::metadata(&store_manifest).unwrap().ino(), "a script ran in a hardlink");
    }
}
