//! Proptest-driven fuzzing of the lockfile parser (issue 16: a committed `package-lock.json`
//! is hostile input): arbitrary text and mutations of a valid lockfile give an error or a
//! lockfile, never a panic; a parsed lockfile renders to text that parses back to the same
//! rendering. 256 cases each in the suite (`PROPTEST_CASES=N` for a long run by hand).

use std::path::Path;

use installer::lockfile::Lockfile;
use proptest::prelude::*;

const LOCK: &str = r#"{
  "name": "app",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {"name": "app", "version": "1.0.0", "dependencies": {"a": "^1.0.0"}},
    "node_modules/a": {"version": "1.0.0", "resolved": "http://r/a/-/a-1.0.0.tgz",
      "integrity": "sha512-AAAA", "bin": {"a": "x.js"}, "dependencies": {"b": "*"}},
    "node_modules/a/node_modules/b": {"version": "2.0.0", "optional": true, "os": ["linux"]},
    "node_modules/@s/c": {"version": "0.1.0", "dev": true, "hasInstallScript": true,
      "engines": {"node": ">=10"}}
  }
}"#;

fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

fn mutate(valid: &str, edits: &[(usize, char, u8)]) -> String {
    let mut out: Vec<char> = valid.chars().collect();
    for &(at, c, op) in edits {
        let n = out.len().max(1);
        match op % 3 {
            0 if !out.is_empty() => out[at % n] = c,
            1 => out.truncate(at % (n + 1)),
            _ => out.insert(at % (out.len() + 1), c),
        }
    }
    out.into_iter().collect()
}

fn edit() -> impl Strategy<Value = (usize, char, u8)> {
    let c = prop_oneof![Just('"'), Just('{'), Just('}'), Just('/'), Just('.'), Just(':'), any::<char>()];
    (any::<usize>(), c, any::<u8>())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lockfile_parser_never_panics(text in "\\PC{0,300}") {
        let _ = Lockfile::parse(Path::new("package-lock.json"), &text);
    }

    #[test]
    fn mutated_lockfiles_never_panic(edits in proptest::collection::vec(edit(), 1..8)) {
        let path = Path::new("package-lock.json");
        let valid = Lockfile::parse(path, LOCK).expect("the sample parses");
        let again = Lockfile::parse(path, &valid.render()).expect("a rendered lockfile parses");
        prop_assert_eq!(again.render(), valid.render());
        if let Ok(lock) = Lockfile::parse(path, &mutate(LOCK, &edits)) {
            let _ = lock.entries();
            let _ = Lockfile::parse(path, &lock.render());
        }
    }
}
