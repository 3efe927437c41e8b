//! ims ↔ ims replication over an in-memory duplex (wire spec §7–9): sparse gets through the
//! PeerRouter, live appends, full download, several feeds on one connection, prefetch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hypercore::protocol::{ChannelMessage, Data, Message, SessionKeys};
use hypercore::replicate::{BlockPlanner, PeerRouter, PlanFuture, ReplicateOptions, prefetch, replicate};
use hypercore::{
    Feed, FeedBuilder, FeedEvent, KeyPair, Node, Proof, ProofOptions, PublicKey, PutOptions, Signature,
    Storage,
};

const LIMIT: Duration = Duration::from_secs(20);

fn keys() -> (SessionKeys, SessionKeys) {
    (SessionKeys::new([1; 32], [2; 32]), SessionKeys::new([2; 32], [1; 32]))
}

async fn writer(n: usize) -> Feed {
    let feed =
        FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.expect("writer");
    let blocks: Vec<Vec<u8>> = (0..n).map(|i| format!("block {i}").into_bytes()).collect();
    feed.append_batch(&blocks).await.expect("append");
    feed
}

async fn replica(key: PublicKey, router: &PeerRouter) -> Feed {
    FeedBuilder::new(Storage::memory())
        .public_key(key)
        .block_source(Arc::new(router.clone()))
        .get_timeout(Duration::from_secs(10))
        .open()
        .await
        .expect("replica")
}

/// Waits until `feed` reaches `len` blocks.
async fn wait_len(feed: &Feed, len: u64) {
    let mut events = feed.subscribe();
    while feed.len() < len {
        match events.recv().await {
            Ok(FeedEvent::Append { .. }) | Ok(_) | Err(_) => {}
        }
    }
}

#[tokio::test]
async fn sparse_replica_fetches_only_what_it_reads() {
    tokio::time::timeout(LIMIT, async {
        let w = writer(40).await;
        let router = PeerRouter::new();
        let r = replica(w.public_key(), &router).await;
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (ka, kb) = keys();
        let up = tokio::spawn(replicate(a, ka, vec![w.clone()], ReplicateOptions::upload()));
        let down = tokio::spawn(replicate(b, kb, vec![r.clone()], ReplicateOptions::sparse(router.clone())));

        // The length arrives with the last block (wire spec §8.2 hint + signature).
        wait_len(&r, 40).await;
        assert_eq!(r.get(7).await.expect("get 7"), b"block 7");
        assert_eq!(r.get(0).await.expect("get 0"), b"block 0");
        let held: Vec<u64> = (0..40).filter(|&s| r.has(s)).collect();
        assert_eq!(held, [0, 7, 39], "sparse: only the read blocks and the head");
        assert_eq!(router.connections(&w.discovery_key()), 1);
        down.abort();
        let _ = up.await;
    })
    .await
    .expect("hung");
}

#[tokio::test]
async fn live_appends_reach_a_connected_reader() {
    tokio::time::timeout(LIMIT, async {
        let w = writer(3).await;
        let router = PeerRouter::new();
        let r = replica(w.public_key(), &router).await;
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (ka, kb) = keys();
        let _up = tokio::spawn(replicate(a, ka, vec![w.clone()], ReplicateOptions::upload()));
        let _down = tokio::spawn(replicate(b, kb, vec![r.clone()], ReplicateOptions::sparse(router)));
        wait_len(&r, 3).await;
        w.append(b"late").await.expect("append");
        w.append_batch(&[b"later".as_slice(), b"latest"]).await.expect("append");
        wait_len(&r, 6).await;
        assert_eq!(r.get(5).await.expect("get"), b"latest");
        assert_eq!(r.get(3).await.expect("get"), b"late");
    })
    .await
    .expect("hung");
}

#[tokio::test]
async fn download_all_copies_every_block_of_several_feeds() {
    tokio::time::timeout(LIMIT, async {
        let (w1, w2) = (writer(300).await, writer(5).await);
        let router = PeerRouter::new();
        let (r1, r2) = (replica(w1.public_key(), &router).await, replica(w2.public_key(), &router).await);
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (ka, kb) = keys();
        let up = tokio::spawn(replicate(a, ka, vec![w1.clone(), w2.clone()], ReplicateOptions::upload()));
        let opts = ReplicateOptions { download_all: true, ..ReplicateOptions::sparse(router) };
        let down = tokio::spawn(replicate(b, kb, vec![r1.clone(), r2.clone()], opts));
        for (w, r) in [(&w1, &r1), (&w2, &r2)] {
            let mut events = r.subscribe();
            while (0..w.len()).any(|s| !r.has(s)) {
                let _ = events.recv().await;
            }
            for s in 0..w.len() {
                assert_eq!(r.get_local(s).expect("read"), w.get_local(s).expect("read"));
            }
        }
        down.abort();
        let stats = up.await.expect("join").expect("uploader ends cleanly when the reader hangs up");
        assert_eq!(stats.uploaded, 305);
    })
    .await
    .expect("hung");
}

/// A planner that says key "N" touches blocks N and N+1.
struct Numbers;

impl BlockPlanner for Numbers {
    fn blocks<'a>(&'a self, _feed: &'a Feed, keys: &'a [String]) -> PlanFuture<'a> {
        Box::pin(async move {
            let mut out = BTreeSet::new();
            for k in keys {
                let n: u64 = k.parse().map_err(|_| format!("not a number: {k}"))?;
                out.extend([n, n + 1]);
            }
            Ok(out)
        })
    }
}

#[tokio::test]
async fn prefetch_delivers_every_touched_block_in_one_round_trip() {
    tokio::time::timeout(LIMIT, async {
        let w = writer(100).await;
        let router = PeerRouter::new();
        let r = replica(w.public_key(), &router).await;
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (ka, kb) = keys();
        let _up = tokio::spawn(replicate(
            a,
            ka,
            vec![w.clone()],
            ReplicateOptions::upload().with_planner(Arc::new(Numbers)),
        ));
        let down = tokio::spawn(replicate(b, kb, vec![r.clone()], ReplicateOptions::sparse(router.clone())));
        wait_len(&r, 100).await;
        r.get(11).await.expect("get");
        // 10,11 / 20,21 / 98,99: 11 and 99 are held already, so 4 blocks come.
        let got = router
            .prefetch(&r.discovery_key(), vec!["10".into(), "20".into(), "98".into()])
            .await
            .expect("prefetch");
        assert_eq!(got, 4);
        for s in [10, 11, 20, 21, 98, 99] {
            assert!(r.has(s), "block {s} prefetched");
        }
        assert!(!r.has(12) && !r.has(50));
        drop(down);
    })
    .await
    .expect("hung");
}

fn proof_of(d: &Data) -> Proof {
    Proof {
        index: d.index,
        nodes: d
            .nodes
            .iter()
            .map(|n| Node {
                index: n.index,
                hash: n.hash.as_slice().try_into().expect("32 bytes"),
                size: n.size,
            })
            .collect(),
        signature: d.signature.as_ref().map(|s| Signature::from_bytes(s).expect("64 bytes")),
    }
}

/// (Data messages, tree nodes, signatures, wire bytes) of an answer.
fn tally(answer: &[Data]) -> (usize, usize, usize, usize) {
    let bytes = answer
        .iter()
        .map(|d| ChannelMessage::new(1, Message::Data(d.clone())).to_frame().expect("frame").len());
    (
        answer.len(),
        answer.iter().map(|d| d.nodes.len()).sum(),
        answer.iter().filter(|d| d.signature.is_some()).count(),
        bytes.sum(),
    )
}

/// The answer as it was before proofs were shared: a full proof (roots + signature) each.
fn unshared(w: &Feed, seqs: &[u64]) -> Vec<Data> {
    seqs.iter()
        .map(|&seq| {
            let (proof, _) = w.proof_with(seq, ProofOptions::default()).expect("proof");
            Data {
                index: seq,
                value: w.get_local(seq).expect("read").map(Into::into),
                nodes: proof
                    .nodes
                    .iter()
                    .map(|n| hypercore::protocol::DataNode {
                        index: n.index,
                        hash: n.hash.to_vec(),
                        size: n.size,
                    })
                    .collect(),
                signature: proof.signature.map(|s| s.as_bytes().to_vec()),
            }
        })
        .collect()
}

async fn put_all(r: &Feed, answer: &[Data]) -> Result<(), hypercore::VerifyError> {
    for d in answer {
        let value = d.value.as_deref().expect("value");
        let every_node = PutOptions { every_node: true };
        r.put_blocks(&[(d.index, value, &proof_of(d))], every_node).await?.durable().await?;
    }
    Ok(())
}

#[tokio::test]
async fn prefetch_answers_share_proof_nodes_and_still_verify_everything() {
    let w = writer(1000).await;
    let seqs: Vec<u64> =
        (3..1000).step_by(37).chain([41, 42, 43, 500, 501]).collect::<BTreeSet<_>>().into_iter().collect();

    // A cold reader: only the first block carries the roots and the signature.
    let shared: Vec<Data> = prefetch::answer(&w, &seqs, &[], None).collect();
    let full = unshared(&w, &seqs);
    let (n, nodes, sigs, bytes) = tally(&shared);
    let (full_n, full_nodes, full_sigs, full_bytes) = tally(&full);
    assert_eq!((n, full_n), (seqs.len(), seqs.len()));
    assert_eq!((sigs, full_sigs), (1, seqs.len()));
    assert!(nodes * 2 < full_nodes, "{nodes} shared nodes vs {full_nodes}");
    assert!(bytes < full_bytes, "{bytes} vs {full_bytes} bytes");
    let cold = FeedBuilder::new(Storage::memory()).public_key(w.public_key()).open().await.expect("replica");
    put_all(&cold, &shared).await.expect("a cold reader verifies the shared answer");
    assert_eq!(cold.len(), 1000);
    assert!(seqs.iter().all(|&s| cold.has(s)));

    // Without the first block, the second relies on nodes the reader lacks: it fails, stores
    // nothing, and does not panic.
    let other = FeedBuilder::new(Storage::memory()).public_key(w.public_key()).open().await.expect("replica");
    let err = put_all(&other, &shared[1..]).await.expect_err("relies on a node the reader lacks");
    assert!(
        matches!(
            err,
            hypercore::VerifyError::BadProof { .. } | hypercore::VerifyError::MissingSignature { .. }
        ),
        "{err}"
    );
    assert_eq!(other.len(), 0);
    assert!(other.tree_indexes().is_empty());

    // A warm reader (some blocks, with nodes above them the sender does not know of, and the
    // roots of its length): even smaller, no signature, and still verifies.
    let warm = FeedBuilder::new(Storage::memory()).public_key(w.public_key()).open().await.expect("replica");
    for seq in [40, 500, 999] {
        let proof = w.proof(seq, warm.digest(seq)).await.expect("proof");
        warm.put(seq, &w.get_local(seq).expect("read").expect("held"), &proof).await.expect("put");
    }
    let have = warm.bitfield().bytes(0, 1000u64.div_ceil(8));
    let want: Vec<u64> = seqs.iter().copied().filter(|&s| !warm.has(s)).collect();
    let answer: Vec<Data> = prefetch::answer(&w, &want, &have, Some(warm.len())).collect();
    let (_, warm_nodes, warm_sigs, warm_bytes) = tally(&answer);
    assert_eq!(warm_sigs, 0);
    assert!(warm_nodes < nodes && warm_bytes < bytes, "{warm_nodes} nodes, {warm_bytes} bytes");
    put_all(&warm, &answer).await.expect("a warm reader verifies the shared answer");
    assert!(seqs.iter().all(|&s| warm.has(s)));
}

#[tokio::test]
async fn a_reader_holding_older_nodes_still_verifies_a_shared_answer() {
    // The reader holds block 1 and the nodes of its proof at length 4 (leaf 0, node 5, root 3),
    // which the sender cannot know of. Block 0's proof then reaches a held node at once, but
    // the nodes above it (up to the roots of length 1000) must still be checked and stored:
    // block 700's proof relies on them.
    let w = writer(4).await;
    let old = FeedBuilder::new(Storage::memory()).public_key(w.public_key()).open().await.expect("replica");
    let proof = w.proof(1, 0).await.expect("proof");
    old.put(1, b"block 1", &proof).await.expect("put");
    let more: Vec<Vec<u8>> = (4..1000).map(|i| format!("block {i}").into_bytes()).collect();
    w.append_batch(&more).await.expect("append");
    let have = old.bitfield().bytes(0, 1);
    let answer: Vec<Data> = prefetch::answer(&w, &[0, 700], &have, None).collect();
    assert_eq!(tally(&answer).2, 1, "one signature for the whole answer");
    put_all(&old, &answer).await.expect("the shared answer verifies");
    assert!(old.has(0) && old.has(700));
    assert_eq!(old.len(), 1000);
}
