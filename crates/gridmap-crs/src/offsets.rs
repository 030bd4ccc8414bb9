//! The GCJ-02 and BD-09 offsets and their iterative inverses.

use crate::TOLERANCE_DEG;
use std::f64::consts::PI;

/// Semi-major axis and eccentricity squared of Krasovsky 1940, which the
/// GCJ-02 formula is defined on.
const KRASOVSKY_A: f64 = 6_378_245.0;
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;
/// Baidu's rotation factor.
const BD_FACTOR: f64 = PI * 3000.0 / 180.0;
/// A fixed-point iteration converges in a handful of steps; this bound only
/// guards against a pathological input.
const MAX_ITERATIONS: usize = 64;

/// Whether the point lies in the bounding box where GCJ-02 differs from WGS84.
#[must_use]
pub fn in_china_bbox(lon: f64, lat: f64) -> bool {
    (72.004..=137.8347).contains(&lon) && (0.8293..=55.8271).contains(&lat)
}

/// WGS84 (or CGCS2000) to GCJ-02.
#[must_use]
pub fn wgs84_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    if !in_china_bbox(lon, lat) {
        return (lon, lat);
    }
    let (x, y) = (lon - 105.0, lat - 35.0);
    let rad_lat = lat.to_radians();
    let sin_lat = rad_lat.sin();
    let magic = 1.0 - KRASOVSKY_EE * sin_lat * sin_lat;
    let sqrt_magic = magic.sqrt();
    let d_lon = offset_lon(x, y) * 180.0 / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    let d_lat = offset_lat(x, y) * 180.0
        / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    (lon + d_lon, lat + d_lat)
}

/// GCJ-02 to WGS84, exact to [`TOLERANCE_DEG`]: the WGS84 point whose forward
/// transform is the given point.
#[must_use]
pub fn gcj02_to_wgs84(lon: f64, lat: f64) -> (f64, f64) {
    if !in_china_bbox(lon, lat) {
        return (lon, lat);
    }
    invert(lon, lat, wgs84_to_gcj02)
}

/// GCJ-02 to BD-09.
#[must_use]
pub fn gcj02_to_bd09(lon: f64, lat: f64) -> (f64, f64) {
    let z = lon.hypot(lat) + 0.000_02 * (lat * BD_FACTOR).sin();
    let theta = lat.atan2(lon) + 0.000_003 * (lon * BD_FACTOR).cos();
    (z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// BD-09 to GCJ-02, exact to [`TOLERANCE_DEG`]. The usual one-step formula is
/// off by up to a few centimetres; it only seeds the iteration here.
#[must_use]
pub fn bd09_to_gcj02(lon: f64, lat: f64) -> (f64, f64) {
    invert(lon, lat, gcj02_to_bd09)
}

/// Solves `forward(p) = target` by fixed-point iteration from `target`:
/// p ← p − (forward(p) − target). The offsets are small and smooth, so the
/// map is a contraction and each step gains several digits.
fn invert(lon: f64, lat: f64, forward: fn(f64, f64) -> (f64, f64)) -> (f64, f64) {
    let (mut x, mut y) = (lon, lat);
    for _ in 0..MAX_ITERATIONS {
        let (fx, fy) = forward(x, y);
        let (dx, dy) = (fx - lon, fy - lat);
        if dx.abs() < TOLERANCE_DEG / 10.0 && dy.abs() < TOLERANCE_DEG / 10.0 {
            break;
        }
        x -= dx;
        y -= dy;
    }
    (x, y)
}

fn offset_lat(x: f64, y: f64) -> f64 {
    -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * x.abs().sqrt()
        + (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0
        + (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0
        + (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0
}

fn offset_lon(x: f64, y: f64) -> f64 {
    300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * x.abs().sqrt()
        + (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0
        + (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0
        + (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverses_converge_to_the_tolerance() {
        for lon in [74.0, 90.5, 105.0, 120.48, 135.9] {
            for lat in [1.0, 18.3, 30.0, 37.64, 55.5] {
                let (g_lon, g_lat) = wgs84_to_gcj02(lon, lat);
                let (w_lon, w_lat) = gcj02_to_wgs84(g_lon, g_lat);
                assert!((w_lon - lon).abs() < TOLERANCE_DEG, "{lon} {lat}");
                assert!((w_lat - lat).abs() < TOLERANCE_DEG, "{lon} {lat}");
                let (b_lon, b_lat) = gcj02_to_bd09(g_lon, g_lat);
                let (g2_lon, g2_lat) = bd09_to_gcj02(b_lon, b_lat);
                assert!((g2_lon - g_lon).abs() < TOLERANCE_DEG, "{lon} {lat}");
                assert!((g2_lat - g_lat).abs() < TOLERANCE_DEG, "{lon} {lat}");
            }
        }
    }

    #[test]
    fn offset_is_hundreds_of_metres_in_china_and_none_outside() {
        let (lon, lat) = wgs84_to_gcj02(120.48, 37.64);
        let metres = ((lon - 120.48) * 88_000.0).hypot((lat - 37.64) * 111_000.0);
        assert!((300.0..=700.0).contains(&metres), "{metres} m");
        assert_eq!(wgs84_to_gcj02(2.35, 48.85), (2.35, 48.85));
    }
}
