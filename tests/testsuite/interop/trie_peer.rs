//! Remote tries over TCP against the real JS stack (wire spec §7–9): `ims trie get/list --key K
//! --peer HOST:PORT` reads a JS hypertrie@5 writer, and a JS hypertrie@5 reader downloads
//! (verifying every block) and lists an index served by `ims seed --listen 127.0.0.1:0
//! --no-dht`. Also ims ↔ ims with the prefetch extension.

use std::path::Path;
use std::process::Output;
use std::sync::mpsc;

use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::Trie;
use serde_json::Value;

use child::{Kill, line, lines};

use crate::support::{self, child, js};

fn node(args: &[&str]) -> (Kill, mpsc::Receiver<String>) {
    let mut child = js::spawn_node("tests/js/scripts/trie_peer.js", args, "hypertrie");
    let out = lines(child.stdout.take().expect("stdout"));
    (Kill(child), out)
}

fn ims(home: &Path, args: &[&str]) -> Output {
    support::ims(home).args(args).output().expect("run ims")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "ims failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// `ims seed` on a free port; returns the process, its address and key.
fn seed(home: &Path) -> (Kill, String, String) {
    let mut cmd = support::ims(home);
    cmd.args(["seed", "--listen", "127.0.0.1:0", "--no-dht"]);
    child::seed(cmd)
}

/// An index of `n` keys under `home/index`, written through hypertrie as `ims index` would.
fn make_index(home: &Path, n: usize) -> Vec<(String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let feed = FeedBuilder::new(Storage::disk(home.join("index")))
            .key_pair(KeyPair::from_seed(&[9; 32]))
            .open()
            .await
            .expect("feed");
        let trie = Trie::open(feed).await.expect("trie");
        let mut entries = Vec::new();
        for i in 0..n {
            let (k, v) = (format!("pkg-{i}/1.0.{i}"), format!("{{\"v\":{i}}}"));
            trie.put(&k, v.as_bytes()).await.expect("put");
            entries.push((k, v));
        }
        entries
    })
}

#[test]
fn ims_reads_a_js_hypertrie_writer_over_tcp() {
    let (_js, out) = node(&["serve", "60"]);
    let info: Value = serde_json::from_str(&line(&out)).expect("json");
    let port = info["port"].as_u64().expect("port");
    let key = info["key"].as_str().expect("key").to_owned();
    let peer = format!("127.0.0.1:{port}");
    let home = tempfile::tempdir().expect("tempdir");

    let text = stdout(&ims(
        home.path(),
        &["trie", "get", "--allow-js-peers", "--key", &key, "--peer", &peer, "pkg/3", "pkg/42", "nope"],
    ));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("pkg/3\t") && lines[0].ends_with("\tvalue 3"), "{text}");
    assert!(lines[1].starts_with("pkg/42\t") && lines[1].ends_with("\tvalue 42"), "{text}");
    assert_eq!(lines[2], "nope\t-\t(not found)");

    // The sparse replica is kept under --home for the next run.
    assert!(home.path().join("replicas").join(&key).join("log").exists());

    let listed = stdout(&ims(
        home.path(),
        &["trie", "list", "--allow-js-peers", "--key", &key, "--peer", &peer, "pkg"],
    ));
    let mut keys: Vec<&str> = listed.lines().filter_map(|l| l.split('\t').next()).collect();
    keys.sort_unstable();
    let mut want: Vec<String> = (0..60).map(|i| format!("pkg/{i}")).collect();
    want.sort_unstable();
    assert_eq!(keys, want);
}

#[test]
fn js_hypertrie_reader_downloads_and_lists_an_ims_seed() {
    let home = tempfile::tempdir().expect("tempdir");
    let entries = make_index(home.path(), 40);
    // A JS peer speaks only v8's XSalsa20: the seeder must be told to accept it.
    let mut cmd = support::ims(home.path());
    cmd.args(["seed", "--listen", "127.0.0.1:0", "--no-dht", "--allow-js-peers"]);
    let (_seed, addr, key) = child::seed(cmd);
    let port = addr.rsplit(':').next().expect("port");
    let (_js, out) = node(&["read", port, &key]);
    let result: Value = serde_json::from_str(&line(&out)).expect("json from JS reader");
    assert_eq!(result["length"].as_u64(), Some(41), "header + 40 nodes, every block verified by JS");
    let mut got: Vec<(String, String)> = result["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let value = hex::decode(e[1].as_str().expect("value")).expect("hex");
            (e[0].as_str().expect("key").to_owned(), String::from_utf8(value).expect("utf-8"))
        })
        .collect();
    got.sort();
    let mut want = entries;
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn ims_reads_an_ims_seed_with_prefetch() {
    let home = tempfile::tempdir().expect("tempdir");
    make_index(home.path(), 200);
    let (_seed, addr, key) = seed(home.path());
    let reader = tempfile::tempdir().expect("tempdir");
    let text = stdout(&ims(
        reader.path(),
        &["trie", "get", "--key", &key, "--peer", &addr, "pkg-7/1.0.7", "pkg-150/1.0.150"],
    ));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("pkg-7/1.0.7\t") && lines[0].ends_with("\t{\"v\":7}"), "{text}");
    assert!(lines[1].starts_with("pkg-150/1.0.150\t") && lines[1].ends_with("\t{\"v\":150}"), "{text}");
    let info = stdout(&ims(reader.path(), &["trie", "info", "--json", "--key", &key, "--peer", &addr]));
    let info: Value = serde_json::from_str(info.trim()).expect("json");
    assert_eq!(info["key"].as_str(), Some(key.as_str()));
    assert_eq!(info["version"].as_u64(), Some(201));
    assert_eq!(info["writable"].as_bool(), Some(false));
}
