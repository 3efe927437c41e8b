//! The hypertrie half of `ims/prefetch` (wire spec §7.5; DESIGN.md "The index"): after one
//! prefetch over a replication connection, a cold sparse replica answers every prefetched
//! lookup from local blocks alone.

use std::sync::Arc;
use std::time::Duration;

use hypercore::protocol::SessionKeys;
use hypercore::replicate::{PeerRouter, ReplicateOptions, replicate};
use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::Trie;
use hypertrie::extension::TriePlanner;

#[tokio::test]
async fn prefetched_lookups_need_no_further_blocks() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let writer =
            FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.expect("writer");
        let trie = Trie::open(writer.clone()).await.expect("trie");
        for i in 0..500 {
            trie.put(&format!("pkg-{i}/1.0.0"), format!("v{i}").as_bytes()).await.expect("put");
        }
        let router = PeerRouter::new();
        let replica = FeedBuilder::new(Storage::memory())
            .public_key(writer.public_key())
            .block_source(Arc::new(router.clone()))
            .get_timeout(Duration::from_millis(300))
            .open()
            .await
            .expect("replica");
        let (a, b) = tokio::io::duplex(256 * 1024);
        let keys = (SessionKeys::new([1; 32], [2; 32]), SessionKeys::new([2; 32], [1; 32]));
        let planner = Arc::new(TriePlanner::new(trie.clone()));
        let up = tokio::spawn(replicate(
            a,
            keys.0,
            vec![writer.clone()],
            ReplicateOptions::upload().with_planner(planner),
        ));
        let down = tokio::spawn(replicate(
            b,
            keys.1,
            vec![replica.clone()],
            ReplicateOptions::sparse(router.clone()),
        ));
        let mut events = replica.subscribe();
        while replica.len() < writer.len() {
            if let Err(e) = events.recv().await {
                panic!("events: {e}");
            }
        }

        let wanted: Vec<String> = (0..500).step_by(25).map(|i| format!("pkg-{i}/1.0.0")).collect();
        let got = router.prefetch(&replica.discovery_key(), wanted.clone()).await.expect("prefetch");
        let touched = trie.touched_many(wanted.iter().map(String::as_str)).await.expect("touched");
        assert!(got > 0 && got <= touched.len() as u64, "{got} blocks for {} touched", touched.len());

        // Cut the connection: every lookup must now be answered from the replica alone.
        down.abort();
        up.abort();
        let local = Trie::open(replica.clone()).await.expect("replica trie");
        for (k, i) in wanted.iter().zip((0..500).step_by(25)) {
            let node = local.get(k).await.expect("local lookup").expect("found");
            assert_eq!(node.value(), Some(format!("v{i}").as_bytes()));
        }
        let held = (0..replica.len()).filter(|&s| replica.has(s)).count();
        assert!(held < 250, "sparse: {held} of {} blocks held", replica.len());
    })
    .await
    .expect("hung");
}
