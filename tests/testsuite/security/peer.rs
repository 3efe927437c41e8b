//! Attacks from a hostile peer: see `SECURITY.md`.
//!
//! Each misbehaving peer is written with the project's own protocol types (`ims/tarball`
//! messages, hypercore-protocol messages, the swarm Noise handshake) and each test asserts the
//! attack now fails safe: a named error within a bound, nothing unverified stored.
//!
//! * a tarball peer that trickles forever: the reader gives up at the request's deadline;
//! * a tarball peer that sends more than the size the index records: cut off at that size;
//! * a hypercore peer announcing huge ranges (`Have { length: 2^23 }` over and over) or an
//!   index past what a feed can have: the connection closes with an error, no hang, no panic;
//! * dialling a node key while another key answers, and a peer offering only the JS
//!   transport (XSalsa20, no MAC) without `--allow-js-peers`: refused with a clear error.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fixtures::Corpus;
use hypercore::protocol::{
    ChannelMessage, Event, Have, Message, Session, SessionKeys, Status, StreamOptions, message_stream, rle,
};
use hypercore::replicate::{
    ExtensionHandler, ExtensionPeer, PeerRouter, ReplicateError, ReplicateOptions, replicate,
};
use hypercore::{Feed, FeedBuilder, KeyPair, Storage};
use hypertrie::Trie;
use indexer::tarball_peers::client::recorded_cap;
use indexer::tarball_peers::wire::{self, Message as TarballMessage};
use indexer::tarball_peers::{PeerFetchError, TARBALL_EXTENSION, TarballClient, TarballServer};
use indexer::tarballs::{Algorithm, Integrity, TarballStore};
use indexer::{Document, Index, Update};
use tokio::task::JoinHandle;

use crate::support::{self, child};

// ---------------------------------------------------------------------------------------------
// Tarball peers
// ---------------------------------------------------------------------------------------------

struct Aborting(JoinHandle<()>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The seeder's `feed` (with `server` on its side) replicated to a sparse replica carrying
/// `client`, over an in-memory connection; both ends stop when the guards drop.
async fn connect(feed: &Feed, client: &TarballClient, server: Arc<dyn ExtensionHandler>) -> [Aborting; 2] {
    let router = PeerRouter::new();
    let replica = FeedBuilder::new(Storage::memory())
        .public_key(feed.public_key())
        .block_source(Arc::new(router.clone()))
        .open()
        .await
        .unwrap();
    let (a, b) = tokio::io::duplex(256 * 1024);
    let (ka, kb) = (SessionKeys::new([1; 32], [2; 32]), SessionKeys::new([2; 32], [1; 32]));
    let up = ReplicateOptions::upload().with_extension(server);
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
    tokio::time::timeout(Duration::from_secs(10), async {
        while replica.is_empty() {
            let _ = events.recv().await;
        }
    })
    .await
    .expect("the seeder's length arrives");
    [Aborting(seeder), Aborting(reader)]
}

/// What npm records for a tarball in `dist`: the bytes of its files (`unpackedSize`) and how
/// many there are (`fileCount`), read from the tarball itself.
fn unpacked_stats(tgz: &[u8]) -> (u64, u64) {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let (mut bytes, mut files) = (0, 0);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            bytes += entry.header().size().unwrap();
            files += 1;
        }
    }
    (bytes, files)
}

/// A seeder index recording `ms` from the corpus, with the `unpackedSize` and `fileCount`
/// npm records for the versions whose tarball the corpus has (the corpus's packuments were
/// stripped of them).
async fn index_with_ms(corpus: &Corpus) -> (Feed, Index) {
    let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    let index = Index::open(Trie::open(feed.clone()).await.unwrap()).await.unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(corpus.packument("ms").unwrap()).unwrap();
    for version in ["2.0.0", "2.1.3"] {
        let (size, files) = unpacked_stats(corpus.tarball("ms", version).expect("corpus tarball"));
        let dist = &mut doc["versions"][version]["dist"];
        dist["unpackedSize"] = size.into();
        dist["fileCount"] = files.into();
    }
    let packument = indexer::model::Packument::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let documents = vec![Document { packument: packument.into(), etag: None }];
    index.write(Update { documents, ..Update::default() }).await.unwrap();
    (feed, index)
}

/// What a hostile tarball seeder does with every request.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// One byte at a time, each well within the idle timeout, forever.
    Trickle,
    /// The real tarball, then a megabyte more, then an `End` that counts it all.
    Oversized,
}

#[derive(Debug)]
struct HostileSeeder {
    how: Hostile,
    bytes: Vec<u8>,
    /// Bytes this seeder managed to hand to the connection.
    sent: Arc<std::sync::atomic::AtomicU64>,
}

impl ExtensionHandler for HostileSeeder {
    fn name(&self) -> &str {
        TARBALL_EXTENSION
    }

    fn on_message(&self, peer: &ExtensionPeer, payload: Vec<u8>) {
        let Ok(TarballMessage::Request { id, .. }) = TarballMessage::decode(&payload) else { return };
        let (peer, how, bytes, sent) = (peer.clone(), self.how, self.bytes.clone(), self.sent.clone());
        tokio::spawn(async move {
            let count = |n: usize| sent.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            match how {
                Hostile::Trickle => {
                    // Bounded so the test's runtime ends: 10 minutes of bytes at this rate.
                    for b in bytes.iter().cycle().take(6000) {
                        if peer.send(wire::chunk(id, &[*b])).await.is_err() {
                            return;
                        }
                        count(1);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Hostile::Oversized => {
                    let junk = vec![0u8; wire::CHUNK_BYTES];
                    let body = bytes.chunks(wire::CHUNK_BYTES).chain(std::iter::repeat_n(&junk[..], 16));
                    let mut total = 0;
                    for c in body {
                        if peer.send(wire::chunk(id, c)).await.is_err() {
                            return;
                        }
                        count(c.len());
                        total += c.len() as u64;
                    }
                    let _ = peer.send(TarballMessage::End { id, total }.encode()).await;
                }
            }
        });
    }
}

fn ms_tarball(corpus: &Corpus) -> (Vec<u8>, Integrity) {
    let bytes = corpus.tarball("ms", "2.0.0").expect("corpus tarball").to_vec();
    let integrity = Integrity::of_bytes(Algorithm::Sha512, &bytes);
    (bytes, integrity)
}

fn assert_nothing_stored(store: &TarballStore, dir: &Path, integrity: &Integrity) {
    assert!(!store.has_tarball(integrity), "nothing stored");
    let leftovers = std::fs::read_dir(dir.join("tmp")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "no temp file left behind");
}

/// (a) A peer that trickles a byte every 100 ms never goes silent for the idle timeout (500 ms
/// here), so only the request's overall deadline stops it: the old reader waited until the
/// byte cap (hours at this rate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_tarball_peer_is_given_up_at_the_deadline() {
    let corpus = Corpus::load().unwrap();
    let (bytes, integrity) = ms_tarball(&corpus);
    let dir = tempfile::tempdir().unwrap();
    let store = TarballStore::open(dir.path()).unwrap();
    // 64 KiB at most, 500 ms idle, a 1 s base deadline: 2 s in all at 64 KiB/s.
    let client = TarballClient::with_deadline(64 << 10, Duration::from_millis(500), Duration::from_secs(1));
    let (feed, _) = index_with_ms(&corpus).await;
    let sent = Arc::default();
    let seeder = Arc::new(HostileSeeder { how: Hostile::Trickle, bytes, sent });
    let _conns = connect(&feed, &client, seeder).await;
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(15), client.fetch(&store, "ms", "2.0.0", &integrity))
        .await
        .expect("the reader must give up on a trickling peer, not wait for it")
        .unwrap_err();
    assert!(matches!(err, PeerFetchError::Deadline(_)), "{err}");
    assert!(err.to_string().contains("did not deliver it within"), "a clear error: {err}");
    assert!(started.elapsed() < Duration::from_secs(6), "given up within the bound: {:?}", started.elapsed());
    assert_nothing_stored(&store, dir.path(), &integrity);
    // The install then goes upstream: the failure is counted as such.
    assert_eq!(client.counts(), (0, 1));
}

/// (b) The index records `ms@2.0.0`'s unpacked size and file count; a peer sending more than
/// a tarball of that size can be is cut off there, though the store's own cap (64 MiB here)
/// is far away. The honest seeder's tarball fits the same cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tarball_peer_sending_more_than_the_recorded_size_is_refused() {
    let corpus = Corpus::load().unwrap();
    let (bytes, integrity) = ms_tarball(&corpus);
    let (feed, index) = index_with_ms(&corpus).await;
    let manifest = index.version("ms", "2.0.0").await.unwrap().expect("recorded");
    let cap = recorded_cap(&manifest.dist).expect("the corpus records ms's unpacked size");
    assert!(cap < 1 << 20, "the recorded cap is the tarball's scale ({cap}), not the store's");

    let dir = tempfile::tempdir().unwrap();
    let store = TarballStore::open(dir.path()).unwrap();
    let client = TarballClient::new(64 << 20, Duration::from_secs(5));
    client.set_index(index.clone());
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seeder =
        Arc::new(HostileSeeder { how: Hostile::Oversized, bytes: bytes.clone(), sent: sent.clone() });
    let conns = connect(&feed, &client, seeder).await;
    let err = tokio::time::timeout(Duration::from_secs(15), client.fetch(&store, "ms", "2.0.0", &integrity))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        matches!(err, PeerFetchError::TooLarge { limit, why: "the index records for it" } if limit == cap),
        "{err}"
    );
    assert_nothing_stored(&store, dir.path(), &integrity);
    drop(conns);

    // The honest seeder, same cap: its tarball fits.
    let seed_store = TarballStore::open(dir.path().join("seed")).unwrap();
    seed_store.put_bytes(&integrity, &bytes).unwrap();
    let honest = TarballClient::new(64 << 20, Duration::from_secs(5));
    honest.set_index(index);
    let _conns = connect(&feed, &honest, Arc::new(TarballServer::new(seed_store))).await;
    let store = TarballStore::open(dir.path().join("reader")).unwrap();
    honest
        .fetch(&store, "ms", "2.0.0", &integrity)
        .await
        .expect("the honest seeder's tarball fits its recorded size");
}

/// The recorded cap is never below a real tarball: every tarball of the corpus (real npm
/// tarballs), with the `unpackedSize` and `fileCount` npm would record for it, and with the
/// file count unknown.
#[test]
fn every_corpus_tarball_fits_its_recorded_cap() {
    let corpus = Corpus::load().unwrap();
    let mut checked = 0;
    for (name, version, bytes) in corpus.tarballs() {
        let (size, files) = unpacked_stats(bytes);
        for file_count in [Some(files), None] {
            let dist = indexer::model::Dist { unpacked_size: Some(size), file_count, ..Default::default() };
            let cap = recorded_cap(&dist).expect("a size is recorded");
            assert!(bytes.len() as u64 <= cap, "{name}@{version}: {} bytes, cap {cap}", bytes.len());
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} corpus tarballs");
    assert_eq!(recorded_cap(&indexer::model::Dist::default()), None, "no size recorded, no recorded cap");
}

/// A seeder with a store quota fetches nothing more upstream once its store holds that much,
/// and says so to the peer (the log line says so to its operator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_over_its_store_quota_fetches_nothing_more() {
    let corpus = Corpus::load().unwrap();
    let registry = fixtures::Registry::with_corpus(&corpus).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (feed, mut index) = index_with_ms(&corpus).await;
    index.set_upstream(&registry.url().parse().unwrap()).await.unwrap();
    let seed_store = TarballStore::open(dir.path().join("seed")).unwrap();
    let upstream =
        indexer::upstream::Registry::new(registry.url().parse().unwrap(), Default::default()).unwrap();
    // Room for the first tarball's recorded size: once it is stored the next does not fit.
    let (first_size, _) = unpacked_stats(corpus.tarball("ms", "2.0.0").unwrap());
    let server = TarballServer::with_upstream(seed_store.clone(), upstream, index).with_quota(first_size);
    let client = TarballClient::new(8 << 20, Duration::from_secs(5));
    let _conns = connect(&feed, &client, Arc::new(server.clone())).await;
    let store = TarballStore::open(dir.path().join("reader")).unwrap();
    let (_, first) = ms_tarball(&corpus);
    client.fetch(&store, "ms", "2.0.0", &first).await.expect("within the quota");
    assert!(server.stored_bytes() > 0);
    let second =
        Integrity::of_bytes(Algorithm::Sha512, corpus.tarball("ms", "2.1.3").expect("corpus tarball"));
    let err = client.fetch(&store, "ms", "2.1.3", &second).await.unwrap_err();
    assert!(matches!(&err, PeerFetchError::Missing(r) if r.contains("store is full")), "{err}");
    assert!(!seed_store.has_tarball(&second), "nothing fetched past the quota");
    assert_eq!(registry.hits("/ms/-/ms-2.1.3.tgz"), 0);
}

// ---------------------------------------------------------------------------------------------
// Hypercore replication
// ---------------------------------------------------------------------------------------------

/// Opens the feed's channel correctly, then sends `haves` (each repeated `times`) and keeps
/// the connection up.
async fn announcing_peer(
    io: tokio::io::DuplexStream,
    key: hypercore::PublicKey,
    haves: Vec<Have>,
    times: usize,
) {
    let (out, mut rx) = message_stream(io, StreamOptions::default());
    let mut session = Session::new(SessionKeys::new([1; 32], [2; 32]), &[], &[]);
    let (id, open) = session.open(&key).expect("open");
    for m in open {
        if out.send(&m).await.is_err() {
            return;
        }
    }
    let _ = out.send(&ChannelMessage::new(id, Message::Status(Status::new(true, false)))).await;
    for _ in 0..times {
        for have in &haves {
            if out.send(&ChannelMessage::new(id, Message::Have(have.clone()))).await.is_err() {
                return;
            }
        }
    }
    // Stay: answer nothing, keep reading (the stream sends keepalives).
    while let Ok(Some(msg)) = rx.recv().await {
        let _ = session.on_message(msg).map(|e| matches!(e, Some(Event::Message { .. })));
    }
}

/// Runs a sparse replica of a fresh feed against `peer`; the connection's result.
async fn replicate_against(haves: Vec<Have>, times: usize) -> Result<ReplicateError, String> {
    let writer = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.unwrap();
    let router = PeerRouter::new();
    let replica = FeedBuilder::new(Storage::memory())
        .public_key(writer.public_key())
        .block_source(Arc::new(router.clone()))
        .open()
        .await
        .unwrap();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let peer = Aborting(tokio::spawn(announcing_peer(a, writer.public_key(), haves, times)));
    let conn = tokio::spawn(replicate(b, SessionKeys::new([2; 32], [1; 32]), vec![replica.clone()], {
        ReplicateOptions::sparse(router)
    }));
    let result = match tokio::time::timeout(Duration::from_secs(20), conn).await {
        Err(_) => Err("the connection is still up: the hostile announcements were not refused".to_owned()),
        Ok(Err(join)) => Err(format!("the replication task failed: {join}")),
        Ok(Ok(Ok(stats))) => Err(format!("the connection ended without an error: {stats:?}")),
        Ok(Ok(Err(e))) => Ok(e),
    };
    drop(peer);
    assert_eq!(replica.len(), 0, "no length adopted from announcements alone");
    result
}

/// (c) `Have { length: 2^23 }` makes the reader mark 2^23 blocks; sent over and over it cost
/// CPU without bound (each 10-byte message, 8 M bitfield writes). Now the announcements a
/// channel may make are bounded and the connection closes with a named error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_repeating_huge_haves_is_disconnected() {
    let started = Instant::now();
    let have = Have { start: 0, length: Some(1 << 23), ..Default::default() };
    let err = replicate_against(vec![have], 4096).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(err, ReplicateError::Announce { .. }), "{err}");
    assert!(err.to_string().contains("announcements are out of bounds"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
}

/// (c) An index near `u64::MAX` (a Have's start with a bitfield, or start + length) overflowed
/// the reader's arithmetic: a panic in a debug build. Now it is a protocol error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_have_past_the_largest_index_is_an_error_not_a_panic() {
    let far = u64::MAX - 7;
    for have in [
        Have { start: far, length: Some(64), bitfield: Some(rle::encode(&[0xff; 8])), ack: None },
        Have { start: far, length: Some(u64::MAX), ..Default::default() },
        Have { start: 1 << 60, ..Default::default() },
    ] {
        let err = replicate_against(vec![have.clone()], 1).await.unwrap_or_else(|e| panic!("{have:?}: {e}"));
        assert!(matches!(err, ReplicateError::Announce { .. }), "{have:?}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Remote key pinning and the JS transport, through the binary
// ---------------------------------------------------------------------------------------------

/// An index under `home/index` with a few keys, as `ims index` would write it.
fn make_index(home: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let feed = FeedBuilder::new(Storage::disk(home.join("index")))
            .key_pair(KeyPair::generate())
            .open()
            .await
            .unwrap();
        let trie = Trie::open(feed).await.unwrap();
        for i in 0..5 {
            trie.put(&format!("pkg-{i}"), b"{}").await.unwrap();
        }
    });
}

/// `ims seed` on a free port: the process, its address, index key and node key.
fn seed(home: &Path) -> (child::Kill, String, String, String) {
    let mut cmd = support::ims(home);
    cmd.args(["seed", "--listen", "127.0.0.1:0", "--no-dht"]);
    let mut proc = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn ims seed");
    let out = child::lines(proc.stdout.take().expect("stdout"));
    let kill = child::Kill(proc);
    let addr = child::line(&out).strip_prefix("listening on ").expect("listening line").to_owned();
    let key = child::line(&out).strip_prefix("key ").expect("key line").to_owned();
    let node = child::line(&out).strip_prefix("node ").expect("node line").to_owned();
    (kill, addr, key, node)
}

fn run(home: &Path, args: &[&str]) -> (bool, String, Duration) {
    let started = Instant::now();
    let out = support::ims(home).args(args).output().expect("run ims");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text, started.elapsed())
}

/// (d) `--peer NODE@ADDR` names the node to reach; another node answering at that address
/// (here: the seeder, whose key is not the one named) is refused by the Noise handshake, with
/// a clear error, and the named key works.
#[test]
fn dialling_a_node_key_that_another_key_answers_is_refused() {
    let (seeder_home, reader) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_index(seeder_home.path());
    let (_kill, addr, key, node) = seed(seeder_home.path());
    let impostor_of = swarm::Identity::generate().public_key().to_hex();
    let wrong = format!("{impostor_of}@{addr}");
    let (ok, text, took) = run(reader.path(), &["trie", "info", "--no-dht", "--key", &key, "--peer", &wrong]);
    assert!(!ok, "a peer that is not the named node was used: {text}");
    assert!(
        text.contains("is not the node") && text.contains(&node),
        "a clear error naming both keys: {text}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");

    let right = format!("{node}@{addr}");
    let (ok, text, _) = run(reader.path(), &["trie", "info", "--no-dht", "--key", &key, "--peer", &right]);
    assert!(ok, "the named node is used: {text}");
}

/// A peer that offers only v8's XSalsa20 (what a JS peer does, or an ims node downgraded by
/// whoever controls it) is refused unless the user allows JS peers.
#[test]
fn a_peer_offering_only_the_unauthenticated_transport_needs_allow_js_peers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let me = swarm::Identity::generate();
            let mut handshakes = Vec::new();
            while stop_rx.try_recv().is_err() {
                let Ok(Ok((socket, _))) =
                    tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
                else {
                    continue;
                };
                let config = swarm::HandshakeConfig::v8_compatible();
                // Completes the JS handshake, then hangs up (it serves nothing).
                handshakes.push(swarm::handshake(socket, swarm::Role::Responder, &me, &config).await.is_ok());
            }
            handshakes
        })
    });
    let home = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().public.to_hex();
    let (ok, text, took) = run(home.path(), &["trie", "info", "--no-dht", "--key", &key, "--peer", &addr]);
    assert!(!ok, "{text}");
    assert!(text.contains("unauthenticated transport of JS peers"), "{text}");
    assert!(text.contains("--allow-js-peers"), "the hint names the flag: {text}");
    assert!(took < Duration::from_secs(15), "{took:?}");

    let (ok, text, _) =
        run(home.path(), &["trie", "info", "--no-dht", "--allow-js-peers", "--key", &key, "--peer", &addr]);
    assert!(!ok, "the fake peer serves nothing: {text}");
    assert!(!text.contains("unauthenticated transport"), "allowed with the flag: {text}");
    stop_tx.send(()).unwrap();
    let handshakes = peer.join().unwrap();
    assert_eq!(handshakes.len(), 2, "both runs reached the peer");
}
