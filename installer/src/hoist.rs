//! Placement: where a package goes in the hoisted `node_modules`, as npm's arborist decides it
//! (`place-dep.js`, `can-place-dep.js`): walk up from the dependent and take the shallowest
//! location that conflicts with nothing; keep an identical copy already there; replace an
//! older copy when every dependent of it accepts the new one; otherwise nest. Peer
//! dependencies (npm 7+) are resolved first as a set (arborist's virtual root,
//! `#loadPeerSet`: a peer the dependent's own dependent also depends on takes that edge's
//! version when it fits) and placed right after their dependent, starting beside it
//! (DESIGN.md §Install).

use std::collections::{BTreeMap, BTreeSet};

use super::error::ResolveError;
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
    super::tree::edge_satisfied(dep, edge)
}

/// Every (node, edge) whose `require(name)` currently lands on `target`: only the nodes with
/// an edge of that name are looked at (the tree indexes them by name).
fn dependents<'t>(tree: &'t Tree, target: NodeId, name: &'t str) -> Vec<(NodeId, &'t Edge)> {
    tree.edges_named(name).filter(|(n, _)| tree.resolve(*n, name) == Some(target)).collect()
}

/// Whether `dep` (needed by `from`, `None` for a package not placed yet) can go into
/// `target`'s `node_modules`. With `prefer_dedupe` (peers, as arborist does), an older `dep`
/// still replaces the copy there when everything using that copy accepts it.
fn can_place(
    tree: &Tree,
    target: NodeId,
    from: Option<NodeId>,
    name: &str,
    dep: &Resolved,
    prefer_dedupe: bool,
) -> CanPlace {
    if let Some(&current) = tree.node(target).children.get(name) {
        let Some(cur) = &tree.node(current).resolved else { return CanPlace::Conflict };
        // A link (a workspace, a `file:` folder) is never replaced by, nor taken for, a
        // package from elsewhere.
        if cur.is_link() || dep.is_link() || cur.origin != dep.origin {
            return if cur.origin == dep.origin && cur.package() == dep.package() {
                CanPlace::Keep
            } else {
                CanPlace::Conflict
            };
        }
        if cur.package() == dep.package() && cur.version == dep.version {
            return CanPlace::Keep;
        }
        let newer = cur.package() == dep.package() && dep.semver >= cur.semver;
        let same_package = cur.package() == dep.package();
        // Under overrides, a copy with dependencies is replaced only by one governed by the
        // same rule (arborist's `canReplaceWith`).
        let rule = from.and_then(|f| tree.node(f).edges.iter().find(|e| e.request.name == name)?.overrides);
        let same_rule = tree.node(current).edges.is_empty() || tree.node(current).overrides == rule;
        if (newer || (prefer_dedupe && same_package))
            && same_rule
            && dependents(tree, current, name).iter().all(|(_, e)| dep_satisfies(dep, e))
        {
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

/// The peer set of one package about to be placed (arborist's virtual root): the package and
/// all its peers, and their peers, by name, each resolved the way `#loadPeerSet` does. A peer
/// that the source (the node whose dependency brought the package in) also depends on is
/// resolved from the source's own edge first, from the peer's range only if that version does
/// not fit and the source's edge accepts it.
struct PeerSet {
    /// The node whose edge the set is resolved for.
    source: NodeId,
    /// The package placed for the source's edge (the set's entry).
    top: String,
    /// The edge out of `source` the set is resolved for.
    top_edge: Edge,
    /// Every package of the set, by folder name.
    members: BTreeMap<String, Resolved>,
    /// Members that the install needs (not reached only through optional peers).
    required: BTreeSet<String>,
    /// Peer edges `(member, peer name)` left unmet (npm's `peerConflicted`).
    conflicted: BTreeSet<(String, String)>,
}

impl PeerSet {
    /// The peer edges of member `name` (peer and optional peer, in name order).
    fn peer_edges(&self, tree: &Tree, name: &str) -> Vec<Edge> {
        self.members
            .get(name)
            .map(|r| tree.edges_for(r).into_iter().filter(|e| e.kind.is_peer()).collect())
            .unwrap_or_default()
    }

    /// The edges inside the set that point at member `name`, with who has them: the source's
    /// own edge of that name, then the members' peer edges.
    fn edges_into(&self, tree: &Tree, name: &str) -> Vec<(Who, Edge)> {
        let mut out = Vec::new();
        if name == self.top {
            out.push((Who::Real(self.source), self.top_edge.clone()));
        } else if let Some(e) = tree.node(self.source).edges.iter().find(|e| e.request.name == name) {
            out.push((Who::Real(self.source), e.clone()));
        }
        for m in self.members.keys() {
            for e in self.peer_edges(tree, m) {
                if e.request.name == name {
                    out.push((Who::Virtual(m.clone()), e));
                }
            }
        }
        out
    }
}

/// A node to explain: one in the tree, or a member of a peer set not placed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Real(NodeId),
    Virtual(String),
}

/// npm's ERESOLVE explanations (`explain-dep.js`, depth 4 on screen): a node is
/// `name@version`, its location and who depends on it, indented, each dependent explained the
/// same way one level shallower.
struct Explain<'a> {
    tree: &'a Tree,
    set: Option<&'a PeerSet>,
}

impl Explain<'_> {
    const DEPTH: usize = 4;

    fn print(&self, who: &Who) -> String {
        match who {
            Who::Real(id) => match &self.tree.node(*id).resolved {
                None => "the root project".to_owned(),
                Some(r) => format!("{}@{}\n{}", self.tree.node(*id).name, r.version, self.tree.location(*id)),
            },
            Who::Virtual(name) => match self.set.and_then(|s| s.members.get(name)) {
                Some(r) => format!("{name}@{}\nnode_modules/{name}", r.version),
                None => name.clone(),
            },
        }
    }

    /// Who depends on `who`, through edges it satisfies.
    fn dependents(&self, who: &Who) -> Vec<(Who, Edge)> {
        match who {
            Who::Real(id) => {
                let Some(name) =
                    self.tree.node(*id).resolved.as_ref().map(|_| self.tree.node(*id).name.clone())
                else {
                    return Vec::new();
                };
                dependents(self.tree, *id, &name)
                    .into_iter()
                    .filter(|(_, e)| self.tree.satisfies(*id, e))
                    .map(|(n, e)| (Who::Real(n), e.clone()))
                    .collect()
            }
            Who::Virtual(name) => {
                let Some(set) = self.set else { return Vec::new() };
                let Some(r) = set.members.get(name) else { return Vec::new() };
                set.edges_into(self.tree, name).into_iter().filter(|(_, e)| dep_satisfies(r, e)).collect()
            }
        }
    }

    fn node(&self, who: &Who, depth: usize) -> String {
        self.print(who) + &self.explain_dependents(who, depth)
    }

    fn explain_dependents(&self, who: &Who, depth: usize) -> String {
        let deps = self.dependents(who);
        if deps.is_empty() || depth == 0 {
            return String::new();
        }
        let max = depth.div_ceil(2);
        let mut messages: Vec<String> = deps.iter().take(max).map(|(w, e)| self.edge(w, e, depth)).collect();
        if deps.len() > max {
            // The names of the first few that overflowed, as npm lists them.
            let mut len = 0;
            let mut names = Vec::new();
            for (i, (w, _)) in deps.iter().enumerate().skip(max) {
                let name = match w {
                    Who::Real(id) if *id == Tree::ROOT => "the root project".to_owned(),
                    Who::Real(id) => self.tree.node(*id).name.clone(),
                    Who::Virtual(n) => n.clone(),
                };
                len += name.len();
                if len >= 50 && i < deps.len() - 1 {
                    names.push("...".to_owned());
                    break;
                }
                names.push(name);
            }
            messages.push(format!("{} more ({})", deps.len() - max, names.join(", ")));
        }
        format!("\n{}", messages.join("\n")).replace('\n', "\n  ")
    }

    fn edge(&self, from: &Who, edge: &Edge, depth: usize) -> String {
        let kind = match edge.kind {
            EdgeKind::Prod => "",
            EdgeKind::Dev => "dev ",
            EdgeKind::Optional => "optional ",
            EdgeKind::Peer => "peer ",
            EdgeKind::PeerOptional => "peerOptional ",
        };
        let from = match from {
            Who::Real(Tree::ROOT) => "the root project".to_owned(),
            w => self.print(w) + &self.explain_dependents(w, depth.saturating_sub(1)),
        };
        format!("{kind}{}@\"{}\" from {from}", edge.request.name, edge.spec)
    }
}

/// Resolve `edge` (out of `source`, or a member of the set) with the version `prefer` would
/// pick when that fits: arborist's `#nodeFromEdge(parentEdge, …, secondEdge)`.
async fn pick_for<S: ManifestSource + 'static>(
    resolver: &Resolver<S>,
    parent_edge: &Edge,
    edge: &Edge,
) -> Result<Resolved, ResolveError> {
    let first = resolver.resolve(&parent_edge.request).await?;
    if dep_satisfies(&first, edge) {
        return Ok(first);
    }
    match resolver.resolve(&edge.request).await {
        Ok(second) if dep_satisfies(&second, parent_edge) => Ok(second),
        _ => Ok(first),
    }
}

/// Build the peer set of `dep`, placed for `edge` out of `from`. A peer that conflicts with
/// the source's own dependency, or with another member, is npm's ERESOLVE when the source is
/// the project (or under `--strict-peer-deps`) and the peer is needed; otherwise the peer edge
/// is left unmet with a warning, as npm does.
async fn peer_set<S: ManifestSource + 'static>(
    tree: &Tree,
    resolver: &Resolver<S>,
    from: NodeId,
    edge: &Edge,
    dep: Resolved,
) -> Result<PeerSet, ResolveError> {
    // A peer edge of a placed node is resolved in the context of the node's own source.
    let source = if edge.kind.is_peer() { tree.peer_source(from) } else { from };
    let name = edge.request.name.clone();
    let mut set = PeerSet {
        source,
        top: name.clone(),
        top_edge: edge.clone(),
        members: BTreeMap::from([(name.clone(), dep)]),
        required: BTreeSet::new(),
        conflicted: BTreeSet::new(),
    };
    if edge.kind != EdgeKind::PeerOptional {
        set.required.insert(name.clone());
    }
    let conflict_ok = source != Tree::ROOT && !tree.options().strict_peer_deps;
    // Depth first, each member's peers in name order (edges_for sorts them).
    let mut stack: Vec<(String, Vec<Edge>, usize)> = vec![(name.clone(), set.peer_edges(tree, &name), 0)];
    while let Some(frame) = stack.last_mut() {
        let Some(peer) = frame.1.get(frame.2).cloned() else {
            stack.pop();
            continue;
        };
        frame.2 += 1;
        let member = frame.0.clone();
        let pname = peer.request.name.clone();
        let required = set.required.contains(&member) && peer.kind != EdgeKind::PeerOptional;
        if let Some(current) = set.members.get(&pname) {
            if dep_satisfies(current, &peer) {
                continue;
            }
            // Something in the set already, not what this peer wants: take the peer's own
            // pick if everything else in the set accepts it.
            if let Ok(alt) = resolver.resolve(&peer.request).await {
                let others = set.edges_into(tree, &pname);
                let accepted = others
                    .iter()
                    .filter(|(w, e)| !(*w == Who::Virtual(member.clone()) && e.request.name == pname))
                    .all(|(_, e)| dep_satisfies(&alt, e));
                if accepted {
                    set.members.insert(pname.clone(), alt);
                    if required {
                        set.required.insert(pname.clone());
                    }
                    stack.push((pname.clone(), set.peer_edges(tree, &pname), 0));
                    continue;
                }
            }
            if conflict_ok || !set.required.contains(&member) {
                set.conflicted.insert((member, pname));
                continue;
            }
            return Err(set_conflict(tree, &set, &member, &peer));
        }
        let parent_edge = tree.node(source).edges.iter().find(|e| e.request.name == pname).cloned();
        let picked = match &parent_edge {
            Some(pe) => pick_for(resolver, pe, &peer).await,
            None => resolver.resolve(&peer.request).await,
        };
        let picked = match picked {
            Ok(p) => p,
            // An optional peer that cannot be resolved is simply not part of the set.
            Err(_) if peer.kind == EdgeKind::PeerOptional => continue,
            Err(e) => return Err(super::tree::in_tree(tree, from, &pname, e)),
        };
        let fits = dep_satisfies(&picked, &peer);
        set.members.insert(pname.clone(), picked);
        if required {
            set.required.insert(pname.clone());
        }
        stack.push((pname.clone(), set.peer_edges(tree, &pname), 0));
        if !fits {
            if conflict_ok || !required {
                set.conflicted.insert((member, pname));
                continue;
            }
            return Err(set_conflict(tree, &set, &member, &peer));
        }
    }
    Ok(set)
}

/// The ERESOLVE of a peer set that cannot agree: what the set holds for the peer, and the peer
/// edge of `member` it does not satisfy (arborist's `#explainPeerConflict`).
fn set_conflict(tree: &Tree, set: &PeerSet, member: &str, peer: &Edge) -> ResolveError {
    let x = Explain { tree, set: Some(set) };
    let found = x.node(&Who::Virtual(peer.request.name.clone()), Explain::DEPTH);
    let wanted = x.edge(&Who::Virtual(member.to_owned()), peer, Explain::DEPTH);
    ResolveError::PeerConflict { found, wanted }
}

/// Whether the peers of set member `member`, placed with it into `target`, fit there too (each
/// is already served from there, or can be placed there, and so can its own peers): arborist's
/// `canPlacePeers`, which prefers deduplicating a peer over nesting.
fn peers_fit(tree: &Tree, set: &PeerSet, target: NodeId, member: &str, path: &mut Vec<String>) -> bool {
    path.push(member.to_owned());
    let fits = set.peer_edges(tree, member).iter().all(|edge| {
        let name = edge.request.name.as_str();
        let Some(dep) = set.members.get(name) else { return true };
        if path.iter().any(|p| p == name) || set.conflicted.contains(&(member.to_owned(), name.to_owned())) {
            return true;
        }
        match can_place(tree, target, None, name, dep, true) {
            CanPlace::Conflict => tree.resolve(target, name).is_some_and(|to| tree.satisfies(to, edge)),
            CanPlace::Keep => true,
            CanPlace::Ok | CanPlace::Replace => peers_fit(tree, set, target, name, path),
        }
    });
    path.pop();
    fits
}

/// The outcome of placing one package.
enum Placed {
    /// An identical copy already serves the edge.
    Kept,
    /// Added as this node.
    Added(NodeId),
    /// A peer dependency that cannot go where it must (beside its dependent): the location
    /// that refused it.
    PeerConflict { at: NodeId },
}

/// Place `dep` (resolved for `edge` out of `from`) and, if it is new, its peer set, as
/// arborist's `PlaceDep` does. Returns the nodes added (to be queued for their own
/// dependencies). A peer set that cannot agree, or a peer with no place to go, is npm's
/// ERESOLVE when the project's own dependency brought it in (or under `--strict-peer-deps`);
/// otherwise npm only warns ("overriding peer dependency") and keeps what is there, and so
/// does this.
pub(crate) async fn place<S: ManifestSource + 'static>(
    tree: &mut Tree,
    resolver: &Resolver<S>,
    from: NodeId,
    edge: &Edge,
    dep: Resolved,
) -> Result<Vec<NodeId>, ResolveError> {
    if edge.kind.is_peer() && tree.is_peer_conflicted(from, &edge.request.name) {
        return Ok(Vec::new());
    }
    if tree.resolve(from, &edge.request.name).is_some_and(|to| tree.satisfies(to, edge)) {
        return Ok(Vec::new());
    }
    let set = peer_set(tree, resolver, from, edge, dep).await?;
    for (member, peer) in &set.conflicted {
        tracing::warn!(
            peer = %peer,
            dependent = %member,
            "ERESOLVE overriding peer dependency: the peer set keeps the version its source wants"
        );
    }
    let mine = set.source == Tree::ROOT
        || (edge.kind.is_peer()
            && dependents(tree, from, &tree.node(from).name)
                .iter()
                .any(|(n, e)| *n == Tree::ROOT && !e.kind.is_peer()));
    let strict = tree.options().strict_peer_deps;
    let mut added = Vec::new();
    let Some(top) = set.members.get(&set.top).cloned() else { return Ok(added) };
    let mut work = vec![(from, edge.clone(), top, set.top.clone())];
    while let Some((from, edge, dep, member)) = work.pop() {
        if tree.resolve(from, &edge.request.name).is_some_and(|to| tree.satisfies(to, &edge)) {
            continue;
        }
        let id = match place_one(tree, &set, from, &edge, dep, &member) {
            Placed::Kept => continue,
            Placed::Added(id) => id,
            Placed::PeerConflict { at } if mine || strict => {
                return Err(peer_conflict(tree, from, &edge, at));
            }
            Placed::PeerConflict { at } => {
                tracing::warn!(
                    peer = %format!("{}@{}", edge.request.name, edge.spec),
                    dependent = %tree.describe(from),
                    at = %tree.location(at),
                    "ERESOLVE overriding peer dependency: keeping the package already there"
                );
                tree.mark_peer_conflicted(from, &edge.request.name);
                continue;
            }
        };
        added.push(id);
        tree.set_peer_source(id, set.source);
        for (m, peer) in &set.conflicted {
            if *m == member {
                tree.mark_peer_conflicted(id, peer);
            }
        }
        // The new node's unmet peers go beside it, from the set, placed now.
        let mut next = Vec::new();
        for peer in tree.node(id).edges.iter().filter(|e| e.kind.is_peer()) {
            let name = peer.request.name.as_str();
            match tree.resolve(id, name) {
                Some(to) if tree.satisfies(to, peer) => continue,
                // A missing optional peer is fine where it is.
                None if peer.kind == EdgeKind::PeerOptional => continue,
                _ => {}
            }
            if tree.is_peer_conflicted(id, name) {
                continue;
            }
            let Some(r) = set.members.get(name) else { continue };
            if !dep_satisfies(r, peer) {
                continue;
            }
            next.push((id, peer.clone(), r.clone(), name.to_owned()));
        }
        // Stack: push in reverse so the first peer (by name) is placed first.
        work.extend(next.into_iter().rev());
    }
    Ok(added)
}

/// Explain a peer that has nowhere to go the way npm's ERESOLVE report does: what is found at
/// `at` and who needs it, and the peer dependency of `from` that does not fit.
fn peer_conflict(tree: &Tree, from: NodeId, edge: &Edge, at: NodeId) -> ResolveError {
    let name = edge.request.name.as_str();
    let x = Explain { tree, set: None };
    let found = match tree.resolve(at, name) {
        Some(cur) => x.node(&Who::Real(cur), Explain::DEPTH),
        // Nothing there yet: the place's own dependency is what the peer would break.
        None => match tree.node(at).edges.iter().find(|e| e.request.name == name) {
            Some(e) => x.edge(&Who::Real(at), e, Explain::DEPTH),
            None => format!("a conflicting {name} at {}", tree.location(at)),
        },
    };
    let wanted = x.edge(&Who::Real(from), edge, Explain::DEPTH);
    ResolveError::PeerConflict { found, wanted }
}

/// Place one package: walk up from where it must start and take the shallowest location
/// where it and its peers conflict with nothing (arborist's `place-dep.js`).
fn place_one(
    tree: &mut Tree,
    set: &PeerSet,
    from: NodeId,
    edge: &Edge,
    dep: Resolved,
    member: &str,
) -> Placed {
    let name = edge.request.name.as_str();
    let peer = edge.kind.is_peer();
    // A peer must be resolvable from the dependent's parent, so it starts one level up.
    let start = if peer { tree.node(from).parent.unwrap_or(Tree::ROOT) } else { from };
    let mut chosen: Option<(NodeId, CanPlace)> = None;
    let ancestors: Vec<NodeId> = tree.ancestors(start).collect();
    for t in ancestors {
        match can_place(tree, t, Some(from), name, &dep, peer) {
            CanPlace::Conflict => break,
            CanPlace::Keep => {
                chosen = Some((t, CanPlace::Keep));
                break;
            }
            _ if !peers_fit(tree, set, t, member, &mut Vec::new()) => break,
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
        stack.extend(tree.out_nodes(n, |_| true));
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
