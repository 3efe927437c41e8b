//! A trie read from a sparse replica: lookups read only the blocks on their path, which
//! `Trie::touched` names in advance (spec §6.8, §6.15; the prefetch of DESIGN.md's "index").

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hypercore::{BlockSource, DiscoveryKey, Feed, FeedBuilder, GetError, Storage, testing};
use hypertrie::{BatchOp, ReadError, Trie};

/// npm-like keys: 60 packages with 5 versions each, scoped and plain.
fn keys() -> Vec<String> {
    (0..300)
        .map(|i| {
            let pkg = i / 5;
            let name = if pkg % 3 == 0 { format!("@s{}/p{pkg}", pkg % 7) } else { format!("p{pkg}") };
            format!("{name}/1.{}.0", i % 5)
        })
        .collect()
}

async fn writer() -> Trie {
    let trie = Trie::open(testing::memory_feed(7).await.unwrap()).await.unwrap();
    for chunk in keys().chunks(50) {
        let ops: Vec<BatchOp> = chunk.iter().map(|k| BatchOp::put(k.as_str(), format!("v:{k}"))).collect();
        trie.batch(&ops).await.unwrap();
    }
    trie
}

/// Copy block `seq` with its proof from `from` into the replica `to`.
async fn copy(from: &Feed, to: &Feed, seq: u64) {
    let data = from.get(seq).await.unwrap();
    let proof = from.proof(seq, to.digest(seq)).await.unwrap();
    to.put(seq, &data, &proof).await.unwrap();
}

/// Serves missing blocks from the writer, recording what was asked for.
struct Serve {
    writer: Feed,
    replica: OnceLock<Feed>,
    requested: Mutex<Vec<u64>>,
}

impl BlockSource for Serve {
    fn request(&self, _feed: &DiscoveryKey, seqs: &[u64]) {
        self.requested.lock().unwrap().extend_from_slice(seqs);
        let (writer, replica) = (self.writer.clone(), self.replica.get().unwrap().clone());
        let seqs = seqs.to_vec();
        tokio::spawn(async move {
            for seq in seqs {
                copy(&writer, &replica, seq).await;
            }
        });
    }
}

#[tokio::test]
async fn prefetching_touched_blocks_answers_a_get_locally() {
    let writer = writer().await;
    let all = keys();
    let key = all[47].as_str();
    assert!(key.starts_with('@'), "{key} is scoped");
    let touched = writer.touched(key).await.unwrap();
    let head = writer.version() - 1;
    assert!(touched.contains(&head), "the head is read first");
    assert!(touched.len() >= 2 && touched.len() < 20, "a few blocks on the path: {touched:?}");

    // A replica without any block source: only what we copy is there.
    let feed =
        FeedBuilder::new(Storage::memory()).public_key(writer.feed().public_key()).open().await.unwrap();
    for &seq in &touched {
        copy(writer.feed(), &feed, seq).await;
    }
    let replica = Trie::open(feed.clone()).await.unwrap();
    assert_eq!(replica.version(), writer.version());
    let got = replica.get(key).await.unwrap().expect("found from the prefetched blocks alone");
    assert_eq!(got.value(), Some(format!("v:{key}").as_bytes()));
    assert_eq!(replica.touched(key).await.unwrap(), touched);

    // Another key needs blocks we did not copy: a typed error naming the block.
    let mut other = None;
    for k in keys() {
        let needed = writer.touched(&k).await.unwrap();
        if let Some(&missing) = needed.difference(&touched).next() {
            other = Some((k, needed, missing));
            break;
        }
    }
    let (other, needed, missing) = other.expect("some key needs a block not prefetched");
    match replica.get(&other).await {
        Err(ReadError::Block { seq, source: GetError::Missing { .. } }) => assert!(needed.contains(&seq)),
        other => panic!("expected a missing-block error, got {other:?}"),
    }
    assert!(!feed.has(missing));
}

#[tokio::test]
async fn lookups_on_a_sparse_replica_fetch_exactly_their_path() {
    let writer = writer().await;
    let serve = Arc::new(Serve {
        writer: writer.feed().clone(),
        replica: OnceLock::new(),
        requested: Mutex::default(),
    });
    let feed = FeedBuilder::new(Storage::memory())
        .public_key(writer.feed().public_key())
        .block_source(serve.clone())
        .get_timeout(Duration::from_secs(10))
        .open()
        .await
        .unwrap();
    serve.replica.set(feed.clone()).map_err(|_| ()).unwrap();
    // The replica learns the length from the signed head block.
    copy(writer.feed(), &feed, writer.version() - 1).await;
    let replica = Trie::open(feed).await.unwrap();

    let wanted: Vec<String> = keys().into_iter().step_by(37).collect();
    let mut expected = BTreeSet::new();
    for key in &wanted {
        expected.extend(writer.touched(key).await.unwrap());
        let got = replica.get(key).await.unwrap().expect("present");
        assert_eq!(got.value(), Some(format!("v:{key}").as_bytes()));
        assert_eq!(Some(got.seq()), writer.get(key).await.unwrap().map(|n| n.seq()));
    }
    let requested: BTreeSet<u64> = serve.requested.lock().unwrap().iter().copied().collect();
    expected.remove(&(writer.version() - 1)); // copied up front
    assert_eq!(requested, expected, "fetched exactly the blocks the lookups touch");
    let many = writer.touched_many(wanted.iter().map(String::as_str)).await.unwrap();
    assert_eq!(many.len(), expected.len() + 1);
}
