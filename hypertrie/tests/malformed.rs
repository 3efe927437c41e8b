//! Malformed blocks are typed errors naming the block, never panics or endless walks.

use hypercore::testing;
use hypertrie::{DecodeError, ListOptions, ReadError, Trie};

async fn trie_with_raw(blocks: &[&[u8]]) -> Trie {
    let trie = Trie::open(testing::memory_feed(9).await.unwrap()).await.unwrap();
    trie.put("hello", b"world").await.unwrap(); // seq 1
    for b in blocks {
        trie.feed().append(b).await.unwrap();
    }
    trie
}

fn decode_error(r: Result<impl std::fmt::Debug, ReadError>) -> (u64, DecodeError) {
    match r {
        Err(ReadError::Decode { seq, source }) => (seq, source),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_head_is_a_decode_error() {
    let trie = trie_with_raw(&[b"\xff\xff\xff"]).await;
    let (seq, _) = decode_error(trie.get("hello").await);
    assert_eq!(seq, 2);
    let (seq, _) = decode_error(trie.list("", ListOptions::default()).await);
    assert_eq!(seq, 2);
    assert!(trie.put("x", b"y").await.is_err(), "a write over a broken head fails");
}

#[tokio::test]
async fn truncated_and_keyless_nodes() {
    let trie = trie_with_raw(&[b"\x0a\x09hel"]).await;
    assert_eq!(decode_error(trie.get("a").await), (2, DecodeError::Truncated));
    let trie = trie_with_raw(&[b"\x12\x01x\x1a\x01\x00"]).await;
    assert_eq!(decode_error(trie.get("a").await), (2, DecodeError::MissingField("key")));
}

#[tokio::test]
async fn pointers_must_go_back() {
    // key "k" at seq 2 whose bucket at position 1 points at itself (a cycle) ...
    let trie = trie_with_raw(&[b"\x0a\x01k\x1a\x04\x02\x01\x01\x02\x20\x02\x28\x00"]).await;
    assert_eq!(decode_error(trie.get("zzz").await), (2, DecodeError::PointerNotBefore { pointer: 2 }));
    // ... or past the end of the feed.
    let trie = trie_with_raw(&[b"\x0a\x01k\x1a\x04\x02\x01\x01\x63\x20\x02\x28\x00"]).await;
    assert_eq!(decode_error(trie.get("zzz").await), (2, DecodeError::PointerNotBefore { pointer: 99 }));
}

#[tokio::test]
async fn pointer_to_a_broken_block() {
    // seq 2 is garbage; seq 3 is a valid node whose every slot at position 1..=33 points at seq 2.
    let mut node = b"\x0a\x01k\x1a".to_vec();
    let mut field = vec![34u8];
    for i in 1u8..=33 {
        field.extend_from_slice(&[i, 0x0f, 2, 2, 2, 2]);
    }
    assert!(field.len() < 1 << 14);
    node.extend_from_slice(&[field.len() as u8 | 0x80, (field.len() >> 7) as u8]); // varint length
    node.extend_from_slice(&field);
    node.extend_from_slice(b"\x20\x03\x28\x00");
    let trie = trie_with_raw(&[b"\x0b", &node]).await;
    let (seq, err) = decode_error(trie.get("some/other/key").await);
    assert_eq!((seq, err), (2, DecodeError::WireType { field: 1, wire_type: 3 }));
}
