//! Replication benchmark (wire spec §7–9; the ims/prefetch extension of §7.5), in one run:
//!
//! 1. A 100 MiB feed (64 KiB blocks) replicated over loopback TCP, ims → ims (Noise handshake,
//!    authenticated transport: AES-256-GCM where both CPUs have AES, else ChaCha20-Poly1305;
//!    in-memory feeds) and JS → JS (hypercore@9 with
//!    `tests/js/bench/bench-replicate.js`, the same workload): MB/s for both and the ratio.
//! 2. 300 package lookups on a cold sparse replica of a 20 000-key trie, with and without the
//!    `ims/prefetch` extension: blocks fetched, round trips, wall time.
//! 3. The corpus roots resolved (the whole tree, as `ims install --key --peer` does) from a
//!    cold sparse replica of a peer's index of the corpus: with the resolve planner (one
//!    prefetch), with a key-only planner and with none (block by block): requests, wall time.
//!
//! `cargo bench --bench replicate [-- MIB]`; `IMS_BENCH_ONLY=throughput` runs part 1 only and
//! `IMS_BENCH_RUNS=n` makes n transfers on each side (default 1). Each side builds its source
//! feed once and replicates it n times into new replicas over new connections, in one process
//! (ims) or one pair of processes (JS). The first transfer is made by fresh processes (ims pays
//! the page faults of memory new to the process, JS also its JIT warm-up); later ones are warm.
//! The ratio is given both ways: first run against first run, and the medians of the later
//! runs against each other. JS numbers need node and `tests/js/node_modules` (installed with
//! `npm ci --prefix tests/js` if missing).
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hypercore::protocol::{ChannelMessage, Data, Message, SessionKeys};
use hypercore::replicate::{BlockPlanner, PeerRouter, ReplicateOptions, ReplicateStats, prefetch, replicate};
use hypercore::{Feed, FeedBuilder, KeyPair, ProofOptions, Storage};
use hypertrie::Trie;
use hypertrie::extension::TriePlanner;
use swarm::{HandshakeConfig, Identity, Role};
use tokio::net::TcpListener;

const BLOCK: usize = 64 * 1024;

/// CPU seconds (user + system) used so far by this process and by its waited-for children,
/// from `/proc/self/stat` (Linux; clock ticks of 1/100 s). `None` elsewhere. On a loaded
/// machine the CPU a transfer costs varies far less than its wall time.
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14 ... cstime 17.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<f64> = rest.split_whitespace().skip(11).take(4).filter_map(|x| x.parse().ok()).collect();
    (f.len() == 4).then(|| ((f[0] + f[1]) / 100.0, (f[2] + f[3]) / 100.0))
}

/// Wall-clock MB/s of one transfer, and MB per CPU second (the CPU both sides spent on it).
#[derive(Debug, Clone, Copy)]
struct Rate {
    mb_s: f64,
    mb_per_cpu_s: Option<f64>,
}

impl Rate {
    fn new(mb: f64, secs: f64, cpu: Option<f64>) -> Self {
        Rate { mb_s: mb / secs, mb_per_cpu_s: cpu.filter(|c| *c > 0.0).map(|c| mb / c) }
    }

    /// "x.xxx s: y MB/s, CPU z s (w MB per CPU s)".
    fn describe(&self, secs: f64, cpu: Option<f64>) -> String {
        let cpu = match (cpu, self.mb_per_cpu_s) {
            (Some(c), Some(r)) => format!(", CPU {c:.2} s ({r:.0} MB per CPU s)"),
            _ => String::new(),
        };
        format!("{secs:.3} s: {:.1} MB/s{cpu}", self.mb_s)
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Serves `feed` to one connection on a fresh loopback port; returns the port.
async fn serve(feed: Feed, planner: Option<Arc<dyn BlockPlanner>>) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let _ = socket.set_nodelay(true);
        let stream =
            swarm::handshake(socket, Role::Responder, &Identity::generate(), &HandshakeConfig::default())
                .await
                .expect("handshake");
        let keys = SessionKeys::new(stream.split().tx, stream.split().rx);
        let mut opts = ReplicateOptions::upload();
        opts.planner = planner;
        let _ = replicate(stream, keys, vec![feed], opts).await;
    });
    (port, task)
}

/// Dials `port` and replicates `replica` with `opts`; the task ends when the peer hangs up.
async fn connect(
    port: u16,
    replica: Feed,
    opts: ReplicateOptions,
) -> tokio::task::JoinHandle<Option<ReplicateStats>> {
    let stream =
        swarm::dial(format!("127.0.0.1:{port}"), &Identity::generate(), None, &HandshakeConfig::default())
            .await
            .expect("dial");
    let keys = SessionKeys::new(stream.split().tx, stream.split().rx);
    tokio::spawn(async move { replicate(stream, keys, vec![replica], opts).await.ok() })
}

/// The run's label: the first is made in fresh processes, later ones in warm ones.
fn run_label(run: usize) -> String {
    if run == 0 { "run 1 (fresh)".to_string() } else { format!("run {} (warm) ", run + 1) }
}

/// ims → ims: builds the source feed once, then replicates it `runs` times, each into a new
/// in-memory replica over a new connection. CPU is this process's (both sides) during the
/// transfer.
async fn ims_throughput(total: usize, runs: usize) -> Vec<Rate> {
    let writer =
        FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.expect("writer");
    let pool: Vec<Vec<u8>> =
        (0..16u8).map(|k| (0..BLOCK).map(|j| (j as u8).wrapping_mul(31).wrapping_add(k)).collect()).collect();
    let n = total.div_ceil(BLOCK);
    for start in (0..n).step_by(16) {
        let batch: Vec<&[u8]> = (start..n.min(start + 16)).map(|i| pool[i & 15].as_slice()).collect();
        writer.append_batch(&batch).await.expect("append");
    }
    let mut rates = Vec::new();
    for run in 0..runs {
        let (port, server) = serve(writer.clone(), None).await;
        let replica = FeedBuilder::new(Storage::memory())
            .public_key(writer.public_key())
            .open()
            .await
            .expect("replica");
        let mut events = replica.subscribe();
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let opts = ReplicateOptions { download_all: true, max_inflight: 128, ..ReplicateOptions::default() };
        let conn = connect(port, replica.clone(), opts).await;
        // Count downloads instead of rescanning the bitfield per event (quadratic, and it
        // contends the feed's state lock with the replication task).
        let mut downloaded = 0;
        while downloaded < n {
            match events.recv().await {
                Ok(hypercore::FeedEvent::Download { .. }) => downloaded += 1,
                Ok(_) => {}
                Err(_) => downloaded = (0..n as u64).filter(|&s| replica.has(s)).count(),
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu0.zip(cpu_seconds()).map(|(a, b)| b.0 - a.0);
        assert!(replica.len() as usize == n && (0..n as u64).all(|s| replica.has(s)), "replica incomplete");
        conn.abort();
        server.abort();
        let rate = Rate::new(writer.byte_len() as f64 / 1e6, secs, cpu);
        println!("ims -> ims   {} {n} blocks, {}", run_label(run), rate.describe(secs, cpu));
        rates.push(rate);
    }
    rates
}

/// JS → JS, the same workload: `tests/js/bench/bench-replicate.js` making `runs` transfers in
/// one pair of node processes (the replica and the server it forks), so later runs are warm
/// (JIT-compiled) as ims's are. CPU is both processes' during each transfer.
fn js_throughput(total: usize, runs: usize) -> Option<Vec<Rate>> {
    let js = repo().join("tests/js");
    if !js.join("node_modules/hypercore").is_dir() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&js)
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
    }
    let out = Command::new("node")
        .arg(js.join("bench/bench-replicate.js"))
        .args(["mem", &BLOCK.to_string(), &total.to_string(), "nonlive", &runs.to_string()])
        .env("NODE_PATH", js.join("node_modules"))
        .current_dir(&js)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rates = Vec::new();
    for (run, line) in text.lines().filter(|l| l.starts_with('{')).enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let secs = v["ms"].as_f64()? / 1e3;
        let cpu = v["cpu_ms"].as_f64().map(|ms| ms / 1e3);
        let rate = Rate::new(v["bytes"].as_f64()? / 1e6, secs, cpu);
        println!("JS  -> JS    {} {} blocks, {}", run_label(run), v["blocks"], rate.describe(secs, cpu));
        rates.push(rate);
    }
    (rates.len() == runs).then_some(rates)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The ratios ims/JS: the first runs (fresh processes on both sides) against each other, and
/// the medians of the later (warm) runs against each other; by wall clock and per CPU second.
fn compare(ims: &[Rate], js: &[Rate]) {
    const TARGET: f64 = 5.0;
    let verdict = |r: f64| if r >= TARGET { "meets" } else { "below" };
    let per_cpu = |a: Option<f64>, b: Option<f64>| match a.zip(b) {
        Some((a, b)) => format!("; MB per CPU s {:.2}x", a / b),
        None => String::new(),
    };
    if let (Some(i), Some(j)) = (ims.first(), js.first()) {
        let r = i.mb_s / j.mb_s;
        println!(
            "ratio ims/JS, fresh vs fresh (first runs): {r:.2}x ({} the {TARGET}x target){}",
            verdict(r),
            per_cpu(i.mb_per_cpu_s, j.mb_per_cpu_s)
        );
    }
    let later =
        |rates: &[Rate], f: fn(&Rate) -> Option<f64>| median(rates.iter().skip(1).filter_map(f).collect());
    if let (Some(i), Some(j)) = (later(ims, |r| Some(r.mb_s)), later(js, |r| Some(r.mb_s))) {
        let r = i / j;
        println!(
            "ratio ims/JS, warm vs warm (medians of the {} later runs, {i:.1} vs {j:.1} MB/s): {r:.2}x ({} the {TARGET}x target){}",
            ims.len().min(js.len()) - 1,
            verdict(r),
            per_cpu(later(ims, |r| r.mb_per_cpu_s), later(js, |r| r.mb_per_cpu_s))
        );
    }
}

/// The npm-like key `i` of `tests/js/bench/lib.js` (`npmKey`).
fn npm_key(i: u64) -> String {
    let (pkg, v) = (i / 8, i % 8);
    let mut b36 = String::new();
    let mut x = pkg;
    loop {
        b36.insert(0, char::from_digit((x % 36) as u32, 36).unwrap_or('0'));
        x /= 36;
        if x == 0 {
            break;
        }
    }
    let name =
        if pkg % 3 == 0 { format!("@scope{}/pkg-{b36}-lib", pkg % 997) } else { format!("pkg-{b36}-util") };
    format!("{name}/{}.{}.{}", 1 + (v >> 2), v & 3, (pkg * 7 + v) % 13)
}

async fn lookups(writer: &Feed, trie: &Trie, keys: &[String], prefetch: bool) {
    let router = PeerRouter::new();
    let replica = FeedBuilder::new(Storage::memory())
        .public_key(writer.public_key())
        .block_source(Arc::new(router.clone()))
        .open()
        .await
        .expect("replica");
    let planner = Arc::new(TriePlanner::new(trie.clone()));
    let (port, server) = serve(writer.clone(), Some(planner.clone() as Arc<dyn BlockPlanner>)).await;
    let mut events = replica.subscribe();
    let conn = connect(port, replica.clone(), ReplicateOptions::sparse(router.clone())).await;
    while replica.len() < writer.len() {
        let _ = events.recv().await;
    }
    if prefetch {
        answer_sizes(writer, &replica, &planner, keys).await;
    }
    let t0 = Instant::now();
    let mut prefetched = 0;
    if prefetch {
        prefetched = router.prefetch(&replica.discovery_key(), keys.to_vec()).await.expect("prefetch");
    }
    let reader = Trie::open(replica.clone()).await.expect("trie");
    for k in keys {
        reader.get(k).await.expect("get").expect("found");
    }
    let secs = t0.elapsed().as_secs_f64();
    server.abort();
    let stats = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .ok()
        .and_then(|r| r.ok().flatten())
        .unwrap_or_default();
    let held = (0..replica.len()).filter(|&s| replica.has(s)).count();
    // Requests are sequential (each trie hop waits for its block): one round trip each; the
    // first is the head fetch that tells the replica the length, before the timer starts.
    let trips = stats.requests.saturating_sub(1) + u64::from(prefetch);
    println!(
        "{:<17} {} lookups: {held} blocks held ({prefetched} prefetched), {} requests, {trips} round trips, {:.1} ms",
        if prefetch { "with prefetch" } else { "without prefetch" },
        keys.len(),
        stats.requests.saturating_sub(1),
        secs * 1e3
    );
}

/// The corpus ingested into an in-memory index, as `ims index --from-registry` would.
async fn corpus_index() -> (Feed, Trie) {
    use indexer::model::Packument;
    use indexer::{Document, Index, Update};
    let corpus = fixtures::Corpus::load().expect("corpus");
    let writer =
        FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.expect("writer");
    let trie = Trie::open(writer.clone()).await.expect("trie");
    let mut index = Index::open(trie.clone()).await.expect("index");
    index.set_upstream(&"http://127.0.0.1:9/".parse().unwrap()).await.expect("upstream");
    let docs: Vec<Packument> =
        corpus.packuments().map(|(_, j)| Packument::from_slice(j).expect("packument")).collect();
    for chunk in docs.chunks(32) {
        let documents = chunk.iter().map(|p| Document { packument: p.clone().into(), etag: None }).collect();
        index.write(Update { documents, ..Update::default() }).await.expect("write");
    }
    (writer, trie)
}

/// Resolves the corpus roots over a cold replica served with `planner`; prints the figures.
async fn resolve_from_peer(writer: &Feed, planner: Option<Arc<dyn BlockPlanner>>, label: &str) {
    use indexer::source::ReplicaSource;
    use installer::planner::ResolveQuery;
    use installer::resolve::MemorySource;
    use installer::{DepKind, PickOptions, Request, Resolver, tree};
    let corpus = fixtures::Corpus::load().expect("corpus");
    let roots: Vec<(DepKind, Request)> = corpus
        .roots()
        .iter()
        .map(|(n, s)| (DepKind::Prod, Request::from_dependency(n, s).expect("root")))
        .collect();
    let router = PeerRouter::new();
    let replica = FeedBuilder::new(Storage::memory())
        .public_key(writer.public_key())
        .block_source(Arc::new(router.clone()))
        .open()
        .await
        .expect("replica");
    let (port, server) = serve(writer.clone(), planner).await;
    let mut events = replica.subscribe();
    let conn = connect(port, replica.clone(), ReplicateOptions::sparse(router.clone())).await;
    while replica.len() < writer.len() {
        let _ = events.recv().await;
    }
    let t0 = Instant::now();
    let query = ResolveQuery { roots: roots.clone(), pick: PickOptions::default() };
    let prefetched = router.prefetch(&replica.discovery_key(), query.to_keys()).await.expect("prefetch");
    let index = indexer::Index::open(Trie::open(replica.clone()).await.expect("trie")).await.expect("index");
    let source = ReplicaSource::new(index, MemorySource::new(), "http://127.0.0.1:9/".parse().unwrap());
    let resolver = Resolver::new(source, PickOptions::default());
    let built = installer::ideal_tree::build(&resolver, tree::root_edges(&roots), Default::default())
        .await
        .expect("tree");
    let secs = t0.elapsed().as_secs_f64();
    server.abort();
    let stats = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .ok()
        .and_then(|r| r.ok().flatten())
        .unwrap_or_default();
    // The first request is the head fetch that tells the replica the length (before the timer).
    let requests = stats.requests.saturating_sub(1);
    println!(
        "{label:<24} {} packages: 1 prefetch ({prefetched} blocks) + {requests} block requests, {:.1} ms",
        built.packages().len(),
        secs * 1e3
    );
}

/// Messages, tree nodes, signatures and frame bytes of a list of Data.
fn tally(answer: &[Data]) -> (usize, usize, usize, usize) {
    let bytes =
        answer.iter().filter_map(|d| ChannelMessage::new(1, Message::Data(d.clone())).to_frame().ok());
    (
        answer.len(),
        answer.iter().map(|d| d.nodes.len()).sum(),
        answer.iter().filter(|d| d.signature.is_some()).count(),
        bytes.map(|f| f.len()).sum(),
    )
}

/// What the prefetch answer to `replica` costs with shared proofs, and with a full proof (roots
/// + signature) per block as before.
async fn answer_sizes(writer: &Feed, replica: &Feed, planner: &TriePlanner, keys: &[String]) {
    let blocks = planner.blocks(writer, keys).await.expect("plan");
    let seqs: Vec<u64> = blocks.into_iter().filter(|&s| !replica.has(s)).collect();
    let have = replica.bitfield().bytes(0, replica.len().div_ceil(8));
    let shared: Vec<Data> = prefetch::answer(writer, &seqs, &have, Some(replica.len())).collect();
    let full: Vec<Data> = seqs
        .iter()
        .filter_map(|&seq| {
            let (proof, _) = writer.proof_with(seq, ProofOptions::default()).ok()?;
            Some(prefetch::data_message(writer.get_local(seq).ok()?.map(Into::into), &proof))
        })
        .collect();
    let (n, nodes, sigs, bytes) = tally(&shared);
    let (_, full_nodes, full_sigs, full_bytes) = tally(&full);
    println!(
        "prefetch answer   {n} blocks: shared proofs {nodes} nodes + {sigs} signatures, {bytes} bytes; \
         full proofs {full_nodes} nodes + {full_sigs} signatures, {full_bytes} bytes ({:.1}% of the bytes, {:.1}% of the nodes)",
        100.0 * bytes as f64 / full_bytes.max(1) as f64,
        100.0 * nodes as f64 / full_nodes.max(1) as f64
    );
}

#[allow(clippy::disallowed_methods)] // a bench is a program: it reads its switches from the environment
fn main() {
    let mib: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100);
    // `IMS_BENCH_ONLY=throughput` runs only part 1; `IMS_BENCH_RUNS=n` makes n transfers on
    // each side (the first in fresh processes, the later ones warm).
    let only_throughput = std::env::var("IMS_BENCH_ONLY").is_ok_and(|v| v == "throughput");
    let runs: usize = std::env::var("IMS_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("== replicate a {mib} MiB feed ({} KiB blocks) over loopback TCP", BLOCK / 1024);
    let suite = if swarm::AeadSuite::aes_is_fast() { "AES-256-GCM" } else { "ChaCha20-Poly1305" };
    println!("   ims records sealed with {suite} (negotiated); JS: v8's unauthenticated XSalsa20");
    let ims = rt.block_on(ims_throughput(mib << 20, runs));
    match js_throughput(mib << 20, runs) {
        Some(js) => compare(&ims, &js),
        None => println!("JS -> JS: skipped (node or tests/js/node_modules unavailable)"),
    }
    if only_throughput {
        return;
    }

    println!("== 300 package lookups on a cold replica of a 20 000-key trie");
    rt.block_on(async {
        let writer =
            FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await.expect("writer");
        let trie = Trie::open(writer.clone()).await.expect("trie");
        for i in 0..20_000u64 {
            let key = npm_key(i);
            let value = format!("{{\"name\":\"{key}\",\"x\":\"{}\"}}", "z".repeat(260));
            trie.put(&key, value.as_bytes()).await.expect("put");
        }
        let keys: Vec<String> = (0..300u64).map(|k| npm_key(k * 66 + 5)).collect();
        lookups(&writer, &trie, &keys, false).await;
        lookups(&writer, &trie, &keys, true).await;
    });

    println!("== the corpus roots resolved from a cold replica of a peer's index (loopback)");
    rt.block_on(async {
        let (writer, trie) = corpus_index().await;
        let resolve: Arc<dyn BlockPlanner> =
            Arc::new(installer::planner::ResolvePlanner::new(trie.clone(), Default::default()));
        let keys: Arc<dyn BlockPlanner> = Arc::new(TriePlanner::new(trie));
        resolve_from_peer(&writer, Some(resolve), "resolve planner").await;
        resolve_from_peer(&writer, Some(keys), "key planner only").await;
        resolve_from_peer(&writer, None, "no planner").await;
    });
}
