//! Parity with real npm (the `npm` on PATH, installed by CI): for each project under
//! `fixtures/trees/`, real `npm install` and `ims install` install into fresh folders from the
//! same fixture registry on 127.0.0.1, and the `(install path, name, version)` of every
//! `node_modules/**/package.json` must be the same set. Then Node loads every root from ims's
//! `node_modules` and a bin runs. The registry serves the corpus plus the synthetic packages
//! published here (peers, optional platform packages, a broken optional tarball, bundles,
//! aliases, dist-tags and prereleases); see `fixtures/trees/README.md`.
//!
//! npm is isolated: its own `--cache`, `--userconfig` and `--globalconfig` (empty files), a temp
//! `HOME`, and every `NPM_CONFIG_*` variable removed from its environment.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use fixtures::{Corpus, Fault, Package, Registry};
use serde_json::Value;

use crate::support;

/// The shared registry: started once on its own runtime thread, for every test of this file.
pub(super) fn registry_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async {
                let corpus = Corpus::load().unwrap();
                let registry = Registry::with_corpus(&corpus).await.unwrap();
                publish_synthetic(&registry);
                tx.send(registry.url()).unwrap();
                // Serve until the test process exits.
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    })
}

/// The synthetic packages the trees under `fixtures/trees/` use.
fn publish_synthetic(r: &Registry) {
    let p = |pkg: Package| r.publish(pkg).unwrap();
    // Peers: a plain peer, a peer of a peer, a peer satisfied at the root, a peer set that
    // cannot go to the root (peer-host@2 is there) and must nest with its dependent.
    p(Package::new("peer-host", "1.0.0"));
    p(Package::new("peer-host", "1.1.0"));
    p(Package::new("peer-host", "2.0.0"));
    p(Package::new("peer-plugin", "1.0.0").peer_dependency("peer-host", "^1"));
    p(Package::new("peer-user", "1.0.0").dependency("peer-plugin", "^1"));
    p(Package::new("peer-base", "1.0.0"));
    p(Package::new("peer-mid", "1.0.0").peer_dependency("peer-base", "^1"));
    p(Package::new("peer-top", "1.0.0").peer_dependency("peer-mid", "^1"));

    // Optional: packages for platforms this is not, with dependencies only they need; one
    // whose tarball fails integrity (and its own dependency); one shared with a required path.
    p(Package::new("opt-shared", "1.0.0"));
    p(Package::new("opt-helper", "1.0.0"));
    p(Package::new("opt-win-helper", "1.0.0"));
    p(Package::new("opt-broken-dep", "1.0.0"));
    p(Package::new("opt-native-aix", "1.0.0")
        .field("os", serde_json::json!(["aix"]))
        .dependency("opt-helper", "1")
        .dependency("opt-shared", "1"));
    p(Package::new("opt-native-win", "1.0.0")
        .field("os", serde_json::json!(["win32"]))
        .field("cpu", serde_json::json!(["ia32"]))
        .dependency("opt-win-helper", "1"));
    p(Package::new("opt-broken", "1.0.0").dependency("opt-broken-dep", "1"));
    // A 404 rather than bad bytes: npm retries integrity failures for minutes.
    r.fail(Fault::status("/opt-broken/-/", 404, usize::MAX));
    // Optional packages whose engines.node this Node.js does not (or does) satisfy.
    p(Package::new("opt-engine-helper", "1.0.0"));
    p(Package::new("opt-engine", "1.0.0")
        .field("engines", serde_json::json!({"node": ">=999"}))
        .dependency("opt-engine-helper", "1"));
    p(Package::new("opt-engine-ok", "1.0.0").field("engines", serde_json::json!({"node": ">=10"})));
    p(Package::new("opt-parent", "1.0.0")
        .dependency("opt-shared", "1")
        .optional_dependency("opt-native-aix", "1")
        .optional_dependency("opt-broken", "1")
        .optional_dependency("opt-engine", "1")
        .optional_dependency("opt-engine-ok", "1"));
    p(Package::new("bin-tool", "1.0.0")
        .bin("bin-tool", "./cli.js")
        .file("cli.js", b"#!/usr/bin/env node\nconsole.log('bin-tool ok')\n"));

    // A bundled dependency: shipped inside bundler's tarball at 1.0.0 while the registry's
    // latest is 1.5.0; it must stay as shipped.
    p(Package::new("bundled-a", "1.0.0"));
    p(Package::new("bundled-a", "1.5.0"));
    p(Package::new("bundler", "1.0.0")
        .dependency("bundled-a", "^1")
        .field("bundleDependencies", serde_json::json!(["bundled-a"]))
        .file("node_modules/bundled-a/package.json", br#"{"name":"bundled-a","version":"1.0.0"}"#)
        .file("node_modules/bundled-a/index.js", b"module.exports = 'bundled-a@1.0.0 (bundled)';\n"));

    // A bundled dependency with a dependency of its own that is not bundled.
    p(Package::new("bundled-b-dep", "1.0.0"));
    p(Package::new("bundled-b", "1.0.0").dependency("bundled-b-dep", "1"));
    p(Package::new("bundler2", "1.0.0")
        .dependency("bundled-b", "1")
        .field("bundleDependencies", serde_json::json!(["bundled-b"]))
        .file(
            "node_modules/bundled-b/package.json",
            br#"{"name":"bundled-b","version":"1.0.0","dependencies":{"bundled-b-dep":"1"}}"#,
        )
        .file("node_modules/bundled-b/index.js", b"module.exports = require('bundled-b-dep');\n"));
    // An optional peer nothing else provides (left out) next to a required one; dev-only
    // packages (left out with --omit=dev).
    p(Package::new("opt-peer-user", "1.0.0")
        .peer_dependency("peer-mid", "^1")
        .peer_dependency("tagged", "^1")
        .field("peerDependenciesMeta", serde_json::json!({"peer-mid": {"optional": true}})));
    p(Package::new("dev-dep-of-dev", "1.0.0"));
    p(Package::new("dev-only", "1.0.0").dependency("dev-dep-of-dev", "1"));

    // Specs: dist-tags, prereleases, a deprecated version passed over, a scoped package.
    p(Package::new("@syn/scoped", "1.0.0"));
    p(Package::new("@syn/scoped", "1.1.0"));
    p(Package::new("@syn/scoped", "2.0.0").tag("beta"));
    p(Package::new("tagged", "1.0.0"));
    p(Package::new("tagged", "2.0.0-beta.1").tag("next"));
    p(Package::new("pre", "1.0.0-rc.1").tag("rc"));
    p(Package::new("pre", "1.0.0-rc.2").tag("next"));
    p(Package::new("pre", "0.9.0"));
    p(Package::new("tilde", "1.2.0"));
    p(Package::new("tilde", "1.2.5"));
    p(Package::new("tilde", "1.2.6").deprecated("use 1.3"));
    p(Package::new("tilde", "1.3.0"));
    super::npm_overrides::publish(r);
}

/// `fixtures/trees/<tree>` copied into a fresh `<dir>/<side>` project.
fn project(dir: &Path, tree: &str, side: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trees").join(tree).join("package.json");
    let p = dir.join(side);
    fs::create_dir_all(&p).unwrap();
    fs::copy(&src, p.join("package.json")).unwrap();
    p
}

/// The environment without any npm configuration, with `HOME` in the temp dir.
pub(super) fn isolated(cmd: &mut Command, dir: &Path) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().to_ascii_uppercase().starts_with("NPM_CONFIG_") {
            cmd.env_remove(k);
        }
    }
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    cmd.env("HOME", home);
}

fn npm_install(dir: &Path, project: &Path, extra: &[&str]) -> Output {
    npm_run(dir, project, "install", extra)
}

/// `npm COMMAND EXTRA...` against the fixture registry, isolated (its own cache and empty
/// config files under `dir`, no scripts, audit or fund).
pub(super) fn npm_run(dir: &Path, project: &Path, command: &str, extra: &[&str]) -> Output {
    let (user, global) = (dir.join("user.npmrc"), dir.join("global.npmrc"));
    fs::write(&user, "").unwrap();
    fs::write(&global, "").unwrap();
    let mut cmd = Command::new("npm");
    cmd.arg(command).args(extra).args(["--registry", registry_url(), "--cache"]).arg(dir.join("npm-cache"));
    cmd.arg("--userconfig").arg(&user).arg("--globalconfig").arg(&global);
    cmd.args(["--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error"]);
    cmd.current_dir(project);
    isolated(&mut cmd, dir);
    cmd.output().expect("npm must be installed (CI installs it)")
}

pub(super) fn ims_install(dir: &Path, project: &Path, extra: &[&str]) -> Output {
    let mut cmd = support::ims_install(&dir.join("ims-home"), registry_url(), project);
    cmd.args(extra);
    isolated(&mut cmd, dir);
    cmd.output().unwrap()
}

/// `(install path, name, version)` of every package folder under `node_modules`, nested ones
/// included (scoped folders and `.bin` handled).
fn installed(project: &Path) -> BTreeSet<(String, String, String)> {
    fn walk(project: &Path, modules: &Path, out: &mut BTreeSet<(String, String, String)>) {
        let Ok(entries) = fs::read_dir(modules) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if file.starts_with('.') || !path.is_dir() {
                continue;
            }
            if file.starts_with('@') {
                walk(project, &path, out);
                continue;
            }
            if let Ok(text) = fs::read_to_string(path.join("package.json")) {
                let v: Value = serde_json::from_str(&text).unwrap();
                let rel = path.strip_prefix(project).unwrap().to_string_lossy().replace('\\', "/");
                let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                out.insert((rel, field("name"), field("version")));
            }
            walk(project, &path.join("node_modules"), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(project, &project.join("node_modules"), &mut out);
    out
}

pub(super) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Install `tree` with npm and with ims (same extra flags) and assert the same packages at the
/// same paths; returns the ims project for further checks.
#[allow(clippy::print_stderr)] // the timing figures
fn assert_parity(dir: &Path, tree: &str, extra: &[&str]) -> PathBuf {
    let npm_dir = project(dir, tree, "npm");
    let started = Instant::now();
    let out = npm_install(dir, &npm_dir, extra);
    let npm_took = started.elapsed();
    assert!(out.status.success(), "npm install {tree}: {}", stderr(&out));
    let ims_dir = project(dir, tree, "ims");
    let started = Instant::now();
    let out = ims_install(dir, &ims_dir, extra);
    eprintln!("{tree}: npm install {npm_took:.2?}, ims install {:.2?}", started.elapsed());
    assert!(out.status.success(), "ims install {tree}: {}", stderr(&out));
    let (want, got) = (installed(&npm_dir), installed(&ims_dir));
    assert!(!want.is_empty());
    let missing: Vec<_> = want.difference(&got).collect();
    let extra_: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra_.is_empty(),
        "{tree}: ims lacks {missing:?}, ims has extra {extra_:?}"
    );
    ims_dir
}

/// `<dir>/npm` and `<dir>/ims`, each a fresh project with `pkg` as its `package.json`.
fn sides(dir: &Path, pkg: &Value) -> Vec<PathBuf> {
    ["npm", "ims"]
        .into_iter()
        .map(|side| {
            let p = dir.join(side);
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("package.json"), serde_json::to_string_pretty(pkg).unwrap()).unwrap();
            p
        })
        .collect()
}

/// Node loads every dependency named in `package.json` from the project.
fn assert_roots_load(project: &Path) {
    let pkg: Value =
        serde_json::from_str(&fs::read_to_string(project.join("package.json")).unwrap()).unwrap();
    let mut roots: Vec<String> = Vec::new();
    for key in ["dependencies", "optionalDependencies"] {
        if let Some(m) = pkg.get(key).and_then(Value::as_object) {
            roots.extend(m.keys().filter(|k| project.join("node_modules").join(k).is_dir()).cloned());
        }
    }
    assert!(!roots.is_empty());
    let script = format!("for (const r of {}) require(r)", serde_json::to_string(&roots).unwrap());
    let out = Command::new("node").args(["-e", &script]).current_dir(project).output().unwrap();
    assert!(out.status.success(), "require({roots:?}): {}", stderr(&out));
}

fn run_bin(project: &Path, bin: &str, args: &[&str]) -> String {
    let out = Command::new(project.join("node_modules/.bin").join(bin))
        .args(args)
        .current_dir(project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{bin}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn debug_and_ms_nest_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "debug-ms", &[]);
    assert!(installed(&p).contains(&(
        "node_modules/debug/node_modules/ms".into(),
        "ms".into(),
        "2.0.0".into()
    )));
    assert_roots_load(&p);
}

#[test]
fn express_and_a_bin_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "express", &[]);
    assert_roots_load(&p);
    assert_eq!(run_bin(&p, "semver", &["1.2.3"]), "1.2.3");
}

#[test]
fn webpack_cli_with_its_peer_and_nested_commander_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "webpack-cli", &[]);
    assert!(installed(&p).iter().any(|(path, _, v)| path
        == "node_modules/webpack-cli/node_modules/commander"
        && v.starts_with("10.")));
    assert_roots_load(&p);
    assert!(run_bin(&p, "webpack-cli", &["--version"]).contains("webpack-cli"));
}

#[test]
fn peers_of_peers_and_satisfied_peers_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "peers", &[]);
    let got = installed(&p);
    for (path, v) in [
        ("node_modules/peer-mid", "1.0.0"),
        ("node_modules/peer-base", "1.0.0"),
        ("node_modules/peer-host", "1.1.0"),
        ("node_modules/peer-plugin", "1.0.0"),
    ] {
        assert!(got.iter().any(|(p, _, ver)| p == path && ver == v), "{path}@{v} in {got:?}");
    }
    assert_roots_load(&p);
}

#[test]
fn a_peer_set_that_cannot_hoist_nests_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "peers-nested", &[]);
    assert_roots_load(&p);
}

#[test]
fn optional_for_other_platforms_or_broken_is_left_out_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "optional", &[]);
    let names: BTreeSet<String> = installed(&p).into_iter().map(|(_, n, _)| n).collect();
    for gone in [
        "opt-native-aix",
        "opt-helper",
        "opt-native-win",
        "opt-win-helper",
        "opt-broken",
        "opt-broken-dep",
        "opt-engine",
        "opt-engine-helper",
    ] {
        assert!(!names.contains(gone), "{gone} installed: {names:?}");
    }
    assert!(names.contains("opt-shared"), "opt-shared is also a required dependency");
    assert!(names.contains("opt-engine-ok"), "its engines fit this Node.js");
    assert_roots_load(&p);
    assert_eq!(run_bin(&p, "bin-tool", &[]), "bin-tool ok");
}

#[test]
fn bundled_dependencies_stay_as_shipped_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "bundled", &[]);
    assert!(installed(&p).contains(&(
        "node_modules/bundler/node_modules/bundled-a".into(),
        "bundled-a".into(),
        "1.0.0".into()
    )));
    assert_roots_load(&p);
}

#[test]
fn aliases_tags_and_prereleases_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "specs", &[]);
    let got = installed(&p);
    for want in [
        ("node_modules/my-ms", "ms", "2.0.0"),
        ("node_modules/tagged", "tagged", "2.0.0-beta.1"),
        ("node_modules/pre", "pre", "1.0.0-rc.2"),
        ("node_modules/tilde", "tilde", "1.2.5"),
        ("node_modules/@syn/scoped", "@syn/scoped", "1.1.0"),
    ] {
        assert!(got.contains(&(want.0.into(), want.1.into(), want.2.into())), "{want:?} in {got:?}");
    }
    assert_roots_load(&p);
}

/// Root dev, optional (unknown: skipped) and peer dependencies, an optional peer nothing
/// provides, a bundled package's own unbundled dependency (npm does not fetch it); then the
/// same with `--omit=dev`.
#[test]
fn dev_optional_root_peers_and_bundles_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "misc", &[]);
    let names: BTreeSet<String> = installed(&p).into_iter().map(|(_, n, _)| n).collect();
    for want in ["dev-only", "dev-dep-of-dev", "peer-base", "tagged", "bundled-b"] {
        assert!(names.contains(want), "{want} not in {names:?}");
    }
    assert!(!names.contains("peer-mid"), "an optional peer is not installed");
    // npm leaves a bundle as shipped: what a bundled package lacks is not fetched either.
    assert!(!names.contains("bundled-b-dep"));
    assert_roots_load(&p);
    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "misc", &["--omit=dev"]);
    assert!(!p.join("node_modules/dev-only").exists());
}

/// A peer conflict with a root dependency: npm fails with ERESOLVE and so does ims, naming both
/// sides; with `--legacy-peer-deps` both install without the peer, and the same tree.
#[test]
fn peer_conflict_fails_like_npm_unless_legacy_peer_deps() {
    let dir = tempfile::tempdir().unwrap();
    let npm_dir = project(dir.path(), "peer-conflict", "npm");
    let out = npm_install(dir.path(), &npm_dir, &[]);
    assert!(!out.status.success() && stderr(&out).contains("ERESOLVE"), "npm: {}", stderr(&out));
    let ims_dir = project(dir.path(), "peer-conflict", "ims");
    let out = ims_install(dir.path(), &ims_dir, &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "ims accepted the conflict");
    for part in [
        "ERESOLVE",
        "peer-host@2.0.0",
        "node_modules/peer-host",
        "peer peer-host@\"^1\" from peer-plugin@1.0.0",
        "node_modules/peer-plugin",
        "--legacy-peer-deps",
    ] {
        assert!(err.contains(part), "{part:?} not in:\n{err}");
    }
    assert!(!ims_dir.join("node_modules").exists(), "nothing laid out");

    let dir = tempfile::tempdir().unwrap();
    let p = assert_parity(dir.path(), "peer-conflict", &["--legacy-peer-deps"]);
    assert_roots_load(&p);
}

/// All corpus roots at once (229 packages): real npm install vs ims install.
#[test]
#[allow(clippy::print_stderr)] // the timing figures
fn full_corpus_roots_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let corpus_roots = Corpus::dir().join("roots.json");
    let roots: Value = serde_json::from_str(&fs::read_to_string(corpus_roots).unwrap()).unwrap();
    let pkg = serde_json::json!({ "name": "corpus", "version": "1.0.0", "dependencies": roots });
    let sides = sides(dir.path(), &pkg);
    let started = Instant::now();
    let out = npm_install(dir.path(), &sides[0], &[]);
    let npm_took = started.elapsed();
    assert!(out.status.success(), "npm: {}", stderr(&out));
    let started = Instant::now();
    let out = ims_install(dir.path(), &sides[1], &[]);
    eprintln!(
        "corpus roots: npm install {npm_took:.2?}, ims install {:.2?}: {}",
        started.elapsed(),
        stderr(&out).trim()
    );
    assert!(out.status.success(), "ims: {}", stderr(&out));
    let (want, got) = (installed(&sides[0]), installed(&sides[1]));
    assert!(want.len() > 200, "{}", want.len());
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(missing.is_empty() && extra.is_empty(), "ims lacks {missing:?}, ims has extra {extra:?}");
}

/// `cmd` run in `project` with npm's environment isolated; (stdout, exit code).
fn run_in(dir: &Path, project: &Path, mut cmd: Command) -> (String, i32) {
    cmd.current_dir(project);
    isolated(&mut cmd, dir);
    // npm draws the tree with unicode in a UTF-8 locale; both sides get the same one.
    cmd.env_remove("LC_ALL").env_remove("LC_CTYPE").env("LANG", "C.UTF-8");
    let out = cmd.output().unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
}

/// `npm ARGS` (offline: `ls` and `explain` read only the folder) next to `ims ARGS`, in the
/// same project: the same stdout, byte for byte, and the same exit code.
pub(super) fn assert_same_output(dir: &Path, project: &Path, npm_args: &[&str], ims_args: &[&str]) {
    let (user, global) = (dir.join("user.npmrc"), dir.join("global.npmrc"));
    fs::write(&user, "").unwrap();
    fs::write(&global, "").unwrap();
    let mut npm = Command::new("npm");
    npm.args(npm_args).args(["--offline", "--no-update-notifier", "--color=false", "--userconfig"]);
    npm.arg(&user).arg("--globalconfig").arg(&global);
    let mut ims = support::ims(&dir.join("ims-home"));
    ims.args(ims_args);
    let (want, want_code) = run_in(dir, project, npm);
    let (got, got_code) = run_in(dir, project, ims);
    assert!(!want.is_empty(), "npm {npm_args:?} printed nothing");
    if want != got {
        let first = want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(0);
        let show = |s: &str| s.lines().skip(first.saturating_sub(3)).take(8).collect::<Vec<_>>().join("\n");
        panic!(
            "ims {ims_args:?} differs from npm {npm_args:?} at line {}:\n--- npm\n{}\n--- ims\n{}",
            first + 1,
            show(&want),
            show(&got)
        );
    }
    assert_eq!(got_code, want_code, "exit code of ims {ims_args:?} vs npm {npm_args:?}");
}

/// `ims ls` and `ims why` print what `npm ls` and `npm explain` print, on the same installed
/// tree: the corpus roots (229 packages, nesting, dedupes, unmet optional dependencies) and a
/// project with dev, optional, peer and bundled dependencies; then the corpus tree broken as a
/// user breaks it (a package removed, a version edited, a stray folder), where both report
/// the same missing, invalid and extraneous entries and exit 1.
#[test]
fn ls_and_why_print_what_npm_prints() {
    let dir = tempfile::tempdir().unwrap();
    let corpus_roots = Corpus::dir().join("roots.json");
    let roots: Value = serde_json::from_str(&fs::read_to_string(corpus_roots).unwrap()).unwrap();
    let pkg = serde_json::json!({ "name": "corpus", "version": "1.0.0", "dependencies": roots });
    let corpus = dir.path().join("corpus");
    fs::create_dir_all(&corpus).unwrap();
    fs::write(corpus.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
    let out = ims_install(dir.path(), &corpus, &[]);
    assert!(out.status.success(), "ims install: {}", stderr(&out));
    let misc = project(dir.path(), "misc", "misc");
    let out = ims_install(dir.path(), &misc, &[]);
    assert!(out.status.success(), "ims install misc: {}", stderr(&out));

    let same = |project: &Path, args: &[&str]| {
        let npm: Vec<&str> = args.iter().map(|a| if *a == "why" { "explain" } else { a }).collect();
        assert_same_output(dir.path(), project, &npm, args);
    };
    for project in [&corpus, &misc] {
        for args in [
            &["ls"][..],
            &["ls", "--all"],
            &["ls", "--all", "--json"],
            &["ls", "--depth=1"],
            &["ls", "--parseable", "--all"],
            &["ls", "--all", "--omit=dev"],
            &["ls", "--all", "--omit=optional", "--omit=peer"],
        ] {
            same(project, args);
        }
    }
    for args in [
        &["ls", "ms"][..],
        &["ls", "ms@2.0.0", "--json"],
        &["ls", "no-such-package"],
        &["why", "ms"],
        &["why", "ms", "--json"],
        &["why", "node_modules/debug"],
        &["why", "mime-types@2"],
        &["why", "safe-buffer", "debug"],
    ] {
        same(&corpus, args);
    }
    for args in [&["why", "bundled-b"][..], &["why", "peer-base", "--json"], &["why", "dev-dep-of-dev"]] {
        same(&misc, args);
    }

    // Broken by hand: ms removed, a version edited, a folder nothing asks for.
    fs::remove_dir_all(corpus.join("node_modules/ms")).unwrap();
    let pj = corpus.join("node_modules/debug/package.json");
    let mut debug: Value = serde_json::from_str(&fs::read_to_string(&pj).unwrap()).unwrap();
    debug["version"] = Value::String("1.0.0".into());
    fs::write(&pj, serde_json::to_string_pretty(&debug).unwrap()).unwrap();
    fs::create_dir_all(corpus.join("node_modules/stray")).unwrap();
    fs::write(corpus.join("node_modules/stray/package.json"), r#"{"name":"stray","version":"0.0.1"}"#)
        .unwrap();
    for args in
        [&["ls"][..], &["ls", "--all"], &["ls", "--all", "--json"], &["ls", "--json"], &["ls", "debug"]]
    {
        same(&corpus, args);
    }
}

/// `ims uninstall` leaves what `npm uninstall` leaves: the same `package.json` sections, the
/// same folders, the same lockfile entries and no bin of the removed package; the packages
/// another dependency still needs stay where they were.
#[test]
fn uninstall_leaves_what_npm_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = serde_json::json!({
        "name": "un", "version": "1.0.0",
        "dependencies": { "express": "4", "debug": "2", "semver": "7" },
        "devDependencies": { "ms": "2" }
    });
    let sides = sides(dir.path(), &pkg);
    let out = npm_install(dir.path(), &sides[0], &[]);
    assert!(out.status.success(), "npm install: {}", stderr(&out));
    let out = ims_install(dir.path(), &sides[1], &[]);
    assert!(out.status.success(), "ims install: {}", stderr(&out));

    let out = npm_run(dir.path(), &sides[0], "uninstall", &["express", "semver"]);
    assert!(out.status.success(), "npm uninstall: {}", stderr(&out));
    let mut ims = support::ims(&dir.path().join("ims-home"));
    ims.arg("--registry")
        .arg(registry_url())
        .args(["uninstall", "express", "semver", "--prefix"])
        .arg(&sides[1]);
    isolated(&mut ims, dir.path());
    let out = ims.output().unwrap();
    assert!(out.status.success(), "ims uninstall: {}", stderr(&out));

    assert_eq!(installed(&sides[1]), installed(&sides[0]), "the folders left");
    let json = |p: &Path, f: &str| -> Value {
        serde_json::from_str(&fs::read_to_string(p.join(f)).unwrap()).unwrap()
    };
    for key in ["dependencies", "devDependencies"] {
        assert_eq!(json(&sides[1], "package.json")[key], json(&sides[0], "package.json")[key], "{key}");
    }
    let keys = |v: Value| v["packages"].as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(json(&sides[1], "package-lock.json")), keys(json(&sides[0], "package-lock.json")));
    assert!(!sides[1].join("node_modules/.bin/semver").exists(), "the removed package's bin is gone");
    assert!(sides[1].join("node_modules/debug/package.json").exists());
}

/// `ims update NAME` and `ims update` move what `npm update` moves: pinned installs whose ranges
/// are then widened by hand (the lockfile keeps the old versions), the named package updated
/// alone (a deprecated version passed over), then all; the same folders, versions, lockfile
/// entries and `package.json` as npm's.
#[test]
fn update_moves_what_npm_update_moves() {
    let dir = tempfile::tempdir().unwrap();
    let pinned = serde_json::json!({
        "name": "up", "version": "1.0.0",
        "dependencies": { "tilde": "1.2.0", "@syn/scoped": "1.0.0" }
    });
    let sides = sides(dir.path(), &pinned);
    let out = npm_install(dir.path(), &sides[0], &[]);
    assert!(out.status.success(), "npm install: {}", stderr(&out));
    let out = ims_install(dir.path(), &sides[1], &[]);
    assert!(out.status.success(), "ims install: {}", stderr(&out));
    // Widen the ranges by hand, in package.json and in the lockfile's root entry.
    for p in &sides {
        for file in ["package.json", "package-lock.json"] {
            let text = fs::read_to_string(p.join(file)).unwrap();
            let text = text.replace("\"tilde\": \"1.2.0\"", "\"tilde\": \"~1.2.0\"");
            let text = text.replace("\"@syn/scoped\": \"1.0.0\"", "\"@syn/scoped\": \"^1.0.0\"");
            fs::write(p.join(file), text).unwrap();
        }
    }
    let version = |p: &Path, name: &str| -> String {
        let v: Value =
            serde_json::from_str(&fs::read_to_string(p.join("package-lock.json")).unwrap()).unwrap();
        v["packages"][format!("node_modules/{name}")]["version"].as_str().unwrap_or("").to_owned()
    };
    for names in [&["tilde"][..], &[]] {
        let out = npm_run(dir.path(), &sides[0], "update", names);
        assert!(out.status.success(), "npm update {names:?}: {}", stderr(&out));
        let mut ims = support::ims(&dir.path().join("ims-home"));
        ims.arg("--registry").arg(registry_url()).arg("update").args(names).arg("--prefix").arg(&sides[1]);
        isolated(&mut ims, dir.path());
        let out = ims.output().unwrap();
        assert!(out.status.success(), "ims update {names:?}: {}", stderr(&out));
        assert_eq!(installed(&sides[1]), installed(&sides[0]), "after update {names:?}");
        for name in ["tilde", "@syn/scoped"] {
            assert_eq!(version(&sides[1], name), version(&sides[0], name), "{name} after update {names:?}");
        }
        if names == ["tilde"] {
            assert_eq!(version(&sides[1], "tilde"), "1.2.5", "the deprecated 1.2.6 is passed over");
            assert_eq!(version(&sides[1], "@syn/scoped"), "1.0.0", "not named: kept");
        }
        let json = |p: &Path| -> Value {
            serde_json::from_str(&fs::read_to_string(p.join("package.json")).unwrap()).unwrap()
        };
        assert_eq!(json(&sides[1])["dependencies"], json(&sides[0])["dependencies"]);
    }
}
