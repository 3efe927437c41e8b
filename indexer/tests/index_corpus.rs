//! Round trip over the whole corpus: every package written to the index reads back as the
//! packument (and abbreviated packument) derived directly from the upstream document, minus
//! the versions the index refuses (non-semver keys), with every integrity present.

use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::Trie;
use indexer::model::Packument;
use indexer::{Document, Index, Update};

const UPSTREAM: &str = "https://registry.npmjs.org/";

async fn memory_index() -> Index {
    let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    let mut index = Index::open(Trie::open(feed).await.unwrap()).await.unwrap();
    index.set_upstream(&UPSTREAM.parse().unwrap()).await.unwrap();
    index
}

fn is_canonical_semver(v: &str) -> bool {
    nodejs_semver::Version::parse(v).is_ok_and(|p| p.to_string() == v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)]
async fn corpus_round_trips_through_the_index() {
    let corpus = fixtures::Corpus::load().unwrap();
    let index = memory_index().await;
    let mut upstream = Vec::new();
    for (_, json) in corpus.packuments() {
        upstream.push(Packument::from_slice(json).unwrap());
    }
    let mut skipped = 0;
    let mut record_bytes = 0;
    for chunk in upstream.chunks(24) {
        let documents = chunk
            .iter()
            .map(|p| Document { packument: p.clone().into(), etag: Some("\"e\"".into()) })
            .collect();
        let report = index.write(Update { documents, ..Update::default() }).await.unwrap();
        for s in &report.skipped {
            let v = s.version.as_deref().unwrap_or_default();
            assert!(!is_canonical_semver(v), "{}@{v} skipped: {}", s.name, s.reason);
        }
        skipped += report.skipped.len();
        record_bytes += report.record_bytes;
    }
    assert!(skipped > 0 && skipped < 100, "only odd old versions are refused ({skipped})");

    let mut versions = 0;
    let mut corgi_bytes = 0;
    for mut want in upstream {
        want.versions.retain(|v, _| is_canonical_semver(v));
        let got = index.packument(&want.name).await.unwrap().expect(&want.name);
        for (v, m) in &want.versions {
            assert_eq!(got.versions[v], *m, "{}@{v}", want.name);
            assert!(got.versions[v].dist.integrity.is_some() || got.versions[v].dist.shasum.is_some());
        }
        assert_eq!(got, want, "{}", want.name);
        let corgi = index.abbreviated(&want.name).await.unwrap().unwrap();
        assert_eq!(corgi, want.abbreviated(), "{}", want.name);
        corgi_bytes += serde_json::to_vec(&corgi).unwrap().len();
        let summary = index.versions(&want.name).await.unwrap().unwrap();
        assert_eq!(summary.versions.len(), want.versions.len());
        assert_eq!(summary.dist_tags, want.dist_tags);
        assert_eq!(index.etag(&want.name).await.unwrap().as_deref(), Some("\"e\""));
        versions += want.versions.len();
    }
    let bytes = index.trie().feed().byte_len();
    eprintln!(
        "{versions} versions: index {bytes} B ({} B/version), abbreviated JSON {corgi_bytes} B, ratio {:.1}%; keys+values {record_bytes} B",
        bytes / versions as u64,
        100.0 * bytes as f64 / corgi_bytes as f64
    );

    // Re-ingesting the same documents changes nothing.
    let again = Packument::from_slice(corpus.packument("ms").unwrap()).unwrap();
    let report = index
        .write(Update {
            documents: vec![Document { packument: again.into(), etag: Some("\"e\"".into()) }],
            ..Update::default()
        })
        .await
        .unwrap();
    assert_eq!((report.unchanged, report.ops), (1, 0));
}

#[tokio::test]
async fn pages_grow_across_writes_and_touched_blocks_cover_a_read() {
    let index = memory_index().await;
    let mut doc = Packument { name: "grow".into(), ..Packument::default() };
    for step in [10, 45, 70] {
        for i in doc.versions.len()..step {
            let v = format!("1.0.{i}");
            let mut m =
                indexer::model::Manifest { name: "grow".into(), version: v.clone(), ..Default::default() };
            m.dist.integrity = Some(format!("sha512-{i}"));
            m.dependencies.insert("dep".into(), format!("^{}", i / 20));
            doc.versions.insert(v.clone(), m);
            doc.time.insert(v.clone(), format!("2020-01-01T00:00:{:02}.000Z", i % 60));
            doc.dist_tags.insert("latest".into(), v);
        }
        let report = index
            .write(Update {
                documents: vec![Document { packument: doc.clone().into(), etag: None }],
                ..Update::default()
            })
            .await
            .unwrap();
        assert!(report.versions > 0);
        assert_eq!(index.packument("grow").await.unwrap().unwrap(), doc);
    }
    // 70 versions: pages 0 and 1 full (32 each), page 2 holds 6.
    assert!(index.trie().get("v/grow/2").await.unwrap().is_some());
    assert!(index.trie().get("v/grow/3").await.unwrap().is_none());
    let m = index.version("grow", "1.0.69").await.unwrap().unwrap();
    assert_eq!(m.dependencies["dep"], "^3");
    let touched = index.touched_blocks(&[("grow", Some("1.0.69"))]).await.unwrap();
    assert!(touched.len() >= 2, "{touched:?}");
    let p_node = index.trie().get("p/grow").await.unwrap().unwrap();
    let v_node = index.trie().get("v/grow/2").await.unwrap().unwrap();
    assert!(touched.contains(&p_node.seq()) && touched.contains(&v_node.seq()));
    // A whole packument reads every page, the upstream key, and proves absent names absent.
    let all = index.touched_packuments(&["grow", "absent"]).await.unwrap();
    for page in 0..3 {
        let node = index.trie().get(&format!("v/grow/{page}")).await.unwrap().unwrap();
        assert!(all.contains(&node.seq()), "page {page}: {all:?}");
    }
    assert!(all.is_superset(&touched));
    assert!(all.is_superset(&index.trie().touched("p/absent").await.unwrap()));

    // From the summary, one version reads only its page: the same manifest as `version`.
    let summary = index.versions("grow").await.unwrap().unwrap();
    for v in ["1.0.0", "1.0.40", "1.0.69"] {
        assert_eq!(
            index.version_in(&summary, v).await.unwrap(),
            index.version("grow", v).await.unwrap(),
            "{v}"
        );
    }
    assert_eq!(index.version_in(&summary, "9.9.9").await.unwrap(), None);
    let picked = index.touched_summaries(&["grow", "absent"], &[("grow", "1.0.69")]).await.unwrap();
    assert!(picked.is_superset(&touched) && picked.contains(&v_node.seq()));
    assert!(picked.is_superset(&index.trie().touched("p/absent").await.unwrap()));
    // (The trie path to page 2 may pass through an earlier page's node, but not through all.)
    assert!(picked.is_subset(&all) && picked.len() < all.len(), "{picked:?} vs {all:?}");
}

#[tokio::test]
async fn corrupt_or_hostile_values_are_errors_not_panics() {
    let index = memory_index().await;
    let trie = index.trie();
    trie.put("p/garbage", b"\x50\xff\xff\xff\xff\xff").await.unwrap();
    trie.put("p/wrongtag", b"hello").await.unwrap();
    for name in ["garbage", "wrongtag"] {
        assert!(matches!(index.versions(name).await, Err(indexer::IndexError::Corrupt { .. })), "{name}");
    }
    // A page that inflates to far more than any real page (a deflate bomb from a peer).
    let mut doc = Packument { name: "bomb".into(), ..Packument::default() };
    let mut m =
        indexer::model::Manifest { name: "bomb".into(), version: "1.0.0".into(), ..Default::default() };
    m.dist.integrity = Some("sha512-x".into());
    doc.versions.insert("1.0.0".into(), m);
    index
        .write(Update {
            documents: vec![Document { packument: doc.into(), etag: None }],
            ..Update::default()
        })
        .await
        .unwrap();
    let bomb = {
        use std::io::Write as _;
        let mut z = flate2::write::DeflateEncoder::new(vec![0x56], flate2::Compression::best());
        z.write_all(&vec![0u8; 64 << 20]).unwrap();
        z.finish().unwrap()
    };
    assert!(bomb.len() < 1 << 20);
    trie.put("v/bomb/0", &bomb).await.unwrap();
    assert!(matches!(index.version("bomb", "1.0.0").await, Err(indexer::IndexError::Corrupt { .. })));
}
