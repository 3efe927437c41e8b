//! Feed behaviour: append, read, replicas, events, errors (in-memory and on disk).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypercore::{BlockSource, DiscoveryKey, FeedBuilder, FeedEvent, GetError, KeyPair, Storage, VerifyError};

fn kp(n: u8) -> KeyPair {
    KeyPair::from_seed(&[n; 32])
}

#[tokio::test]
async fn append_get_len() {
    let feed = FeedBuilder::new(Storage::memory()).key_pair(kp(1)).open().await.unwrap();
    assert!(feed.is_empty() && feed.writable());
    assert_eq!(feed.append(b"hello").await.unwrap(), 0);
    assert_eq!(feed.append_batch(&[b"a".as_slice(), b"", b"ccc"]).await.unwrap(), 1);
    assert_eq!(feed.append_batch::<&[u8]>(&[]).await.unwrap(), 4);
    assert_eq!(feed.len(), 4);
    assert_eq!(feed.byte_len(), 9);
    assert_eq!(feed.get(0).await.unwrap(), b"hello");
    assert_eq!(feed.get(2).await.unwrap(), b"");
    assert_eq!(feed.get(3).await.unwrap(), b"ccc");
    assert_eq!(feed.byte_offset(3).await.unwrap(), 6);
    assert!(matches!(feed.get(4).await, Err(GetError::OutOfBounds { seq: 4, len: 4 })));
    assert!(feed.has(3) && !feed.has(4));
    assert_eq!(feed.signature_at(1).map(|(slot, _)| slot), Some(3));
}

#[tokio::test]
async fn replica_put_verifies_and_rejects() {
    let w = FeedBuilder::new(Storage::memory()).key_pair(kp(2)).open().await.unwrap();
    for i in 0..10u32 {
        w.append(format!("block {i}").as_bytes()).await.unwrap();
    }
    let r = FeedBuilder::new(Storage::memory()).public_key(w.public_key()).open().await.unwrap();
    assert!(!r.writable());
    let mut events = r.subscribe();
    let proof = w.proof(7, r.digest(7)).await.unwrap();
    // Tampered data is rejected and nothing is stored.
    let err = r.put(7, b"evil", &proof).await.unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { seq: 7 }), "{err}");
    assert!(!r.has(7));
    r.put(7, &w.get(7).await.unwrap(), &proof).await.unwrap();
    assert_eq!(r.len(), 10);
    assert_eq!(r.get_local(7).unwrap().unwrap(), b"block 7");
    assert_eq!(events.recv().await.unwrap(), FeedEvent::Append { len: 10 });
    assert_eq!(events.recv().await.unwrap(), FeedEvent::Download { seq: 7 });
    // A second block needs no signature: the replica already holds part of the path.
    let proof = w.proof(6, r.digest(6)).await.unwrap();
    assert!(proof.signature.is_none());
    r.put(6, &w.get(6).await.unwrap(), &proof).await.unwrap();
    assert!(r.append(b"x").await.is_err());
}

/// A block source that records requests and serves them from the writer in a task.
#[derive(Default)]
struct Recorder {
    asked: Mutex<Vec<(DiscoveryKey, u64)>>,
}

impl BlockSource for Recorder {
    fn request(&self, feed: &DiscoveryKey, seqs: &[u64]) {
        let mut asked = self.asked.lock().unwrap();
        for s in seqs {
            asked.push((*feed, *s));
        }
    }
}

#[tokio::test]
async fn sparse_get_waits_for_put_and_times_out() {
    let w = FeedBuilder::new(Storage::memory()).key_pair(kp(3)).open().await.unwrap();
    w.append_batch(&[b"a".as_slice(), b"b", b"c"]).await.unwrap();
    let source = Arc::new(Recorder::default());
    let r = FeedBuilder::new(Storage::memory())
        .public_key(w.public_key())
        .block_source(source.clone())
        .get_timeout(Duration::from_secs(5))
        .open()
        .await
        .unwrap();
    let reader = {
        let r = r.clone();
        tokio::spawn(async move { r.get(1).await })
    };
    // Wait until the request was made, then deliver.
    while source.asked.lock().unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    assert_eq!(source.asked.lock().unwrap()[0], (w.discovery_key(), 1));
    let proof = w.proof(1, r.digest(1)).await.unwrap();
    r.put(1, b"b", &proof).await.unwrap();
    assert_eq!(reader.await.unwrap().unwrap(), b"b");

    let r2 = FeedBuilder::new(Storage::memory())
        .public_key(w.public_key())
        .block_source(source)
        .get_timeout(Duration::from_millis(20))
        .open()
        .await
        .unwrap();
    assert!(matches!(r2.get(2).await, Err(GetError::Timeout { seq: 2 })));
    let r3 = FeedBuilder::new(Storage::memory()).public_key(w.public_key()).open().await.unwrap();
    assert!(matches!(r3.get(0).await, Err(GetError::OutOfBounds { seq: 0, len: 0 })));
}

#[tokio::test]
async fn disk_reopen_keeps_blocks_and_checks_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed");
    {
        let f = FeedBuilder::new(Storage::disk(&path)).key_pair(kp(4)).open().await.unwrap();
        f.append(b"one").await.unwrap();
        f.append_batch(&[b"two".as_slice(), b"three"]).await.unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path.join("secret_key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "secret_key must be owner-only, mode {mode:o}");
    let f = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap();
    assert!(f.writable());
    assert_eq!(f.public_key(), kp(4).public);
    assert_eq!(f.len(), 3);
    assert_eq!(f.get(2).await.unwrap(), b"three");
    f.append(b"four").await.unwrap();
    drop(f);
    let f = FeedBuilder::new(Storage::disk(&path)).public_key(kp(4).public).open().await.unwrap();
    assert!(!f.writable());
    assert_eq!(f.get(3).await.unwrap(), b"four");
    let err = FeedBuilder::new(Storage::disk(&path)).key_pair(kp(5)).open().await.unwrap_err();
    assert!(err.to_string().contains("holds feed"), "{err}");
}

#[tokio::test]
async fn disk_corruption_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed");
    {
        let f = FeedBuilder::new(Storage::disk(&path)).key_pair(kp(6)).open().await.unwrap();
        for i in 0..5u8 {
            f.append(&[i; 10]).await.unwrap();
        }
    }
    let log = path.join("log");
    let mut bytes = std::fs::read(&log).unwrap();
    // Flip a byte in the meta of the first record: not the tail, so it is corruption.
    bytes[76 + 60] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let err = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap_err();
    assert!(err.to_string().contains("log"), "{err}");
    // A truncated header is an error too, never a panic.
    std::fs::write(&log, &bytes[..10]).unwrap();
    let err = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap_err();
    assert!(err.to_string().contains("shorter than its header"), "{err}");
}

#[tokio::test]
async fn disk_block_rot_is_reported_on_get() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed");
    {
        let f = FeedBuilder::new(Storage::disk(&path)).key_pair(kp(7)).open().await.unwrap();
        f.append(b"first block").await.unwrap();
        f.append(b"second block").await.unwrap();
    }
    let log = path.join("log");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.windows(11).position(|w| w == b"first block").unwrap();
    bytes[at] = b'F';
    std::fs::write(&log, &bytes).unwrap();
    let f = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap();
    let err = f.get(0).await.unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(f.get(1).await.unwrap(), b"second block");
}

#[tokio::test]
async fn torn_tail_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed");
    {
        let f = FeedBuilder::new(Storage::disk(&path)).key_pair(kp(8)).open().await.unwrap();
        f.append(b"kept").await.unwrap();
        f.append(b"torn away").await.unwrap();
    }
    let log = path.join("log");
    let full = std::fs::read(&log).unwrap();
    let second = full.windows(4).rposition(|w| w == b"HCR1").unwrap();
    // Every prefix of the last record, and the record with zero-filled data, is a torn tail.
    for cut in [second + 3, second + 30, second + 60, full.len() - 1] {
        std::fs::write(&log, &full[..cut]).unwrap();
        let f = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap();
        assert_eq!(f.len(), 1, "cut at {cut}");
        assert_eq!(f.get(0).await.unwrap(), b"kept");
        drop(f);
        assert_eq!(std::fs::metadata(&log).unwrap().len() as usize, second);
    }
    let mut zeroed = full.clone();
    let n = zeroed.len();
    zeroed[n - 9..].fill(0);
    std::fs::write(&log, &zeroed).unwrap();
    let f = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap();
    assert_eq!(f.len(), 1);
    f.append(b"again").await.unwrap();
    drop(f);
    let f = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap();
    assert_eq!(f.get(1).await.unwrap(), b"again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_append_futures_leave_a_consistent_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed");
    let f = FeedBuilder::new(Storage::disk(&path)).key_pair(kp(9)).open().await.unwrap();
    for i in 0..20u32 {
        // Cancel right after the write was handed to the blocking pool (or before).
        let _ = tokio::time::timeout(Duration::ZERO, f.append(format!("maybe {i}").as_bytes())).await;
        f.append(format!("sure {i}").as_bytes()).await.unwrap();
    }
    let len = f.len();
    let blocks: Vec<Vec<u8>> = {
        let mut v = Vec::new();
        for s in 0..len {
            v.push(f.get(s).await.unwrap());
        }
        v
    };
    assert!(blocks.iter().filter(|b| b.starts_with(b"sure")).count() == 20);
    drop(f);
    let f = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap();
    assert_eq!(f.len(), len);
    for (s, b) in blocks.iter().enumerate() {
        assert_eq!(&f.get(s as u64).await.unwrap(), b);
    }
}

#[tokio::test]
async fn bad_secret_key_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed");
    FeedBuilder::new(Storage::disk(&path)).key_pair(kp(10)).open().await.unwrap().append(b"x").await.unwrap();
    std::fs::write(path.join("secret_key"), [1u8; 63]).unwrap();
    let err = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap_err();
    assert!(err.to_string().contains("secret_key"), "{err}");
    std::fs::write(path.join("secret_key"), kp(11).secret.as_bytes()).unwrap();
    let err = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap_err();
    assert!(err.to_string().contains("another feed"), "{err}");
}
