//! `ims install` resolves from the local index and records what the registry sends (DESIGN.md §Install):
//! a fresh home is filled on the first install (`ims view`, `ims key` then work without the
//! registry), a second install within the max-age asks nothing, an older record is revalidated
//! with its ETag (304) and a new upstream version is then picked up, `--prefer-offline` skips
//! revalidation, and a registry that is down leaves the index in charge with a warning.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use fixtures::{Corpus, Package, Registry};

use crate::support;

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Home { dir: tempfile::tempdir().unwrap() }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A new project folder with an empty `package.json`.
    fn project(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("package.json"), "{\n  \"name\": \"app\"\n}\n").unwrap();
        p
    }

    /// Run `ims` with this home; `env` pairs are set on the process.
    fn ims(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = support::ims(&self.home());
        cmd.args(args).env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        support::output(&mut cmd)
    }

    fn install(&self, registry: &str, project: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let prefix = project.to_str().unwrap();
        let mut args = vec!["--registry", registry, "install", "--prefix", prefix];
        args.extend_from_slice(extra);
        let out = self.ims(&args, env);
        assert!(out.status.success(), "install {extra:?}: {}", stderr(&out));
        out
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn installed_version(project: &Path, name: &str) -> String {
    let text = fs::read_to_string(project.join("node_modules").join(name).join("package.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["version"].as_str().unwrap().to_owned()
}

/// `a@1.0.0 -> b@^1`, `b@1.0.0`.
async fn small_registry() -> Registry {
    let registry = Registry::start().await.unwrap();
    registry.publish(Package::new("a", "1.0.0").dependency("b", "^1")).unwrap();
    registry.publish(Package::new("b", "1.0.0")).unwrap();
    registry
}

fn packument_hits(registry: &Registry) -> usize {
    registry.hits("/a") + registry.hits("/b")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_install_records_into_the_local_index() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let url = registry.url();
    let h = Home::new();
    let first = h.project("first");
    let out = h.install(&url, &first, &["debug@2"], &[]);
    assert!(stderr(&out).contains("2 fetched"), "{}", stderr(&out));
    assert!(h.home().join("index-fetched.json").is_file(), "fetch times kept outside the index");

    // Within the max-age a second install asks the registry nothing at all (the tarballs are
    // in the store, the packuments in the index).
    let before = registry.total_hits();
    let second = h.project("second");
    let out = h.install(&url, &second, &["debug@2"], &[]);
    assert_eq!(registry.total_hits(), before, "no request within the max-age");
    assert!(stderr(&out).contains("2 from the local index"), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(second.join("package-lock.json")).unwrap(),
        fs::read_to_string(first.join("package-lock.json")).unwrap(),
        "the lockfile from the index is the lockfile from the registry"
    );

    // The index is the one `ims index` would have made: view and key work without upstream.
    drop(registry);
    let out = h.ims(&["view", "debug@2"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let view = String::from_utf8_lossy(&out.stdout);
    let version = installed_version(&first, "debug");
    assert!(view.starts_with(&format!("debug@{version}")), "{view}");
    assert!(view.contains(&format!("tarball {url}debug/-/debug-{version}.tgz")), "{view}");
    let out = h.ims(&["key"], &[]);
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(out.status.success() && key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_max_age_it_revalidates_and_picks_up_new_versions() {
    let registry = small_registry().await;
    let url = registry.url();
    let h = Home::new();
    let stale: &[(&str, &str)] = &[("IMS_PACKUMENT_MAX_AGE", "0")];
    h.install(&url, &h.project("p1"), &["a@^1"], &[]);
    assert_eq!(packument_hits(&registry), 2);

    // Older than the max-age: one conditional request each, answered 304, nothing written.
    let out = h.install(&url, &h.project("p2"), &["a@^1"], stale);
    assert_eq!(packument_hits(&registry), 4);
    assert!(stderr(&out).contains("2 revalidated (304), 0 fetched"), "{}", stderr(&out));
    assert!(stderr(&out).contains("recorded 0 packages"), "{}", stderr(&out));

    // A new version upstream: unseen while the record is fresh...
    registry.publish(Package::new("b", "1.1.0")).unwrap();
    let p3 = h.project("p3");
    h.install(&url, &p3, &["a@^1"], &[]);
    assert_eq!(installed_version(&p3, "b"), "1.0.0");
    assert_eq!(packument_hits(&registry), 4);
    // ...`--prefer-offline` does not revalidate even when stale...
    let p4 = h.project("p4");
    h.install(&url, &p4, &["--prefer-offline", "a@^1"], stale);
    assert_eq!((installed_version(&p4, "b").as_str(), packument_hits(&registry)), ("1.0.0", 4));
    // ...and after the max-age the 200 brings it in, and records it.
    let p5 = h.project("p5");
    let out = h.install(&url, &p5, &["a@^1"], stale);
    assert_eq!(installed_version(&p5, "b"), "1.1.0", "{}", stderr(&out));
    assert!(stderr(&out).contains("1 revalidated (304), 1 fetched"), "{}", stderr(&out));
    assert!(stderr(&out).contains("recorded 1 packages (1 new versions)"), "{}", stderr(&out));
    let out = h.ims(&["view", "b"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("latest: 1.1.0"), "{}", stderr(&out));

    // `--prefer-offline` still fetches what the index lacks, and records it.
    registry.publish(Package::new("c", "2.0.0")).unwrap();
    let p6 = h.project("p6");
    h.install(&url, &p6, &["--prefer-offline", "c"], &[]);
    assert_eq!((installed_version(&p6, "c").as_str(), registry.hits("/c")), ("2.0.0", 1));
    let out = h.install(&url, &h.project("p7"), &["--offline", "c@2"], &[]);
    assert!(stderr(&out).contains("1 from the local index"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_uses_the_index_with_a_warning() {
    let registry = small_registry().await;
    let url = registry.url();
    let h = Home::new();
    let first = h.project("first");
    h.install(&url, &first, &["a@^1"], &[]);
    drop(registry);

    // Stale and unreachable: the index's copies are used (npm's stale-if-error), with a warning.
    let stale: &[(&str, &str)] = &[("IMS_PACKUMENT_MAX_AGE", "0"), ("RUST_LOG", "warn")];
    let second = h.project("second");
    let out = h.install(&url, &second, &["a@^1"], stale);
    let err = stderr(&out);
    assert!(err.contains("WARN") && err.contains("using the local index's copy"), "{err}");
    assert_eq!(installed_version(&second, "b"), "1.0.0");
    assert_eq!(
        fs::read_to_string(second.join("package-lock.json")).unwrap(),
        fs::read_to_string(first.join("package-lock.json")).unwrap()
    );

    // What the index lacks cannot come from anywhere: a clear error naming it.
    let out =
        h.ims(&["--registry", &url, "install", "--prefix", h.project("third").to_str().unwrap(), "zzz"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("zzz"), "{}", stderr(&out));
}
