//! The dependency graph of a lockfile: every `packages` entry is a node and each dependency
//! it declares an edge to the entry Node's `require` would find from its location (its own
//! `node_modules`, then each ancestor's). Used for npm's optional sets (what to leave out with
//! a failed optional package, arborist's `optional-set.js` and `gather-dep-set.js`) and for the
//! dependency path an error names (`app > express > body-parser`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::Value;

use super::Lockfile;

/// One dependency edge between two lockfile entries.
#[derive(Debug, Clone, Copy)]
struct Edge {
    from: usize,
    to: usize,
    /// `optionalDependencies`, or a peer marked optional: failures there are not fatal.
    optional: bool,
}

/// The entries of a lockfile and the edges between them (missing targets are left out).
#[derive(Debug, Clone)]
pub struct Graph {
    locations: Vec<String>,
    index: HashMap<String, usize>,
    names: Vec<Option<String>>,
    out: Vec<Vec<Edge>>,
    into: Vec<Vec<Edge>>,
}

/// The location holding `loc` in its `node_modules` (`""` for a top-level package).
fn parent_location(loc: &str) -> Option<&str> {
    if loc.is_empty() {
        return None;
    }
    match loc.rfind("/node_modules/") {
        Some(i) => Some(&loc[..i]),
        None if loc.starts_with("node_modules/") => Some(""),
        // A folder outside the project searches no node_modules of the project.
        None if loc.starts_with("..") => None,
        // A folder of the project (a workspace) searches the root's after its own.
        None => Some(""),
    }
}

impl Graph {
    /// The graph of `lock`. With `peers` false (npm's `--legacy-peer-deps`) peer dependencies
    /// are not edges.
    pub fn new(lock: &Lockfile, peers: bool) -> Self {
        let locations: Vec<String> = lock.packages.keys().cloned().collect();
        let index: HashMap<String, usize> =
            locations.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect();
        let names = locations
            .iter()
            .map(|loc| {
                if loc.is_empty() {
                    return lock.name.clone();
                }
                // The folder name: what the dependent's package.json asks for (aliases too).
                let folder =
                    loc.rfind("node_modules/").map_or(loc.as_str(), |i| &loc[i + "node_modules/".len()..]);
                Some(folder.to_owned())
            })
            .collect();
        let mut out = vec![Vec::new(); locations.len()];
        let mut into = vec![Vec::new(); locations.len()];
        for (from, loc) in locations.iter().enumerate() {
            let entry = &lock.packages[loc];
            let deps = |key: &str| -> Vec<String> {
                entry
                    .get(key)
                    .and_then(Value::as_object)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            };
            let optional_peer = |name: &str| {
                entry
                    .get("peerDependenciesMeta")
                    .and_then(|m| m.get(name))
                    .and_then(|m| m.get("optional"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            };
            // A later kind replaces an earlier one for the same name, as arborist loads them.
            let mut wanted: BTreeMap<String, bool> = BTreeMap::new();
            if peers {
                for name in deps("peerDependencies") {
                    let optional = optional_peer(&name);
                    wanted.insert(name, optional);
                }
            }
            // The root and its folders (workspaces, `file:` folders) have their dev
            // dependencies installed; packages do not.
            let is_folder = !loc.contains("node_modules/");
            if is_folder && loc.starts_with("..") {
                // npm installs nothing for a folder outside the project.
                continue;
            }
            if entry.get("link").and_then(Value::as_bool).unwrap_or(false) {
                if let Some(&to) = entry.get("resolved").and_then(Value::as_str).and_then(|t| index.get(t)) {
                    let edge = Edge { from, to, optional: false };
                    out[from].push(edge);
                    into[to].push(edge);
                }
                continue;
            }
            if loc.is_empty() && entry.get("workspaces").is_some() {
                // The root's workspace edges: to each top-level link into a project folder.
                for (to, l) in locations.iter().enumerate() {
                    let Some(e) = lock.packages.get(l) else { continue };
                    let is_link = e.get("link").and_then(Value::as_bool).unwrap_or(false);
                    let target = e.get("resolved").and_then(Value::as_str).unwrap_or("..");
                    if is_link && parent_location(l) == Some("") && !target.starts_with("..") {
                        let edge = Edge { from, to, optional: false };
                        out[from].push(edge);
                        into[to].push(edge);
                    }
                }
            }
            for key in ["dependencies", "devDependencies"] {
                if key == "devDependencies" && !is_folder {
                    continue;
                }
                for name in deps(key) {
                    wanted.insert(name, false);
                }
            }
            for name in deps("optionalDependencies") {
                wanted.insert(name, true);
            }
            for (name, optional) in wanted {
                let mut at = Some(loc.as_str());
                let to = loop {
                    let Some(dir) = at else { break None };
                    let candidate = if dir.is_empty() {
                        format!("node_modules/{name}")
                    } else {
                        format!("{dir}/node_modules/{name}")
                    };
                    if let Some(&to) = index.get(&candidate) {
                        break Some(to);
                    }
                    at = parent_location(dir);
                };
                if let Some(to) = to {
                    let edge = Edge { from, to, optional };
                    out[from].push(edge);
                    into[to].push(edge);
                }
            }
        }
        Graph { locations, index, names, out, into }
    }

    /// What npm leaves out of `node_modules` when the optional packages at `failed` cannot be
    /// installed (wrong platform, failed fetch): each one, the packages that need it through
    /// required edges only, and every dependency of those nothing outside the set needs.
    pub fn optional_set<'a>(&self, failed: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut set: Vec<usize> = Vec::new();
        let mut seen = BTreeSet::new();
        for loc in failed {
            if let Some(&i) = self.index.get(loc)
                && seen.insert(i)
            {
                set.push(i);
            }
        }
        // Walk up required edges to the optional boundary (the root is never part of it).
        let mut k = 0;
        while k < set.len() {
            for e in &self.into[set[k]] {
                if !e.optional && e.from != self.root() && seen.insert(e.from) {
                    set.push(e.from);
                }
            }
            k += 1;
        }
        let boundary = seen.clone();
        // Edges into the boundary are what made it optional: ignore them below.
        let counts = |e: &Edge| !boundary.contains(&e.to);
        let mut deps = boundary.clone();
        let mut queue: VecDeque<usize> = set.into_iter().collect();
        while let Some(n) = queue.pop_front() {
            for e in self.out[n].iter().filter(|e| counts(e)) {
                if deps.insert(e.to) {
                    queue.push_back(e.to);
                }
            }
        }
        // Drop whatever something outside the set still needs, until nothing changes.
        let mut changed = true;
        while changed {
            changed = false;
            let keep: Vec<usize> = deps
                .iter()
                .copied()
                .filter(|&d| self.into[d].iter().any(|e| counts(e) && !deps.contains(&e.from)))
                .collect();
            for d in keep {
                changed |= deps.remove(&d);
            }
        }
        deps.into_iter().map(|i| self.locations[i].clone()).collect()
    }

    /// Every location the project reaches through dependency edges (itself included): what
    /// stays in a tree after a dependency is dropped (npm prunes the rest as extraneous).
    pub fn reachable(&self) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        if self.index.contains_key("") {
            seen.insert(self.root());
            queue.push_back(self.root());
        }
        while let Some(n) = queue.pop_front() {
            for e in &self.out[n] {
                if seen.insert(e.to) {
                    queue.push_back(e.to);
                }
            }
        }
        seen.into_iter().map(|i| self.locations[i].clone()).collect()
    }

    /// Every entry reachable from the entries at `starts` (themselves included).
    pub fn reachable_from<'a>(&self, starts: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<usize> =
            starts.into_iter().filter_map(|s| self.index.get(s).copied()).collect();
        seen.extend(queue.iter().copied());
        while let Some(n) = queue.pop_front() {
            for e in &self.out[n] {
                if seen.insert(e.to) {
                    queue.push_back(e.to);
                }
            }
        }
        seen.into_iter().map(|i| self.locations[i].clone()).collect()
    }

    fn root(&self) -> usize {
        self.index.get("").copied().unwrap_or(usize::MAX)
    }

    /// The shortest dependency path from the project to the entry at `location`, as package
    /// names: `app > express > body-parser` (the project is named by its `name`, else
    /// `(root)`). `None` when nothing reaches it.
    pub fn path_to(&self, location: &str) -> Option<String> {
        let target = *self.index.get(location)?;
        let root = self.root();
        let mut prev: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([root]);
        let mut seen = BTreeSet::from([root]);
        while let Some(n) = queue.pop_front() {
            if n == target {
                break;
            }
            for e in self.out.get(n).into_iter().flatten() {
                if seen.insert(e.to) {
                    prev.insert(e.to, n);
                    queue.push_back(e.to);
                }
            }
        }
        if !seen.contains(&target) {
            return None;
        }
        let mut chain = vec![target];
        while let Some(&p) = prev.get(chain.last()?) {
            chain.push(p);
        }
        chain.reverse();
        let name = |i: usize| self.names[i].clone().unwrap_or_else(|| "(root)".to_owned());
        Some(chain.into_iter().map(name).collect::<Vec<_>>().join(" > "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lock(entries: Value) -> Lockfile {
        let packages = entries
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_object().unwrap().clone()))
            .collect();
        Lockfile { name: Some("app".into()), version: None, packages }
    }

    #[test]
    fn optional_set_keeps_what_required_paths_need() {
        let l = lock(json!({
            "": {"dependencies": {"p": "1"}},
            "node_modules/p": {"dependencies": {"shared": "1"}, "optionalDependencies": {"native": "1"}},
            "node_modules/native": {"optional": true, "dependencies": {"helper": "1", "shared": "1", "wrap": "1"}},
            "node_modules/helper": {"optional": true},
            "node_modules/shared": {},
            "node_modules/wrap": {"optional": true, "dependencies": {"native": "1"}},
        }));
        let g = Graph::new(&l, true);
        let set = g.optional_set(["node_modules/native"]);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            ["node_modules/helper", "node_modules/native", "node_modules/wrap"]
        );
        assert_eq!(g.path_to("node_modules/helper").unwrap(), "app > p > native > helper");
    }

    #[test]
    fn nested_entries_resolve_like_require() {
        let l = lock(json!({
            "": {"dependencies": {"a": "1", "b": "1"}},
            "node_modules/a": {"dependencies": {"b": "2"}},
            "node_modules/a/node_modules/b": {"version": "2.0.0"},
            "node_modules/b": {"version": "1.0.0"},
            "node_modules/@s/c": {},
        }));
        let g = Graph::new(&l, true);
        assert_eq!(g.path_to("node_modules/a/node_modules/b").unwrap(), "app > a > b");
        assert_eq!(g.path_to("node_modules/@s/c"), None);
        assert_eq!(parent_location("node_modules/a/node_modules/@s/c"), Some("node_modules/a"));
    }
}
