//! [`LocalMetres`]: an equirectangular projection around one point, scaled by
//! the ellipsoid's radii of curvature there, for distances of a few kilometres.

use geo::{Coord, MultiPolygon};

/// Semi-major axis of GRS80 (CGCS2000) and WGS84, in metres.
const SEMI_MAJOR_M: f64 = 6_378_137.0;
/// First eccentricity squared of GRS80; WGS84 differs in the 12th digit.
const ECCENTRICITY_2: f64 = 0.006_694_380_022_900_787;

/// Planar metres east and north of an origin.
///
/// Within a few kilometres of the origin it agrees with geodesic distances to
/// a few parts in ten thousand, which is all a "nearest grid" answer needs.
#[derive(Debug, Clone, Copy)]
pub struct LocalMetres {
    origin: Coord<f64>,
    metres_per_deg_lon: f64,
    metres_per_deg_lat: f64,
}

impl LocalMetres {
    /// The projection centred on `(lon, lat)` in degrees.
    #[must_use]
    pub fn at(lon: f64, lat: f64) -> Self {
        let (sin, cos) = lat.to_radians().sin_cos();
        let w = (1.0 - ECCENTRICITY_2 * sin * sin).sqrt();
        // Radii of curvature in the prime vertical (N) and the meridian (M).
        let prime_vertical = SEMI_MAJOR_M / w;
        let meridian = SEMI_MAJOR_M * (1.0 - ECCENTRICITY_2) / (w * w * w);
        Self {
            origin: Coord { x: lon, y: lat },
            metres_per_deg_lon: prime_vertical * cos * std::f64::consts::PI / 180.0,
            metres_per_deg_lat: meridian * std::f64::consts::PI / 180.0,
        }
    }

    /// The smaller of the two scale factors: a distance of `d` degrees in any
    /// direction is at least `d * min_metres_per_deg()` metres.
    #[must_use]
    pub fn min_metres_per_deg(&self) -> f64 {
        self.metres_per_deg_lon.min(self.metres_per_deg_lat)
    }

    /// `coord` in metres east and north of the origin.
    #[must_use]
    pub fn project(&self, coord: Coord<f64>) -> Coord<f64> {
        Coord {
            x: (coord.x - self.origin.x) * self.metres_per_deg_lon,
            y: (coord.y - self.origin.y) * self.metres_per_deg_lat,
        }
    }

    /// Distance in metres from the origin to the nearest edge of `polygon`
    /// (exterior or hole), whether the origin lies inside or outside it.
    #[must_use]
    pub fn distance_to_boundary(&self, polygon: &MultiPolygon<f64>) -> f64 {
        let rings = polygon
            .0
            .iter()
            .flat_map(|part| std::iter::once(part.exterior()).chain(part.interiors()));
        let mut best_2 = f64::INFINITY;
        for ring in rings {
            for line in ring.lines() {
                let distance_2 =
                    origin_to_segment_2(self.project(line.start), self.project(line.end));
                best_2 = best_2.min(distance_2);
            }
        }
        best_2.sqrt()
    }
}

/// Squared distance from `(0, 0)` to the segment `a`–`b` (one square root
/// per polygon instead of one per edge).
fn origin_to_segment_2(a: Coord<f64>, b: Coord<f64>) -> f64 {
    let along = b - a;
    let length_2 = along.x * along.x + along.y * along.y;
    let t = if length_2 > 0.0 {
        (-(a.x * along.x + a.y * along.y) / length_2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let closest = a + along * t;
    closest.x * closest.x + closest.y * closest.y
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, Distance, Geodesic, Point};

    #[test]
    fn agrees_with_geodesic_distances_over_a_few_kilometres() {
        let local = LocalMetres::at(120.48, 37.64);
        for (dx, dy) in [(0.02, 0.0), (0.0, 0.02), (0.015, -0.01), (-0.03, 0.005)] {
            let target = Coord {
                x: 120.48 + dx,
                y: 37.64 + dy,
            };
            let projected = local.project(target);
            let planar = projected.x.hypot(projected.y);
            let geodesic = Geodesic.distance(Point::new(120.48, 37.64), Point(target));
            assert!(
                (planar - geodesic).abs() < 1e-3 * geodesic,
                "{planar} vs {geodesic}"
            );
        }
    }

    #[test]
    fn measures_to_the_nearest_edge() {
        let square = MultiPolygon(vec![polygon![
            (x: 0.0, y: 0.0),
            (x: 1.0, y: 0.0),
            (x: 1.0, y: 1.0),
            (x: 0.0, y: 1.0),
            (x: 0.0, y: 0.0),
        ]]);
        let local = LocalMetres::at(-0.5, 0.5);
        let expected = 0.5 * local.metres_per_deg_lon;
        assert!((local.distance_to_boundary(&square) - expected).abs() < 1e-6);
        // Beyond a corner the nearest point is the vertex itself.
        let corner = LocalMetres::at(2.0, 2.0);
        let diagonal = corner.project(Coord { x: 1.0, y: 1.0 });
        assert!((corner.distance_to_boundary(&square) - diagonal.x.hypot(diagonal.y)).abs() < 1e-6);
    }
}
