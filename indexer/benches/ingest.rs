//! Index benchmarks, printed in one run (no harness):
//! 1. ingest rate from local files (the corpus; parse + index write, no network), versions/s;
//! 2. index bytes per version against the abbreviated JSON size;
//! 3. a synthetic index of `IMS_BENCH_VERSIONS` versions (default 1,000,000) with realistic
//!    names and dependency maps: build time, size on disk, lookups/s, blocks per lookup.
//!
//! Targets: at least 20,000 versions/s ingest on one core; at most 40 % of the
//! abbreviated JSON size.

#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::Trie;
use indexer::model::{Manifest, Packument};
use indexer::{Document, Index, Update};

async fn index_on(storage: Storage) -> Index {
    let feed = FeedBuilder::new(storage).key_pair(KeyPair::generate()).open().await.unwrap();
    let mut index = Index::open(Trie::open(feed).await.unwrap()).await.unwrap();
    index.set_upstream(&"https://registry.npmjs.org/".parse().unwrap()).await.unwrap();
    index
}

async fn corpus_bench() {
    let corpus = fixtures::Corpus::load().unwrap();
    let docs: Vec<&[u8]> = corpus.packuments().map(|(_, j)| j).collect();
    let json_bytes: usize = docs.iter().map(|d| d.len()).sum();

    let t = Instant::now();
    let parsed: Vec<Packument> = docs.iter().map(|d| Packument::from_slice(d).unwrap()).collect();
    let parse = t.elapsed();
    let versions: usize = parsed.iter().map(|p| p.versions.len()).sum();
    let corgi: usize = parsed.iter().map(|p| serde_json::to_vec(&p.abbreviated()).unwrap().len()).sum();
    let packuments = parsed.len();

    let index = index_on(Storage::memory()).await;
    let t = Instant::now();
    let mut written = 0;
    let mut parsed = parsed.into_iter().peekable();
    while parsed.peek().is_some() {
        let documents =
            parsed.by_ref().take(64).map(|p| Document { packument: p.into(), etag: None }).collect();
        written += index.write(Update { documents, ..Update::default() }).await.unwrap().versions;
    }
    let write = t.elapsed();
    let bytes = index.trie().feed().byte_len();
    let total = parse + write;
    println!(
        "corpus: {packuments} packuments, {versions} versions, {:.1} MB full JSON",
        json_bytes as f64 / 1e6
    );
    println!(
        "  ingest (parse + index, one task): {:.0} versions/s  [parse {:.0} ms, index {:.0} ms]  target >= 20000  ({:.2}x)",
        versions as f64 / total.as_secs_f64(),
        parse.as_secs_f64() * 1e3,
        write.as_secs_f64() * 1e3,
        versions as f64 / total.as_secs_f64() / 20_000.0
    );
    println!(
        "  size: index feed {bytes} B = {:.0} B/version; abbreviated JSON {corgi} B = {:.0} B/version; ratio {:.1}%  target <= 40%",
        bytes as f64 / written as f64,
        corgi as f64 / versions as f64,
        100.0 * bytes as f64 / corgi as f64
    );
}

/// A small deterministic PRNG (xorshift64*), so the synthetic index is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 24] = [
    "react", "core", "utils", "parser", "plugin", "loader", "cli", "config", "types", "node", "web", "async",
    "stream", "json", "http", "fs", "path", "color", "test", "babel", "eslint", "vue", "next", "data",
];

fn name_of(i: u64) -> String {
    let a = WORDS[(i % 24) as usize];
    let b = WORDS[((i / 24) % 24) as usize];
    if i.is_multiple_of(4) { format!("@{a}/{b}-{i}") } else { format!("{a}-{b}-{i}") }
}

fn synthetic(rng: &mut Rng, i: u64, packages: u64, per: u64) -> Packument {
    let name = name_of(i);
    let mut p = Packument { name: name.clone(), ..Packument::default() };
    let mut deps: Vec<(String, String)> = (0..rng.below(8))
        .map(|_| (name_of(rng.below(packages)), format!("^{}.{}.0", rng.below(5), rng.below(20))))
        .collect();
    for v in 0..per {
        // Dependency maps change now and then, as they do between releases.
        if rng.below(4) == 0 {
            deps.push((name_of(rng.below(packages)), format!("~{}.0.{}", rng.below(3), rng.below(9))));
        }
        let version = format!("{}.{}.{}", v / 8, v % 8, 0);
        let mut m = Manifest { name: name.clone(), version: version.clone(), ..Manifest::default() };
        m.dependencies = deps.iter().cloned().collect();
        let digest: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
        m.dist.integrity = Some(format!("sha512-{}", b64(&digest)));
        m.dist.shasum = Some(digest[..20].iter().map(|b| format!("{b:02x}")).collect());
        m.dist.tarball = Some(format!(
            "https://registry.npmjs.org/{name}/-/{}-{version}.tgz",
            name.rsplit('/').next().unwrap()
        ));
        m.dist.file_count = Some(rng.below(200));
        m.dist.unpacked_size = Some(rng.below(1 << 20));
        m.license = Some("MIT".into());
        p.time.insert(version.clone(), iso(i * per + v));
        p.dist_tags.insert("latest".into(), version.clone());
        p.versions.insert(version, m);
    }
    p
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            s.push(if k <= c.len() { char::from(A[((n >> (18 - 6 * k)) & 63) as usize]) } else { '=' });
        }
    }
    s
}

/// A valid, canonical npm timestamp for the n-th synthetic publish: one a second from 2017 on,
/// over 28-day months (always a real date, with no calendar arithmetic to get wrong).
fn iso(n: u64) -> String {
    let (s, m, h) = (n % 60, n / 60 % 60, n / 3600 % 24);
    let (day, month, year) = (n / 86_400 % 28 + 1, n / 2_419_200 % 12 + 1, 2017 + n / 29_030_400);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.000Z")
}

async fn synthetic_bench() {
    #[allow(clippy::disallowed_methods)] // a bench knob, read once
    let total: u64 =
        std::env::var("IMS_BENCH_VERSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let per = 10;
    let packages = (total / per).max(1);
    let dir = tempfile::tempdir().unwrap();
    let index = index_on(Storage::disk(dir.path().join("index"))).await;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let t = Instant::now();
    let mut corgi = 0usize;
    let mut batch = Vec::new();
    for i in 0..packages {
        let p = synthetic(&mut rng, i, packages, per);
        if i % 100 == 0 {
            corgi += serde_json::to_vec(&p.abbreviated()).unwrap().len() * 100;
        }
        batch.push(Document { packument: p.into(), etag: None });
        if batch.len() == 256 {
            index.write(Update { documents: std::mem::take(&mut batch), ..Update::default() }).await.unwrap();
        }
    }
    index.write(Update { documents: batch, ..Update::default() }).await.unwrap();
    let build = t.elapsed();
    let disk: u64 = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!("synthetic: {packages} packages x {per} = {} versions", packages * per);
    println!(
        "  build {:.1} s ({:.0} versions/s incl. generation); on disk {:.1} MB = {:.0} B/version; abbreviated JSON ~{:.1} MB; ratio {:.1}%",
        build.as_secs_f64(),
        (packages * per) as f64 / build.as_secs_f64(),
        disk as f64 / 1e6,
        disk as f64 / (packages * per) as f64,
        corgi as f64 / 1e6,
        100.0 * disk as f64 / corgi as f64
    );
    let lookups = 20_000;
    let t = Instant::now();
    for _ in 0..lookups {
        let name = name_of(rng.below(packages));
        let s = index.versions(&name).await.unwrap().unwrap();
        let latest = &s.dist_tags["latest"];
        index.version(&name, latest).await.unwrap().unwrap();
    }
    let el = t.elapsed();
    let mut blocks = 0;
    let sample = 500;
    for _ in 0..sample {
        let name = name_of(rng.below(packages));
        blocks += index.touched_blocks(&[(&name, Some("1.1.0"))]).await.unwrap().len();
    }
    println!(
        "  lookups (package record + version page): {:.0}/s; blocks per resolution of one package: {:.1}",
        lookups as f64 / el.as_secs_f64(),
        blocks as f64 / sample as f64
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        corpus_bench().await;
        synthetic_bench().await;
    });
}
