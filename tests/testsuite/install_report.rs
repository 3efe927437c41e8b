//! What `ims install` prints and how it exits, through the binary against a fixture registry
//! on 127.0.0.1: the scripts notice lists only packages that were laid out (not dev packages
//! under `--omit=dev`), and each kind of failure has its own documented exit code (`ims
//! --help`), with a hint.

use std::fs;
use std::path::Path;
use std::process::Output;

use fixtures::{Package, Registry};

use crate::support;

fn ims(home: &Path, registry: &str, project: &Path, args: &[&str]) -> Output {
    support::output(support::ims_install(home, registry, project).args(args).env("HOME", home))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const NOTICE: &str = "have install scripts that were not run";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_notice_leaves_out_dev_packages_under_omit_dev() {
    let registry = Registry::start().await.unwrap();
    registry
        .publish(Package::new("runtime-built", "1.0.0").script("postinstall", "echo ran > ran.txt"))
        .unwrap();
    registry.publish(Package::new("dev-built", "1.0.0").script("install", "echo ran > ran.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("package.json"),
        r#"{"name":"app","dependencies":{"runtime-built":"1"},"devDependencies":{"dev-built":"1"}}"#,
    )
    .unwrap();
    let home = dir.path().join("home");

    let out = ims(&home, &registry.url(), &project, &["--omit=dev"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!project.join("node_modules/dev-built").exists(), "--omit=dev lays out no dev package");
    let notice = err.lines().find(|l| l.contains(NOTICE)).unwrap_or_else(|| panic!("no notice in:\n{err}"));
    assert!(notice.starts_with("1 packages") && notice.contains("runtime-built@1.0.0"), "{notice}");
    assert!(!notice.contains("dev-built"), "a dev package that was not installed is listed: {notice}");

    // Without --omit=dev both are laid out and both are listed.
    let out = ims(&home, &registry.url(), &project, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let notice = err.lines().find(|l| l.contains(NOTICE)).unwrap_or_else(|| panic!("no notice in:\n{err}"));
    assert!(notice.contains("dev-built@1.0.0") && notice.contains("runtime-built@1.0.0"), "{notice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_failure_kinds_apart() {
    let registry = Registry::start().await.unwrap();
    registry.publish(Package::new("host", "1.0.0")).unwrap();
    registry.publish(Package::new("host", "2.0.0")).unwrap();
    registry.publish(Package::new("plugin", "1.0.0").peer_dependency("host", "^1")).unwrap();
    registry.publish(Package::new("good", "1.0.0")).unwrap();
    registry.publish(Package::new("tampered", "1.0.0")).unwrap();
    registry.add_tarball("tampered", "1.0.0", b"not the promised bytes".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    fs::create_dir_all(&project).unwrap();
    let home = dir.path().join("home");
    let write = |deps: &str| {
        fs::write(project.join("package.json"), format!(r#"{{"name":"app","dependencies":{{{deps}}}}}"#))
            .unwrap()
    };
    let code = |out: &Output| {
        let err = stderr(out);
        assert!(err.lines().any(|l| l.starts_with("hint: ")), "no hint in:\n{err}");
        (out.status.code().unwrap_or_else(|| panic!("killed:\n{err}")), err)
    };

    // Usage: a SPEC that is not one.
    write("");
    let (got, err) = code(&ims(&home, &registry.url(), &project, &["x@not a tag!"]));
    assert_eq!(got, 2, "{err}");
    // Conflict: npm's ERESOLVE.
    write(r#""host":"2","plugin":"1""#);
    let (got, err) = code(&ims(&home, &registry.url(), &project, &[]));
    assert_eq!(got, 5, "{err}");
    // Network: nothing listens on the registry's port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    write(r#""good":"1""#);
    let (got, err) = code(&ims(&home, &closed, &project, &[]));
    assert_eq!(got, 3, "{err}");
    // Integrity: the tarball is not the one the packument promises.
    write(r#""tampered":"1""#);
    let (got, err) = code(&ims(&home, &registry.url(), &project, &[]));
    assert_eq!(got, 4, "{err}");
    // Any other failure: a package that does not exist.
    write(r#""no-such-package":"1""#);
    let (got, err) = code(&ims(&home, &registry.url(), &project, &[]));
    assert_eq!(got, 1, "{err}");
    // Success.
    write(r#""good":"1""#);
    let out = ims(&home, &registry.url(), &project, &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The codes are documented.
    let help = support::ims(&home).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Exit codes") && help.contains("5 conflict"), "{help}");
}
