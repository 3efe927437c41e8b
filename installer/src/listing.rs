//! `ims ls` and `ims why`: npm's `ls` and `explain` over the installed tree
//! ([`ActualTree`]), with npm's output shapes — the `archy` tree with `deduped`, `UNMET
//! DEPENDENCY`, `invalid: …` and `extraneous` marks, `--json` with its `problems`, and the
//! dependency chains `npm explain` prints.
//!
//! The walk is npm's: breadth first from the project, each package listed once in full and
//! `deduped` after; the root's edges filtered by `--omit`; extraneous folders appended where
//! they sit; `--depth` (0 unless `--all` or a filter is given) cuts the listing, not the walk
//! of the tree's problems.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::rc::Rc;

use indexmap::IndexMap;
use serde::Serialize;

use crate::actual::{ActualId, ActualTree, EdgeState, EdgeType, bundle_list, satisfies};
use crate::project::locale_compare;

/// What `ims ls` shows.
#[derive(Debug, Clone, Default)]
pub struct LsOptions {
    /// `--all`: every level.
    pub all: bool,
    /// `--depth N`.
    pub depth: Option<usize>,
    /// `--omit dev|optional|peer` (repeatable): the root's edges of those types are not listed.
    pub omit: Vec<EdgeType>,
    /// Packages to show (`name`, `name@range`); their ancestors are shown to reach them.
    pub filter: Vec<String>,
    /// A global tree: the root is shown by path and nothing is extraneous.
    pub global: bool,
    /// `-w NAME`: of the root's dependencies, only these workspaces (names, as
    /// [`crate::local::select`] picks them) are listed.
    pub workspaces: Vec<String>,
    /// `--include-workspace-root`: with `-w`, the root's other dependencies are listed too.
    pub include_workspace_root: bool,
    /// `--no-workspaces`: the root's workspaces are not listed.
    pub no_workspaces: bool,
}

/// One listed entry.
#[derive(Debug, Clone)]
struct Item {
    node: Option<ActualId>,
    name: String,
    pkgid: String,
    dedupe: bool,
    /// The dependent's pkgid, for a missing dependency.
    missing_from: Option<String>,
    kind: Option<EdgeType>,
    required: String,
    /// npm keys the entries it has seen by path, and a missing entry has none: every missing
    /// entry after the first is a copy without `required` in `--json`.
    show_required: bool,
    invalid: Option<String>,
    parent: Option<usize>,
    include: bool,
    depth: usize,
    problems: Vec<String>,
    label: String,
}

impl Item {
    fn is_optional(&self) -> bool {
        self.kind.is_some_and(EdgeType::is_optional)
    }
}

/// The result of `ims ls`: render it as text, JSON or paths.
#[derive(Debug, Clone)]
pub struct Listing {
    items: Vec<Item>,
    problems: Vec<String>,
}

/// What `ls --json` prints for one entry (npm's key order).
#[derive(Debug, Serialize)]
struct JsonItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overridden: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extraneous: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invalid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    required: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependencies: Option<IndexMap<String, JsonItem>>,
    /// npm's JSON error, on the root of a broken tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JsonError>,
}

/// npm's `{"error": {code, summary, detail}}` in JSON output.
#[derive(Debug, Serialize)]
struct JsonError {
    code: &'static str,
    summary: String,
    detail: String,
}

/// Split `name@spec` (scoped names kept whole); no `@` means any version.
fn split_spec(arg: &str) -> (&str, &str) {
    let (name, spec) = crate::request::split_name(arg);
    (name, spec.unwrap_or("*"))
}

/// npm's `ls` over `tree`.
pub fn ls(tree: &ActualTree, opts: &LsOptions) -> Listing {
    let filtering = !opts.filter.is_empty();
    let depth_to_print =
        if opts.all || filtering { opts.depth.unwrap_or(usize::MAX) } else { opts.depth.unwrap_or(0) };
    let matches = |id: ActualId| {
        opts.filter.iter().any(|arg| {
            let (name, spec) = split_spec(arg);
            satisfies(tree.node(id), name, spec)
        })
    };
    let root = tree.node(ActualTree::ROOT);
    let mut items = vec![Item {
        node: Some(ActualTree::ROOT),
        name: root.name.clone(),
        pkgid: root.pkgid(),
        dedupe: false,
        missing_from: None,
        kind: None,
        required: String::new(),
        show_required: false,
        invalid: None,
        parent: None,
        include: !filtering,
        depth: 0,
        problems: Vec::new(),
        label: String::new(),
    }];
    // `-w`: the selected workspaces' folders (none found: no filter, as npm).
    let ws_nodes: Vec<ActualId> = opts
        .workspaces
        .iter()
        .filter_map(|name| tree.workspaces().iter().find(|w| w.name == *name))
        .filter_map(|w| tree.at(&w.path))
        .collect();
    let mut seen: HashSet<ActualId> = HashSet::from([ActualTree::ROOT]);
    let mut seen_missing = false;
    let mut invalid: HashMap<ActualId, String> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    let mut queue = VecDeque::from([0usize]);
    while let Some(i) = queue.pop_front() {
        // visit
        let item_invalid = match (items[i].node, items[i].dedupe) {
            (Some(id), false) => invalid.get(&id).cloned(),
            _ => items[i].invalid.clone(),
        };
        items[i].invalid = item_invalid;
        let item_problems = item_problems(tree, &items[i], opts.global);
        items[i].label = label(tree, &items[i], opts.global);
        if items[i].include {
            for p in &item_problems {
                if !problems.contains(p) {
                    problems.push(p.clone());
                }
            }
            let mut p = items[i].parent;
            while let Some(pi) = p {
                items[pi].include = true;
                p = items[pi].parent;
            }
        }
        items[i].problems = item_problems;

        // children: a link's are its target's edges; a workspace counts as depth 0 again.
        let Some(id) = items[i].node else { continue };
        let depth = if tree.is_workspace(id) { 0 } else { items[i].depth };
        if items[i].dedupe || depth > depth_to_print {
            continue;
        }
        let node = tree.node(id);
        let from = tree.node(tree.target(id));
        let mut children: Vec<Item> = Vec::new();
        let mut seen_here: HashSet<ActualId> = HashSet::new();
        for edge in &from.edges {
            if depth == 0 && opts.omit.iter().any(|&o| omitted(o, edge.kind)) {
                continue;
            }
            if id == ActualTree::ROOT && !selected_workspace(tree, opts, &ws_nodes, edge.to) {
                continue;
            }
            let required = if edge.spec.is_empty() { "*".to_owned() } else { edge.spec.clone() };
            let missing = edge.state == EdgeState::Missing || (edge.kind.is_optional() && edge.to.is_none());
            let child = match edge.to {
                Some(to) if !missing => {
                    seen_here.insert(to);
                    if edge.state == EdgeState::Invalid {
                        let from = if from.location.is_empty() {
                            "the root project"
                        } else {
                            from.location.as_str()
                        };
                        let why =
                            format!("{} from {from}", serde_json::to_string(&required).unwrap_or_default());
                        let acc = invalid.entry(to).or_default();
                        if !acc.is_empty() {
                            acc.push_str(", ");
                        }
                        acc.push_str(&why);
                    }
                    let n = tree.node(to);
                    new_item(Some(to), n.name.clone(), n.pkgid(), None)
                }
                _ => {
                    new_item(None, edge.name.clone(), format!("{}@{required}", edge.name), Some(from.pkgid()))
                }
            };
            children.push(Item { kind: Some(edge.kind), required, ..child });
        }
        for &child in node.children.values() {
            if !seen_here.contains(&child) && tree.node(child).flags.extraneous {
                let n = tree.node(child);
                children.push(new_item(Some(child), n.name.clone(), n.pkgid(), None));
            }
        }
        children.sort_by(|a, b| locale_compare(&a.pkgid, &b.pkgid));
        for mut child in children {
            if child.node.is_none() {
                child.show_required = !seen_missing;
                seen_missing = true;
            }
            if let Some(cid) = child.node {
                if seen.contains(&cid) {
                    child.dedupe = true;
                    child.invalid = invalid.get(&cid).cloned();
                } else {
                    seen.insert(cid);
                }
            }
            let include = !filtering || child.node.is_some_and(matches);
            child.include = include;
            child.parent = Some(i);
            child.depth = depth + 1;
            items.push(child);
            queue.push_back(items.len() - 1);
        }
    }
    Listing { items, problems }
}

fn new_item(node: Option<ActualId>, name: String, pkgid: String, missing_from: Option<String>) -> Item {
    Item {
        node,
        name,
        pkgid,
        dedupe: false,
        missing_from,
        kind: None,
        required: String::new(),
        show_required: false,
        invalid: None,
        parent: None,
        include: false,
        depth: 0,
        problems: Vec::new(),
        label: String::new(),
    }
}

/// npm's `filterBySelectedWorkspaces` for an edge out of the root reaching `to`: with `-w`,
/// only the selected workspaces (and, with `--include-workspace-root`, the root's other
/// dependencies that are there); with `--no-workspaces`, no workspace.
fn selected_workspace(
    tree: &ActualTree,
    opts: &LsOptions,
    ws_nodes: &[ActualId],
    to: Option<ActualId>,
) -> bool {
    let is_ws = to.is_some_and(|t| tree.is_workspace(t));
    if opts.no_workspaces && is_ws {
        return false;
    }
    if ws_nodes.is_empty() {
        return true;
    }
    if opts.include_workspace_root && to.is_some() && !is_ws {
        return true;
    }
    is_ws && to.is_some_and(|t| ws_nodes.contains(&tree.target(t)))
}

/// Whether `--omit=<omit>` drops an edge of type `kind` (npm: `edge[omitType]`).
fn omitted(omit: EdgeType, kind: EdgeType) -> bool {
    match omit {
        EdgeType::Dev => kind == EdgeType::Dev,
        EdgeType::Optional | EdgeType::PeerOptional => kind.is_optional(),
        EdgeType::Peer => kind.is_peer(),
        EdgeType::Prod => kind == EdgeType::Prod,
        EdgeType::Workspace => kind == EdgeType::Workspace,
    }
}

fn is_extraneous(tree: &ActualTree, item: &Item, global: bool) -> bool {
    !global && !item.dedupe && item.node.is_some_and(|id| tree.node(id).flags.extraneous)
}

fn item_problems(tree: &ActualTree, item: &Item, global: bool) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(from) = &item.missing_from
        && !item.is_optional()
    {
        out.push(format!("missing: {}, required by {from}", item.pkgid));
    }
    let path = || item.node.map(|id| tree.node(id).path.to_string_lossy().into_owned()).unwrap_or_default();
    if item.invalid.is_some() {
        out.push(format!("invalid: {} {}", item.pkgid, path()));
    }
    if is_extraneous(tree, item, global) {
        out.push(format!("extraneous: {} {}", item.pkgid, path()));
    }
    out
}

fn label(tree: &ActualTree, item: &Item, global: bool) -> String {
    let mut out = String::new();
    if item.missing_from.is_some() {
        out.push_str(if item.is_optional() { "UNMET OPTIONAL DEPENDENCY " } else { "UNMET DEPENDENCY " });
    }
    match item.node {
        Some(ActualTree::ROOT) => {
            let root = tree.node(ActualTree::ROOT);
            let path = root.path.to_string_lossy();
            if root.package.is_empty() || global {
                out.push_str(&path);
            } else {
                out.push_str(&format!("{} {path}", item.pkgid));
            }
        }
        _ => out.push_str(&item.pkgid),
    }
    if item.dedupe {
        out.push_str(" deduped");
    }
    if let Some(invalid) = &item.invalid {
        out.push_str(&format!(" invalid: {invalid}"));
    }
    if is_extraneous(tree, item, global) {
        out.push_str(" extraneous");
    }
    if !item.dedupe && item.node.is_some_and(|id| tree.node(id).overridden) {
        out.push_str(" overridden");
    }
    if let Some(id) = item.node {
        let node = tree.node(id);
        if let Some(resolved) = &node.resolved
            && !item.dedupe
            && (resolved.starts_with("git+") || resolved.starts_with("git://"))
        {
            out.push_str(&format!(" ({resolved})"));
        }
        if let Some(target) = &node.link_target {
            out.push_str(&format!(" -> ./{target}"));
        }
    }
    out
}

impl Listing {
    /// Problems found (`missing: …`, `invalid: …`, `extraneous: …`), in the order found.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// npm's `ELSPROBLEMS`: a problem other than an extraneous package.
    pub fn is_broken(&self) -> bool {
        self.problems.iter().any(|p| !p.starts_with("extraneous:"))
    }

    /// A filter was given and nothing matched (npm exits 1, printing `(empty)`).
    pub fn nothing_matched(&self) -> bool {
        !self.items[0].include
    }

    fn children(&self) -> BTreeMap<usize, Vec<usize>> {
        let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, item) in self.items.iter().enumerate() {
            if let (true, Some(p)) = (item.include, item.parent) {
                out.entry(p).or_default().push(i);
            }
        }
        out
    }

    /// The human tree (archy's drawing), ending in a blank line as npm prints it.
    pub fn human(&self, unicode: bool) -> String {
        let children = self.children();
        let mut out = String::new();
        let chr = |c: char| -> char {
            if unicode {
                return c;
            }
            match c {
                '│' => '|',
                '└' => '`',
                '├' => '+',
                '─' => '-',
                '┬' => '-',
                other => other,
            }
        };
        fn draw(
            l: &Listing,
            children: &BTreeMap<usize, Vec<usize>>,
            i: usize,
            prefix: &str,
            chr: &dyn Fn(char) -> char,
            out: &mut String,
        ) {
            let kids = children.get(&i).map(Vec::as_slice).unwrap_or(&[]);
            let splitter = format!("\n{prefix}{} ", if kids.is_empty() { ' ' } else { chr('│') });
            out.push_str(&l.items[i].label.replace('\n', &splitter));
            out.push('\n');
            for (ix, &k) in kids.iter().enumerate() {
                let last = ix + 1 == kids.len();
                let more = children.get(&k).is_some_and(|c| !c.is_empty());
                out.push_str(prefix);
                out.push(if last { chr('└') } else { chr('├') });
                out.push(chr('─'));
                out.push(if more { chr('┬') } else { chr('─') });
                out.push(' ');
                let next = format!("{prefix}{} ", if last { ' ' } else { chr('│') });
                draw(l, children, k, &next, chr, out);
            }
        }
        if children.get(&0).is_none_or(Vec::is_empty) {
            out.push_str(&self.items[0].label);
            out.push('\n');
            out.push_str(&format!("{}{}{} (empty)\n", chr('└'), chr('─'), chr('─')));
        } else {
            draw(self, &children, 0, "", &chr, &mut out);
        }
        out.push('\n');
        out
    }

    /// `ls --json`: npm's object, pretty-printed with two spaces.
    pub fn json(&self, tree: &ActualTree, global: bool) -> String {
        let children = self.children();
        fn build(
            l: &Listing,
            tree: &ActualTree,
            children: &BTreeMap<usize, Vec<usize>>,
            i: usize,
            global: bool,
        ) -> JsonItem {
            let item = &l.items[i];
            let node = item.node.map(|id| tree.node(id));
            let is_root = item.node == Some(ActualTree::ROOT);
            let real = node.filter(|_| !item.dedupe);
            let mut json = JsonItem {
                version: node.and_then(|n| n.version()).map(str::to_owned),
                resolved: real.and_then(|n| n.resolved.clone()),
                overridden: real.filter(|_| !is_root).map(|n| n.overridden),
                name: None,
                extraneous: is_extraneous(tree, item, global).then_some(true),
                invalid: item.invalid.clone(),
                required: None,
                missing: None,
                problems: (item.include && !item.problems.is_empty()).then(|| item.problems.clone()),
                dependencies: None,
                error: None,
            };
            if is_root && let Some(root) = node.filter(|n| !n.package.is_empty()) {
                json.name = Some(root.package_name().unwrap_or(&root.name).to_owned());
            }
            if item.missing_from.is_some() && !item.is_optional() {
                json.required = item.show_required.then(|| item.required.clone());
                json.missing = Some(true);
            }
            if let Some(kids) = children.get(&i) {
                let deps = kids
                    .iter()
                    .map(|&k| (l.items[k].name.clone(), build(l, tree, children, k, global)))
                    .collect();
                json.dependencies = Some(deps);
            }
            json
        }
        let mut root = build(self, tree, &children, 0, global);
        if !self.problems.is_empty() {
            root.problems = Some(self.problems.clone());
        }
        if self.is_broken() {
            root.error = Some(JsonError {
                code: "ELSPROBLEMS",
                summary: self.problems.join("\n"),
                detail: String::new(),
            });
        }
        let mut text = serde_json::to_string_pretty(&root).unwrap_or_default();
        text.push('\n');
        text
    }

    /// `ls --parseable`: the folder of each listed package, one a line.
    pub fn parseable(&self, tree: &ActualTree) -> String {
        let mut out = String::new();
        for item in self.items.iter().filter(|i| i.include && !i.dedupe) {
            if let Some(id) = item.node {
                out.push_str(&tree.node(id).path.to_string_lossy());
                out.push('\n');
            }
        }
        out
    }
}

/// Why a package is installed: npm's `explain` for one node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_workspace: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependents: Option<Vec<Rc<EdgeExplanation>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links_in: Option<Vec<Rc<Explanation>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extraneous: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    optional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev_optional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overridden: Option<bool>,
}

/// One edge into an explained package.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeExplanation {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    spec: String,
    #[serde(rename = "rawSpec", skip_serializing_if = "Option::is_none")]
    raw_spec: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overridden: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    from: Rc<Explanation>,
}

/// `ims why` found nothing.
#[derive(Debug, thiserror::Error)]
#[error("No dependencies found matching {0}")]
pub struct NothingMatched(pub String);

/// npm's `explain` for each argument: a package name, a location (`node_modules/a`), or
/// `name@range`. Each argument's nodes in location order, the arguments in their order.
pub fn explain(tree: &ActualTree, args: &[String]) -> Result<Vec<Explanation>, NothingMatched> {
    explain_in(tree, args, None)
}

/// arborist's `workspaceDependencySet`: the folders of the workspaces named, and everything
/// their edges reach (each link with its target), and the extraneous packages in their
/// `node_modules`: what `npm explain -w NAME` explains.
pub fn workspace_dependency_set(tree: &ActualTree, names: &[String]) -> HashSet<ActualId> {
    let mut set: Vec<ActualId> = names
        .iter()
        .filter_map(|name| tree.workspaces().iter().find(|w| w.name == *name))
        .filter_map(|w| tree.at(&w.path))
        .collect();
    let mut extraneous = Vec::new();
    let mut i = 0;
    while i < set.len() {
        let node = tree.node(set[i]);
        for edge in &node.edges {
            if let Some(to) = edge.to {
                for id in [Some(to), tree.node(to).target] {
                    if let Some(id) = id
                        && !set.contains(&id)
                    {
                        set.push(id);
                    }
                }
            }
        }
        extraneous.extend(node.children.values().copied().filter(|&c| tree.node(c).flags.extraneous));
        i += 1;
    }
    set.into_iter().chain(extraneous).collect()
}

/// arborist's `excludeWorkspacesDependencySet`: what the root depends on other than through
/// its workspaces (`npm explain --no-workspaces`).
pub fn root_dependency_set(tree: &ActualTree) -> HashSet<ActualId> {
    let mut set = HashSet::new();
    let mut seen = HashSet::from([ActualTree::ROOT]);
    let mut stack = vec![ActualTree::ROOT];
    while let Some(id) = stack.pop() {
        let edges = &tree.node(id).edges;
        for to in edges.iter().filter_map(|e| e.to) {
            if tree.is_workspace(to) {
                continue;
            }
            let held = tree
                .node(to)
                .edges_in
                .iter()
                .any(|&(from, _)| from == ActualTree::ROOT || set.contains(&from));
            if held {
                set.insert(to);
            }
        }
        // Depth first, in edge order.
        for to in edges.iter().rev().filter_map(|e| e.to) {
            if seen.insert(to) {
                stack.push(to);
            }
        }
    }
    set
}

/// [`explain`] of only the packages in `only` (when given and not empty, as npm filters).
pub fn explain_in(
    tree: &ActualTree,
    args: &[String],
    only: Option<&HashSet<ActualId>>,
) -> Result<Vec<Explanation>, NothingMatched> {
    let only = only.filter(|o| !o.is_empty());
    let mut matched: Vec<ActualId> = Vec::new();
    for arg in args {
        let mut found: Vec<ActualId> = if indexer::names::validate(arg).is_ok() {
            tree.ids().filter(|&id| tree.package_name(id) == Some(arg.as_str())).collect()
        } else if let Some(id) = tree.at(arg.trim_end_matches('/')) {
            vec![id]
        } else {
            let (name, range) = split_spec(arg);
            tree.ids()
                .filter(|&id| {
                    let n = tree.node(id);
                    id != ActualTree::ROOT && n.package_name() == Some(name) && satisfies(n, &n.name, range)
                })
                .collect()
        };
        found.sort_by(|&a, &b| {
            let (ka, kb) = (tree.inventory_key(a), tree.inventory_key(b));
            ka.0.cmp(&kb.0).then_with(|| locale_compare(ka.1, kb.1)).then(ka.2.cmp(&kb.2))
        });
        for id in found {
            if only.is_some_and(|o| !o.contains(&id)) {
                continue;
            }
            if !matched.contains(&id) {
                matched.push(id);
            }
        }
    }
    if matched.is_empty() {
        return Err(NothingMatched(args.join(", ")));
    }
    let mut memo: HashMap<ActualId, Rc<Explanation>> = HashMap::new();
    let mut out = Vec::new();
    for id in matched {
        let mut expl = (*explain_node(tree, id, &[], &mut memo)).clone();
        let f = tree.node(id).flags;
        if f.extraneous {
            expl.extraneous = Some(true);
        } else {
            expl.dev = Some(f.dev);
            expl.optional = Some(f.optional);
            expl.dev_optional = Some(f.dev_optional);
            expl.peer = Some(f.peer);
            expl.bundled = Some(tree.bundler(id).is_some());
            expl.overridden = Some(tree.node(id).overridden);
        }
        out.push(expl);
    }
    Ok(out)
}

fn explain_node(
    tree: &ActualTree,
    id: ActualId,
    seen: &[ActualId],
    memo: &mut HashMap<ActualId, Rc<Explanation>>,
) -> Rc<Explanation> {
    if let Some(e) = memo.get(&id) {
        return e.clone();
    }
    let node = tree.node(id);
    let blank = Explanation {
        name: None,
        version: None,
        location: None,
        is_workspace: None,
        dependents: None,
        links_in: None,
        extraneous: None,
        dev: None,
        optional: None,
        dev_optional: None,
        peer: None,
        bundled: None,
        overridden: None,
    };
    let expl = if id == ActualTree::ROOT {
        Explanation { location: Some(node.path.to_string_lossy().into_owned()), ..blank }
    } else {
        // A top folder (a link's target) goes by its package's name, as arborist's `explain`.
        let name =
            if node.is_top() { node.package_name().map(str::to_owned) } else { Some(node.name.clone()) };
        let why = Explanation { name, version: node.version().map(str::to_owned), ..blank };
        if seen.contains(&id) {
            why
        } else {
            let mut seen = seen.to_vec();
            seen.push(id);
            let mut dependents = Vec::new();
            for &(from, e) in &node.edges_in {
                let edge = &tree.node(from).edges[e];
                if !edge.is_valid() && from != ActualTree::ROOT {
                    continue;
                }
                let from_expl = explain_node(tree, from, &seen, memo);
                let error = match edge.state {
                    EdgeState::Ok => None,
                    EdgeState::Missing => Some("MISSING"),
                    EdgeState::Invalid => Some("INVALID"),
                    EdgeState::PeerLocal => Some("PEER LOCAL"),
                };
                dependents.push(Rc::new(EdgeExplanation {
                    kind: edge.kind.as_str(),
                    name: edge.name.clone(),
                    spec: edge.overridden.clone().unwrap_or_else(|| edge.spec.clone()),
                    raw_spec: edge.overridden.as_ref().map(|_| edge.spec.clone()),
                    overridden: edge.overridden.as_ref().map(|_| true),
                    bundled: bundle_list(&tree.node(from).package).contains(&edge.name).then_some(true),
                    error,
                    from: from_expl,
                }));
            }
            let links_in: Vec<Rc<Explanation>> =
                node.links_in.iter().map(|&l| explain_node(tree, l, &seen, memo)).collect();
            Explanation {
                location: Some(node.location.clone()),
                is_workspace: Some(tree.is_workspace(id)),
                dependents: Some(dependents),
                links_in: (!links_in.is_empty()).then_some(links_in),
                ..why
            }
        }
    };
    let expl = Rc::new(expl);
    memo.insert(id, expl.clone());
    expl
}

/// The text `npm explain` prints for these explanations.
pub fn explain_text(expls: &[Explanation]) -> String {
    let mut out = expls.iter().map(|e| explain_one(e, &mut HashSet::new())).collect::<Vec<_>>().join("\n\n");
    out.push('\n');
    out
}

fn print_node(e: &Explanation) -> String {
    // JavaScript's words for what is not there (the root explains as `undefined@undefined`).
    let mut out = format!(
        "{}@{}",
        e.name.as_deref().unwrap_or("undefined"),
        e.version.as_deref().unwrap_or("undefined")
    );
    for (flag, name) in [
        (e.extraneous, "extraneous"),
        (e.dev, "dev"),
        (e.optional, "optional"),
        (e.peer, "peer"),
        (e.bundled, "bundled"),
        (e.overridden, "overridden"),
    ] {
        if flag == Some(true) {
            out.push(' ');
            out.push_str(name);
        }
    }
    if let Some(location) = &e.location {
        out.push('\n');
        out.push_str(location);
    }
    out
}

fn explain_one(e: &Explanation, seen: &mut HashSet<String>) -> String {
    print_node(e) + &explain_dependents(e, seen) + &explain_links_in(e, seen)
}

fn explain_links_in(e: &Explanation, seen: &mut HashSet<String>) -> String {
    let Some(links) = e.links_in.as_ref().filter(|l| !l.is_empty()) else { return String::new() };
    let messages: Vec<String> = links.iter().map(|l| explain_one(l, seen)).collect();
    format!("\n{}", messages.join("\n")).replace('\n', "\n  ")
}

fn explain_dependents(e: &Explanation, seen: &mut HashSet<String>) -> String {
    let Some(deps) = e.dependents.as_ref().filter(|d| !d.is_empty()) else { return String::new() };
    let messages: Vec<String> = deps.iter().map(|edge| explain_edge(edge, seen)).collect();
    format!("\n{}", messages.join("\n")).replace('\n', "\n  ")
}

fn explain_edge(edge: &EdgeExplanation, seen: &mut HashSet<String>) -> String {
    let mut prefix = if edge.kind == "prod" { String::new() } else { format!("{} ", edge.kind) };
    if edge.bundled == Some(true) {
        prefix.push_str("bundled ");
    }
    let dep = if edge.kind == "workspace" {
        // The workspace's folder from the dependent's location (the root's is its path).
        let folder = edge.spec.strip_prefix("file:").unwrap_or(&edge.spec);
        let from = edge.from.location.as_deref().unwrap_or("");
        crate::actual::relative(Path::new(from), Path::new(folder))
    } else {
        format!("{}@\"{}\"", edge.name, edge.spec)
    };
    let dep = match &edge.raw_spec {
        Some(raw) => format!("overridden {dep} (was \"{raw}\")"),
        None => dep,
    };
    format!("{prefix}{dep} from {}", explain_from(&edge.from, seen))
}

fn explain_from(from: &Explanation, seen: &mut HashSet<String>) -> String {
    if from.name.is_none() && from.version.is_none() {
        return "the root project".to_owned();
    }
    let id = format!(
        "{}@{}:{}",
        from.name.as_deref().unwrap_or(""),
        from.version.as_deref().unwrap_or(""),
        from.location.as_deref().unwrap_or("")
    );
    if seen.contains(&id) {
        return print_node(from);
    }
    seen.insert(id.clone());
    let out = print_node(from) + &explain_dependents(from, seen) + &explain_links_in(from, seen);
    seen.remove(&id);
    out
}
