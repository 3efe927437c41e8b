//! Attacks from a hostile project: see `SECURITY.md`. A cloned repository brings its own
//! `package-lock.json`, hidden lockfile (`node_modules/.package-lock.json`), symlinks and
//! `.npmrc`; a plain `ims install` in it must not write, chmod or delete anything outside its
//! `node_modules`, fetch from hosts the user did not configure, or run scripts the user allowed
//! for another package.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;
use std::process::Output;

use fixtures::{Package, Registry};
use serde_json::{Value, json};

use crate::support;

/// Everything under `dir`: path → mode and contents (a link's target, `dir` for folders).
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        let Ok(entries) = fs::read_dir(at) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let mode = meta.permissions().mode();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, (mode, target.display().to_string().into_bytes()));
            } else if meta.is_dir() {
                out.insert(rel, (mode, b"dir".to_vec()));
                walk(root, &path, out);
            } else {
                out.insert(rel, (mode, fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A folder outside the project with things worth keeping: a folder, a file, a script.
fn outside(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("outside");
    fs::create_dir_all(out.join("precious")).unwrap();
    fs::write(out.join("precious/data.txt"), "keep me").unwrap();
    fs::write(out.join("target.sh"), "#!/bin/sh\necho mine\n").unwrap();
    fs::set_permissions(out.join("target.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    out
}

/// A project with `dependencies` in package.json, and the same in a committed lockfile whose
/// `packages` are `entries` (the root entry is added).
fn project(dir: &Path, dependencies: Value, entries: Value) -> std::path::PathBuf {
    let project = dir.join("app");
    fs::create_dir_all(&project).unwrap();
    let pkg = json!({ "name": "app", "version": "1.0.0", "dependencies": dependencies });
    fs::write(project.join("package.json"), pkg.to_string()).unwrap();
    write_lock(&project.join("package-lock.json"), &dependencies, entries);
    project
}

fn write_lock(path: &Path, dependencies: &Value, entries: Value) {
    let mut packages = serde_json::Map::new();
    packages.insert("".into(), json!({ "name": "app", "version": "1.0.0", "dependencies": dependencies }));
    packages.extend(entries.as_object().unwrap().clone());
    let lock = json!({ "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": packages });
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
}

/// The lockfile entry of `name@version` as the registry serves it.
fn entry(registry: &Registry, name: &str, version: &str) -> Value {
    json!({
        "version": version,
        "resolved": format!("{}{name}/-/{}-{version}.tgz", registry.url(), name.rsplit('/').next().unwrap()),
        "integrity": registry.integrity_of(name, version).unwrap(),
    })
}

fn install(home: &Path, registry: &Registry, project: &Path, args: &[&str]) -> Output {
    support::output(support::ims_install(home, &registry.url(), project).args(args))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The attack of the issue, as reproduced: a committed `node_modules/link -> <outside>`, a
/// lockfile entry `node_modules/link/payload` and a hidden lockfile listing
/// `node_modules/link/precious`. ims used to delete `<outside>/precious` and write the package
/// into `<outside>/payload`; now each crafted entry is a clear error naming it, and nothing
/// outside changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_symlink_with_crafted_lockfiles_cannot_write_or_delete_outside() {
    let registry = Registry::start().await.unwrap();
    registry.publish(Package::new("victim", "1.0.0").file("index.js", b"module.exports = 1;\n")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outside = outside(dir.path());
    let before = snapshot(&outside);
    let home = dir.path().join("home");

    let deps = json!({ "victim": "1.0.0" });
    let project = project(
        dir.path(),
        deps.clone(),
        json!({
            "node_modules/victim": entry(&registry, "victim", "1.0.0"),
            "node_modules/link/payload": entry(&registry, "victim", "1.0.0"),
        }),
    );
    fs::create_dir_all(project.join("node_modules")).unwrap();
    symlink(&outside, project.join("node_modules/link")).unwrap();
    let hidden = project.join("node_modules/.package-lock.json");
    write_lock(&hidden, &deps, json!({ "node_modules/link/precious": entry(&registry, "victim", "1.0.0") }));

    let out = install(&home, &registry, &project, &[]);
    assert!(!out.status.success(), "the crafted lockfile was accepted");
    let err = stderr(&out);
    assert!(err.contains("node_modules/link/payload") && err.contains("package-lock.json"), "{err}");
    assert_eq!(snapshot(&outside), before, "something outside the project changed");

    // With a clean package-lock.json, the hidden lockfile's crafted entry is refused in turn.
    write_lock(
        &project.join("package-lock.json"),
        &deps,
        json!({ "node_modules/victim": entry(&registry, "victim", "1.0.0") }),
    );
    let out = install(&home, &registry, &project, &[]);
    assert!(!out.status.success(), "the crafted hidden lockfile was accepted");
    let err = stderr(&out);
    assert!(err.contains("node_modules/link/precious") && err.contains(".package-lock.json"), "{err}");
    assert_eq!(snapshot(&outside), before, "something outside the project changed");

    // Once the hidden lockfile is gone the install works; the committed link is left alone.
    fs::remove_file(&hidden).unwrap();
    let out = install(&home, &registry, &project, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(project.join("node_modules/victim/index.js").is_file());
    assert_eq!(snapshot(&outside), before, "something outside the project changed");
}

/// Locations that are valid `node_modules` chains can still pass through a committed link
/// (`node_modules/@link -> <outside>` makes `node_modules/@link/payload` land outside): every
/// write and removal checks the folders on its way, and refuses a link among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_locations_through_a_committed_link_are_refused() {
    let registry = Registry::start().await.unwrap();
    registry.publish(Package::new("victim", "1.0.0")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outside = outside(dir.path());
    let before = snapshot(&outside);
    let home = dir.path().join("home");
    let deps = json!({ "victim": "1.0.0" });
    let project = project(
        dir.path(),
        deps.clone(),
        json!({
            "node_modules/victim": entry(&registry, "victim", "1.0.0"),
            "node_modules/@link/payload": entry(&registry, "victim", "1.0.0"),
            "node_modules/victim/node_modules/nested": entry(&registry, "victim", "1.0.0"),
        }),
    );
    fs::create_dir_all(project.join("node_modules")).unwrap();
    symlink(&outside, project.join("node_modules/@link")).unwrap();
    let out = install(&home, &registry, &project, &[]);
    assert!(!out.status.success(), "wrote through node_modules/@link");
    let err = stderr(&out);
    assert!(err.contains("symbolic link") && err.contains("@link"), "{err}");
    assert_eq!(snapshot(&outside), before, "something outside the project changed");

    // The same through the hidden lockfile: a removal below the link is refused.
    write_lock(
        &project.join("package-lock.json"),
        &deps,
        json!({ "node_modules/victim": entry(&registry, "victim", "1.0.0") }),
    );
    write_lock(
        &project.join("node_modules/.package-lock.json"),
        &deps,
        json!({ "node_modules/@link/precious": entry(&registry, "victim", "1.0.0") }),
    );
    let out = install(&home, &registry, &project, &[]);
    assert!(!out.status.success(), "removed through node_modules/@link");
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(snapshot(&outside), before, "something outside the project changed");

    // A package folder that is a committed link (as `npm link` leaves) is replaced by the
    // package, the link removed itself and its target untouched.
    fs::remove_file(project.join("node_modules/@link")).unwrap();
    fs::remove_file(project.join("node_modules/.package-lock.json")).unwrap();
    let _ = fs::remove_dir_all(project.join("node_modules/victim"));
    symlink(&outside, project.join("node_modules/victim")).unwrap();
    let out = install(&home, &registry, &project, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!fs::symlink_metadata(project.join("node_modules/victim")).unwrap().file_type().is_symlink());
    assert!(project.join("node_modules/victim/package.json").is_file());
    assert_eq!(snapshot(&outside), before, "something outside the project changed");
}

/// A committed `node_modules -> <outside>` is refused before anything is written (npm and
/// pnpm refuse it too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_node_modules_is_refused() {
    let registry = Registry::start().await.unwrap();
    registry.publish(Package::new("victim", "1.0.0")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outside = outside(dir.path());
    let project = project(
        dir.path(),
        json!({ "victim": "1.0.0" }),
        json!({ "node_modules/victim": entry(&registry, "victim", "1.0.0") }),
    );
    symlink(&outside, project.join("node_modules")).unwrap();
    let before = snapshot(&outside);
    let out = install(&dir.path().join("home"), &registry, &project, &[]);
    assert!(!out.status.success(), "installed into a symlinked node_modules");
    let err = stderr(&out);
    assert!(err.contains("symbolic link") && err.contains("node_modules"), "{err}");
    assert_eq!(snapshot(&outside), before, "something outside the project changed");
}

/// Lockfile keys that are not `node_modules/<name>` chains — an empty segment giving an
/// absolute bin target (`node_modules//usr/bin`), `..`, a backslash, a name npm would not
/// publish — are each a clear error naming the entry, before any fetch or write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockfile_locations_outside_node_modules_are_errors_naming_the_entry() {
    let registry = Registry::start().await.unwrap();
    registry
        .publish(Package::new("victim", "1.0.0").bin("victim", "cli.js").file("cli.js", b"#!/bin/sh\n"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let deps = json!({ "victim": "1.0.0" });
    for bad in [
        "node_modules//usr/bin",
        "node_modules/victim/../../../escape",
        "node_modules/a\\..\\..\\escape",
        "node_modules/.bin",
        "packages/x/node_modules/victim",
    ] {
        let project = project(dir.path(), deps.clone(), json!({ bad: entry(&registry, "victim", "1.0.0") }));
        let out = install(&home, &registry, &project, &[]);
        assert!(!out.status.success(), "{bad} was accepted");
        let err = stderr(&out);
        assert!(err.contains(&format!("{bad:?}")) || err.contains(bad), "{bad}: {err}");
        assert!(!project.join("node_modules").exists(), "{bad}: node_modules was written");
        assert!(!dir.path().join("escape").exists() && !Path::new("/usr/bin/victim").exists());
        fs::remove_dir_all(&project).unwrap();
    }
    assert_eq!(registry.total_hits(), 0, "nothing was fetched for a refused lockfile");
}

/// A hidden lockfile can make ims trust a committed package folder as "already installed":
/// its bin target, a link to a file outside, used to be chmodded 0755 through the link. Bin
/// targets are now reached without following links (skipped otherwise), and names and targets
/// that leave the package are sanitised as npm's bin-links does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bin_targets_and_names_cannot_leave_the_package() {
    let registry = Registry::start().await.unwrap();
    registry
        .publish(Package::new("tool", "1.0.0").bin("tool", "cli.js").file("cli.js", b"#!/bin/sh\n"))
        .unwrap();
    registry.publish(Package::new("victim", "1.0.0")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outside = outside(dir.path());
    let before = snapshot(&outside);
    let deps = json!({ "tool": "1.0.0", "victim": "1.0.0" });
    let mut tool = entry(&registry, "tool", "1.0.0");
    tool["bin"] = json!({
        "tool": "cli.js",
        "../../../../../escape-name": "cli.js",
        "other": format!("../../../../../../../../{}", outside.join("target.sh").display()),
    });
    let project = project(
        dir.path(),
        deps.clone(),
        json!({ "node_modules/tool": tool.clone(), "node_modules/victim": entry(&registry, "victim", "1.0.0") }),
    );
    // The committed "installed" tool: a real folder whose bin is a link to a file outside.
    let committed = project.join("node_modules/tool");
    fs::create_dir_all(&committed).unwrap();
    fs::write(committed.join("package.json"), r#"{"name":"tool","version":"1.0.0"}"#).unwrap();
    symlink(outside.join("target.sh"), committed.join("cli.js")).unwrap();
    write_lock(&project.join("node_modules/.package-lock.json"), &deps, json!({ "node_modules/tool": tool }));

    let out = install(&dir.path().join("home"), &registry, &project, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(snapshot(&outside), before, "a file outside was chmodded or written");
    let bin = project.join("node_modules/.bin");
    assert!(fs::symlink_metadata(bin.join("tool")).is_err(), "a bin linked to a file outside");
    assert!(!dir.path().join("escape-name").exists() && !project.join("escape-name").exists());
    let names: Vec<String> = fs::read_dir(&bin)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(names.iter().all(|n| !n.contains('/') && n != ".."), "{names:?}");
}

/// A lockfile's `resolved` URL on a host that is not the configured registry is not fetched
/// (a clear error naming the entry, the URL and the setting that allows it); with
/// `--allow-tarball-host` it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockfile_urls_are_fetched_only_from_the_registry_unless_allowed() {
    let honest = Registry::start().await.unwrap();
    honest.publish(Package::new("victim", "1.0.0")).unwrap();
    let evil = Registry::start().await.unwrap();
    evil.publish(Package::new("victim", "1.0.0").file("evil.js", b"pwned")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = project(
        dir.path(),
        json!({ "victim": "1.0.0" }),
        json!({ "node_modules/victim": entry(&evil, "victim", "1.0.0") }),
    );
    let out = install(&home, &honest, &project, &[]);
    assert!(!out.status.success(), "fetched from a host the user did not configure");
    let err = stderr(&out);
    let evil_host = evil.local_addr().to_string();
    assert!(err.contains("node_modules/victim") && err.contains(&evil_host), "{err}");
    assert!(err.contains("--allow-tarball-host"), "{err}");
    assert_eq!(evil.total_hits(), 0, "the foreign host was contacted");
    assert!(!project.join("node_modules/victim").exists());

    let out = install(&home, &honest, &project, &["--allow-tarball-host", &evil_host]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(project.join("node_modules/victim/evil.js").is_file(), "the user allowed that host");
}

/// The install-scripts allow-list is matched against the package's registry identity, not
/// the name a lockfile entry gives itself: an entry calling itself `trusted` (allowed in
/// package.json) but carrying another package's bytes does not get its scripts run; the real
/// `trusted` from the same kind of lockfile does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockfile_name_does_not_grant_scripts() {
    let registry = Registry::start().await.unwrap();
    registry
        .publish(Package::new("trusted", "1.0.0").script("postinstall", "echo trusted > ran.txt"))
        .unwrap();
    registry.publish(Package::new("evil", "1.0.0").script("postinstall", "echo evil > ran.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let deps = json!({ "trusted": "1.0.0" });
    let mut claimed = entry(&registry, "evil", "1.0.0");
    claimed["version"] = json!("1.0.0");
    claimed["hasInstallScript"] = json!(true);
    let project = project(dir.path(), deps.clone(), json!({ "node_modules/trusted": claimed }));
    let mut pkg: Value =
        serde_json::from_str(&fs::read_to_string(project.join("package.json")).unwrap()).unwrap();
    pkg["allowScripts"] = json!(["trusted"]);
    fs::write(project.join("package.json"), pkg.to_string()).unwrap();

    let out = install(&home, &registry, &project, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(project.join("node_modules/trusted/package.json").is_file());
    assert!(!project.join("node_modules/trusted/ran.txt").exists(), "evil's script ran as `trusted`");
    assert!(stderr(&out).contains("trusted@1.0.0"), "listed as not run: {}", stderr(&out));

    // The honest entry: the registry vouches for its integrity, so the allowed script runs.
    let mut honest = entry(&registry, "trusted", "1.0.0");
    honest["hasInstallScript"] = json!(true);
    write_lock(&project.join("package-lock.json"), &deps, json!({ "node_modules/trusted": honest }));
    let out = install(&home, &registry, &project, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(project.join("node_modules/trusted/ran.txt")).unwrap().trim(), "trusted");
}
