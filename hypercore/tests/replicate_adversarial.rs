//! A hand-written bad peer against `replicate` (wire spec §8.7–9): forged
//! signatures, wrong proof nodes, forged or flooding unrequested blocks, a 1 GB declared
//! frame, garbage, malformed messages and stalls each end the connection with a named error,
//! within bounded time, and leave the replica exactly as it was. A valid unrequested block is
//! dropped unstored, as JS does.

use std::sync::Arc;
use std::time::Duration;

use hypercore::protocol::{
    ChannelMessage, Data, Event, Have, Message, Session, SessionKeys, Status, StreamOptions, message_stream,
    rle,
};
use hypercore::replicate::prefetch::data_message;
use hypercore::replicate::{MAX_UNSOLICITED, PeerRouter, ReplicateError, ReplicateOptions, replicate};
use hypercore::{Feed, FeedBuilder, KeyPair, Storage};
use tokio::io::{AsyncWriteExt, DuplexStream};

const LIMIT: Duration = Duration::from_secs(20);

fn options(router: PeerRouter) -> ReplicateOptions {
    ReplicateOptions {
        stream: StreamOptions {
            timeout: Duration::from_millis(500),
            keepalive: Duration::from_millis(200),
            queue: 64,
        },
        request_timeout: Duration::from_millis(500),
        ..ReplicateOptions::sparse(router)
    }
}

/// How the bad peer answers the replica's first Request.
#[derive(Clone, Copy)]
enum Bad {
    ForgedSignature,
    WrongNode,
    /// A valid block that was not requested instead of the requested one.
    Unrequested,
    /// A valid unrequested block, then the requested one.
    UnrequestedThenAnswer,
    /// An unrequested block with a forged signature.
    ForgedUnrequested,
    /// More valid unrequested blocks in a row than the limit.
    Flood,
    NoValue,
    ShortHash,
    Stall,
}

async fn setup() -> (Feed, Feed, PeerRouter) {
    let writer =
        FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.expect("writer");
    writer.append_batch(&[b"a".as_slice(), b"b", b"c", b"d"]).await.expect("append");
    let router = PeerRouter::new();
    let replica = FeedBuilder::new(Storage::memory())
        .public_key(writer.public_key())
        .block_source(Arc::new(router.clone()))
        .open()
        .await
        .expect("replica");
    (writer, replica, router)
}

fn data(writer: &Feed, seq: u64, digest: u64) -> Data {
    let (proof, _) = writer.proof_with(seq, hypercore::ProofOptions { digest, hash: false }).expect("proof");
    assert_eq!(proof.index, seq);
    data_message(writer.get_local(seq).expect("read").map(Into::into), &proof)
}

/// Speaks the protocol correctly up to the first Request, then misbehaves as told.
async fn bad_peer(io: DuplexStream, writer: Feed, bad: Bad) {
    let (out, mut rx) = message_stream(io, StreamOptions::default());
    let mut session = Session::new(SessionKeys::new([1; 32], [2; 32]), &[], &[]);
    let (id, open) = session.open(&writer.public_key()).expect("open");
    for m in open {
        out.send(&m).await.expect("send");
    }
    out.send(&ChannelMessage::new(id, Message::Status(Status::new(true, false)))).await.expect("send");
    while let Ok(Some(msg)) = rx.recv().await {
        let Ok(Some(event)) = session.on_message(msg) else { continue };
        let Event::Message { message, .. } = event else { continue };
        match message {
            Message::Want(_) => {
                let have =
                    Have { start: 0, length: Some(1 << 20), bitfield: Some(rle::encode(&[0xf0])), ack: None };
                out.send(&ChannelMessage::new(id, Message::Have(Have { start: 3, ..Default::default() })))
                    .await
                    .expect("send");
                out.send(&ChannelMessage::new(id, Message::Have(have))).await.expect("send");
            }
            Message::Request(req) => {
                let mut d = data(&writer, req.index, req.nodes());
                match bad {
                    Bad::ForgedSignature => {
                        if let Some(sig) = d.signature.as_mut() {
                            sig[10] ^= 1;
                        }
                    }
                    Bad::WrongNode => d.nodes[0].hash[0] ^= 1,
                    Bad::Unrequested => d = data(&writer, (req.index + 1) % 4, 0),
                    Bad::UnrequestedThenAnswer => {
                        let other = data(&writer, (req.index + 1) % 4, 0);
                        out.send(&ChannelMessage::new(id, Message::Data(other))).await.expect("send");
                    }
                    Bad::ForgedUnrequested => {
                        d = data(&writer, (req.index + 1) % 4, 0);
                        if let Some(sig) = d.signature.as_mut() {
                            sig[10] ^= 1;
                        }
                    }
                    Bad::Flood => {
                        for _ in 0..MAX_UNSOLICITED {
                            let other = data(&writer, (req.index + 1) % 4, 0);
                            out.send(&ChannelMessage::new(id, Message::Data(other))).await.expect("send");
                        }
                        d = data(&writer, (req.index + 1) % 4, 0);
                    }
                    Bad::NoValue => d.value = None,
                    Bad::ShortHash => d.nodes[0].hash.truncate(31),
                    Bad::Stall => {
                        // Keepalives flow, but the request is never answered.
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        return;
                    }
                }
                let _ = out.send(&ChannelMessage::new(id, Message::Data(d))).await;
            }
            _ => {}
        }
    }
}

async fn run_bad(bad: Bad) -> ReplicateError {
    let (writer, replica, router) = setup().await;
    let (a, b) = tokio::io::duplex(64 * 1024);
    let peer = tokio::spawn(bad_peer(a, writer, bad));
    let err = replicate(b, SessionKeys::new([2; 32], [1; 32]), vec![replica.clone()], options(router))
        .await
        .expect_err("the bad peer must be disconnected");
    peer.abort();
    assert_unchanged(&replica);
    err
}

fn assert_unchanged(replica: &Feed) {
    assert_eq!(replica.len(), 0, "no length adopted");
    assert!((0..4).all(|s| !replica.has(s)), "no block stored");
    assert!(replica.tree_indexes().is_empty(), "no tree node stored");
}

#[tokio::test]
async fn forged_signature_disconnects() {
    let err = tokio::time::timeout(LIMIT, run_bad(Bad::ForgedSignature)).await.expect("hung");
    assert!(
        matches!(err, ReplicateError::Verify { source: hypercore::VerifyError::BadSignature { seq: 3 }, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_proof_node_disconnects() {
    let err = tokio::time::timeout(LIMIT, run_bad(Bad::WrongNode)).await.expect("hung");
    assert!(matches!(err, ReplicateError::Verify { .. }), "{err}");
}

#[tokio::test]
async fn valid_unrequested_block_is_dropped_unstored() {
    // Block 0 instead of the requested block 3: dropped (the replica stays empty), and the
    // request is then never answered.
    let err = tokio::time::timeout(LIMIT, run_bad(Bad::Unrequested)).await.expect("hung");
    assert!(matches!(err, ReplicateError::RequestTimeout { seq: 3, .. }), "{err}");
}

#[tokio::test]
async fn valid_unrequested_block_does_not_end_the_connection() {
    let (writer, replica, router) = setup().await;
    let (a, b) = tokio::io::duplex(64 * 1024);
    let peer = tokio::spawn(bad_peer(a, writer, Bad::UnrequestedThenAnswer));
    let mut events = replica.subscribe();
    let keys = SessionKeys::new([2; 32], [1; 32]);
    let conn = tokio::spawn(replicate(b, keys, vec![replica.clone()], options(router)));
    tokio::time::timeout(LIMIT, async {
        while !replica.has(3) {
            let _ = events.recv().await;
        }
    })
    .await
    .expect("the requested block arrives after the unrequested one");
    assert_eq!(replica.len(), 4);
    assert!(!replica.has(0), "the unrequested block is not stored");
    assert!(!conn.is_finished(), "the connection is still up");
    conn.abort();
    peer.abort();
}

#[tokio::test]
async fn forged_unrequested_block_disconnects() {
    let err = tokio::time::timeout(LIMIT, run_bad(Bad::ForgedUnrequested)).await.expect("hung");
    assert!(
        matches!(err, ReplicateError::Verify { source: hypercore::VerifyError::BadSignature { seq: 0 }, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unrequested_flood_disconnects() {
    let err = tokio::time::timeout(LIMIT, run_bad(Bad::Flood)).await.expect("hung");
    assert!(
        matches!(err, ReplicateError::Unrequested { seq: 0, count, .. } if count == MAX_UNSOLICITED + 1),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_data_disconnects() {
    let err = tokio::time::timeout(LIMIT, run_bad(Bad::NoValue)).await.expect("hung");
    assert!(matches!(err, ReplicateError::BadData { reason: "no value", .. }), "{err}");
    // The message decoder already refuses a 31-byte node hash.
    let err = tokio::time::timeout(LIMIT, run_bad(Bad::ShortHash)).await.expect("hung");
    assert!(matches!(err, ReplicateError::Stream(hypercore::protocol::StreamError::Message(_))), "{err}");
}

#[tokio::test]
async fn unanswered_request_times_out() {
    let err = tokio::time::timeout(LIMIT, run_bad(Bad::Stall)).await.expect("hung");
    assert!(matches!(err, ReplicateError::RequestTimeout { seq: 3, .. }), "{err}");
}

/// Raw bytes instead of a protocol peer.
async fn run_raw(bytes: &'static [u8], close: bool) -> ReplicateError {
    let (_writer, replica, router) = setup().await;
    let (mut a, b) = tokio::io::duplex(64 * 1024);
    let peer = tokio::spawn(async move {
        a.write_all(bytes).await.expect("write");
        if close {
            let _ = a.shutdown().await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let err = replicate(b, SessionKeys::new([2; 32], [1; 32]), vec![replica.clone()], options(router))
        .await
        .expect_err("the bad peer must be disconnected");
    peer.abort();
    assert_unchanged(&replica);
    err
}

#[tokio::test]
async fn one_gigabyte_frame_is_refused_before_allocating() {
    // varint(1 << 30): a frame length far over the 8 MiB cap.
    let err = tokio::time::timeout(LIMIT, run_raw(&[0x80, 0x80, 0x80, 0x80, 0x04, 0x11], false))
        .await
        .expect("hung");
    assert!(matches!(err, ReplicateError::Stream(hypercore::protocol::StreamError::Frame(_))), "{err}");
}

#[tokio::test]
async fn garbage_disconnects() {
    // A frame on channel 1 of type Data whose body is not protobuf.
    let err = tokio::time::timeout(LIMIT, run_raw(&[0x05, 0x19, 0xff, 0xff, 0xff, 0xff], false))
        .await
        .expect("hung");
    assert!(matches!(err, ReplicateError::Stream(hypercore::protocol::StreamError::Message(_))), "{err}");
}

#[tokio::test]
async fn truncated_frame_disconnects() {
    let err = tokio::time::timeout(LIMIT, run_raw(&[0x40, 0x19, 0x08], true)).await.expect("hung");
    assert!(matches!(err, ReplicateError::Stream(hypercore::protocol::StreamError::TruncatedFrame)), "{err}");
}

#[tokio::test]
async fn silent_peer_times_out() {
    let err = tokio::time::timeout(LIMIT, run_raw(&[], false)).await.expect("hung");
    assert!(matches!(err, ReplicateError::Stream(hypercore::protocol::StreamError::Timeout(_))), "{err}");
}
