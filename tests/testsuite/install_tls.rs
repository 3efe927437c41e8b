//! `ims install` from the fixture registry over TLS on 127.0.0.1, its certificate signed by a
//! test CA that ims is told of only through npm's settings, and through an HTTP CONNECT proxy.
//! The child gets a cleared environment: the machine's own `SSL_CERT_FILE`,
//! `NODE_EXTRA_CA_CERTS`, proxies and `.npmrc` files must not decide the outcome.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fixtures::{Package, Registry, tls};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::support;

/// `ims install is-tiny` in a fresh project under `dir`, with only `env` (plus a `HOME` and
/// npm config files inside `dir`) and the project `.npmrc` `npmrc`.
fn install(dir: &Path, registry: &Registry, npmrc: &str, env: &[(&str, &str)]) -> std::process::Output {
    let project = dir.join("app");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("package.json"), "{\"name\":\"app\"}\n").unwrap();
    fs::write(project.join(".npmrc"), npmrc).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ims"));
    cmd.env_clear()
        .env("HOME", dir)
        .env("PATH", "/nonexistent")
        .env("NPM_CONFIG_USERCONFIG", dir.join("no-user-npmrc"))
        .env("NPM_CONFIG_GLOBALCONFIG", dir.join("no-global-npmrc"))
        .envs(env.iter().copied())
        .arg("--home")
        .arg(dir.join("home"))
        .arg("--registry")
        .arg(registry.url())
        .arg("install")
        .arg("--prefix")
        .arg(&project)
        .arg("is-tiny@1");
    support::output(&mut cmd)
}

async fn registry() -> Registry {
    let r = Registry::start_tls().await.unwrap();
    r.publish(Package::new("is-tiny", "1.0.0")).unwrap();
    assert!(r.url().starts_with("https://127.0.0.1:"), "{}", r.url());
    r
}

fn installed(dir: &Path) -> bool {
    dir.join("app/node_modules/is-tiny/package.json").is_file()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_fails_naming_what_was_trusted_and_cafile() {
    let registry = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let out = install(dir.path(), &registry, "", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("platform store") && err.contains("webpki"), "{err}");
    assert!(err.contains("hint:") && err.contains("cafile=") && err.contains("NODE_EXTRA_CA_CERTS"), "{err}");
    assert!(!installed(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cafile_in_npmrc_is_trusted() {
    let registry = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let npmrc = format!("cafile = \"{}\"\n", tls::ca_file().display());
    let out = install(dir.path(), &registry, &npmrc, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(installed(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_file_alone_and_node_extra_ca_certs_alone_are_trusted() {
    let registry = registry().await;
    let ca = tls::ca_file();
    for var in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"] {
        let dir = tempfile::tempdir().unwrap();
        let out = install(dir.path(), &registry, "", &[(var, ca.to_str().unwrap())]);
        assert!(out.status.success(), "{var}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(installed(dir.path()), "{var}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cafile_without_certificates_is_a_usage_error_naming_it() {
    let registry = registry().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-ca.pem");
    fs::write(&bad, "hello\n").unwrap();
    for file in [bad.clone(), dir.path().join("missing.pem")] {
        let out = install(dir.path(), &registry, &format!("cafile={}\n", file.display()), &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&file.display().to_string()) && err.contains("hint:"), "{err}");
    }
}

/// A tiny HTTP CONNECT proxy on 127.0.0.1 counting the tunnels it opened.
async fn connect_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(60), tunnel(client, &count)).await;
            });
        }
    });
    (url, tunnels)
}

async fn tunnel(client: TcpStream, count: &AtomicUsize) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut line = String::new();
    client.read_line(&mut line).await?;
    let target = match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["CONNECT", target, _] => target.to_owned(),
        _ => return client.get_mut().write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n").await,
    };
    loop {
        let mut header = String::new();
        if client.read_line(&mut header).await? == 0 || header == "\r\n" {
            break;
        }
    }
    let mut upstream = TcpStream::connect(&target).await?;
    count.fetch_add(1, Ordering::SeqCst);
    client.get_mut().write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_in_npmrc_carries_the_install_and_noproxy_bypasses_it() {
    let registry = registry().await;
    let (proxy, tunnels) = connect_proxy().await;
    let ca = tls::ca_file();
    let dir = tempfile::tempdir().unwrap();
    let npmrc = format!("cafile={}\nhttps-proxy={proxy}\n", ca.display());
    let out = install(dir.path(), &registry, &npmrc, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(installed(dir.path()));
    assert!(tunnels.load(Ordering::SeqCst) > 0, "the install went around the proxy");

    let (proxy, tunnels) = connect_proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let npmrc = format!("cafile={}\nhttps-proxy={proxy}\nnoproxy=127.0.0.1\n", ca.display());
    let out = install(dir.path(), &registry, &npmrc, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(installed(dir.path()));
    assert_eq!(tunnels.load(Ordering::SeqCst), 0, "noproxy=127.0.0.1 went through the proxy");
}
