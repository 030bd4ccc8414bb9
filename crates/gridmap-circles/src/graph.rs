//! The walking graph: road vertices as nodes, road segments as edges.

use geo::{Coord, Distance, Geodesic, LineString, Point};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use std::collections::HashMap;

/// Coordinates equal after rounding to this many units per degree are one node
/// (1e-7°, about 1 cm), so roads that meet at a shared vertex connect.
const SNAP_UNITS_PER_DEGREE: f64 = 1e7;

/// An undirected graph of walkable segments with lengths in metres.
///
/// Every vertex of every road is a node, not only the vertices shared by
/// several roads: a vertex inside one road has two edges and changes no
/// distance, and keeping it lets each edge be one straight segment, which is
/// what the circle polygon cuts at a fraction.
#[derive(Debug, Clone)]
pub struct WalkGraph {
    nodes: Vec<Coord>,
    adjacency: Vec<Vec<(usize, f64)>>,
    edges: Vec<Edge>,
    node_index: RTree<GeomWithData<[f64; 2], usize>>,
    /// Longitude is multiplied by this before indexing so that nearest in the
    /// index is nearest on the ground near the network's mean latitude.
    lon_scale: f64,
}

/// One segment between two nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// Geodesic length on the ellipsoid, as PostGIS's `ST_Length(geography)`.
    pub length_m: f64,
}

/// A point attached to the graph at its nearest node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    pub node: usize,
    /// Geodesic distance from the point to the node.
    pub distance_m: f64,
}

impl WalkGraph {
    /// The graph of `roads` (CGCS2000 lon/lat). Zero-length segments, which
    /// connect nothing, are dropped.
    #[must_use]
    pub fn new(roads: &[LineString]) -> Self {
        let mut ids: HashMap<(i64, i64), usize> = HashMap::new();
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for road in roads {
            let mut previous: Option<usize> = None;
            for coord in road.coords() {
                let key = snap_key(*coord);
                let id = *ids.entry(key).or_insert_with(|| {
                    nodes.push(*coord);
                    nodes.len() - 1
                });
                if let Some(from) = previous.filter(|&from| from != id) {
                    let length_m = Geodesic.distance(Point(nodes[from]), Point(nodes[id]));
                    edges.push(Edge {
                        from,
                        to: id,
                        length_m,
                    });
                }
                previous = Some(id);
            }
        }
        let mut adjacency = vec![Vec::new(); nodes.len()];
        for edge in &edges {
            adjacency[edge.from].push((edge.to, edge.length_m));
            adjacency[edge.to].push((edge.from, edge.length_m));
        }
        let mean_latitude = if nodes.is_empty() {
            0.0
        } else {
            nodes.iter().map(|coord| coord.y).sum::<f64>() / nodes.len() as f64
        };
        let lon_scale = mean_latitude.to_radians().cos();
        let node_index = RTree::bulk_load(
            nodes
                .iter()
                .enumerate()
                .map(|(id, coord)| GeomWithData::new([coord.x * lon_scale, coord.y], id))
                .collect(),
        );
        Self {
            nodes,
            adjacency,
            edges,
            node_index,
            lon_scale,
        }
    }

    #[must_use]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node's lon/lat.
    #[must_use]
    pub fn node(&self, id: usize) -> Coord {
        self.nodes[id]
    }

    #[must_use]
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Neighbours of a node with the length of the edge to each.
    #[must_use]
    pub fn neighbours(&self, id: usize) -> &[(usize, f64)] {
        &self.adjacency[id]
    }

    /// The node nearest to `point`, or `None` for an empty graph.
    ///
    /// The index ranks nodes in scaled degrees, which is within a fraction of
    /// a percent of ground distance across a county; the distance returned is
    /// the exact geodesic one.
    #[must_use]
    pub fn snap(&self, point: Coord) -> Option<Snap> {
        let nearest = self
            .node_index
            .nearest_neighbor(&[point.x * self.lon_scale, point.y])?;
        let node = nearest.data;
        Some(Snap {
            node,
            distance_m: Geodesic.distance(Point(point), Point(self.nodes[node])),
        })
    }

    /// The nodes nearest to `point` within `slack_m` of the nearest: a point
    /// midway between two nodes attaches to both, so a shortest walk from it
    /// does not depend on which of equal nodes an index returns first. Looks
    /// among the 8 nearest by the index (`gridmap_index::nearest_nodes`,
    /// which the lookup's `NodeSnap` shares), in their order.
    #[must_use]
    pub fn snap_ties(&self, point: Coord, slack_m: f64) -> Vec<Snap> {
        let mut ties: Vec<Snap> = Vec::new();
        let mut best = f64::INFINITY;
        let nearest =
            gridmap_index::nearest_nodes(&self.node_index, [point.x * self.lon_scale, point.y]);
        for node in nearest.nodes() {
            let distance_m = Geodesic.distance(Point(point), Point(self.nodes[node]));
            if distance_m < best {
                best = distance_m;
                ties.retain(|snap| snap.distance_m <= best + slack_m);
            }
            if distance_m <= best + slack_m {
                ties.push(Snap { node, distance_m });
            }
        }
        ties
    }
}

fn snap_key(coord: Coord) -> (i64, i64) {
    // Casting a rounded, finite degree value times 1e7 cannot overflow i64.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "degrees × 1e7 are below 2e9, far inside i64"
    )]
    let key = (
        (coord.x * SNAP_UNITS_PER_DEGREE).round() as i64,
        (coord.y * SNAP_UNITS_PER_DEGREE).round() as i64,
    );
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::line_string;

    #[test]
    fn shared_vertices_connect_roads() {
        let roads = [
            line_string![(x: 120.0, y: 37.0), (x: 120.001, y: 37.0)],
            // Starts 0.3 cm from the first road's end: the same node.
            line_string![(x: 120.001_000_03, y: 37.0), (x: 120.001, y: 37.001)],
        ];
        let graph = WalkGraph::new(&roads);
        assert_eq!(graph.node_count(), 3);
        assert_eq!(graph.edges().len(), 2);
        assert_eq!(graph.neighbours(1).len(), 2);
        let snap = graph
            .snap(Coord {
                x: 120.0,
                y: 37.0001,
            })
            .unwrap();
        assert_eq!(snap.node, 0);
        assert!((snap.distance_m - 11.1).abs() < 0.1, "{}", snap.distance_m);
    }
}
