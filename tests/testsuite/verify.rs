//! `ims verify` (npm's `audit signatures`) against a fixture registry that signs its versions
//! with a test key and serves it at `/-/npm/v1/keys`: all verified; then one tampered
//! signature, one tampered tarball in the store and a registry without keys, each reported
//! and exit 1; `--offline` with the keys and metadata remembered.

use std::fs;
use std::path::Path;

use fixtures::{Corpus, Registry, SigningKey};
use indexer::tarballs::{Integrity, TarballStore};

use crate::support::{self, output};

/// `ims --registry URL [--offline] verify --prefix PROJECT [--json]`.
fn verify(home: &Path, registry: &str, project: &Path, extra: &[&str]) -> (String, String, i32) {
    let mut cmd = support::ims(home);
    let (global, own): (Vec<&str>, Vec<&str>) = extra.iter().partition(|a| **a == "--offline");
    cmd.arg("--registry").arg(registry).args(global).arg("verify").arg("--prefix").arg(project).args(own);
    let out = output(&mut cmd);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_and_store_tarballs_verify_and_tampering_is_reported() {
    let corpus = Corpus::load().unwrap();
    let registry = Registry::with_corpus(&corpus).await.unwrap();
    let key = SigningKey::generate("SHA256:ims-test-key");
    registry.sign_all(&key);
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let (home, project) = (dir.path().join("home"), dir.path().join("app"));
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("package.json"),
        r#"{"name":"app","version":"1.0.0","dependencies":{"debug":"2","ms":"2"}}"#,
    )
    .unwrap();
    let out = output(&mut support::ims_install(&home, &url, &project));
    assert!(out.status.success(), "install: {}", String::from_utf8_lossy(&out.stderr));

    // debug@2, its ms@2.0.0 nested, ms@2.1.x at the top.
    let (stdout, stderr, code) = verify(&home, &url, &project, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout, "audited 3 packages in 0s\n\n3 packages have verified registry signatures\n\n");
    let (stdout, stderr, code) = verify(&home, &url, &project, &["--offline"]);
    assert_eq!(code, 0, "offline, from the keys and index remembered: {stdout}{stderr}");
    assert!(stdout.contains("3 packages have verified registry signatures"), "{stdout}");

    // A signature over something else.
    registry.tamper_signature("ms", "2.0.0", &key);
    let (stdout, stderr, code) = verify(&home, &url, &project, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("2 packages have verified registry signatures"), "{stdout}");
    assert!(
        stdout.contains(&format!("1 package has an invalid registry signature:\n\nms@2.0.0 ({url})\n")),
        "{stdout}"
    );
    assert!(stdout.contains("Someone might have tampered with this package"), "{stdout}");
    let (json, _, code) = verify(&home, &url, &project, &["--json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["invalid"][0]["name"], "ms");
    assert_eq!(doc["invalid"][0]["code"], "EINTEGRITYSIGNATURE");
    assert_eq!(doc["invalid"][0]["keyid"], "SHA256:ims-test-key");
    assert_eq!(doc["missing"], serde_json::json!([]));

    // A tarball in the store changed after it was verified.
    registry.sign_all(&key);
    let integrity: Integrity = registry.integrity_of("debug", "2.6.9").unwrap().parse().unwrap();
    let store = TarballStore::open(home.join("store")).unwrap();
    let tarball = store.tarball_path(&integrity);
    let mut bytes = fs::read(&tarball).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&tarball, bytes).unwrap();
    let (stdout, _, code) = verify(&home, &url, &project, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("3 packages have verified registry signatures"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "1 package has a tarball in the store that does not match its integrity:\n\ndebug@2.6.9 ({url})\n"
        )),
        "{stdout}"
    );

    // A registry that publishes no keys: a clear error, not a pass.
    let bare = Registry::with_corpus(&corpus).await.unwrap();
    let (_, stderr, code) = verify(dir.path().join("home2").as_path(), &bare.url(), &project, &[]);
    assert!(stderr.contains("provides no signing keys"), "{stderr}");
    assert_eq!(code, 1, "{stderr}");
}
