//! Install benchmark: `ims install` against npm, pnpm, yarn 1 and bun installing a workload
//! from the same fixture registry on 127.0.0.1 serving the same bytes, in four scenarios
//! (spec §3.4): cold (empty caches, no lockfile), warm (cache kept, no lockfile, no
//! `node_modules`), ci (warm cache, lockfile, no `node_modules`: `ims ci` against `npm ci`,
//! `pnpm`/`yarn`/`bun install --frozen-lockfile`), and repeat (lockfile and `node_modules`
//! present). `IMS_BENCH_SCENARIOS=cold,warm,ci,repeat` picks some.
//!
//! Workloads (`IMS_BENCH_CORPUS=roots|realworld|monorepo`, default all): the corpus roots
//! (`fixtures/npm/`), the real-world project (`fixtures/realworld/`, 442 placements,
//! several-MB packuments), and a monorepo of three workspaces (`packages/a` depends on `b`,
//! `c` on `a`) sharing the corpus roots between them, each tool reading its own workspace
//! file (`workspaces` in package.json, `pnpm-workspace.yaml` for pnpm). Runs are paired: each of `IMS_BENCH_RUNS` (default 3) rounds runs
//! every tool once in turn; printed are the median wall time, the median of the paired
//! ratios to ims, the median peak memory (max RSS of the tool's process tree, from
//! `/usr/bin/time -f %M`, which the bench needs for that column),
//! and for ims the packument request rounds and bytes its resolution took (see
//! `fixtures::registry::Stats::rounds`). Work directories are under `TMPDIR`, `/dev/shm` when unset and
//! present (tmpfs).
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
            Scenario::WarmNoLock => "warm",
            Scenario::WarmLock => "ci (warm)",
            Scenario::Noop => "repeat",
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
            c.arg("--home").arg(e.state.join("ims")).args(["--registry", e.registry]);
            // `ims ci` against `npm ci`, `bun install --frozen-lockfile`, ...
            c.arg(if e.locked { "ci" } else { "install" });
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

/// The monorepo workload: a root with three workspaces, the corpus roots dealt out to them in
/// turn; `a` depends on workspace `b`, `c` on `a` (by version range, as npm, yarn and bun
/// read it; pnpm links a workspace that satisfies the range too).
fn monorepo(project: &Path, corpus: &Corpus) {
    let mut deps = [serde_json::Map::new(), serde_json::Map::new(), serde_json::Map::new()];
    for (i, (k, v)) in corpus.roots().iter().enumerate() {
        deps[i % 3].insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    deps[0].insert("b".into(), "^1.0.0".into());
    deps[2].insert("a".into(), "^1.0.0".into());
    for (name, deps) in ["a", "b", "c"].into_iter().zip(deps) {
        let dir = project.join("packages").join(name);
        fs::create_dir_all(&dir).unwrap();
        let pkg = serde_json::json!({ "name": name, "version": "1.0.0", "dependencies": deps });
        fs::write(dir.join("package.json"), serde_json::to_vec_pretty(&pkg).unwrap()).unwrap();
    }
    let pkg = serde_json::json!({ "name": "mono", "version": "1.0.0", "private": true, "workspaces": ["packages/*"] });
    fs::write(project.join("package.json"), serde_json::to_vec_pretty(&pkg).unwrap()).unwrap();
    fs::write(project.join("pnpm-workspace.yaml"), "packages:\n  - 'packages/*'\n").unwrap();
}

fn fresh_project(dir: &Path, corpus: &Corpus, own: Option<&Path>, registry: &str) -> PathBuf {
    let project = dir.join("app");
    let _ = fs::remove_dir_all(&project);
    fs::create_dir_all(&project).unwrap();
    if own.is_some_and(|p| p.as_os_str() == MONOREPO) {
        monorepo(&project, corpus);
        fs::write(project.join(".npmrc"), format!("registry={registry}\n")).unwrap();
        fs::write(project.join(".yarnrc"), format!("registry \"{registry}\"\n")).unwrap();
        fs::write(project.join("bunfig.toml"), format!("[install]\nregistry = \"{registry}\"\n")).unwrap();
        return project;
    }
    // The real-world corpus is a project with its own package.json; the roots corpus is its roots.
    let pkg = match own.map(|p| fs::read(p).unwrap()) {
        Some(bytes) => bytes,
        None => {
            let deps: serde_json::Map<String, serde_json::Value> = corpus
                .roots()
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let pkg = serde_json::json!({ "name": "app", "version": "1.0.0", "dependencies": deps });
            serde_json::to_vec_pretty(&pkg).unwrap()
        }
    };
    fs::write(project.join("package.json"), pkg).unwrap();
    fs::write(project.join(".npmrc"), format!("registry={registry}\n")).unwrap();
    fs::write(project.join(".yarnrc"), format!("registry \"{registry}\"\n")).unwrap();
    fs::write(project.join("bunfig.toml"), format!("[install]\nregistry = \"{registry}\"\n")).unwrap();
    project
}

/// Wall time and peak memory (bytes; 0 when `/usr/bin/time` is missing) of one run of `cmd`.
/// The peak is GNU time's `%M`: the max RSS of the child and the descendants it waited for
/// (wait4's rusage; the workspace forbids the `unsafe` a direct call would need).
fn run(cmd: &mut Command, logs: &Path) -> (Duration, u64) {
    let out = logs.with_extension("out");
    let err = logs.with_extension("err");
    let rss = logs.with_extension("rss");
    let time = Path::new("/usr/bin/time");
    let mut timed = if time.exists() {
        let mut c = Command::new(time);
        c.args(["-f", "%M", "-o"]).arg(&rss).arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c
    } else {
        std::mem::replace(cmd, Command::new("true"))
    };
    let _ = fs::remove_file(&rss);
    timed.stdout(fs::File::create(&out).unwrap()).stderr(fs::File::create(&err).unwrap());
    let start = Instant::now();
    let status = timed.status().unwrap();
    let elapsed = start.elapsed();
    assert!(
        status.success(),
        "{:?}: {}{}",
        timed,
        fs::read_to_string(&out).unwrap_or_default(),
        fs::read_to_string(&err).unwrap_or_default()
    );
    // GNU time reports KiB.
    let kib: u64 = fs::read_to_string(&rss).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    (elapsed, kib * 1024)
}

/// One measured run of `scenario` (setup not timed): wall, peak memory, and the packument
/// requests of the measured install alone.
fn measure(
    tool: &Tool,
    scenario: Scenario,
    dir: &Path,
    corpus: &Corpus,
    own: Option<&Path>,
    registry: &Registry,
    url: &str,
) -> (Duration, u64, fixtures::Stats) {
    let state = dir.join(format!("state-{}", tool.name.replace(' ', "")));
    let logs = dir.join(format!("log-{}", tool.name.replace(' ', "")));
    let project = fresh_project(dir, corpus, own, url);
    let _ = fs::remove_dir_all(&state);
    let registry_url = url;
    if scenario != Scenario::Cold {
        // Warm the caches (and produce a lockfile) with an untimed install.
        let env = Env { project: &project, state: &state, registry: registry_url, locked: false };
        run(&mut (tool.install)(&env), &logs);
        match scenario {
            Scenario::WarmNoLock => {
                remove_workspace_modules(&project);
                let _ = fs::remove_dir_all(project.join("node_modules"));
                let _ = fs::remove_file(project.join(tool.lockfile));
            }
            Scenario::WarmLock => {
                remove_workspace_modules(&project);
                let _ = fs::remove_dir_all(project.join("node_modules"));
            }
            _ => {}
        }
    }
    let locked = scenario == Scenario::WarmLock;
    registry.reset_stats();
    let env = Env { project: &project, state: &state, registry: registry_url, locked };
    let (wall, peak) = run(&mut (tool.install)(&env), &logs);
    (wall, peak, registry.stats())
}

/// The workspaces' own `node_modules` (the monorepo workload), removed with the root's.
fn remove_workspace_modules(project: &Path) {
    let Ok(entries) = fs::read_dir(project.join("packages")) else { return };
    for e in entries.flatten() {
        let _ = fs::remove_dir_all(e.path().join("node_modules"));
    }
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Marks the monorepo workload in place of a project's own `package.json`.
const MONOREPO: &str = "<monorepo>";

/// The workloads picked: name, corpus, and the project's own `package.json` if it has one.
fn workloads() -> Vec<(&'static str, Corpus, Option<PathBuf>)> {
    let pick = std::env::var("IMS_BENCH_CORPUS").unwrap_or_default();
    let mut out = Vec::new();
    if pick.is_empty() || pick.split(',').any(|p| p.trim() == "roots") {
        out.push(("corpus roots", Corpus::load().unwrap(), None));
    }
    if pick.is_empty() || pick.split(',').any(|p| p.trim() == "realworld") {
        let own = Corpus::realworld_dir().join("package.json");
        out.push(("realworld project", Corpus::realworld().unwrap(), Some(own)));
    }
    if pick.is_empty() || pick.split(',').any(|p| p.trim() == "monorepo") {
        out.push(("three-workspace monorepo", Corpus::load().unwrap(), Some(PathBuf::from(MONOREPO))));
    }
    assert!(!out.is_empty(), "IMS_BENCH_CORPUS={pick}: expected roots, realworld or monorepo");
    out
}

fn main() {
    let runs: usize = std::env::var("IMS_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tmp = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&tmp).unwrap();
    let only: Option<Vec<String>> = std::env::var("IMS_BENCH_TOOLS")
        .ok()
        .map(|t| t.split(',').map(|n| n.trim().replace(' ', "")).filter(|n| !n.is_empty()).collect());
    let mut tools = tools();
    if let Some(only) = &only {
        tools.retain(|t| t.name == "ims" || only.contains(&t.name.replace(' ', "")));
    }
    for (workload, corpus, own) in workloads() {
        let registry = runtime.block_on(Registry::with_corpus(&corpus)).unwrap();
        let url = registry.url();
        println!(
            "install of the {workload} ({} packages) in {}, paired medians of {runs} runs",
            corpus.resolved().len(),
            tmp.display()
        );
        println!(
            "{:<15} {:<7} {:>8} {:>9} {:>9}   ims resolution",
            "scenario", "tool", "wall", "vs ims", "peak MB"
        );
        // IMS_BENCH_SCENARIOS=cold,warm,ci,repeat picks some (default: all).
        let picked = std::env::var("IMS_BENCH_SCENARIOS").unwrap_or_default();
        let scenarios = [Scenario::Cold, Scenario::WarmNoLock, Scenario::WarmLock, Scenario::Noop];
        let scenarios = scenarios.into_iter().filter(|s| {
            let key = match s {
                Scenario::Cold => "cold",
                Scenario::WarmNoLock => "warm",
                Scenario::WarmLock => "ci",
                Scenario::Noop => "repeat",
            };
            picked.is_empty() || picked.split(',').any(|p| p.trim() == key)
        });
        for scenario in scenarios {
            // results[tool][run]
            let mut results: Vec<Vec<(Duration, u64, fixtures::Stats)>> =
                tools.iter().map(|_| Vec::new()).collect();
            for _ in 0..runs {
                for (t, tool) in tools.iter().enumerate() {
                    results[t].push(measure(
                        tool,
                        scenario,
                        dir.path(),
                        &corpus,
                        own.as_deref(),
                        &registry,
                        &url,
                    ));
                }
            }
            for (t, tool) in tools.iter().enumerate() {
                let wall = median(results[t].iter().map(|r| r.0.as_secs_f64()).collect());
                let ratio = median(
                    results[t]
                        .iter()
                        .zip(&results[0])
                        .map(|(r, i)| r.0.as_secs_f64() / i.0.as_secs_f64())
                        .collect(),
                );
                let peak = median(results[t].iter().map(|r| r.1).collect());
                let extra = if t == 0 {
                    let n_rounds = median(results[t].iter().map(|r| r.2.round_count()).collect());
                    let requests = median(results[t].iter().map(|r| r.2.packuments.len()).collect());
                    let bytes = median(results[t].iter().map(|r| r.2.packument_bytes).collect());
                    format!("{n_rounds} rounds, {requests} packument requests, {:.1} MB", bytes as f64 / 1e6)
                } else {
                    let requests = median(results[t].iter().map(|r| r.2.packuments.len()).collect());
                    format!("({requests} packument requests)")
                };
                println!(
                    "{:<15} {:<7} {:>6.3} s {:>8.2}x {:>9.0}   {extra}",
                    scenario.name(),
                    tool.name,
                    wall,
                    ratio,
                    peak as f64 / 1e6
                );
            }
        }
    }
}
