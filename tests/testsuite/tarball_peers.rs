//! `ims/tarball` at library level (DESIGN.md §Install: tarballs "from peers or upstream"): a reader's
//! `TarballClient` against the real `TarballServer` and against hand-written bad seeders, over
//! an in-memory replication connection. Whatever a seeder sends, the reader's store gets only a
//! tarball matching the integrity asked for, and every failure is an error the install answers
//! by going upstream.

use std::sync::Arc;
use std::time::Duration;

use fixtures::{Corpus, Registry};
use hypercore::protocol::SessionKeys;
use hypercore::replicate::{ExtensionHandler, ExtensionPeer, PeerRouter, ReplicateOptions, replicate};
use hypercore::{Feed, FeedBuilder, KeyPair, Storage};
use hypertrie::Trie;
use indexer::tarball_peers::wire::{self, Message};
use indexer::tarball_peers::{PeerFetchError, TARBALL_EXTENSION, TarballClient, TarballServer};
use indexer::tarballs::{Integrity, TarballError, TarballStore};
use indexer::{Document, Index, Update};
use tokio::task::JoinHandle;

/// A seeder's index feed and a reader's replica, connected; the reader's side carries
/// `client`, the seeder's `server` (if any). The connection ends when the handles drop.
struct Pair {
    _conns: [Aborting; 2],
}

struct Aborting(JoinHandle<()>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn connect(client: &TarballClient, server: Option<Arc<dyn ExtensionHandler>>) -> Pair {
    let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    feed.append(b"index").await.unwrap();
    connect_feed(&feed, client, server).await
}

async fn connect_feed(
    feed: &Feed,
    client: &TarballClient,
    server: Option<Arc<dyn ExtensionHandler>>,
) -> Pair {
    let router = PeerRouter::new();
    let replica = FeedBuilder::new(Storage::memory())
        .public_key(feed.public_key())
        .block_source(Arc::new(router.clone()))
        .open()
        .await
        .unwrap();
    let (a, b) = tokio::io::duplex(256 * 1024);
    let (ka, kb) = (SessionKeys::new([1; 32], [2; 32]), SessionKeys::new([2; 32], [1; 32]));
    let mut up = ReplicateOptions::upload();
    up.extensions.extend(server);
    let seeder = tokio::spawn({
        let feed = feed.clone();
        async move {
            let _ = replicate(a, ka, vec![feed], up).await;
        }
    });
    let down = ReplicateOptions::sparse(router).with_extension(Arc::new(client.clone()));
    let mut events = replica.subscribe();
    let reader = tokio::spawn({
        let replica = replica.clone();
        async move {
            let _ = replicate(b, kb, vec![replica], down).await;
        }
    });
    // The length arrives after the Options that name the extensions (as `ims install` waits).
    tokio::time::timeout(Duration::from_secs(10), async {
        while replica.is_empty() {
            let _ = events.recv().await;
        }
    })
    .await
    .expect("the seeder's length arrives");
    Pair { _conns: [Aborting(seeder), Aborting(reader)] }
}

fn tarball(corpus: &Corpus, name: &str, version: &str) -> (Vec<u8>, Integrity) {
    let bytes = corpus.tarball(name, version).expect("corpus tarball").to_vec();
    let integrity = Integrity::of_bytes(indexer::tarballs::Algorithm::Sha512, &bytes);
    (bytes, integrity)
}

fn client() -> TarballClient {
    TarballClient::new(8 << 20, Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeders_store_is_served_and_verified() {
    let corpus = Corpus::load().unwrap();
    let (bytes, integrity) = tarball(&corpus, "ms", "2.0.0");
    let dir = tempfile::tempdir().unwrap();
    let seed_store = TarballStore::open(dir.path().join("seed")).unwrap();
    seed_store.put_bytes(&integrity, &bytes).unwrap();
    let store = TarballStore::open(dir.path().join("reader")).unwrap();

    let client = client();
    let server: Arc<dyn ExtensionHandler> = Arc::new(TarballServer::new(seed_store));
    let _pair = connect(&client, Some(server)).await;
    client.fetch(&store, "ms", "2.0.0", &integrity).await.unwrap();
    assert_eq!(std::fs::read(store.tarball_path(&integrity)).unwrap(), bytes);

    // One the seeder lacks (and it fetches nothing upstream).
    let (_, other) = tarball(&corpus, "debug", "2.6.9");
    let err = client.fetch(&store, "debug", "2.6.9", &other).await.unwrap_err();
    assert!(matches!(&err, PeerFetchError::Missing(r) if r.contains("not in this seeder's store")), "{err}");
    assert!(!store.has_tarball(&other));
    assert_eq!(client.counts(), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_fetches_upstream_only_what_its_index_records() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    let mut index = Index::open(Trie::open(feed.clone()).await.unwrap()).await.unwrap();
    index.set_upstream(&registry.url().parse().unwrap()).await.unwrap();
    let packument = indexer::model::Packument::from_slice(corpus.packument("ms").unwrap()).unwrap();
    index
        .write(Update {
            documents: vec![Document { packument: packument.into(), etag: None }],
            ..Update::default()
        })
        .await
        .unwrap();

    let seed_store = TarballStore::open(dir.path().join("seed")).unwrap();
    let upstream =
        indexer::upstream::Registry::new(registry.url().parse().unwrap(), Default::default()).unwrap();
    let server = TarballServer::with_upstream(seed_store.clone(), upstream, index);
    let client = client();
    let _pair = connect_feed(&feed, &client, Some(Arc::new(server))).await;
    let store = TarballStore::open(dir.path().join("reader")).unwrap();

    let (_, integrity) = tarball(&corpus, "ms", "2.0.0");
    client.fetch(&store, "ms", "2.0.0", &integrity).await.unwrap();
    assert!(seed_store.has_tarball(&integrity), "kept by the seeder");
    assert_eq!(registry.hits("/ms/-/ms-2.0.0.tgz"), 1);
    let again = TarballStore::open(dir.path().join("reader-2")).unwrap();
    client.fetch(&again, "ms", "2.0.0", &integrity).await.unwrap();
    assert_eq!(registry.hits("/ms/-/ms-2.0.0.tgz"), 1, "the second reader is served from the seeder's store");

    // An integrity the index does not record for that version: nothing is fetched.
    let (_, wrong) = tarball(&corpus, "debug", "2.6.9");
    let err = client.fetch(&store, "ms", "2.1.1", &wrong).await.unwrap_err();
    assert!(matches!(&err, PeerFetchError::Missing(r) if r.contains("another integrity")), "{err}");
    // A version the index does not have.
    let err = client.fetch(&store, "left-pad", "1.0.0", &wrong).await.unwrap_err();
    assert!(matches!(&err, PeerFetchError::Missing(r) if r.contains("not in this seeder's index")), "{err}");
    assert_eq!(registry.hits("/ms/-/ms-2.1.1.tgz"), 0);
}

/// What a bad seeder answers to every request.
#[derive(Clone, Copy, Debug)]
enum Bad {
    /// Other bytes than asked for.
    WrongBytes,
    /// The right bytes, and an `End` claiming more.
    WrongTotal,
    /// More bytes than the reader accepts.
    Endless,
    /// Nothing at all.
    Silent,
    /// A payload that is no message.
    Garbage,
    /// Half the bytes, then the connection goes away.
    HangUp,
}

#[derive(Debug)]
struct BadSeeder {
    how: Bad,
    bytes: Vec<u8>,
    hang_up: tokio::sync::Notify,
}

impl ExtensionHandler for BadSeeder {
    fn name(&self) -> &str {
        TARBALL_EXTENSION
    }

    fn on_message(&self, peer: &ExtensionPeer, payload: Vec<u8>) {
        let Ok(Message::Request { id, .. }) = Message::decode(&payload) else { return };
        let (peer, how, bytes) = (peer.clone(), self.how, self.bytes.clone());
        let mut out: Vec<Vec<u8>> = Vec::new();
        match how {
            Bad::WrongBytes => {
                let mut b = bytes.clone();
                b[10] ^= 1;
                out.push(wire::chunk(id, &b));
                out.push(Message::End { id, total: b.len() as u64 }.encode());
            }
            Bad::WrongTotal => {
                out.push(wire::chunk(id, &bytes));
                out.push(Message::End { id, total: bytes.len() as u64 + 1 }.encode());
            }
            Bad::Endless => out.extend((0..200).map(|_| wire::chunk(id, &[0; 64 * 1024]))),
            Bad::Silent => {}
            Bad::Garbage => {
                out.push([&[2u8][..], &id.to_be_bytes(), &vec![0; wire::MAX_CHUNK_BYTES + 1]].concat())
            }
            Bad::HangUp => {
                out.push(wire::chunk(id, &bytes[..bytes.len() / 2]));
                self.hang_up.notify_one();
            }
        }
        tokio::spawn(async move {
            for m in out {
                if peer.send(m).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_seeder_never_gets_bytes_into_the_store() {
    let corpus = Corpus::load().unwrap();
    let (bytes, integrity) = tarball(&corpus, "ms", "2.0.0");
    for how in [Bad::WrongBytes, Bad::WrongTotal, Bad::Endless, Bad::Silent, Bad::Garbage, Bad::HangUp] {
        let dir = tempfile::tempdir().unwrap();
        let store = TarballStore::open(dir.path()).unwrap();
        let client = client();
        let seeder = Arc::new(BadSeeder { how, bytes: bytes.clone(), hang_up: tokio::sync::Notify::new() });
        let pair = connect(&client, Some(seeder.clone())).await;
        let fetch = client.fetch(&store, "ms", "2.0.0", &integrity);
        let err = if matches!(how, Bad::HangUp) {
            let hang_up = async {
                seeder.hang_up.notified().await;
                drop(pair);
            };
            let (r, ()) = tokio::join!(fetch, hang_up);
            r.unwrap_err()
        } else {
            let r = fetch.await;
            drop(pair);
            r.unwrap_err()
        };
        let expected = match how {
            Bad::WrongBytes => matches!(err, PeerFetchError::Store(TarballError::IntegrityMismatch { .. })),
            Bad::WrongTotal | Bad::Garbage => matches!(err, PeerFetchError::Protocol(_)),
            Bad::Endless => matches!(err, PeerFetchError::TooLarge { .. } | PeerFetchError::Overrun),
            Bad::Silent => matches!(err, PeerFetchError::Stalled(_)),
            Bad::HangUp => matches!(err, PeerFetchError::Gone),
        };
        assert!(expected, "{how:?}: {err}");
        assert!(!store.has_tarball(&integrity), "{how:?}: nothing stored");
        let leftovers = std::fs::read_dir(dir.path().join("tmp")).map(|d| d.count()).unwrap_or(0);
        assert_eq!(leftovers, 0, "{how:?}: no temp file left behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_extension_is_no_tarball_source() {
    let corpus = Corpus::load().unwrap();
    let (_, integrity) = tarball(&corpus, "ms", "2.0.0");
    let dir = tempfile::tempdir().unwrap();
    let store = TarballStore::open(dir.path()).unwrap();
    let client = client();
    let _pair = connect(&client, None).await;
    let err = client.fetch(&store, "ms", "2.0.0", &integrity).await.unwrap_err();
    assert!(matches!(err, PeerFetchError::NoPeer), "{err}");
}
