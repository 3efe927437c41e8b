//! Failed installs through the `ims` binary: each error names the dependency path that caused
//! it (`app > express > body-parser`) and gives a hint, and the `node_modules` of the previous
//! good install is left exactly as it was (Node still loads it), including when the failure
//! comes in the middle of fetching.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fixtures::{Corpus, Package, Registry};

use crate::support;

struct Setup {
    dir: tempfile::TempDir,
    project: PathBuf,
}

fn ims(dir: &Path, registry: &str, project: &Path, args: &[&str]) -> Output {
    support::output(support::ims_install(&dir.join("home"), registry, project).args(args).env("HOME", dir))
}

fn write_package_json(project: &Path, deps: &[(&str, &str)]) {
    let deps: serde_json::Map<String, serde_json::Value> =
        deps.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
    let pkg = serde_json::json!({ "name": "app", "version": "1.0.0", "dependencies": deps });
    fs::write(project.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
}

/// A project with a good install of `debug@2` (and its `ms`).
fn good_install(registry: &Registry) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    write_package_json(&project, &[("debug", "2")]);
    let out = ims(dir.path(), &registry.url(), &project, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_loads(&project);
    Setup { dir, project }
}

/// Every file under `node_modules` with its contents, plus the lockfile: what must survive.
fn snapshot(project: &Path) -> BTreeSet<(String, Vec<u8>)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![project.join("node_modules")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(project).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.file_type().is_symlink() {
                out.insert((rel, fs::read_link(&p).unwrap().display().to_string().into_bytes()));
            } else {
                out.insert((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.insert(("package-lock.json".into(), fs::read(project.join("package-lock.json")).unwrap()));
    out
}

fn assert_loads(project: &Path) {
    let out = Command::new("node")
        .args(["-e", "require('debug')('app')('ok'); require('ms')"])
        .current_dir(project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Run the failing install and check the message parts and that nothing changed.
fn assert_fails_cleanly(s: &Setup, registry: &str, args: &[&str], parts: &[&str]) -> String {
    let before = snapshot(&s.project);
    let out = ims(s.dir.path(), registry, &s.project, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the install succeeded:\n{err}");
    for part in parts {
        assert!(err.contains(part), "{part:?} not in:\n{err}");
    }
    assert!(err.lines().any(|l| l.starts_with("hint: ")), "no hint in:\n{err}");
    assert!(snapshot(&s.project) == before, "node_modules or the lockfile changed:\n{err}");
    assert_loads(&s.project);
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_package_deep_in_the_tree_names_its_path() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let s = good_install(&registry);
    registry.unpublish("body-parser");
    write_package_json(&s.project, &[("debug", "2"), ("express", "4")]);
    assert_fails_cleanly(
        &s,
        &registry.url(),
        &[],
        &["app > express > body-parser", "package body-parser does not exist", "npm view body-parser"],
    );
    // A SPEC on the command line: named too, and package.json is not touched.
    let pkg = fs::read_to_string(s.project.join("package.json")).unwrap();
    assert_fails_cleanly(&s, &registry.url(), &["left-padz@1"], &["app > left-padz", "does not exist"]);
    assert_eq!(fs::read_to_string(s.project.join("package.json")).unwrap(), pkg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_matching_version_names_its_path() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    registry.publish(Package::new("wrapper", "1.0.0").dependency("ms", "^99.1")).unwrap();
    let s = good_install(&registry);
    write_package_json(&s.project, &[("debug", "2"), ("wrapper", "1")]);
    assert_fails_cleanly(
        &s,
        &registry.url(),
        &[],
        &["app > wrapper > ms", "no version of ms matches \"^99.1\"", "npm view ms versions"],
    );
}

/// The registry serves a tarball whose bytes do not match its packument's integrity, among
/// the many tarballs of express: the install fails while fetching, naming the package's path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrity_mismatch_while_fetching_leaves_node_modules_usable() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let s = good_install(&registry);
    registry.add_tarball("body-parser", "1.20.9", b"not the promised bytes".to_vec());
    write_package_json(&s.project, &[("debug", "2"), ("express", "4")]);
    assert_fails_cleanly(
        &s,
        &registry.url(),
        &[],
        &[
            "app > express > body-parser",
            "body-parser@1.20.9 fails its integrity check",
            "integrity mismatch",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_registry_port_is_named_with_a_hint() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let s = good_install(&registry);
    let (url, addr) = (registry.url(), registry.local_addr());
    drop(registry);
    // The server stops asynchronously: wait until the port refuses connections.
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // debug is in the local index (recorded by the good install, still fresh); semver is not,
    // so it is the one that needs the registry.
    write_package_json(&s.project, &[("debug", "2"), ("semver", "7")]);
    let err =
        assert_fails_cleanly(&s, &url, &[], &["app > semver", "cannot reach the registry", "--offline"]);
    assert!(err.contains(&url), "{err}");
}
