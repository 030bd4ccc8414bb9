//! [`PointIndex`]: the nearest point on the ellipsoid, in metres.
//!
//! The R-tree holds each point as a unit vector in three dimensions. The
//! chord between two unit vectors grows with the great-circle distance, so the
//! tree's nearest-neighbour search in 3-D is exact on the sphere at every
//! latitude, with no longitude scaling to tune. One branch and bound walks
//! it: a box or point whose chord puts it, less the sphere-versus-ellipsoid
//! margin, beyond the best distance so far is pruned; the others are
//! measured on the ellipsoid, estimated with an error bound and measured
//! exactly (Karney's method on WGS84, as PostGIS measures `geography`) only
//! where the bounds of two candidates overlap.

use crate::candidate_cells::{widened_bounds, CandidateCells, Cell, Limits, Listing, MAX_IDS};
use crate::geodesic::{chord_2_beyond, unit_vector};
use crate::nearest_first::nearest_first;
use crate::GeodesicDistance;
use geo::Coord;
use rstar::primitives::GeomWithData;
use rstar::{ParentNode, PointDistance as _, RTree, RTreeNode};

type Entry = GeomWithData<[f64; 3], usize>;

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
    /// Geodesic distance on the WGS84 ellipsoid, estimated with a bound
    /// (see [`GeodesicDistance`]).
    pub distance: GeodesicDistance,
}

impl<T> NearestPoint<'_, T> {
    /// The exact geodesic distance, in metres.
    #[must_use]
    pub fn distance_m(&self) -> f64 {
        self.distance.exact_m()
    }
}

/// A read-only index of points; build a new one to change the contents.
#[derive(Debug)]
pub struct PointIndex<T> {
    items: Vec<IndexedPoint<T>>,
    tree: RTree<Entry>,
    /// The unit vectors in item order, scanned directly when there are few
    /// (measured: the tree walk wins from a few dozen points on).
    vectors: Vec<[f64; 3]>,
    /// Per cell of a grid over the points (in degrees), the points that can
    /// be nearest somewhere in the cell; `None` up to [`SCAN_UP_TO`] points.
    cells: Option<CandidateCells>,
}

/// Up to this many points, [`PointIndex::nearest`] scans instead of walking the tree.
const SCAN_UP_TO: usize = 32;
/// Top cells per indexed point (crowded ones are cut further).
const CELLS_PER_POINT: usize = 1;
/// A cell with more candidates than 16 is cut in four, unless cutting would
/// barely shorten its list; then it keeps up to 64 (ordered by distance from
/// the centre, most are pruned by their chord alone).
const CELL_LIMITS: Limits = Limits {
    cut_above: 16,
    keep_up_to: 64,
    max_ids: MAX_IDS,
};
/// A cell wider or taller than this (degrees) is cut in four, and one
/// reaching beyond [`CELL_LATITUDE_LIMIT`] walks the tree: the bound on the
/// distance from a cell's centre (its farthest corner, widened) is meant for
/// small cells.
const MAX_CELL_DEGREES: f64 = 0.5;
const CELL_LATITUDE_LIMIT: f64 = 80.0;

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
        let mut index = Self {
            items,
            tree: RTree::bulk_load(entries),
            vectors,
            cells: None,
        };
        if index.items.len() > SCAN_UP_TO {
            index.cells = index.candidate_cells();
        }
        index
    }

    /// Lists, per cell of a grid over the points' extent (widened by a quarter
    /// on each side), every point within `d + 2r` of the cell's centre, where
    /// `d` bounds the distance from the centre to its nearest point and `r`
    /// the distance from the centre to any point of the cell (see
    /// [`CandidateCells`]); the list is ordered by the chord from the centre,
    /// so the likely answer is measured first and prunes the rest.
    fn candidate_cells(&self) -> Option<CandidateCells> {
        let bounds = widened_bounds(self.items.iter().map(|item| [item.lon, item.lat]), 0.25);
        let bounds = [
            bounds[0],
            bounds[1].max(-90.0),
            bounds[2],
            bounds[3].min(90.0),
        ];
        let target = self.items.len() * CELLS_PER_POINT;
        CandidateCells::build(bounds, target, CELL_LIMITS, |cell| {
            self.cell_candidates(cell)
        })
    }

    fn cell_candidates(&self, cell: Cell) -> Listing {
        if cell.south < -CELL_LATITUDE_LIMIT || cell.north > CELL_LATITUDE_LIMIT {
            return Listing::Tree;
        }
        if cell.east - cell.west > MAX_CELL_DEGREES || cell.north - cell.south > MAX_CELL_DEGREES {
            return Listing::Cut;
        }
        let [lon, lat] = cell.centre();
        let centre = Coord { x: lon, y: lat };
        // The farthest point of a small cell from its centre is a corner; the
        // widening covers the curvature of its edges and a query placed in
        // the cell by a rounding step from beyond its edge.
        let reach_m = cell
            .corners()
            .iter()
            .map(|&[x, y]| GeodesicDistance::between(centre, Coord { x, y }).high_m())
            .fold(0.0, f64::max)
            * 1.01
            + 0.01;
        let Some(nearest) = self.nearest_by_tree(lon, lat) else {
            return Listing::Tree;
        };
        let nearest_m = nearest.distance.high_m();
        let centre_vector = unit_vector(lon, lat);
        let mut listed: Vec<(f64, u32)> = self
            .tree
            .locate_within_distance(centre_vector, chord_2_beyond(nearest_m + 2.0 * reach_m))
            .map(|entry| (entry.geom().distance_2(&centre_vector), entry.data as u32))
            .collect();
        listed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Listing::Listed {
            ids: listed.into_iter().map(|(_, idx)| idx).collect(),
            d: nearest_m,
            r: reach_m,
        }
    }

    /// Heap bytes of the candidate cells (the tree and items not counted).
    #[must_use]
    pub fn cell_heap_bytes(&self) -> usize {
        self.cells.as_ref().map_or(0, CandidateCells::heap_bytes)
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
    /// an empty index. Ties go to the point given first.
    ///
    /// One depth-first branch and bound over the tree of unit vectors: a box
    /// or point whose chord to the query puts it, on the sphere, beyond the
    /// sphere-versus-ellipsoid margin of the best distance so far cannot win
    /// and is skipped; every other point is measured on the ellipsoid. The
    /// answer is the one exact geodesic distances give: the estimates
    /// ([`GeodesicDistance`]) decide only where their error bounds cannot
    /// change the outcome, and two candidates whose bounds overlap are
    /// measured exactly.
    ///
    /// Where the point's cell lists its candidates, only those are measured
    /// (the same comparisons on a set that holds the answer).
    #[must_use]
    pub fn nearest(&self, lon: f64, lat: f64) -> Option<NearestPoint<'_, T>> {
        let mut search = self.search(lon, lat);
        if self.vectors.len() <= SCAN_UP_TO {
            for (idx, vector) in self.vectors.iter().enumerate() {
                search.offer(idx, vector);
            }
        } else if let Some(listed) = self
            .cells
            .as_ref()
            .and_then(|cells| cells.candidates(lon, lat))
        {
            for &idx in listed {
                let idx = idx as usize;
                search.offer(idx, &self.vectors[idx]);
            }
        } else {
            search.descend(self.tree.root());
        }
        self.found(search)
    }

    /// [`Self::nearest`] by walking the tree, whatever the cells hold.
    fn nearest_by_tree(&self, lon: f64, lat: f64) -> Option<NearestPoint<'_, T>> {
        let mut search = self.search(lon, lat);
        search.descend(self.tree.root());
        self.found(search)
    }

    fn search(&self, lon: f64, lat: f64) -> Search<'_, T> {
        Search {
            items: &self.items,
            query: Coord { x: lon, y: lat },
            query_vector: unit_vector(lon, lat),
            best: None,
            bound_2: f64::INFINITY,
        }
    }

    fn found(&self, search: Search<'_, T>) -> Option<NearestPoint<'_, T>> {
        let (idx, distance) = search.best?;
        Some(NearestPoint {
            point: &self.items[idx],
            distance,
        })
    }
}

/// The state of one [`PointIndex::nearest`] search.
struct Search<'a, T> {
    items: &'a [IndexedPoint<T>],
    query: Coord<f64>,
    query_vector: [f64; 3],
    best: Option<(usize, GeodesicDistance)>,
    /// Squared chord beyond which a point is certainly farther on the
    /// ellipsoid than the best so far.
    bound_2: f64,
}

impl<T> Search<'_, T> {
    /// Measures the point `idx` unless its chord already rules it out.
    fn offer(&mut self, idx: usize, vector: &[f64; 3]) {
        if vector.distance_2(&self.query_vector) > self.bound_2 {
            return;
        }
        let item = &self.items[idx];
        let distance = GeodesicDistance::between(
            self.query,
            Coord {
                x: item.lon,
                y: item.lat,
            },
        );
        let Some((best_idx, best)) = self.best else {
            self.take(idx, distance);
            return;
        };
        if distance.low_m() > best.high_m() {
            return;
        }
        if distance.high_m() < best.low_m() {
            self.take(idx, distance);
            return;
        }
        // The intervals overlap: only the exact distances can decide.
        let (distance, best) = (distance.to_exact(), best.to_exact());
        self.best = Some((best_idx, best));
        let (metres, best_metres) = (distance.estimate_m(), best.estimate_m());
        if metres < best_metres || (metres == best_metres && idx < best_idx) {
            self.take(idx, distance);
        }
    }

    fn take(&mut self, idx: usize, distance: GeodesicDistance) {
        self.best = Some((idx, distance));
        // Beyond this chord a point is farther than the best on the
        // ellipsoid whatever its exact distance: it cannot win.
        self.bound_2 = chord_2_beyond(distance.high_m());
    }

    /// Visits the nearest child first, so the bound tightens early and the
    /// rest are mostly pruned; no allocation (rstar's nearest-neighbour
    /// iterator keeps a heap).
    fn descend(&mut self, node: &ParentNode<Entry>) {
        let children = node.children();
        let query = self.query_vector;
        let order = nearest_first(children, |child| match child {
            RTreeNode::Leaf(entry) => entry.geom().distance_2(&query),
            RTreeNode::Parent(parent) => parent.envelope().distance_2(&query),
        });
        for position in order {
            match &children[position] {
                RTreeNode::Leaf(entry) => self.offer(entry.data, entry.geom()),
                RTreeNode::Parent(parent) => {
                    if parent.envelope().distance_2(&query) <= self.bound_2 {
                        self.descend(parent);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Distance, Geodesic, Point};

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
        assert!((nearest.distance_m() - expected).abs() < 1e-6);
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
            if last_m > by_scan.distance_m() {
                assert_eq!(by_tree.point.payload, by_scan.point.payload);
                assert_eq!(by_tree.distance_m(), by_scan.distance_m());
            }
        }
    }

    #[test]
    fn cells_answer_as_the_tree_does() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        // A dense town, a sparse county around it, and a few duplicates.
        let mut points: Vec<(f64, f64)> = (0..300)
            .map(|_| (rng.gen_range(120.40..120.45), rng.gen_range(37.60..37.64)))
            .collect();
        points.extend((0..200).map(|_| (rng.gen_range(120.0..121.0), rng.gen_range(37.2..38.0))));
        points.extend_from_within(0..20);
        let index = index(&points);
        assert!(index.cell_heap_bytes() > 0);
        let (mut listed, mut queries) = (0, 0);
        for _ in 0..20_000 {
            let (lon, lat) = (rng.gen_range(119.8..121.2), rng.gen_range(37.0..38.2));
            // Also exactly on a station and halfway between two.
            let (a, b) = (
                points[rng.gen_range(0..points.len())],
                points[rng.gen_range(0..points.len())],
            );
            for (lon, lat) in [(lon, lat), a, (0.5 * (a.0 + b.0), 0.5 * (a.1 + b.1))] {
                queries += 1;
                let by_cells = index.nearest(lon, lat).unwrap();
                let by_tree = index.nearest_by_tree(lon, lat).unwrap();
                assert_eq!(
                    by_cells.point.payload, by_tree.point.payload,
                    "({lon}, {lat})"
                );
                assert_eq!(by_cells.distance_m(), by_tree.distance_m());
                let cells = index.cells.as_ref().unwrap();
                listed += usize::from(cells.candidates(lon, lat).is_some());
            }
        }
        // Most queries read a cell's list rather than the tree.
        assert!(listed * 10 > queries * 8, "{listed} of {queries}");
    }

    /// The nearest point by exact geodesic distances, ties to the first.
    fn brute_force(points: &[(f64, f64)], lon: f64, lat: f64) -> (usize, f64) {
        points
            .iter()
            .enumerate()
            .map(|(idx, &(x, y))| {
                (
                    idx,
                    Geodesic.distance(Point::new(lon, lat), Point::new(x, y)),
                )
            })
            .fold((usize::MAX, f64::INFINITY), |best, (idx, metres)| {
                if metres < best.1 {
                    (idx, metres)
                } else {
                    best
                }
            })
    }

    #[test]
    fn estimated_distances_pick_what_exact_ones_pick() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        // Pairs a few micrometres apart, and exact duplicates, make the
        // estimates' intervals overlap; the answer must still be exact.
        let mut points: Vec<(f64, f64)> = Vec::new();
        for _ in 0..400 {
            let (lon, lat) = (rng.gen_range(120.3..120.6), rng.gen_range(37.5..37.8));
            points.push((lon, lat));
            match rng.gen_range(0..3) {
                0 => points.push((lon + 1e-10, lat - 1e-10)),
                1 => points.push((lon, lat)),
                _ => {}
            }
        }
        let index = index(&points);
        for _ in 0..3_000 {
            let (lon, lat) = (rng.gen_range(120.25..120.65), rng.gen_range(37.45..37.85));
            let nearest = index.nearest(lon, lat).unwrap();
            let (expected, metres) = brute_force(&points, lon, lat);
            assert_eq!(nearest.point.payload, expected, "({lon}, {lat})");
            assert_eq!(nearest.distance_m(), metres);
            assert!(nearest.distance.low_m() <= metres && metres <= nearest.distance.high_m());
        }
    }
}
