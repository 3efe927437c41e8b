//! `ims update [NAME...]`: the named packages (all, when none is named) move to the newest
//! version their ranges allow, the others keep what the lockfile holds; `--save` writes the
//! new ranges (`^`/`~` kept) into `package.json` and the lockfile's root entry. `install NAME`
//! keeps what the lockfile holds for every package it does not name.

use std::fs;
use std::path::Path;

use fixtures::{Package, Registry};
use serde_json::Value;

use crate::support::{self, output};

fn run(home: &Path, registry: &str, project: &Path, args: &[&str]) {
    let mut cmd = support::ims(home);
    cmd.arg("--registry").arg(registry).args(args).arg("--prefix").arg(project);
    let out = output(&mut cmd);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn locked(project: &Path, name: &str) -> String {
    let lock: Value =
        serde_json::from_str(&fs::read_to_string(project.join("package-lock.json")).unwrap()).unwrap();
    lock["packages"][format!("node_modules/{name}")]["version"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_moves_what_is_named_and_keeps_the_rest() {
    let registry = Registry::start().await.unwrap();
    for name in ["up-a", "up-b"] {
        registry.publish(Package::new(name, "1.0.0")).unwrap();
    }
    registry.publish(Package::new("up-c", "1.0.0").dependency("up-b", "^1")).unwrap();
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let (home, project) = (dir.path().join("home"), dir.path().join("app"));
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("package.json"),
        r#"{"name":"app","version":"1.0.0","dependencies":{"up-a":"^1.0.0","up-b":"~1.0.0","up-c":"1"}}"#,
    )
    .unwrap();
    // A short max-age so the new versions are seen.
    let fresh = ["--packument-max-age", "0"];
    run(&home, &url, &project, &["install", fresh[0], fresh[1]]);
    for (name, version) in [("up-a", "1.1.0"), ("up-b", "1.0.1"), ("up-c", "1.1.0")] {
        let package = Package::new(name, version);
        let package = if name == "up-c" { package.dependency("up-b", "^1") } else { package };
        registry.publish(package).unwrap();
    }
    // A plain install keeps the lockfile: nothing moves.
    run(&home, &url, &project, &["install", fresh[0], fresh[1]]);
    assert_eq!(locked(&project, "up-a"), "1.0.0");
    // Adding a package (npm's `install NAME`) keeps what the lockfile holds for the rest.
    registry.publish(Package::new("up-d", "1.0.0")).unwrap();
    run(&home, &url, &project, &["install", "up-d", fresh[0], fresh[1]]);
    assert_eq!(locked(&project, "up-d"), "1.0.0");
    for name in ["up-a", "up-b", "up-c"] {
        assert_eq!(locked(&project, name), "1.0.0", "{name}: not named by install, kept as locked");
    }

    // So does an edited package.json (the lockfile is stale, not thrown away).
    let manifest = fs::read_to_string(project.join("package.json")).unwrap();
    let edited = manifest.replace(r#""up-c":"1""#, r#""up-c":"^1.0.0""#);
    assert_ne!(edited, manifest);
    fs::write(project.join("package.json"), edited).unwrap();
    run(&home, &url, &project, &["install", fresh[0], fresh[1]]);
    for name in ["up-a", "up-b", "up-c"] {
        assert_eq!(locked(&project, name), "1.0.0", "{name}: kept as locked after package.json changed");
    }
    fs::write(project.join("package.json"), manifest).unwrap();

    run(&home, &url, &project, &["update", "up-a", fresh[0], fresh[1]]);
    assert_eq!(locked(&project, "up-a"), "1.1.0", "named: moved");
    assert_eq!(locked(&project, "up-b"), "1.0.0", "not named: kept as locked");
    assert_eq!(locked(&project, "up-c"), "1.0.0");
    let pkg = fs::read_to_string(project.join("package.json")).unwrap();
    assert!(pkg.contains(r#""up-a":"^1.0.0""#), "no --save: package.json unchanged: {pkg}");

    run(&home, &url, &project, &["update", "--save", fresh[0], fresh[1]]);
    for (name, version) in [("up-a", "1.1.0"), ("up-b", "1.0.1"), ("up-c", "1.1.0")] {
        assert_eq!(locked(&project, name), version, "{name}: all move when none is named");
    }
    let pkg: Value =
        serde_json::from_str(&fs::read_to_string(project.join("package.json")).unwrap()).unwrap();
    assert_eq!(pkg["dependencies"]["up-a"], "^1.1.0");
    assert_eq!(pkg["dependencies"]["up-b"], "~1.0.1");
    assert_eq!(pkg["dependencies"]["up-c"], "1", "a range without ^ or ~ is left as written");
    let lock: Value =
        serde_json::from_str(&fs::read_to_string(project.join("package-lock.json")).unwrap()).unwrap();
    assert_eq!(lock["packages"][""]["dependencies"]["up-a"], "^1.1.0", "the lockfile's root entry follows");
    let installed: Value =
        serde_json::from_str(&fs::read_to_string(project.join("node_modules/up-a/package.json")).unwrap())
            .unwrap();
    assert_eq!(installed["version"], "1.1.0");
}
