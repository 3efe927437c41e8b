//! npm's `overrides` held against npm 11: `fixtures/projects/overrides` (a nested override with
//! `.`, a key range, a `$name` reference and an `npm:` alias, over packages published here
//! whose dependencies reach two levels down) and express with `ms` pinned, installed by real
//! npm and by ims from the same fixture registry: the same tree, the same lockfile bytes
//! (npm records no `overrides` and keeps each package's own specs), the same `ls` and `why`. Then `ims ci` and a second
//! install keep the overridden versions, a changed override makes the lockfile stale for both,
//! and EOVERRIDE and a `$name` the project lacks are refused with `node_modules` untouched.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::{Package, Registry};
use serde_json::Value;

use super::npm_parity::{assert_same_output, ims_install, npm_run, stderr};
use super::npm_projects::{copy_project, ims, read, tree};

/// The packages the overrides project depends on: `ov-top > ov-mid > ov-leaf` and
/// `ov-top > ov-other > ov-leaf`, `ov-pin`'s exact `ov-leaf`, `ov-uses-util`'s older
/// `ov-util`, and `ov-dep`, which the project replaces by `ov-alt`.
pub(super) fn publish(r: &Registry) {
    let p = |pkg: Package| r.publish(pkg).unwrap();
    for v in ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"] {
        p(Package::new("ov-leaf", v));
    }
    p(Package::new("ov-mid", "1.0.0").dependency("ov-leaf", "^1.0.0"));
    p(Package::new("ov-mid", "2.0.0").dependency("ov-leaf", "^2.0.0"));
    p(Package::new("ov-other", "1.0.0").dependency("ov-leaf", "^1.1.0"));
    p(Package::new("ov-pin", "1.0.0").dependency("ov-leaf", "1.0.0"));
    p(Package::new("ov-top", "1.0.0").dependency("ov-mid", "^1.0.0").dependency("ov-other", "^1.0.0"));
    p(Package::new("ov-util", "1.0.0"));
    p(Package::new("ov-util", "2.0.0"));
    p(Package::new("ov-uses-util", "1.0.0").dependency("ov-util", "^1.0.0"));
    p(Package::new("ov-dep", "1.0.0"));
    p(Package::new("ov-wants-dep", "1.0.0").dependency("ov-dep", "^1.0.0"));
    p(Package::new("ov-alt", "1.0.0"));
    p(Package::new("ov-alt", "3.0.0"));
}

/// npm and ims install the project at `<dir>/{npm,ims}`; the trees and lockfiles must match.
fn assert_same(dir: &Path, npm: &Path, ims_dir: &Path) {
    let out = npm_run(dir, npm, "install", &[]);
    assert!(out.status.success(), "npm install: {}", stderr(&out));
    let out = ims_install(dir, ims_dir, &[]);
    assert!(out.status.success(), "ims install: {}", stderr(&out));
    assert_eq!(tree(ims_dir), tree(npm), "the tree (left ims, right npm)");
    assert_eq!(
        read(&ims_dir.join("package-lock.json")),
        read(&npm.join("package-lock.json")),
        "package-lock.json (left ims, right npm)"
    );
}

fn has(project: &Path, path: &str, what: &str) -> bool {
    tree(project).contains(&(path.to_owned(), what.to_owned()))
}

fn edit(project: &Path, f: impl FnOnce(&mut Value)) {
    let path = project.join("package.json");
    let mut v: Value = serde_json::from_str(&read(&path)).unwrap();
    f(&mut v);
    fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn both(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (copy_project(dir, name, "npm"), copy_project(dir, name, "ims"))
}

#[test]
fn overrides_resolve_and_lock_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let (npm, ims_dir) = both(dir.path(), "overrides");
    assert_same(dir.path(), &npm, &ims_dir);
    // What the overrides did, so the test fails if both sides ignored them: ov-mid under ov-top
    // is 2.0.0 with its own ov-leaf 2.0.0; ov-pin's exact 1.0.0 became 1.1.0, deduped with
    // ov-other's; ov-uses-util takes the root's ov-util; ov-dep is ov-alt.
    assert!(has(&ims_dir, "node_modules/ov-mid", "ov-mid@2.0.0"));
    assert!(has(&ims_dir, "node_modules/ov-mid/node_modules/ov-leaf", "ov-leaf@2.0.0"));
    assert!(has(&ims_dir, "node_modules/ov-leaf", "ov-leaf@1.1.0"));
    assert!(has(&ims_dir, "node_modules/ov-dep", "ov-alt@3.0.0"));
    assert!(!ims_dir.join("node_modules/ov-uses-util/node_modules").exists());
    let lock: Value = serde_json::from_str(&read(&ims_dir.join("package-lock.json"))).unwrap();
    assert!(lock["packages"][""].get("overrides").is_none(), "npm 11 records no overrides");
    assert_eq!(lock["packages"]["node_modules/ov-pin"]["dependencies"]["ov-leaf"], "1.0.0");
    let out = Command::new("node")
        .args(["-e", "console.log(require('ov-dep'))"])
        .current_dir(&ims_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ov-alt@3.0.0");
    // `ims ls` reads the overridden tree as npm ls does: no invalid edges, the overridden
    // packages marked, the alias shown as one.
    for args in [&["ls", "--all"][..], &["ls", "--all", "--json"][..]] {
        assert_same_output(dir.path(), &ims_dir, args, args);
    }
    // `ims why` names the overridden edges: `overridden ov-mid@"2.0.0" (was "^1.0.0")`. (Only
    // packages with one copy and one dependent: npm's order among several follows the order
    // its parallel reads of node_modules finish in.)
    for name in ["ov-mid", "node_modules/ov-mid/node_modules/ov-leaf"] {
        assert_same_output(dir.path(), &ims_dir, &["explain", name], &["why", name]);
        assert_same_output(dir.path(), &ims_dir, &["explain", name, "--json"], &["why", name, "--json"]);
    }

    // Installing again from the lockfile keeps the overridden versions; so does `ims ci` on
    // npm's own lockfile.
    let before = tree(&ims_dir);
    let out = ims_install(dir.path(), &ims_dir, &[]);
    assert!(out.status.success(), "ims install again: {}", stderr(&out));
    assert_eq!(tree(&ims_dir), before);
    let out = ims(dir.path(), &npm, "ci", &[]);
    assert!(out.status.success(), "ims ci: {}", stderr(&out));
    assert_eq!(tree(&npm), before);

    // An override changed after the lockfile was written: npm ci and ims ci both refuse,
    // ims naming the package; node_modules stays as it was.
    for p in [&npm, &ims_dir] {
        edit(p, |v| v["overrides"]["ov-leaf@1.0.0"] = "1.2.0".into());
    }
    let out = npm_run(dir.path(), &npm, "ci", &[]);
    assert!(!out.status.success(), "npm ci took a stale lockfile");
    let out = ims(dir.path(), &ims_dir, "ci", &[]);
    assert!(!out.status.success(), "ims ci took a stale lockfile");
    let err = stderr(&out);
    assert!(err.contains("ov-leaf@1.1.0 does not satisfy ov-leaf@1.2.0"), "{err}");
    assert_eq!(tree(&ims_dir), before);
    // A plain install follows the new override as npm's does.
    let out = npm_run(dir.path(), &npm, "install", &[]);
    assert!(out.status.success(), "npm install: {}", stderr(&out));
    let out = ims_install(dir.path(), &ims_dir, &[]);
    assert!(out.status.success(), "ims install: {}", stderr(&out));
    assert_eq!(tree(&ims_dir), tree(&npm), "after the change (left ims, right npm)");
    assert!(has(&ims_dir, "node_modules/ov-leaf", "ov-leaf@1.2.0"));
    assert_eq!(read(&ims_dir.join("package-lock.json")), read(&npm.join("package-lock.json")));

    // The override dropped altogether: ov-pin's own exact spec no longer fits the lockfile.
    for p in [&npm, &ims_dir] {
        edit(p, |v| {
            v.as_object_mut().unwrap().remove("overrides");
        });
    }
    let out = npm_run(dir.path(), &npm, "ci", &[]);
    assert!(!out.status.success(), "npm ci took a stale lockfile");
    let out = ims(dir.path(), &ims_dir, "ci", &[]);
    assert!(!out.status.success(), "ims ci took a stale lockfile");
}

#[test]
fn a_transitive_pin_in_a_real_tree_matches_npm() {
    // express 4 reaches ms 2.0.0 through debug 2 and ms 2.1.3 through send: pinned to 2.1.3,
    // one copy is left, at the top.
    let dir = tempfile::tempdir().unwrap();
    let pkg = serde_json::json!({
        "name": "pinned",
        "version": "1.0.0",
        "dependencies": {"express": "^4.0.0"},
        "overrides": {"ms": "2.1.3"}
    });
    let sides: Vec<PathBuf> = ["npm", "ims"]
        .into_iter()
        .map(|s| {
            let p = dir.path().join(s);
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
            p
        })
        .collect();
    assert_same(dir.path(), &sides[0], &sides[1]);
    let ms: Vec<_> = tree(&sides[1]).into_iter().filter(|(p, _)| p.ends_with("/ms")).collect();
    assert_eq!(ms, vec![("node_modules/ms".to_owned(), "ms@2.1.3".to_owned())]);
}

#[test]
fn bad_overrides_are_refused_like_npm_and_node_modules_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (npm, ims_dir) = both(dir.path(), "overrides");
    for p in [&npm, &ims_dir] {
        fs::create_dir_all(p.join("node_modules/keep")).unwrap();
    }
    /// What is wrong, how package.json is changed, what ims must say.
    type Case = (&'static str, fn(&mut Value), &'static str);
    let cases: [Case; 3] = [
        // EOVERRIDE: the project asks for ov-util ^2.0.0 itself.
        (
            "EOVERRIDE",
            |v| v["overrides"]["ov-util"] = "2.0.0".into(),
            "override for ov-util@^2.0.0 conflicts with direct dependency",
        ),
        ("a $name the project lacks", |v| v["overrides"]["ov-dep"] = "$nope".into(), "$nope"),
        ("a null value", |v| v["overrides"]["ov-dep"] = Value::Null, "overrides.ov-dep"),
    ];
    let original = read(&npm.join("package.json"));
    for (what, change, message) in cases {
        for p in [&npm, &ims_dir] {
            fs::write(p.join("package.json"), &original).unwrap();
            edit(p, change);
        }
        let out = npm_run(dir.path(), &npm, "install", &[]);
        assert!(!out.status.success(), "{what}: npm installed");
        let out = ims_install(dir.path(), &ims_dir, &[]);
        assert!(!out.status.success(), "{what}: ims installed");
        let err = stderr(&out);
        assert!(err.contains(message), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(ims_dir.join("node_modules/keep").exists(), "{what}");
        assert!(!ims_dir.join("package-lock.json").exists(), "{what}");
    }
    // The same spec as the project's own, or `$name`, is no conflict.
    for spec in ["^2.0.0", "$ov-util"] {
        fs::write(ims_dir.join("package.json"), &original).unwrap();
        edit(&ims_dir, |v| v["overrides"]["ov-util"] = spec.into());
        let out = ims_install(dir.path(), &ims_dir, &[]);
        assert!(out.status.success(), "{spec}: {}", stderr(&out));
    }
}
