//! Ingest against the fixture registry: names, revalidation, hostile input, `_changes`
//! following with deletions, and resuming after a failure mid-feed.

use std::time::Duration;

use fixtures::{Corpus, Fault, Package, Registry};
use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::Trie;
use indexer::Index;
use indexer::ingest::{Ingest, IngestOptions};
use indexer::model::Packument;

async fn memory_index() -> Index {
    let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    Index::open(Trie::open(feed).await.unwrap()).await.unwrap()
}

fn fast() -> IngestOptions {
    IngestOptions { backoff: Duration::from_millis(1), retries: 3, ..IngestOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_from_the_corpus_then_revalidated_with_etags() {
    let corpus = Corpus::load().unwrap();
    let reg = Registry::with_corpus(&corpus).await.unwrap();
    let names: Vec<String> = ["express", "ms", "@babel/core", "lodash"].map(String::from).to_vec();
    let ingest = Ingest::new(memory_index().await, &reg.url(), fast()).await.unwrap();
    let report = ingest.names(&names).await.unwrap();
    assert_eq!(report.fetched, 4);
    assert_eq!(report.packages, 4);
    assert!(report.versions > 500);
    for name in &names {
        let upstream = Packument::from_slice(corpus.packument(name).unwrap()).unwrap();
        let got = ingest.index().versions(name).await.unwrap().unwrap();
        assert_eq!(got.dist_tags, upstream.dist_tags, "{name}");
        // Tarball URLs come back pointing at the registry they were ingested from.
        let latest = &upstream.dist_tags["latest"];
        let m = ingest.index().version(name, latest).await.unwrap().unwrap();
        let base = name.rsplit('/').next().unwrap();
        assert_eq!(m.dist.tarball.unwrap(), format!("{}{name}/-/{base}-{latest}.tgz", reg.url()));
        assert_eq!(m.dist.integrity, upstream.versions[latest].dist.integrity);
    }
    // Second run: every document revalidates to 304, nothing is written.
    let again = ingest.names(&names).await.unwrap();
    assert_eq!((again.not_modified, again.fetched, again.packages), (4, 0, 0));
}

#[tokio::test]
async fn hostile_input_is_skipped_counted_and_loses_nothing() {
    let reg = Registry::start().await.unwrap();
    reg.publish(Package::new("good", "1.0.0").dependency("dep", "^1")).unwrap();
    let opts = IngestOptions { max_document_bytes: 64 << 10, ..fast() };
    let ingest = Ingest::new(memory_index().await, &reg.url(), opts).await.unwrap();
    assert_eq!(ingest.names(&["good".to_owned()]).await.unwrap().versions, 1);

    reg.publish_raw("good", b"{\"name\": \"good\", \"versions\": ".to_vec()); // truncated JSON
    reg.publish_raw("other", br#"{"name":"not-other","versions":{}}"#.to_vec());
    reg.publish_raw("huge", format!(r#"{{"name":"huge","x":"{}"}}"#, "a".repeat(100 << 10)).into_bytes());
    reg.publish_raw(
        "odd",
        br#"{"name":"odd","dist-tags":{"latest":"1.0.0"},"versions":{
            "1.0.0":{"name":"odd","version":"1.0.0","dist":{"shasum":"00ff"}},
            "v2":{"name":"odd","version":"v2","dist":{"shasum":"00ff"}},
            "1.0.1":{"name":"odd","version":"1.0.1","dist":{}},
            "3.0.0":"junk"}}"#
            .to_vec(),
    );
    reg.fail(Fault::status("/odd", 429, 2));
    reg.fail(Fault::status("/odd", 503, 1));
    let names: Vec<String> =
        ["good", "other", "huge", "odd", "../etc/passwd", "a\u{0}b", &"x".repeat(1 << 20), "missing"]
            .map(String::from)
            .to_vec();
    let report = ingest.names(&names).await.unwrap();
    let reasons: Vec<String> =
        report.skipped.iter().map(|s| format!("{} {:?}: {}", s.name, s.version, s.reason)).collect();
    assert_eq!(report.skipped.len(), 9, "{reasons:#?}");
    for (who, why) in [
        ("good", "bad document"),
        ("other", "named \"not-other\""),
        ("huge", "over the"),
        ("odd", "not a canonical semver"),
        ("odd", "no integrity"),
        ("odd", "not a JSON object"),
        ("../etc/passwd", "invalid name"),
        ("a\u{0}b", "invalid name"),
        ("xxxxxxxx", "at most 214"),
    ] {
        assert!(
            reasons.iter().any(|r| r.starts_with(who) && r.contains(why)),
            "{who}: {why} in {reasons:#?}"
        );
    }
    assert_eq!(report.not_found, 1);
    // The good version of "good" is still there; "odd" kept its one valid version despite the
    // 429s and the 503.
    assert_eq!(ingest.index().version("good", "1.0.0").await.unwrap().unwrap().dependencies["dep"], "^1");
    let odd = ingest.index().versions("odd").await.unwrap().unwrap();
    assert_eq!(odd.versions.iter().map(|v| v.version.as_str()).collect::<Vec<_>>(), ["1.0.0"]);
    assert!(ingest.index().versions("huge").await.unwrap().is_none());
}

#[tokio::test]
async fn follows_changes_with_deletions_and_resumes_after_a_failure() {
    let reg = Registry::start().await.unwrap();
    for i in 0..40 {
        reg.publish(Package::new(&format!("pkg-{i:02}"), "1.0.0").dependency("pkg-00", "^1")).unwrap();
    }
    let opts = IngestOptions { page_size: 7, batch_documents: 3, retries: 1, ..fast() };
    let ingest = Ingest::new(memory_index().await, &reg.url(), opts.clone()).await.unwrap();

    // Pages hold 7 rows; the third (pkg-14..pkg-20) fails at pkg-20 after two of its batches
    // were written. The follow stops with an error; the checkpoint is the end of page two.
    reg.fail(Fault::status("/pkg-2", 500, 1000));
    assert!(ingest.follow(&reg.url()).await.is_err());
    let cp = ingest.index().checkpoint().await.unwrap().unwrap();
    assert_eq!(cp.since, "14");
    assert!(ingest.index().versions("pkg-19").await.unwrap().is_some());

    // Upstream moves on meanwhile: one package unpublished, one published.
    reg.clear_faults();
    reg.unpublish("pkg-03");
    reg.publish(Package::new("pkg-40", "1.0.0")).unwrap();

    // Resume: only what is missing is written; the six documents of the half-done page
    // revalidate to 304.
    let r = ingest.follow(&reg.url()).await.unwrap();
    assert_eq!(r.versions, 21, "pkg-20..pkg-40, each once");
    assert_eq!(r.not_modified, 6);
    assert_eq!(r.tombstoned, 1);
    assert_eq!(r.since.as_deref(), Some(reg.update_seq().to_string().as_str()));
    let gone = ingest.index().versions("pkg-03").await.unwrap().unwrap();
    assert!(gone.versions.is_empty() && gone.dist_tags.is_empty());
    assert!(ingest.index().version("pkg-03", "1.0.0").await.unwrap().is_none());

    // Caught up: another follow reads one empty page and writes nothing.
    let idle = ingest.follow(&reg.url()).await.unwrap();
    assert_eq!((idle.pages, idle.versions, idle.fetched), (0, 0, 0));

    // The resumed index says the same as one built in a single clean run (which never saw
    // pkg-03, so it has no tombstone for it either: deletions of unknown names cost nothing).
    let clean = Ingest::new(memory_index().await, &reg.url(), opts).await.unwrap();
    clean.follow(&reg.url()).await.unwrap();
    for i in 0..=40 {
        let name = format!("pkg-{i:02}");
        assert_eq!(
            ingest.index().versions(&name).await.unwrap().map(|s| s.versions).unwrap_or_default(),
            clean.index().versions(&name).await.unwrap().map(|s| s.versions).unwrap_or_default(),
            "{name}"
        );
    }
    // Re-publishing an unpublished version never resurrects it.
    reg.publish(Package::new("pkg-03", "1.0.0")).unwrap();
    let r = ingest.follow(&reg.url()).await.unwrap();
    assert_eq!(r.versions, 0);
    assert!(r.skipped.iter().any(|s| s.name == "pkg-03" && s.reason.contains("never resurrected")));
}
