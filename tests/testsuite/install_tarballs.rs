//! The malicious-tarball suite and the store's happy paths (spec
//! `npm-registry-and-installers.md` §5.1): every hostile tarball is generated here, in code, and
//! each must be refused with a clear error, leaving nothing outside the package folder and
//! nothing visible in the store.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use indexer::tarballs::{Algorithm, ExtractError, Integrity, Limits, TarballError, TarballStore};
use tar::{EntryType, Header};

/// One entry of a hand-built archive. Paths and link targets are written raw into the header,
/// bypassing the `tar` crate's own path checks, as an attacker would.
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Special(&'a str, EntryType),
}

fn header(path: &str, kind: EntryType, size: u64, mode: u32, link: Option<&str>) -> Header {
    let mut h = Header::new_old();
    let old = h.as_old_mut();
    old.name[..path.len()].copy_from_slice(path.as_bytes());
    if let Some(link) = link {
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_cksum();
    h
}

fn tar_bytes(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (h, data): (Header, &[u8]) = match *e {
            E::File(p, d, mode) => (header(p, EntryType::Regular, d.len() as u64, mode, None), d),
            E::Dir(p) => (header(p, EntryType::Directory, 0, 0o755, None), &[]),
            E::Symlink(p, t) => (header(p, EntryType::Symlink, 0, 0o777, Some(t)), &[]),
            E::Hardlink(p, t) => (header(p, EntryType::Link, 0, 0o644, Some(t)), &[]),
            E::Special(p, k) => (header(p, k, 0, 0o644, None), &[]),
        };
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn tgz(entries: &[E<'_>]) -> Vec<u8> {
    gzip(&tar_bytes(entries))
}

fn sri(bytes: &[u8]) -> Integrity {
    Integrity::of_bytes(Algorithm::Sha512, bytes)
}

/// A store inside `<tmp>/home/store`, so `<tmp>` and `<tmp>/home` are "outside" to check.
struct Setup {
    dir: tempfile::TempDir,
    store: TarballStore,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = TarballStore::open(dir.path().join("home/store")).unwrap();
    Setup { dir, store }
}

impl Setup {
    /// Everything under the temp dir, relative, sorted (to prove nothing else was written).
    fn listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                if e.file_type().unwrap().is_dir() {
                    walk(base, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }

    /// Store and unpack `bytes`; on refusal assert that no file at all was left behind except
    /// the verified tarball itself, and return the extraction error.
    fn refused(&self, bytes: &[u8]) -> ExtractError {
        let before = self.listing();
        let i = sri(bytes);
        let err = self.store.put_and_unpack(&i, bytes).unwrap_err();
        assert!(self.store.unpacked(&i).is_none(), "nothing visible after a refusal");
        let tarball = self.store.tarball_path(&i);
        let tarball = tarball.strip_prefix(self.dir.path()).unwrap().to_string_lossy().into_owned();
        let after: Vec<String> = self
            .listing()
            .into_iter()
            .filter(|p| !before.contains(p) && !tarball.starts_with(p.as_str()))
            .collect();
        assert_eq!(after, Vec::<String>::new(), "refusal left files behind");
        match err {
            TarballError::Extract { source, .. } => source,
            other => panic!("expected an extraction error, got {other}"),
        }
    }
}

#[test]
fn good_package_extracts_with_sane_modes() {
    let s = setup();
    let bytes = tgz(&[
        E::Dir("package/"),
        E::File("package/package.json", b"{\"name\":\"a\"}", 0o664),
        E::File("package/bin/cli.js", b"#!/usr/bin/env node\n", 0o4777),
        E::File("package/lib/deep/x.js", b"x", 0o600),
    ]);
    let i = sri(&bytes);
    let u = s.store.put_and_unpack(&i, &bytes).unwrap();
    let report = u.report.expect("first unpack reports");
    assert_eq!(report.files, 3);
    assert_eq!(fs::read(u.path.join("package.json")).unwrap(), b"{\"name\":\"a\"}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &str| fs::metadata(u.path.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("package.json"), 0o644);
        assert_eq!(mode("bin/cli.js"), 0o755, "exec kept, setuid and world-write dropped");
        assert_eq!(mode("lib/deep/x.js"), 0o644);
    }
    // Warm: the second call finds it unpacked.
    let again = s.store.put_and_unpack(&i, &bytes).unwrap();
    assert!(again.report.is_none());
    assert_eq!(again.path, u.path);
}

#[test]
fn first_component_stripped_whatever_its_name() {
    let s = setup();
    let bytes = tgz(&[E::File("node-v0.1/index.js", b"1", 0o644)]);
    let u = s.store.put_and_unpack(&sri(&bytes), &bytes).unwrap();
    assert_eq!(fs::read(u.path.join("index.js")).unwrap(), b"1");
}

#[test]
fn plain_uncompressed_tar_is_accepted() {
    let s = setup();
    let bytes = tar_bytes(&[E::File("package/a.js", b"a", 0o644)]);
    let u = s.store.put_and_unpack(&sri(&bytes), &bytes).unwrap();
    assert!(u.path.join("a.js").is_file());
}

#[test]
fn dot_dot_entry_refused() {
    let s = setup();
    let e = s.refused(&tgz(&[
        E::File("package/ok.js", b"", 0o644),
        E::File("package/../../../../escaped.txt", b"pwned", 0o644),
    ]));
    assert!(matches!(e, ExtractError::UnsafePath { reason: "`..` component", .. }), "{e}");
    assert!(e.to_string().contains("escaped.txt"));
}

#[test]
fn absolute_paths_refused() {
    let s = setup();
    let target = s.dir.path().join("abs-escape.txt");
    let abs = target.to_str().unwrap().to_owned();
    let e = s.refused(&tgz(&[E::File(&abs, b"pwned", 0o644)]));
    assert!(matches!(e, ExtractError::UnsafePath { reason: "absolute path", .. }), "{e}");
    assert!(!target.exists());
    let e = s.refused(&tgz(&[E::File("////etc/x", b"", 0o644)]));
    assert!(matches!(e, ExtractError::UnsafePath { reason: "absolute path", .. }), "{e}");
}

#[test]
fn drive_and_backslash_paths_refused() {
    let s = setup();
    let e = s.refused(&tgz(&[E::File("package/C:../x", b"", 0o644)]));
    assert!(matches!(e, ExtractError::UnsafePath { reason: "drive-letter path", .. }), "{e}");
    let e = s.refused(&tgz(&[E::File("package\\..\\..\\x", b"", 0o644)]));
    assert!(matches!(e, ExtractError::UnsafePath { reason: "backslash in path", .. }), "{e}");
}

#[test]
fn symlink_pointing_out_refused_then_write_through_impossible() {
    let s = setup();
    // CVE-2021-32803 shape: a link out, then a file "inside" it.
    let e = s.refused(&tgz(&[
        E::Symlink("package/out", "../../../.."),
        E::File("package/out/pwned.txt", b"x", 0o644),
    ]));
    assert!(matches!(e, ExtractError::LinkEscapes { .. }), "{e}");
    let e = s.refused(&tgz(&[E::Symlink("package/passwd", "/etc/passwd")]));
    assert!(matches!(e, ExtractError::LinkEscapes { .. }), "{e}");
}

#[test]
fn hardlink_pointing_out_refused() {
    let s = setup();
    // CVE-2018-20834 / CVE-2026-26960 shape: a hardlink out, then a file of the same name.
    let e = s.refused(&tgz(&[
        E::Hardlink("package/h", "../../../etc/passwd"),
        E::File("package/h", b"overwrite", 0o644),
    ]));
    assert!(matches!(e, ExtractError::LinkEscapes { .. }), "{e}");
}

#[test]
fn links_inside_the_package_are_skipped_not_created() {
    let s = setup();
    let bytes = tgz(&[
        E::File("package/a.js", b"a", 0o644),
        E::Symlink("package/b.js", "a.js"),
        E::Hardlink("package/c.js", "package/a.js"),
    ]);
    let u = s.store.put_and_unpack(&sri(&bytes), &bytes).unwrap();
    let report = u.report.unwrap();
    assert_eq!(report.skipped.len(), 2);
    assert!(report.skipped.iter().all(|k| k.reason.contains("link")));
    assert!(fs::symlink_metadata(u.path.join("b.js")).is_err());
    assert!(fs::symlink_metadata(u.path.join("c.js")).is_err());
}

#[test]
fn device_and_fifo_entries_refused() {
    let s = setup();
    for (kind, name) in
        [(EntryType::Char, "character device"), (EntryType::Block, "block device"), (EntryType::Fifo, "fifo")]
    {
        let e = s.refused(&tgz(&[E::Special("package/dev", kind)]));
        match e {
            ExtractError::UnsupportedEntry { kind, .. } => assert_eq!(kind, name),
            other => panic!("{other}"),
        }
    }
}

#[test]
fn case_and_unicode_collisions_refused() {
    let s = setup();
    let e = s.refused(&tgz(&[
        E::File("package/README.md", b"1", 0o644),
        E::File("package/readme.md", b"2", 0o644),
    ]));
    assert!(matches!(e, ExtractError::CaseCollision { .. }), "{e}");
    // A directory and a file under differently-cased parents collide too.
    let e = s
        .refused(&tgz(&[E::File("package/Lib/a.js", b"1", 0o644), E::File("package/lib/b.js", b"2", 0o644)]));
    assert!(matches!(e, ExtractError::CaseCollision { .. }), "{e}");
    // NFC vs NFD spellings of é.
    let e = s.refused(&tgz(&[
        E::File("package/caf\u{e9}.js", b"1", 0o644),
        E::File("package/cafe\u{301}.js", b"2", 0o644),
    ]));
    assert!(matches!(e, ExtractError::CaseCollision { .. }), "{e}");
}

#[test]
fn integrity_mismatch_stores_nothing() {
    let s = setup();
    let good = tgz(&[E::File("package/a.js", b"a", 0o644)]);
    let evil = tgz(&[E::File("package/a.js", b"evil", 0o644)]);
    let before = s.listing();
    let i = sri(&good);
    let err = s.store.put_and_unpack(&i, &evil).unwrap_err();
    assert!(matches!(err, TarballError::IntegrityMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&i.to_string()));
    assert!(!s.store.has_tarball(&i));
    assert_eq!(s.listing(), before);

    // The streaming path: a mismatch at commit leaves nothing either.
    let mut pending = s.store.begin(&i).unwrap();
    for chunk in evil.chunks(7) {
        pending.write_chunk(chunk).unwrap();
    }
    assert!(matches!(pending.commit(), Err(TarballError::IntegrityMismatch { .. })));
    assert_eq!(s.listing(), before);

    // A sha1-only integrity (legacy shasum) is checked as well.
    let sha1 = Integrity::of_bytes(Algorithm::Sha1, &good);
    assert!(s.store.put_bytes(&sha1, &evil).is_err());
    assert!(s.store.put_bytes(&sha1, &good).is_ok());
}

#[test]
fn streamed_tarball_verifies_then_unpacks() {
    let s = setup();
    let bytes = tgz(&[E::File("package/a.js", b"streamed", 0o644)]);
    let i = sri(&bytes);
    let mut pending = s.store.begin(&i).unwrap();
    for chunk in bytes.chunks(10) {
        pending.write_chunk(chunk).unwrap();
    }
    let path = pending.commit().unwrap();
    assert_eq!(fs::read(path).unwrap(), bytes);
    let u = s.store.unpack(&i).unwrap();
    assert_eq!(fs::read(u.path.join("a.js")).unwrap(), b"streamed");
}

#[test]
fn gzip_bomb_refused() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_unpacked_bytes: 1 << 20, ..Limits::default() };
    let store = TarballStore::open(dir.path().join("store")).unwrap().with_limits(limits);
    let zeros = vec![0u8; 16 << 20];
    let bytes = tgz(&[E::File("package/bomb.bin", &zeros, 0o644)]);
    assert!(bytes.len() < 64 << 10, "a real bomb: {} compressed bytes", bytes.len());
    let i = sri(&bytes);
    let err = store.put_and_unpack(&i, &bytes).unwrap_err();
    match err {
        TarballError::Extract { source: ExtractError::UnpackedTooLarge { limit }, .. } => {
            assert_eq!(limit, 1 << 20)
        }
        other => panic!("{other}"),
    }
    assert!(store.unpacked(&i).is_none());
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn entry_count_and_compressed_size_capped() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_entries: 10, max_tarball_bytes: 4096, ..Limits::default() };
    let store = TarballStore::open(dir.path().join("store")).unwrap().with_limits(limits);
    let names: Vec<String> = (0..20).map(|n| format!("package/{n}.js")).collect();
    let entries: Vec<E<'_>> = names.iter().map(|n| E::File(n, b"", 0o644)).collect();
    let bytes = tgz(&entries);
    let err = store.put_and_unpack(&sri(&bytes), &bytes).unwrap_err();
    assert!(
        matches!(err, TarballError::Extract { source: ExtractError::TooManyEntries { limit: 10 }, .. }),
        "{err}"
    );
    let big: Vec<u8> = (0..10_000u32).flat_map(|n| n.to_le_bytes()).collect();
    let err = store.put_bytes(&sri(&big), &big).unwrap_err();
    assert!(matches!(err, TarballError::TooLarge { limit: 4096, .. }), "{err}");
}

#[test]
fn corrupt_gzip_is_a_clear_error() {
    let s = setup();
    let mut bytes = tgz(&[E::File("package/a.js", b"aaaaaaaaaaaaaaaaaaaaaaaaaa", 0o644)]);
    let n = bytes.len();
    bytes.truncate(n / 2);
    let e = s.refused(&bytes);
    assert!(matches!(e, ExtractError::Corrupt { .. }), "{e}");
}
