//! Transport throughput, one run, side by side: a `SecureStream` over an in-memory pipe with
//! v8's XSalsa20 and with ims's authenticated records, against the JS anchor (a
//! hypercore-protocol@8 stream between two in-process JS peers). Prints MB/s and ratios.
//!
//! `cargo bench -p swarm --bench transport` (needs `node` and `tests/js/node_modules` for
//! the JS column; `npm ci --prefix tests/js` installs them).
#![allow(clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use swarm::{AeadSuite, HandshakeConfig, Identity, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOTAL: usize = 128 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

async fn rust_run(config: HandshakeConfig) -> f64 {
    let (x, y) = tokio::io::duplex(256 * 1024);
    let (a, b) = (Identity::from_seed(b"a"), Identity::from_seed(b"b"));
    let rc = config.clone();
    let responder = tokio::spawn(async move { swarm::handshake(y, Role::Responder, &b, &rc).await });
    let mut tx = swarm::handshake(x, Role::Initiator, &a, &config).await.expect("handshake");
    let mut rx = responder.await.expect("join").expect("handshake");
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; CHUNK];
        for _ in 0..TOTAL / CHUNK {
            tx.write_all(&chunk).await.expect("write");
        }
        tx.flush().await.expect("flush");
        tx
    });
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    while got < TOTAL {
        got += rx.read(&mut buf).await.expect("read");
    }
    let secs = start.elapsed().as_secs_f64();
    drop(writer.await.expect("join"));
    TOTAL as f64 / secs / 1e6
}

/// The same pipe with no crypto at all: the ceiling of this setup.
async fn plain_run() -> f64 {
    let (mut tx, mut rx) = tokio::io::duplex(256 * 1024);
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; CHUNK];
        for _ in 0..TOTAL / CHUNK {
            tx.write_all(&chunk).await.expect("write");
        }
    });
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    while got < TOTAL {
        got += rx.read(&mut buf).await.expect("read");
    }
    let secs = start.elapsed().as_secs_f64();
    writer.await.expect("join");
    TOTAL as f64 / secs / 1e6
}

/// The ciphers alone, no I/O: XSalsa20, then each record suite's seal.
fn cipher_only() -> (f64, f64, f64) {
    let mut buf = vec![7u8; CHUNK];
    let mut ks = swarm::cipher::KeyStream::new(&[1; 32], &[2; 24]);
    let start = Instant::now();
    for _ in 0..TOTAL / CHUNK {
        ks.apply(&mut buf);
    }
    let xsalsa = TOTAL as f64 / start.elapsed().as_secs_f64() / 1e6;
    let seal = |suite| {
        let mut rc = swarm::cipher::RecordCipher::new(suite, &[1; 32]);
        let mut out = Vec::with_capacity(CHUNK + 64);
        let start = Instant::now();
        for _ in 0..TOTAL / CHUNK {
            out.clear();
            rc.seal(&buf[..swarm::cipher::MAX_RECORD_PLAINTEXT.min(CHUNK)], &mut out).expect("seal");
        }
        TOTAL as f64 / start.elapsed().as_secs_f64() / 1e6
    };
    (xsalsa, seal(AeadSuite::ChaCha20Poly1305), seal(AeadSuite::Aes256Gcm))
}

fn js_run() -> Option<f64> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let modules = repo.join("tests/js/node_modules");
    if !modules.join("hypercore-protocol").is_dir() {
        println!("  (JS anchor skipped: run `npm ci --prefix tests/js`)");
        return None;
    }
    let out = Command::new("node")
        .arg(repo.join("swarm/benches/js/transport.js"))
        .arg(TOTAL.to_string())
        .env("NODE_PATH", modules)
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v["bytes"].as_f64()? / v["seconds"].as_f64()? / 1e6)
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!(
        "one-way secure stream throughput, {} MiB in {} KiB writes, in-memory pipe",
        TOTAL >> 20,
        CHUNK >> 10
    );
    let (ks, chacha_seal, aes_seal) = cipher_only();
    println!(
        "  cipher only: XSalsa20 {ks:.1} MB/s, ChaCha20-Poly1305 seal {chacha_seal:.1} MB/s, \
         AES-256-GCM seal {aes_seal:.1} MB/s (AES in hardware: {})",
        AeadSuite::aes_is_fast()
    );
    let plain = rt.block_on(plain_run());
    println!("  plain pipe, no crypto (ceiling)       {plain:9.1} MB/s");
    let xsalsa = rt.block_on(rust_run(HandshakeConfig::v8_compatible()));
    println!("  ims XSalsa20 (v8, for JS peers)      {xsalsa:9.1} MB/s");
    let chacha = rt.block_on(rust_run(HandshakeConfig::default().offer_aes_gcm(false)));
    println!("  ims ChaCha20-Poly1305 records         {chacha:9.1} MB/s");
    let aead = rt.block_on(rust_run(HandshakeConfig::default()));
    println!("  ims records as negotiated by default  {aead:9.1} MB/s");
    if let Some(js) = js_run() {
        println!("  JS hypercore-protocol@8 (XSalsa20)    {js:9.1} MB/s");
        println!("  ratio ims XSalsa20 / JS: {:.2}x   ims AEAD / JS: {:.2}x", xsalsa / js, aead / js);
    }
    println!("  AEAD cost vs XSalsa20: {:.2}x", xsalsa / aead);
}
