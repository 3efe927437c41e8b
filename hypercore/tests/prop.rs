//! Property tests: flat-tree laws; every block of any feed verifies with the proof its writer
//! makes for any replica state; flipping any byte of block, node or signature fails.

use hypercore::{Feed, FeedBuilder, KeyPair, Signature, Storage, flat_tree};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn flat_tree_laws(x in 0u64..(1 << 40)) {
        let p = flat_tree::parent(x);
        prop_assert_eq!(flat_tree::depth(p), flat_tree::depth(x) + 1);
        let (l, r) = flat_tree::children(p).unwrap();
        prop_assert!(l == x || r == x);
        prop_assert_eq!(flat_tree::sibling(flat_tree::sibling(x)), x);
        prop_assert_eq!(flat_tree::parent(flat_tree::sibling(x)), p);
        let (ls, rs) = flat_tree::spans(x);
        prop_assert!(ls <= x && x <= rs && ls % 2 == 0 && rs % 2 == 0);
        prop_assert_eq!(flat_tree::count(x), rs - ls + 1);
        prop_assert_eq!(flat_tree::index(flat_tree::depth(x), flat_tree::offset(x)), x);
        if let Some((l, r)) = flat_tree::children(x) {
            prop_assert_eq!(flat_tree::left_span(l), ls);
            prop_assert_eq!(flat_tree::right_span(r), rs);
        }
    }

    #[test]
    fn full_roots_cover_exactly(n in 0u64..(1 << 30)) {
        let roots = flat_tree::full_roots(2 * n);
        let mut next_leaf = 0;
        for r in &roots {
            prop_assert_eq!(flat_tree::left_span(*r), next_leaf);
            next_leaf = flat_tree::right_span(*r) + 2;
        }
        prop_assert_eq!(next_leaf, 2 * n);
        prop_assert!(roots.windows(2).all(|w| flat_tree::depth(w[0]) > flat_tree::depth(w[1])));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// A writer feed of `blocks`, appended in batches of the given sizes.
async fn writer(blocks: &[Vec<u8>], batches: &[usize]) -> Feed {
    let feed =
        FeedBuilder::new(Storage::memory()).key_pair(KeyPair::from_seed(&[9; 32])).open().await.unwrap();
    let mut at = 0;
    let mut sizes = batches.iter().cycle();
    while at < blocks.len() {
        let n = (*sizes.next().unwrap()).min(blocks.len() - at);
        feed.append_batch(&blocks[at..at + n]).await.unwrap();
        at += n;
    }
    feed
}

fn feed_strategy() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<usize>)> {
    (
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..48),
        prop::collection::vec(1usize..6, 1..4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_block_verifies_for_any_replica_state(
        (blocks, batches) in feed_strategy(),
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..12),
    ) {
        rt().block_on(async {
            let w = writer(&blocks, &batches).await;
            let r = FeedBuilder::new(Storage::memory()).public_key(w.public_key()).open().await.unwrap();
            for pick in order {
                let seq = pick.index(blocks.len()) as u64;
                let proof = w.proof(seq, r.digest(seq)).await.unwrap();
                r.put(seq, &blocks[seq as usize], &proof).await.unwrap();
                assert_eq!(r.get_local(seq).unwrap().as_deref(), Some(blocks[seq as usize].as_slice()));
                assert_eq!(r.len(), w.len());
                assert_eq!(r.byte_len(), w.byte_len());
            }
        });
    }

    #[test]
    fn flipped_bytes_fail_verification(
        (blocks, batches) in feed_strategy(),
        pick in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        rt().block_on(async {
            let w = writer(&blocks, &batches).await;
            let seq = pick.index(blocks.len()) as u64;
            let data = blocks[seq as usize].clone();
            let proof = w.proof(seq, 0).await.unwrap();
            let fresh = || async {
                FeedBuilder::new(Storage::memory()).public_key(w.public_key()).open().await.unwrap()
            };
            let mask = 1u8 << bit;

            if !data.is_empty() {
                let mut bad = data.clone();
                let at = flip.index(bad.len());
                bad[at] ^= mask;
                let r = fresh().await;
                assert!(r.put(seq, &bad, &proof).await.is_err());
                assert!(r.is_empty() && !r.has(seq));
            }
            for k in 0..proof.nodes.len() {
                let mut bad = proof.clone();
                bad.nodes[k].hash[flip.index(32)] ^= mask;
                assert!(fresh().await.put(seq, &data, &bad).await.is_err(), "node {k} hash");
                let mut bad = proof.clone();
                bad.nodes[k].size ^= u64::from(mask);
                assert!(fresh().await.put(seq, &data, &bad).await.is_err(), "node {k} size");
            }
            let mut sig = *proof.signature.unwrap().as_bytes();
            sig[flip.index(64)] ^= mask;
            let mut bad = proof.clone();
            bad.signature = Some(Signature::from_bytes(&sig).unwrap());
            assert!(fresh().await.put(seq, &data, &bad).await.is_err(), "signature");
            // The untouched proof is accepted.
            fresh().await.put(seq, &data, &proof).await.unwrap();
        });
    }
}

/// The blocks of the damaged-storage test: three records of different shapes.
fn stored_blocks() -> Vec<Vec<u8>> {
    (0..7u8).map(|i| vec![b'a' + i; 5 + 3 * i as usize]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Damaged storage (flipped bytes, cut files) never panics and never returns wrong data:
    /// open fails naming the file, or the feed verifies and every read is right or an error.
    #[test]
    fn damaged_storage_never_returns_wrong_data(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("feed");
            let blocks = stored_blocks();
            {
                let f = FeedBuilder::new(Storage::disk(&path)).key_pair(KeyPair::from_seed(&[3; 32])).open().await.unwrap();
                f.append(&blocks[0]).await.unwrap();
                f.append_batch(&blocks[1..5]).await.unwrap();
                f.append_batch(&blocks[5..]).await.unwrap();
            }
            let log = path.join("log");
            let mut bytes = std::fs::read(&log).unwrap();
            for (at, x) in &flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            std::fs::write(&log, &bytes).unwrap();
            match FeedBuilder::new(Storage::disk(&path)).open().await {
                Err(e) => assert!(e.to_string().contains("log"), "error does not name the file: {e}"),
                Ok(f) => {
                    assert!(f.len() <= blocks.len() as u64);
                    for seq in 0..f.len() {
                        if let Ok(data) = f.get(seq).await {
                            assert_eq!(data, blocks[seq as usize], "block {seq} read back wrong");
                        }
                    }
                }
            }
        });
    }
}
