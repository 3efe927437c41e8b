//! Building the ideal tree breadth-first, the way npm's arborist builds it
//! (`build-ideal-tree.js`): a queue ordered by depth then path, each node's problem edges
//! resolved in name order (all of a node's picks fetched at once), each new node placed by
//! [`hoist`], then what nothing needs pruned (DESIGN.md §Install; spec §1.9).

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::error::ResolveError;
use super::hoist;
use super::local;
use super::request::{Request, VersionSpec};
use super::resolve::{ManifestSource, Origin, Resolved, Resolver};
use super::tree::{BuildOptions, Edge, EdgeKind, NodeId, Tree, in_tree};

/// Resolve `request`, an edge of `from`: from the registry, or, for a spec naming a place, from
/// that place (a folder's `package.json`; its edges are remembered in the tree).
async fn resolve_edge<S: ManifestSource + 'static>(
    resolver: &Resolver<S>,
    tree: &Tree,
    from: NodeId,
    request: &Request,
) -> Result<Resolved, ResolveError> {
    let opts = tree.options();
    let declared_by_folder = from == Tree::ROOT || tree.node(from).fs_path.is_some();
    match &request.spec {
        spec if spec.is_registry() => resolver.resolve(request).await,
        VersionSpec::Directory { path, raw } | VersionSpec::File { path, raw } if !declared_by_folder => {
            let _ = path;
            Err(ResolveError::Local {
                spec: raw.clone(),
                reason: format!(
                    "{} is not a folder of the project: only the project and its workspaces may depend on local paths",
                    tree.describe(from)
                ),
            })
        }
        VersionSpec::Directory { path, raw } => {
            local::resolve_dir_edited(&opts.root_dir, &request.name, path, raw, opts.edited.get(path))
        }
        VersionSpec::Workspace(_) => {
            let Some(ws) = opts.workspaces.iter().find(|w| w.name == request.package) else {
                return Err(ResolveError::Local {
                    spec: format!("{}@{}", request.name, request.spec),
                    reason: format!("the project has no workspace named {}", request.package),
                });
            };
            let r = local::resolve_dir_edited(
                &opts.root_dir,
                &request.name,
                &ws.path,
                &ws.path,
                opts.edited.get(&ws.path),
            )?;
            if !request.spec.satisfies(&r.semver) {
                return Err(ResolveError::Local {
                    spec: format!("{}@{}", request.name, request.spec),
                    reason: format!("the workspace {} is version {}", ws.path, r.version),
                });
            }
            Ok(r)
        }
        VersionSpec::File { .. } | VersionSpec::Remote(_) | VersionSpec::Git(_) => match &opts.places {
            Some(places) => places.resolve(&request.name, &request.spec).await,
            None => Err(ResolveError::Origin {
                spec: format!("{}@{}", request.name, request.spec),
                reason: "tarball and git dependencies cannot be resolved here".into(),
                hint: "install it from the registry instead".into(),
            }),
        },
        spec => Err(ResolveError::Origin {
            spec: format!("{}@{spec}", request.name),
            reason: "this kind of spec cannot be installed".into(),
            hint: "install it from the registry instead".into(),
        }),
    }
}

/// Read the edges of the folder a resolved link points to, once, into the tree.
fn remember_folder_edges(tree: &mut Tree, r: &Resolved) -> Result<(), ResolveError> {
    if let Origin::Link { path } = &r.origin {
        let opts = tree.options();
        let edges = local::folder_edges(&opts.root_dir, path, opts.edited.get(path))?;
        tree.set_link_edges(path, edges);
    }
    Ok(())
}

/// Edges of `node` that need a (new) package: missing or invalid, except optional peers that
/// nothing provides and the dependencies a package bundles.
fn problem_edges(tree: &Tree, node: NodeId) -> Vec<Edge> {
    let n = tree.node(node);
    let bundled: BTreeSet<&str> = match &n.resolved {
        Some(r) => r.manifest().bundled_names().into_iter().collect(),
        None => BTreeSet::new(),
    };
    n.edges
        .iter()
        .filter(|e| !bundled.contains(e.request.name.as_str()))
        .filter(|e| match tree.resolve(node, &e.request.name) {
            None => e.kind != EdgeKind::PeerOptional,
            Some(to) => !tree.satisfies(to, e),
        })
        .cloned()
        .collect()
}

/// Build the ideal tree for `root_edges`, resolving through `resolver`. A failure names the
/// dependency path that needed the package ([`ResolveError::Dependency`]).
pub async fn build<S: ManifestSource + 'static>(
    resolver: &Resolver<S>,
    root_edges: Vec<Edge>,
    opts: BuildOptions,
) -> Result<Tree, ResolveError> {
    let workspaces = opts.workspaces.clone();
    let mut root_edges = root_edges;
    // Each workspace is an edge of the root (arborist's `workspace` edge: a production one).
    for ws in &workspaces {
        let spec = format!("file:{}", ws.path);
        let request = Request {
            name: ws.name.clone(),
            package: ws.name.clone(),
            spec: VersionSpec::Directory { raw: spec.clone(), path: ws.path.clone() },
            bare: false,
        };
        root_edges.push(Edge::new(request, spec, EdgeKind::Prod));
    }
    let mut tree = Tree::new(root_edges, opts);
    tree.check_root_overrides()?;
    let mut roots: Vec<_> = tree
        .node(Tree::ROOT)
        .edges
        .iter()
        .filter(|e| e.request.spec.is_registry())
        .map(|e| e.request.clone())
        .collect();
    // Linked folders are built after everything else (arborist's `#linkNodes`), in the order
    // they were linked.
    let mut folders: Vec<NodeId> = Vec::new();
    for ws in &workspaces {
        let opts = tree.options();
        let r = local::resolve_dir_edited(
            &opts.root_dir,
            &ws.name,
            &ws.path,
            &ws.path,
            opts.edited.get(&ws.path),
        )?;
        let opts = tree.options();
        let edges = local::folder_edges(&opts.root_dir, &ws.path, opts.edited.get(&ws.path))?;
        // The workspaces' registry dependencies are fetched ahead with the root's: their
        // folders are built last, but what they need is asked for at once.
        // A workspace's name is never asked of the registry (npm links the workspace).
        roots.extend(
            edges
                .iter()
                .filter(|e| {
                    e.request.spec.is_registry() && !workspaces.iter().any(|w| w.name == e.request.package)
                })
                .map(|e| e.request.clone()),
        );
        tree.set_link_edges(&ws.path, edges.clone());
        let (_, target) = tree.add_link(Tree::ROOT, &ws.name, r, &ws.path, Some(Tree::ROOT), edges);
        folders.push(target);
    }
    resolver.prefetch(&roots);
    let mut queue: BTreeSet<(usize, String, NodeId)> = BTreeSet::new();
    queue.insert((0, String::new(), Tree::ROOT));
    let mut built: BTreeSet<NodeId> = BTreeSet::new();
    loop {
        let Some(entry) = queue.pop_first() else {
            let next = folders.iter().copied().find(|f| !built.contains(f) && !tree.node(*f).removed);
            match next {
                Some(f) => {
                    built.insert(f);
                    queue.insert((tree.depth(f), tree.location(f), f));
                    continue;
                }
                None => break,
            }
        };
        let node = entry.2;
        if let Some(e) = tree.take_override_error() {
            return Err(e.into());
        }
        if tree.node(node).removed {
            continue;
        }
        let mut edges = problem_edges(&tree, node);
        if edges.is_empty() {
            continue;
        }
        // arborist places a node's problem edges in name order.
        edges.sort_by(|a, b| a.request.name.cmp(&b.request.name));
        let picks = join_all(edges.iter().map(|e| resolve_edge(resolver, &tree, node, &e.request))).await;
        for (edge, pick) in edges.iter().zip(picks) {
            let dep = match pick {
                Ok(dep) => dep,
                // An optional dependency that cannot be resolved is left out (npm's rule).
                Err(e) if edge.kind == EdgeKind::Optional => {
                    tracing::warn!(dep = %edge.request, error = %e, "optional dependency skipped");
                    continue;
                }
                Err(e) => return Err(in_tree(&tree, node, &edge.request.name, e)),
            };
            // The edge may have been satisfied meanwhile by a peer placed for a sibling.
            if tree.resolve(node, &edge.request.name).is_some_and(|to| tree.satisfies(to, edge)) {
                continue;
            }
            remember_folder_edges(&mut tree, &dep)
                .map_err(|e| in_tree(&tree, node, &edge.request.name, e))?;
            let placed = hoist::place(&mut tree, resolver, node, edge, dep).await?;
            for id in placed {
                match tree.node(id).link {
                    Some(target) => {
                        if !folders.contains(&target) {
                            folders.push(target);
                        }
                    }
                    None => {
                        queue.insert((tree.depth(id), tree.location(id), id));
                    }
                }
            }
        }
    }
    if let Some(e) = tree.take_override_error() {
        return Err(e.into());
    }
    hoist::prune(&mut tree);
    Ok(tree)
}
