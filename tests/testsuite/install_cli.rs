//! The `ims install` binary against a fixture registry on 127.0.0.1: SPEC install with
//! `-E`, the summary on stderr, and a clear error for an unknown package.

use std::fs;

use fixtures::{Corpus, Registry};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ims_install_spec_from_registry() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("package.json"), "{\n  \"name\": \"app\"\n}\n").unwrap();
    let run = |args: &[&str]| {
        support::output(support::ims_install(&dir.path().join("home"), &registry.url(), &project).args(args))
    };
    let out = run(&["-E", "debug@2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pkg = fs::read_to_string(project.join("package.json")).unwrap();
    let debug: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(project.join("node_modules/debug/package.json")).unwrap())
            .unwrap();
    let version = debug["version"].as_str().unwrap();
    assert!(version.starts_with("2."), "{version}");
    assert_eq!(
        pkg,
        format!("{{\n  \"name\": \"app\",\n  \"dependencies\": {{\n    \"debug\": \"{version}\"\n  }}\n}}\n")
    );
    assert!(project.join("node_modules/ms/package.json").is_file(), "debug's dependency");
    assert!(project.join("package-lock.json").is_file());
    assert!(String::from_utf8_lossy(&out.stderr).contains("linked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_package_is_a_clear_error() {
    let registry = Registry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = registry.url();
    let home = dir.path().join("home");
    let prefix = dir.path().to_path_buf();
    let out = tokio::task::block_in_place(move || {
        support::ims_install(&home, &url, &prefix).arg("left-padz").output().unwrap()
    });
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("left-padz") && err.contains("does not exist"), "{err}");
}

/// `--offline` after an online install: a fresh project installs from the local index and the
/// store with the registry shut down; a package never fetched is named as unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_install_uses_only_what_is_local() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = |name: &str| {
        let p = dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("package.json"), "{\n  \"name\": \"app\"\n}\n").unwrap();
        p
    };
    let install = |prefix: &std::path::Path, registry: &str, offline: bool, spec: &str| {
        let mut cmd = support::ims(&home);
        cmd.arg("--registry").arg(registry);
        if offline {
            cmd.arg("--offline");
        }
        cmd.arg("install").arg("--prefix").arg(prefix).arg(spec);
        support::output(&mut cmd)
    };
    let online = project("online");
    let out = install(&online, &url, false, "debug@2");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(home.join("index/log").is_file(), "what was fetched is recorded in the local index");
    drop(registry);

    let fresh = project("fresh");
    let out = install(&fresh, &url, true, "debug@2");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(fresh.join("node_modules/debug/package.json").is_file());
    assert!(fresh.join("node_modules/ms/package.json").is_file());
    assert_eq!(
        fs::read_to_string(fresh.join("package-lock.json")).unwrap(),
        fs::read_to_string(online.join("package-lock.json")).unwrap()
    );

    let missing = project("missing");
    let out = install(&missing, &url, true, "semver@7");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("semver") && err.contains("not available offline"), "{err}");
    assert!(!missing.join("node_modules/semver").exists());
}
