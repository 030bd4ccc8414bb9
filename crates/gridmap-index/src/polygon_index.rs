//! [`PolygonIndex`]: an R-tree of polygons keyed by code.

use crate::LocalMetres;
use geo::{BoundingRect, Coord, Intersects, MultiPolygon, Point};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// One indexed polygon with its code and a caller-defined payload.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub code: String,
    pub polygon: MultiPolygon<f64>,
    pub payload: T,
}

/// A read-only index over polygons; build a new one to change the contents.
#[derive(Debug)]
pub struct PolygonIndex<T> {
    items: Vec<Located<T>>,
    tree: RTree<Entry>,
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
        Self {
            items,
            tree: RTree::bulk_load(entries),
        }
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
        let point = Point(Coord { x, y });
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_point([x, y]))
            .map(|entry| entry.data)
            .filter(|&idx| self.items[idx].polygon.intersects(&point))
            .min()
            .map(|idx| &self.items[idx])
    }

    /// Every polygon whose closed area covers `(x, y)`, in code order.
    #[must_use]
    pub fn locate_all(&self, x: f64, y: f64) -> Vec<&Located<T>> {
        let point = Point(Coord { x, y });
        let mut hits: Vec<usize> = self
            .tree
            .locate_in_envelope_intersecting(&AABB::from_point([x, y]))
            .map(|entry| entry.data)
            .filter(|&idx| self.items[idx].polygon.intersects(&point))
            .collect();
        hits.sort_unstable();
        hits.into_iter().map(|idx| &self.items[idx]).collect()
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

    /// All indexed items, in code order.
    pub fn iter(&self) -> impl Iterator<Item = &Located<T>> {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, MultiPolygon};

    fn square(code: &str, x0: f64, y0: f64, size: f64) -> Located<()> {
        Located {
            code: code.to_owned(),
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
            index.locate(x, y).map(|hit| hit.code.as_str()),
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
        assert_eq!(hit.code, "b");
        let expected = -LocalMetres::at(2.5, 0.5)
            .project(Coord { x: 2.0, y: 0.5 })
            .x;
        assert!((metres - expected).abs() < 1.0, "{metres} vs {expected}");
        // Beyond the shared corner (2, 1) squares b and d tie; b sorts first.
        assert_eq!(index.nearest(2.5, 1.0).unwrap().0.code, "b");
        assert!(PolygonIndex::<()>::new(Vec::new())
            .nearest(0.0, 0.0)
            .is_none());
    }

    #[test]
    fn bounding_box_alone_is_not_enough() {
        // An L-shaped polygon whose bounding box covers (1.5, 1.5).
        let l_shape = Located {
            code: "l".to_owned(),
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
}
