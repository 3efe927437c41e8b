//! The projects people have, held against npm 11: a monorepo of workspaces and a project with
//! local folders (`fixtures/projects/`), installed by real npm and by ims from the same
//! fixture registry. The trees must be the same — every package folder's path, name and
//! version, every link and where it points — and so must the lockfiles, byte for byte. Then
//! `ims ci` installs npm's own lockfile to the same tree, and what users run works: Node
//! loads the workspaces through their links, a workspace's bin runs.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::npm_parity::{ims_install, isolated, npm_run, registry_url, stderr};
use crate::support;

/// Copy `fixtures/projects/<name>` (every file) to `<dir>/<side>`; returns the copy.
pub(super) fn copy_project(dir: &Path, name: &str, side: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let dest = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &dest);
            } else {
                fs::copy(entry.path(), &dest).unwrap();
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/projects").join(name);
    let dest = dir.join(side);
    copy(&src, &dest);
    dest
}

/// Every package folder and link under the project's `node_modules` folders (the root's and
/// its folders'), as `(path, name@version or "-> target")`, links not followed.
pub(super) fn tree(project: &Path) -> BTreeSet<(String, String)> {
    fn walk(project: &Path, dir: &Path, out: &mut BTreeSet<(String, String)>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            let file = entry.file_name().to_string_lossy().into_owned();
            let rel = path.strip_prefix(project).unwrap().to_string_lossy().into_owned();
            let kind = entry.file_type().unwrap();
            if file.starts_with('.') && file != ".bin" {
                continue;
            }
            if kind.is_symlink() {
                out.insert((rel, format!("-> {}", fs::read_link(&path).unwrap().display())));
            } else if file == ".bin" || file.starts_with('@') {
                walk(project, &path, out);
            } else if kind.is_dir() {
                if let Ok(text) = fs::read_to_string(path.join("package.json")) {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    out.insert((rel, format!("{}@{}", field("name"), field("version"))));
                }
                walk(project, &path.join("node_modules"), out);
            }
        }
    }
    fn folders(project: &Path, dir: &Path, out: &mut BTreeSet<(String, String)>, depth: usize) {
        // The node_modules of the project's own folders (workspaces, vendor/…).
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type().unwrap().is_dir() || name.starts_with('.') {
                continue;
            }
            if name == "node_modules" {
                walk(project, &entry.path(), out);
            } else if depth < 4 {
                folders(project, &entry.path(), out, depth + 1);
            }
        }
    }
    let mut out = BTreeSet::new();
    folders(project, project, &mut out, 0);
    out
}

pub(super) fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(super) fn ims(dir: &Path, project: &Path, command: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = support::ims(&dir.join("ims-home"));
    cmd.arg("--registry").arg(registry_url()).arg(command).arg("--prefix").arg(project).args(extra);
    isolated(&mut cmd, dir);
    cmd.output().unwrap()
}

/// npm and ims install `fixtures/projects/<name>` (the project folder is `<sub>` inside it);
/// the trees and lockfiles must be the same. Returns (npm's project, ims's project).
pub(super) fn assert_same_install(dir: &Path, name: &str, sub: &str) -> (PathBuf, PathBuf) {
    let npm = copy_project(dir, name, "npm").join(sub);
    let out = npm_run(dir, &npm, "install", &[]);
    assert!(out.status.success(), "npm install {name}: {}", stderr(&out));
    let ims_dir = copy_project(dir, name, "ims").join(sub);
    let out = ims_install(dir, &ims_dir, &[]);
    assert!(out.status.success(), "ims install {name}: {}", stderr(&out));
    let (want, got) = (tree(&npm), tree(&ims_dir));
    assert!(want.iter().any(|(_, what)| what.starts_with("->")), "{name}: npm made no links: {want:?}");
    assert_eq!(got, want, "{name}: the tree (left ims, right npm)");
    assert_eq!(
        read(&ims_dir.join("package-lock.json")),
        read(&npm.join("package-lock.json")),
        "{name}: package-lock.json (left ims, right npm)"
    );
    (npm, ims_dir)
}

#[test]
fn a_monorepo_of_workspaces_installs_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let (npm, ims_dir) = assert_same_install(dir.path(), "monorepo", "");
    // The workspaces work as npm's do: `a` loads `b` through the links, c's bin runs.
    let out = Command::new("node")
        .args(["-e", "console.log(require('a'))"])
        .current_dir(&ims_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "a:b:1m");
    let out = Command::new(ims_dir.join("node_modules/.bin/cbin")).output().unwrap();
    assert!(out.status.success(), "cbin: {}", stderr(&out));

    // `ims ci` on npm's own lockfile: the same tree, from scratch.
    let before = tree(&npm);
    let out = ims(dir.path(), &npm, "ci", &[]);
    assert!(out.status.success(), "ims ci: {}", stderr(&out));
    assert_eq!(tree(&npm), before);

    // A workspace whose package.json changed makes the lockfile stale: ci names it.
    let b = npm.join("packages/b/package.json");
    fs::write(&b, read(&b).replace("\"ms\": \"2.0.0\"", "\"ms\": \"2.1.3\"")).unwrap();
    let out = ims(dir.path(), &npm, "ci", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("packages/b"), "{}", stderr(&out));
}

#[test]
fn local_folders_link_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let (npm, ims_dir) = assert_same_install(dir.path(), "local-deps", "app");
    // npm installs nothing into a folder outside the project, and neither does ims.
    assert!(!ims_dir.join("../local-lib/node_modules").exists());
    let out = Command::new("node")
        .args(["-e", "console.log(require('local-lib'), require('inner'))"])
        .current_dir(&ims_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "local-lib 1s");
    let before = tree(&npm);
    let out = ims(dir.path(), &npm, "ci", &[]);
    assert!(out.status.success(), "ims ci: {}", stderr(&out));
    assert_eq!(tree(&npm), before);
    // --omit=dev leaves the dev-only folder's link out.
    let out = ims(dir.path(), &npm, "ci", &["--omit=dev"]);
    assert!(out.status.success(), "ims ci --omit=dev: {}", stderr(&out));
    assert!(fs::symlink_metadata(npm.join("node_modules/dlib")).is_err());
    assert!(npm.join("node_modules/inner").exists());
}

#[test]
fn bad_workspaces_and_paths_are_named_and_node_modules_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let project = copy_project(dir.path(), "monorepo", "p");
    fs::create_dir_all(project.join("node_modules/keep")).unwrap();
    let pkg = project.join("package.json");
    let text = read(&pkg);

    fs::write(&pkg, text.replace("\"packages/*\"", "\"packages/*\", \"libs/*\"")).unwrap();
    let out = ims(dir.path(), &project, "install", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("libs/*"), "{}", stderr(&out));
    assert!(project.join("node_modules/keep").exists());

    fs::write(&pkg, text.replace("\"ms\": \"^2.1.0\"", "\"gone\": \"file:../gone\"")).unwrap();
    let out = ims(dir.path(), &project, "install", &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("file:../gone") && err.contains("does not exist"), "{err}");
    assert!(project.join("node_modules/keep").exists());
}

#[test]
fn a_lockfile_link_the_project_does_not_declare_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let project = copy_project(dir.path(), "local-deps", "p").join("app");
    let out = ims_install(dir.path(), &project, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A planted link entry pointing anywhere: ims links only folders package.json names.
    let lock = project.join("package-lock.json");
    let mut v: Value = serde_json::from_str(&read(&lock)).unwrap();
    v["packages"]["node_modules/inner"]["resolved"] = Value::from("../../../../etc");
    v["packages"]["../../../../etc"] = serde_json::json!({"version": "1.0.0"});
    fs::write(&lock, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let out = ims(dir.path(), &project, "ci", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("../../../../etc"), "{}", stderr(&out));
}

/// `-w NAME` as npm does it: `install -w a SPEC` saves into the workspace's package.json,
/// `uninstall -w a NAME` removes from it, `ci -w b` lays out only what b reaches; each time
/// the same package.json, lockfile and tree as npm's.
#[test]
fn workspace_flags_act_on_the_named_workspace_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let (npm, ims_dir) = assert_same_install(dir.path(), "monorepo", "");
    let same = |what: &str| {
        assert_eq!(tree(&ims_dir), tree(&npm), "{what}: the tree (left ims, right npm)");
        assert_eq!(
            read(&ims_dir.join("package-lock.json")),
            read(&npm.join("package-lock.json")),
            "{what}: package-lock.json (left ims, right npm)"
        );
        let pkg =
            |p: &Path| -> Value { serde_json::from_str(&read(&p.join("packages/a/package.json"))).unwrap() };
        assert_eq!(pkg(&ims_dir), pkg(&npm), "{what}: packages/a/package.json");
    };
    for (command, args) in
        [("install", &["-w", "a", "semver@7"][..]), ("uninstall", &["-w", "a", "debug"][..])]
    {
        let out = npm_run(dir.path(), &npm, command, args);
        assert!(out.status.success(), "npm {command}: {}", stderr(&out));
        let out = ims(dir.path(), &ims_dir, command, args);
        assert!(out.status.success(), "ims {command}: {}", stderr(&out));
        same(&format!("{command} {args:?}"));
    }
    for side in [&npm, &ims_dir] {
        fs::remove_dir_all(side.join("node_modules")).unwrap();
        let _ = fs::remove_dir_all(side.join("packages/b/node_modules"));
    }
    let out = npm_run(dir.path(), &npm, "ci", &["-w", "b"]);
    assert!(out.status.success(), "npm ci -w b: {}", stderr(&out));
    let out = ims(dir.path(), &ims_dir, "ci", &["-w", "b"]);
    assert!(out.status.success(), "ims ci -w b: {}", stderr(&out));
    same("ci -w b");
    assert!(fs::symlink_metadata(ims_dir.join("node_modules/a")).is_err(), "ci -w b linked a");
    // A workspace that does not exist is npm's error.
    let out = ims(dir.path(), &ims_dir, "install", &["-w", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}
