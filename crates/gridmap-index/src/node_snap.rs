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
//! left out without measuring it geodesically (Karney's method, the costly
//! part of a lookup).

use geo::{Coord, Distance, Geodesic, Point};
use rstar::primitives::GeomWithData;
use rstar::RTree;

/// Mean radius of the Earth, in metres.
const MEAN_RADIUS_M: f64 = 6_371_008.8;
/// Geodesic distances exceed spherical ones (on the mean sphere) times
/// `1 - SPHERE_MARGIN`: the two differ by less than 0.7 %.
const SPHERE_MARGIN: f64 = 0.01;
/// Candidates examined, as `WalkGraph::snap_ties` does.
const CANDIDATES: usize = 8;

/// Road-network nodes indexed for snapping.
#[derive(Debug, Clone)]
pub struct NodeSnap {
    nodes: Vec<Coord<f64>>,
    /// Unit vectors of the nodes, for the spherical bound.
    vectors: Vec<[f64; 3]>,
    tree: RTree<GeomWithData<[f64; 2], usize>>,
    lon_scale: f64,
}

/// A node near the point, with its geodesic distance in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeDistance {
    pub node: usize,
    pub distance_m: f64,
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
        let tree = RTree::bulk_load(
            nodes
                .iter()
                .enumerate()
                .map(|(id, coord)| GeomWithData::new([coord.x * lon_scale, coord.y], id))
                .collect(),
        );
        let vectors = nodes
            .iter()
            .map(|coord| unit_vector(coord.x, coord.y))
            .collect();
        Self {
            nodes,
            vectors,
            tree,
            lon_scale,
        }
    }

    /// The nodes `WalkGraph::snap_ties(point, slack_m)` returns, in the same
    /// order, less those farther than `limit_m`: the candidates are the same,
    /// and one left out unmeasured is either beyond `limit_m` or beyond the
    /// nearest plus `slack_m`, where it would have been dropped.
    #[must_use]
    pub fn ties_within(&self, point: Coord<f64>, slack_m: f64, limit_m: f64) -> Vec<NodeDistance> {
        let query = unit_vector(point.x, point.y);
        let mut ties: Vec<NodeDistance> = Vec::new();
        let mut best = f64::INFINITY;
        let mut bound_2 = chord_2_beyond(limit_m + slack_m);
        for candidate in self
            .tree
            .nearest_neighbor_iter(&[point.x * self.lon_scale, point.y])
            .take(CANDIDATES)
        {
            let node = candidate.data;
            if squared_distance(&self.vectors[node], &query) > bound_2 {
                continue;
            }
            let distance_m = Geodesic.distance(Point(point), Point(self.nodes[node]));
            if distance_m < best {
                best = distance_m;
                ties.retain(|snap| snap.distance_m <= best + slack_m);
                bound_2 = chord_2_beyond((best + slack_m).min(limit_m + slack_m));
            }
            if distance_m <= best + slack_m {
                ties.push(NodeDistance { node, distance_m });
            }
        }
        ties.retain(|snap| snap.distance_m <= limit_m);
        ties
    }
}

/// The squared chord between unit vectors beyond which two points are
/// certainly more than `metres` apart on the ellipsoid.
fn chord_2_beyond(metres: f64) -> f64 {
    let half_angle =
        (metres / (1.0 - SPHERE_MARGIN) / (2.0 * MEAN_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    (2.0 * half_angle.sin()).powi(2)
}

fn squared_distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// The point on the unit sphere at `(lon, lat)` degrees.
fn unit_vector(lon: f64, lat: f64) -> [f64; 3] {
    let (sin_lat, cos_lat) = lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = lon.to_radians().sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}
