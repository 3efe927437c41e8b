//! `ims ci` and `ims install --frozen-lockfile`: exactly the lockfile, `node_modules` cleaned
//! first (ci), neither file written, and a lockfile out of sync with `package.json` refused
//! with npm's `Missing:` / `Invalid:` lines before anything is touched.

use std::fs;
use std::path::Path;

use fixtures::{Corpus, Registry};

use crate::support::{self, output};

fn run(home: &Path, registry: &str, project: &Path, args: &[&str]) -> (String, i32) {
    let mut cmd = support::ims(home);
    cmd.arg("--registry").arg(registry).args(args).arg("--prefix").arg(project);
    let out = output(&mut cmd);
    (String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code().unwrap_or(-1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_installs_exactly_the_lockfile_and_refuses_one_out_of_sync() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let (home, project) = (dir.path().join("home"), dir.path().join("app"));
    fs::create_dir_all(&project).unwrap();
    let pkg = r#"{"name":"app","version":"1.0.0","dependencies":{"debug":"2","ms":"2"}}"#;
    fs::write(project.join("package.json"), pkg).unwrap();

    let (err, code) = run(&home, &url, &project, &["ci"]);
    assert_eq!(code, 2, "no lockfile yet: {err}");
    assert!(err.contains("no package-lock.json"), "{err}");
    assert!(!project.join("node_modules").exists());

    let (err, code) = run(&home, &url, &project, &["install"]);
    assert_eq!(code, 0, "{err}");
    let lock = fs::read(project.join("package-lock.json")).unwrap();
    fs::write(project.join("node_modules/stray.txt"), "left by someone").unwrap();

    // In sync: installed from the lockfile, node_modules made anew, no file rewritten.
    let (err, code) = run(&home, &url, &project, &["ci"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("from package-lock.json"), "{err}");
    assert!(!project.join("node_modules/stray.txt").exists(), "ci starts from an empty node_modules");
    assert!(project.join("node_modules/debug/node_modules/ms/package.json").exists());
    assert!(project.join("node_modules/ms/package.json").exists());
    assert_eq!(fs::read(project.join("package-lock.json")).unwrap(), lock);
    assert_eq!(fs::read_to_string(project.join("package.json")).unwrap(), pkg);
    // With the store warm, no network is needed.
    let (err, code) = run(&home, &url, &project, &["--offline", "ci"]);
    assert_eq!(code, 0, "offline from the store: {err}");

    // Out of sync: a new dependency, and a range the locked version does not meet.
    fs::write(project.join("node_modules/stray.txt"), "still here").unwrap();
    let stale = r#"{"name":"app","version":"1.0.0","dependencies":{"debug":"2","ms":"^3","express":"4"}}"#;
    fs::write(project.join("package.json"), stale).unwrap();
    for args in [&["ci"][..], &["install", "--frozen-lockfile"]] {
        let (err, code) = run(&home, &url, &project, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("Missing: express@4 from lock file"), "{args:?}: {err}");
        assert!(err.contains("Invalid: lock file's ms@2.1.3 does not satisfy ms@^3"), "{args:?}: {err}");
        assert!(err.contains("ims install"), "the hint says how to fix it: {err}");
        assert!(project.join("node_modules/stray.txt").exists(), "{args:?} changed node_modules");
        assert_eq!(fs::read(project.join("package-lock.json")).unwrap(), lock);
    }

    // A dependency package.json dropped: refused too, and --frozen-lockfile takes no SPEC.
    fs::write(
        project.join("package.json"),
        r#"{"name":"app","version":"1.0.0","dependencies":{"debug":"2"}}"#,
    )
    .unwrap();
    let (err, code) = run(&home, &url, &project, &["ci"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Removed: ms@2 is in the lock file but not in package.json"), "{err}");
    let (err, code) = run(&home, &url, &project, &["install", "--frozen-lockfile", "express"]);
    assert_eq!(code, 2, "{err}");
}
