//! `ims ls` and `ims why` on the projects with workspaces and local folders
//! (`fixtures/projects/`), held against `npm ls` and `npm explain` run on the very same
//! `node_modules`: once as npm installed it (npm then reads its hidden lockfile) and once as
//! ims installed it (npm then walks the folders), and again after the tree is broken by hand.
//! Same stdout, byte for byte, and the same exit code.

use std::fs;
use std::path::Path;

use super::npm_parity::assert_same_output;
use super::npm_projects::assert_same_install;
use crate::support;

/// `ims ARGS` next to `npm ARGS` (`why` is npm's `explain`) in `project`.
fn same(dir: &Path, project: &Path, args: &[&str]) {
    let npm: Vec<&str> = args.iter().map(|a| if *a == "why" { "explain" } else { a }).collect();
    assert_same_output(dir, project, &npm, args);
}

/// What both projects are asked.
const COMMON: &[&[&str]] = &[
    &["ls"],
    &["ls", "--all"],
    &["ls", "--all", "--json"],
    &["ls", "--json"],
    &["ls", "--parseable", "--all"],
    &["ls", "--depth=1"],
    &["ls", "--all", "--omit=dev"],
    &["ls", "ms"],
    &["ls", "ms", "--json"],
    &["why", "ms"],
    &["why", "ms", "--json"],
    &["why", "semver"],
    &["why", "nothing-here", "--json"],
];

/// The workspaces are links under the root with their own dependencies below them (listed at
/// depth 0 as npm lists them), `-w` and `--workspaces` filter the root's edges by npm's
/// rules, and `why` follows each link to its folder and on to the root.
#[test]
fn ls_and_why_on_a_monorepo_print_what_npm_prints() {
    let dir = tempfile::tempdir().unwrap();
    let (npm, ims) = assert_same_install(dir.path(), "monorepo", "");
    let workspaces: &[&[&str]] = &[
        &["ls", "-w", "a"],
        &["ls", "-w", "packages"],
        &["ls", "-w", "./packages/c", "--all"],
        &["ls", "--workspaces", "--all", "--parseable"],
        &["ls", "-w", "b", "--all", "--json"],
        &["ls", "-w", "a", "-w", "nope"],
        &["ls", "-w", "nope", "--json"],
        &["ls", "-w", "a", "--include-workspace-root"],
        &["ls", "--no-workspaces"],
        &["ls", "a"],
        &["why", "a"],
        &["why", "a", "--json"],
        &["why", "@x/c"],
        &["why", "b", "--json"],
        &["why", "ms", "-w", "b"],
        &["why", "debug", "-w", "b", "--json"],
        &["why", "ms", "--no-workspaces"],
        &["why", "packages/b"],
        &["why", "mono"],
    ];
    for project in [&npm, &ims] {
        for args in COMMON.iter().chain(workspaces) {
            same(dir.path(), project, args);
        }
    }
    // A filter that matches nothing: npm's error on stderr, nothing on stdout, exit 1.
    let out = support::ims(&dir.path().join("ims-home"))
        .args(["ls", "-w", "nope"])
        .current_dir(&ims)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No workspaces found:") && err.contains("--workspace=nope"), "{err}");

    // Broken by hand: a workspace's link gone, a link to nowhere, a stray folder in a
    // workspace's node_modules, a workspace folder without package.json.
    fs::remove_file(npm.join("node_modules/b")).unwrap();
    std::os::unix::fs::symlink("../nowhere", npm.join("node_modules/ghost")).unwrap();
    fs::create_dir_all(npm.join("packages/a/node_modules/stray")).unwrap();
    fs::write(
        npm.join("packages/a/node_modules/stray/package.json"),
        r#"{"name":"stray","version":"1.0.0"}"#,
    )
    .unwrap();
    fs::create_dir_all(npm.join("packages/empty")).unwrap();
    for args in [
        &["ls"][..],
        &["ls", "--all"],
        &["ls", "--all", "--json"],
        &["ls", "--parseable", "--all"],
        &["ls", "-w", "a", "--all"],
        &["why", "a"],
        &["why", "b"],
        &["why", "ghost", "--json"],
        &["why", "stray"],
    ] {
        same(dir.path(), &npm, args);
    }
}

/// `file:` folders inside the project and outside it: links with `-> ./vendor/inner` and
/// `-> ./../local-lib`, dev and optional flags through them, and npm's own verdict on the
/// folder outside (its dependency is not installed there: UNMET, exit 1).
#[test]
fn ls_and_why_on_local_folders_print_what_npm_prints() {
    let dir = tempfile::tempdir().unwrap();
    let (npm, ims) = assert_same_install(dir.path(), "local-deps", "app");
    let local: &[&[&str]] = &[
        &["ls", "--parseable"],
        &["ls", "local-lib"],
        &["why", "local-lib"],
        &["why", "local-lib", "--json"],
        &["why", "inner", "--json"],
        &["why", "dlib"],
        &["why", "node_modules/inner"],
        &["why", "vendor/inner"],
    ];
    for project in [&npm, &ims] {
        for args in COMMON.iter().chain(local) {
            same(dir.path(), project, args);
        }
    }
}
