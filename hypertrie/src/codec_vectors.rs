//! Every block of the JS vectors decoded and re-encoded byte for byte, and the vector's key
//! hashes and paths recomputed (spec §6.2–§6.6, §7).

use serde_json::Value;

use crate::buckets::{Buckets, BucketsBuilder};
use crate::header::Header;
use crate::key;
use crate::node::Node;
use crate::path::{KeyHash, KeyPath, siphash24};

fn vector(name: &str) -> Value {
    let path = format!("{}/../fixtures/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hex(v: &Value) -> Vec<u8> {
    ::hex::decode(v.as_str().unwrap()).unwrap()
}

/// The collision vector's test hash: per component, its SipHash's first byte & 0x0f, then 7 zeros.
pub(crate) fn collision_hash() -> KeyHash {
    KeyHash::Custom(std::sync::Arc::new(|k: &str| {
        key::split(k).flat_map(|c| [siphash24(c.as_bytes())[0] & 0x0f, 0, 0, 0, 0, 0, 0, 0]).collect()
    }))
}

fn check_blocks(name: &str, hasher: &KeyHash) -> usize {
    let v = vector(name);
    let blocks = v["blocks"].as_array().unwrap();
    for b in blocks {
        let seq = b["seq"].as_u64().unwrap();
        let block = hex(&b["block"]);
        let d = &b["decoded"];
        if seq == 0 {
            let h = Header::decode(&block).unwrap();
            let dh = &d["header"];
            assert_eq!(h.kind, dh["type"].as_str().unwrap());
            assert_eq!(h.metadata, dh["metadata"].as_str().map(|m| ::hex::decode(m).unwrap()));
            assert_eq!(h.subtype.as_deref(), dh["subtype"].as_str());
            assert_eq!(h.encode(), block, "{name}: header re-encodes");
            continue;
        }
        let node =
            Node::decode(block.clone(), seq, hasher).unwrap_or_else(|e| panic!("{name} block {seq}: {e}"));
        assert_eq!(node.key(), d["key"].as_str().unwrap(), "{name} {seq} key");
        assert_eq!(
            node.value().map(|v| v.to_vec()),
            d["value_hex"].as_str().map(|h| ::hex::decode(h).unwrap())
        );
        assert_eq!(node.hidden(), d["hidden"].as_bool().unwrap());
        assert_eq!(u64::from(node.flags()), d["user_flags"].as_u64().unwrap());
        assert_eq!(::hex::encode(node.path().hash()), d["path_hash"].as_str().unwrap(), "{name} {seq} hash");
        let split: Vec<&str> = key::split(node.key()).collect();
        let want: Vec<&str> =
            d["key_split"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(split, want);
        // the trie, as JS's array of buckets
        let dense: Vec<Option<Vec<u64>>> = d["trie"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_array().map(|s| s.iter().map(|x| x.as_u64().unwrap_or(0)).collect()))
            .collect();
        assert_eq!(node.trie.to_dense(), dense, "{name} {seq} trie");
        // re-encode the trie field from the buckets, then the whole node
        let field = hex(&d["trie_buffer"]);
        let mut builder = BucketsBuilder::new();
        for (i, bucket) in dense.iter().enumerate() {
            for (slot, &s) in bucket.iter().flatten().enumerate() {
                if s != 0 {
                    builder.push(i, slot, s);
                }
            }
        }
        let mut encoded = Vec::new();
        builder.encode(&mut encoded);
        assert_eq!(encoded, field, "{name} {seq} trie field");
        assert_eq!(Buckets::decode(&field, seq).unwrap(), node.trie);
        assert_eq!(d["seq_field"].as_u64().unwrap(), seq);
        let written = Node::written(
            node.path().clone(),
            node.value(),
            d["flags_field"].as_u64().unwrap(),
            seq,
            builder,
        );
        assert_eq!(written.block(), block, "{name} {seq} node re-encodes");
        assert_eq!(written, node);
    }
    blocks.len()
}

#[test]
fn main_vector_blocks() {
    assert_eq!(check_blocks("hypertrie.json", &KeyHash::SipHash), 132);
}

#[test]
fn reset_vector_blocks() {
    assert_eq!(check_blocks("hypertrie-reset.json", &KeyHash::SipHash), 10);
}

#[test]
fn collision_vector_blocks() {
    let v = vector("hypertrie-collisions.json");
    for h in v["hashes"].as_array().unwrap() {
        assert_eq!(
            ::hex::encode(collision_hash().hash(h["key"].as_str().unwrap())),
            h["hash"].as_str().unwrap()
        );
    }
    assert_eq!(check_blocks("hypertrie-collisions.json", &collision_hash()), 36);
}

#[test]
fn siphash_and_paths() {
    let v = vector("hypertrie.json");
    for s in v["siphash"].as_array().unwrap() {
        let bytes = hex(&s["utf8_hex"]);
        assert_eq!(::hex::encode(siphash24(&bytes)), s["siphash24_zero_key"].as_str().unwrap());
    }
    for p in v["paths"].as_array().unwrap() {
        let path =
            KeyPath::new(p["key"].as_str().unwrap(), p["hidden"].as_bool().unwrap(), &KeyHash::SipHash);
        assert_eq!(path.key(), p["normalized_key"].as_str().unwrap());
        assert_eq!(::hex::encode(path.hash()), p["hash"].as_str().unwrap());
        assert_eq!(path.len() as u64, p["length"].as_u64().unwrap());
        let digits: Vec<u64> = (0..path.len()).map(|i| path.digit(i) as u64).collect();
        let want: Vec<u64> = p["path"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        assert_eq!(digits, want, "path of {:?}", path.key());
    }
}
