//! `ims index`, `ims view` and `ims key` end to end against the fixture registry, including a
//! `--changes` follow killed with SIGKILL mid-feed and resumed.

use std::process::{Output, Stdio};
use std::time::Duration;

use fixtures::{Corpus, Package, Registry};
use hypercore::{FeedBuilder, Storage};
use hypertrie::Trie;
use indexer::Index;

use crate::support;

fn ims(home: &std::path::Path, args: &[&str]) -> Output {
    support::ims(home).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ims failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn open_index(home: &std::path::Path) -> Index {
    let feed = FeedBuilder::new(Storage::disk(home.join("index"))).open().await.unwrap();
    Index::open(Trie::open(feed).await.unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_view_and_key() {
    let corpus = Corpus::load().unwrap();
    let reg = Registry::with_corpus(&corpus).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = reg.url();
    let h = home.path().to_owned();

    let out = tokio::task::spawn_blocking({
        let (h, url) = (h.clone(), url.clone());
        move || {
            ims(
                &h,
                &["index", "--from-registry", &url, "ms", "@babel/core", "no-such-package", "bad..name/x"],
            )
        }
    })
    .await
    .unwrap();
    let text = stdout(&out);
    assert!(text.contains("indexed 2 packages"), "{text}");
    assert!(text.contains("1 not found") && text.contains("1 skipped"), "{text}");

    let h2 = h.clone();
    let (key, view, json, missing) = tokio::task::spawn_blocking(move || {
        (
            ims(&h2, &["key"]),
            ims(&h2, &["view", "@babel/core@^7"]),
            ims(&h2, &["view", "ms@^2", "--json"]),
            ims(&h2, &["view", "lodash"]),
        )
    })
    .await
    .unwrap();
    let key = stdout(&key);
    assert_eq!(key.trim().len(), 64);
    assert!(text.contains(key.trim()), "ims index names the index key");
    let view = stdout(&view);
    // npm resolved `@babel/core@7` to this version on the day the corpus was taken.
    let npm = corpus.resolved().iter().find(|r| r.name == "@babel/core").unwrap();
    assert!(view.starts_with(&format!("@babel/core@{}\n", npm.version)), "{view}");
    assert!(view.contains(&npm.integrity), "{view}");
    assert!(view.contains("integrity sha512-"), "{view}");
    let m: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(m["name"], "ms");
    assert!(m["version"].as_str().unwrap().starts_with("2."));
    assert!(m["dist"]["tarball"].as_str().unwrap().starts_with(&url));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not in the index"));

    // --names FILE: one name a line, comments and blanks ignored; known ones revalidate (304).
    let list = h.join("names.txt");
    std::fs::write(&list, "# roots\nms\n\nlodash\n").unwrap();
    let out = tokio::task::spawn_blocking(move || {
        ims(&h, &["index", "--from-registry", &url, "--names", list.to_str().unwrap()])
    })
    .await
    .unwrap();
    let text = stdout(&out);
    assert!(text.contains("indexed 1 packages") && text.contains("1 not modified"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_follow_survives_sigkill() {
    let reg = Registry::start().await.unwrap();
    const N: usize = 240;
    for i in 0..N {
        reg.publish(Package::new(&format!("p{i:03}"), "1.0.0").dependency("p000", "^1")).unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    let url = reg.url();
    let args = |h: &std::path::Path| {
        let mut c = support::ims(h);
        c.args([
            "index",
            "--from-registry",
            &url,
            "--changes",
            &url,
            "--page-size",
            "10",
            "--batch",
            "3",
            "--concurrency",
            "2",
        ]);
        c
    };
    // Start a follow and SIGKILL it once it is well under way.
    let mut child = args(home.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut waited = 0;
    while reg.total_hits() < N / 3 && waited < 3000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let (before, since) = {
        let index = open_index(home.path()).await;
        let mut present = 0;
        for i in 0..N {
            if index.versions(&format!("p{i:03}")).await.unwrap().is_some() {
                present += 1;
            }
        }
        (present, index.checkpoint().await.unwrap().map(|c| c.since))
    };
    assert!(before < N, "the follow was killed before it finished ({before} packages, checkpoint {since:?})");

    // Resume: every remaining package is added exactly once.
    let h = home.path().to_owned();
    let mut cmd = args(&h);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let text = stdout(&out);
    assert!(text.contains(&format!("({} new versions)", N - before)), "{before} before; {text}");
    assert!(text.contains(&format!("checkpoint {}", reg.update_seq())), "{text}");
    let index = open_index(home.path()).await;
    for i in 0..N {
        let name = format!("p{i:03}");
        let s = index.versions(&name).await.unwrap().unwrap_or_else(|| panic!("{name} lost"));
        assert_eq!(s.versions.len(), 1);
    }
}
