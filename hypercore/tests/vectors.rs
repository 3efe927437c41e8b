//! Byte compatibility with JS hypercore 9.12.0: replays `fixtures/vectors/hypercore.json` and
//! `hypercore-large.json` (made by the JS packages) and checks every hash, root, signature,
//! offset, seek, proof, digest and sparse-replay step.

use hypercore::{
    Feed, FeedBuilder, KeyPair, Node, Proof, ProofOptions, PublicKey, Signature, Storage, VerifyError,
    flat_tree, roots_hash, signable,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/../fixtures/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn node(v: &Value) -> Node {
    Node { index: u(&v["index"]), hash: bytes(&v["hash"]).try_into().unwrap(), size: u(&v["size"]) }
}

fn nodes(v: &Value) -> Vec<Node> {
    v.as_array().unwrap().iter().map(node).collect()
}

fn sig(v: &Value) -> Option<Signature> {
    v.as_str().map(|s| Signature::from_bytes(&hex::decode(s).unwrap()).unwrap())
}

fn key_pair(v: &Value) -> KeyPair {
    let seed: [u8; 32] = bytes(&v["seed"]).try_into().unwrap();
    let kp = KeyPair::from_seed(&seed);
    assert_eq!(kp.public.as_bytes().to_vec(), bytes(&v["public_key"]));
    assert_eq!(kp.secret.as_bytes().to_vec(), bytes(&v["secret_key"]));
    assert_eq!(kp.public.discovery_key().as_bytes().to_vec(), bytes(&v["discovery_key"]));
    assert_eq!(v["public_key"].as_str().unwrap().parse::<PublicKey>().unwrap(), kp.public);
    kp
}

/// The small writer feed, built by replaying every append step.
async fn small_writer(v: &Value) -> Feed {
    let feed = FeedBuilder::new(Storage::memory()).key_pair(key_pair(v)).open().await.unwrap();
    let verifier = feed.public_key().verifier().unwrap();
    for step in v["steps"].as_array().unwrap() {
        let blocks: Vec<Vec<u8>> = step["append"].as_array().unwrap().iter().map(bytes).collect();
        assert_eq!(feed.len(), u(&step["length_before"]));
        let first = feed.append_batch(&blocks).await.unwrap();
        assert_eq!(first, u(&step["length_before"]));
        let len = u(&step["length_after"]);
        assert_eq!(feed.len(), len);
        assert_eq!(feed.byte_len(), u(&step["byte_length_after"]));
        for n in nodes(&step["nodes_written"]) {
            assert_eq!(feed.tree_node(n.index), Some(n), "node {} after length {len}", n.index);
        }
        let full_roots: Vec<u64> = step["full_roots"].as_array().unwrap().iter().map(u).collect();
        assert_eq!(flat_tree::full_roots(2 * len), full_roots);
        let roots = nodes(&step["roots"]);
        for r in &roots {
            assert_eq!(feed.tree_node(r.index).as_ref(), Some(r));
        }
        assert_eq!(roots_hash(&roots).to_vec(), bytes(&step["tree_hash"]));
        let signable = signable(&roots, len);
        assert_eq!(signable.to_vec(), bytes(&step["signable"]));
        let (slot, signature) = feed.signature_at(len - 1).unwrap();
        assert_eq!(slot, u(&step["signature_index"]));
        assert_eq!(Some(signature), sig(&step["signature"]), "signature at length {len}");
        assert!(verifier.verify(&signable, &signature));
        // The JS `tree` and `signatures` files are a rendering of the same state (spec §4.2,
        // §4.3): check that our nodes and signature slots render to the exact JS bytes.
        assert_eq!(js_tree_file(&feed), bytes(&step["tree_file_after"]), "tree file at length {len}");
        assert_eq!(js_signatures_file(&feed), bytes(&step["signatures_file_after"]), "signatures at {len}");
    }
    feed
}

/// The JS `tree` file: 32-byte header, then `hash · u64be(size)` at `32 + 40 * index`.
fn js_tree_file(feed: &Feed) -> Vec<u8> {
    let mut out = hex::decode("0502570200002807424c414b4532620000000000000000000000000000000000").unwrap();
    for index in 0..2 * feed.len() - 1 {
        match feed.tree_node(index) {
            Some(n) => {
                out.extend_from_slice(&n.hash);
                out.extend_from_slice(&n.size.to_be_bytes());
            }
            None => out.extend_from_slice(&[0u8; 40]),
        }
    }
    out
}

/// The JS `signatures` file: 32-byte header, then 64 bytes per length, blank between batches.
fn js_signatures_file(feed: &Feed) -> Vec<u8> {
    let mut out = hex::decode("0502570100004007456432353531390000000000000000000000000000000000").unwrap();
    for slot in 0..feed.len() {
        match feed.signature_at(slot) {
            Some((at, s)) if at == slot => out.extend_from_slice(s.as_bytes()),
            _ => out.extend_from_slice(&[0u8; 64]),
        }
    }
    out
}

#[tokio::test]
async fn small_feed_hashes_roots_signatures() {
    let v = load("hypercore.json");
    let feed = small_writer(&v).await;
    assert_eq!(feed.len(), u(&v["length"]));
    assert_eq!(feed.byte_len(), u(&v["byte_length"]));
    for b in v["blocks"].as_array().unwrap() {
        let i = u(&b["index"]);
        assert_eq!(feed.get(i).await.unwrap(), bytes(&b["data"]));
        assert_eq!(feed.byte_offset(i).await.unwrap(), u(&b["byte_offset"]));
        let leaf = feed.tree_node(2 * i).unwrap();
        assert_eq!(leaf.size, u(&b["size"]));
        assert_eq!(leaf.hash.to_vec(), bytes(&b["leaf_hash"]));
        assert_eq!(hypercore::leaf_hash(&bytes(&b["data"])).to_vec(), bytes(&b["leaf_hash"]));
    }
    let all = nodes(&v["tree_nodes"]);
    let indexes: Vec<u64> = all.iter().map(|n| n.index).collect();
    assert_eq!(feed.tree_indexes(), indexes);
    for n in all {
        assert_eq!(feed.tree_node(n.index), Some(n));
    }
    for s in v["signature_lookup"].as_array().unwrap() {
        let (slot, signature) = feed.signature_at(u(&s["index"])).unwrap();
        assert_eq!(slot, u(&s["found_at"]));
        assert_eq!(Some(signature), sig(&s["signature"]));
        assert_eq!(feed.signature(u(&s["index"])).await.unwrap(), Some(signature));
    }
    for s in v["seeks"].as_array().unwrap() {
        assert_eq!(feed.seek(u(&s["byte_offset"])).unwrap(), (u(&s["index"]), u(&s["offset"])), "seek {s}");
    }
}

#[tokio::test]
async fn small_feed_proofs() {
    let v = load("hypercore.json");
    let feed = small_writer(&v).await;
    for p in v["proofs_fresh_remote"].as_array().unwrap() {
        let i = u(&p["index"]);
        let (proof, verified_by) =
            feed.proof_with(i, ProofOptions { digest: u(&p["digest"]), hash: false }).unwrap();
        assert_eq!(proof.nodes, nodes(&p["nodes"]), "proof of block {i}");
        assert_eq!(verified_by, u(&p["verified_by"]));
        assert_eq!(proof.signature, sig(&p["signature"]));
        assert_eq!(feed.proof(i, 0).await.unwrap(), proof);
    }
    let h = &v["hash_only_proof_block_4"];
    let (proof, _) = feed.proof_with(u(&h["index"]), ProofOptions { digest: 0, hash: true }).unwrap();
    assert_eq!(proof.nodes, nodes(&h["nodes"]));
    assert_eq!(proof.signature, sig(&h["signature"]));
}

#[tokio::test]
async fn sparse_replay_matches_js() {
    let v = load("hypercore.json");
    let feed = small_writer(&v).await;
    let clone = FeedBuilder::new(Storage::memory()).public_key(feed.public_key()).open().await.unwrap();
    for step in v["sparse_replay"].as_array().unwrap() {
        let i = u(&step["index"]);
        let digest = clone.digest(i);
        assert_eq!(digest, u(&step["digest"]), "digest of block {i}");
        let (proof, verified_by) = feed.proof_with(i, ProofOptions { digest, hash: false }).unwrap();
        assert_eq!(proof.nodes, nodes(&step["proof_nodes"]), "proof of block {i}");
        assert_eq!(verified_by, u(&step["verified_by"]));
        assert_eq!(proof.signature, sig(&step["signature"]));
        let data = feed.get(i).await.unwrap();
        assert!(step["accepted"].as_bool().unwrap());
        clone.put(i, &data, &proof).await.unwrap();
        assert_eq!(clone.len(), u(&step["clone_length_after"]));
        let want: Vec<u64> = step["clone_tree_nodes_after"].as_array().unwrap().iter().map(u).collect();
        assert_eq!(clone.tree_indexes(), want, "clone tree after block {i}");
        assert_eq!(clone.get_local(i).unwrap(), Some(data));
    }
    assert!(!clone.has(13));
}

#[tokio::test]
async fn tampered_put_is_rejected() {
    let v = load("hypercore.json");
    assert_eq!(v["tampered_put_block_6_error"], "Remote signature could not be verified");
    let feed = small_writer(&v).await;
    let clone = FeedBuilder::new(Storage::memory()).public_key(feed.public_key()).open().await.unwrap();
    let proof = feed.proof(6, clone.digest(6)).await.unwrap();
    let err = clone.put(6, b"XXXXXXX", &proof).await.unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { seq: 6 }), "{err}");
    assert!(!clone.has(6) && clone.is_empty() && clone.tree_indexes().is_empty());

    // Tampered node hash, node size, signature, wrong index, missing signature: all rejected.
    let good = feed.get(6).await.unwrap();
    let mut bad = proof.clone();
    bad.nodes[0].hash[0] ^= 1;
    assert!(clone.put(6, &good, &bad).await.is_err());
    let mut bad = proof.clone();
    bad.nodes[1].size += 1;
    assert!(clone.put(6, &good, &bad).await.is_err());
    let mut bad = proof.clone();
    let mut s = *bad.signature.unwrap().as_bytes();
    s[10] ^= 0x40;
    bad.signature = Some(Signature::from_bytes(&s).unwrap());
    assert!(clone.put(6, &good, &bad).await.is_err());
    let bad = Proof { signature: None, ..proof.clone() };
    assert!(matches!(clone.put(6, &good, &bad).await, Err(VerifyError::MissingSignature { seq: 6 })));
    assert!(clone.put(5, &good, &proof).await.is_err());
    assert!(clone.tree_indexes().is_empty());
    clone.put(6, &good, &proof).await.unwrap();
}

#[test]
fn flat_tree_table_and_full_roots() {
    let v = load("hypercore.json");
    let opt = |x: Option<u64>| x.map_or(-1, |x| x as i64);
    for row in v["flat_tree"].as_array().unwrap() {
        let i = u(&row["index"]);
        assert_eq!(u64::from(flat_tree::depth(i)), u(&row["depth"]));
        assert_eq!(flat_tree::offset(i), u(&row["offset"]));
        assert_eq!(flat_tree::parent(i), u(&row["parent"]));
        assert_eq!(flat_tree::sibling(i), u(&row["sibling"]));
        assert_eq!(opt(flat_tree::left_child(i)), row["left_child"].as_i64().unwrap());
        assert_eq!(opt(flat_tree::right_child(i)), row["right_child"].as_i64().unwrap());
        let spans = flat_tree::spans(i);
        assert_eq!(
            vec![spans.0, spans.1],
            row["spans"].as_array().unwrap().iter().map(u).collect::<Vec<_>>()
        );
        assert_eq!(flat_tree::count(i), u(&row["count"]));
    }
    for row in v["full_roots"].as_array().unwrap() {
        let want: Vec<u64> = row["full_roots_of_2n"].as_array().unwrap().iter().map(u).collect();
        assert_eq!(flat_tree::full_roots(2 * u(&row["length"])), want);
    }
}

#[tokio::test]
async fn large_feed_batches() {
    let v = load("hypercore-large.json");
    let feed = FeedBuilder::new(Storage::memory()).key_pair(key_pair(&v)).open().await.unwrap();
    let mut next = 0u64;
    for snap in v["snapshots"].as_array().unwrap() {
        let batch: Vec<Vec<u8>> =
            (next..next + u(&snap["batch_size"])).map(|i| i.to_string().into_bytes()).collect();
        feed.append_batch(&batch).await.unwrap();
        next += batch.len() as u64;
        assert_eq!(feed.len(), u(&snap["length_after"]));
        assert_eq!(feed.byte_len(), u(&snap["byte_length_after"]));
        for r in nodes(&snap["roots"]) {
            assert_eq!(feed.tree_node(r.index), Some(r));
        }
        let (slot, s) = feed.signature_at(feed.len() - 1).unwrap();
        assert_eq!(slot, feed.len() - 1);
        assert_eq!(Some(s), sig(&snap["signature"]), "signature at length {}", feed.len());
    }
    assert_eq!(feed.len(), u(&v["length"]));
    for n in v["sample_nodes"].as_array().unwrap() {
        if n["missing"].as_bool() == Some(true) {
            assert_eq!(feed.tree_node(u(&n["index"])), None);
        } else {
            assert_eq!(feed.tree_node(u(&n["index"])), Some(node(n)));
        }
    }
    for d in v["data_offsets"].as_array().unwrap() {
        let i = u(&d["index"]);
        assert_eq!(feed.byte_offset(i).await.unwrap(), u(&d["byte_offset"]));
        assert_eq!(feed.get(i).await.unwrap().len() as u64, u(&d["size"]));
    }
    let slots: Vec<u64> =
        v["files"]["signatures_nonblank_indexes"].as_array().unwrap().iter().map(u).collect();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some((slot, _)) = feed.signature_at(at) {
        found.push(slot);
        at = slot + 1;
    }
    assert_eq!(found, slots);
}
