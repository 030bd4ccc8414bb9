//! Areas on the ellipsoid and zoom points shared by the checks.

use geo::{InteriorPoint, LineString, MultiPolygon, Point, Polygon};

/// WGS84's semi-major axis in metres (CGCS2000's is the same).
const SEMI_MAJOR_M: f64 = 6_378_137.0;
/// WGS84's flattening (CGCS2000's differs in the 12th digit).
const FLATTENING: f64 = 1.0 / 298.257_223_563;

/// Area on the ellipsoid in m² (see the crate documentation).
#[must_use]
pub fn area_m2(polygons: &MultiPolygon<f64>) -> f64 {
    polygons.0.iter().map(polygon_area_m2).sum()
}

/// Area on the ellipsoid of one polygon in m²: its exterior less its holes,
/// whatever the winding of either.
///
/// The polygon is mapped by the cylindrical equal-area projection of the
/// ellipsoid (x = a·λ, y = a·q(φ)/2 with q of the authalic latitude), which
/// keeps every area, and measured there with the shoelace formula on
/// coordinates taken relative to the ring's first vertex. Edges are straight
/// in longitude and latitude, as the geometries are stored and overlaid;
/// against geodesic edges that differs by about 1e-4 of the area for edges of
/// 10 km, and by nothing measurable for the edges of grids and slivers.
///
/// Geodesic polygon areas (Karney's, as geo's `GeodesicArea` and PostGIS's
/// `ST_Area(geography)` compute them) sum per-edge areas measured from the
/// equator, so their error is absolute, about half a square metre per edge
/// whatever the polygon's size: a sliver 570 m long and a fraction of a
/// millimetre wide, left by an overlay where a vertex lies on its neighbour's
/// edge up to rounding, measured 1.35 m² that way, above the 1 m² tolerance,
/// and was reported as a gap. Relative coordinates keep the error here to
/// about 1e-9 m per metre of edge.
#[must_use]
pub fn polygon_area_m2(polygon: &Polygon<f64>) -> f64 {
    let holes: f64 = polygon
        .interiors()
        .iter()
        .map(|ring| ring_area_m2(ring).abs())
        .sum();
    (ring_area_m2(polygon.exterior()).abs() - holes).max(0.0)
}

/// Signed area of a ring in m² (counter-clockwise positive) on the
/// cylindrical equal-area projection, relative to its first vertex.
fn ring_area_m2(ring: &LineString<f64>) -> f64 {
    let Some(first) = ring.0.first() else {
        return 0.0;
    };
    let origin_y = authalic_y_m(first.y);
    let projected = |coord: &geo::Coord<f64>| {
        (
            SEMI_MAJOR_M * (coord.x - first.x).to_radians(),
            authalic_y_m(coord.y) - origin_y,
        )
    };
    // Each vertex is projected once (a logarithm each) and paired with the
    // one before it; the ring is closed, so the last pair closes it.
    let mut points = ring.0.iter().map(projected);
    let Some(mut previous) = points.next() else {
        return 0.0;
    };
    let twice: f64 = points
        .map(|(x1, y1)| {
            let (x0, y0) = std::mem::replace(&mut previous, (x1, y1));
            x0 * y1 - x1 * y0
        })
        .sum();
    twice / 2.0
}

/// The y of the cylindrical equal-area projection of the ellipsoid at
/// latitude `lat_deg`: a·q/2, where q = (1 − e²)·(sin φ / (1 − e² sin² φ)
/// − ln((1 − e sin φ) / (1 + e sin φ)) / (2e)).
fn authalic_y_m(lat_deg: f64) -> f64 {
    let e2 = FLATTENING * (2.0 - FLATTENING);
    let e = e2.sqrt();
    let sin = lat_deg.to_radians().sin();
    let q = (1.0 - e2)
        * (sin / (1.0 - e2 * sin * sin) - ((1.0 - e * sin) / (1.0 + e * sin)).ln() / (2.0 * e));
    SEMI_MAJOR_M * q / 2.0
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
/// with its area.
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

    #[test]
    fn areas_agree_with_geodesic_areas_from_a_grid_to_a_district() {
        use geo::GeodesicArea as _;
        for lat in [18.0, 30.0, 37.6, 45.0, 53.0] {
            for side_deg in [0.001, 0.01, 0.1] {
                // A quadrilateral with a hole, wound either way.
                let (x, y, s) = (120.0, lat, side_deg);
                let shape = polygon!(
                    exterior: [(x: x, y: y), (x: x + s, y: y + 0.1 * s),
                               (x: x + 1.2 * s, y: y + s), (x: x - 0.1 * s, y: y + 0.9 * s)],
                    interiors: [[(x: x + 0.3 * s, y: y + 0.3 * s), (x: x + 0.3 * s, y: y + 0.6 * s),
                                 (x: x + 0.6 * s, y: y + 0.6 * s)]],
                );
                let geodesic = shape.geodesic_area_unsigned();
                let ours = polygon_area_m2(&shape);
                // Straight edges in degrees against geodesic edges: 1e-4 of
                // the area at 10 km, far less below.
                assert!(
                    (ours - geodesic).abs() <= 1e-4 * geodesic + 2.0,
                    "lat {lat}, side {side_deg}°: {ours} m² against {geodesic} m²"
                );
                let mut reversed = shape.clone();
                reversed.exterior_mut(|ring| ring.0.reverse());
                assert!((polygon_area_m2(&reversed) - ours).abs() < 1e-6 * ours);
            }
        }
    }

    /// A piece of a Zibo-sized demo city: grid 002's edge ends and grid
    /// 008's begins at a vertex that lies on the community's straight edge
    /// up to rounding, so overlaying the community and its grids leaves this
    /// triangle, 570 m long and a fraction of a millimetre wide (its exact
    /// planar area is 1.57e-14 square degrees, about 1.5e-4 m²). Geodesic
    /// areas, geo's and PostGIS's alike, measure it at 1.35 m², above the
    /// 1 m² tolerance of a gap.
    #[test]
    fn a_sliver_along_a_shared_edge_measures_next_to_nothing() {
        use geo::GeodesicArea as _;
        let sliver = polygon![
            (x: 120.454_242_399_986_24, y: 37.747_348_799_990_874),
            (x: 120.447_795_999_998_33, y: 37.747_433_999_999_345),
            (x: 120.450_481_999_990_87, y: 37.747_398_499_990_965),
            (x: 120.454_242_399_986_24, y: 37.747_348_799_990_874),
        ];
        let area = polygon_area_m2(&sliver);
        assert!((area - 1.5e-4).abs() < 1e-4, "{area} m²");
        assert!(sliver.geodesic_area_unsigned() > 1.0);
        assert!(pieces_at_least(MultiPolygon(vec![sliver]), 1.0).is_empty());
    }
}
