//! [`GeodesicDistance`]: a geodesic distance estimated in a few dozen
//! instructions, with an error bound, measured exactly (Karney's method, as
//! PostGIS measures `geography`) only when a decision needs it.
//!
//! Lookups compare distances and print them rounded to decimetres. Karney's
//! inverse costs about 3,000 instructions; the mid-latitude estimate below
//! costs a cosine, a square root and a few products, and lies within
//! [`GeodesicDistance::error_m`] of Karney's value (a spherical estimate
//! within 1 % serves farther apart). Whenever that interval
//! cannot settle a comparison or a rounding step, the exact distance is
//! computed, so every answer is the one the exact distances give.

use geo::{Coord, Distance, Geodesic, Point};

/// Semi-major axis of WGS84 (and GRS80, CGCS2000), in metres.
const SEMI_MAJOR_M: f64 = 6_378_137.0;
/// First eccentricity squared of WGS84 (GRS80 differs in the 12th digit).
const ECCENTRICITY_2: f64 = 0.006_694_379_990_141_317;

/// Beyond this distance the estimate is not used: the exact distance is.
pub const ESTIMATE_UP_TO_M: f64 = 100_000.0;
/// Nor at latitudes beyond this (degrees).
const ESTIMATE_LATITUDE_LIMIT: f64 = 70.0;

/// The estimate's error is at most `CUBIC_ERROR * d³ / (a² cos² φ)` plus
/// `ROUNDING_ERROR * d` plus `ABSOLUTE_ERROR`, where `d` is the estimate,
/// `a` the semi-major axis and `φ` the mean latitude: the plane misses the
/// curvature by a third-order term that grows with tan² φ. The worst ratio
/// found over two million random pairs within 100 km (`survey_the_error`) is
/// 0.042; the constant is three times that, and
/// `the_bound_holds_on_random_pairs` checks it on other pairs.
const CUBIC_ERROR: f64 = 0.125;
/// Floating-point rounding of the estimate and of Karney's series, relative.
const ROUNDING_ERROR: f64 = 1e-12;
/// Karney's method is accurate to 15 nanometres; a micrometre covers it.
const ABSOLUTE_ERROR: f64 = 1e-6;
/// Distances on the mean sphere and on the ellipsoid differ by less than
/// 0.7 % in either direction: the relative error allowed to the spherical
/// estimate, and the margin by which a chord search on the sphere keeps
/// candidates that may still be nearer on the ellipsoid.
pub(crate) const SPHERE_MARGIN: f64 = 0.01;
/// Mean radius of the Earth (WGS84), in metres: the sphere of the unit
/// vectors the point and node indexes order by.
pub(crate) const MEAN_RADIUS_M: f64 = 6_371_008.8;

/// The distance between two points (lon/lat degrees), as an estimate with
/// an error bound, or exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeodesicDistance {
    from: Coord<f64>,
    to: Coord<f64>,
    estimate_m: f64,
    /// Zero once exact.
    error_m: f64,
}

impl GeodesicDistance {
    /// Estimates the distance from `from` to `to`: in the plane of the
    /// mean latitude's curvature within [`ESTIMATE_UP_TO_M`] and 70° of
    /// latitude, on the sphere (to 1 %) elsewhere. Non-finite coordinates
    /// are measured exactly.
    #[must_use]
    pub fn between(from: Coord<f64>, to: Coord<f64>) -> Self {
        if ![from.x, from.y, to.x, to.y]
            .iter()
            .all(|value| value.is_finite())
        {
            return Self::exact_between(from, to);
        }
        let (estimate_m, error_m) = match estimate(from, to) {
            Some((metres, error_m)) if metres <= ESTIMATE_UP_TO_M => (metres, error_m),
            _ => {
                let metres = spherical_m(from, to);
                (metres, SPHERE_MARGIN * metres + ABSOLUTE_ERROR)
            }
        };
        Self {
            from,
            to,
            estimate_m,
            error_m,
        }
    }

    /// The exact distance (Karney's method on WGS84).
    #[must_use]
    pub fn exact_between(from: Coord<f64>, to: Coord<f64>) -> Self {
        Self {
            from,
            to,
            estimate_m: Geodesic.distance(Point(from), Point(to)),
            error_m: 0.0,
        }
    }

    /// The estimate in metres (exact when [`Self::error_m`] is zero).
    #[must_use]
    pub fn estimate_m(&self) -> f64 {
        self.estimate_m
    }

    /// The exact distance lies within this many metres of the estimate.
    #[must_use]
    pub fn error_m(&self) -> f64 {
        self.error_m
    }

    /// The least the exact distance can be.
    #[must_use]
    pub fn low_m(&self) -> f64 {
        self.estimate_m - self.error_m
    }

    /// The most the exact distance can be.
    #[must_use]
    pub fn high_m(&self) -> f64 {
        self.estimate_m + self.error_m
    }

    #[must_use]
    pub fn is_exact(&self) -> bool {
        self.error_m == 0.0
    }

    /// The same distance, measured exactly.
    #[must_use]
    pub fn to_exact(self) -> Self {
        if self.is_exact() {
            self
        } else {
            Self::exact_between(self.from, self.to)
        }
    }

    /// The exact distance in metres.
    #[must_use]
    pub fn exact_m(&self) -> f64 {
        self.to_exact().estimate_m
    }

    /// `f(exact distance)` for a non-decreasing `f`, such as a sum and a
    /// rounding step: `f` of both ends of the interval when they agree
    /// (then every value between gives the same), the exact one otherwise.
    #[must_use]
    pub fn settle<R: PartialEq>(&self, f: impl Fn(f64) -> R) -> R {
        if self.is_exact() {
            return f(self.estimate_m);
        }
        let low = f(self.low_m());
        if low == f(self.high_m()) {
            low
        } else {
            f(self.exact_m())
        }
    }
}

/// The point on the unit sphere at `(lon, lat)` degrees.
pub(crate) fn unit_vector(lon: f64, lat: f64) -> [f64; 3] {
    let (sin_lat, cos_lat) = lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = lon.to_radians().sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

/// The squared chord between unit vectors beyond which two points are
/// certainly more than `metres` apart on the ellipsoid.
pub(crate) fn chord_2_beyond(metres: f64) -> f64 {
    let half_angle =
        (metres / (1.0 - SPHERE_MARGIN) / (2.0 * MEAN_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    (2.0 * half_angle.sin()).powi(2)
}

/// The great-circle distance on the mean sphere (haversine).
fn spherical_m(from: Coord<f64>, to: Coord<f64>) -> f64 {
    let (lat1, lat2) = (from.y.to_radians(), to.y.to_radians());
    let half_dlat = 0.5 * (lat2 - lat1);
    let half_dlon = 0.5 * (to.x - from.x).to_radians();
    let h = half_dlat.sin().powi(2) + lat1.cos() * lat2.cos() * half_dlon.sin().powi(2);
    2.0 * MEAN_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// The mid-latitude estimate: the two points projected onto the plane
/// tangent to the ellipsoid's curvature at their mean latitude (radii of
/// curvature in the meridian and the prime vertical), in metres, with its
/// error bound. None where it is not used.
#[must_use]
fn estimate(from: Coord<f64>, to: Coord<f64>) -> Option<(f64, f64)> {
    let mean_latitude = 0.5 * (from.y + to.y);
    if mean_latitude.abs() > ESTIMATE_LATITUDE_LIMIT {
        return None;
    }
    let mut delta_lon = to.x - from.x;
    if delta_lon.abs() > 1.0 {
        // Not within 20 km anyway, and keeps the antimeridian out.
        return None;
    }
    let delta_lat = to.y - from.y;
    if delta_lat.abs() > 1.0 {
        return None;
    }
    delta_lon = delta_lon.to_radians();
    let (sin, cos) = mean_latitude.to_radians().sin_cos();
    let w_2 = 1.0 - ECCENTRICITY_2 * sin * sin;
    let prime_vertical = SEMI_MAJOR_M / w_2.sqrt();
    let meridian = prime_vertical * (1.0 - ECCENTRICITY_2) / w_2;
    let east = prime_vertical * cos * delta_lon;
    let north = meridian * delta_lat.to_radians();
    let metres = east.hypot(north);
    let cube = metres * metres * metres;
    let error_m = CUBIC_ERROR * cube / (SEMI_MAJOR_M * SEMI_MAJOR_M * cos * cos)
        + ROUNDING_ERROR * metres
        + ABSOLUTE_ERROR;
    Some((metres, error_m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Random pairs: a point anywhere within the estimate's latitudes, and
    /// another up to `10^max_exponent` degrees away in each direction.
    fn random_pairs(
        pairs: usize,
        seed: u64,
        max_exponent: f64,
    ) -> impl Iterator<Item = (Coord<f64>, Coord<f64>)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..pairs).map(move |_| {
            let lat = rng.gen_range(-ESTIMATE_LATITUDE_LIMIT..ESTIMATE_LATITUDE_LIMIT);
            let lon = rng.gen_range(-180.0..180.0);
            let reach = 10f64.powf(rng.gen_range(-7.0..max_exponent));
            let to = Coord {
                x: lon + rng.gen_range(-reach..reach),
                y: lat + rng.gen_range(-reach..reach),
            };
            (Coord { x: lon, y: lat }, to)
        })
    }

    #[test]
    #[ignore = "a survey: prints the worst error over the bound's cubic term"]
    fn survey_the_error() {
        let mut worst: f64 = 0.0;
        for (from, to) in random_pairs(2_000_000, 1, 0.0) {
            let Some((metres, _)) = estimate(from, to) else {
                continue;
            };
            if !(100.0..=ESTIMATE_UP_TO_M).contains(&metres) {
                continue;
            }
            let exact = Geodesic.distance(Point(from), Point(to));
            let cos = (0.5 * (from.y + to.y)).to_radians().cos();
            let cubic = metres.powi(3) / (SEMI_MAJOR_M * SEMI_MAJOR_M * cos * cos);
            worst = worst.max(((metres - exact).abs() - ABSOLUTE_ERROR).max(0.0) / cubic);
        }
        println!("worst |estimate - exact| / (d³ / (a² cos² φ)): {worst}");
    }

    #[test]
    fn the_bound_holds_on_random_pairs() {
        let mut estimated = 0;
        for (from, to) in random_pairs(200_000, 2, 0.0) {
            let distance = GeodesicDistance::between(from, to);
            let exact = Geodesic.distance(Point(from), Point(to));
            assert!(
                distance.low_m() <= exact && exact <= distance.high_m(),
                "{from:?} {to:?}: {distance:?} against {exact}"
            );
            if !distance.is_exact() {
                estimated += 1;
                // The bound is tight enough to be useful: a millimetre at 4 km
                // in China's latitudes.
                assert!(
                    distance.error_m() < 1e-3
                        || distance.estimate_m() > 4_000.0
                        || from.y.abs() > 55.0
                );
            }
        }
        assert!(estimated > 100_000, "{estimated}");
    }

    #[test]
    fn far_apart_or_near_a_pole_is_estimated_on_the_sphere() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut pairs = vec![
            (Coord { x: 120.0, y: 37.0 }, Coord { x: 120.3, y: 37.0 }),
            (Coord { x: 20.0, y: 80.0 }, Coord { x: 20.01, y: 80.0 }),
            (
                Coord { x: 179.999, y: 0.0 },
                Coord {
                    x: -179.999,
                    y: 0.0,
                },
            ),
            (Coord { x: 0.0, y: 0.0 }, Coord { x: 179.5, y: 0.3 }),
            (Coord { x: 10.0, y: 89.9 }, Coord { x: -170.0, y: 89.9 }),
        ];
        pairs.extend((0..20_000).map(|_| {
            let mut point = || Coord {
                x: rng.gen_range(-180.0..180.0),
                y: rng.gen_range(-90.0..90.0),
            };
            (point(), point())
        }));
        for (from, to) in pairs {
            let distance = GeodesicDistance::between(from, to);
            let exact = Geodesic.distance(Point(from), Point(to));
            assert!(
                distance.low_m() <= exact && exact <= distance.high_m(),
                "{from:?} {to:?}: {distance:?} against {exact}"
            );
            assert_eq!(distance.exact_m(), exact);
        }
        let nan = GeodesicDistance::between(
            Coord {
                x: f64::NAN,
                y: 0.0,
            },
            Coord { x: 0.0, y: 0.0 },
        );
        assert!(nan.is_exact());
    }

    fn round(metres: f64) -> f64 {
        (metres * 10.0).round() / 10.0
    }

    #[test]
    fn settle_rounds_as_the_exact_distance_does() {
        for (from, to) in random_pairs(100_000, 3, -1.5) {
            let distance = GeodesicDistance::between(from, to);
            let exact = Geodesic.distance(Point(from), Point(to));
            assert_eq!(distance.settle(round), round(exact));
            assert_eq!(
                distance.settle(|m| round(m + 123.456)),
                round(exact + 123.456)
            );
        }
    }

    #[test]
    fn a_distance_on_a_rounding_step_is_settled_exactly() {
        // Bisect for a point whose exact distance is 2,000.05 m to within a
        // nanometre: its estimate's interval straddles the step.
        let from = Coord { x: 120.4, y: 37.6 };
        let at = |t: f64| Coord {
            x: 120.4 + 0.02 * t,
            y: 37.6 + 0.01 * t,
        };
        let (mut low, mut high) = (0.0, 1.0);
        for _ in 0..80 {
            let middle = 0.5 * (low + high);
            if Geodesic.distance(Point(from), Point(at(middle))) < 2_000.05 {
                low = middle;
            } else {
                high = middle;
            }
        }
        for t in [low, high] {
            let distance = GeodesicDistance::between(from, at(t));
            assert!(!distance.is_exact());
            assert_ne!(round(distance.low_m()), round(distance.high_m()));
            let exact = Geodesic.distance(Point(from), Point(at(t)));
            assert_eq!(distance.settle(round), round(exact));
        }
        let below = GeodesicDistance::between(from, at(low)).settle(round);
        let above = GeodesicDistance::between(from, at(high)).settle(round);
        assert_eq!((below, above), (2_000.0, 2_000.1));
    }
}
