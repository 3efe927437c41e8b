//! ims ↔ ims replication over an in-memory duplex (wire spec §7–9): sparse gets through the
//! PeerRouter, live appends, full download, several feeds on one connection, prefetch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hypercore::protocol::SessionKeys;
use hypercore::replicate::{BlockPlanner, PeerRouter, PlanFuture, ReplicateOptions, replicate};
use hypercore::{Feed, FeedBuilder, FeedEvent, KeyPair, PublicKey, Storage};

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
