//! [`PointIndex`]: the nearest point on the ellipsoid, in metres.
//!
//! The R-tree holds each point as a unit vector in three dimensions. The
//! chord between two unit vectors grows with the great-circle distance, so the
//! tree's nearest-neighbour search in 3-D is exact on the sphere at every
//! latitude, with no longitude scaling to tune. The few candidates within the
//! sphere-versus-ellipsoid margin of the best are then measured geodesically
//! (Karney's method on WGS84, as PostGIS measures `geography`).

use geo::{Distance, Geodesic, Point};
use rstar::primitives::GeomWithData;
use rstar::{ParentNode, PointDistance as _, RTree, RTreeNode};

type Entry = GeomWithData<[f64; 3], usize>;

/// Mean radius of the Earth, in metres: the sphere the tree orders by.
const MEAN_RADIUS_M: f64 = 6_371_008.8;

/// Spherical and ellipsoidal distances differ by less than 0.7 % in either
/// direction, so a candidate whose spherical distance exceeds the best
/// geodesic distance by more than this fraction can no longer win.
const SPHERE_MARGIN: f64 = 0.01;

/// One indexed point and its payload.
#[derive(Debug, Clone)]
pub struct IndexedPoint<T> {
    pub lon: f64,
    pub lat: f64,
    pub payload: T,
}

/// The answer of [`PointIndex::nearest`].
#[derive(Debug, Clone, Copy)]
pub struct NearestPoint<'a, T> {
    pub point: &'a IndexedPoint<T>,
    /// Geodesic distance on the WGS84 ellipsoid, in metres.
    pub distance_m: f64,
}

/// A read-only index of points; build a new one to change the contents.
#[derive(Debug)]
pub struct PointIndex<T> {
    items: Vec<IndexedPoint<T>>,
    tree: RTree<Entry>,
    /// The unit vectors in item order, scanned directly when there are few
    /// (measured: the tree walk wins from a few dozen points on).
    vectors: Vec<[f64; 3]>,
}

/// Up to this many points, [`PointIndex::nearest`] scans instead of walking the tree.
const SCAN_UP_TO: usize = 32;

impl<T> PointIndex<T> {
    /// Builds the index in one bulk load. On equal distances the point given
    /// first wins, so callers sort `items` to make answers deterministic.
    #[must_use]
    pub fn new(items: Vec<IndexedPoint<T>>) -> Self {
        let vectors: Vec<[f64; 3]> = items
            .iter()
            .map(|item| unit_vector(item.lon, item.lat))
            .collect();
        let entries = vectors
            .iter()
            .enumerate()
            .map(|(idx, vector)| GeomWithData::new(*vector, idx))
            .collect();
        Self {
            items,
            tree: RTree::bulk_load(entries),
            vectors,
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The point nearest to `(lon, lat)` by geodesic distance, or `None` for
    /// an empty index.
    ///
    /// The nearest point on the sphere is found first; then every point whose
    /// spherical distance could still beat that point's geodesic distance is
    /// measured on the ellipsoid (usually none besides the first). Ties go to
    /// the point given first.
    #[must_use]
    pub fn nearest(&self, lon: f64, lat: f64) -> Option<NearestPoint<'_, T>> {
        let query_vector = unit_vector(lon, lat);
        let mut nearest_on_sphere = (usize::MAX, f64::INFINITY);
        let scan = self.vectors.len() <= SCAN_UP_TO;
        if scan {
            for (idx, vector) in self.vectors.iter().enumerate() {
                // Strictly smaller: on equal chords the earlier point stays.
                let chord_2 = vector.distance_2(&query_vector);
                if chord_2 < nearest_on_sphere.1 {
                    nearest_on_sphere = (idx, chord_2);
                }
            }
        } else {
            nearest_by_chord(self.tree.root(), &query_vector, &mut nearest_on_sphere);
        }
        let (first, _) = nearest_on_sphere;
        let item = self.items.get(first)?;
        let query = Point::new(lon, lat);
        let mut best = (
            first,
            Geodesic.distance(query, Point::new(item.lon, item.lat)),
        );
        // A point at spherical distance s is at least s * (1 - SPHERE_MARGIN)
        // away on the ellipsoid; only those within reach can still win.
        let reach_m = best.1 / (1.0 - SPHERE_MARGIN);
        let half_angle = (reach_m / (2.0 * MEAN_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
        let chord_2_bound = (2.0 * half_angle.sin()).powi(2);
        let mut measure = |idx: usize| {
            if idx == first {
                return;
            }
            let item = &self.items[idx];
            let metres = Geodesic.distance(query, Point::new(item.lon, item.lat));
            if metres < best.1 || (metres == best.1 && idx < best.0) {
                best = (idx, metres);
            }
        };
        if scan {
            for (idx, vector) in self.vectors.iter().enumerate() {
                if vector.distance_2(&query_vector) <= chord_2_bound {
                    measure(idx);
                }
            }
        } else {
            within_chord(self.tree.root(), &query_vector, chord_2_bound, &mut measure);
        }
        Some(NearestPoint {
            point: &self.items[best.0],
            distance_m: best.1,
        })
    }
}

/// Depth-first branch and bound for the smallest chord (ties: smallest index),
/// without the heap allocation of rstar's nearest-neighbour iterator. The
/// nearest child box is searched first, so the bound tightens early and the
/// other boxes are mostly pruned.
fn nearest_by_chord(node: &ParentNode<Entry>, query: &[f64; 3], best: &mut (usize, f64)) {
    let children = node.children();
    let distance_2 = |child: &RTreeNode<Entry>| match child {
        RTreeNode::Leaf(entry) => entry.geom().distance_2(query),
        RTreeNode::Parent(parent) => parent.envelope().distance_2(query),
    };
    let first = children
        .iter()
        .enumerate()
        .map(|(position, child)| (position, distance_2(child)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(position, _)| position);
    let ordered = first
        .into_iter()
        .chain((0..children.len()).filter(|&position| Some(position) != first));
    for position in ordered {
        match &children[position] {
            RTreeNode::Leaf(entry) => {
                let chord_2 = entry.geom().distance_2(query);
                if chord_2 < best.1 || (chord_2 == best.1 && entry.data < best.0) {
                    *best = (entry.data, chord_2);
                }
            }
            RTreeNode::Parent(parent) => {
                if parent.envelope().distance_2(query) <= best.1 {
                    nearest_by_chord(parent, query, best);
                }
            }
        }
    }
}

/// Calls `visit` with every point whose squared chord to `query` is at most
/// `bound_2`.
fn within_chord(
    node: &ParentNode<Entry>,
    query: &[f64; 3],
    bound_2: f64,
    visit: &mut impl FnMut(usize),
) {
    for child in node.children() {
        match child {
            RTreeNode::Leaf(entry) => {
                if entry.geom().distance_2(query) <= bound_2 {
                    visit(entry.data);
                }
            }
            RTreeNode::Parent(parent) => {
                if parent.envelope().distance_2(query) <= bound_2 {
                    within_chord(parent, query, bound_2, visit);
                }
            }
        }
    }
}

/// The point on the unit sphere at `(lon, lat)` degrees.
fn unit_vector(lon: f64, lat: f64) -> [f64; 3] {
    let (sin_lat, cos_lat) = lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = lon.to_radians().sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(points: &[(f64, f64)]) -> PointIndex<usize> {
        PointIndex::new(
            points
                .iter()
                .enumerate()
                .map(|(payload, &(lon, lat))| IndexedPoint { lon, lat, payload })
                .collect(),
        )
    }

    #[test]
    fn finds_the_geodesically_nearest_point_not_the_nearest_in_degrees() {
        // At 60°N a degree of longitude is half a degree of latitude: the
        // point 0.15° east is nearer than the one 0.1° north.
        let points = index(&[(10.0, 60.1), (10.15, 60.0)]);
        let nearest = points.nearest(10.0, 60.0).unwrap();
        assert_eq!(nearest.point.payload, 1);
        let expected = Geodesic.distance(Point::new(10.0, 60.0), Point::new(10.15, 60.0));
        assert!((nearest.distance_m - expected).abs() < 1e-6);
    }

    #[test]
    fn empty_index_has_no_nearest_and_ties_go_to_the_first() {
        assert!(index(&[]).nearest(0.0, 0.0).is_none());
        let points = index(&[(1.0, 0.0), (1.0, 0.0)]);
        assert_eq!(points.nearest(0.0, 0.0).unwrap().point.payload, 0);
    }

    #[test]
    fn scan_and_tree_agree() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let points: Vec<(f64, f64)> = (0..SCAN_UP_TO + 1)
            .map(|_| (rng.gen_range(120.0..121.0), rng.gen_range(37.0..38.0)))
            .collect();
        // One more point than the scan handles walks the tree; the same
        // points less the last are scanned.
        let tree = index(&points);
        let scanned = index(&points[..SCAN_UP_TO]);
        for _ in 0..2_000 {
            let (lon, lat) = (rng.gen_range(119.8..121.2), rng.gen_range(36.8..38.2));
            let by_tree = tree.nearest(lon, lat).unwrap();
            let by_scan = scanned.nearest(lon, lat).unwrap();
            let last = points[SCAN_UP_TO];
            let last_m = Geodesic.distance(Point::new(lon, lat), Point::new(last.0, last.1));
            if last_m > by_scan.distance_m {
                assert_eq!(by_tree.point.payload, by_scan.point.payload);
                assert_eq!(by_tree.distance_m, by_scan.distance_m);
            }
        }
    }
}
