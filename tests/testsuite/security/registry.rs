//! Attacks from a hostile registry: see `SECURITY.md`.
//!
//! - Cross-registry index poisoning: what a hostile registry (a cloned project's `.npmrc`)
//!   answers is recorded in that registry's own index, never in the one the honest registry's
//!   installs read (`--prefer-offline`, within the max-age, or after a `304` to an ETag the
//!   hostile registry copied), nor in the shared index `ims seed` serves.
//! - Deadlines and caps: a packument or tarball trickled at 1 byte/s, and an endless packument,
//!   end in a clear error naming the URL within a bound, with memory bounded by the cap.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fixtures::{Package, Registry};
use indexer::source::{Open, open_index};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::support;

const HONEST: &[u8] = b"module.exports = 'honest lib';\n";
const EVIL: &[u8] = b"module.exports = 'EVIL';\n";

// --- A raw HTTP/1.1 server on 127.0.0.1, for registries that misbehave in ways the fixture
// registry will not (copied ETags, trickling, endless bodies).

/// How the raw server answers one request.
enum Reply {
    /// A whole response: status, extra headers, body.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// `200` with `Content-Length`, the body one byte per `every`.
    Trickle(Vec<u8>, Duration),
    /// `200`, chunked, a body that never ends (`{"name":"x","junk":"aaaa…`).
    Endless,
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// Start the raw server; its base URL (`http://127.0.0.1:PORT/`). It stops with the runtime.
async fn raw_server(handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let _ = answer(&mut sock, handler(&path)).await;
            });
        }
    });
    format!("http://{addr}/")
}

async fn answer(sock: &mut tokio::net::TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Full(status, headers, body) => {
            let mut head =
                format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(&body).await
        }
        Reply::Trickle(body, every) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            sock.write_all(head.as_bytes()).await?;
            for b in body {
                tokio::time::sleep(every).await;
                sock.write_all(&[b]).await?;
            }
            Ok(())
        }
        Reply::Endless => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            sock.write_all(head.as_bytes()).await?;
            let start = br#"{"name":"endless","junk":""#;
            sock.write_all(format!("{:x}\r\n", start.len()).as_bytes()).await?;
            sock.write_all(start).await?;
            sock.write_all(b"\r\n").await?;
            let chunk = vec![b'a'; 1 << 20];
            // Stops by itself: 4 GiB at most, far past any cap; the client hangs up first.
            for _ in 0..4096 {
                sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                sock.write_all(&chunk).await?;
                sock.write_all(b"\r\n").await?;
            }
            Ok(())
        }
    }
}

fn not_found() -> Reply {
    Reply::Full(404, vec![], b"{}".to_vec())
}

/// The document `{name}@1.0.0` served by the raw server: the tarball at `tarball`.
fn packument(name: &str, tarball: &str, integrity: &str) -> Vec<u8> {
    json!({
        "_id": name, "name": name, "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": name, "version": "1.0.0",
            "dist": {"integrity": integrity, "tarball": tarball}}},
        "time": {"1.0.0": "2020-01-01T00:00:00.000Z"},
    })
    .to_string()
    .into_bytes()
}

/// The ETag the fixture registry sends for `path` (read the way any client would).
async fn etag_of(base: &str, path: &str) -> String {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /{path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut res = Vec::new();
    sock.read_to_end(&mut res).await.unwrap();
    let text = String::from_utf8_lossy(&res);
    text.lines()
        .find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: ")))
        .expect("an ETag")
        .trim()
        .to_owned()
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Setup { dir: tempfile::tempdir().unwrap() }
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn project(&self, name: &str, deps: serde_json::Value) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        let pkg = json!({"name": name, "version": "1.0.0", "dependencies": deps});
        fs::write(p.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
        p
    }
    /// A cloned project whose `.npmrc` names `registry`.
    fn hostile_project(&self, name: &str, registry: &str, deps: serde_json::Value) -> PathBuf {
        let p = self.project(name, deps);
        fs::write(p.join(".npmrc"), format!("registry={registry}\n")).unwrap();
        p
    }
    /// `ims install` in `project`; `registry` as `--registry` when given (else its `.npmrc`).
    fn install(&self, registry: Option<&str>, project: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = support::ims(&self.home());
        if let Some(r) = registry {
            cmd.arg("--registry").arg(r);
        }
        cmd.args(args).arg("install").arg("--prefix").arg(project);
        for (k, v) in env {
            cmd.env(k, v);
        }
        support::output(&mut cmd)
    }
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The honest registry serves `lib@1.0.0`; the hostile one serves its own `lib@1.0.0` (evil
/// bytes, their integrity, a tarball URL of its own), `hostile-only@1.0.0`, and the honest
/// registry's ETag for `lib` (copied).
async fn registries() -> (Registry, String) {
    let honest = Registry::start().await.unwrap();
    honest.publish(Package::new("lib", "1.0.0").file("index.js", HONEST)).unwrap();
    honest.publish(Package::new("other", "1.0.0")).unwrap();
    let copied = etag_of(&honest.url(), "lib").await;
    let evil = Package::new("lib", "1.0.0").file("index.js", EVIL).tarball();
    let evil_sri =
        indexer::tarballs::Integrity::of_bytes(indexer::tarballs::Algorithm::Sha512, &evil).to_string();
    let only = Package::new("hostile-only", "1.0.0").tarball();
    let only_sri =
        indexer::tarballs::Integrity::of_bytes(indexer::tarballs::Algorithm::Sha512, &only).to_string();
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let b = base.clone();
    let handler: Handler = Arc::new(move |path: &str| {
        let me = b.get().cloned().unwrap_or_default();
        match path {
            "/lib" => Reply::Full(
                200,
                vec![("ETag".into(), copied.clone()), ("Content-Type".into(), "application/json".into())],
                packument("lib", &format!("{me}files/lib.tgz"), &evil_sri),
            ),
            "/hostile-only" => {
                Reply::Full(200, vec![], packument("hostile-only", &format!("{me}files/only.tgz"), &only_sri))
            }
            "/files/lib.tgz" => Reply::Full(200, vec![], evil.clone()),
            "/files/only.tgz" => Reply::Full(200, vec![], only.clone()),
            _ => not_found(),
        }
    });
    let url = raw_server(handler).await;
    base.set(url.clone()).unwrap();
    (honest, url)
}

fn lib_code(project: &Path) -> Vec<u8> {
    fs::read(project.join("node_modules/lib/index.js")).unwrap()
}

/// The issue's three reproductions on one home, hostile project first: after it, an install
/// from the honest registry gets the honest `lib` with `--prefer-offline`, online within the
/// max-age, and past the max-age (where the old code sent the hostile registry's copied ETag
/// to the honest registry and took its `304` as approval of the hostile record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registry_cannot_poison_the_honest_registrys_index() {
    let (honest, hostile) = registries().await;
    let s = Setup::new();
    let cloned = s.hostile_project("cloned", &hostile, json!({"lib": "1.0.0", "hostile-only": "1.0.0"}));
    ok(&s.install(None, &cloned, &[], &[]));
    assert_eq!(lib_code(&cloned), EVIL, "the hostile project gets what its registry serves");

    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 3] = [
        ("prefer-offline", &["--prefer-offline"], &[]),
        ("within-max-age", &[], &[]),
        ("etag-304", &[], &[("IMS_PACKUMENT_MAX_AGE", "0")]),
    ];
    for (name, args, env) in cases {
        let p = s.project(name, json!({"lib": "1.0.0"}));
        ok(&s.install(Some(&honest.url()), &p, args, env));
        assert_eq!(lib_code(&p), HONEST, "{name}: the honest install got the hostile registry's lib");
    }
}

/// The ETag reproduction alone, on a fresh home: the hostile registry's copied ETag is never
/// sent to the honest registry (the honest registry answers 200, never 304, to the honest
/// install), and the hostile record is not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copied_etag_is_never_sent_to_another_registry() {
    let (honest, hostile) = registries().await;
    let s = Setup::new();
    let cloned = s.hostile_project("cloned", &hostile, json!({"lib": "1.0.0"}));
    ok(&s.install(None, &cloned, &[], &[]));
    let p = s.project("honest", json!({"lib": "1.0.0"}));
    let out =
        s.install(Some(&honest.url()), &p, &["-v"], &[("IMS_PACKUMENT_MAX_AGE", "0"), ("RUST_LOG", "info")]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0 revalidated (304), 1 fetched"), "{err}");
    assert_eq!(lib_code(&p), HONEST);
}

/// Honest registry first, then the hostile project: the shared index — what `ims seed` serves
/// to peers (it opens exactly this index, `Open::Existing` on `$IMS_HOME/index`) and `ims view`
/// shows — holds only what its upstream sent: the honest `lib`, and nothing of the hostile
/// registry's (`hostile-only` went into the hostile registry's own index, and `ims index
/// --from-registry HOSTILE` into this home is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_index_and_seed_hold_only_their_upstreams_records() {
    let (honest, hostile) = registries().await;
    let s = Setup::new();
    let first = s.project("first", json!({"lib": "1.0.0"}));
    ok(&s.install(Some(&honest.url()), &first, &[], &[]));
    let cloned = s.hostile_project("cloned", &hostile, json!({"hostile-only": "1.0.0", "other": "1.0.0"}));
    // `other` exists only on the honest registry: the hostile install fails, after recording.
    let _ = s.install(None, &cloned, &[], &[]);
    let cloned2 = s.hostile_project("cloned2", &hostile, json!({"hostile-only": "1.0.0"}));
    ok(&s.install(None, &cloned2, &[], &[]));

    // Nor can `ims index` mix another registry's documents into it.
    let out =
        support::output(support::ims(&s.home()).args(["index", "--from-registry", &hostile, "hostile-only"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("one index per registry"), "{err}");

    let index = open_index(&s.home().join("index"), Open::Existing).await.unwrap();
    assert_eq!(index.upstream(), Some(honest.url().as_str()));
    assert!(index.versions("hostile-only").await.unwrap().is_none(), "a hostile record in the shared index");
    let lib = index.version("lib", "1.0.0").await.unwrap().unwrap();
    assert_eq!(lib.dist.integrity, honest.integrity_of("lib", "1.0.0"));
    // `ims view` reads the same index.
    let out = support::output(support::ims(&s.home()).args(["--offline", "view", "hostile-only"]));
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// The hostile project first, in a fresh home: the shared index is then the hostile
/// registry's, and `ims seed --upstream HONEST` refuses to serve it as the honest registry's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_refuses_an_index_another_registry_wrote() {
    let (honest, hostile) = registries().await;
    let s = Setup::new();
    let cloned = s.hostile_project("cloned", &hostile, json!({"hostile-only": "1.0.0"}));
    ok(&s.install(None, &cloned, &[], &[]));
    let index = open_index(&s.home().join("index"), Open::Existing).await.unwrap();
    assert_eq!(index.upstream(), Some(hostile.as_str()), "the first writer's registry owns the index");
    drop(index);
    let out = support::output(support::ims(&s.home()).args([
        "--no-dht",
        "seed",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &honest.url(),
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("the index records {hostile}")), "{err}");
}

// --- Deadlines and caps.

/// `ims install NAME` from `registry` with short deadlines; returns the output and how long it
/// took.
fn install_with_deadlines(s: &Setup, registry: &str, spec: &str) -> (Output, Duration) {
    let p = s.project("app", json!({}));
    let started = Instant::now();
    let mut cmd = support::ims(&s.home());
    cmd.args(["--registry", registry, "install", "--prefix"]).arg(&p).arg(spec);
    cmd.env("NPM_CONFIG_FETCH_TIMEOUT", "3000").env("NPM_CONFIG_FETCH_RETRIES", "0");
    cmd.env("IMS_FETCH_IDLE_TIMEOUT", "1500");
    let out = support::output(&mut cmd);
    (out, started.elapsed())
}

/// A packument trickled at one byte a second (each byte well within the idle deadline) ends
/// at the whole-request deadline, with an error naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_packument_hits_the_deadline() {
    let body = packument("slow", "http://127.0.0.1:9/slow.tgz", "sha512-AAAA");
    let url = raw_server(Arc::new(move |path: &str| match path {
        "/slow" => Reply::Trickle(body.clone(), Duration::from_secs(1)),
        _ => not_found(),
    }))
    .await;
    let s = Setup::new();
    let (out, took) = install_with_deadlines(&s, &url, "slow");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(err.contains(&format!("{url}slow")) && err.contains("fetch-timeout"), "{err}");
}

/// A tarball trickled at one byte a second ends at the whole-request deadline too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_tarball_hits_the_deadline() {
    let tarball = Package::new("slowtgz", "1.0.0").tarball();
    let sri =
        indexer::tarballs::Integrity::of_bytes(indexer::tarballs::Algorithm::Sha512, &tarball).to_string();
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let b = base.clone();
    let url = raw_server(Arc::new(move |path: &str| {
        let me = b.get().cloned().unwrap_or_default();
        match path {
            "/slowtgz" => Reply::Full(200, vec![], packument("slowtgz", &format!("{me}t/slowtgz.tgz"), &sri)),
            "/t/slowtgz.tgz" => Reply::Trickle(tarball.clone(), Duration::from_secs(1)),
            _ => not_found(),
        }
    }))
    .await;
    base.set(url.clone()).unwrap();
    let s = Setup::new();
    let (out, took) = install_with_deadlines(&s, &url, "slowtgz");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(err.contains(&format!("{url}t/slowtgz.tgz")) && err.contains("fetch-timeout"), "{err}");
    assert_eq!(
        fs::read_dir(s.home().join("store/tmp")).map(|d| d.count()).unwrap_or(0),
        0,
        "no partial tarball"
    );
}

/// A server that sends the headers and then nothing: the idle deadline, well before the total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_packument_hits_the_idle_deadline() {
    let url = raw_server(Arc::new(|path: &str| match path {
        "/stall" => Reply::Trickle(b"{}".to_vec(), Duration::from_secs(3600)),
        _ => not_found(),
    }))
    .await;
    let s = Setup::new();
    let (out, took) = install_with_deadlines(&s, &url, "stall");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(err.contains(&format!("{url}stall")) && err.contains("idle deadline"), "{err}");
}

/// An endless packument is cut off at the document cap (64 MiB): a clear error naming the URL,
/// quickly, and the process's memory stays near the cap instead of growing with the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_packument_is_capped() {
    let url = raw_server(Arc::new(|path: &str| match path {
        "/endless" => Reply::Endless,
        _ => not_found(),
    }))
    .await;
    let s = Setup::new();
    let p = s.project("app", json!({}));
    let started = Instant::now();
    let mut cmd = support::ims(&s.home());
    cmd.args(["--registry", &url, "install", "--prefix"]).arg(&p).arg("endless");
    cmd.env("NPM_CONFIG_FETCH_RETRIES", "0");
    // Peak memory (VmHWM) of the child, read from /proc while it runs.
    let child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let peak = tokio::task::spawn_blocking(move || {
        let mut peak_kb = 0u64;
        loop {
            let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { break peak_kb };
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
            if status.contains("State:\tZ") {
                break peak_kb;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let out = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
    let peak_kb = peak.await.unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(err.contains(&format!("{url}endless")) && err.contains("byte cap"), "{err}");
    assert!(peak_kb < 400 * 1024, "peak memory {peak_kb} kB");
}
