//! The tree that is installed, read from `node_modules` the way npm's arborist `loadActual`
//! reads it: one node per package folder, each dependency edge resolved as Node.js resolves a
//! `require` (the nearest `node_modules` up the folder chain), checked against its spec, and
//! npm's dep flags (`dev`, `optional`, `devOptional`, `peer`, `extraneous`) worked out from the
//! root. `ims ls` and `ims why` ([`crate::listing`]) print from it.
//!
//! Reading never writes. A symlinked package is a link node without edges; the folder it
//! points at is a node of its own (arborist's `Link.target`), read once however many links
//! lead there, named after its folder and placed at its path from the project (`packages/a`,
//! `../lib`); it resolves its dependencies in its own `node_modules` and then in the folders
//! above it. The root's workspaces are found from its `workspaces` globs, each reached by a
//! `workspace` edge. A symlinked `node_modules` is not walked, a link that leads nowhere is an
//! unreadable folder (as npm takes it); a cloned project is hostile input, and depth and node
//! count are capped.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::request::VersionSpec;
use crate::semver;

/// Index of a node in an [`ActualTree`]; the root (the project) is [`ActualTree::ROOT`].
pub type ActualId = usize;

/// Most folders deep a walk goes (npm trees are rarely deeper than 10).
const MAX_DEPTH: usize = 64;
/// Most package folders one walk reads.
const MAX_NODES: usize = 200_000;
/// Largest `package.json` read.
const MAX_MANIFEST: u64 = 16 << 20;

/// A dependency edge's type, in npm's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeType {
    /// `dependencies`.
    Prod,
    /// `devDependencies` (the root's only).
    Dev,
    /// `optionalDependencies`.
    Optional,
    /// `peerDependencies`.
    Peer,
    /// A peer dependency marked optional in `peerDependenciesMeta`.
    PeerOptional,
    /// The root's edge to one of its workspaces (arborist's `workspace` edge, `file:<folder>`),
    /// which takes the place of any other edge of that name.
    Workspace,
}

impl EdgeType {
    /// npm's name for the type (`prod`, `dev`, `optional`, `peer`, `peerOptional`).
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeType::Prod => "prod",
            EdgeType::Dev => "dev",
            EdgeType::Optional => "optional",
            EdgeType::Peer => "peer",
            EdgeType::PeerOptional => "peerOptional",
            EdgeType::Workspace => "workspace",
        }
    }

    /// Optional or optional peer: missing is not a problem.
    pub fn is_optional(self) -> bool {
        matches!(self, EdgeType::Optional | EdgeType::PeerOptional)
    }

    /// A peer edge, optional or not.
    pub fn is_peer(self) -> bool {
        matches!(self, EdgeType::Peer | EdgeType::PeerOptional)
    }
}

/// What is wrong with an edge, as arborist's `edge.error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeState {
    /// Satisfied (or optional and absent).
    Ok,
    /// Nothing by that name is reachable.
    Missing,
    /// What is reachable does not satisfy the spec.
    Invalid,
    /// A peer dependency nested under its own dependent (npm's `PEER LOCAL`).
    PeerLocal,
}

/// One dependency edge out of a node.
#[derive(Debug, Clone)]
pub struct ActualEdge {
    /// The name asked for (the folder name it resolves by).
    pub name: String,
    /// The spec as written.
    pub spec: String,
    /// Its type.
    pub kind: EdgeType,
    /// Where it resolves, if anywhere.
    pub to: Option<ActualId>,
    /// Whether that satisfies it.
    pub state: EdgeState,
    /// What an override made it ask for instead of `spec`, if anything.
    pub overridden: Option<String>,
}

impl ActualEdge {
    /// arborist's `edge.valid`.
    pub fn is_valid(&self) -> bool {
        self.state == EdgeState::Ok
    }
}

/// npm's dependency flags for a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepFlags {
    /// Only reachable through a dev edge of the root.
    pub dev: bool,
    /// Only reachable through optional edges.
    pub optional: bool,
    /// Needed by both a dev and an optional path, by neither alone.
    pub dev_optional: bool,
    /// Only reachable through peer edges.
    pub peer: bool,
    /// Not reachable from the root at all.
    pub extraneous: bool,
}

/// One package folder (or the project itself).
#[derive(Debug, Clone)]
pub struct ActualNode {
    /// The folder name (scope included); for the root, its package name or folder name.
    pub name: String,
    /// Relative to the project: `node_modules/a/node_modules/@s/b`; `""` for the root.
    pub location: String,
    /// The absolute folder.
    pub path: PathBuf,
    /// The folder whose `node_modules` holds it.
    pub parent: Option<ActualId>,
    /// Packages in its own `node_modules`, by folder name.
    pub children: BTreeMap<String, ActualId>,
    /// Its `package.json` (empty when missing or unreadable).
    pub package: Map<String, Value>,
    /// Why its `package.json` could not be read, if it could not.
    pub error: Option<String>,
    /// For a symlinked package: where the link points, relative to the project
    /// (`packages/a`, `../lib`), as npm prints it after `->`.
    pub link_target: Option<String>,
    /// For a symlinked package: the node of the folder it points to (`None` when the link is
    /// broken). That node holds the edges; the link has none.
    pub target: Option<ActualId>,
    /// The links that point at this folder.
    pub links_in: Vec<ActualId>,
    /// For a folder no `node_modules` holds (a link's target, a workspace): the nearest loaded
    /// folder above it (arborist's `fsParent`), where its dependencies resolve after its own
    /// `node_modules`, as Node.js resolves them.
    pub fs_parent: Option<ActualId>,
    /// Where it was fetched from, as the hidden lockfile recorded it.
    pub resolved: Option<String>,
    /// Its edges out, by name.
    pub edges: Vec<ActualEdge>,
    /// Edges into it: (from node, index in its `edges`), in the order the tree is walked.
    pub edges_in: Vec<(ActualId, usize)>,
    /// npm's dep flags.
    pub flags: DepFlags,
    /// Its version is what an override asked for (arborist's `node.overridden`).
    pub overridden: bool,
}

impl ActualNode {
    fn new(
        name: String,
        location: String,
        path: PathBuf,
        parent: Option<ActualId>,
        package: Map<String, Value>,
        error: Option<String>,
    ) -> Self {
        ActualNode {
            name,
            location,
            path,
            parent,
            children: BTreeMap::new(),
            package,
            error,
            link_target: None,
            target: None,
            links_in: Vec::new(),
            fs_parent: None,
            resolved: None,
            edges: Vec::new(),
            edges_in: Vec::new(),
            flags: DepFlags::default(),
            overridden: false,
        }
    }

    /// `version` from `package.json`.
    pub fn version(&self) -> Option<&str> {
        self.package.get("version").and_then(Value::as_str)
    }

    /// `name` from `package.json` (the registry package; differs from the folder for aliases).
    pub fn package_name(&self) -> Option<&str> {
        self.package.get("name").and_then(Value::as_str)
    }

    /// `name@version`, as arborist's `pkgid`: `name@npm:package@version` when the folder's
    /// name is not its package's (an alias, or a link's target named after its folder).
    pub fn pkgid(&self) -> String {
        let version = self.version().unwrap_or("");
        match self.package_name() {
            Some(pkg) if !self.location.is_empty() && pkg != self.name => {
                format!("{}@npm:{pkg}@{version}", self.name)
            }
            _ => format!("{}@{version}", self.name),
        }
    }

    /// A symlinked package.
    pub fn is_link(&self) -> bool {
        self.link_target.is_some()
    }

    /// Not in any `node_modules` (the root, a link's target): arborist's `isTop`, whose
    /// `devDependencies` count.
    pub fn is_top(&self) -> bool {
        self.parent.is_none()
    }

    /// Where its dependencies resolve after its own `node_modules` (arborist's
    /// `resolveParent`).
    pub fn resolve_parent(&self) -> Option<ActualId> {
        self.parent.or(self.fs_parent)
    }
}

/// Why the installed tree could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActualError {
    /// The project's own `package.json` is not JSON.
    #[error("{path} is not valid JSON: {reason}")]
    RootJson {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The project folder could not be read.
    #[error("could not read {path}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// More package folders than a tree can reasonably hold.
    #[error("{path} holds more than {MAX_NODES} package folders; refusing to read further")]
    TooLarge {
        /// The project.
        path: PathBuf,
    },
}

/// The installed tree of a project.
#[derive(Debug, Clone)]
pub struct ActualTree {
    nodes: Vec<ActualNode>,
    workspaces: Vec<crate::local::Workspace>,
    from_hidden_lockfile: bool,
}

impl ActualTree {
    /// The project itself.
    pub const ROOT: ActualId = 0;

    /// Read `dir/package.json` and everything under `dir/node_modules`.
    pub fn load(dir: &Path) -> Result<Self, ActualError> {
        Self::load_with(dir, false)
    }

    /// The global tree at `PREFIX/lib`: as arborist does in global mode, the root (which has no
    /// `package.json`) depends on each package installed there with `*`.
    pub fn load_global(lib: &Path) -> Result<Self, ActualError> {
        Self::load_with(lib, true)
    }

    fn load_with(dir: &Path, global: bool) -> Result<Self, ActualError> {
        let dir = fs::canonicalize(dir).map_err(|source| ActualError::Io { path: dir.to_owned(), source })?;
        let (package, error) = read_manifest(&dir.join("package.json"));
        if let Some(reason) = &error
            && dir.join("package.json").exists()
            && !reason.starts_with("could not read")
        {
            return Err(ActualError::RootJson { path: dir.join("package.json"), reason: reason.clone() });
        }
        let name =
            package.get("name").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| {
                dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            });
        let root = ActualNode::new(name, String::new(), dir.clone(), None, package, None);
        let mut tree = ActualTree { nodes: vec![root], workspaces: Vec::new(), from_hidden_lockfile: false };
        tree.walk(Self::ROOT, &dir, 0)?;
        if !global {
            let patterns = crate::local::patterns_in(tree.nodes[Self::ROOT].package.get("workspaces"));
            tree.workspaces = crate::local::workspaces_lenient(&patterns, &dir);
        }
        tree.load_targets()?;
        if global {
            let deps: Map<String, Value> = tree.nodes[Self::ROOT]
                .children
                .iter()
                .map(|(k, &id)| {
                    let n = &tree.nodes[id];
                    let spec = match n.target {
                        Some(t) if n.is_link() => format!("file:{}", tree.nodes[t].path.display()),
                        _ => "*".to_owned(),
                    };
                    (k.clone(), Value::String(spec))
                })
                .collect();
            let root = &mut tree.nodes[Self::ROOT];
            root.package = Map::from_iter([
                ("name".to_owned(), Value::String(root.name.clone())),
                ("dependencies".to_owned(), Value::Object(deps)),
            ]);
        }
        tree.read_hidden_lockfile(&dir);
        tree.load_edges();
        tree.apply_overrides();
        tree.calc_dep_flags();
        Ok(tree)
    }

    /// Each link's target folder as a node of its own (arborist's `Link.target`): the node
    /// already loaded at that real path, or a new top node whose `node_modules` is walked in
    /// turn; then each workspace no link points at, and for every such top node the nearest
    /// loaded folder above it (its `fsParent`).
    fn load_targets(&mut self) -> Result<(), ActualError> {
        let root_path = self.nodes[Self::ROOT].path.clone();
        let mut by_path: HashMap<PathBuf, ActualId> = HashMap::new();
        for (id, n) in self.nodes.iter().enumerate() {
            if !n.is_link() {
                by_path.insert(n.path.clone(), id);
            }
        }
        let mut tops: Vec<ActualId> = Vec::new();
        let mut next = 0;
        loop {
            // Every link not yet seen, the ones inside new targets included.
            while next < self.nodes.len() {
                let id = next;
                next += 1;
                if !self.nodes[id].is_link() {
                    continue;
                }
                let Ok(real) = fs::canonicalize(&self.nodes[id].path) else { continue };
                let target = match by_path.get(&real) {
                    Some(&t) => t,
                    None => {
                        let t = self.top_node(&real)?;
                        by_path.insert(real, t);
                        tops.push(t);
                        t
                    }
                };
                self.nodes[id].target = Some(target);
                self.nodes[target].links_in.push(id);
            }
            // Then a workspace no link points at (arborist loads those too).
            let pending = self.workspaces.iter().find_map(|ws| {
                fs::canonicalize(root_path.join(&ws.path)).ok().filter(|real| !by_path.contains_key(real))
            });
            let Some(real) = pending else { break };
            let t = self.top_node(&real)?;
            by_path.insert(real, t);
            tops.push(t);
        }
        for t in tops {
            let mut up = self.nodes[t].path.parent();
            while let Some(dir) = up {
                if let Some(&p) = by_path.get(dir)
                    && p != t
                {
                    self.nodes[t].fs_parent = Some(p);
                    break;
                }
                up = dir.parent();
            }
        }
        Ok(())
    }

    /// A folder outside any `node_modules` walk (a link's target, a workspace) as a new node
    /// named after its folder, as arborist names a link's target; its `node_modules` walked.
    fn top_node(&mut self, real: &Path) -> Result<ActualId, ActualError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(ActualError::TooLarge { path: self.nodes[Self::ROOT].path.clone() });
        }
        let root = &self.nodes[Self::ROOT].path;
        let location = relative(root, real);
        let (package, error) = read_manifest(&real.join("package.json"));
        let name = name_from_folder(real);
        let id = self.nodes.len();
        self.nodes.push(ActualNode::new(name, location, real.to_owned(), None, package, error));
        self.walk(id, real, 1)?;
        Ok(id)
    }

    /// A node.
    pub fn node(&self, id: ActualId) -> &ActualNode {
        &self.nodes[id]
    }

    /// Every node, the root first, then in location order (npm's inventory order).
    pub fn ids(&self) -> impl Iterator<Item = ActualId> + '_ {
        0..self.nodes.len()
    }

    /// The node at a location (`node_modules/a`), if any.
    pub fn at(&self, location: &str) -> Option<ActualId> {
        self.nodes.iter().position(|n| n.location == location)
    }

    /// Where `name` resolves from `from`: its own `node_modules`, then each parent's (for a
    /// folder outside `node_modules`, the folders above it), as Node.js resolves a `require`.
    pub fn resolve(&self, from: ActualId, name: &str) -> Option<ActualId> {
        let mut at = Some(from);
        let mut steps = 0;
        while let Some(id) = at {
            if let Some(&child) = self.nodes[id].children.get(name) {
                return Some(child);
            }
            steps += 1;
            if steps > self.nodes.len() {
                return None;
            }
            at = self.nodes[id].resolve_parent();
        }
        None
    }

    /// The project's workspaces (name and folder), as its `package.json` globs find them.
    pub fn workspaces(&self) -> &[crate::local::Workspace] {
        &self.workspaces
    }

    /// arborist's `isWorkspace`: the root's workspace edge of this package's name reaches it
    /// (the link in `node_modules`) or its folder (the link's target).
    pub fn is_workspace(&self, id: ActualId) -> bool {
        if id == Self::ROOT {
            return false;
        }
        let Some(name) = self.nodes[id].package_name() else { return false };
        self.nodes[Self::ROOT].edges.iter().any(|e| {
            e.kind == EdgeType::Workspace
                && e.name == name
                && e.to.is_some_and(|to| to == id || self.nodes[to].target == Some(id))
        })
    }

    /// arborist's `packageName` for a node: its `package.json` name; read from the hidden
    /// lockfile, whose entries are named after their folder when they have no name, the
    /// folder's name otherwise.
    pub fn package_name(&self, id: ActualId) -> Option<&str> {
        let n = &self.nodes[id];
        n.package_name().or_else(|| {
            (self.from_hidden_lockfile && id != Self::ROOT && n.error.is_none()).then_some(n.name.as_str())
        })
    }

    /// The node a link points at, or the node itself (arborist's `target`).
    pub fn target(&self, id: ActualId) -> ActualId {
        self.nodes[id].target.unwrap_or(id)
    }

    /// The package whose bundle holds `id` (arborist's `getBundler`): its parent when the
    /// parent bundles it by name, or the bundler of a dependent that sits in the same place.
    pub fn bundler(&self, id: ActualId) -> Option<ActualId> {
        self.bundler_from(id, &mut Vec::new())
    }

    fn bundler_from(&self, id: ActualId, path: &mut Vec<ActualId>) -> Option<ActualId> {
        if path.contains(&id) {
            return None;
        }
        path.push(id);
        let parent = self.nodes[id].parent?;
        if let Some(b) = self.bundler_from(parent, path) {
            return Some(b);
        }
        if bundle_list(&self.nodes[parent].package).iter().any(|n| *n == self.nodes[id].name) {
            return Some(parent);
        }
        for &(from, _) in &self.nodes[id].edges_in {
            if self.bundler_from(from, path) == Some(parent) {
                return Some(parent);
            }
        }
        None
    }

    fn walk(&mut self, parent: ActualId, dir: &Path, depth: usize) -> Result<(), ActualError> {
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        let modules = dir.join("node_modules");
        // Not walked through a symlink: a committed `node_modules -> ..` would loop or leave.
        match fs::symlink_metadata(&modules) {
            Ok(m) if m.is_dir() => {}
            _ => return Ok(()),
        }
        for (name, path) in package_folders(&modules) {
            if self.nodes.len() >= MAX_NODES {
                return Err(ActualError::TooLarge { path: self.nodes[Self::ROOT].path.clone() });
            }
            let location = match self.nodes[parent].location.as_str() {
                "" => format!("node_modules/{name}"),
                loc => format!("{loc}/node_modules/{name}"),
            };
            let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            let (package, error) = read_manifest(&path.join("package.json"));
            // A link that leads nowhere is a package folder that cannot be read, as arborist
            // takes it (its realpath fails).
            let link_target = if is_link {
                fs::canonicalize(&path).ok().map(|real| relative(&self.nodes[Self::ROOT].path, &real))
            } else {
                None
            };
            let id = self.nodes.len();
            let mut node =
                ActualNode::new(name.clone(), location, path.clone(), Some(parent), package, error);
            node.link_target = link_target;
            self.nodes.push(node);
            self.nodes[parent].children.insert(name, id);
            if !is_link {
                self.walk(id, &path, depth + 1)?;
            }
        }
        Ok(())
    }

    /// `resolved` comes from the hidden lockfile npm and ims write, else from
    /// `package-lock.json` (`package.json` files do not carry it any more); an entry counts only
    /// if its version is the one installed there, as arborist's shrinkwrap check does.
    fn read_hidden_lockfile(&mut self, dir: &Path) {
        let read = |path: PathBuf| -> Option<Map<String, Value>> {
            let meta = fs::symlink_metadata(&path).ok()?;
            if !meta.is_file() || meta.len() > 256 << 20 {
                return None;
            }
            let text = fs::read_to_string(&path).ok()?;
            serde_json::from_str::<Value>(&text).ok()?.get("packages")?.as_object().cloned()
        };
        let locks: Vec<Map<String, Value>> = [
            dir.join("node_modules/.package-lock.json"),
            dir.join("npm-shrinkwrap.json"),
            dir.join("package-lock.json"),
        ]
        .into_iter()
        .filter_map(read)
        .collect();
        // npm reads the tree from its hidden lockfile only when it is current (else it walks
        // the folders): what `explain` lists first follows.
        self.from_hidden_lockfile = dir.join("node_modules/.package-lock.json").is_file()
            && locks.first().is_some_and(|hidden| hidden_lockfile_current(dir, hidden));
        let links: Vec<(ActualId, String)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(id, n)| {
                let t = n.target.filter(|_| n.is_link())?;
                let dir = n.path.parent()?;
                Some((id, format!("file:{}", relative(dir, &self.nodes[t].path))))
            })
            .collect();
        for (id, resolved) in links {
            // A link resolves to its target, relative to the link's folder (arborist's `Link`).
            self.nodes[id].resolved = Some(resolved);
        }
        for node in self.nodes.iter_mut().skip(1).filter(|n| !n.is_link()) {
            let version = node.version().map(str::to_owned);
            for lock in &locks {
                let Some(entry) = lock.get(&node.location) else { continue };
                let locked = entry.get("version").and_then(Value::as_str);
                if locked.is_some() && version.is_some() && locked != version.as_deref() {
                    continue;
                }
                if let Some(resolved) = entry.get("resolved").and_then(Value::as_str) {
                    node.resolved = Some(resolved.to_owned());
                    break;
                }
            }
        }
    }

    /// Each node's edges out, in arborist's order of precedence: peer, optional peer, prod,
    /// optional, dev (the root's only); a later type replaces an earlier one of the same name.
    fn load_edges(&mut self) {
        for id in 0..self.nodes.len() {
            let node = &self.nodes[id];
            if node.is_link() {
                continue;
            }
            let pkg = &node.package;
            let mut wanted: BTreeMap<String, (EdgeType, String)> = BTreeMap::new();
            let meta = pkg.get("peerDependenciesMeta").and_then(Value::as_object);
            let peer_optional = |name: &str| {
                meta.and_then(|m| m.get(name)).and_then(|m| m.get("optional")).and_then(Value::as_bool)
                    == Some(true)
            };
            let mut add = |field: &str, kind: &dyn Fn(&str) -> EdgeType| {
                if let Some(deps) = pkg.get(field).and_then(Value::as_object) {
                    for (name, spec) in deps {
                        let spec = spec.as_str().unwrap_or("").to_owned();
                        wanted.insert(name.clone(), (kind(name), spec));
                    }
                }
            };
            add("peerDependencies", &|n| {
                if peer_optional(n) { EdgeType::PeerOptional } else { EdgeType::Peer }
            });
            add("dependencies", &|_| EdgeType::Prod);
            add("optionalDependencies", &|_| EdgeType::Optional);
            // A top folder's (the root's, a link target's) devDependencies count.
            if node.is_top() {
                add("devDependencies", &|_| EdgeType::Dev);
            }
            if id == Self::ROOT {
                // Each workspace's edge replaces whatever else the root names it with.
                for ws in &self.workspaces {
                    let spec = format!("file:{}", node.path.join(&ws.path).display());
                    wanted.insert(ws.name.clone(), (EdgeType::Workspace, spec));
                }
            }
            let mut edges = Vec::with_capacity(wanted.len());
            for (name, (kind, spec)) in wanted {
                let to = self.resolve(id, &name);
                let state = match to {
                    None if kind.is_optional() => EdgeState::Ok,
                    None => EdgeState::Missing,
                    Some(to) if kind.is_peer() && self.nodes[to].parent == Some(id) && !node.is_top() => {
                        EdgeState::PeerLocal
                    }
                    Some(to) if !self.edge_valid(id, to, &name, &spec) => EdgeState::Invalid,
                    Some(_) => EdgeState::Ok,
                };
                edges.push(ActualEdge { name, spec, kind, to, state, overridden: None });
            }
            self.nodes[id].edges = edges;
        }
        // arborist makes the root's edges again once it knows the workspaces: with any, they
        // come last into each package.
        let order: Vec<ActualId> = if self.workspaces.is_empty() {
            (0..self.nodes.len()).collect()
        } else {
            (1..self.nodes.len()).chain([Self::ROOT]).collect()
        };
        for id in order {
            for i in 0..self.nodes[id].edges.len() {
                if let Some(to) = self.nodes[id].edges[i].to {
                    self.nodes[to].edges_in.push((id, i));
                }
            }
        }
    }

    /// The order npm's inventory holds packages in, which `npm explain` lists them by: read
    /// from the hidden lockfile, the folders by location and then the links; walked from the
    /// folders, by location, a link's target right after the (first) link to it.
    pub fn inventory_key(&self, id: ActualId) -> (bool, &str, bool) {
        let n = &self.nodes[id];
        if self.from_hidden_lockfile {
            return (n.is_link(), n.location.as_str(), false);
        }
        match n.links_in.first() {
            Some(&l) if n.is_top() && id != Self::ROOT => (false, self.nodes[l].location.as_str(), true),
            _ => (false, n.location.as_str(), false),
        }
    }

    /// arborist's `depValid` for an edge from `from` to `to`: a folder spec (`file:../lib`,
    /// `./lib`, a workspace's) wants a link to that very folder, resolved from the dependent's
    /// own folder; the rest as [`satisfies`].
    fn edge_valid(&self, from: ActualId, to: ActualId, name: &str, spec: &str) -> bool {
        let node = &self.nodes[to];
        if node.name != name {
            return false;
        }
        match crate::request::VersionSpec::parse_place(spec) {
            Some(crate::request::VersionSpec::Directory { path, .. }) => {
                let Some(target) = node.target.filter(|_| node.is_link()) else { return false };
                let wanted = self.nodes[from].path.join(&path);
                let wanted = fs::canonicalize(&wanted).unwrap_or(wanted);
                self.nodes[target].path == wanted
            }
            _ => satisfies(node, name, spec),
        }
    }

    /// The edges' states under the root's `overrides`, and which nodes they overrode: each
    /// node is governed by the most specific rule of the edges that reach it, walked from the
    /// root as [`crate::overrides`] describes.
    fn apply_overrides(&mut self) {
        use crate::overrides::Overrides;
        let root = &self.nodes[Self::ROOT].package;
        let Some(value) = root.get("overrides") else { return };
        let mut refs = BTreeMap::new();
        for field in ["peerDependencies", "dependencies", "optionalDependencies", "devDependencies"] {
            for (name, spec) in root.get(field).and_then(Value::as_object).into_iter().flatten() {
                if let Some(spec) = spec.as_str() {
                    refs.insert(name.clone(), spec.to_owned());
                }
            }
        }
        let Ok(Some(ov)) = Overrides::parse(value, refs) else { return };
        let mut sets: Vec<Option<usize>> = vec![None; self.nodes.len()];
        sets[Self::ROOT] = Some(Overrides::ROOT);
        let mut by_edge = vec![false; self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        let mut queue = std::collections::VecDeque::from([Self::ROOT]);
        let mut next_unseen = 0;
        // Folders nothing reached (workspaces, by their links) start from the root rule.
        let mut next = |queue: &mut std::collections::VecDeque<ActualId>, seen: &[bool]| {
            queue.pop_front().or_else(|| {
                while next_unseen < seen.len() && seen[next_unseen] {
                    next_unseen += 1;
                }
                (next_unseen < seen.len()).then_some(next_unseen)
            })
        };
        while let Some(id) = next(&mut queue, &seen) {
            if std::mem::replace(&mut seen[id], true) {
                continue;
            }
            let set = sets[id].unwrap_or(Overrides::ROOT);
            for i in 0..self.nodes[id].edges.len() {
                let e = &self.nodes[id].edges[i];
                let Ok(raw) = crate::request::Request::from_dependency(&e.name, &e.spec) else { continue };
                let rule = ov.edge_rule(set, &raw);
                let Some(to) = e.to else { continue };
                sets[to] = match sets[to] {
                    None => Some(rule),
                    Some(cur) => Some(ov.specific(cur, rule).unwrap_or(cur)),
                };
                queue.push_back(to);
                let Ok(Some(wanted)) = ov.replacement(rule, &e.name, |_| None) else { continue };
                if !matches!(e.state, EdgeState::Ok | EdgeState::Invalid) {
                    continue;
                }
                let node = &self.nodes[to];
                let fits = |spec: &str| satisfies(node, &e.name, spec);
                let ok = fits(&wanted) || (fits(&e.spec) && !fits(ov.key_spec(rule)));
                if ok && rule != set && node.version() == Some(ov.value(rule)) {
                    by_edge[to] = true;
                }
                let changed = (wanted != e.spec).then_some(wanted);
                let edge = &mut self.nodes[id].edges[i];
                edge.state = if ok { EdgeState::Ok } else { EdgeState::Invalid };
                edge.overridden = changed;
            }
        }
        for (id, node) in self.nodes.iter_mut().enumerate() {
            node.overridden = by_edge[id] && sets[id].is_some_and(|r| ov.names(r, &node.name));
        }
    }

    /// arborist's `calcDepFlags`: every flag starts set on every package and is unset by
    /// walking edges out from the root until nothing changes.
    fn calc_dep_flags(&mut self) {
        let all = DepFlags { dev: true, optional: true, dev_optional: true, peer: true, extraneous: true };
        for node in self.nodes.iter_mut().skip(1) {
            node.flags = all;
        }
        let mut queue = vec![Self::ROOT];
        let mut seen = vec![false; self.nodes.len()];
        while let Some(id) = queue.pop() {
            seen[id] = true;
            let from = self.nodes[id].flags;
            if !from.extraneous {
                let mut p = self.nodes[id].resolve_parent();
                while let Some(pid) = p {
                    if !self.nodes[pid].flags.extraneous {
                        break;
                    }
                    self.nodes[pid].flags.extraneous = false;
                    p = self.nodes[pid].resolve_parent();
                }
            }
            // A link hands its flags to its target.
            if self.nodes[id].is_link() {
                let Some(t) = self.nodes[id].target else { continue };
                let to = &mut self.nodes[t].flags;
                let mut changed = false;
                for (flag, from) in [
                    (&mut to.dev, from.dev),
                    (&mut to.optional, from.optional),
                    (&mut to.dev_optional, from.dev_optional),
                    (&mut to.peer, from.peer),
                    (&mut to.extraneous, from.extraneous),
                ] {
                    if *flag && !from {
                        *flag = false;
                        changed = true;
                    }
                }
                if changed || !seen[t] {
                    queue.push(t);
                }
                continue;
            }
            for e in 0..self.nodes[id].edges.len() {
                let edge = &self.nodes[id].edges[e];
                let Some(to) = edge.to else { continue };
                let (dev, optional, peer) =
                    (edge.kind == EdgeType::Dev, edge.kind.is_optional(), edge.kind.is_peer());
                let flags = &mut self.nodes[to].flags;
                let mut changed = false;
                if flags.extraneous && !from.extraneous && !(peer && optional) {
                    flags.extraneous = false;
                    changed = true;
                }
                if flags.dev && !from.dev && !dev {
                    flags.dev = false;
                    changed = true;
                }
                if flags.optional && !from.optional && !optional {
                    flags.optional = false;
                    changed = true;
                }
                if flags.dev_optional
                    && !from.dev_optional
                    && !from.dev
                    && !from.optional
                    && !dev
                    && !optional
                {
                    flags.dev_optional = false;
                    changed = true;
                }
                if flags.peer && !from.peer && !peer {
                    flags.peer = false;
                    changed = true;
                }
                if changed {
                    queue.push(to);
                }
            }
        }
        for (id, node) in self.nodes.iter_mut().enumerate() {
            if id != Self::ROOT
                && seen[id]
                && node.flags.dev_optional
                && (node.flags.dev || node.flags.optional)
            {
                node.flags.dev_optional = false;
            }
        }
    }
}

/// A package's `bundleDependencies` (or `bundledDependencies`) as names; `true` bundles every
/// dependency, as read-package-json normalizes it.
pub fn bundle_list(pkg: &Map<String, Value>) -> Vec<String> {
    match pkg.get("bundleDependencies").or_else(|| pkg.get("bundledDependencies")) {
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::Bool(true)) => pkg
            .get("dependencies")
            .and_then(Value::as_object)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The package folders in a `node_modules`, sorted by name: `name` and `@scope/name`; dot
/// entries (`.bin`, `.package-lock.json`) skipped, as npm skips them.
fn package_folders(modules: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (name, path) in sorted_entries(modules) {
        if name.starts_with('.') {
            continue;
        }
        if name.starts_with('@') {
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                for (inner, inner_path) in sorted_entries(&path) {
                    if !inner.starts_with('.') {
                        out.push((format!("{name}/{inner}"), inner_path));
                    }
                }
            }
            continue;
        }
        let is_package = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() || m.file_type().is_symlink());
        if is_package {
            out.push((name, path));
        }
    }
    out
}

fn sorted_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(read) = fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(String, PathBuf)> = read
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(|n| (n.to_owned(), e.path())))
        .collect();
    out.sort();
    out
}

/// arborist's `assertNoNewer`: the hidden lockfile is used only if no folder under
/// `node_modules` (and under the folders its links point at) is newer than it, and each
/// package folder among them has an entry in it.
fn hidden_lockfile_current(root: &Path, hidden: &Map<String, Value>) -> bool {
    let Ok(lock_time) = fs::metadata(root.join("node_modules/.package-lock.json")).and_then(|m| m.modified())
    else {
        return false;
    };
    // npm compares whole milliseconds (`+mtime + 10` against a Date).
    let ms = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let lock_time = ms(lock_time) + 10;
    let mut seen: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    // (folder, whether it is a `node_modules` or a scope folder rather than a package), by
    // name as npm tells them apart.
    let mut todo: Vec<(PathBuf, bool)> = vec![(root.join("node_modules"), true)];
    let mut visits = 0;
    while let Some((dir, container)) = todo.pop() {
        visits += 1;
        if visits > MAX_NODES || !seen.insert(dir.clone()) {
            if visits > MAX_NODES {
                return false;
            }
            continue;
        }
        let Ok(meta) = fs::metadata(&dir) else { continue };
        if meta.modified().is_ok_and(|t| ms(t) > lock_time) {
            return false;
        }
        let rel = relative(root, &dir);
        if !container && !hidden.contains_key(&rel) {
            return false;
        }
        let children = if container { dir.clone() } else { dir.join("node_modules") };
        let Ok(entries) = fs::read_dir(&children) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            if kind.is_dir() && !name.starts_with('.') {
                todo.push((path, name == "node_modules" || name.starts_with('@')));
            } else if kind.is_symlink()
                && let Ok(real) = fs::canonicalize(&path)
                && real.is_dir()
            {
                seen.insert(path);
                todo.push((real, false));
            }
        }
    }
    true
}

/// `to` relative to `from` (both absolute), `/`-separated, with `..` where it leaves `from`
/// (Node.js's `path.relative`).
pub fn relative(from: &Path, to: &Path) -> String {
    let a: Vec<_> = from.components().collect();
    let b: Vec<_> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_owned(), a.len() - common).collect();
    parts.extend(b[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    parts.join("/")
}

/// A folder's package name from its path (`@npmcli/name-from-folder`): its name, with the
/// scope when its parent folder is one.
fn name_from_folder(path: &Path) -> String {
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match path.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()) {
        Some(scope) if scope.starts_with('@') => format!("{scope}/{base}"),
        _ => base,
    }
}

/// A `package.json` as a JSON object, or why not.
fn read_manifest(path: &Path) -> (Map<String, Value>, Option<String>) {
    let read = fs::File::open(path).and_then(|f| {
        use std::io::Read as _;
        let mut text = String::new();
        f.take(MAX_MANIFEST).read_to_string(&mut text).map(|_| text)
    });
    match read {
        Err(e) => (Map::new(), Some(format!("could not read {}: {e}", path.display()))),
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => (map, None),
            Ok(_) => (Map::new(), Some("not a JSON object".to_owned())),
            Err(e) => (Map::new(), Some(e.to_string())),
        },
    }
}

/// arborist's `depValid` for registry specs: a version or range is checked with semver, `*`,
/// an empty spec and dist-tags accept any version, an `npm:` alias checks the package name and
/// its range. Git, file and URL specs are accepted as installed (their source is not checked).
pub fn satisfies(node: &ActualNode, name: &str, spec: &str) -> bool {
    spec_satisfied(&node.name, node.package_name(), node.version(), name, spec)
}

/// [`satisfies`] for a package known only by its folder name, `package.json` name and version
/// (a lockfile entry, say).
pub fn spec_satisfied(
    folder: &str,
    package_name: Option<&str>,
    version: Option<&str>,
    name: &str,
    spec: &str,
) -> bool {
    if folder != name {
        return false;
    }
    let (package, range) = match spec.strip_prefix("npm:") {
        Some(rest) => {
            let (pkg, range) = crate::request::split_name(rest);
            (Some(pkg), range.unwrap_or(""))
        }
        None => (None, spec),
    };
    if let Some(pkg) = package
        && package_name != Some(pkg)
    {
        return false;
    }
    let version = version.and_then(semver::parse_version);
    match VersionSpec::parse(range) {
        Ok(VersionSpec::Range { raw, .. }) if raw == "*" => true,
        Ok(spec @ (VersionSpec::Version(_) | VersionSpec::Range { .. })) => {
            version.is_some_and(|v| spec.satisfies(&v))
        }
        // A tag, or git, file, URL: not checked against a version.
        Ok(_) | Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn edges_resolve_up_the_folder_chain_and_flags_follow_npm() {
        let dir = project(&[
            (
                "package.json",
                r#"{"name":"app","version":"1.0.0","dependencies":{"a":"^1"},"devDependencies":{"d":"2.x"}}"#,
            ),
            (
                "node_modules/a/package.json",
                r#"{"name":"a","version":"1.2.0","dependencies":{"b":"^1"},"optionalDependencies":{"o":"*"}}"#,
            ),
            ("node_modules/b/package.json", r#"{"name":"b","version":"2.0.0"}"#),
            ("node_modules/a/node_modules/b/package.json", r#"{"name":"b","version":"1.0.0"}"#),
            ("node_modules/d/package.json", r#"{"name":"d","version":"2.1.0","dependencies":{"b":"^2"}}"#),
            ("node_modules/x/package.json", r#"{"name":"x","version":"0.1.0"}"#),
        ]);
        let tree = ActualTree::load(dir.path()).unwrap();
        let a = tree.at("node_modules/a").unwrap();
        let nested_b = tree.at("node_modules/a/node_modules/b").unwrap();
        let top_b = tree.at("node_modules/b").unwrap();
        let edge_b = tree.node(a).edges.iter().find(|e| e.name == "b").unwrap();
        assert_eq!(edge_b.to, Some(nested_b));
        assert!(edge_b.is_valid());
        let edge_o = tree.node(a).edges.iter().find(|e| e.name == "o").unwrap();
        assert_eq!((edge_o.to, edge_o.state), (None, EdgeState::Ok), "a missing optional is no problem");
        assert!(!tree.node(a).flags.dev && !tree.node(a).flags.extraneous);
        assert!(tree.node(top_b).flags.dev, "b@2 is only reached through the dev dependency d");
        assert!(tree.node(tree.at("node_modules/x").unwrap()).flags.extraneous);
    }

    #[cfg(unix)]
    #[test]
    fn workspaces_and_folders_are_links_to_nodes_of_their_own() {
        use std::os::unix::fs::symlink;
        let dir = project(&[
            (
                "package.json",
                r#"{"name":"mono","version":"1.0.0","workspaces":["packages/*"],"devDependencies":{"a":"^1"},"dependencies":{"v":"file:vendor/v","w":"file:vendor/v"}}"#,
            ),
            (
                "packages/a/package.json",
                r#"{"name":"a","version":"1.0.0","dependencies":{"ms":"^2"},"devDependencies":{"d":"1"}}"#,
            ),
            ("packages/a/node_modules/d/package.json", r#"{"name":"d","version":"1.0.0"}"#),
            ("packages/nomanifest/index.js", ""),
            ("vendor/v/package.json", r#"{"name":"v","version":"0.1.0"}"#),
            ("other/package.json", r#"{"name":"w","version":"0.1.0"}"#),
            ("node_modules/ms/package.json", r#"{"name":"ms","version":"2.1.3"}"#),
        ]);
        let p = dir.path();
        symlink("../packages/a", p.join("node_modules/a")).unwrap();
        symlink("../vendor/v", p.join("node_modules/v")).unwrap();
        symlink("../other", p.join("node_modules/w")).unwrap();
        symlink("../nowhere", p.join("node_modules/ghost")).unwrap();
        let tree = ActualTree::load(p).unwrap();
        assert_eq!(tree.workspaces().len(), 1, "a folder without package.json is no workspace");
        let link = tree.at("node_modules/a").unwrap();
        let target = tree.at("packages/a").unwrap();
        assert_eq!(tree.node(link).target, Some(target));
        assert_eq!(tree.node(link).link_target.as_deref(), Some("packages/a"));
        assert_eq!(tree.node(link).resolved.as_deref(), Some("file:../packages/a"));
        assert!(tree.is_workspace(link) && tree.is_workspace(target));
        // The workspace edge replaces the root's dev edge of that name: not dev.
        let root = tree.node(ActualTree::ROOT);
        let edge = root.edges.iter().find(|e| e.name == "a").unwrap();
        assert_eq!((edge.kind, edge.state), (EdgeType::Workspace, EdgeState::Ok));
        assert!(!tree.node(target).flags.dev && !tree.node(target).flags.extraneous);
        // The folder's own edges: ms from the root's node_modules (through its fsParent), its
        // dev dependency from its own.
        let edges = &tree.node(target).edges;
        let ms = edges.iter().find(|e| e.name == "ms").unwrap();
        assert_eq!(ms.to, tree.at("node_modules/ms"));
        let d = edges.iter().find(|e| e.name == "d").unwrap();
        assert_eq!((d.kind, d.to), (EdgeType::Dev, tree.at("packages/a/node_modules/d")));
        assert!(tree.node(d.to.unwrap()).flags.dev);
        // A `file:` spec wants a link to that very folder.
        let state = |n: &str| root.edges.iter().find(|e| e.name == n).unwrap().state;
        assert_eq!(state("v"), EdgeState::Ok);
        assert_eq!(state("w"), EdgeState::Invalid, "w links to other/, not vendor/v");
        // A link to nowhere is a folder that cannot be read, not a link.
        let ghost = tree.at("node_modules/ghost").unwrap();
        assert!(!tree.node(ghost).is_link() && tree.node(ghost).error.is_some());
        assert!(tree.node(ghost).flags.extraneous);
    }

    #[test]
    fn a_spec_the_installed_version_does_not_meet_is_invalid_and_a_symlink_is_not_walked() {
        let outside = project(&[("node_modules/evil/package.json", r#"{"name":"evil","version":"1.0.0"}"#)]);
        let dir = project(&[
            (
                "package.json",
                r#"{"name":"app","version":"1.0.0","dependencies":{"a":"^2","l":"*","al":"npm:a@^1"}}"#,
            ),
            ("node_modules/a/package.json", r#"{"name":"a","version":"1.0.0"}"#),
            ("node_modules/al/package.json", r#"{"name":"a","version":"1.0.0"}"#),
        ]);
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path(), dir.path().join("node_modules/l")).unwrap();
        let tree = ActualTree::load(dir.path()).unwrap();
        let root = tree.node(ActualTree::ROOT);
        let state = |n: &str| root.edges.iter().find(|e| e.name == n).unwrap().state;
        assert_eq!(state("a"), EdgeState::Invalid);
        assert_eq!(state("al"), EdgeState::Ok);
        #[cfg(unix)]
        {
            let l = tree.at("node_modules/l").unwrap();
            assert!(tree.node(l).is_link());
            assert!(tree.at("node_modules/l/node_modules/evil").is_none(), "a link's folder is not walked");
        }
    }
}
