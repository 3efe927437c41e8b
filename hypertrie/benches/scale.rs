//! Scaling benchmark, side by side with JS hypertrie@5 on the same workload
//! (`tests/js/bench/bench-hypertrie.js` and its `lib.js` key generator, ported below): puts (one
//! append each, and batches of 1000), random gets, and the blocks a get touches, per trie size.
//!
//! `cargo bench -p hypertrie --bench scale [-- --sizes 10000,100000] [-- --big] [-- --no-js]
//! [-- --gets N]`. `--big` adds 10^6 keys (Rust only: JS does not finish it in 600 s). Memory
//! storage on both sides. Figures are printed, never asserted.

#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::{BatchOp, Trie, TrieOptions};

const BATCH: usize = 1000;

/// JS `rng(seed)`: mulberry32, as in `lib.js`.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x6D2B_79F5);
        let mut t = self.0;
        t = (t ^ (t >> 15)).wrapping_mul(t | 1);
        t ^= t.wrapping_add((t ^ (t >> 7)).wrapping_mul(t | 61));
        f64::from(t ^ (t >> 14)) / 4_294_967_296.0
    }
}

fn base36(mut n: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[n % 36]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// JS `npmKey(i)`: 8 versions per package, every third package scoped.
fn npm_key(i: usize) -> String {
    let pkg = i / 8;
    let v = i % 8;
    let name = if pkg.is_multiple_of(3) {
        format!("@scope{}/pkg-{}-lib", pkg % 997, base36(pkg))
    } else {
        format!("pkg-{}-util", base36(pkg))
    };
    format!("{name}/{}.{}.{}", 1 + (v >> 2), v & 3, (pkg * 7 + v) % 13)
}

/// JS `npmValue(i, key)`: a ~300-byte JSON-ish value.
fn npm_value(i: usize, key: &str) -> Vec<u8> {
    let slash = key.rfind('/').unwrap_or(0);
    let (name, version) = (&key[..slash], &key[slash + 1..]);
    let h = format!("{:08x}", (i as u64).wrapping_mul(2_654_435_761) % (1 << 32));
    let sha = h.repeat(5);
    let mut s = format!(
        r#"{{"name":"{name}","version":"{version}","description":"A small utility package used for benchmarking hypertrie","dist":{{"shasum":"{sha}","tarball":"https://registry.npmjs.org/{name}/-/{version}.tgz"}},"deps":{{"left-pad":"^1.3.0"}}}}"#
    );
    if s.len() < 300 {
        let pad = 300usize.saturating_sub(s.len() + 7);
        s.pop();
        s.push_str(&format!(r#","x":"{}"}}"#, "z".repeat(pad)));
    }
    s.into_bytes()
}

/// The shuffled insertion order of `bench-hypertrie.js` (seed 7).
fn order(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut r = Rng(7);
    for i in (1..n).rev() {
        let j = (r.next() * (i + 1) as f64) as usize;
        order.swap(i, j);
    }
    order
}

async fn new_trie(cache_bytes: usize) -> Trie {
    let feed = FeedBuilder::new(Storage::memory())
        .key_pair(KeyPair::from_seed(&[1; 32]))
        .open()
        .await
        .expect("feed");
    Trie::open_with(feed, TrieOptions { cache_bytes, ..Default::default() }).await.expect("trie")
}

#[derive(Debug, Default)]
struct Figures {
    put_single: Option<f64>,
    append_only: Option<f64>,
    put_batch: f64,
    get_warm: f64,
    get_cold: f64,
    blocks_per_get: f64,
}

async fn rust_side(n: usize, gets: usize, single: bool) -> Figures {
    let keys: Vec<String> = (0..n).map(npm_key).collect();
    let values: Vec<Vec<u8>> = keys.iter().enumerate().map(|(i, k)| npm_value(i, k)).collect();
    let order = order(n);
    let mut f = Figures::default();

    if single {
        let trie = new_trie(hypertrie::DEFAULT_CACHE_BYTES).await;
        let t = Instant::now();
        for &k in &order {
            trie.put(&keys[k], &values[k]).await.expect("put");
        }
        f.put_single = Some(n as f64 / t.elapsed().as_secs_f64());

        // The floor: appending the very same blocks to a fresh feed, one call (one signature) each.
        let mut blocks = Vec::with_capacity(n);
        for seq in 1..trie.version() {
            blocks.push(trie.feed().get(seq).await.expect("block"));
        }
        let feed = FeedBuilder::new(Storage::memory())
            .key_pair(KeyPair::from_seed(&[2; 32]))
            .open()
            .await
            .expect("feed");
        let t = Instant::now();
        for b in &blocks {
            feed.append(b).await.expect("append");
        }
        f.append_only = Some(n as f64 / t.elapsed().as_secs_f64());
    }

    let trie = new_trie(hypertrie::DEFAULT_CACHE_BYTES).await;
    let t = Instant::now();
    for chunk in order.chunks(BATCH) {
        let ops: Vec<BatchOp> =
            chunk.iter().map(|&k| BatchOp::put(keys[k].clone(), values[k].clone())).collect();
        trie.batch(&ops).await.expect("batch");
    }
    f.put_batch = n as f64 / t.elapsed().as_secs_f64();

    let picks: Vec<usize> = {
        let mut r = Rng(99);
        (0..gets).map(|_| (r.next() * n as f64) as usize).collect()
    };
    let t = Instant::now();
    for &k in &picks {
        let node = trie.get(&keys[k]).await.expect("get").expect("present");
        assert_eq!(node.key(), keys[k]);
    }
    f.get_warm = gets as f64 / t.elapsed().as_secs_f64();

    // The same feed without the decoded-node cache: every get reads and decodes its blocks.
    let cold = Trie::open_with(trie.feed().clone(), TrieOptions { cache_bytes: 0, ..Default::default() })
        .await
        .expect("trie");
    let t = Instant::now();
    for &k in &picks {
        cold.get(&keys[k]).await.expect("get").expect("present");
    }
    f.get_cold = gets as f64 / t.elapsed().as_secs_f64();

    let sample = &picks[..picks.len().min(5000)];
    let mut touched = 0;
    for &k in sample {
        touched += trie.touched(&keys[k]).await.expect("touched").len();
    }
    f.blocks_per_get = touched as f64 / sample.len() as f64;
    f
}

/// Run `bench-hypertrie.js mem KIND N GETS`; `None` (with a note) if node or the packages are missing.
fn js_side(kind: &str, n: usize, gets: usize, scratch: &Path) -> Option<serde_json::Value> {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js");
    if !js.join("node_modules/hypertrie").exists() {
        eprintln!("installing the pinned JS packages: npm ci --prefix {}", js.display());
        let ok = Command::new("npm").args(["ci", "--prefix"]).arg(&js).status().map(|s| s.success());
        if ok.ok() != Some(true) {
            eprintln!("npm ci failed: JS side skipped");
            return None;
        }
    }
    let out = Command::new("node")
        .arg(js.join("bench/bench-hypertrie.js"))
        .args(["mem", kind, &n.to_string(), &gets.to_string()])
        .env("NODE_PATH", js.join("node_modules"))
        .current_dir(scratch)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            String::from_utf8_lossy(&o.stdout).lines().rev().find_map(|l| serde_json::from_str(l).ok())
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

fn row(what: &str, rust: f64, js: Option<f64>, target: Option<f64>) {
    match js {
        Some(js) => {
            let ratio = rust / js;
            let verdict =
                target.map(|t| if ratio >= t { " (target met)" } else { " (below target)" }).unwrap_or("");
            println!("  {what:<26} rust {rust:>11.0}/s   js {js:>9.0}/s   {ratio:>6.1}x{verdict}");
        }
        None => println!("  {what:<26} rust {rust:>11.0}/s   js         -"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let mut sizes: Vec<usize> = value("--sizes")
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    if args.iter().any(|a| a == "--big") {
        sizes.push(1_000_000);
    }
    let gets: usize = value("--gets").and_then(|g| g.parse().ok()).unwrap_or(20_000);
    let no_js = args.iter().any(|a| a == "--no-js");
    let scratch = std::env::temp_dir();

    // The generator must match lib.js exactly for both sides to do the same work.
    assert_eq!(npm_key(0), "@scope0/pkg-0-lib/1.0.0");
    assert_eq!(npm_key(13), "pkg-1-util/2.1.12");
    assert_eq!(
        String::from_utf8_lossy(&npm_value(777_777, &npm_key(777_777))),
        r#"{"name":"pkg-230m-util","version":"1.1.5","description":"A small utility package used for benchmarking hypertrie","dist":{"shasum":"9ec0c8e19ec0c8e19ec0c8e19ec0c8e19ec0c8e1","tarball":"https://registry.npmjs.org/pkg-230m-util/-/1.1.5.tgz"},"deps":{"left-pad":"^1.3.0"},"x":"zzzzzzzzzzzzzzzzzzzzzzzz"}"#
    );
    let mut r = Rng(7);
    assert_eq!((r.next(), r.next()), (0.011704753153026104, 0.06195825757458806));

    println!("hypertrie scale benchmark, memory storage, workload of tests/js/bench/lib.js, {gets} gets");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for &n in &sizes {
        // JS needs well over 600 s for 10^6 keys (run-all.sh), and single puts at that size are long.
        let with_js = !no_js && n <= 100_000;
        let single = n <= 100_000;
        let rust = rt.block_on(rust_side(n, gets, single));
        let js_single = if with_js { js_side("single", n, gets, &scratch) } else { None };
        let js_batch = if with_js { js_side("batch", n, gets, &scratch) } else { None };
        let js = |v: &Option<serde_json::Value>, field: &str| v.as_ref().and_then(|v| v[field].as_f64());
        println!("n = {n}");
        if let Some(single) = rust.put_single {
            row("puts, one append each", single, js(&js_single, "put_ops_s"), Some(10.0));
        }
        if let Some(append) = rust.append_only {
            row("  (hypercore append alone)", append, js(&js_single, "put_ops_s"), None);
        }
        row("puts, batches of 1000", rust.put_batch, js(&js_batch, "put_ops_s"), Some(10.0));
        row("gets (warm caches)", rust.get_warm, js(&js_batch, "get_warm_ops_s"), Some(20.0));
        row("gets (no node cache)", rust.get_cold, js(&js_batch, "get_warm_ops_s"), Some(20.0));
        let js_nodes = js(&js_batch, "get_warm_nodes_per_get").map_or("-".to_owned(), |v| format!("{v:.2}"));
        println!(
            "  blocks touched per get     rust {:.2}   js nodes visited {js_nodes}   log4(n) = {:.2}",
            rust.blocks_per_get,
            (n as f64).log(4.0)
        );
    }
}
