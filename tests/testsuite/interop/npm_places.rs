//! Dependencies from places other than the registry, held against npm 11: a git repository
//! (a bare repository behind a `git+file://` URL, and `git daemon` on 127.0.0.1 for
//! `git://`), a `file:` tarball and a tarball URL on the fixture registry. npm and ims install
//! the same project; the trees and the lockfiles must be the same, byte for byte. Then ims
//! installs npm's lockfile (`ims ci`), and again with the repository gone: from the store,
//! without git or the network.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::npm_parity::{ims_install, npm_run, registry_url, stderr};
use super::npm_projects::{ims, read, tree};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.email=t@example.test", "-c", "user.name=t", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git must be installed");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

/// A package repository with two tagged versions (v1.2.0, then v1.3.0 on main) and a `dev`
/// branch; `files`, a bin, a dependency on the registry, and files npm leaves out. Returns
/// the bare repository.
fn repository(dir: &Path) -> PathBuf {
    let work = dir.join("src/gitpkg");
    fs::create_dir_all(work.join("lib/sub")).unwrap();
    fs::create_dir_all(work.join("bin")).unwrap();
    fs::create_dir_all(work.join("test")).unwrap();
    let manifest = |version: &str| {
        format!(
            r#"{{
  "name": "gitpkg",
  "version": "{version}",
  "main": "lib/index.js",
  "bin": {{ "gitpkg": "bin/cli.js" }},
  "files": ["lib", "bin/cli.js"],
  "dependencies": {{ "ms": "^2.1.0" }}
}}
"#
        )
    };
    fs::write(work.join("package.json"), manifest("1.2.0")).unwrap();
    fs::write(work.join("lib/index.js"), "module.exports = require('../package.json').version\n").unwrap();
    fs::write(work.join("lib/sub/a.js"), "x\n").unwrap();
    fs::write(work.join("lib/a.orig"), "left out\n").unwrap();
    fs::write(work.join("bin/cli.js"), "#!/usr/bin/env node\nconsole.log('gitpkg')\n").unwrap();
    fs::write(work.join("test/t.js"), "left out\n").unwrap();
    fs::write(work.join("README.md"), "# gitpkg\n").unwrap();
    fs::write(work.join("notes.txt"), "left out\n").unwrap();
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "one"]);
    git(&work, &["tag", "v1.2.0"]);
    git(&work, &["branch", "dev"]);
    fs::write(work.join("package.json"), manifest("1.3.0")).unwrap();
    git(&work, &["commit", "-qam", "two"]);
    git(&work, &["tag", "-a", "-m", "annotated", "v1.3.0"]);
    let bare = dir.join("repos/gitpkg.git");
    fs::create_dir_all(bare.parent().unwrap()).unwrap();
    git(dir, &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
    bare
}

/// `git daemon` serving `base` on a free loopback port; killed on drop.
struct Daemon(Child, u16);

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon(child, port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The project: git (by range over `git+file://`, by tag over `git://`), a `file:` tarball
/// packed by npm, a tarball URL.
fn project(dir: &Path, side: &str, bare: &Path, port: u16, tarball: &str) -> PathBuf {
    let p = dir.join(side).join("app");
    fs::create_dir_all(&p).unwrap();
    let manifest = serde_json::json!({
        "name": "app",
        "version": "1.0.0",
        "dependencies": {
            "gitpkg": format!("git+file://{}#semver:^1.2.0", bare.display()),
            "old": format!("git://127.0.0.1:{port}/gitpkg.git#v1.2.0"),
            "tarpkg": format!("file:../../{tarball}"),
            "urlpkg": format!("{}is-number/-/is-number-7.0.0.tgz", registry_url()),
        }
    });
    fs::write(p.join("package.json"), serde_json::to_string_pretty(&manifest).unwrap() + "\n").unwrap();
    p
}

#[test]
fn git_tarball_file_and_url_dependencies_install_like_npm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bare = repository(d);
    let daemon = Daemon::start(&d.join("repos"));
    // The tarball, packed by npm itself.
    let out = npm_run(d, &d.join("src/gitpkg"), "pack", &["--pack-destination", d.to_str().unwrap()]);
    assert!(out.status.success(), "npm pack: {}", stderr(&out));
    let tarball = "gitpkg-1.3.0.tgz";
    assert!(d.join(tarball).is_file());

    let npm = project(d, "npm", &bare, daemon.1, tarball);
    let out = npm_run(d, &npm, "install", &[]);
    assert!(out.status.success(), "npm install: {}", stderr(&out));
    let ims_dir = project(d, "ims", &bare, daemon.1, tarball);
    let out = ims_install(d, &ims_dir, &[]);
    assert!(out.status.success(), "ims install: {}", stderr(&out));

    let want = tree(&npm);
    assert!(want.contains(&("node_modules/old".into(), "gitpkg@1.2.0".into())), "{want:?}");
    assert_eq!(tree(&ims_dir), want, "the tree (left ims, right npm)");
    assert_eq!(
        read(&ims_dir.join("package-lock.json")),
        read(&npm.join("package-lock.json")),
        "package-lock.json (left ims, right npm)"
    );
    // The files npm packs, and none it leaves out.
    for (file, there) in [
        ("lib/index.js", true),
        ("lib/sub/a.js", true),
        ("bin/cli.js", true),
        ("README.md", true),
        ("lib/a.orig", false),
        ("test/t.js", false),
        ("notes.txt", false),
    ] {
        for side in [&npm, &ims_dir] {
            let p = side.join("node_modules/gitpkg").join(file);
            assert_eq!(p.exists(), there, "{}", p.display());
        }
    }
    let out = Command::new("node")
        .args(["-e", "console.log(require('gitpkg'), require('old'), require('tarpkg'))"])
        .current_dir(&ims_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.3.0 1.2.0 1.3.0");
    let out = Command::new(ims_dir.join("node_modules/.bin/gitpkg")).output().unwrap();
    assert!(out.status.success(), "the git dependency's bin: {}", stderr(&out));

    // `ims ci` on npm's lockfile: the same tree.
    let out = ims(d, &npm, "ci", &[]);
    assert!(out.status.success(), "ims ci: {}", stderr(&out));
    assert_eq!(tree(&npm), want);

    // `uninstall` of a git dependency: the same package.json and lockfile as npm's.
    let out = npm_run(d, &npm, "uninstall", &["old"]);
    assert!(out.status.success(), "npm uninstall: {}", stderr(&out));
    let out = ims(d, &ims_dir, "uninstall", &["old"]);
    assert!(out.status.success(), "ims uninstall: {}", stderr(&out));
    // npm also unlinks `.bin/gitpkg`, which `old` shared with `gitpkg` but did not own (the
    // first claimant, `gitpkg`, did): its command vanishes while the package stays. ims keeps
    // it; the packages are the same.
    let no_bins = |t: std::collections::BTreeSet<(String, String)>| {
        t.into_iter().filter(|(p, _)| !p.contains("/.bin/")).collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(no_bins(tree(&ims_dir)), no_bins(tree(&npm)), "after uninstall (left ims, right npm)");
    assert!(ims_dir.join("node_modules/.bin/gitpkg").exists());
    let want = tree(&ims_dir);
    for file in ["package.json", "package-lock.json"] {
        assert_eq!(read(&ims_dir.join(file)), read(&npm.join(file)), "{file} after uninstall");
    }

    // The repositories gone: a second install of the lockfile comes from the store alone.
    drop(daemon);
    fs::rename(d.join("repos"), d.join("repos-gone")).unwrap();
    fs::remove_dir_all(ims_dir.join("node_modules")).unwrap();
    let out = ims(d, &ims_dir, "ci", &[]);
    assert!(out.status.success(), "ims ci without the repositories: {}", stderr(&out));
    assert_eq!(tree(&ims_dir), want);
}

#[test]
fn a_missing_ref_path_or_repository_is_named_and_node_modules_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bare = repository(d);
    let p = d.join("p");
    fs::create_dir_all(p.join("node_modules/keep")).unwrap();
    let write = |dep: &str| {
        fs::write(
            p.join("package.json"),
            format!(r#"{{"name":"p","version":"1.0.0","dependencies":{{"x":"{dep}"}}}}"#),
        )
        .unwrap();
    };
    let cases = [
        (format!("git+file://{}#nope", bare.display()), "nope"),
        (format!("git+file://{}/missing.git", d.display()), "missing.git"),
        ("file:../gone.tgz".to_owned(), "gone.tgz"),
    ];
    for (dep, named) in cases {
        write(&dep);
        let out = ims_install(d, &p, &[]);
        assert!(!out.status.success(), "{dep}");
        let err = stderr(&out);
        assert!(err.contains(named), "{dep}: {err}");
        assert!(p.join("node_modules/keep").exists(), "{dep}");
        assert!(!p.join("package-lock.json").exists(), "{dep}");
    }
}

#[test]
fn a_lockfile_git_or_file_entry_the_project_does_not_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bare = repository(d);
    let p = d.join("p");
    fs::create_dir_all(&p).unwrap();
    fs::write(
        p.join("package.json"),
        format!(r#"{{"name":"p","version":"1.0.0","dependencies":{{"x":"git+file://{}"}}}}"#, bare.display()),
    )
    .unwrap();
    let out = ims_install(d, &p, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A planted entry pointing at another repository: ims fetches only what package.json names.
    let lock = p.join("package-lock.json");
    let text = read(&lock);
    let planted = text.replace(
        &format!("\"resolved\": \"git+file://{}", bare.display()),
        "\"resolved\": \"git+file:///elsewhere/evil.git",
    );
    assert_ne!(text, planted);
    fs::write(&lock, planted).unwrap();
    fs::remove_dir_all(p.join("node_modules")).unwrap();
    let out = ims(d, &p, "install", &["--frozen-lockfile"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("evil.git"), "{}", stderr(&out));
}

#[test]
fn a_tarball_url_is_verified_against_the_integrity_the_lockfile_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = d.join("p");
    fs::create_dir_all(&p).unwrap();
    let url = format!("{}is-number/-/is-number-7.0.0.tgz", registry_url());
    fs::write(
        p.join("package.json"),
        format!(r#"{{"name":"p","version":"1.0.0","dependencies":{{"n":"{url}"}}}}"#),
    )
    .unwrap();
    let out = ims_install(d, &p, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lock = read(&p.join("package-lock.json"));
    let v: serde_json::Value = serde_json::from_str(&lock).unwrap();
    let recorded = v["packages"]["node_modules/n"]["integrity"].as_str().unwrap().to_owned();
    assert!(recorded.starts_with("sha512-"), "{lock}");
    // The URL now "serves" other bytes than the lockfile promises (its integrity changed under
    // it): a fresh install from the lockfile refuses them.
    let other = "sha512-".to_owned() + &"A".repeat(86) + "==";
    fs::write(p.join("package-lock.json"), lock.replace(&recorded, &other)).unwrap();
    fs::remove_dir_all(p.join("node_modules")).unwrap();
    let mut cmd = crate::support::ims_install(&d.join("other-home"), registry_url(), &p);
    cmd.arg("--frozen-lockfile");
    super::npm_parity::isolated(&mut cmd, d);
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "tampered integrity accepted");
    assert!(stderr(&out).contains("integrity"), "{}", stderr(&out));
    assert!(!p.join("node_modules/n").exists());
}

#[test]
fn an_allowed_git_dependency_is_built_before_it_is_packed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A repository whose package is built by `prepare` with a development dependency.
    let work = d.join("src/built");
    fs::create_dir_all(work.join("lib")).unwrap();
    fs::write(
        work.join("package.json"),
        r#"{
  "name": "built",
  "version": "1.0.0",
  "main": "lib/index.js",
  "files": ["lib"],
  "scripts": { "prepare": "node -e \"require('fs').writeFileSync('lib/out.js', 'module.exports = ' + require('is-number')(7))\"" },
  "devDependencies": { "is-number": "^7.0.0" }
}
"#,
    )
    .unwrap();
    fs::write(work.join("lib/index.js"), "module.exports = require('./out.js')\n").unwrap();
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "one"]);
    let bare = d.join("repos/built.git");
    git(d, &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);

    let install = |side: &str, allow: bool| {
        let p = d.join(side);
        fs::create_dir_all(&p).unwrap();
        let allow = if allow { r#","allowScripts":["built"]"# } else { "" };
        fs::write(
            p.join("package.json"),
            format!(
                r#"{{"name":"p","version":"1.0.0","dependencies":{{"built":"git+file://{}"}}{allow}}}"#,
                bare.display()
            ),
        )
        .unwrap();
        let out = ims_install(d, &p, &[]);
        assert!(out.status.success(), "{side}: {}", stderr(&out));
        p
    };
    // Not allowed: packed as committed (npm 11 without approval): no build output.
    let plain = install("plain", false);
    assert!(plain.join("node_modules/built/lib/index.js").exists());
    assert!(!plain.join("node_modules/built/lib/out.js").exists());
    // Allowed: its dependencies installed in the checkout, `prepare` run, then packed.
    let built = install("built", true);
    assert_eq!(
        fs::read_to_string(built.join("node_modules/built/lib/out.js")).unwrap(),
        "module.exports = true"
    );
    assert!(!built.join("node_modules/is-number").exists(), "a build-time dependency is not installed");
    let out = Command::new("node")
        .args(["-e", "console.log(require('built'))"])
        .current_dir(&built)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "true", "{}", stderr(&out));
}

/// npm's `omit-lockfile-registry-resolved` (here from the project's `.npmrc`): registry
/// packages are locked without `resolved`, a tarball URL keeps its own; the lockfile is
/// npm's, byte for byte, and installs again from the registry's canonical URLs.
#[test]
fn omit_lockfile_registry_resolved_is_honoured_as_npm_honours_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = format!("{}is-number/-/is-number-7.0.0.tgz", registry_url());
    let make = |side: &str| {
        let p = d.join(side);
        fs::create_dir_all(&p).unwrap();
        fs::write(
            p.join("package.json"),
            format!(r#"{{"name":"p","version":"1.0.0","dependencies":{{"n":"{url}","debug":"^2.6.0"}}}}"#),
        )
        .unwrap();
        fs::write(p.join(".npmrc"), "omit-lockfile-registry-resolved=true\n").unwrap();
        p
    };
    let npm = make("npm");
    let out = npm_run(d, &npm, "install", &[]);
    assert!(out.status.success(), "npm install: {}", stderr(&out));
    let ims_dir = make("ims");
    let out = ims_install(d, &ims_dir, &[]);
    assert!(out.status.success(), "ims install: {}", stderr(&out));
    let lock = read(&ims_dir.join("package-lock.json"));
    assert_eq!(lock, read(&npm.join("package-lock.json")), "package-lock.json (left ims, right npm)");
    assert!(!lock.contains("debug/-/debug-"), "{lock}");
    assert!(lock.contains(&url), "{lock}");
    let out = ims(d, &npm, "ci", &[]);
    assert!(out.status.success(), "ims ci: {}", stderr(&out));
    assert_eq!(tree(&npm), tree(&ims_dir));
}
