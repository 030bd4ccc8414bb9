//! [`PolygonIndex`]: polygons keyed by code, looked up through a uniform
//! grid of cells (`cell_index.rs`), with an R-tree of bounding boxes for the nearest-edge
//! search and the paths that test polygons one by one ([`PreparedPolygon`],
//! prepared on first use: a lookup by [`PolygonIndex::locate`] never needs it).

use crate::cell_index::CellIndex;
use crate::prepared::PreparedPolygon;
use crate::LocalMetres;
use geo::{BoundingRect, MultiPolygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{Envelope as _, ParentNode, RTree, RTreeNode, RTreeObject as _};
use std::sync::{Arc, OnceLock};

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// One indexed polygon with its code and a caller-defined payload.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// Shared, so that answers can hand it out without copying the text.
    pub code: Arc<str>,
    pub polygon: MultiPolygon<f64>,
    pub payload: T,
}

/// A read-only index over polygons; build a new one to change the contents.
#[derive(Debug)]
pub struct PolygonIndex<T> {
    items: Vec<Located<T>>,
    tree: RTree<Entry>,
    /// The exact test of one item at a time, for [`PolygonIndex::locate_all`],
    /// [`PolygonIndex::locate_by_boxes`] and the rare cells and items past
    /// the cell index's `u32` numbering. Prepared on first use: the cell
    /// index answers [`PolygonIndex::locate`] from its own words and
    /// vertices, so an index used for lookups only (the grids at province
    /// scale) never holds a second copy of every vertex.
    prepared: OnceLock<PreparedParts>,
    /// [`PolygonIndex::locate`].
    cells: CellIndex,
}

/// The prepared parts of every item.
#[derive(Debug)]
struct PreparedParts {
    /// The parts of item `i` are `parts[part_start[i]..part_start[i + 1]]`.
    parts: Vec<PreparedPolygon>,
    part_start: Vec<usize>,
}

impl PreparedParts {
    fn new<T>(items: &[Located<T>]) -> Self {
        let mut parts = Vec::new();
        let mut part_start = Vec::with_capacity(items.len() + 1);
        for item in items {
            part_start.push(parts.len());
            parts.extend(item.polygon.0.iter().filter_map(PreparedPolygon::new));
        }
        part_start.push(parts.len());
        Self { parts, part_start }
    }

    /// Whether item `idx` covers `(x, y)`: the exact, boundary-inclusive test.
    fn covers(&self, idx: usize, x: f64, y: f64) -> bool {
        self.parts[self.part_start[idx]..self.part_start[idx + 1]]
            .iter()
            .any(|part| part.covers(x, y))
    }

    fn heap_bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|part| std::mem::size_of_val(part) + part.heap_bytes())
            .sum::<usize>()
            + std::mem::size_of_val(&*self.part_start)
    }
}

impl<T> PolygonIndex<T> {
    /// Builds the index in one bulk load. Polygons without a bounding box
    /// (empty geometries) can contain no point and are left out of the tree.
    #[must_use]
    pub fn new(mut items: Vec<Located<T>>) -> Self {
        // Sorting by code makes the boundary rule a question of position:
        // the candidate with the lowest index wins.
        items.sort_by(|a, b| a.code.cmp(&b.code));
        let entries = items
            .iter()
            .enumerate()
            .filter_map(|(idx, item)| {
                let rect = item.polygon.bounding_rect()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners(
                        [rect.min().x, rect.min().y],
                        [rect.max().x, rect.max().y],
                    ),
                    idx,
                ))
            })
            .collect();
        let mut index = Self {
            items,
            tree: RTree::bulk_load(entries),
            prepared: OnceLock::new(),
            cells: CellIndex::new(&[], |_, _, _| false),
        };
        let polygons: Vec<_> = index
            .items
            .iter()
            .map(|item| (&item.polygon, item.polygon.bounding_rect()))
            .collect();
        let cells = CellIndex::new(&polygons, |idx, x, y| index.covers(idx, x, y));
        index.cells = cells;
        index
    }

    /// Number of indexed polygons.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The polygon whose closed area covers `(x, y)`; on a shared boundary, the
    /// one with the smallest code (see the crate documentation).
    #[must_use]
    pub fn locate(&self, x: f64, y: f64) -> Option<&Located<T>> {
        self.cells
            .locate(
                x,
                y,
                |idx, x, y| self.covers(idx, x, y),
                |x, y| self.locate_index_by_boxes(x, y),
            )
            .map(|idx| &self.items[idx])
    }

    /// [`PolygonIndex::locate`] by way of the R-tree of bounding boxes
    /// rather than the cells: an independent path for tests.
    #[must_use]
    pub fn locate_by_boxes(&self, x: f64, y: f64) -> Option<&Located<T>> {
        self.locate_index_by_boxes(x, y).map(|idx| &self.items[idx])
    }

    fn locate_index_by_boxes(&self, x: f64, y: f64) -> Option<usize> {
        let mut best = None;
        self.visit_boxes_at(self.tree.root(), [x, y], &mut |idx| {
            // Items are in code order: only a smaller index can still win.
            if best.is_none_or(|best| idx < best) && self.covers(idx, x, y) {
                best = Some(idx);
            }
        });
        best
    }

    /// Every polygon whose closed area covers `(x, y)`, in code order.
    #[must_use]
    pub fn locate_all(&self, x: f64, y: f64) -> Vec<&Located<T>> {
        let mut hits = Vec::new();
        self.visit_boxes_at(self.tree.root(), [x, y], &mut |idx| {
            if self.covers(idx, x, y) {
                hits.push(idx);
            }
        });
        hits.sort_unstable();
        hits.into_iter().map(|idx| &self.items[idx]).collect()
    }

    /// Whether item `idx` covers `(x, y)`: the exact, boundary-inclusive
    /// test, preparing every item on first use.
    fn covers(&self, idx: usize, x: f64, y: f64) -> bool {
        self.prepared_parts().covers(idx, x, y)
    }

    fn prepared_parts(&self) -> &PreparedParts {
        self.prepared
            .get_or_init(|| PreparedParts::new(&self.items))
    }

    /// Prepares every item for the one-by-one tests now rather than on first
    /// use: an index that answers [`PolygonIndex::locate_all`] on every
    /// lookup calls it where it is built, off the request path, so the first
    /// request after a rebuild does not pay for it. Does nothing the second
    /// time.
    pub fn prepare(&self) {
        self.prepared_parts();
    }

    /// Calls `visit` with every item whose bounding box holds `point`. A plain
    /// recursive descent: rstar's query iterators keep a heap-allocated stack,
    /// which costs more than the whole search on a small tree.
    fn visit_boxes_at(
        &self,
        node: &ParentNode<Entry>,
        point: [f64; 2],
        visit: &mut impl FnMut(usize),
    ) {
        for child in node.children() {
            match child {
                RTreeNode::Leaf(entry) => {
                    if entry.geom().envelope().contains_point(&point) {
                        visit(entry.data);
                    }
                }
                RTreeNode::Parent(parent) => {
                    if parent.envelope().contains_point(&point) {
                        self.visit_boxes_at(parent, point, visit);
                    }
                }
            }
        }
    }

    /// The polygon whose boundary is nearest to `(x, y)`, with that distance
    /// in metres of the local projection around the point ([`LocalMetres`]).
    /// Meant for points outside every polygon; for a point inside one it
    /// still measures to the nearest edge. Ties go to the smallest code.
    #[must_use]
    pub fn nearest(&self, x: f64, y: f64) -> Option<(&Located<T>, f64)> {
        let local = LocalMetres::at(x, y);
        // Envelopes come in order of their distance in degrees; scaled by the
        // smaller metres-per-degree factor that distance bounds every polygon
        // in the envelope from below, so the search stops once it passes the
        // best exact distance.
        let lower_bound_per_deg = local.min_metres_per_deg();
        let mut best: Option<(usize, f64)> = None;
        for (entry, envelope_2) in self.tree.nearest_neighbor_iter_with_distance_2(&[x, y]) {
            if best.is_some_and(|(_, best_m)| envelope_2.sqrt() * lower_bound_per_deg > best_m) {
                break;
            }
            let metres = local.distance_to_boundary(&self.items[entry.data].polygon);
            let better = best.is_none_or(|(best_idx, best_m)| {
                metres < best_m || (metres == best_m && entry.data < best_idx)
            });
            if better {
                best = Some((entry.data, metres));
            }
        }
        best.map(|(idx, metres)| (&self.items[idx], metres))
    }

    /// Bytes held by the lookup structures (the cell index, and the
    /// prepared polygons once a path that tests polygons one by one has
    /// prepared them), for capacity planning.
    #[must_use]
    pub fn prepared_heap_bytes(&self) -> usize {
        self.prepared.get().map_or(0, PreparedParts::heap_bytes) + self.cells.heap_bytes()
    }

    /// All indexed items, in code order.
    pub fn iter(&self) -> impl Iterator<Item = &Located<T>> {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, Coord, MultiPolygon};

    fn square(code: &str, x0: f64, y0: f64, size: f64) -> Located<()> {
        Located {
            code: code.into(),
            polygon: MultiPolygon(vec![polygon![
                (x: x0, y: y0),
                (x: x0 + size, y: y0),
                (x: x0 + size, y: y0 + size),
                (x: x0, y: y0 + size),
                (x: x0, y: y0),
            ]]),
            payload: (),
        }
    }

    fn index() -> PolygonIndex<()> {
        // Four unit squares meeting at (1, 1), given out of code order.
        PolygonIndex::new(vec![
            square("d", 1.0, 1.0, 1.0),
            square("b", 1.0, 0.0, 1.0),
            square("a", 0.0, 0.0, 1.0),
            square("c", 0.0, 1.0, 1.0),
        ])
    }

    fn check(x: f64, y: f64, expected: Option<&str>) {
        let index = index();
        assert_eq!(
            index.locate(x, y).map(|hit| &*hit.code),
            expected,
            "({x}, {y})"
        );
    }

    #[test]
    fn interior_points_find_their_square() {
        check(0.5, 0.5, Some("a"));
        check(1.5, 0.5, Some("b"));
        check(0.5, 1.5, Some("c"));
        check(1.5, 1.5, Some("d"));
    }

    #[test]
    fn shared_edges_and_vertices_go_to_the_smallest_code() {
        check(1.0, 0.5, Some("a"));
        check(1.5, 1.0, Some("b"));
        check(1.0, 1.5, Some("c"));
        check(1.0, 1.0, Some("a"));
        assert_eq!(index().locate_all(1.0, 1.0).len(), 4);
    }

    #[test]
    fn outer_boundary_is_inside_and_beyond_is_outside() {
        check(0.0, 0.0, Some("a"));
        check(2.0, 2.0, Some("d"));
        check(2.000_001, 1.0, None);
        check(-0.5, 0.5, None);
    }

    #[test]
    fn nearest_measures_to_the_closest_boundary() {
        let index = index();
        let (hit, metres) = index.nearest(2.5, 0.5).unwrap();
        assert_eq!(&*hit.code, "b");
        let expected = -LocalMetres::at(2.5, 0.5)
            .project(Coord { x: 2.0, y: 0.5 })
            .x;
        assert!((metres - expected).abs() < 1.0, "{metres} vs {expected}");
        // Beyond the shared corner (2, 1) squares b and d tie; b sorts first.
        assert_eq!(&*index.nearest(2.5, 1.0).unwrap().0.code, "b");
        assert!(PolygonIndex::<()>::new(Vec::new())
            .nearest(0.0, 0.0)
            .is_none());
    }

    #[test]
    fn lookups_leave_the_polygons_unprepared() {
        let index = index();
        assert_eq!(index.locate(0.5, 0.5).map(|hit| &*hit.code), Some("a"));
        assert_eq!(index.locate(1.0, 1.0).map(|hit| &*hit.code), Some("a"));
        assert_eq!(index.locate(1.5, 0.25).map(|hit| &*hit.code), Some("b"));
        assert!(index.locate(2.5, 2.5).is_none());
        assert!(index.prepared.get().is_none());
        assert_eq!(index.prepared_heap_bytes(), index.cells.heap_bytes());
        assert_eq!(index.locate_all(1.0, 1.0).len(), 4);
        assert!(index.prepared.get().is_some());
        assert!(index.prepared_heap_bytes() > index.cells.heap_bytes());
    }

    #[test]
    fn prepare_does_ahead_what_the_first_locate_all_would() {
        let (ahead, lazy) = (index(), index());
        ahead.prepare();
        assert!(ahead.prepared.get().is_some());
        let bytes = ahead.prepared_heap_bytes();
        ahead.prepare();
        assert_eq!(ahead.prepared_heap_bytes(), bytes);
        let codes = |index: &PolygonIndex<()>, x, y| -> Vec<String> {
            index
                .locate_all(x, y)
                .iter()
                .map(|hit| hit.code.to_string())
                .collect()
        };
        for (x, y) in [(1.0, 1.0), (0.5, 0.5), (1.5, 0.25), (2.5, 2.5)] {
            assert_eq!(codes(&ahead, x, y), codes(&lazy, x, y));
        }
        assert_eq!(ahead.prepared_heap_bytes(), lazy.prepared_heap_bytes());
    }

    #[test]
    fn bounding_box_alone_is_not_enough() {
        // An L-shaped polygon whose bounding box covers (1.5, 1.5).
        let l_shape = Located {
            code: "l".into(),
            polygon: MultiPolygon(vec![polygon![
                (x: 0.0, y: 0.0),
                (x: 2.0, y: 0.0),
                (x: 2.0, y: 1.0),
                (x: 1.0, y: 1.0),
                (x: 1.0, y: 2.0),
                (x: 0.0, y: 2.0),
                (x: 0.0, y: 0.0),
            ]]),
            payload: (),
        };
        let index = PolygonIndex::new(vec![l_shape]);
        assert!(index.locate(1.5, 1.5).is_none());
        assert!(index.locate(0.5, 1.5).is_some());
    }

    /// A jittered lattice of grids with slanted, shared sides (one extra
    /// vertex per side, on a 1e-7 lattice), some grids in two parts, and an
    /// overlapping grid with a hole: every path of the cells' edge lists.
    #[test]
    fn cells_agree_with_brute_force_on_slanted_shared_edges_holes_and_parts() {
        use geo::{Intersects, LineString, Polygon};
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 14;
        let step = 0.01;
        let snap = |v: f64| (v / 1e-7).round() * 1e-7;
        let jitter = |rng: &mut rand_chacha::ChaCha8Rng| rng.gen_range(-0.3..0.3) * step;
        let corners: Vec<Vec<Coord<f64>>> = (0..=n)
            .map(|i| {
                (0..=n)
                    .map(|j| Coord {
                        x: snap(120.0 + i as f64 * step + jitter(&mut rng)),
                        y: snap(37.0 + j as f64 * step + jitter(&mut rng)),
                    })
                    .collect()
            })
            .collect();
        // The extra vertex of each side, shared by the two grids along it.
        let mut middle = |a: Coord<f64>, b: Coord<f64>| Coord {
            x: snap(f64::midpoint(a.x, b.x) + rng.gen_range(-0.1..0.1) * step),
            y: snap(f64::midpoint(a.y, b.y) + rng.gen_range(-0.1..0.1) * step),
        };
        let horizontal: Vec<Vec<Coord<f64>>> = (0..n)
            .map(|i| {
                (0..=n)
                    .map(|j| middle(corners[i][j], corners[i + 1][j]))
                    .collect()
            })
            .collect();
        let vertical: Vec<Vec<Coord<f64>>> = (0..=n)
            .map(|i| {
                (0..n)
                    .map(|j| middle(corners[i][j], corners[i][j + 1]))
                    .collect()
            })
            .collect();
        let grid = |i: usize, j: usize| {
            Polygon::new(
                LineString(vec![
                    corners[i][j],
                    horizontal[i][j],
                    corners[i + 1][j],
                    vertical[i + 1][j],
                    corners[i + 1][j + 1],
                    horizontal[i][j + 1],
                    corners[i][j + 1],
                    vertical[i][j],
                    corners[i][j],
                ]),
                Vec::new(),
            )
        };
        let mut items = Vec::new();
        for i in 0..n {
            for j in 0..n {
                let code = format!("{:05}", rng.gen_range(0..100_000));
                // Every seventh grid also owns a grid three columns over.
                let parts = if (i * n + j) % 7 == 0 && i + 3 < n {
                    vec![grid(i, j), grid(i + 3, j)]
                } else {
                    vec![grid(i, j)]
                };
                items.push(Located {
                    code: code.into(),
                    polygon: MultiPolygon(parts),
                    payload: (),
                });
            }
        }
        let ring = |x0: f64, y0: f64, size: f64| {
            LineString::from(vec![
                (x0, y0),
                (x0 + size, y0 + size * 0.1),
                (x0 + size, y0 + size),
                (x0, y0 + size * 0.9),
                (x0, y0),
            ])
        };
        items.push(Located {
            code: "00000-holed".into(),
            polygon: MultiPolygon(vec![Polygon::new(
                ring(120.031, 37.031, 0.05),
                vec![ring(120.041, 37.041, 0.02)],
            )]),
            payload: (),
        });
        let brute = items.clone();
        let index = PolygonIndex::new(items);
        let mut points: Vec<Coord<f64>> = (0..20_000)
            .map(|_| Coord {
                x: rng.gen_range(119.99..120.01 + n as f64 * step),
                y: rng.gen_range(36.99..37.01 + n as f64 * step),
            })
            .collect();
        for item in &brute {
            for part in &item.polygon.0 {
                for ring in std::iter::once(part.exterior()).chain(part.interiors()) {
                    for line in ring.lines() {
                        points.push(line.start);
                        points.push(Coord {
                            x: f64::midpoint(line.start.x, line.end.x),
                            y: f64::midpoint(line.start.y, line.end.y),
                        });
                        // Rays through vertices, and points just beside them.
                        points.push(Coord {
                            x: rng.gen_range(119.99..120.01 + n as f64 * step),
                            y: line.start.y,
                        });
                        points.push(Coord {
                            x: line.start.x - 1e-9,
                            y: line.start.y,
                        });
                        points.push(Coord {
                            x: line.start.x,
                            y: line.start.y + 1e-9,
                        });
                    }
                }
            }
        }
        for point in points {
            let expected = brute
                .iter()
                .filter(|item| item.polygon.intersects(&geo::Point(point)))
                .map(|item| &*item.code)
                .min();
            let got = index.locate(point.x, point.y).map(|hit| &*hit.code);
            assert_eq!(got, expected, "{point:?}");
        }
    }

    #[test]
    fn cells_agree_with_brute_force_on_a_lattice_with_overlaps() {
        use geo::Intersects;
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // A 12 x 12 lattice of squares with codes in random order, plus
        // overlapping squares of other sizes, and one far away.
        let mut items = Vec::new();
        for i in 0..12 {
            for j in 0..12 {
                let code = format!("{:04}", rng.gen_range(0..10_000));
                items.push(square(&code, f64::from(i) * 0.1, f64::from(j) * 0.1, 0.1));
            }
        }
        for k in 0..10 {
            let (x0, y0) = (rng.gen_range(0.0..1.0), rng.gen_range(0.0..1.0));
            items.push(square(&format!("o{k}"), x0, y0, rng.gen_range(0.01..0.4)));
        }
        items.push(square("far", 30.0, 30.0, 0.01));
        let brute: Vec<Located<()>> = items.clone();
        let index = PolygonIndex::new(items);
        let mut points: Vec<(f64, f64)> = (0..20_000)
            .map(|_| (rng.gen_range(-0.1..1.3), rng.gen_range(-0.1..1.3)))
            .collect();
        for i in 0..=24 {
            for j in 0..=24 {
                points.push((f64::from(i) * 0.05, f64::from(j) * 0.05));
            }
        }
        points.push((30.005, 30.01));
        for (x, y) in points {
            let expected = brute
                .iter()
                .filter(|item| item.polygon.intersects(&geo::Point::new(x, y)))
                .map(|item| &*item.code)
                .min();
            let got = index.locate(x, y).map(|hit| &*hit.code);
            assert_eq!(got, expected, "({x}, {y})");
            assert_eq!(index.locate_by_boxes(x, y).map(|hit| &*hit.code), expected);
        }
    }
}
