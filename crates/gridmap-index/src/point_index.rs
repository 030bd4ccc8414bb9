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
use rstar::RTree;

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
}

impl<T> PointIndex<T> {
    /// Builds the index in one bulk load. On equal distances the point given
    /// first wins, so callers sort `items` to make answers deterministic.
    #[must_use]
    pub fn new(items: Vec<IndexedPoint<T>>) -> Self {
        let entries = items
            .iter()
            .enumerate()
            .map(|(idx, item)| GeomWithData::new(unit_vector(item.lon, item.lat), idx))
            .collect();
        Self {
            items,
            tree: RTree::bulk_load(entries),
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
    #[must_use]
    pub fn nearest(&self, lon: f64, lat: f64) -> Option<NearestPoint<'_, T>> {
        let query = Point::new(lon, lat);
        let mut best: Option<(usize, f64)> = None;
        for (entry, chord_2) in self
            .tree
            .nearest_neighbor_iter_with_distance_2(&unit_vector(lon, lat))
        {
            let spherical_m = 2.0 * MEAN_RADIUS_M * (chord_2.sqrt() / 2.0).min(1.0).asin();
            if best.is_some_and(|(_, best_m)| spherical_m * (1.0 - SPHERE_MARGIN) > best_m) {
                break;
            }
            let item = &self.items[entry.data];
            let metres = Geodesic.distance(query, Point::new(item.lon, item.lat));
            let better = best.is_none_or(|(best_idx, best_m)| {
                metres < best_m || (metres == best_m && entry.data < best_idx)
            });
            if better {
                best = Some((entry.data, metres));
            }
        }
        best.map(|(idx, distance_m)| NearestPoint {
            point: &self.items[idx],
            distance_m,
        })
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
}
