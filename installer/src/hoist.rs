//! Placement: where a package goes in the hoisted `node_modules`, as npm's arborist decides it
//! (`place-dep.js`, `can-place-dep.js`): walk up from the dependent and take the shallowest
//! location that conflicts with nothing; keep an identical copy already there; replace an
//! older copy when every dependent of it accepts the new one; otherwise nest. Peer
//! dependencies (npm 7+) are placed right after their dependent, starting beside it
//! (DESIGN.md §Install).

use std::collections::BTreeSet;

use super::error::ResolveError;
use super::request::VersionSpec;
use super::resolve::{ManifestSource, Resolved, Resolver};
use super::tree::{Edge, EdgeKind, NodeId, Tree};

/// What placing a package at one location would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CanPlace {
    /// Nothing there; placing is fine.
    Ok,
    /// The same package version is already there.
    Keep,
    /// An older copy is there and everything using it accepts the new one.
    Replace,
    /// Placing here would break something.
    Conflict,
}

/// Whether `dep` would satisfy `edge`.
fn dep_satisfies(dep: &Resolved, edge: &Edge) -> bool {
    if dep.package() != edge.request.package {
        return false;
    }
    match &edge.request.spec {
        VersionSpec::Tag(tag) => dep.is_tagged(tag),
        spec => spec.satisfies(&dep.semver),
    }
}

/// Every (node, edge) whose `require(name)` currently lands on `target`: only the nodes with
/// an edge of that name are looked at (the tree indexes them by name).
fn dependents<'t>(tree: &'t Tree, target: NodeId, name: &'t str) -> Vec<(NodeId, &'t Edge)> {
    tree.edges_named(name).filter(|(n, _)| tree.resolve(*n, name) == Some(target)).collect()
}

/// Whether `dep` (needed by `from`, `None` for a package not placed yet) can go into
/// `target`'s `node_modules`.
fn can_place(tree: &Tree, target: NodeId, from: Option<NodeId>, name: &str, dep: &Resolved) -> CanPlace {
    if let Some(&current) = tree.node(target).children.get(name) {
        let Some(cur) = &tree.node(current).resolved else { return CanPlace::Conflict };
        if cur.package() == dep.package() && cur.version == dep.version {
            return CanPlace::Keep;
        }
        let newer = cur.package() == dep.package() && dep.semver >= cur.semver;
        if newer && dependents(tree, current, name).iter().all(|(_, e)| dep_satisfies(dep, e)) {
            return CanPlace::Replace;
        }
        return CanPlace::Conflict;
    }
    // The target's own dependency of that name would find `dep`: it must accept it, even if
    // it is not placed yet (arborist checks the target's edge, not only what is there).
    if Some(target) != from
        && tree.node(target).edges.iter().any(|e| e.request.name == name && !dep_satisfies(dep, e))
    {
        return CanPlace::Conflict;
    }
    // Nothing here yet. Placing here would shadow, for everything below `target`, whatever
    // they resolve `name` to today; refuse if one of them would no longer be satisfied.
    if Some(target) != from
        && let Some(current) = tree.resolve(target, name)
    {
        let breaks = dependents(tree, current, name)
            .iter()
            .any(|(n, e)| tree.is_within(*n, target) && tree.satisfies(current, e) && !dep_satisfies(dep, e));
        if breaks {
            return CanPlace::Conflict;
        }
    }
    CanPlace::Ok
}

/// Whether the peer dependencies of a package placed into `target` can go there too (they sit
/// beside it): each is already served from there, or can be placed there.
fn peers_fit(tree: &Tree, target: NodeId, peers: &[(Edge, Resolved)]) -> bool {
    peers.iter().all(|(edge, dep)| {
        let name = edge.request.name.as_str();
        tree.resolve(target, name).is_some_and(|to| tree.satisfies(to, edge))
            || can_place(tree, target, None, name, dep) != CanPlace::Conflict
    })
}

/// The outcome of placing one package.
enum Placed {
    /// An identical copy already serves the edge.
    Kept,
    /// Added as this node.
    Added(NodeId),
    /// A peer dependency that cannot go where it must (beside its dependent): the node in the
    /// way, if any, and the location that refused it.
    PeerConflict { at: NodeId },
}

/// Place `dep` (resolved for `edge` out of `from`) and, if it is new, its peer dependencies.
/// Returns the nodes added (to be queued for their own dependencies). A peer that cannot be
/// placed next to a dependent in the project's own `node_modules` is npm's ERESOLVE; deeper,
/// npm only warns and keeps what is there ("overriding peer dependency"), and so does this.
pub(crate) async fn place<S: ManifestSource + 'static>(
    tree: &mut Tree,
    resolver: &Resolver<S>,
    from: NodeId,
    edge: &Edge,
    dep: Resolved,
) -> Result<Vec<NodeId>, ResolveError> {
    let mut added = Vec::new();
    let mut work = vec![(from, edge.clone(), dep)];
    while let Some((from, edge, dep)) = work.pop() {
        if tree.resolve(from, &edge.request.name).is_some_and(|to| tree.satisfies(to, &edge)) {
            continue;
        }
        // The package's peers, resolved up front: where it goes, they must fit too.
        let mut peers = Vec::new();
        for peer in tree.edges_for(&dep).into_iter().filter(|e| e.kind == EdgeKind::Peer) {
            if let Ok(r) = resolver.resolve(&peer.request).await {
                peers.push((peer, r));
            }
        }
        let id = match place_one(tree, from, &edge, dep, &peers) {
            Placed::Kept => continue,
            Placed::Added(id) => id,
            Placed::PeerConflict { at } if at == Tree::ROOT => {
                return Err(peer_conflict(tree, from, &edge, at));
            }
            Placed::PeerConflict { at } => {
                tracing::warn!(
                    peer = %format!("{}@{}", edge.request.name, edge.spec),
                    dependent = %tree.describe(from),
                    at = %tree.location(at),
                    "ERESOLVE overriding peer dependency: keeping the package already there"
                );
                continue;
            }
        };
        added.push(id);
        // The new node's peers go beside it, placed now (arborist's peer set).
        let mut next = Vec::new();
        for peer in tree.node(id).edges.iter().filter(|e| e.kind == EdgeKind::Peer) {
            if tree.resolve(id, &peer.request.name).is_some_and(|to| tree.satisfies(to, peer)) {
                continue;
            }
            let resolved = match peers.iter().find(|(e, _)| e.request.name == peer.request.name) {
                Some((_, r)) => r.clone(),
                None => resolver
                    .resolve(&peer.request)
                    .await
                    .map_err(|e| super::tree::in_tree(tree, id, &peer.request.name, e))?,
            };
            next.push((id, peer.clone(), resolved));
        }
        // Stack: push in reverse so the first peer (by name) is placed first.
        work.extend(next.into_iter().rev());
    }
    Ok(added)
}

/// Explain a peer conflict the way npm's ERESOLVE report does: what is found at `at` and
/// who needs it, and the peer dependency of `from` that does not fit, and who needs `from`.
fn peer_conflict(tree: &Tree, from: NodeId, edge: &Edge, at: NodeId) -> ResolveError {
    let name = edge.request.name.as_str();
    let needs = |target: NodeId, name: &str| -> String {
        dependents(tree, target, name)
            .iter()
            // Who it serves (not the edge in conflict, which it does not satisfy).
            .filter(|(_, e)| tree.satisfies(target, e))
            .map(|(n, e)| {
                let loc =
                    if *n == Tree::ROOT { String::new() } else { format!("\n    {}", tree.location(*n)) };
                format!("\n  {name}@\"{}\" from {}{loc}", e.spec, tree.describe(*n))
            })
            .collect()
    };
    let found = match tree.resolve(at, name) {
        Some(cur) => format!("{}\n{}{}", tree.describe(cur), tree.location(cur), needs(cur, name)),
        // Nothing there yet: the place's own dependency is what the peer would break.
        None => tree
            .node(at)
            .edges
            .iter()
            .find(|e| e.request.name == name)
            .map(|e| format!("{name}@\"{}\" wanted by {}", e.spec, tree.describe(at)))
            .unwrap_or_else(|| format!("a conflicting {name} at {}", tree.location(at))),
    };
    let from_name = tree.node(from).name.clone();
    let wanted = format!(
        "peer {name}@\"{}\" from {}\n{}{}",
        edge.spec,
        tree.describe(from),
        tree.location(from),
        needs(from, &from_name)
    );
    ResolveError::PeerConflict { found, wanted }
}

/// Place one package: walk up from where it must start and take the shallowest location
/// where it and its peers conflict with nothing (arborist's `place-dep.js`).
fn place_one(
    tree: &mut Tree,
    from: NodeId,
    edge: &Edge,
    dep: Resolved,
    peers: &[(Edge, Resolved)],
) -> Placed {
    let name = edge.request.name.as_str();
    let peer = edge.kind.is_peer();
    // A peer must be resolvable from the dependent's parent, so it starts one level up.
    let start = if peer { tree.node(from).parent.unwrap_or(Tree::ROOT) } else { from };
    let mut chosen: Option<(NodeId, CanPlace)> = None;
    let ancestors: Vec<NodeId> = tree.ancestors(start).collect();
    for t in ancestors {
        match can_place(tree, t, Some(from), name, &dep) {
            CanPlace::Conflict => break,
            CanPlace::Keep => {
                chosen = Some((t, CanPlace::Keep));
                break;
            }
            _ if !peers_fit(tree, t, peers) => break,
            other => chosen = Some((t, other)),
        }
    }
    let (target, how) = match chosen {
        Some(c) => c,
        // A peer has nowhere else to go.
        None if peer => return Placed::PeerConflict { at: start },
        // Even the start conflicts: the dependent's own copy is replaced (arborist does the
        // same for a non-peer edge at its start).
        None => (start, CanPlace::Replace),
    };
    let edges = tree.edges_for(&dep);
    match how {
        CanPlace::Keep => Placed::Kept,
        CanPlace::Ok => Placed::Added(tree.add_child(target, name, dep, edges)),
        CanPlace::Replace | CanPlace::Conflict => {
            let old = tree.node(target).children.get(name).copied();
            let id = tree.add_child(target, name, dep, edges);
            if let Some(old) = old {
                // The new node takes over the old one's nested packages, as arborist's
                // `Node.replace` does; extraneous ones are pruned at the end.
                let kids = std::mem::take(&mut tree.node_mut(old).children);
                for &kid in kids.values() {
                    tree.node_mut(kid).parent = Some(id);
                }
                tree.node_mut(id).children = kids;
                tree.node_mut(old).removed = true;
            }
            Placed::Added(id)
        }
    }
}

/// Drop every node no edge from the root reaches (arborist's ideal-tree prune of extraneous
/// nodes, left behind by replacements).
pub(crate) fn prune(tree: &mut Tree) {
    let mut seen = BTreeSet::new();
    let mut stack = vec![Tree::ROOT];
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        for e in &tree.node(n).edges {
            if let Some(to) = tree.resolve(n, &e.request.name) {
                stack.push(to);
            }
        }
    }
    let live: Vec<NodeId> = tree.live().collect();
    for n in live {
        if !seen.contains(&n) {
            tree.node_mut(n).removed = true;
        }
    }
    for n in tree.live().collect::<Vec<_>>() {
        let node = tree.node(n);
        let kids: Vec<(String, NodeId)> =
            node.children.iter().filter(|(_, id)| seen.contains(*id)).map(|(k, v)| (k.clone(), *v)).collect();
        tree.node_mut(n).children = kids.into_iter().collect();
    }
}
