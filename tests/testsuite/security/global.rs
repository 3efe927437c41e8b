//! Attacks through a global install (`-g`): see `SECURITY.md`. A global package must not take
//! over a command another package (or the user) owns, grant install scripts to its own
//! dependencies, or be installed from a registry a cloned project's `.npmrc` names; and
//! installing a bin must never change the shared store.

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;
use std::process::{Command, Output};

use fixtures::{Package, Registry};
use indexer::tarballs::{Integrity, TarballStore};

use crate::support;

/// `ims --registry R install -g ARGS --prefix PREFIX`, in `cwd`.
fn global(home: &Path, registry: Option<&Registry>, prefix: &Path, cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = support::ims(home);
    if let Some(r) = registry {
        cmd.arg("--registry").arg(r.url());
    }
    cmd.arg("install").arg("-g").arg("--prefix").arg(prefix).args(args).current_dir(cwd);
    cmd.env_remove("NPM_CONFIG_PREFIX").env_remove("npm_config_prefix");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    support::output(cmd)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tool(version: &str, bins: &[&str]) -> Package {
    let mut p = Package::new("tool", version);
    for b in bins {
        p = p.bin(b, "cli.js");
    }
    // After the bins: `bin` adds a placeholder file at its path.
    p.file("cli.js", b"#!/bin/sh\necho tool\n")
}

/// npm's EEXIST: `-g` does not replace a `PREFIX/bin/<cmd>` that is the user's own file or
/// another package's link (the install fails before anything changes, the previous version
/// stays); `--force` replaces it. An upgrade removes only the links into the package itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_bins_owned_by_something_else_are_not_replaced() {
    let registry = Registry::start().await.unwrap();
    registry.publish(tool("1.0.0", &["tool", "extra"])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (home, prefix, cwd) = (dir.path().join("home"), dir.path().join("g"), dir.path().to_path_buf());
    let bin = prefix.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("tool"), "#!/bin/sh\necho the user's own tool\n").unwrap();

    let out = run(&mut global(&home, Some(&registry), &prefix, &cwd, &["tool@1"]));
    assert!(!out.status.success(), "replaced the user's own PREFIX/bin/tool");
    let err = stderr(&out);
    assert!(err.contains("EEXIST") && err.contains("bin/tool") && err.contains("--force"), "{err}");
    assert_eq!(fs::read_to_string(bin.join("tool")).unwrap(), "#!/bin/sh\necho the user's own tool\n");
    assert!(!prefix.join("lib/node_modules/tool").exists(), "installed although it failed");
    assert!(fs::symlink_metadata(bin.join("extra")).is_err());
    let leftovers = fs::read_dir(prefix.join("lib/node_modules")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "the staging folder is removed");

    // Another package's link: refused the same way.
    fs::remove_file(bin.join("tool")).unwrap();
    symlink("../lib/node_modules/other/cli.js", bin.join("tool")).unwrap();
    let out = run(&mut global(&home, Some(&registry), &prefix, &cwd, &["tool@1"]));
    assert!(!out.status.success(), "replaced another package's command");
    assert!(stderr(&out).contains("EEXIST"), "{}", stderr(&out));
    assert_eq!(fs::read_link(bin.join("tool")).unwrap(), Path::new("../lib/node_modules/other/cli.js"));

    // --force replaces it, as npm's does.
    let out = run(&mut global(&home, Some(&registry), &prefix, &cwd, &["tool@1", "--force"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_link(bin.join("tool")).unwrap(), Path::new("../lib/node_modules/tool/cli.js"));

    // An upgrade dropping `extra`, whose link someone re-pointed at another package: that
    // link is not ours any more, so it stays; `tool` (ours) is replaced without --force.
    fs::remove_file(bin.join("extra")).unwrap();
    symlink("../lib/node_modules/other/extra.js", bin.join("extra")).unwrap();
    registry.publish(tool("2.0.0", &["tool"])).unwrap();
    let out = run(&mut global(&home, Some(&registry), &prefix, &cwd, &["tool@2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_link(bin.join("extra")).unwrap(), Path::new("../lib/node_modules/other/extra.js"));
    assert_eq!(fs::read_link(bin.join("tool")).unwrap(), Path::new("../lib/node_modules/tool/cli.js"));
}

/// A global package listing its dependency in its own `allowScripts` used to get that
/// dependency's `postinstall` run with no `--allow-scripts`. Only the user grants scripts:
/// nothing runs, the summary lists it as not run, and it counts the dependency installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_package_cannot_grant_scripts_to_its_dependencies() {
    let registry = Registry::start().await.unwrap();
    registry.publish(Package::new("helper", "1.0.0").script("postinstall", "echo ran > ran.txt")).unwrap();
    registry
        .publish(
            tool("1.0.0", &["tool"])
                .dependency("helper", "^1")
                .field("allowScripts", serde_json::json!({ "helper": true })),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (home, prefix) = (dir.path().join("home"), dir.path().join("g"));
    let out = run(&mut global(&home, Some(&registry), &prefix, dir.path(), &["tool@1"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let helper = prefix.join("lib/node_modules/tool/node_modules/helper");
    assert!(helper.join("package.json").is_file());
    assert!(!helper.join("ran.txt").exists(), "the package's own allowScripts granted a script");
    let err = stderr(&out);
    assert!(err.contains("helper@1.0.0") && err.contains("not run"), "{err}");
    assert!(err.contains("(1 dependencies"), "the summary counts the dependency: {err}");

    // The user's flag does grant it.
    let out = run(&mut global(
        &home,
        Some(&registry),
        &prefix,
        dir.path(),
        &["tool@1", "--allow-scripts", "helper"],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(helper.join("ran.txt").is_file());
}

/// `-g` run inside a cloned project: the project's `.npmrc` (a hostile registry) is not read,
/// as npm ignores project configuration in global mode; the user's `.npmrc` decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_installs_ignore_the_project_npmrc() {
    let honest = Registry::start().await.unwrap();
    honest.publish(tool("1.0.0", &["tool"])).unwrap();
    let hostile = Registry::start().await.unwrap();
    hostile.publish(tool("1.0.0", &["tool"]).file("evil.js", b"pwned")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (home, prefix, user) = (dir.path().join("home"), dir.path().join("g"), dir.path().join("user"));
    let cloned = dir.path().join("cloned");
    fs::create_dir_all(&cloned).unwrap();
    fs::create_dir_all(&user).unwrap();
    fs::write(cloned.join("package.json"), "{}").unwrap();
    fs::write(cloned.join(".npmrc"), format!("registry={}\n", hostile.url())).unwrap();
    fs::write(user.join(".npmrc"), format!("registry={}\n", honest.url())).unwrap();
    // The prefix from the environment, not --prefix: the folder -g runs in is the project.
    let mut cmd = support::ims(&home);
    cmd.args(["install", "-g", "tool@1"]).current_dir(&cloned).env("NPM_CONFIG_PREFIX", &prefix);
    cmd.env("HOME", &user)
        .env("NPM_CONFIG_USERCONFIG", user.join(".npmrc"))
        .env("NPM_CONFIG_GLOBALCONFIG", user.join("no-global-npmrc"));
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(hostile.total_hits(), 0, "the project's .npmrc registry was used for -g");
    assert!(honest.total_hits() > 0);
    let pkg = prefix.join("lib/node_modules/tool");
    assert!(pkg.join("cli.js").is_file() && !pkg.join("evil.js").exists());
}

/// The store is hardlinked into `node_modules`: making a bin executable must not chmod the
/// store's inode (every project linked to it would change). The store file keeps its mode and
/// contents; the installed bin, in a project and globally, is executable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_a_bin_executable_never_changes_the_store() {
    let registry = Registry::start().await.unwrap();
    registry.publish(tool("1.0.0", &["tool"])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("package.json"), r#"{"name":"app"}"#).unwrap();
    let out = support::output(support::ims_install(&home, &registry.url(), &project).arg("tool@1"));
    assert!(out.status.success(), "{}", stderr(&out));

    let store = TarballStore::open(home.join("store")).unwrap();
    let integrity: Integrity = registry.integrity_of("tool", "1.0.0").unwrap().parse().unwrap();
    let stored = store.unpacked(&integrity).expect("unpacked in the store").join("cli.js");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&stored), 0o644, "the store's file was chmodded");
    assert_eq!(fs::read(&stored).unwrap(), b"#!/bin/sh\necho tool\n");
    let installed = project.join("node_modules/tool/cli.js");
    assert_eq!(mode(&installed) & 0o111, 0o111, "the installed bin is executable");
    let out = Command::new(project.join("node_modules/.bin/tool")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tool");

    let prefix = dir.path().join("g");
    let out = run(&mut global(&home, Some(&registry), &prefix, dir.path(), &["tool@1"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&stored), 0o644, "the store's file was chmodded by -g");
    assert_eq!(fs::read(&stored).unwrap(), b"#!/bin/sh\necho tool\n");
    let out = Command::new(prefix.join("bin/tool")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tool");
}
