//! Attacks on the tarball store (integrity strings that name several hashes, reused unpacked
//! directories, hostile tarballs): see `SECURITY.md`.
//!
//! The store is shared by every project of a home, so what one install puts there must never
//! reach another install that did not ask for exactly those bytes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use fixtures::{Package, Registry};
use indexer::tarballs::{ExtractError, Integrity, Limits, TarballError, TarballStore};
use serde_json::json;

use crate::support;

const HONEST: &[u8] = b"module.exports = 'honest victim-lib';\n";
const EVIL: &[u8] = b"module.exports = 'EVIL';\n";

fn victim() -> Package {
    Package::new("victim-lib", "1.0.0").file("index.js", HONEST)
}

/// The attacker's bytes: a package that looks like victim-lib, with evil code.
fn evil_tarball() -> Vec<u8> {
    Package::new("victim-lib", "1.0.0").file("index.js", EVIL).tarball()
}

fn sri(bytes: &[u8]) -> String {
    Integrity::of_bytes(indexer::tarballs::Algorithm::Sha512, bytes).to_string()
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Setup { dir: tempfile::tempdir().unwrap() }
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn project(&self, name: &str, deps: serde_json::Value) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        let pkg = json!({"name": name, "version": "1.0.0", "dependencies": deps});
        fs::write(p.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
        p
    }
    fn install(&self, registry: &str, project: &Path) -> Output {
        support::output(&mut support::ims_install(&self.home(), registry, project))
    }
    fn store(&self) -> TarballStore {
        TarballStore::open(self.home().join("store")).unwrap()
    }
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn victim_code(project: &Path) -> Vec<u8> {
    fs::read(project.join("node_modules/victim-lib/index.js")).unwrap()
}

/// A hostile packument lists the honest victim-lib hash beside the hash of its own evil bytes
/// (`sha512-<victim> sha512-<evil>`): the evil bytes satisfy it (ssri's rule), but they are
/// stored under the hash they were verified against only, so the next honest install of
/// victim-lib in another project on the same home gets the honest bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hash_integrity_cannot_poison_another_package() {
    let registry = Registry::start().await.unwrap();
    registry.publish(victim()).unwrap();
    let (_, victim_sri) = registry.tarball("victim-lib", "1.0.0").unwrap();
    let evil = evil_tarball();
    let poisoned = format!("{victim_sri} {}", sri(&evil));
    let doc = json!({
        "_id": "evil-helper", "name": "evil-helper", "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": "evil-helper", "version": "1.0.0",
            "dist": {"integrity": poisoned, "tarball": "x"}}},
        "time": {"1.0.0": "2020-01-01T00:00:00.000Z"},
    });
    registry.publish_packument(doc.to_string().as_bytes()).unwrap();
    registry.add_tarball("evil-helper", "1.0.0", evil.clone());

    let s = Setup::new();
    let hostile = s.project("hostile", json!({"evil-helper": "1.0.0"}));
    ok(&s.install(&registry.url(), &hostile));
    // The attacker's own project gets what its packument promised (the evil bytes match).
    assert_eq!(fs::read(hostile.join("node_modules/evil-helper/index.js")).unwrap(), EVIL);

    let honest = s.project("honest", json!({"victim-lib": "1.0.0"}));
    ok(&s.install(&registry.url(), &honest));
    assert_eq!(victim_code(&honest), HONEST, "the honest install got the attacker's bytes");
    // The store holds under victim-lib's hash only victim-lib's bytes.
    let store = s.store();
    let v: Integrity = victim_sri.parse().unwrap();
    assert_eq!(fs::read(store.unpacked(&v).unwrap().join("index.js")).unwrap(), HONEST);
    assert_eq!(fs::read(store.tarball_path(&v)).unwrap(), registry.tarball("victim-lib", "1.0.0").unwrap().0);
}

/// The same poisoning with no hostile registry at all: a cloned project's lockfile gives
/// victim-lib the integrity `sha512-<victim> sha512-<evil>` and a `resolved` URL serving the
/// evil bytes. Whatever that project gets, another project of the home installing victim-lib
/// gets the honest bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockfile_two_hash_integrity_cannot_poison_the_store() {
    let registry = Registry::start().await.unwrap();
    registry.publish(victim()).unwrap();
    // The evil bytes, published under an unrelated name on the honest registry.
    registry.publish(Package::new("evil-helper", "1.0.0").file("index.js", EVIL)).unwrap();
    let (_, victim_sri) = registry.tarball("victim-lib", "1.0.0").unwrap();
    let (_, evil_sri) = registry.tarball("evil-helper", "1.0.0").unwrap();

    let s = Setup::new();
    let cloned = s.project("cloned", json!({"victim-lib": "1.0.0"}));
    let lock = json!({
        "name": "cloned", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "cloned", "version": "1.0.0", "dependencies": {"victim-lib": "1.0.0"}},
            "node_modules/victim-lib": {
                "version": "1.0.0",
                "resolved": format!("{}evil-helper/-/evil-helper-1.0.0.tgz", registry.url()),
                "integrity": format!("{victim_sri} {evil_sri}"),
            },
        },
    });
    fs::write(cloned.join("package-lock.json"), serde_json::to_string_pretty(&lock).unwrap()).unwrap();
    let _ = s.install(&registry.url(), &cloned);

    let honest = s.project("honest", json!({"victim-lib": "1.0.0"}));
    ok(&s.install(&registry.url(), &honest));
    assert_eq!(victim_code(&honest), HONEST, "the honest install got the cloned lockfile's bytes");
}

/// A store written by an older ims (or by anyone else) may hold evil bytes under an honest
/// hash: a tarball file and an unpacked folder with no marker. Neither is trusted: the folder
/// is unpacked again from a tarball that is verified first, and the bad tarball is deleted and
/// fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_store_entries_are_not_reused() {
    let registry = Registry::start().await.unwrap();
    registry.publish(victim()).unwrap();
    let (honest_bytes, victim_sri) = registry.tarball("victim-lib", "1.0.0").unwrap();
    let v: Integrity = victim_sri.parse().unwrap();
    let s = Setup::new();
    let store = s.store();
    // What the old keying left behind: evil content under victim-lib's hash.
    let hash = &v.hashes()[0];
    let tgz = store.tarball_file(hash);
    fs::create_dir_all(tgz.parent().unwrap()).unwrap();
    fs::write(&tgz, evil_tarball()).unwrap();
    let dir = store.unpacked_dir(hash);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("index.js"), EVIL).unwrap();
    fs::write(dir.join("package.json"), br#"{"name":"victim-lib","version":"1.0.0"}"#).unwrap();
    assert!(store.unpacked(&v).is_none(), "a folder without ims's marker is not trusted");

    let honest = s.project("honest", json!({"victim-lib": "1.0.0"}));
    ok(&s.install(&registry.url(), &honest));
    assert_eq!(victim_code(&honest), HONEST);
    assert_eq!(fs::read(&tgz).unwrap(), honest_bytes, "the bad tarball was replaced by the verified one");
    assert_eq!(fs::read(store.unpacked(&v).unwrap().join("index.js")).unwrap(), HONEST);
}

/// The engine's own view: bytes satisfying a two-hash integrity are stored under the hash they
/// matched, and the other hash finds nothing; the strongest algorithm alone decides (a sha1
/// beside a sha512 is ignored, so sha1-colliding bytes do not pass).
#[test]
fn store_keys_by_the_verified_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = TarballStore::open(dir.path().join("store")).unwrap();
    let honest = victim().tarball();
    let evil = evil_tarball();
    let both: Integrity = format!("{} {}", sri(&honest), sri(&evil)).parse().unwrap();
    store.put_and_unpack(&both, &evil).unwrap();
    let honest_only: Integrity = sri(&honest).parse().unwrap();
    assert!(!store.has_tarball(&honest_only));
    assert!(store.unpacked(&honest_only).is_none());
    let evil_only: Integrity = sri(&evil).parse().unwrap();
    assert_eq!(fs::read(store.tarball_path(&evil_only)).unwrap(), evil);
    // sha1 of the evil bytes beside the honest sha512: the sha512 alone is checked.
    let sha1 = Integrity::of_bytes(indexer::tarballs::Algorithm::Sha1, &evil).to_string();
    let mixed: Integrity = format!("{sha1} {}", sri(&honest)).parse().unwrap();
    assert!(matches!(store.put_and_unpack(&mixed, &evil), Err(TarballError::IntegrityMismatch { .. })));
}

/// A packument whose `dist.integrity` is there but malformed is refused, not downgraded to
/// its `dist.shasum` (which the same hostile document controls and which is only SHA-1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_integrity_is_not_downgraded_to_sha1() {
    let registry = Registry::start().await.unwrap();
    let pkg = Package::new("weak", "1.0.0");
    let bytes = pkg.tarball();
    let shasum = Integrity::of_bytes(indexer::tarballs::Algorithm::Sha1, &bytes).hashes()[0].hex();
    let doc = json!({
        "_id": "weak", "name": "weak", "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": "weak", "version": "1.0.0",
            "dist": {"integrity": "sha512-not-base64!", "shasum": shasum, "tarball": "x"}}},
        "time": {"1.0.0": "2020-01-01T00:00:00.000Z"},
    });
    registry.publish_packument(doc.to_string().as_bytes()).unwrap();
    registry.add_tarball("weak", "1.0.0", bytes);
    let s = Setup::new();
    let p = s.project("app", json!({"weak": "1.0.0"}));
    let out = s.install(&registry.url(), &p);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "installed with a sha1 fallback: {err}");
    assert!(err.contains("weak@1.0.0") && err.contains("dist.integrity"), "{err}");
    assert!(!p.join("node_modules/weak").exists());
}

// --- Tar limits (node-tar's caps): a crafted tarball over each cap is a clear error and leaves
// nothing in the store but the verified tarball itself.

/// A tarball of `entries` (path, contents), gzip'd, with paths written as given (GNU long names
/// past 100 bytes).
fn tgz(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, contents) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, contents.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Store and unpack `bytes` with `limits`; the extraction error, after checking that nothing
/// was left under `unpacked/` and `tmp/`.
fn refused(limits: Limits, bytes: &[u8]) -> ExtractError {
    let dir = tempfile::tempdir().unwrap();
    let store = TarballStore::open(dir.path().join("store")).unwrap().with_limits(limits);
    let i: Integrity = sri(bytes).parse().unwrap();
    let err = store.put_and_unpack(&i, bytes).unwrap_err();
    assert!(store.unpacked(&i).is_none(), "nothing visible after a refusal");
    let count = |sub: &str| walkdir_count(&store.root().join(sub));
    assert_eq!(count("unpacked"), 0, "no partial entry in the store");
    assert_eq!(count("tmp"), 0, "no staging left behind");
    match err {
        TarballError::Extract { source, .. } => source,
        other => panic!("not an extraction error: {other}"),
    }
}

fn walkdir_count(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.map(|e| {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() { walkdir_count(&e.path()) } else { 1 }
    })
    .sum()
}

fn file(path: &str) -> (String, Vec<u8>) {
    (path.to_owned(), b"x".to_vec())
}

#[test]
fn too_many_entries_refused() {
    let entries: Vec<_> = (0..50).map(|i| file(&format!("package/f{i}.js"))).collect();
    let err = refused(Limits { max_entries: 20, ..Limits::default() }, &tgz(&entries));
    assert!(matches!(err, ExtractError::TooManyEntries { limit: 20 }), "{err}");
    assert!(err.to_string().contains("more than 20 entries"), "{err}");
}

#[test]
fn too_many_unpacked_bytes_refused() {
    let entries: Vec<_> = (0..8).map(|i| (format!("package/f{i}.bin"), vec![7u8; 64 << 10])).collect();
    let err = refused(Limits { max_unpacked_bytes: 256 << 10, ..Limits::default() }, &tgz(&entries));
    assert!(matches!(err, ExtractError::UnpackedTooLarge { .. }), "{err}");
}

#[test]
fn too_long_path_refused() {
    let long = format!("package/{}.js", "a".repeat(5000));
    let err = refused(Limits::default(), &tgz(&[file("package/ok.js"), file(&long)]));
    assert!(err.to_string().contains("path too long"), "{err}");
}

#[test]
fn too_deep_path_refused() {
    let deep = format!("package/{}x.js", "d/".repeat(200));
    let err = refused(Limits::default(), &tgz(&[file("package/ok.js"), file(&deep)]));
    assert!(err.to_string().contains("path too deep"), "{err}");
}

/// Many long, deep, all-distinct paths, each under the per-path caps: the table of paths the
/// extractor keeps to find case and Unicode collisions is bounded too (before, it kept every
/// prefix of every path whole: O(entries × depth × length) memory).
#[test]
fn path_table_is_bounded() {
    let entries: Vec<_> = (0..400)
        .map(|i| {
            let dirs: String = (0..100).map(|d| format!("{i}-{d}-{}/", "p".repeat(30))).collect();
            file(&format!("package/{dirs}f.js"))
        })
        .collect();
    let limits = Limits { max_path_table_bytes: 1 << 20, ..Limits::default() };
    let err = refused(limits, &tgz(&entries));
    assert!(matches!(err, ExtractError::TooManyPaths { .. }), "{err}");
    assert!(err.to_string().contains("paths"), "{err}");
}

/// End to end with the default caps: `ims install` of a package whose tarball nests deeper than
/// the cap fails naming the entry, and neither `node_modules` nor the store's unpacked folders
/// get any of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_of_a_too_deep_tarball_fails_cleanly() {
    let registry = Registry::start().await.unwrap();
    let deep = format!("package/{}x.js", "d/".repeat(200));
    let bytes = tgz(&[
        ("package/package.json".to_owned(), br#"{"name":"deep","version":"1.0.0"}"#.to_vec()),
        file(&deep),
    ]);
    let doc = json!({
        "_id": "deep", "name": "deep", "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": "deep", "version": "1.0.0",
            "dist": {"integrity": sri(&bytes), "tarball": "x"}}},
        "time": {"1.0.0": "2020-01-01T00:00:00.000Z"},
    });
    registry.publish_packument(doc.to_string().as_bytes()).unwrap();
    registry.add_tarball("deep", "1.0.0", bytes);
    let s = Setup::new();
    let p = s.project("app", json!({"deep": "1.0.0"}));
    let out = s.install(&registry.url(), &p);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("too deep") && err.contains("deep@1.0.0"), "{err}");
    assert!(!p.join("node_modules/deep").exists());
    assert_eq!(walkdir_count(&s.home().join("store/unpacked")), 0);
    assert_eq!(walkdir_count(&s.home().join("store/tmp")), 0);
}
