//! Application extensions on a replication connection (`ReplicateOptions::extensions`): a
//! handler hears of a peer only when both sides list its name, gets that peer's messages on the
//! feed's channel, answers through its handle, and learns when the connection ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypercore::protocol::SessionKeys;
use hypercore::replicate::{ExtensionHandler, ExtensionPeer, PeerRouter, ReplicateOptions, replicate};
use hypercore::{FeedBuilder, KeyPair, Storage};
use tokio::sync::mpsc;

/// Records what happens to it; answers `ping…` with `pong…`.
#[derive(Debug)]
struct Echo {
    name: &'static str,
    peers: Mutex<Vec<ExtensionPeer>>,
    events: mpsc::UnboundedSender<String>,
}

impl Echo {
    fn new(name: &'static str) -> (Arc<Self>, mpsc::UnboundedReceiver<String>) {
        let (events, rx) = mpsc::unbounded_channel();
        (Arc::new(Echo { name, peers: Mutex::default(), events }), rx)
    }
}

impl ExtensionHandler for Echo {
    fn name(&self) -> &str {
        self.name
    }

    fn on_peer(&self, peer: ExtensionPeer) {
        let _ = self.events.send(format!("peer {}", self.name));
        self.peers.lock().unwrap().push(peer);
    }

    fn on_message(&self, peer: &ExtensionPeer, payload: Vec<u8>) {
        let text = String::from_utf8_lossy(&payload).into_owned();
        let _ = self.events.send(format!("got {text}"));
        if let Some(rest) = text.strip_prefix("ping") {
            let (peer, reply) = (peer.clone(), format!("pong{rest}").into_bytes());
            tokio::spawn(async move { peer.send(reply).await });
        }
    }

    fn on_close(&self, _peer: &ExtensionPeer) {
        let _ = self.events.send(format!("closed {}", self.name));
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an event in time").expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_messages_go_both_ways_on_a_feeds_channel() {
    let writer = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    writer.append(b"x").await.unwrap();
    let router = PeerRouter::new();
    let replica = FeedBuilder::new(Storage::memory())
        .public_key(writer.public_key())
        .block_source(Arc::new(router.clone()))
        .open()
        .await
        .unwrap();

    // Both sides speak `test/echo`; only the reader lists `test/lonely`.
    let (seed_echo, mut seed_events) = Echo::new("test/echo");
    let (read_echo, mut read_events) = Echo::new("test/echo");
    let (lonely, mut lonely_events) = Echo::new("test/lonely");
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (ka, kb) = (SessionKeys::new([1; 32], [2; 32]), SessionKeys::new([2; 32], [1; 32]));
    let up = ReplicateOptions::upload().with_extension(seed_echo.clone());
    let down =
        ReplicateOptions::sparse(router).with_extension(read_echo.clone()).with_extension(lonely.clone());
    let seeder = tokio::spawn(replicate(a, ka, vec![writer.clone()], up));
    let reader = tokio::spawn(replicate(b, kb, vec![replica.clone()], down));

    assert_eq!(next(&mut read_events).await, "peer test/echo");
    let peer = read_echo.peers.lock().unwrap()[0].clone();
    assert_eq!(peer.feed(), writer.discovery_key());
    peer.send(b"ping 1".to_vec()).await.unwrap();
    assert_eq!(next(&mut seed_events).await, "peer test/echo", "the seeder hears of the reader");
    assert_eq!(next(&mut seed_events).await, "got ping 1");
    assert_eq!(next(&mut read_events).await, "got pong 1");

    // The block replication goes on beside it.
    assert_eq!(replica.get(0).await.unwrap(), b"x");

    reader.abort();
    let _ = reader.await;
    assert_eq!(next(&mut read_events).await, "closed test/echo", "the reader's handler hears the end");
    assert_eq!(next(&mut seed_events).await, "closed test/echo", "and the seeder's, once the stream ends");
    let _ = seeder.await;
    assert!(peer.send(b"ping 2".to_vec()).await.is_err(), "a handle of an ended connection does not send");
    assert!(peer.is_closed());
    assert!(lonely_events.try_recv().is_err(), "no peer speaks test/lonely: {:?}", lonely_events.try_recv());
}
