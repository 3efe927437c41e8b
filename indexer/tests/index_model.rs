//! Model test: random packuments written to the index read back exactly (every field of the
//! install superset, odd shapes included), across several writes that grow the pages.

use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::Trie;
use indexer::model::{Bin, BundleDependencies, DepMap, Engines, Manifest, Packument, Signature};
use indexer::{Document, Index, Update};
use proptest::prelude::*;
use serde_json::json;

fn dep_map() -> impl Strategy<Value = DepMap> {
    prop::collection::btree_map("[a-z@/.-]{1,12}", "[~^<>= 0-9.x|*-]{0,10}", 0..6)
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (
        (dep_map(), dep_map(), dep_map(), dep_map()),
        (
            prop::option::of(".{0,30}"),
            prop::option::of(prop_oneof![
                "[a-z./]{1,10}".prop_map(Bin::Path),
                prop::collection::btree_map("[a-z]{1,6}", "[a-z./]{1,10}", 1..3).prop_map(Bin::Map),
            ]),
        ),
        prop::option::of(prop_oneof![
            prop::collection::btree_map("[a-z]{1,6}", "[<>=0-9. ]{1,8}", 1..3).prop_map(Engines::Map),
            prop::collection::vec("[a-z]{1,6}", 1..3).prop_map(Engines::List),
            "[<>=0-9.]{1,8}".prop_map(Engines::Text),
        ]),
        (prop::collection::vec("!?[a-z0-9]{1,6}", 0..3), any::<(Option<bool>, Option<bool>, Option<bool>)>()),
        (prop::option::of(prop_oneof![
            Just(BundleDependencies::All),
            prop::collection::vec("[a-z]{1,6}", 1..3).prop_map(BundleDependencies::Names)
        ])),
        (
            prop::collection::vec(any::<u8>(), 64),
            prop::option::of("[0-9a-f]{40}|[A-Z]{3}"),
            prop::option::of(0u64..1_000_000),
        ),
        (
            prop::collection::vec(
                ("SHA256:DhQ8wR5APBvFHLF/\\+Tc\\+AYvPOdTpcIDqOhxsBHRwC7U|[a-z]{3}", "[A-Za-z0-9+/]{8}"),
                0..2,
            ),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (deps, opt, peer, dev),
                (deprecated, bin),
                engines,
                (os, flags),
                bundle,
                (digest, shasum, size),
                (sigs, odd),
            )| {
                use base64::Engine as _;
                let mut m = Manifest {
                    dependencies: deps,
                    optional_dependencies: opt,
                    peer_dependencies: peer,
                    dev_dependencies: dev,
                    deprecated,
                    bin,
                    engines,
                    os: os.clone(),
                    cpu: os,
                    ..Manifest::default()
                };
                (m.has_install_script, m.has_shrinkwrap, m.gypfile) = flags;
                m.bundle_dependencies = bundle;
                m.dist.integrity =
                    Some(format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(&digest)));
                m.dist.shasum = shasum;
                m.dist.unpacked_size = size;
                m.dist.signatures = sigs.into_iter().map(|(keyid, sig)| Signature { keyid, sig }).collect();
                if odd {
                    m.license = Some(json!({"type": "MIT", "url": "x"}));
                    m.funding = Some(json!([{"url": "u"}, "v"]));
                    m.directories = json!({"bin": "./b"}).as_object().cloned();
                    m.peer_dependencies_meta = json!({"a": {"optional": true}}).as_object().cloned();
                    m.scripts.insert("postinstall".into(), "node x".into());
                    m.dist.tarball = Some("https://elsewhere.example/x.tgz".into());
                    m.libc = vec!["glibc".into()];
                } else {
                    m.license = Some(json!("ISC"));
                }
                m
            },
        )
}

fn packument() -> impl Strategy<Value = Packument> {
    prop::collection::vec(manifest(), 1..45).prop_map(|ms| {
        let mut p = Packument { name: "@scope/model".into(), ..Packument::default() };
        for (i, mut m) in ms.into_iter().enumerate() {
            let v = format!("{}.{}.0", i / 10, i % 10);
            m.name = p.name.clone();
            m.version = v.clone();
            if m.dist.tarball.is_none() {
                m.dist.tarball = Some(format!("https://registry.npmjs.org/@scope/model/-/model-{v}.tgz"));
            }
            p.time.insert(v.clone(), format!("2021-03-04T05:06:{:02}.{:03}Z", i % 60, i));
            p.dist_tags.insert("latest".into(), v.clone());
            p.versions.insert(v, m);
        }
        p.time.insert("created".into(), "2021-03-04T05:06:00.000Z".into());
        p.time.insert("modified".into(), "not a canonical time".into());
        p.description = Some("model".into());
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_packuments_read_back_exactly(p in packument(), cut in 0usize..45) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
            let mut index = Index::open(Trie::open(feed).await.unwrap()).await.unwrap();
            index.set_upstream(&"https://registry.npmjs.org/".parse().unwrap()).await.unwrap();
            // First an older state of the package (a prefix of its versions), then all of it.
            let mut older = p.clone();
            let keep: Vec<String> = older.versions.keys().take(cut.max(1)).cloned().collect();
            older.versions.retain(|v, _| keep.contains(v));
            for doc in [older, p.clone()] {
                let r = index.write(Update { documents: vec![Document { packument: doc.into(), etag: None }], ..Update::default() }).await.unwrap();
                assert!(r.skipped.is_empty(), "{:?}", r.skipped);
            }
            let got = index.packument(&p.name).await.unwrap().unwrap();
            assert_eq!(got, p);
            assert_eq!(index.abbreviated(&p.name).await.unwrap().unwrap(), p.abbreviated());
        });
    }
}
