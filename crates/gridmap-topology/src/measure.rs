//! Geodesic areas and zoom points shared by the checks.

use geo::orient::{Direction, Orient};
use geo::{GeodesicArea, InteriorPoint, MultiPolygon, Point, Polygon};

/// Geodesic area in m² (see the crate documentation for why geodesic).
#[must_use]
pub fn area_m2(polygons: &MultiPolygon<f64>) -> f64 {
    polygons.0.iter().map(polygon_area_m2).sum()
}

/// Geodesic area of one polygon in m².
///
/// The unsigned geodesic area reads a ring of the "wrong" winding as the rest
/// of the Earth, and overlay slivers can have a winding of either sign, so the
/// rings are oriented (exterior counter-clockwise) and the signed area, which
/// stays small for a small ring of either winding, is taken absolute.
#[must_use]
pub fn polygon_area_m2(polygon: &Polygon<f64>) -> f64 {
    polygon
        .orient(Direction::Default)
        .geodesic_area_signed()
        .abs()
}

/// A point inside the area, or, for a degenerate area with no interior, its
/// first vertex, so every finding still has somewhere to zoom to. The checks
/// never pass an empty area; for one, the answer is the origin rather than a
/// panic.
#[must_use]
pub fn zoom_point(polygons: &MultiPolygon<f64>) -> Point<f64> {
    polygons
        .interior_point()
        .or_else(|| {
            polygons
                .0
                .first()
                .and_then(|polygon| polygon.exterior().0.first())
                .map(|coord| Point(*coord))
        })
        .unwrap_or_else(|| Point::new(0.0, 0.0))
}

/// The pieces of `polygons` of at least `min_area_m2` (and above zero), each
/// with its geodesic area.
#[must_use]
pub fn pieces_at_least(polygons: MultiPolygon<f64>, min_area_m2: f64) -> Vec<(Polygon<f64>, f64)> {
    polygons
        .0
        .into_iter()
        .map(|polygon| {
            let area = polygon_area_m2(&polygon);
            (polygon, area)
        })
        .filter(|(_, area)| *area >= min_area_m2 && *area > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    #[test]
    fn a_hundredth_of_a_degree_square_near_longkou_is_about_one_square_kilometre() {
        let square = MultiPolygon(vec![polygon![
            (x: 120.40, y: 37.60), (x: 120.41, y: 37.60),
            (x: 120.41, y: 37.61), (x: 120.40, y: 37.61), (x: 120.40, y: 37.60),
        ]]);
        // 0.01° of latitude is 1,110 m, 0.01° of longitude at 37.6° about 883 m.
        let area = area_m2(&square);
        assert!((area - 981_000.0).abs() < 3_000.0, "{area}");
        let point = zoom_point(&square);
        assert!(point.x() > 120.40 && point.x() < 120.41, "{point:?}");
        // The same square drawn clockwise has the same area, not the rest of the Earth's.
        let mut clockwise = square.0[0].exterior().0.clone();
        clockwise.reverse();
        let clockwise = Polygon::new(clockwise.into(), vec![]);
        assert!((polygon_area_m2(&clockwise) - area).abs() < 1e-6);
    }
}
