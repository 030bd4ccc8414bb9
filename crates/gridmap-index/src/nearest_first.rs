//! An R-tree node's children, nearest first, for the hand-written
//! branch-and-bound searches ([`crate::PointIndex::nearest`],
//! [`crate::nearest_nodes`]): rstar's own nearest-neighbour iterator keeps a
//! heap per query, and these searches run several times per lookup.

use rstar::{RTreeNode, RTreeObject};

/// Positions of a node's children: the nearest first (so a search's bound
/// tightens early), then the others in the tree's order. Sorting them all,
/// or keeping their distances, costs more than it saves (measured); the
/// caller measures a child again when it gets to it.
pub(crate) fn nearest_first<T: RTreeObject>(
    children: &[RTreeNode<T>],
    distance_2: impl Fn(&RTreeNode<T>) -> f64,
) -> impl Iterator<Item = usize> {
    let first = children
        .iter()
        .enumerate()
        .map(|(position, child)| (position, distance_2(child)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(position, _)| position);
    first
        .into_iter()
        .chain((0..children.len()).filter(move |&position| Some(position) != first))
}
