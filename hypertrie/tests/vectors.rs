//! Replays the JS hypertrie vectors operation by operation through `Trie` over an in-memory
//! `hypercore::Feed`: every block written must be byte-identical, and every get, list, checkout,
//! history and diff result equal to what JS hypertrie 5.1.3 returned (spec §7).

use std::sync::Arc;

use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::{
    BatchOp, DiffOptions, GetOptions, HistoryOptions, KeyHash, ListOptions, Node, PutOptions, Trie,
    TrieOptions, siphash24,
};
use serde_json::Value;

fn vector(name: &str) -> Value {
    let path = format!("{}/../fixtures/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

async fn open(v: &Value, options: TrieOptions) -> Trie {
    let seed: [u8; 32] = hex::decode(s(&v["seed"])).unwrap().try_into().unwrap();
    let key_pair = KeyPair::from_seed(&seed);
    assert_eq!(key_pair.public.to_hex(), s(&v["public_key"]));
    let feed = FeedBuilder::new(Storage::memory()).key_pair(key_pair).open().await.unwrap();
    Trie::open_with(feed, options).await.unwrap()
}

/// Apply every op, checking what it wrote and returned.
async fn replay(trie: &Trie, v: &Value) {
    for (n, op) in v["ops"].as_array().unwrap().iter().enumerate() {
        let key = op["key"].as_str().unwrap_or_default();
        let hidden = op["hidden"].as_bool().unwrap_or(false);
        let before = trie.version();
        let returned: Value = match s(&op["op"]) {
            "put" => {
                let flags = op["flags"].as_u64().unwrap_or(0) as u32;
                let node = trie
                    .put_with(key, s(&op["value"]).as_bytes(), PutOptions { hidden, flags })
                    .await
                    .unwrap();
                node.seq().into()
            }
            "del" => trie.del_with(key, hidden).await.unwrap().map(|n| n.seq()).into(),
            "batch" => {
                let ops: Vec<BatchOp> = op["ops"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| match s(&o["type"]) {
                        "put" => BatchOp::put(s(&o["key"]), s(&o["value"])),
                        _ => BatchOp::del(s(&o["key"])),
                    })
                    .collect();
                trie.batch(&ops).await.unwrap().iter().map(|n| n.seq()).collect::<Vec<_>>().into()
            }
            other => panic!("unknown op {other}"),
        };
        assert_eq!(returned, op["returned"], "op {n} {op}: returned");
        let written: Vec<u64> = (before..trie.version()).collect();
        let want: Vec<u64> =
            op["seqs_written"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        assert_eq!(written, want, "op {n} {op}: seqs written");
        assert_eq!(trie.version(), op["version_after"].as_u64().unwrap(), "op {n}: version");
    }
    for b in v["blocks"].as_array().unwrap() {
        let seq = b["seq"].as_u64().unwrap();
        let block = trie.feed().get(seq).await.unwrap();
        assert_eq!(hex::encode(block), s(&b["block"]), "block {seq} is byte-identical");
    }
    assert_eq!(trie.version(), v["blocks"].as_array().unwrap().len() as u64);
}

fn node_json(n: &Option<Arc<Node>>) -> Value {
    match n {
        None => Value::Null,
        Some(n) => serde_json::json!({
            "seq": n.seq(),
            "key": n.key(),
            "value_hex": n.value().map(hex::encode),
            "value_utf8": n.value().map(|v| String::from_utf8_lossy(v).into_owned()),
            "flags": n.flags(),
        }),
    }
}

async fn check_gets(trie: &Trie, gets: &Value, hidden: bool, what: &str) {
    for g in gets.as_array().unwrap() {
        let key = s(&g["key"]);
        let got = trie.get_with(key, GetOptions { hidden, prefix: false }).await.unwrap();
        assert_eq!(node_json(&got), g["result"], "{what}: get({key:?}, hidden={hidden})");
    }
}

fn keys_seqs(nodes: &[Arc<Node>]) -> Value {
    nodes.iter().map(|n| serde_json::json!({"key": n.key(), "seq": n.seq()})).collect()
}

async fn check_list(trie: &Trie, want: &Value, prefix: &str, options: ListOptions, what: &str) {
    let got = trie.list(prefix, options).await.unwrap();
    assert_eq!(keys_seqs(&got), *want, "{what}: list({prefix:?}, {options:?})");
}

#[tokio::test]
async fn main_vector() {
    let v = vector("hypertrie.json");
    let trie = open(&v, TrieOptions::default()).await;
    replay(&trie, &v).await;
    let sig = trie.feed().signature(trie.version() - 1).await.unwrap().unwrap();
    assert_eq!(sig.to_hex(), s(&v["core"]["last_signature"]));

    check_gets(&trie, &v["gets"], false, "gets").await;
    check_gets(&trie, &v["hidden_gets"], true, "hidden gets").await;

    let d = ListOptions::default();
    let lists = &v["lists"];
    check_list(&trie, &lists["all"], "", d, "all").await;
    check_list(&trie, &lists["all_reverse"], "", ListOptions { reverse: true, ..d }, "reverse").await;
    check_list(&trie, &lists["prefix_a"], "a", d, "prefix").await;
    check_list(&trie, &lists["prefix_a_gt"], "a", ListOptions { gt: true, ..d }, "gt").await;
    check_list(&trie, &lists["prefix_types"], "@types", d, "types").await;
    check_list(&trie, &lists["prefix_types_node"], "@types/node", d, "types/node").await;
    check_list(&trie, &lists["prefix_express"], "express", d, "express").await;
    let flat = ListOptions { recursive: false, ..d };
    check_list(&trie, &lists["non_recursive_root"], "", flat, "non-recursive").await;
    check_list(&trie, &lists["non_recursive_a"], "a", flat, "non-recursive a").await;
    check_list(&trie, &lists["hidden_all"], "", ListOptions { hidden: true, ..d }, "hidden").await;

    let history = trie.history(HistoryOptions::default()).await.unwrap().collect().await.unwrap();
    let got: Value = history
        .iter()
        .map(|n| {
            serde_json::json!({"seq": n.seq(), "key": n.key(),
                "value_utf8": n.value().map(|v| String::from_utf8_lossy(v).into_owned())})
        })
        .collect();
    assert_eq!(got, v["history"]);

    for c in v["checkouts"].as_array().unwrap() {
        let version = c["version"].as_u64().unwrap();
        let checkout = trie.checkout(version);
        assert_eq!(checkout.version(), version);
        check_gets(&checkout, &c["gets"], false, &format!("checkout {version}")).await;
        check_list(&checkout, &c["list_all"], "", d, &format!("checkout {version}")).await;
        assert!(checkout.put("x", b"y").await.is_err(), "a checkout is read-only");
    }

    for dv in v["diffs"].as_array().unwrap() {
        let head = trie.checkout(dv["head_version"].as_u64().unwrap());
        let other = dv["other_version"].as_u64().unwrap();
        let changes = head
            .diff(other, s(&dv["prefix"]), DiffOptions::default())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(changes.len() as u64, dv["total"].as_u64().unwrap(), "diff against {other}: total");
        let got: Value = changes
            .iter()
            .take(60)
            .map(|c| {
                serde_json::json!({"key": c.key, "left_seq": c.left.as_ref().map(|n| n.seq()),
                    "right_seq": c.right.as_ref().map(|n| n.seq())})
            })
            .collect();
        assert_eq!(got, dv["changes"], "diff against {other}");
    }
}

#[tokio::test]
async fn reset_vector() {
    let v = vector("hypertrie-reset.json");
    let options = TrieOptions {
        metadata: Some(b"meta!".to_vec()),
        subtype: Some("test-subtype".into()),
        ..Default::default()
    };
    let trie = open(&v, options).await;
    replay(&trie, &v).await;
    let header = trie.header().await.unwrap();
    assert_eq!(header.metadata.map(hex::encode), v["metadata"].as_str().map(String::from));
    assert_eq!(header.subtype.as_deref(), Some("test-subtype"));
    check_gets(&trie, &v["gets"], false, "gets").await;
    check_gets(&trie, &v["hidden_gets"], true, "hidden gets").await;
    let history = trie.history(HistoryOptions::default()).await.unwrap().collect().await.unwrap();
    let got: Value = history.iter().map(|n| serde_json::json!({"seq": n.seq(), "key": n.key()})).collect();
    assert_eq!(got, v["history"], "history stops at the first reset node");
    // At a reset node the trie reads as empty.
    let at_reset = trie.checkout(3);
    assert!(at_reset.head().await.unwrap().is_none());
    assert!(at_reset.list("", ListOptions::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn collisions_vector() {
    let v = vector("hypertrie-collisions.json");
    let hash = KeyHash::Custom(Arc::new(|k: &str| {
        hypertrie::key::split(k)
            .flat_map(|c| [siphash24(c.as_bytes())[0] & 0x0f, 0, 0, 0, 0, 0, 0, 0])
            .collect()
    }));
    let trie = open(&v, TrieOptions { hash, ..Default::default() }).await;
    replay(&trie, &v).await;
    check_gets(&trie, &v["gets"], false, "gets").await;
    let d = ListOptions::default();
    check_list(&trie, &v["lists"]["all"], "", d, "all").await;
    check_list(&trie, &v["lists"]["prefix_d"], "d", d, "prefix d").await;
}
