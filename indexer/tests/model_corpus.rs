//! Every real packument of the corpus (`fixtures/npm/packuments`) parses, and its abbreviated
//! form agrees with the upstream JSON field by field wherever upstream has the normal shape.

use std::io::Read;
use std::path::PathBuf;

use indexer::model::{AbbreviatedPackument, Packument};
use serde_json::Value;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/npm/packuments");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let name = file.strip_suffix(".json.gz").unwrap().replace("%2f", "/");
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_end(&mut json).unwrap();
        out.push((name, json));
    }
    out.sort();
    assert_eq!(out.len(), 216, "the corpus has 216 packuments");
    out
}

/// Fields of the abbreviated form that upstream carries verbatim when they have the normal
/// shape (non-empty object or list, or a string).
const VERBATIM: [&str; 13] = [
    "dependencies",
    "optionalDependencies",
    "peerDependencies",
    "devDependencies",
    "acceptDependencies",
    "peerDependenciesMeta",
    "bin",
    "directories",
    "engines",
    "funding",
    "cpu",
    "os",
    "deprecated",
];

fn normal_shape(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty() && a.iter().all(Value::is_string),
        Value::String(_) => true,
        _ => false,
    }
}

#[test]
fn every_corpus_packument_parses_and_abbreviates_faithfully() {
    let mut versions = 0;
    let mut compared = 0;
    for (name, json) in corpus() {
        let p = Packument::from_slice(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        let raw: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(p.name, name);
        assert!(p.invalid_versions.is_empty(), "{name}: {:?}", p.invalid_versions);
        let raw_versions = raw["versions"].as_object().unwrap();
        assert_eq!(p.versions.len(), raw_versions.len(), "{name}");
        assert!(p.dist_tags.contains_key("latest"), "{name} has latest");

        let corgi = serde_json::to_value(p.abbreviated()).unwrap();
        let back: AbbreviatedPackument = serde_json::from_value(corgi.clone()).unwrap();
        assert_eq!(back, p.abbreviated(), "{name}: abbreviated JSON round trip");

        for (v, raw_m) in raw_versions {
            versions += 1;
            let m = &p.versions[v];
            assert_eq!(&m.version, v, "{name}@{v}");
            assert!(m.dist.best_integrity().is_some(), "{name}@{v} has an integrity");
            let c = &corgi["versions"][v];
            for field in VERBATIM {
                let Some(r) = raw_m.get(field) else { continue };
                let comparable =
                    if field.ends_with("ependencies") { is_string_map(r) } else { normal_shape(r) };
                if comparable {
                    assert_eq!(c.get(field), Some(r), "{name}@{v} {field}");
                    compared += 1;
                }
            }
            for d in ["integrity", "shasum", "tarball"] {
                assert_eq!(c["dist"].get(d), raw_m["dist"].get(d), "{name}@{v} dist.{d}");
            }
            let raw_scripts = raw_m.get("scripts").and_then(Value::as_object);
            let installs = raw_scripts
                .is_some_and(|s| ["preinstall", "install", "postinstall"].iter().any(|k| s.contains_key(*k)));
            assert_eq!(c.get("hasInstallScript").is_some(), installs, "{name}@{v} hasInstallScript");
        }
    }
    assert_eq!(versions, 22_439);
    assert!(compared > 35_000, "compared {compared} fields");
}

fn is_string_map(v: &Value) -> bool {
    v.as_object().is_some_and(|m| !m.is_empty() && m.values().all(Value::is_string))
}

#[test]
fn array_dependencies_are_objectified() {
    let (_, json) = corpus().into_iter().find(|(n, _)| n == "mime").unwrap();
    let p = Packument::from_slice(&json).unwrap();
    // mime 1.0.0 has `"dependencies": []`: no dependencies, not a failure.
    assert!(p.versions["1.0.0"].dependencies.is_empty());
}
