//! Crash safety under group commit: a writer process (this test binary re-executed with
//! `HC_GCRASH_DIR` set) runs 8 concurrent appenders, so appends land in shared group records,
//! and reports each acknowledged append with the seq it got; the parent SIGKILLs it at random
//! points (deterministic seed), reopens the feed and checks that it verifies, lost no
//! acknowledged append, and holds exactly the acknowledged bytes at their seqs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypercore::{FeedBuilder, KeyPair, Storage};

const ENV_DIR: &str = "HC_GCRASH_DIR";
const ENV_ROUND: &str = "HC_GCRASH_ROUND";
const KILLS: u64 = 25;
const TASKS: u64 = 8;

fn key_pair() -> KeyPair {
    KeyPair::from_seed(&[0x47; 32])
}

/// Block `k` of append `i` of task `t` in round `round`: 0..=599 bytes.
fn block(round: u64, t: u64, i: u64, k: u64) -> Vec<u8> {
    let len = ((round * 131 + t * 71 + i * 31 + k * 7) % 600) as usize;
    format!("r{round} t{t} i{i} k{k};").bytes().cycle().take(len).collect()
}

/// xorshift64*: a tiny deterministic generator, so kill points repeat run to run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The child: `TASKS` appenders forever, printing `ack <first> <n> <t> <i>` after each return.
#[test]
// The child learns its directory from the environment: it is re-executed by the parent test.
#[allow(clippy::disallowed_methods)]
fn group_crash_writer_child() {
    let (Ok(dir), Ok(round)) = (std::env::var(ENV_DIR), std::env::var(ENV_ROUND)) else {
        return; // Only does something when re-executed by `kill_concurrent_writers_at_random_points`.
    };
    let round: u64 = round.parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let feed = FeedBuilder::new(Storage::disk(&dir)).key_pair(key_pair()).open().await.unwrap();
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (feed, out) = (feed.clone(), out.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let n = 1 + (t + i) % 4;
                    let blocks: Vec<Vec<u8>> = (0..n).map(|k| block(round, t, i, k)).collect();
                    let first = feed.append_batch(&blocks).await.unwrap();
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ack {first} {n} {t} {i}").unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_concurrent_writers_at_random_points() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feed");
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(0x6c0d_9e11_77aa);
    // Every acknowledged seq and its bytes; acknowledged seqs are never handed out again.
    let mut acked: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut acked_len = 0u64;
    let mut torn = 0;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["group_crash_writer_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(ENV_DIR, &dir)
            .env(ENV_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let wait_acks = 1 + rng.next() % 40;
        let extra_delay = Duration::from_micros(rng.next() % 3000);
        let mut lines = BufReader::new(stdout).lines();
        let mut record = |line: &str| {
            let Some(rest) = line.strip_prefix("ack ") else { return false };
            let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            let (first, n, t, i) = (v[0], v[1], v[2], v[3]);
            for k in 0..n {
                let prev = acked.insert(first + k, block(round, t, i, k));
                assert!(prev.is_none(), "round {round}: seq {} acknowledged twice", first + k);
            }
            acked_len = acked_len.max(first + n);
            true
        };
        let mut seen = 0;
        while seen < wait_acks {
            let Some(line) = lines.next() else { break };
            if record(&line.unwrap()) {
                seen += 1;
            }
        }
        std::thread::sleep(extra_delay);
        child.kill().unwrap(); // SIGKILL
        // Acks printed before the kill still count: they were acknowledged.
        for line in lines {
            record(&line.unwrap());
        }
        child.wait().unwrap();
        let size_before = std::fs::metadata(dir.join("log")).unwrap().len();

        // Reopen: must verify (the signature is checked on open) and keep every ack.
        let feed = FeedBuilder::new(Storage::disk(&dir)).key_pair(key_pair()).open().await.unwrap();
        let len = feed.len();
        if std::fs::metadata(dir.join("log")).unwrap().len() < size_before {
            torn += 1;
        }
        assert!(
            len >= acked_len,
            "round {round}: reopened length {len} lost acknowledged length {acked_len}"
        );
        for seq in 0..len {
            let got = feed.get(seq).await.unwrap();
            if let Some(want) = acked.get(&seq) {
                assert_eq!(&got, want, "round {round}: block {seq}");
            }
        }
        // Unacknowledged blocks that survived are now part of the feed: later rounds append
        // after them. Every block also verifies through a proof (sampled rounds).
        if round % 8 == 7 || round == KILLS - 1 {
            let replica =
                FeedBuilder::new(Storage::memory()).public_key(feed.public_key()).open().await.unwrap();
            for seq in (0..len).rev() {
                let proof = feed.proof(seq, replica.digest(seq)).await.unwrap();
                replica.put(seq, &feed.get(seq).await.unwrap(), &proof).await.unwrap();
            }
            assert_eq!(replica.len(), len);
        }
        acked_len = len;
    }
    assert!(acked.len() as u64 > KILLS, "the writers made progress");
    let _ = writeln!(
        std::io::stderr(),
        "{KILLS} kills: {torn} torn tails cut, {} acknowledged blocks",
        acked.len()
    );
}
