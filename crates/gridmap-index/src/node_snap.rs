//! [`NodeSnap`]: the nodes of a road network nearest to a point, measured on
//! the ellipsoid, with as few geodesic computations as possible.
//!
//! It keeps the rule of `gridmap_circles::WalkGraph::snap_ties` (the nodes
//! among the 8 nearest by an R-tree of longitude-scaled degrees whose
//! geodesic distance is within a slack of the nearest of them) and builds
//! the same tree from the same nodes, so it finds the same candidates in the
//! same order. What it adds is a bound: a candidate whose distance on the
//! sphere already puts it beyond the best so far (plus the slack) or beyond
//! the caller's limit can neither be the nearest nor tie with it, so it is
//! left out without measuring it geodesically; the others are estimated
//! with an error bound and measured exactly (Karney's method, the costly
//! part of a lookup) only when a bound leaves the outcome open.

use crate::candidate_cells::{widened_bounds, CandidateCells, Cell, Limits, Listing, MAX_IDS};
use crate::geodesic::{chord_2_beyond, unit_vector};
use crate::nearest_first::nearest_first;
use crate::GeodesicDistance;
use geo::Coord;
use rstar::primitives::GeomWithData;
use rstar::{ParentNode, PointDistance as _, RTree, RTreeNode};

/// Candidates examined, here and in `WalkGraph::snap_ties`.
pub const CANDIDATES: usize = 8;

/// Road-network nodes indexed for snapping.
#[derive(Debug, Clone)]
pub struct NodeSnap {
    nodes: Vec<Coord<f64>>,
    /// Unit vectors of the nodes, for the spherical bound.
    vectors: Vec<[f64; 3]>,
    tree: RTree<GeomWithData<[f64; 2], usize>>,
    lon_scale: f64,
    /// The nodes in the tree's plane (longitude scaled), by node number.
    plane: Vec<[f64; 2]>,
    /// Per cell of a grid over the plane, the nodes that can be among the
    /// [`CANDIDATES`] nearest somewhere in the cell.
    cells: Option<CandidateCells>,
}

/// Nodes per top cell (crowded cells are cut further).
const NODES_PER_CELL: usize = 4;
/// A cell with more candidates than 32 is cut in four, unless cutting would
/// barely shorten its list; then it keeps up to 128 (scanning them still
/// costs less than walking the tree).
const CELL_LIMITS: Limits = Limits {
    cut_above: 32,
    keep_up_to: 128,
    max_ids: MAX_IDS,
};

/// A node near the point, with its geodesic distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeDistance {
    pub node: usize,
    /// Estimated with an error bound, or exact.
    pub distance: GeodesicDistance,
}

impl NodeSnap {
    /// Indexes `nodes` (lon/lat, in node order) as `WalkGraph::new` does:
    /// longitude scaled by the cosine of the nodes' mean latitude.
    #[must_use]
    pub fn new(nodes: Vec<Coord<f64>>) -> Self {
        let mean_latitude = if nodes.is_empty() {
            0.0
        } else {
            nodes.iter().map(|coord| coord.y).sum::<f64>() / nodes.len() as f64
        };
        let lon_scale = mean_latitude.to_radians().cos();
        let plane: Vec<[f64; 2]> = nodes
            .iter()
            .map(|coord| [coord.x * lon_scale, coord.y])
            .collect();
        let tree = RTree::bulk_load(
            plane
                .iter()
                .enumerate()
                .map(|(id, point)| GeomWithData::new(*point, id))
                .collect(),
        );
        let vectors = nodes
            .iter()
            .map(|coord| unit_vector(coord.x, coord.y))
            .collect();
        let mut snap = Self {
            nodes,
            vectors,
            tree,
            lon_scale,
            plane,
            cells: None,
        };
        snap.cells = snap.candidate_cells();
        snap
    }

    /// Lists, per cell of a grid over the nodes' plane extent (widened by a
    /// tenth on each side), every node within `d + 2r` of the cell's centre,
    /// where `d` is the distance from the centre to its [`CANDIDATES`]th
    /// nearest node and `r` the cell's half diagonal (see [`CandidateCells`]):
    /// the nearest nodes of any point in the cell are among them.
    fn candidate_cells(&self) -> Option<CandidateCells> {
        if self.plane.len() < CANDIDATES {
            return None;
        }
        let bounds = widened_bounds(self.plane.iter().copied(), 0.1);
        let target = self.plane.len() / NODES_PER_CELL;
        CandidateCells::build(bounds, target, CELL_LIMITS, |cell| {
            self.cell_candidates(cell)
        })
    }

    fn cell_candidates(&self, cell: Cell) -> Listing {
        let centre = cell.centre();
        let nearest = nearest_nodes(&self.tree, centre);
        let farthest = nearest.found[CANDIDATES - 1].0.sqrt();
        // Half the diagonal, widened for the rounding of the distances and
        // of a query's placement in the cell.
        let reach = 0.5 * (cell.east - cell.west).hypot(cell.north - cell.south);
        let within = (farthest + 2.0 * reach) * (1.0 + 1e-9) + 1e-12;
        let mut listed: Vec<u32> = self
            .tree
            .locate_within_distance(centre, within * within)
            .map(|entry| entry.data as u32)
            .collect();
        listed.sort_unstable();
        Listing::Listed {
            ids: listed,
            d: farthest,
            r: reach,
        }
    }

    /// The [`CANDIDATES`] nodes nearest to `point` in the tree's plane, as
    /// [`nearest_nodes`] finds them, from the point's cell where it lists them.
    fn nearest(&self, point: Coord<f64>) -> NearestNodes {
        let query = [point.x * self.lon_scale, point.y];
        match self
            .cells
            .as_ref()
            .and_then(|cells| cells.candidates(query[0], query[1]))
        {
            Some(listed) => {
                let mut nearest = NearestNodes::empty();
                for &node in listed {
                    let node = node as usize;
                    nearest.offer(self.plane[node].distance_2(&query), node);
                }
                nearest
            }
            None => nearest_nodes(&self.tree, query),
        }
    }

    /// The nodes, in node order, as given to [`Self::new`].
    #[must_use]
    pub fn nodes(&self) -> &[Coord<f64>] {
        &self.nodes
    }

    /// Heap bytes of the candidate cells (the tree and nodes not counted).
    #[must_use]
    pub fn cell_heap_bytes(&self) -> usize {
        self.cells.as_ref().map_or(0, CandidateCells::heap_bytes)
    }

    /// The nodes `WalkGraph::snap_ties(point, slack_m)` returns, in the same
    /// order, less those farther than `limit_m`: the candidates are the same,
    /// and one left out unmeasured is either beyond `limit_m` or beyond the
    /// nearest plus `slack_m`, where it would have been dropped.
    ///
    /// The distances are estimates with error bounds ([`GeodesicDistance`]);
    /// when a bound leaves a node's membership open, every candidate is
    /// measured exactly, so the nodes are those exact distances give.
    #[must_use]
    pub fn ties_within(&self, point: Coord<f64>, slack_m: f64, limit_m: f64) -> Vec<NodeDistance> {
        let query = unit_vector(point.x, point.y);
        let nearest = self.nearest(point);
        // The candidates measured (estimated), in the order of `nearest`.
        let mut measured = [None::<(usize, GeodesicDistance)>; CANDIDATES];
        // The least upper bound on the nearest distance so far.
        let mut best_high = f64::INFINITY;
        let mut bound_2 = chord_2_beyond(limit_m + slack_m);
        for (slot, node) in measured.iter_mut().zip(nearest.nodes()) {
            if squared_distance(&self.vectors[node], &query) > bound_2 {
                continue;
            }
            let distance = GeodesicDistance::between(point, self.nodes[node]);
            if distance.high_m() < best_high {
                best_high = distance.high_m();
                bound_2 = chord_2_beyond((best_high + slack_m).min(limit_m + slack_m));
            }
            *slot = Some((node, distance));
        }
        let best_low = measured
            .iter()
            .flatten()
            .map(|(_, distance)| distance.low_m())
            .fold(f64::INFINITY, f64::min);
        let mut ties = Vec::new();
        for &(node, distance) in measured.iter().flatten() {
            let surely_in = distance.high_m() <= best_low + slack_m && distance.high_m() <= limit_m;
            let surely_out = distance.low_m() > best_high + slack_m || distance.low_m() > limit_m;
            if surely_in {
                ties.push(NodeDistance { node, distance });
            } else if !surely_out {
                return self.ties_within_exactly(point, &nearest, slack_m, limit_m);
            }
        }
        ties
    }

    /// [`Self::ties_within`] over the same candidates, every one measured
    /// exactly.
    fn ties_within_exactly(
        &self,
        point: Coord<f64>,
        nearest: &NearestNodes,
        slack_m: f64,
        limit_m: f64,
    ) -> Vec<NodeDistance> {
        let query = unit_vector(point.x, point.y);
        let mut ties: Vec<NodeDistance> = Vec::new();
        let mut best = f64::INFINITY;
        let mut bound_2 = chord_2_beyond(limit_m + slack_m);
        for node in nearest.nodes() {
            if squared_distance(&self.vectors[node], &query) > bound_2 {
                continue;
            }
            let distance = GeodesicDistance::exact_between(point, self.nodes[node]);
            let metres = distance.estimate_m();
            if metres < best {
                best = metres;
                ties.retain(|snap| snap.distance.estimate_m() <= best + slack_m);
                bound_2 = chord_2_beyond((best + slack_m).min(limit_m + slack_m));
            }
            if metres <= best + slack_m {
                ties.push(NodeDistance { node, distance });
            }
        }
        ties.retain(|snap| snap.distance.estimate_m() <= limit_m);
        ties
    }
}

/// The [`CANDIDATES`] nodes nearest to `query` in the tree's own plane
/// (longitude-scaled degrees), nearest first, equally near ones by node
/// number: the candidates both `NodeSnap` and `WalkGraph::snap_ties` look
/// among. A depth-first branch and bound with a fixed-size list: unlike
/// rstar's nearest-neighbour iterator it keeps no heap, and its order among
/// equally near nodes does not depend on the tree's layout.
#[must_use]
pub fn nearest_nodes(tree: &RTree<GeomWithData<[f64; 2], usize>>, query: [f64; 2]) -> NearestNodes {
    let mut nearest = NearestNodes::empty();
    nearest.descend(tree.root(), &query);
    nearest
}

/// The answer of [`nearest_nodes`].
#[derive(Debug, Clone)]
pub struct NearestNodes {
    /// (squared distance, node), sorted; the first `len` are filled.
    found: [(f64, usize); CANDIDATES],
    len: usize,
}

impl NearestNodes {
    fn empty() -> Self {
        Self {
            found: [(f64::INFINITY, usize::MAX); CANDIDATES],
            len: 0,
        }
    }

    /// The node numbers, nearest first.
    pub fn nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.found[..self.len].iter().map(|&(_, node)| node)
    }

    /// The squared distance a box or node must not exceed to enter the list.
    fn bound_2(&self) -> f64 {
        if self.len < CANDIDATES {
            f64::INFINITY
        } else {
            self.found[CANDIDATES - 1].0
        }
    }

    fn offer(&mut self, distance_2: f64, node: usize) {
        let entry = (distance_2, node);
        let before = |a: &(f64, usize), b: &(f64, usize)| a.0 < b.0 || (a.0 == b.0 && a.1 < b.1);
        if self.len == CANDIDATES && !before(&entry, &self.found[CANDIDATES - 1]) {
            return;
        }
        let mut position = self.len.min(CANDIDATES - 1);
        while position > 0 && before(&entry, &self.found[position - 1]) {
            self.found[position] = self.found[position - 1];
            position -= 1;
        }
        self.found[position] = entry;
        self.len = (self.len + 1).min(CANDIDATES);
    }

    fn descend(&mut self, node: &ParentNode<GeomWithData<[f64; 2], usize>>, query: &[f64; 2]) {
        let children = node.children();
        let distance_2 = |child: &RTreeNode<GeomWithData<[f64; 2], usize>>| match child {
            RTreeNode::Leaf(entry) => entry.geom().distance_2(query),
            RTreeNode::Parent(parent) => parent.envelope().distance_2(query),
        };
        for position in nearest_first(children, distance_2) {
            let child = &children[position];
            let distance_2 = distance_2(child);
            // Equally near may still enter by node number.
            if distance_2 > self.bound_2() {
                continue;
            }
            match child {
                RTreeNode::Leaf(entry) => self.offer(distance_2, entry.data),
                RTreeNode::Parent(parent) => self.descend(parent, query),
            }
        }
    }
}

fn squared_distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn nearest_nodes_are_the_nearest_by_distance_then_number() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // A lattice (many equal distances) and scattered points.
        let mut points: Vec<[f64; 2]> = (0..900)
            .map(|i| [f64::from(i % 30) * 0.001, f64::from(i / 30) * 0.001])
            .collect();
        points.extend((0..600).map(|_| [rng.gen_range(0.0..0.03), rng.gen_range(0.0..0.03)]));
        let tree = RTree::bulk_load(
            points
                .iter()
                .enumerate()
                .map(|(node, point)| GeomWithData::new(*point, node))
                .collect(),
        );
        let mut queries: Vec<[f64; 2]> = (0..2_000)
            .map(|_| [rng.gen_range(-0.005..0.035), rng.gen_range(-0.005..0.035)])
            .collect();
        // On lattice nodes and midway between them.
        queries.extend((0..60).map(|i| [f64::from(i % 29) * 0.001 + 0.0005, 0.0105]));
        queries.extend((0..60).map(|i| [f64::from(i % 29) * 0.001, 0.012]));
        for query in queries {
            let mut expected: Vec<(f64, usize)> = points
                .iter()
                .enumerate()
                .map(|(node, point)| (point.distance_2(&query), node))
                .collect();
            expected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let expected: Vec<usize> = expected
                .iter()
                .take(CANDIDATES)
                .map(|&(_, node)| node)
                .collect();
            let got: Vec<usize> = nearest_nodes(&tree, query).nodes().collect();
            assert_eq!(got, expected, "{query:?}");
        }
        let empty = RTree::new();
        assert_eq!(nearest_nodes(&empty, [0.0, 0.0]).nodes().count(), 0);
    }

    #[test]
    fn cells_find_the_nodes_the_tree_finds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        // A street lattice in town (equal distances), a dense knot, and
        // scattered rural nodes.
        let mut nodes: Vec<Coord<f64>> = (0..1600)
            .map(|i| Coord {
                x: 120.40 + f64::from(i % 40) * 0.0005,
                y: 37.60 + f64::from(i / 40) * 0.0004,
            })
            .collect();
        nodes.extend((0..300).map(|_| Coord {
            x: 120.41 + rng.gen_range(0.0..0.0002),
            y: 37.61 + rng.gen_range(0.0..0.0002),
        }));
        nodes.extend((0..600).map(|_| Coord {
            x: rng.gen_range(120.0..121.0),
            y: rng.gen_range(37.3..38.0),
        }));
        let snap = NodeSnap::new(nodes.clone());
        assert!(snap.cell_heap_bytes() > 0);
        let cells = snap.cells.as_ref().unwrap();
        let (mut listed, mut queries) = (0, 0);
        for _ in 0..20_000 {
            let random = Coord {
                x: rng.gen_range(119.9..121.1),
                y: rng.gen_range(37.2..38.1),
            };
            let town = Coord {
                x: rng.gen_range(120.39..120.43),
                y: rng.gen_range(37.59..37.62),
            };
            let on_node = nodes[rng.gen_range(0..nodes.len())];
            let between = Coord {
                x: on_node.x + 0.00025,
                y: on_node.y,
            };
            for (position, point) in [town, on_node, between, random].into_iter().enumerate() {
                let query = [point.x * snap.lon_scale, point.y];
                if position == 0 {
                    queries += 1;
                    listed += usize::from(cells.candidates(query[0], query[1]).is_some());
                }
                let by_cells: Vec<usize> = snap.nearest(point).nodes().collect();
                let by_tree: Vec<usize> = nearest_nodes(&snap.tree, query).nodes().collect();
                assert_eq!(by_cells, by_tree, "{point:?}");
            }
        }
        // Queries in town read a cell's list (the knot and the open country
        // around may walk the tree).
        assert!(listed * 10 > queries * 8, "{listed} of {queries}");
        // Too few nodes for a list of candidates: the tree answers.
        let few = NodeSnap::new(nodes[..CANDIDATES - 1].to_vec());
        assert_eq!(few.cell_heap_bytes(), 0);
        assert_eq!(few.nearest(nodes[0]).nodes().count(), CANDIDATES - 1);
    }
}
