//! Crash safety: a writer process (this test binary re-executed with `HC_CRASH_DIR` set) appends
//! to a disk feed and reports each acknowledged length; the parent SIGKILLs it at random points
//! (deterministic seed), reopens the feed and checks that it verifies and lost no
//! acknowledged append.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use hypercore::{FeedBuilder, KeyPair, Storage};

const ENV_DIR: &str = "HC_CRASH_DIR";
const ENV_SEED: &str = "HC_CRASH_SEED";
const KILLS: u64 = 40;

fn key_pair() -> KeyPair {
    KeyPair::from_seed(&[0x42; 32])
}

/// Deterministic content of block `seq`, 0..=2999 bytes.
fn block(seq: u64) -> Vec<u8> {
    let len = (seq * 7919 % 3000) as usize;
    let pattern = format!("block {seq};");
    pattern.bytes().cycle().take(len).collect()
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

/// The child: append forever (singles and batches), printing `ack <len>` after each return.
#[test]
// The child learns its directory from the environment: it is re-executed by the parent test.
#[allow(clippy::disallowed_methods)]
fn crash_writer_child() {
    let (Ok(dir), Ok(seed)) = (std::env::var(ENV_DIR), std::env::var(ENV_SEED)) else {
        return; // Only does something when re-executed by `kill_writer_at_random_points`.
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let feed = FeedBuilder::new(Storage::disk(&dir)).key_pair(key_pair()).open().await.unwrap();
        let mut rng = Rng(seed.parse::<u64>().unwrap() | 1);
        let mut out = std::io::stdout().lock();
        loop {
            let len = feed.len();
            let n = if rng.next().is_multiple_of(3) { 1 + rng.next() % 40 } else { 1 };
            let blocks: Vec<Vec<u8>> = (len..len + n).map(block).collect();
            feed.append_batch(&blocks).await.unwrap();
            writeln!(out, "ack {}", len + n).unwrap();
            out.flush().unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_writer_at_random_points() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("feed");
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd);
    let mut acked = 0u64;
    let (mut torn, mut unacked_kept) = (0, 0);
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["crash_writer_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(ENV_DIR, &dir)
            .env(ENV_SEED, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let wait_acks = 1 + rng.next() % 12;
        let extra_delay = Duration::from_micros(rng.next() % 3000);
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < wait_acks {
            let Some(line) = lines.next() else { break };
            if let Some(n) = line.unwrap().strip_prefix("ack ") {
                acked = acked.max(n.parse().unwrap());
                seen += 1;
            }
        }
        std::thread::sleep(extra_delay);
        child.kill().unwrap(); // SIGKILL
        // Acks printed before the kill still count: they were acknowledged.
        for line in lines {
            if let Some(n) = line.unwrap().strip_prefix("ack ") {
                acked = acked.max(n.parse().unwrap());
            }
        }
        child.wait().unwrap();
        let size_before = std::fs::metadata(dir.join("log")).unwrap().len();

        // Reopen: must verify (the signature is checked on open) and keep every ack.
        let feed = FeedBuilder::new(Storage::disk(&dir)).key_pair(key_pair()).open().await.unwrap();
        let len = feed.len();
        if std::fs::metadata(dir.join("log")).unwrap().len() < size_before {
            torn += 1;
        }
        if len > acked {
            unacked_kept += 1;
        }
        assert!(len >= acked, "round {round}: reopened length {len} lost acknowledged length {acked}");
        for seq in 0..len {
            assert_eq!(feed.get(seq).await.unwrap(), block(seq), "round {round}: block {seq}");
        }
        // Every block also verifies against the public key through a proof (sampled rounds).
        if round % 10 == 9 || round == KILLS - 1 {
            let replica =
                FeedBuilder::new(Storage::memory()).public_key(feed.public_key()).open().await.unwrap();
            for seq in (0..len).rev() {
                let proof = feed.proof(seq, replica.digest(seq)).await.unwrap();
                replica.put(seq, &feed.get(seq).await.unwrap(), &proof).await.unwrap();
            }
            assert_eq!(replica.len(), len);
        }
        acked = len;
    }
    assert!(acked > KILLS, "the writer made progress");
    // Informational (kill timing is up to the OS): how often a kill landed mid-append.
    let _ = writeln!(
        std::io::stderr(),
        "{KILLS} kills: {torn} torn tails cut, {unacked_kept} unacknowledged appends kept"
    );
}
