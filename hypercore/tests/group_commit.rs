//! Group commit on disk: concurrent puts and appends (and `put_blocks` of several) share writes and syncs,
//! yet every call that returned is durable and a torn group is cut off whole on reopen.

use hypercore::{Feed, FeedBuilder, KeyPair, Proof, PutOptions, Storage, VerifyError};

fn kp(n: u8) -> KeyPair {
    KeyPair::from_seed(&[n; 32])
}

/// Deterministic block `seq`, 0..=299 bytes, never containing a record magic.
fn block(seq: u64) -> Vec<u8> {
    let len = (seq * 37 % 300) as usize;
    format!("b{seq}.").bytes().cycle().take(len).collect()
}

async fn writer_with(n: u64, seed: u8) -> Feed {
    let w = FeedBuilder::new(Storage::memory()).key_pair(kp(seed)).open().await.unwrap();
    // Several append calls, so proofs carry different signatures.
    for chunk in (0..n).collect::<Vec<_>>().chunks(37) {
        let blocks: Vec<Vec<u8>> = chunk.iter().map(|&s| block(s)).collect();
        w.append_batch(&blocks).await.unwrap();
    }
    w
}

/// Every block of `feed` verifies through a proof into a fresh in-memory replica.
async fn assert_all_verify(feed: &Feed, len: u64) {
    let check = FeedBuilder::new(Storage::memory()).public_key(feed.public_key()).open().await.unwrap();
    for seq in (0..len).rev() {
        let proof = feed.proof(seq, check.digest(seq)).await.unwrap();
        check.put(seq, &feed.get(seq).await.unwrap(), &proof).await.unwrap();
    }
    assert_eq!(check.len(), len);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_on_a_disk_replica_survive_reopen() {
    const N: u64 = 400;
    let w = writer_with(N, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica");
    let r = FeedBuilder::new(Storage::disk(&path)).public_key(w.public_key()).open().await.unwrap();
    // All proofs are made against the empty replica, then put concurrently.
    let mut tasks = Vec::new();
    for seq in 0..N {
        let proof = w.proof(seq, r.digest(seq)).await.unwrap();
        let data = w.get(seq).await.unwrap();
        let r = r.clone();
        tasks.push(tokio::spawn(async move { r.put(seq, &data, &proof).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(r.len(), N);
    drop(r);

    let r = FeedBuilder::new(Storage::disk(&path)).public_key(w.public_key()).open().await.unwrap();
    assert_eq!(r.len(), N);
    for seq in 0..N {
        assert_eq!(r.get_local(seq).unwrap().as_deref(), Some(block(seq).as_slice()), "block {seq}");
    }
    // The stored nodes and signatures still prove every block to a third party.
    assert_all_verify(&r, N).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_on_disk_get_distinct_seqs_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writer");
    let w = FeedBuilder::new(Storage::disk(&path)).key_pair(kp(2)).open().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let blocks: Vec<Vec<u8>> =
                (0..1 + i % 3).map(|k| format!("task {i} part {k}").into_bytes()).collect();
            let first = w.append_batch(&blocks).await.unwrap();
            (first, blocks)
        }));
    }
    let mut appended = Vec::new();
    for t in tasks {
        appended.push(t.await.unwrap());
    }
    let total: u64 = appended.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(w.len(), total);
    drop(w);

    let w = FeedBuilder::new(Storage::disk(&path)).key_pair(kp(2)).open().await.unwrap();
    assert_eq!(w.len(), total);
    let mut seen = vec![false; total as usize];
    for (first, blocks) in &appended {
        for (k, b) in blocks.iter().enumerate() {
            let seq = first + k as u64;
            assert!(!std::mem::replace(&mut seen[seq as usize], true), "seq {seq} handed out twice");
            assert_eq!(&w.get(seq).await.unwrap(), b);
        }
    }
    assert_all_verify(&w, total).await;
    // Appending continues on top of the reopened roots.
    assert_eq!(w.append(b"after").await.unwrap(), total);
}

#[tokio::test]
async fn put_batch_commits_one_record_and_a_torn_one_is_cut_whole() {
    const N: u64 = 50;
    let w = writer_with(N, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica");
    let r = FeedBuilder::new(Storage::disk(&path)).public_key(w.public_key()).open().await.unwrap();
    // Block 0 first, on its own record.
    r.put(0, &block(0), &w.proof(0, r.digest(0)).await.unwrap()).await.unwrap();
    let log = path.join("log");
    let before = std::fs::read(&log).unwrap();

    let mut batch: Vec<(u64, Vec<u8>, Proof)> = Vec::new();
    for seq in 1..N {
        batch.push((seq, block(seq), w.proof(seq, r.digest(seq)).await.unwrap()));
    }
    // One bad block: nothing of the batch is stored.
    let mut bad = batch.clone();
    bad[7].1.push(b'!');
    let err = r.put_blocks(&bad, PutOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::BadSignature { seq: 8 }
                | VerifyError::BadProof { seq: 8, .. }
                | VerifyError::MissingSignature { seq: 8 }
        ),
        "{err}"
    );
    assert!((1..N).all(|s| !r.has(s)));
    assert_eq!(std::fs::read(&log).unwrap(), before);

    r.put_blocks(&batch, PutOptions::default()).await.unwrap().durable().await.unwrap();
    assert!((0..N).all(|s| r.has(s)));
    let full = std::fs::read(&log).unwrap();
    let group = &full[before.len()..];
    assert_eq!(&group[..4], b"HCR2", "the batch is one group record");
    assert_eq!(group.windows(4).filter(|w| w == b"HCR1" || w == b"HCR2").count(), 1);
    drop(r);

    // Any cut inside the group loses the whole group, never what was before it.
    for cut in [before.len() + 1, before.len() + 60, before.len() + group.len() / 2, full.len() - 1] {
        std::fs::write(&log, &full[..cut]).unwrap();
        let r = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap();
        assert!(r.has(0), "cut at {cut}");
        assert!((1..N).all(|s| !r.has(s)), "cut at {cut}");
        drop(r);
        assert_eq!(std::fs::metadata(&log).unwrap().len() as usize, before.len());
    }
    std::fs::write(&log, &full).unwrap();
    let r = FeedBuilder::new(Storage::disk(&path)).open().await.unwrap();
    assert_eq!(r.len(), N);
    assert_all_verify(&r, N).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_put_in_a_serial_loop_shares_syncs_and_survives_reopen() {
    const N: u64 = 200;
    let w = writer_with(N, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica");
    let r = FeedBuilder::new(Storage::disk(&path)).public_key(w.public_key()).open().await.unwrap();
    let mut events = r.subscribe();
    // A replication loop: verify and queue each block, never waiting for its sync.
    let mut pending = Vec::new();
    for seq in (0..N).rev() {
        let proof = w.proof(seq, r.digest(seq)).await.unwrap();
        let block = w.get(seq).await.unwrap();
        pending.push(r.put_blocks(&[(seq, &block, &proof)], PutOptions::default()).await.unwrap());
    }
    // A bad block is refused at once, before anything is queued for it.
    let proof = w.proof(0, 0).await.unwrap();
    assert!(r.put_blocks(&[(0, b"forged", &proof)], PutOptions::default()).await.is_err());
    for p in pending {
        p.durable().await.unwrap();
    }
    assert_eq!(r.len(), N);
    let mut downloads = 0;
    while let Ok(event) = events.try_recv() {
        downloads += u64::from(matches!(event, hypercore::FeedEvent::Download { .. }));
    }
    assert_eq!(downloads, N);
    drop(r);
    let r = FeedBuilder::new(Storage::disk(&path)).public_key(w.public_key()).open().await.unwrap();
    for seq in 0..N {
        assert_eq!(r.get_local(seq).unwrap().as_deref(), Some(block(seq).as_slice()), "block {seq}");
    }
    assert_all_verify(&r, N).await;
}
