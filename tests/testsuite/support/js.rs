//! Shared by the JS-interop tests of several crates (each includes this file with `#[path]`, so no
//! test-support crate or dependency cycle is needed): the repository root, and the pinned JS reference
//! packages installed from the committed `tests/js/package-lock.json` when they are missing.

#![allow(dead_code)] // each includer uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root: the nearest folder above the including crate that holds
/// `tests/js/package-lock.json`.
pub(crate) fn repo() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    loop {
        if dir.join("tests/js/package-lock.json").is_file() {
            return dir.to_path_buf();
        }
        dir = dir.parent().expect("the repository root holds tests/js/package-lock.json");
    }
}

/// Makes sure the pinned JS packages are installed (`npm ci --prefix tests/js` when the package
/// `probe` is missing) and returns the `node_modules` folder, for `NODE_PATH`.
pub(crate) fn ensure(probe: &str) -> PathBuf {
    let js = repo().join("tests/js");
    let modules = js.join("node_modules");
    if modules.join(probe).is_dir() {
        return modules;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
        .arg(&js)
        .status()
        .expect("npm must be installed to run the JS interop tests");
    assert!(status.success(), "npm ci --prefix tests/js failed");
    modules
}

/// Starts `node SCRIPT ARGS...` (`script` relative to the repository root) with the reference
/// packages on `NODE_PATH` — installing them first if `probe` is missing — and stdin and stdout piped.
pub(crate) fn spawn_node(script: &str, args: &[&str], probe: &str) -> std::process::Child {
    let modules = ensure(probe);
    Command::new("node")
        .arg(repo().join(script))
        .args(args)
        .env("NODE_PATH", modules)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("node must be installed to run the JS interop tests")
}
