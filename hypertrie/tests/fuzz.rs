//! Bounded fuzzing of the trie-node decoder through the public API: a trie whose newest blocks
//! are arbitrary or mutated bytes must answer every read with a value or a typed error — never a
//! panic, never an endless walk (each read runs under a deadline).

use std::time::Duration;

use hypercore::testing;
use hypertrie::{DiffOptions, HistoryOptions, ListOptions, Trie};
use proptest::prelude::*;

const KEYS: [&str; 6] = ["a", "a/b", "lodash/4.17.21", "@types/node/20.1.0", "zz", "a/b/c"];

/// What goes on the end of the feed after a few real puts.
#[derive(Debug, Clone)]
enum Tail {
    /// Completely arbitrary bytes.
    Garbage(Vec<u8>),
    /// A real node block with some bytes overwritten.
    Mutated { of: usize, edits: Vec<(usize, u8)> },
    /// A real node block cut short.
    Truncated { of: usize, keep: usize },
}

fn tail() -> impl Strategy<Value = Tail> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Tail::Garbage),
        (0..KEYS.len(), proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6))
            .prop_map(|(of, edits)| Tail::Mutated { of, edits }),
        (0..KEYS.len(), any::<usize>()).prop_map(|(of, keep)| Tail::Truncated { of, keep }),
    ]
}

async fn exercise(tails: Vec<Tail>) {
    let trie = Trie::open(testing::memory_feed(7).await.expect("feed")).await.expect("trie");
    for (i, key) in KEYS.iter().enumerate() {
        trie.put(key, format!("value {i}").as_bytes()).await.expect("put");
    }
    for t in tails {
        let block = match t {
            Tail::Garbage(bytes) => bytes,
            Tail::Mutated { of, edits } => {
                let mut block = trie.feed().get(of as u64 + 1).await.expect("block");
                for (at, byte) in edits {
                    let len = block.len();
                    block[at % len] = byte;
                }
                block
            }
            Tail::Truncated { of, keep } => {
                let mut block = trie.feed().get(of as u64 + 1).await.expect("block");
                block.truncate(keep % block.len());
                block
            }
        };
        trie.feed().append(&block).await.expect("append");
    }
    // Every read either answers or fails with a typed error; the results are not checked
    // beyond that, since a mutated block can be a perfectly valid (different) node.
    for key in KEYS.iter().chain(["", "missing", "a/"].iter()) {
        let _ = trie.get(key).await;
    }
    let _ = trie.list("", ListOptions::default()).await;
    let _ = trie.list("a", ListOptions { recursive: false, ..ListOptions::default() }).await;
    if let Ok(history) = trie.history(HistoryOptions::default()).await {
        let _ = history.collect().await;
    }
    let _ = trie.diff(3, "", DiffOptions { hidden: false }).await;
    let _ = trie.touched_many(KEYS.iter().copied()).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_blocks_never_panic_or_hang(tails in proptest::collection::vec(tail(), 1..4)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let done = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), exercise(tails)).await });
        prop_assert!(done.is_ok(), "a read over damaged blocks did not finish");
    }
}
