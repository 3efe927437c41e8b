//! The ideal tree: nodes at their `node_modules` locations and the dependency edges between
//! them. [`ideal_tree::build`](super::ideal_tree::build) builds it; [`hoist`](super::hoist)
//! places each new node (DESIGN.md §Install; spec §1.9).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use super::error::{OverrideError, ResolveError};
use super::overrides::{Overridden, Overrides, RuleId};
use super::project::DepKind;
use super::request::{Request, VersionSpec};
use super::resolve::Resolved;

/// Index of a node in a [`Tree`]. The root (the project) is [`Tree::ROOT`].
pub type NodeId = usize;

/// The kind of a dependency edge (arborist's edge types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// `dependencies`.
    Prod,
    /// `devDependencies` (the root's only).
    Dev,
    /// `optionalDependencies`: failures are not fatal.
    Optional,
    /// `peerDependencies`: installed beside the dependent (npm 7+).
    Peer,
    /// A peer dependency marked optional in `peerDependenciesMeta`: only used if present.
    PeerOptional,
}

impl EdgeKind {
    /// A peer dependency, optional or not.
    pub fn is_peer(self) -> bool {
        matches!(self, EdgeKind::Peer | EdgeKind::PeerOptional)
    }
}

/// A dependency edge out of a node.
#[derive(Debug, Clone)]
pub struct Edge {
    /// What is asked for (the folder name is `request.name`).
    pub request: Request,
    /// The spec as written in the manifest (kept for the lockfile).
    pub spec: String,
    /// Its kind.
    pub kind: EdgeKind,
    /// The override rule governing it (arborist's `edge.overrides`; `None` when the project
    /// has no `overrides`).
    pub overrides: Option<RuleId>,
    /// When an override changed `request`: what the package itself asked for.
    pub overridden: Option<Box<Overridden>>,
}

impl Edge {
    /// An edge as the manifest writes it (no override applied yet).
    pub fn new(request: Request, spec: String, kind: EdgeKind) -> Self {
        Edge { request, spec, kind, overrides: None, overridden: None }
    }
}

/// One package at one location.
#[derive(Debug, Clone)]
pub struct Node {
    /// The folder name under its parent's `node_modules` (the alias for aliases).
    pub name: String,
    /// What was resolved (`None` for the root).
    pub resolved: Option<Resolved>,
    /// The node whose `node_modules` holds this one (`None` for the root).
    pub parent: Option<NodeId>,
    /// Nodes in this node's `node_modules`, by folder name.
    pub children: BTreeMap<String, NodeId>,
    /// Dependencies of this node.
    pub edges: Vec<Edge>,
    /// For a link (`node_modules/x` → a folder): the node of the folder it points to, which
    /// holds the package's edges. A link itself has none.
    pub link: Option<NodeId>,
    /// For a linked folder (a workspace, a `file:` folder): where it is, relative to the
    /// project root (`packages/a`, `../lib`). Its `parent` is the node whose `node_modules`
    /// Node.js searches after its own (the root for a folder inside the project, none for one
    /// outside), but it is not among that node's children.
    pub fs_path: Option<String>,
    /// Removed by a replacement; skipped everywhere.
    pub(crate) removed: bool,
    /// The override rule the node is governed by (arborist's `node.overrides`): the most
    /// specific rule of the edges that reach it.
    pub overrides: Option<RuleId>,
}

/// How the ideal tree is built.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The project's name, for dependency paths in errors (`app > express > body-parser`);
    /// `(root)` when empty.
    pub root_name: String,
    /// npm's `--legacy-peer-deps`: peer dependencies are not edges, so they are neither
    /// installed nor checked (npm 3-6 behaviour).
    pub legacy_peer_deps: bool,
    /// npm's `--strict-peer-deps`: a peer conflict anywhere is ERESOLVE, not only one that
    /// involves the project's own dependencies (elsewhere npm warns "overriding peer
    /// dependency" and keeps what is there).
    pub strict_peer_deps: bool,
    /// The project root on disk: `file:` folders and workspaces are read relative to it.
    pub root_dir: std::path::PathBuf,
    /// The project's workspaces, each linked into the root's `node_modules`.
    pub workspaces: Vec<super::local::Workspace>,
    /// Folders whose `package.json` this install changed (by path), read from here rather
    /// than from disk (they are saved only once the install succeeds).
    pub edited: BTreeMap<String, super::project::Project>,
    /// Where `file:` tarballs, tarball URLs and git dependencies are resolved; without it
    /// they are an error.
    pub places: Option<super::places::Places>,
    /// The root `package.json`'s `overrides`.
    pub overrides: Option<Arc<Overrides>>,
}

/// The ideal tree of an install.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    /// Dependency name → the nodes with an edge of that name (removed ones included), so
    /// finding a package's dependents does not scan the whole tree.
    by_edge_name: HashMap<String, Vec<NodeId>>,
    /// Peer edges left unmet on purpose (arborist's `peerConflicted`): `(node, dependency
    /// name)`; they are neither placed nor reported again.
    peer_conflicted: BTreeSet<(NodeId, String)>,
    /// The node whose dependency brought each node in with its peer set (arborist's
    /// `peerSetSource`): its edges are preferred when the node's peers are resolved.
    peer_source: HashMap<NodeId, NodeId>,
    /// The edges of each linked folder read so far, by its path (see [`Tree::edges_for`]).
    link_edges: HashMap<String, Vec<Edge>>,
    /// The first override that could not be applied (a `$name` with no such dependency, a
    /// value that is not a spec); the build stops with it.
    override_error: Option<OverrideError>,
    opts: BuildOptions,
}

impl Tree {
    /// The project itself.
    pub const ROOT: NodeId = 0;

    /// A tree holding only the root, with the root's dependency edges (its peer edges are
    /// dropped under `--legacy-peer-deps`).
    pub fn new(mut root_edges: Vec<Edge>, opts: BuildOptions) -> Self {
        if opts.legacy_peer_deps {
            root_edges.retain(|e| !e.kind.is_peer());
        }
        let root = Node {
            name: String::new(),
            resolved: None,
            parent: None,
            children: BTreeMap::new(),
            edges: Vec::new(),
            link: None,
            fs_path: None,
            removed: false,
            overrides: opts.overrides.as_ref().map(|_| Overrides::ROOT),
        };
        let mut tree = Tree {
            nodes: vec![root],
            by_edge_name: HashMap::new(),
            peer_conflicted: BTreeSet::new(),
            peer_source: HashMap::new(),
            link_edges: HashMap::new(),
            override_error: None,
            opts,
        };
        tree.set_edges(Tree::ROOT, root_edges);
        tree
    }

    fn set_edges(&mut self, id: NodeId, mut edges: Vec<Edge>) {
        for e in &edges {
            self.by_edge_name.entry(e.request.name.clone()).or_default().push(id);
        }
        self.apply_overrides(id, &mut edges);
        self.nodes[id].edges = edges;
    }

    /// Give each of `edges` (out of `id`) the override rule the node's own rule picks for it,
    /// and the spec that rule asks for (the package's own when none does).
    fn apply_overrides(&mut self, id: NodeId, edges: &mut [Edge]) {
        let Some(ov) = self.opts.overrides.clone() else { return };
        let set = self.nodes[id].overrides.unwrap_or(Overrides::ROOT);
        let manifest = self.nodes[id].resolved.as_ref().filter(|_| id != Tree::ROOT).map(|r| r.manifest());
        // A `$name` the root does not have: the dependent's own spec for it (arborist's fallback).
        let local = |name: &str| {
            let m = manifest?;
            [&m.optional_dependencies, &m.dependencies, &m.peer_dependencies]
                .into_iter()
                .find_map(|deps| deps.get(name).cloned())
        };
        let mut error = None;
        for e in edges.iter_mut() {
            let raw = match e.overridden.take() {
                Some(o) => o.raw,
                None => e.request.clone(),
            };
            let rule = ov.edge_rule(set, &raw);
            e.overrides = Some(rule);
            let value = match ov.replacement(rule, &raw.name, local) {
                Ok(v) => v,
                Err(err) => {
                    error.get_or_insert(err);
                    None
                }
            };
            let Some(value) = value else {
                e.request = raw;
                continue;
            };
            match Request::from_dependency(&raw.name, &value) {
                Ok(request) => {
                    e.request = request;
                    let key = ov.key_spec(rule).to_owned();
                    e.overridden = Some(Box::new(Overridden { raw, key, value }));
                }
                Err(err) => {
                    error.get_or_insert(OverrideError::BadValue {
                        path: ov.path(rule),
                        reason: err.to_string(),
                    });
                    e.request = raw;
                }
            }
        }
        if self.override_error.is_none() {
            self.override_error = error;
        }
    }

    /// The nodes reached by edges governed by `rule` take the more specific rule (arborist's
    /// `updateOverridesEdgeInAdded`), and, when a node's rule changes, its own edges follow.
    fn edges_in_added(&mut self, mut work: Vec<(NodeId, RuleId)>) {
        let Some(ov) = self.opts.overrides.clone() else { return };
        // Rules only grow more specific, or meet at a common ancestor; the bound is a guard.
        let mut budget = 100_000usize;
        while let Some((node, rule)) = work.pop() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                break;
            }
            if node == Tree::ROOT {
                continue;
            }
            let next = match self.nodes[node].overrides {
                None => Some(rule),
                Some(cur) if cur == rule => None,
                // Conflicting rules: the node keeps its own (arborist logs and moves on).
                Some(cur) => ov.specific(cur, rule).filter(|&n| n != cur),
            };
            let Some(next) = next else { continue };
            self.nodes[node].overrides = Some(next);
            let mut edges = std::mem::take(&mut self.nodes[node].edges);
            self.apply_overrides(node, &mut edges);
            self.nodes[node].edges = edges;
            work.extend(self.edge_targets(node));
        }
    }

    /// Where each edge of `node` lands (a link's folder for a link), with the edge's rule.
    fn edge_targets(&self, node: NodeId) -> Vec<(NodeId, RuleId)> {
        self.nodes[node]
            .edges
            .iter()
            .filter_map(|e| {
                // The rule first: without overrides nothing is resolved.
                let rule = e.overrides?;
                Some((self.target(self.resolve(node, &e.request.name)?), rule))
            })
            .collect()
    }

    /// The rule a node placed at `id` starts with: the most specific of the rules of the
    /// edges that now land on it.
    fn rule_from_edges_in(&self, id: NodeId, name: &str) -> Option<RuleId> {
        let ov = self.opts.overrides.as_ref()?;
        let mut rule: Option<RuleId> = None;
        for (n, e) in self.edges_named(name) {
            if self.resolve(n, name) != Some(id) {
                continue;
            }
            let Some(r) = e.overrides else { continue };
            rule = Some(match rule {
                None => r,
                Some(cur) => ov.specific(cur, r).unwrap_or(cur),
            });
        }
        Some(rule.unwrap_or(Overrides::ROOT))
    }

    /// npm's EOVERRIDE: an override may not change what the project itself asks for, unless
    /// it asks for the same spec (or refers to it with `$name`).
    pub(crate) fn check_root_overrides(&self) -> Result<(), OverrideError> {
        for e in &self.nodes[Tree::ROOT].edges {
            let Some(o) = &e.overridden else { continue };
            let raw = super::overrides::spec_text(&o.raw);
            if o.value != raw {
                return Err(OverrideError::Conflict { name: e.request.name.clone(), spec: raw });
            }
        }
        Ok(())
    }

    /// The first override that could not be applied, if any.
    pub(crate) fn take_override_error(&mut self) -> Option<OverrideError> {
        self.override_error.take()
    }

    /// The edges a resolved package gets in this tree ([`package_edges`], without peers under
    /// `--legacy-peer-deps`).
    pub fn edges_for(&self, r: &Resolved) -> Vec<Edge> {
        let mut edges = match &r.origin {
            super::resolve::Origin::Link { path } => self.link_edges.get(path).cloned().unwrap_or_default(),
            _ => package_edges(r),
        };
        if self.opts.legacy_peer_deps {
            edges.retain(|e| !e.kind.is_peer());
        }
        edges
    }

    /// Remember the edges of the linked folder at `path` (read when it was resolved).
    pub(crate) fn set_link_edges(&mut self, path: &str, edges: Vec<Edge>) {
        self.link_edges.insert(path.to_owned(), edges);
    }

    /// How the tree is built.
    pub fn options(&self) -> &BuildOptions {
        &self.opts
    }

    /// Leave `node`'s peer dependency `name` unmet (a conflict npm overrides with a warning).
    pub(crate) fn mark_peer_conflicted(&mut self, node: NodeId, name: &str) {
        self.peer_conflicted.insert((node, name.to_owned()));
    }

    /// Whether `node`'s peer dependency `name` was left unmet on purpose.
    pub fn is_peer_conflicted(&self, node: NodeId, name: &str) -> bool {
        self.peer_conflicted.contains(&(node, name.to_owned()))
    }

    pub(crate) fn set_peer_source(&mut self, node: NodeId, source: NodeId) {
        self.peer_source.insert(node, source);
    }

    /// The node whose dependency brought `node` in with its peer set (`node` itself if none).
    pub(crate) fn peer_source(&self, node: NodeId) -> NodeId {
        self.peer_source.get(&node).copied().unwrap_or(node)
    }

    /// Live nodes with an edge named `name`, with that edge.
    pub(crate) fn edges_named<'t>(&'t self, name: &'t str) -> impl Iterator<Item = (NodeId, &'t Edge)> + 't {
        self.by_edge_name
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&n| !self.nodes[n].removed)
            .flat_map(move |n| {
                self.nodes[n].edges.iter().filter(move |e| e.request.name == name).map(move |e| (n, e))
            })
    }

    /// How a node is named in explanations: `the root project`, else `name@version`.
    pub fn describe(&self, id: NodeId) -> String {
        match &self.nodes[id].resolved {
            None => "the root project".to_owned(),
            Some(r) => format!("{}@{}", r.package(), r.version),
        }
    }

    /// The shortest dependency path from the project to `id`, by folder names:
    /// `app > express > body-parser`.
    pub fn dependency_path(&self, id: NodeId) -> String {
        let mut prev: HashMap<NodeId, NodeId> = HashMap::new();
        let mut queue = VecDeque::from([Tree::ROOT]);
        let mut seen = BTreeSet::from([Tree::ROOT]);
        while let Some(n) = queue.pop_front() {
            if n == id {
                break;
            }
            for to in self.out_nodes(n, |_| true) {
                if seen.insert(to) {
                    prev.insert(to, n);
                    queue.push_back(to);
                }
            }
        }
        let mut chain = vec![id];
        while let Some(&p) = chain.last().and_then(|c| prev.get(c)) {
            chain.push(p);
        }
        chain.reverse();
        let root = if self.opts.root_name.is_empty() { "(root)" } else { self.opts.root_name.as_str() };
        let mut names = vec![root.to_owned()];
        // A link and its folder are one step.
        names.extend(
            chain
                .into_iter()
                .filter(|&n| n != Tree::ROOT && self.nodes[n].fs_path.is_none())
                .map(|n| self.nodes[n].name.clone()),
        );
        names.join(" > ")
    }

    /// What `n` leads to: where each of its edges the `follow` test accepts resolves, and a
    /// link's folder.
    pub(crate) fn out_nodes<'t>(
        &'t self,
        n: NodeId,
        follow: impl Fn(EdgeKind) -> bool + 't,
    ) -> impl Iterator<Item = NodeId> + 't {
        let edges = self.nodes[n]
            .edges
            .iter()
            .filter(move |e| follow(e.kind))
            .filter_map(move |e| self.resolve(n, &e.request.name));
        self.nodes[n].link.into_iter().chain(edges)
    }

    /// A node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    /// Every placed package (not the root), in location order.
    pub fn packages(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = (1..self.nodes.len()).filter(|&id| !self.nodes[id].removed).collect();
        ids.sort_by_cached_key(|&id| self.location(id));
        ids
    }

    /// The node's location relative to the project: `node_modules/a/node_modules/@s/b`
    /// (empty for the root), `packages/a` for a linked folder and
    /// `packages/a/node_modules/b` below it.
    pub fn location(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut cur = id;
        let mut base = "";
        loop {
            if let Some(path) = &self.nodes[cur].fs_path {
                base = path.as_str();
                break;
            }
            let Some(parent) = self.nodes[cur].parent else { break };
            parts.push(self.nodes[cur].name.as_str());
            cur = parent;
        }
        parts.reverse();
        let chain = parts.iter().map(|p| format!("node_modules/{p}")).collect::<Vec<_>>().join("/");
        match (base, chain.is_empty()) {
            ("", _) => chain,
            (b, true) => b.to_owned(),
            (b, false) => format!("{b}/{chain}"),
        }
    }

    /// A link's target (the node itself when it is not a link).
    pub fn target(&self, id: NodeId) -> NodeId {
        self.nodes[id].link.unwrap_or(id)
    }

    /// Add a linked folder: the folder's node at `fs_path` (its `node_modules` searched, then
    /// `fs_parent`'s), with `edges`, and a link to it named `name` in `parent`'s
    /// `node_modules`. Returns `(link, target)`. The same folder linked twice has one target.
    pub(crate) fn add_link(
        &mut self,
        parent: NodeId,
        name: &str,
        resolved: Resolved,
        fs_path: &str,
        fs_parent: Option<NodeId>,
        edges: Vec<Edge>,
    ) -> (NodeId, NodeId) {
        let existing = (0..self.nodes.len())
            .find(|&id| !self.nodes[id].removed && self.nodes[id].fs_path.as_deref() == Some(fs_path));
        let target = match existing {
            Some(t) => t,
            None => {
                let t = self.nodes.len();
                self.nodes.push(Node {
                    name: name.to_owned(),
                    resolved: Some(resolved.clone()),
                    parent: fs_parent,
                    children: BTreeMap::new(),
                    edges: Vec::new(),
                    link: None,
                    fs_path: Some(fs_path.to_owned()),
                    removed: false,
                    overrides: None,
                });
                t
            }
        };
        let link = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_owned(),
            resolved: Some(resolved),
            parent: Some(parent),
            children: BTreeMap::new(),
            edges: Vec::new(),
            link: Some(target),
            fs_path: None,
            removed: false,
            overrides: None,
        });
        self.nodes[parent].children.insert(name.to_owned(), link);
        let rule = self.rule_from_edges_in(link, name);
        self.nodes[link].overrides = rule;
        if existing.is_none() {
            // The folder is governed by what reaches its link.
            self.nodes[target].overrides = rule;
            self.set_edges(target, edges);
            let work = self.edge_targets(target);
            self.edges_in_added(work);
        } else if let Some(rule) = rule {
            self.edges_in_added(vec![(target, rule)]);
        }
        (link, target)
    }

    /// The linked folders' nodes (workspaces and `file:` folders), in location order.
    pub fn link_targets(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> =
            self.live().filter(|&id| self.nodes[id].fs_path.is_some() && id != Tree::ROOT).collect();
        ids.sort_by_cached_key(|&id| self.location(id));
        ids
    }

    /// How many ancestors the node has (the root is 0).
    pub fn depth(&self, id: NodeId) -> usize {
        let mut d = 0;
        let mut cur = id;
        while let Some(p) = self.nodes[cur].parent {
            d += 1;
            cur = p;
        }
        d
    }

    /// The node and its ancestors, nearest first.
    pub fn ancestors(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::successors(Some(id), move |&n| self.nodes[n].parent)
    }

    /// What `require(name)` from inside `from` finds: `from`'s own `node_modules`, then each
    /// ancestor's.
    pub fn resolve(&self, from: NodeId, name: &str) -> Option<NodeId> {
        self.ancestors(from).find_map(|a| self.nodes[a].children.get(name).copied())
    }

    /// Whether `node` satisfies `edge`: the same registry package in a matching version or
    /// tag (a linked folder counts by its `package.json` version, as arborist counts a
    /// workspace), or, for a spec that names a place, that same place.
    ///
    /// Under `overrides`, an edge is also not satisfied by a node with dependencies of its own
    /// whose rule conflicts with the edge's (arborist's `Edge.error`).
    pub fn satisfies(&self, node: NodeId, edge: &Edge) -> bool {
        let Some(r) = &self.nodes[node].resolved else { return false };
        if !edge_satisfied(r, edge) {
            return false;
        }
        let to = self.target(node);
        match (&self.opts.overrides, edge.overrides, self.nodes[to].overrides) {
            (Some(ov), Some(a), Some(b)) if !self.nodes[to].edges.is_empty() => ov.specific(a, b).is_some(),
            _ => true,
        }
    }

    /// Whether `node` is `ancestor` or below it.
    pub fn is_within(&self, node: NodeId, ancestor: NodeId) -> bool {
        self.ancestors(node).any(|a| a == ancestor)
    }

    pub(crate) fn add_child(
        &mut self,
        parent: NodeId,
        name: &str,
        resolved: Resolved,
        edges: Vec<Edge>,
    ) -> NodeId {
        if let super::resolve::Origin::Link { path } = &resolved.origin {
            let path = path.clone();
            let fs_parent = super::local::inside(&path).then_some(Tree::ROOT);
            return self.add_link(parent, name, resolved, &path, fs_parent, edges).0;
        }
        let id = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_owned(),
            resolved: Some(resolved),
            parent: Some(parent),
            children: BTreeMap::new(),
            edges: Vec::new(),
            link: None,
            fs_path: None,
            removed: false,
            overrides: None,
        });
        self.nodes[parent].children.insert(name.to_owned(), id);
        self.nodes[id].overrides = self.rule_from_edges_in(id, name);
        self.set_edges(id, edges);
        let work = self.edge_targets(id);
        self.edges_in_added(work);
        id
    }

    /// Live nodes (root included).
    pub(crate) fn live(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).filter(|&id| !self.nodes[id].removed)
    }
}

/// Whether `r` satisfies `edge`: what the edge asks for, or, for an overridden edge, what its
/// package asked for where the override's key range does not reach (arborist's `satisfiedBy`).
pub(crate) fn edge_satisfied(r: &Resolved, edge: &Edge) -> bool {
    if satisfies(r, &edge.request) {
        return true;
    }
    let Some(o) = &edge.overridden else { return false };
    if !satisfies(r, &o.raw) {
        return false;
    }
    match VersionSpec::parse(&o.key) {
        Ok(key) => !satisfies(r, &Request { spec: key, ..o.raw.clone() }),
        Err(_) => false,
    }
}

/// Whether `r` satisfies `request` (see [`Tree::satisfies`]).
pub(crate) fn satisfies(r: &Resolved, request: &Request) -> bool {
    use super::resolve::Origin;
    match (&request.spec, &r.origin) {
        (VersionSpec::Directory { path, .. }, Origin::Link { path: have }) => path == have,
        (VersionSpec::File { path, .. }, Origin::Tarball { resolved, .. }) => {
            resolved.strip_prefix("file:") == Some(path.as_str())
        }
        (VersionSpec::Remote(url), Origin::Tarball { resolved, .. }) => url == resolved,
        (VersionSpec::Git(raw), Origin::Tarball { resolved, git: true }) => {
            // arborist's `dep-valid.js`: the same repository; a full commit asked for must be
            // the one checked out, a `semver:` range must hold the package's version.
            use super::git::GitSpec;
            let (Ok(want), Ok(have)) = (GitSpec::parse(raw), GitSpec::parse(resolved)) else { return false };
            if want.base != have.base {
                return false;
            }
            match (&want.range, &want.committish) {
                (Some(range), _) => {
                    super::semver::parse_range(range).is_some_and(|range| range.satisfies(&r.semver))
                }
                (None, Some(c)) if super::git::is_commit(c) => {
                    have.committish.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(c))
                }
                _ => true,
            }
        }
        (VersionSpec::Workspace(_), Origin::Link { .. }) => {
            r.package() == request.package && request.spec.satisfies(&r.semver)
        }
        (spec, _) if spec.is_registry() => {
            if r.package() != request.package {
                return false;
            }
            match spec {
                VersionSpec::Tag(tag) => r.is_tagged(tag),
                spec => spec.satisfies(&r.semver),
            }
        }
        _ => false,
    }
}

/// The edges of a resolved package, as arborist loads them: peer (and optional peer), then
/// `dependencies`, then `optionalDependencies` (a later kind replaces an earlier one for the
/// same name). Edges whose spec is not a registry spec are dropped with a log line.
pub fn package_edges(r: &Resolved) -> Vec<Edge> {
    let m = r.manifest();
    let mut edges: BTreeMap<String, Edge> = BTreeMap::new();
    let mut push = |name: &str, spec: &str, kind: EdgeKind| match Request::from_dependency(name, spec) {
        Ok(request) => {
            edges.insert(name.to_owned(), Edge::new(request, spec.to_owned(), kind));
        }
        Err(e) => {
            tracing::warn!(package = %r.package(), version = %r.version, dep = name, error = %e, "skipping dependency")
        }
    };
    for (name, spec) in &m.peer_dependencies {
        push(name, spec, if m.is_optional_peer(name) { EdgeKind::PeerOptional } else { EdgeKind::Peer });
    }
    for (name, spec) in &m.dependencies {
        push(name, spec, EdgeKind::Prod);
    }
    for (name, spec) in &m.optional_dependencies {
        push(name, spec, EdgeKind::Optional);
    }
    edges.into_values().collect()
}

/// Root edges from `package.json` requests.
pub fn root_edges(requests: &[(DepKind, Request)]) -> Vec<Edge> {
    requests
        .iter()
        .map(|(kind, r)| {
            let kind = match kind {
                DepKind::Prod => EdgeKind::Prod,
                DepKind::Dev => EdgeKind::Dev,
                DepKind::Optional => EdgeKind::Optional,
                DepKind::Peer => EdgeKind::Peer,
            };
            Edge::new(r.clone(), r.spec.to_string(), kind)
        })
        .collect()
}

/// `err`, for the dependency `name` of `node`, with the dependency path that led there.
pub(crate) fn in_tree(tree: &Tree, node: NodeId, name: &str, err: ResolveError) -> ResolveError {
    match err {
        // Already explained (a peer conflict names its own paths).
        e @ (ResolveError::Dependency { .. } | ResolveError::PeerConflict { .. }) => e,
        e => ResolveError::Dependency {
            path: format!("{} > {name}", tree.dependency_path(node)),
            source: Box::new(e),
        },
    }
}
