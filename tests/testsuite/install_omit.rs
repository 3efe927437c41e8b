//! npm's `--omit=dev|optional|peer` (repeatable), `--include`, `NODE_ENV=production` and
//! `--ignore-scripts` on `ims install` and `ims ci`: what only an omitted kind needs is left out
//! of `node_modules`, but stays in the lockfile.

use std::fs;
use std::path::Path;

use fixtures::{Package, Registry};

use crate::support::{self, output};

fn install(home: &Path, registry: &str, project: &Path, args: &[&str], env: &[(&str, &str)]) {
    let mut cmd = support::ims(home);
    cmd.arg("--registry").arg(registry).arg("install").arg("--prefix").arg(project).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = output(&mut cmd);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omitted_kinds_stay_out_of_node_modules() {
    let registry = Registry::start().await.unwrap();
    for p in [
        Package::new("om-opt", "1.0.0"),
        Package::new("om-peer", "1.0.0"),
        Package::new("om-dev", "1.0.0"),
        Package::new("om-main", "1.0.0").optional_dependency("om-opt", "1").peer_dependency("om-peer", "1"),
        Package::new("om-script", "1.0.0")
            .script("postinstall", "node -e \"require('fs').writeFileSync('ran','')\""),
    ] {
        registry.publish(p).unwrap();
    }
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = dir.path().join("app");
    let pkg = r#"{"name":"app","version":"1.0.0","dependencies":{"om-main":"1","om-script":"1"},"devDependencies":{"om-dev":"1"}}"#;
    let fresh = || {
        let _ = fs::remove_dir_all(&project);
        fs::create_dir_all(&project).unwrap();
        fs::write(project.join("package.json"), pkg).unwrap();
    };
    let has = |name: &str| project.join("node_modules").join(name).join("package.json").exists();

    fresh();
    install(&home, &url, &project, &[], &[]);
    assert!(has("om-opt") && has("om-peer") && has("om-dev") && has("om-main"));

    fresh();
    install(&home, &url, &project, &["--omit=optional", "--omit", "peer"], &[]);
    assert!(!has("om-opt") && !has("om-peer"), "optional and peer left out");
    assert!(has("om-main") && has("om-dev"));
    let lock = fs::read_to_string(project.join("package-lock.json")).unwrap();
    assert!(lock.contains("node_modules/om-opt") && lock.contains("node_modules/om-peer"), "still locked");

    fresh();
    install(&home, &url, &project, &[], &[("NODE_ENV", "production")]);
    assert!(!has("om-dev"), "NODE_ENV=production omits dev, as npm");
    fresh();
    install(&home, &url, &project, &["--include=dev"], &[("NODE_ENV", "production")]);
    assert!(has("om-dev"), "--include wins over the default omit");

    // --ignore-scripts: not even an allowed script runs.
    fresh();
    install(&home, &url, &project, &["--allow-scripts=om-script", "--ignore-scripts"], &[]);
    assert!(!project.join("node_modules/om-script/ran").exists());
    fresh();
    install(&home, &url, &project, &["--allow-scripts=om-script"], &[]);
    assert!(project.join("node_modules/om-script/ran").exists(), "the control: allowed, it runs");
}
