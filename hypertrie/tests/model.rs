//! Model test: random puts, deletes and batches against a `BTreeMap`; gets, lists and diffs
//! checked at every version through checkouts (spec §6.7–§6.12, §6.14).

use std::collections::{BTreeMap, BTreeSet};

use hypercore::testing;
use hypertrie::{BatchOp, DiffOptions, GetOptions, ListOptions, PutOptions, Trie};
use proptest::prelude::*;

/// Keys sharing components, so that paths overlap and prefixes nest.
const KEYS: &[&str] =
    &["a", "a/b", "a/b/c", "a/c", "b", "ab", "@s/x/1.0.0", "@s/x/2.0.0", "@s/y/1.0.0", "k/1", "k/2"];

#[derive(Debug, Clone)]
enum Op {
    Put { key: usize, value: u8, hidden: bool },
    Del { key: usize, hidden: bool },
    Batch(Vec<(usize, Option<u8>)>),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        5 => (key.clone(), any::<u8>(), prop::bool::weighted(0.15)).prop_map(|(key, value, hidden)| Op::Put { key, value, hidden }),
        3 => (key.clone(), prop::bool::weighted(0.15)).prop_map(|(key, hidden)| Op::Del { key, hidden }),
        2 => prop::collection::vec((key, prop::option::weighted(0.7, any::<u8>())), 1..6).prop_map(Op::Batch),
    ]
}

/// The trie's state: (hidden, key) -> value.
type Model = BTreeMap<(bool, String), Vec<u8>>;

fn value(key: &str, v: u8) -> Vec<u8> {
    format!("{key}={v}").into_bytes()
}

fn under(prefix: &str, key: &str) -> bool {
    prefix.is_empty() || key == prefix || key.starts_with(&format!("{prefix}/"))
}

async fn check(trie: &Trie, model: &Model) {
    for key in KEYS {
        for hidden in [false, true] {
            let got = trie.get_with(key, GetOptions { hidden, prefix: false }).await.unwrap();
            let want = model.get(&(hidden, key.to_string()));
            assert_eq!(
                got.as_ref().and_then(|n| n.value()),
                want.map(Vec::as_slice),
                "get {key:?} hidden={hidden} at {}",
                trie.version()
            );
        }
    }
    for prefix in ["", "a", "a/b", "@s", "@s/x", "k"] {
        for hidden in [false, true] {
            let list = trie.list(prefix, ListOptions { hidden, ..Default::default() }).await.unwrap();
            let got: Vec<(String, Vec<u8>)> =
                list.iter().map(|n| (n.key().to_string(), n.value().unwrap().to_vec())).collect();
            let got_set: BTreeMap<_, _> = got.iter().cloned().collect();
            assert_eq!(got_set.len(), got.len(), "no key listed twice");
            let want: BTreeMap<String, Vec<u8>> = model
                .iter()
                .filter(|((h, k), _)| *h == hidden && under(prefix, k))
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(got_set, want, "list {prefix:?} hidden={hidden} at {}", trie.version());
        }
    }
}

async fn run(ops: Vec<Op>) {
    let trie = Trie::open(testing::memory_feed(3).await.unwrap()).await.unwrap();
    let mut model = Model::new();
    let mut versions = vec![(trie.version(), model.clone())];
    for op in ops {
        match op {
            Op::Put { key, value: v, hidden } => {
                let k = KEYS[key];
                trie.put_with(k, &value(k, v), PutOptions { hidden, flags: 0 }).await.unwrap();
                model.insert((hidden, k.to_string()), value(k, v));
            }
            Op::Del { key, hidden } => {
                let k = KEYS[key];
                let written = trie.del_with(k, hidden).await.unwrap();
                let removed = model.remove(&(hidden, k.to_string()));
                assert_eq!(written.is_some(), removed.is_some(), "del {k:?} writes iff the key was there");
            }
            Op::Batch(ops) => {
                let mut batch = Vec::new();
                for (key, v) in ops {
                    let k = KEYS[key];
                    match v {
                        Some(v) => {
                            batch.push(BatchOp::put(k, value(k, v)));
                            model.insert((false, k.to_string()), value(k, v));
                        }
                        None => {
                            batch.push(BatchOp::del(k));
                            model.remove(&(false, k.to_string()));
                        }
                    }
                }
                trie.batch(&batch).await.unwrap();
            }
        }
        versions.push((trie.version(), model.clone()));
    }
    for (version, state) in &versions {
        check(&trie.checkout(*version), state).await;
    }
    check(&trie, &model).await;
    // Every key whose value differs between the latest and an older version shows up in the diff.
    for (version, state) in versions.iter().step_by(3) {
        let diff = trie.diff(*version, "", DiffOptions::default()).await.unwrap().collect().await.unwrap();
        let keys: BTreeSet<String> = diff.iter().map(|d| d.key.clone()).collect();
        for k in KEYS {
            if model.get(&(false, k.to_string())) != state.get(&(false, k.to_string())) {
                assert!(keys.contains(*k), "diff against {version} misses {k:?}");
            }
        }
        for d in &diff {
            assert_ne!(
                d.left.as_ref().map(|n| n.seq()),
                d.right.as_ref().map(|n| n.seq()),
                "a change changes something"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn trie_matches_a_btreemap(ops in prop::collection::vec(op(), 1..28)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}
