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
use super::tree::{Edge, EdgeKind, NodeId, Tree, package_edges};

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
        VersionSpec::Tag(tag) => dep.packument.dist_tags.get(tag) == Some(&dep.version),
        spec => spec.satisfies(&dep.semver),
    }
}

/// Every (node, edge) whose `require(name)` currently lands on `target`.
fn dependents(tree: &Tree, target: NodeId, name: &str) -> Vec<(NodeId, Edge)> {
    tree.live()
        .flat_map(|n| {
            tree.node(n).edges.iter().filter(|e| e.request.name == name).map(move |e| (n, e.clone()))
        })
        .filter(|(n, _)| tree.resolve(*n, name) == Some(target))
        .collect()
}

fn can_place(tree: &Tree, target: NodeId, from: NodeId, name: &str, dep: &Resolved) -> CanPlace {
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
    // Nothing here yet. Placing here would shadow, for everything below `target`, whatever
    // they resolve `name` to today; refuse if one of them would no longer be satisfied.
    if target != from
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

/// Place `dep` (resolved for `edge` out of `from`) and, if it is new, its peer dependencies.
/// Returns the nodes added (to be queued for their own dependencies).
pub(crate) async fn place<S: ManifestSource>(
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
        let Some(id) = place_one(tree, from, &edge, dep) else { continue };
        added.push(id);
        // The new node's peers go beside it, placed now (arborist's peer set).
        let peers: Vec<Edge> = tree
            .node(id)
            .edges
            .iter()
            .filter(|e| e.kind == EdgeKind::Peer)
            .filter(|e| !tree.resolve(id, &e.request.name).is_some_and(|to| tree.satisfies(to, e)))
            .cloned()
            .collect();
        let mut next = Vec::new();
        for peer in peers {
            let resolved = resolver.resolve(&peer.request).await?;
            next.push((id, peer, resolved));
        }
        // Stack: push in reverse so the first peer (by name) is placed first.
        work.extend(next.into_iter().rev());
    }
    Ok(added)
}

/// Place one package; `None` when an identical copy already serves the edge.
fn place_one(tree: &mut Tree, from: NodeId, edge: &Edge, dep: Resolved) -> Option<NodeId> {
    let name = edge.request.name.as_str();
    let peer = matches!(edge.kind, EdgeKind::Peer | EdgeKind::PeerOptional);
    // A peer must be resolvable from the dependent's parent, so it starts one level up.
    let start = if peer { tree.node(from).parent.unwrap_or(Tree::ROOT) } else { from };
    let mut chosen: Option<(NodeId, CanPlace)> = None;
    let ancestors: Vec<NodeId> = tree.ancestors(start).collect();
    for t in ancestors {
        match can_place(tree, t, from, name, &dep) {
            CanPlace::Conflict => break,
            CanPlace::Keep => {
                chosen = Some((t, CanPlace::Keep));
                break;
            }
            other => chosen = Some((t, other)),
        }
    }
    // Even the start conflicts: the dependent's own copy is replaced (arborist does the same
    // for a non-peer edge at its start).
    let (target, how) = chosen.unwrap_or((start, CanPlace::Replace));
    match how {
        CanPlace::Keep => None,
        CanPlace::Ok => {
            let edges = package_edges(&dep);
            Some(tree.add_child(target, name, dep, edges))
        }
        CanPlace::Replace | CanPlace::Conflict => {
            let old = tree.node(target).children.get(name).copied();
            let edges = package_edges(&dep);
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
            Some(id)
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
