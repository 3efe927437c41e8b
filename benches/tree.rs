//! Ideal-tree build time against tree size: synthetic registries of `n` packages (two
//! majors each, three cross-dependencies, one in 16 on the other major so it nests, a peer
//! dependency on every tenth package) resolved from memory, so only placement is measured. Prints the nodes
//! placed, the median time of a few builds, the time per node and the ratio to the previous
//! size: about 2 per doubling is linear, 4 would be quadratic (placement's `dependents` used
//! to scan the whole tree). Run with `cargo bench --bench tree`.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use indexer::model::Packument;
use installer::ideal_tree::build;
use installer::resolve::MemorySource;
use installer::tree::{BuildOptions, root_edges};
use installer::{DepKind, PickOptions, Request, Resolver};
use serde_json::{Map, Value, json};

fn registry(n: usize) -> MemorySource {
    let integrity = format!("sha512-{}==", "A".repeat(86));
    let mut source = MemorySource::new();
    for i in 0..n {
        let name = format!("p{i}");
        let mut versions = Map::new();
        for major in [1, 2] {
            // Mostly `^1`, which hoists; one dependency in 16 wants `^2`, which nests.
            let mut deps = Map::new();
            for k in [7, 13, 31] {
                let j = (i * k + major) % n;
                if j != i {
                    let want = if (i + k) % 16 == 0 { "^2" } else { "^1" };
                    deps.insert(format!("p{j}"), json!(want));
                }
            }
            let mut v = json!({
                "name": name, "version": format!("{major}.0.0"), "dependencies": deps,
                "dist": { "integrity": integrity, "tarball": format!("http://127.0.0.1:9/{name}/-/{name}-{major}.0.0.tgz") },
            });
            if i % 10 == 0 {
                v["peerDependencies"] = json!({ format!("p{}", (i + 1) % n): "*" });
            }
            versions.insert(format!("{major}.0.0"), v);
        }
        let doc =
            json!({ "name": name, "dist-tags": { "latest": "1.0.0" }, "versions": Value::Object(versions) });
        source.insert(Packument::from_value(doc).unwrap());
    }
    source
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    println!("{:>6} {:>7} {:>10} {:>12} {:>8}", "n", "nodes", "build", "per node", "ratio");
    let mut previous: Option<Duration> = None;
    for n in [500, 1000, 2000, 4000, 8000, 16000] {
        let source = registry(n);
        let requests: Vec<(DepKind, Request)> = (0..n)
            .step_by(5)
            .map(|i| (DepKind::Prod, Request::from_dependency(&format!("p{i}"), "^1").unwrap()))
            .collect();
        let resolver = Resolver::new(source, PickOptions::default());
        let mut times = Vec::new();
        let mut nodes = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let tree =
                runtime.block_on(build(&resolver, root_edges(&requests), BuildOptions::default())).unwrap();
            times.push(started.elapsed());
            nodes = tree.packages().len();
        }
        times.sort();
        let median = times[1];
        let ratio =
            previous.map_or("-".to_owned(), |p| format!("{:.2}", median.as_secs_f64() / p.as_secs_f64()));
        println!(
            "{n:>6} {nodes:>7} {:>10.2?} {:>10.2}µs {ratio:>8}",
            median,
            median.as_secs_f64() * 1e6 / nodes.max(1) as f64
        );
        previous = Some(median);
    }
}
