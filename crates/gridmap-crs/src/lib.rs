//! Coordinate systems that PROJ does not know but Chinese data carries.
//!
//! - **GCJ-02** (国测局坐标, "Mars coordinates"): WGS84/CGCS2000 shifted by a
//!   published non-linear offset of 300–700 m; used by AMap and Tencent maps.
//! - **BD-09** (Baidu): GCJ-02 rotated and shifted once more.
//!
//! The forward formulas are public; their inverses have no closed form, so
//! [`gcj02_to_wgs84`] and [`bd09_to_gcj02`] solve the forward transform by
//! fixed-point iteration until the round trip is within [`TOLERANCE_DEG`].
//! Outside China's bounding box GCJ-02 is defined as the identity, as in every
//! published implementation.
//!
//! CGCS2000 (EPSG:4490) and WGS84 (EPSG:4326) agree within a metre, below the
//! accuracy of the offsets themselves, so both are "earth" coordinates here.

mod offsets;

pub use offsets::{bd09_to_gcj02, gcj02_to_bd09, gcj02_to_wgs84, in_china_bbox, wgs84_to_gcj02};

use std::fmt;

/// Convergence target of the iterative inverses, in degrees (about 0.1 mm).
pub const TOLERANCE_DEG: f64 = 1e-9;

/// A geographic CRS a lon/lat pair may be given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LonLatCrs {
    /// CGCS2000, EPSG:4490: gridmap's storage CRS.
    Cgcs2000,
    /// WGS84, EPSG:4326: within a metre of CGCS2000, taken as equal.
    Wgs84,
    Gcj02,
    Bd09,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown CRS {0:?}; expected 4490, 4326, gcj02 or bd09")]
pub struct UnknownCrs(pub String);

impl LonLatCrs {
    /// Parses `4490`, `EPSG:4490`, `4326`, `EPSG:4326`, `gcj02`, `bd09`
    /// (case-insensitive, `-`/`_` ignored).
    ///
    /// # Errors
    /// [`UnknownCrs`] naming the value.
    pub fn parse(value: &str) -> Result<Self, UnknownCrs> {
        let normal: String = value
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .collect::<String>()
            .to_ascii_lowercase();
        match normal.strip_prefix("epsg:").unwrap_or(&normal) {
            "4490" | "cgcs2000" => Ok(Self::Cgcs2000),
            "4326" | "wgs84" => Ok(Self::Wgs84),
            "gcj02" => Ok(Self::Gcj02),
            "bd09" | "bd09ll" => Ok(Self::Bd09),
            _ => Err(UnknownCrs(value.to_owned())),
        }
    }

    /// The point in CGCS2000 (equivalently WGS84) degrees.
    #[must_use]
    pub fn to_cgcs2000(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            Self::Cgcs2000 | Self::Wgs84 => (lon, lat),
            Self::Gcj02 => gcj02_to_wgs84(lon, lat),
            Self::Bd09 => {
                let (lon, lat) = bd09_to_gcj02(lon, lat);
                gcj02_to_wgs84(lon, lat)
            }
        }
    }

    /// The CGCS2000 point expressed in this CRS.
    #[must_use]
    pub fn from_cgcs2000(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            Self::Cgcs2000 | Self::Wgs84 => (lon, lat),
            Self::Gcj02 => wgs84_to_gcj02(lon, lat),
            Self::Bd09 => {
                let (lon, lat) = wgs84_to_gcj02(lon, lat);
                gcj02_to_bd09(lon, lat)
            }
        }
    }

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cgcs2000 => "EPSG:4490",
            Self::Wgs84 => "EPSG:4326",
            Self::Gcj02 => "GCJ-02",
            Self::Bd09 => "BD-09",
        }
    }
}

impl fmt::Display for LonLatCrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_names_planners_write() {
        for (text, crs) in [
            ("4490", LonLatCrs::Cgcs2000),
            ("EPSG:4490", LonLatCrs::Cgcs2000),
            ("epsg:4326", LonLatCrs::Wgs84),
            ("GCJ-02", LonLatCrs::Gcj02),
            ("gcj02", LonLatCrs::Gcj02),
            ("BD09", LonLatCrs::Bd09),
            ("bd-09", LonLatCrs::Bd09),
        ] {
            assert_eq!(LonLatCrs::parse(text), Ok(crs), "{text}");
        }
        assert!(LonLatCrs::parse("3857").is_err());
    }

    #[test]
    fn every_crs_round_trips_through_cgcs2000() {
        for crs in [
            LonLatCrs::Cgcs2000,
            LonLatCrs::Wgs84,
            LonLatCrs::Gcj02,
            LonLatCrs::Bd09,
        ] {
            let (lon, lat) = crs.from_cgcs2000(120.48, 37.64);
            let (back_lon, back_lat) = crs.to_cgcs2000(lon, lat);
            assert!((back_lon - 120.48).abs() < TOLERANCE_DEG, "{crs}");
            assert!((back_lat - 37.64).abs() < TOLERANCE_DEG, "{crs}");
        }
    }
}
