//! Proptest-driven fuzzing of what the indexer parses from outside (issue 16, "a fuzz target
//! per decoder"): packuments from a registry, `ims/tarball` messages from a peer, tarballs from
//! either. Arbitrary bytes and mutations of valid inputs must give an error or a value, never
//! a panic; round-trippable formats must round-trip. 256 cases each in the suite
//! (`PROPTEST_CASES=N` for a long run by hand).

use indexer::model::Packument;
use indexer::tarball_peers::wire::{Message, TarballRequest, chunk};
use indexer::tarballs::{Limits, extract};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

/// Flip, cut and splice `valid` as `edits` say.
fn mutate(valid: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = valid.to_vec();
    for &(at, x, op) in edits {
        let n = out.len().max(1);
        match op % 4 {
            0 if !out.is_empty() => out[at % n] ^= x.max(1),
            1 => out.truncate(at % (n + 1)),
            2 => out.insert(at % (out.len() + 1), x),
            _ if !out.is_empty() => {
                out.remove(at % n);
            }
            _ => {}
        }
    }
    out
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
}

const PACKUMENT: &str = r#"{"_id":"a","name":"a","dist-tags":{"latest":"1.0.0"},
"versions":{"1.0.0":{"name":"a","version":"1.0.0","dependencies":{"b":"^1"},"bin":{"a":"x.js"},
"engines":{"node":">=8"},"os":["linux"],"scripts":{"postinstall":"x"},
"dist":{"integrity":"sha512-AAAA","shasum":"00","tarball":"http://r/a/-/a-1.0.0.tgz","fileCount":2,"unpackedSize":10}}},
"time":{"1.0.0":"2020-01-01T00:00:00.000Z"}}"#;

/// A valid gzipped tarball of a few files.
fn tarball() -> Vec<u8> {
    fixtures::Package::new("fuzz", "1.0.0").file("lib/a.js", b"module.exports = 1\n").tarball()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn packument_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Packument::from_slice(&bytes);
    }

    #[test]
    fn mutated_packuments_never_panic(edits in edits()) {
        prop_assert!(Packument::from_slice(PACKUMENT.as_bytes()).is_ok());
        let _ = Packument::from_slice(&mutate(PACKUMENT.as_bytes(), &edits));
    }

    #[test]
    fn tarball_messages_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn tarball_messages_round_trip_and_survive_mutation(
        id in any::<u32>(),
        kind in 0u8..5,
        body in proptest::collection::vec(any::<u8>(), 0..200),
        total in any::<u64>(),
        text in "[ -~]{0,40}",
        edits in edits(),
    ) {
        let msg = match kind {
            0 => Message::Request { id, request: TarballRequest { name: text.clone(), version: text.clone(), integrity: text } },
            1 => Message::Chunk { id, bytes: body },
            2 => Message::End { id, total },
            3 => Message::Missing { id, reason: text },
            _ => Message::Cancel { id },
        };
        let bytes = msg.encode();
        prop_assert_eq!(Message::decode(&bytes), Ok(msg.clone()));
        if let Message::Chunk { id, bytes: b } = &msg {
            prop_assert_eq!(&chunk(*id, b), &bytes);
        }
        let _ = Message::decode(&mutate(&bytes, &edits));
    }

    #[test]
    fn tar_reader_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..2000), gzip in any::<bool>()) {
        let dest = tempfile::tempdir().unwrap();
        let input = if gzip { gz(&bytes) } else { bytes };
        let _ = extract(&input, dest.path(), &Limits::default());
    }

    #[test]
    fn tar_reader_never_panics_on_mutated_tarballs(edits in edits(), inner in any::<bool>()) {
        let dest = tempfile::tempdir().unwrap();
        let valid = tarball();
        let input = if inner {
            // Mutate the tar stream itself, then compress it again: past gzip's CRC.
            gz(&mutate(&gunzip(&valid), &edits))
        } else {
            mutate(&valid, &edits)
        };
        if extract(&input, dest.path(), &Limits::default()).is_ok() {
            // Whatever it wrote stays inside the destination.
            for entry in walk(dest.path()) {
                prop_assert!(entry.starts_with(dest.path()));
            }
        }
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
