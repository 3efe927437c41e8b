//! Feed benchmark, side by side with JS hypercore@9 on the same workload
//! (`tests/js/bench/bench-hypercore.js`): single appends, batches of 100, random gets
//! (sequential and 16 in flight), proof generation, and proof + get + verified put into a
//! sparse replica. Prints ops/s for Rust and JS and the ratio. Rust-only rows follow: the same
//! puts and single appends with 16 in flight (group commit shares their syncs on disk),
//! `put_blocks` of 100 (waiting), and a serial loop of one-block `put_blocks` (verify, queue, wait
//! at the end).
//!
//! `cargo bench -p hypercore --bench feed [-- disk] [-- quick]`: `disk` uses on-disk storage on
//! both sides (Rust syncs every append, JS does not); `quick` runs a tenth of the work;
//! `rust-only` skips the JS side (for profiling).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark reports by printing

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use hypercore::{Feed, FeedBuilder, KeyPair, PutOptions, Storage};

const BATCH: usize = 100;
const BLOCK: usize = 100;

/// mulberry32, ported from `tests/js/bench/lib.js`, so both sides pick the same indexes.
fn rng(seed: u32) -> impl FnMut() -> f64 {
    let mut a = seed;
    move || {
        a = a.wrapping_add(0x6D2B_79F5);
        let mut t = a;
        t = (t ^ (t >> 15)).wrapping_mul(t | 1);
        t ^= t.wrapping_add((t ^ (t >> 7)).wrapping_mul(t | 61));
        f64::from(t ^ (t >> 14)) / 4_294_967_296.0
    }
}

struct Sizes {
    single: u64,
    batch_total: u64,
    read: u64,
    proof: u64,
}

struct Scratch {
    root: PathBuf,
    n: u32,
}

impl Scratch {
    fn storage(&mut self, disk: bool) -> Storage {
        if !disk {
            return Storage::memory();
        }
        self.n += 1;
        Storage::disk(self.root.join(format!("feed-{}", self.n)))
    }
}

async fn open_writer(storage: Storage) -> Feed {
    FeedBuilder::new(storage).key_pair(KeyPair::generate()).open().await.expect("open writer")
}

async fn rust_side(sizes: &Sizes, disk: bool, scratch: &mut Scratch) -> Vec<(&'static str, f64)> {
    let block = vec![0x61u8; BLOCK];
    let mut out = Vec::new();

    let feed = open_writer(scratch.storage(disk)).await;
    let t = Instant::now();
    for _ in 0..sizes.single {
        feed.append(&block).await.expect("append");
    }
    out.push(("single_append_ops_s", sizes.single as f64 / t.elapsed().as_secs_f64()));

    let batch_storage = scratch.storage(disk);
    let feed = open_writer(batch_storage.clone()).await;
    let batch: Vec<&[u8]> = vec![block.as_slice(); BATCH];
    let t = Instant::now();
    for _ in 0..sizes.batch_total / BATCH as u64 {
        feed.append_batch(&batch).await.expect("append batch");
    }
    out.push(("batch_append_blocks_s", sizes.batch_total as f64 / t.elapsed().as_secs_f64()));
    assert_eq!(feed.len(), sizes.batch_total);
    let feed = if disk {
        // Reopen so in-process state is rebuilt from the log, as the JS bench does.
        let key = feed.public_key();
        drop(feed);
        let t = Instant::now();
        let feed = FeedBuilder::new(batch_storage).public_key(key).open().await.expect("reopen");
        eprintln!("reopen of {} blocks took {:.1} ms", feed.len(), t.elapsed().as_secs_f64() * 1e3);
        feed
    } else {
        feed
    };

    let mut r = rng(42);
    let len = feed.len() as f64;
    let t = Instant::now();
    for _ in 0..sizes.read {
        let idx = (r() * len) as u64;
        let d = feed.get(idx).await.expect("get");
        assert_eq!(d.len(), BLOCK);
    }
    out.push(("get_random_ops_s", sizes.read as f64 / t.elapsed().as_secs_f64()));

    // 16 gets in flight on one thread, as the JS does with callbacks.
    let r = std::rc::Rc::new(std::cell::RefCell::new(rng(43)));
    let t = Instant::now();
    let per = sizes.read / 16;
    let workers = (0..16).map(|_| {
        let feed = feed.clone();
        let r = r.clone();
        async move {
            for _ in 0..per {
                let idx = ((r.borrow_mut())() * len) as u64;
                let d = feed.get(idx).await.expect("get");
                assert_eq!(d.len(), BLOCK);
            }
        }
    });
    let local = tokio::task::LocalSet::new();
    for w in workers {
        local.spawn_local(w);
    }
    local.await;
    out.push(("get_random_par16_ops_s", (per * 16) as f64 / t.elapsed().as_secs_f64()));

    let mut r = rng(44);
    let idxs: Vec<u64> = (0..sizes.proof).map(|_| (r() * len) as u64).collect();
    let t = Instant::now();
    let mut nodes = 0;
    for &i in &idxs {
        nodes += feed.proof(i, 0).await.expect("proof").nodes.len();
    }
    out.push(("proof_gen_ops_s", sizes.proof as f64 / t.elapsed().as_secs_f64()));
    out.push(("proof_avg_nodes", nodes as f64 / sizes.proof as f64));

    let clone =
        FeedBuilder::new(scratch.storage(disk)).public_key(feed.public_key()).open().await.expect("clone");
    let t = Instant::now();
    for &i in &idxs {
        let proof = feed.proof(i, clone.digest(i)).await.expect("proof");
        let data = feed.get(i).await.expect("get");
        clone.put(i, &data, &proof).await.expect("verified put");
    }
    out.push(("proof_verify_put_ops_s", sizes.proof as f64 / t.elapsed().as_secs_f64()));

    // Rust only from here (the JS bench has no counterpart): the same proof + get + put with
    // 16 in flight (on disk they share syncs through group commit), and put_blocks of 100.
    let clone =
        FeedBuilder::new(scratch.storage(disk)).public_key(feed.public_key()).open().await.expect("clone");
    let t = Instant::now();
    let local = tokio::task::LocalSet::new();
    for chunk in idxs.chunks(idxs.len().div_ceil(16)) {
        let (feed, clone, chunk) = (feed.clone(), clone.clone(), chunk.to_vec());
        local.spawn_local(async move {
            for i in chunk {
                let proof = feed.proof(i, clone.digest(i)).await.expect("proof");
                let data = feed.get(i).await.expect("get");
                clone.put(i, &data, &proof).await.expect("verified put");
            }
        });
    }
    local.await;
    out.push(("proof_verify_put_par16_ops_s", sizes.proof as f64 / t.elapsed().as_secs_f64()));

    let clone =
        FeedBuilder::new(scratch.storage(disk)).public_key(feed.public_key()).open().await.expect("clone");
    let t = Instant::now();
    for chunk in idxs.chunks(BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        for &i in chunk {
            batch.push((
                i,
                feed.get(i).await.expect("get"),
                feed.proof(i, clone.digest(i)).await.expect("proof"),
            ));
        }
        let pending = clone.put_blocks(&batch, PutOptions::default()).await.expect("verified put batch");
        pending.durable().await.expect("durable");
    }
    out.push(("proof_verify_put_batch100_ops_s", sizes.proof as f64 / t.elapsed().as_secs_f64()));

    // A serial replication loop that queues each verified block (put_blocks) and waits for
    // durability only at the end.
    let clone =
        FeedBuilder::new(scratch.storage(disk)).public_key(feed.public_key()).open().await.expect("clone");
    let t = Instant::now();
    let mut pending = Vec::with_capacity(idxs.len());
    for &i in &idxs {
        let proof = feed.proof(i, clone.digest(i)).await.expect("proof");
        let data = feed.get(i).await.expect("get");
        pending.push(
            clone.put_blocks(&[(i, &data, &proof)], PutOptions::default()).await.expect("verified put"),
        );
    }
    for p in pending {
        p.durable().await.expect("durable");
    }
    out.push(("proof_verify_start_put_ops_s", sizes.proof as f64 / t.elapsed().as_secs_f64()));

    let writer = open_writer(scratch.storage(disk)).await;
    let t = Instant::now();
    let local = tokio::task::LocalSet::new();
    for _ in 0..16 {
        let (writer, block, n) = (writer.clone(), block.clone(), sizes.single / 16);
        local.spawn_local(async move {
            for _ in 0..n {
                writer.append(&block).await.expect("append");
            }
        });
    }
    local.await;
    out.push(("single_append_par16_ops_s", (sizes.single / 16 * 16) as f64 / t.elapsed().as_secs_f64()));
    out
}

/// The cost of the cryptography every append must do, to read the append figures against.
fn crypto_floor() {
    let block = [0x61u8; BLOCK];
    let n = 200_000;
    let t = Instant::now();
    let mut acc = 0u8;
    for i in 0..n {
        let mut b = block;
        b[0] = i as u8;
        acc ^= hypercore::leaf_hash(&b)[0];
    }
    let leaf_ns = t.elapsed().as_secs_f64() * 1e9 / n as f64;
    let node = hypercore::Node { index: 0, hash: [acc; 32], size: 100 };
    let sib = hypercore::Node { index: 2, ..node };
    let t = Instant::now();
    for _ in 0..n {
        acc ^= hypercore::parent_hash(&node, &sib)[0];
    }
    let parent_ns = t.elapsed().as_secs_f64() * 1e9 / n as f64;
    let signer = KeyPair::from_seed(&[acc; 32]).secret.signer();
    let t = Instant::now();
    for i in 0..2000u32 {
        let mut msg = [0u8; 40];
        msg[..4].copy_from_slice(&i.to_be_bytes());
        acc ^= signer.sign(&msg).as_bytes()[0];
    }
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / 2000.0;
    eprintln!(
        "crypto floor: leaf hash {leaf_ns:.0} ns, parent hash {parent_ns:.0} ns, Ed25519 sign {sign_us:.1} us ({acc})"
    );
}

/// Run the JS bench; `None` (with a note) if node or the packages are unavailable.
fn js_side(sizes: &Sizes, disk: bool, scratch: &Path) -> Option<serde_json::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let js = root.join("tests/js");
    if !js.join("node_modules/hypercore").exists() {
        eprintln!("installing the pinned JS packages: npm ci --prefix {}", js.display());
        let ok = Command::new("npm").args(["ci", "--prefix"]).arg(&js).status().map(|s| s.success());
        if ok.ok() != Some(true) {
            eprintln!("npm ci failed: JS side skipped");
            return None;
        }
    }
    let out = Command::new("node")
        .arg(js.join("bench/bench-hypercore.js"))
        .arg(if disk { "disk" } else { "mem" })
        .args([sizes.single, sizes.batch_total, sizes.read, sizes.proof].map(|n| n.to_string()))
        .env("NODE_PATH", js.join("node_modules"))
        .current_dir(scratch)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            text.lines().rev().find_map(|l| serde_json::from_str(l).ok())
        }
        Ok(o) => {
            eprintln!("JS bench failed: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("node not runnable ({e}): JS side skipped");
            None
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let disk = args.iter().any(|a| a == "disk");
    let quick = args.iter().any(|a| a == "quick");
    let div = if quick { 10 } else { 1 };
    let sizes =
        Sizes { single: 20_000 / div, batch_total: 200_000 / div, read: 50_000 / div, proof: 5_000 / div };
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut scratch = Scratch { root: tmp.path().to_path_buf(), n: 0 };

    crypto_floor();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let rust = rt.block_on(async {
        let local = tokio::task::LocalSet::new();
        local.run_until(rust_side(&sizes, disk, &mut scratch)).await
    });
    let js = if args.iter().any(|a| a == "rust-only") { None } else { js_side(&sizes, disk, tmp.path()) };

    println!(
        "hypercore feed benchmark ({} storage), same workload as bench-hypercore.js",
        if disk { "disk" } else { "memory" }
    );
    println!("{:<26} {:>14} {:>14} {:>9}", "metric", "rust", "js", "ratio");
    for (name, value) in rust {
        let js_value = js.as_ref().and_then(|j| j[name].as_f64());
        match js_value {
            Some(j) if name != "proof_avg_nodes" => {
                println!("{name:<26} {value:>14.0} {j:>14.0} {:>8.1}x", value / j)
            }
            Some(j) => println!("{name:<26} {value:>14.2} {j:>14.2}"),
            None => println!("{name:<26} {value:>14.0} {:>14}", "-"),
        }
    }
}
