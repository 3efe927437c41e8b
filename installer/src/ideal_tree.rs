//! Building the ideal tree breadth-first, the way npm's arborist builds it
//! (`build-ideal-tree.js`): a queue ordered by depth then path, each node's problem edges
//! resolved in name order (all of a node's picks fetched at once), each new node placed by
//! [`hoist`], then what nothing needs pruned (DESIGN.md §Install; spec §1.9).

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::error::ResolveError;
use super::hoist;
use super::resolve::{ManifestSource, Resolver};
use super::tree::{BuildOptions, Edge, EdgeKind, NodeId, Tree, in_tree};

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
    let mut tree = Tree::new(root_edges, opts);
    let roots: Vec<_> = tree.node(Tree::ROOT).edges.iter().map(|e| e.request.clone()).collect();
    resolver.prefetch(&roots);
    let mut queue: BTreeSet<(usize, String, NodeId)> = BTreeSet::new();
    queue.insert((0, String::new(), Tree::ROOT));
    while let Some(entry) = queue.pop_first() {
        let node = entry.2;
        if tree.node(node).removed {
            continue;
        }
        let mut edges = problem_edges(&tree, node);
        if edges.is_empty() {
            continue;
        }
        // arborist places a node's problem edges in name order.
        edges.sort_by(|a, b| a.request.name.cmp(&b.request.name));
        let picks = join_all(edges.iter().map(|e| resolver.resolve(&e.request))).await;
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
            let placed = hoist::place(&mut tree, resolver, node, edge, dep).await?;
            for id in placed {
                queue.insert((tree.depth(id), tree.location(id), id));
            }
        }
    }
    hoist::prune(&mut tree);
    Ok(tree)
}
