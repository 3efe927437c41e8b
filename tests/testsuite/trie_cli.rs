//! `ims trie info|get|list` over a local index written through the hypertrie API.

use std::path::Path;
use std::process::Output;

use hypercore::{FeedBuilder, KeyPair, Storage};
use hypertrie::{PutOptions, Trie};
use serde_json::{Value, json};

use crate::support;

/// Write a small index under `home/index`, as `ims index` would lay it out.
fn make_index(home: &Path) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let feed = FeedBuilder::new(Storage::disk(home.join("index")))
            .key_pair(KeyPair::from_seed(&[5; 32]))
            .open()
            .await
            .unwrap();
        let key = feed.public_key().to_hex();
        let trie = Trie::open(feed).await.unwrap();
        trie.put("express/4.18.2", br#"{"name":"express"}"#).await.unwrap(); // seq 1
        trie.put("express/4.17.1", b"older").await.unwrap(); // seq 2
        trie.put("@types/node/20.1.0", &[0xff, 0x00, 0x7f]).await.unwrap(); // seq 3, not UTF-8
        trie.put_with("secret", b"s", PutOptions { hidden: true, flags: 0 }).await.unwrap(); // seq 4
        key
    })
}

fn ims(home: &Path, args: &[&str]) -> Output {
    support::ims(home).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn get_prints_values_as_text_hex_and_json() {
    let home = tempfile::tempdir().unwrap();
    make_index(home.path());

    let text = stdout(&ims(home.path(), &["trie", "get", "express/4.18.2", "/@types/node/20.1.0", "nope"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [r#"express/4.18.2	1	{"name":"express"}"#, "@types/node/20.1.0\t3\tff007f", "nope\t-\t(not found)"]
    );

    let hex = stdout(&ims(home.path(), &["trie", "get", "--hex", "express/4.17.1"]));
    assert_eq!(hex.trim_end(), "express/4.17.1\t2\t6f6c646572");

    let got = json_lines(&ims(
        home.path(),
        &["trie", "get", "--json", "express/4.17.1", "@types/node/20.1.0", "nope"],
    ));
    assert_eq!(
        got,
        [
            json!({"key": "express/4.17.1", "seq": 2, "value_hex": "6f6c646572", "value": "older"}),
            json!({"key": "@types/node/20.1.0", "seq": 3, "value_hex": "ff007f"}),
            json!({"key": "nope", "value_hex": null}),
        ]
    );

    let hidden = json_lines(&ims(home.path(), &["trie", "get", "--json", "--hidden", "secret"]));
    assert_eq!(hidden, [json!({"key": "secret", "seq": 4, "value_hex": "73", "value": "s"})]);
}

#[test]
fn list_and_info() {
    let home = tempfile::tempdir().unwrap();
    let key = make_index(home.path());

    let all = json_lines(&ims(home.path(), &["trie", "list", "--json"]));
    let mut keys: Vec<&str> = all.iter().map(|v| v["key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["@types/node/20.1.0", "express/4.17.1", "express/4.18.2"],
        "hidden keys are not listed"
    );

    let express = json_lines(&ims(home.path(), &["trie", "list", "--json", "express"]));
    assert_eq!(express.len(), 2);
    let shallow = json_lines(&ims(home.path(), &["trie", "list", "--json", "--shallow"]));
    assert_eq!(shallow.len(), 2, "one node per top-level component: {shallow:?}");

    let info = json_lines(&ims(home.path(), &["trie", "info", "--json"]));
    assert_eq!(info[0]["key"], json!(key));
    assert_eq!(info[0]["version"], json!(5));
    assert_eq!(info[0]["type"], json!("hypertrie"));
    assert_eq!(info[0]["head"], json!({"key": "secret", "seq": 4}));
    let text = stdout(&ims(home.path(), &["trie", "info"]));
    assert!(text.contains(&key) && text.contains("version        5 blocks"), "{text}");

    // The same key given explicitly is fine.
    assert!(ims(home.path(), &["--key", &key, "trie", "info"]).status.success());
}

#[test]
fn other_key_or_no_index_is_an_error_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let out = ims(home.path(), &["trie", "info"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no local index"));
    assert!(!home.path().join("index").exists(), "inspecting creates nothing");

    make_index(home.path());
    let other = "ab".repeat(32);
    let out = ims(home.path(), &["--key", &other, "trie", "get", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not the local index") && err.contains("hint:") && err.contains("replication"),
        "{err}"
    );
}

#[test]
fn an_index_feed_without_blocks_is_refused_and_not_written() {
    let home = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // A feed created but never written to (an interrupted first `ims index`, say).
    rt.block_on(async { FeedBuilder::new(Storage::disk(home.path().join("index"))).open().await.unwrap() });
    let files = |dir: &Path| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
            .collect();
        v.sort();
        v
    };
    let before = files(&home.path().join("index"));
    for args in [&["trie", "info"][..], &["key"], &["view", "express"]] {
        let out = ims(home.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded on an empty index");
        assert!(err.contains("is empty"), "{args:?}: {err}");
    }
    assert_eq!(files(&home.path().join("index")), before, "reading wrote into the index");
}
