//! Install benchmark: `ims install` against npm, pnpm, yarn 1 and bun installing the corpus
//! roots from the same fixture registry on 127.0.0.1 serving the same bytes, in four
//! scenarios (spec §3.4): cold (empty caches, no lockfile), warm cache without lockfile, warm
//! cache with lockfile, and a no-op re-run. Prints the median wall time of several runs
//! (`IMS_BENCH_RUNS`, default 3) and each tool's ratio to ims.
//!
//! pnpm, yarn 1 and bun are npm packages pinned in `benches/clients/package-lock.json`; the
//! bench runs `npm ci --ignore-scripts` there when they are missing (bun's binary comes from
//! its optional `@oven/bun-linux-*` package, so its postinstall is not needed). Each tool gets
//! its own `HOME`, cache and config per scenario, the registry set both on the command line
//! and in the project's `.npmrc` / `bunfig.toml`, and a dead HTTP(S) proxy for everything but
//! 127.0.0.1, so none of them can reach a public registry; the fixture registry's request
//! counts are printed as proof they asked it. Run with `cargo bench --bench install`;
//! `IMS_BENCH_TOOLS=ims,bun` measures only the tools named (ims always: the ratios are to it).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fixtures::{Corpus, Registry};

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

/// Everything a tool's install command is built from.
struct Env<'a> {
    project: &'a Path,
    /// The tool's own caches and `HOME` (emptied for a cold run).
    state: &'a Path,
    registry: &'a str,
    /// Install exactly from the lockfile (`npm ci`, `--frozen-lockfile`).
    locked: bool,
}

type InstallCommand = Box<dyn Fn(&Env) -> Command>;

struct Tool {
    name: &'static str,
    install: InstallCommand,
    lockfile: &'static str,
}

/// A command isolated from the user's configuration and from the network beyond 127.0.0.1.
fn isolated(program: &Path, env: &Env) -> Command {
    let mut c = Command::new(program);
    let home = env.state.join("home");
    fs::create_dir_all(&home).unwrap();
    c.current_dir(env.project)
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("NPM_CONFIG_USERCONFIG", home.join(".npmrc"))
        .env("npm_config_registry", env.registry)
        .env("npm_config_update_notifier", "false")
        .env("YARN_DISABLE_SELF_UPDATE_CHECK", "true")
        .env("CI", "true")
        .env_remove("IMS_HOME")
        .env_remove("IMS_REGISTRY");
    // Anything not on loopback goes to a dead proxy and fails at once.
    for (k, v) in [
        ("HTTP_PROXY", "http://127.0.0.1:9"),
        ("HTTPS_PROXY", "http://127.0.0.1:9"),
        ("NO_PROXY", "127.0.0.1,localhost"),
    ] {
        c.env(k, v).env(k.to_ascii_lowercase(), v);
    }
    c
}

fn works(program: &Path) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// pnpm, yarn and bun from `benches/clients` (installed with `npm ci` when missing).
fn clients() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/clients");
    if !dir.join("node_modules/.bin/pnpm").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "npm ci --prefix benches/clients failed");
    }
    dir.join("node_modules")
}

fn bun_binary(modules: &Path) -> Option<PathBuf> {
    [
        "bun-linux-x64",
        "bun-linux-x64-baseline",
        "bun-linux-aarch64",
        "bun-linux-x64-musl",
        "bun-linux-aarch64-musl",
    ]
    .iter()
    .map(|p| modules.join("@oven").join(p).join("bin/bun"))
    .find(|b| works(b))
}

fn tools() -> Vec<Tool> {
    let modules = clients();
    let mut tools = vec![Tool {
        name: "ims",
        install: Box::new(|e| {
            let mut c = isolated(Path::new(env!("CARGO_BIN_EXE_ims")), e);
            c.arg("--home").arg(e.state.join("ims")).args(["--registry", e.registry, "install"]);
            c
        }),
        lockfile: "package-lock.json",
    }];
    tools.push(Tool {
        name: "npm",
        install: Box::new(|e| {
            let mut c = isolated(Path::new("npm"), e);
            c.arg(if e.locked { "ci" } else { "install" }).args(["--registry", e.registry, "--cache"]);
            c.arg(e.state.join("npm-cache"));
            c.args(["--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]);
            c
        }),
        lockfile: "package-lock.json",
    });
    let pnpm = modules.join(".bin/pnpm");
    tools.push(Tool {
        name: "pnpm",
        install: Box::new(move |e| {
            let mut c = isolated(&pnpm, e);
            c.args(["install", "--registry", e.registry, "--store-dir"]).arg(e.state.join("pnpm-store"));
            c.arg("--cache-dir").arg(e.state.join("pnpm-cache"));
            c.args(["--ignore-scripts", "--reporter=silent"]);
            c.arg(if e.locked { "--frozen-lockfile" } else { "--no-frozen-lockfile" });
            c
        }),
        lockfile: "pnpm-lock.yaml",
    });
    let yarn = modules.join(".bin/yarn");
    tools.push(Tool {
        name: "yarn 1",
        install: Box::new(move |e| {
            let mut c = isolated(&yarn, e);
            c.args(["install", "--registry", e.registry, "--cache-folder"]).arg(e.state.join("yarn-cache"));
            c.args([
                "--ignore-scripts",
                "--non-interactive",
                "--no-progress",
                "--silent",
                "--network-concurrency",
                "32",
            ]);
            if e.locked {
                c.arg("--frozen-lockfile");
            }
            c
        }),
        lockfile: "yarn.lock",
    });
    match bun_binary(&modules) {
        Some(bun) => tools.push(Tool {
            name: "bun",
            install: Box::new(move |e| {
                let mut c = isolated(&bun, e);
                let cache = e.state.join("bun-cache");
                c.env("BUN_INSTALL_CACHE_DIR", &cache).env("BUN_INSTALL", e.state.join("bun-home"));
                c.args([
                    "install",
                    "--ignore-scripts",
                    "--no-progress",
                    "--registry",
                    e.registry,
                    "--cache-dir",
                ])
                .arg(&cache);
                if e.locked {
                    c.arg("--frozen-lockfile");
                }
                c
            }),
            lockfile: "bun.lock",
        }),
        None => println!("bun: no working binary under benches/clients/node_modules/@oven, not measured"),
    }
    tools
}

fn fresh_project(dir: &Path, corpus: &Corpus, registry: &str) -> PathBuf {
    let project = dir.join("app");
    let _ = fs::remove_dir_all(&project);
    fs::create_dir_all(&project).unwrap();
    let deps: serde_json::Map<String, serde_json::Value> =
        corpus.roots().iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    let pkg = serde_json::json!({ "name": "app", "version": "1.0.0", "dependencies": deps });
    fs::write(project.join("package.json"), serde_json::to_string_pretty(&pkg).unwrap()).unwrap();
    fs::write(project.join(".npmrc"), format!("registry={registry}\n")).unwrap();
    fs::write(project.join(".yarnrc"), format!("registry \"{registry}\"\n")).unwrap();
    fs::write(project.join("bunfig.toml"), format!("[install]\nregistry = \"{registry}\"\n")).unwrap();
    project
}

fn run(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

/// One timed run of `scenario` (setup not timed).
fn measure(tool: &Tool, scenario: Scenario, dir: &Path, corpus: &Corpus, registry: &str) -> Duration {
    let state = dir.join(format!("state-{}", tool.name.replace(' ', "")));
    let project = fresh_project(dir, corpus, registry);
    let _ = fs::remove_dir_all(&state);
    if scenario != Scenario::Cold {
        // Warm the caches (and produce a lockfile) with an untimed install.
        run(&mut (tool.install)(&Env { project: &project, state: &state, registry, locked: false }));
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
    run(&mut (tool.install)(&Env { project: &project, state: &state, registry, locked }))
}

fn main() {
    let runs: usize = std::env::var("IMS_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let corpus = Corpus::load().unwrap();
    let registry = runtime.block_on(Registry::with_corpus(&corpus)).unwrap();
    let url = registry.url();
    let dir = tempfile::tempdir().unwrap();
    let only: Option<Vec<String>> = std::env::var("IMS_BENCH_TOOLS")
        .ok()
        .map(|t| t.split(',').map(|n| n.trim().replace(' ', "")).filter(|n| !n.is_empty()).collect());
    let mut tools = tools();
    if let Some(only) = &only {
        tools.retain(|t| t.name == "ims" || only.contains(&t.name.replace(' ', "")));
    }
    println!("install of the corpus roots ({} packages), median of {runs} runs", corpus.resolved().len());
    for scenario in [Scenario::Cold, Scenario::WarmNoLock, Scenario::WarmLock, Scenario::Noop] {
        let mut medians = Vec::new();
        for tool in &tools {
            let before = registry.total_hits();
            let mut times: Vec<Duration> =
                (0..runs).map(|_| measure(tool, scenario, dir.path(), &corpus, &url)).collect();
            let hits = (registry.total_hits() - before) / runs;
            times.sort();
            medians.push((tool.name, times[runs / 2], hits));
        }
        let ims = medians[0].1.as_secs_f64();
        for (name, t, hits) in &medians {
            println!(
                "{:<18} {:<6} {:>8.3} s   {:>6.2}x ims   ({hits} requests to the fixture registry per run, setup included)",
                scenario.name(),
                name,
                t.as_secs_f64(),
                t.as_secs_f64() / ims
            );
        }
    }
}
