//! `ims install -g` through the binary against a fixture registry on 127.0.0.1: npm's global
//! layout (`PREFIX/lib/node_modules/<name>` with its dependencies below it, commands in
//! `PREFIX/bin`), the prefix from `--prefix` or `NPM_CONFIG_PREFIX`, upgrades replacing the old
//! commands, and a failed upgrade leaving the previous version working.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use fixtures::{Package, Registry};

use crate::support;

fn ims(home: &Path, registry: &Registry, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = support::ims(home);
    cmd.arg("--registry").arg(registry.url()).arg("install").args(args);
    cmd.env_remove("NPM_CONFIG_PREFIX").env_remove("npm_config_prefix");
    for (k, v) in env {
        cmd.env(k, v);
    }
    support::output(&mut cmd)
}

fn version(dir: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("package.json")).unwrap()).unwrap();
    v["version"].as_str().unwrap().to_owned()
}

fn tool(version: &str, cmd: &str) -> Package {
    Package::new("tool", version)
        .dependency("helper", "^1")
        .dev_dependency("never-published", "^9")
        .bin(cmd, "cli.js")
        .file(
            "cli.js",
            format!("#!/usr/bin/env node\nconsole.log('tool {version} ' + require('helper'));\n").as_bytes(),
        )
}

fn run_command(path: &Path) -> String {
    let out = Command::new(path).output().unwrap();
    assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_install_layout_bins_and_upgrade() {
    let registry = Registry::start().await.unwrap();
    registry.publish(Package::new("helper", "1.2.0")).unwrap();
    registry.publish(tool("1.0.0", "tool")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (home, prefix) = (dir.path().join("home"), dir.path().join("global"));

    let out = ims(&home, &registry, &["-g", "tool@1", "--prefix", prefix.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pkg = prefix.join("lib/node_modules/tool");
    assert_eq!(version(&pkg), "1.0.0");
    // Global style: the dependency lives below the package, not beside it; dev deps are not
    // even resolved (never-published does not exist).
    assert_eq!(version(&pkg.join("node_modules/helper")), "1.2.0");
    assert!(!prefix.join("lib/node_modules/helper").exists());
    let bin = prefix.join("bin/tool");
    assert_eq!(fs::read_link(&bin).unwrap(), Path::new("../lib/node_modules/tool/cli.js"));
    assert_eq!(run_command(&bin), "tool 1.0.0 helper@1.2.0");
    assert!(!prefix.join("package.json").exists() && !prefix.join("lib/package.json").exists());

    // An upgrade that renames the command: the old link goes, the new one works. The prefix
    // comes from npm's configuration this time.
    registry.publish(tool("2.0.0", "tool2")).unwrap();
    let out = ims(&home, &registry, &["-g", "tool@2"], &[("NPM_CONFIG_PREFIX", &prefix)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(version(&pkg), "2.0.0");
    assert!(fs::symlink_metadata(&bin).is_err(), "the old command is unlinked");
    assert_eq!(run_command(&prefix.join("bin/tool2")), "tool 2.0.0 helper@1.2.0");
    let leftovers: Vec<_> = fs::read_dir(prefix.join("lib/node_modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["tool"], "no staging or old folders left");

    // A failed upgrade (a dependency that does not exist) leaves 2.0.0 in place and working.
    registry.publish(tool("3.0.0", "tool2").dependency("missing-dep", "^1")).unwrap();
    let out = ims(&home, &registry, &["-g", "tool@3"], &[("NPM_CONFIG_PREFIX", &prefix)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing-dep") && err.contains("globally"), "{err}");
    assert_eq!(version(&pkg), "2.0.0");
    assert_eq!(run_command(&prefix.join("bin/tool2")), "tool 2.0.0 helper@1.2.0");
    let leftovers = fs::read_dir(prefix.join("lib/node_modules")).unwrap().count();
    assert_eq!(leftovers, 1, "the staging folder of the failed install is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_install_needs_a_spec() {
    let registry = Registry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out =
        ims(&dir.path().join("home"), &registry, &["-g", "--prefix", dir.path().to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs at least one SPEC"));
}

/// `ims uninstall -g NAME`: the package folder and its own commands go; a command another
/// package (or the user) owns stays; an unknown name changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_uninstall_removes_the_package_and_only_its_commands() {
    let registry = Registry::start().await.unwrap();
    registry
        .publish(Package::new("helper", "1.2.0").file("index.js", b"module.exports = 'helper@1.2.0';\n"))
        .unwrap();
    registry.publish(tool("1.0.0", "tool")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (home, prefix) = (dir.path().join("home"), dir.path().join("global"));
    let out = ims(&home, &registry, &["-g", "tool@1", "--prefix", prefix.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(prefix.join("bin/tool").exists());
    fs::write(prefix.join("bin/mine"), "#!/bin/sh\necho mine\n").unwrap();
    // `ims ls -g` as `npm ls -g` prints it: the lib folder, then each global package.
    let mut ls = support::ims(&home);
    ls.args(["ls", "-g", "--all", "--prefix"]).arg(&prefix);
    ls.env_remove("LC_ALL").env_remove("LC_CTYPE").env("LANG", "C.UTF-8");
    let out = support::output(&mut ls);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = format!(
        "{}\n└─┬ tool@1.0.0\n  └── helper@1.2.0\n\n",
        prefix.canonicalize().unwrap().join("lib").display()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);

    let mut cmd = support::ims(&home);
    cmd.args(["uninstall", "-g", "tool", "not-installed", "--prefix"]).arg(&prefix);
    let out = support::output(&mut cmd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!prefix.join("lib/node_modules/tool").exists());
    assert!(fs::symlink_metadata(prefix.join("bin/tool")).is_err(), "its command is gone");
    assert_eq!(fs::read_to_string(prefix.join("bin/mine")).unwrap(), "#!/bin/sh\necho mine\n");
}
