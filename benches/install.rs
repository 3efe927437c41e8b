//! Install benchmark: `ims install` against npm (and pnpm, yarn 1 and bun when they are on
//! PATH) installing the corpus roots from the same fixture registry on 127.0.0.1 serving the
//! same bytes, in four scenarios (spec §3.4): cold (empty caches, no lockfile), warm cache
//! without lockfile, warm cache with lockfile, and a no-op re-run. Prints the median wall
//! time of several runs and each tool's ratio to ims. Run with `cargo bench --bench install`.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fixtures::{Corpus, Registry};

const RUNS: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Cold,
    WarmNoLock,
    WarmLock,
    Noop,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Cold => "cold",
            Scenario::WarmNoLock => "warm, no lockfile",
            Scenario::WarmLock => "warm, lockfile",
            Scenario::Noop => "no-op re-run",
        }
    }
}

/// Builds the install command: (project, cache dir, registry URL, use the lockfile).
type InstallCommand = Box<dyn Fn(&Path, &Path, &str, bool) -> Command>;

struct Tool {
    name: &'static str,
    /// Command and arguments for an install in the project folder.
    install: InstallCommand,
    lockfile: &'static str,
}

fn on_path(bin: &str) -> bool {
    Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn tools() -> Vec<Tool> {
    let mut tools = vec![Tool {
        name: "ims",
        install: Box::new(|project, cache, registry, _locked| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ims"));
            c.arg("--home").arg(cache).arg("--registry").arg(registry).arg("install").arg("--prefix").arg(project);
            c
        }),
        lockfile: "package-lock.json",
    }];
    if on_path("npm") {
        tools.push(Tool {
            name: "npm",
            install: Box::new(|project, cache, registry, locked| {
                let mut c = Command::new("npm");
                c.arg(if locked { "ci" } else { "install" })
                    .args(["--registry", registry, "--cache"])
                    .arg(cache)
                    .args(["--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error"])
                    .current_dir(project);
                c
            }),
            lockfile: "package-lock.json",
        });
    }
    if on_path("pnpm") {
        tools.push(Tool {
            name: "pnpm",
            install: Box::new(|project, cache, registry, locked| {
                let mut c = Command::new("pnpm");
                c.arg("install").args(["--registry", registry, "--store-dir"]).arg(cache.join("store"));
                c.arg("--ignore-scripts").arg(if locked { "--frozen-lockfile" } else { "--no-frozen-lockfile" });
                c.current_dir(project);
                c
            }),
            lockfile: "pnpm-lock.yaml",
        });
    }
    if on_path("bun") {
        tools.push(Tool {
            name: "bun",
            install: Box::new(|project, cache, registry, _locked| {
                let mut c = Command::new("bun");
                c.args(["install", "--ignore-scripts", "--registry", registry, "--cache-dir"]).arg(cache);
                c.current_dir(project);
                c
            }),
            lockfile: "bun.lock",
        });
    }
    tools
}

fn fresh_project(dir: &Path, corpus: &Corpus) -> PathBuf {
    let project = dir.join("app");
    let _ = fs::remove_dir_all(&project);
    fs::create_dir_all(&project).unwrap();
    let deps: serde_json::Map<String, serde_json::Value> =
        corpus.roots().iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    let pkg = serde_json::json!({ "name": "app", "version": "1.0.0", "dependencies": deps });
    fs::write(project.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
    project
}

fn run(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{:?}: {}", cmd, String::from_utf8_lossy(&out.stderr));
    start.elapsed()
}

/// One timed run of `scenario` (setup not timed).
fn measure(tool: &Tool, scenario: Scenario, dir: &Path, corpus: &Corpus, registry: &str) -> Duration {
    let cache = dir.join(format!("cache-{}", tool.name));
    let project = fresh_project(dir, corpus);
    if scenario == Scenario::Cold {
        let _ = fs::remove_dir_all(&cache);
    } else {
        // Warm the cache (and produce a lockfile) with an untimed install.
        run(&mut (tool.install)(&project, &cache, registry, false));
        match scenario {
            Scenario::WarmNoLock => {
                let _ = fs::remove_dir_all(project.join("node_modules"));
                let _ = fs::remove_file(project.join(tool.lockfile));
            }
            Scenario::WarmLock => {
                let _ = fs::remove_dir_all(project.join("node_modules"));
            }
            _ => {}
        }
    }
    let locked = scenario == Scenario::WarmLock;
    run(&mut (tool.install)(&project, &cache, registry, locked))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let corpus = Corpus::load().unwrap();
    let registry = runtime.block_on(Registry::with_corpus(&corpus)).unwrap();
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let tools = tools();
    println!("install of the corpus roots ({} packages), median of {RUNS} runs", corpus.resolved().len());
    for scenario in [Scenario::Cold, Scenario::WarmNoLock, Scenario::WarmLock, Scenario::Noop] {
        let mut medians = Vec::new();
        for tool in &tools {
            let mut times: Vec<Duration> =
                (0..RUNS).map(|_| measure(tool, scenario, dir.path(), &corpus, &url)).collect();
            times.sort();
            medians.push((tool.name, times[RUNS / 2]));
        }
        let ims = medians[0].1.as_secs_f64();
        for (name, t) in &medians {
            println!(
                "{:<18} {:<5} {:>8.3} s   {:>6.2}x ims",
                scenario.name(),
                name,
                t.as_secs_f64(),
                t.as_secs_f64() / ims
            );
        }
    }
    for missing in ["pnpm", "bun"].iter().filter(|b| !on_path(b)) {
        println!("{missing}: not on PATH, not measured");
    }
    println!("yarn 1: not wired into this bench yet");
}
