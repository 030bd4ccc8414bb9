//! Tile coordinates in the XYZ (slippy map) scheme.

/// The deepest zoom served; beyond it clients overzoom.
pub const MAX_ZOOM: u8 = 22;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileCoordError {
    #[error("zoom {0} is beyond the deepest zoom {MAX_ZOOM}")]
    ZoomTooDeep(u32),
    #[error("tile {x}/{y} does not exist at zoom {z}: x and y must be below {limit}")]
    OutOfRange { z: u8, x: u32, y: u32, limit: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileCoord {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

impl TileCoord {
    /// Validates `z/x/y`.
    ///
    /// # Errors
    /// When the zoom is too deep or x/y lie outside the zoom's tile matrix.
    pub fn new(z: u32, x: u32, y: u32) -> Result<Self, TileCoordError> {
        let z = u8::try_from(z)
            .ok()
            .filter(|z| *z <= MAX_ZOOM)
            .ok_or(TileCoordError::ZoomTooDeep(z))?;
        let limit = 1_u64 << z;
        if u64::from(x) >= limit || u64::from(y) >= limit {
            return Err(TileCoordError::OutOfRange { z, x, y, limit });
        }
        Ok(Self { z, x, y })
    }

    /// The tile's extent as `[west, south, east, north]` in degrees, grown on
    /// every side by `margin` tile widths (the clip buffer is 64/4096).
    #[must_use]
    pub fn bounds_lonlat(self, margin: f64) -> [f64; 4] {
        let n = f64::from(1_u32 << self.z);
        let lon = |x: f64| x / n * 360.0 - 180.0;
        let lat = |y: f64| {
            (std::f64::consts::PI * (1.0 - 2.0 * y / n))
                .sinh()
                .atan()
                .to_degrees()
        };
        let (x, y) = (f64::from(self.x), f64::from(self.y));
        [
            lon(x - margin),
            lat(y + 1.0 + margin),
            lon(x + 1.0 + margin),
            lat(y - margin),
        ]
    }

    /// The tile at zoom `z` holding the WGS84/CGCS2000 point `(lon, lat)`.
    #[must_use]
    pub fn containing(lon: f64, lat: f64, z: u8) -> Self {
        let n = f64::from(1_u32 << z);
        let lat_rad = lat.to_radians();
        let x = ((lon + 180.0) / 360.0 * n).floor();
        let y = ((1.0 - lat_rad.tan().asinh() / std::f64::consts::PI) / 2.0 * n).floor();
        let clamp = |v: f64| {
            // The cast is exact: v is clamped to [0, n - 1] and n ≤ 2^22.
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "clamped to the tile matrix"
            )]
            let v = v.clamp(0.0, n - 1.0) as u32;
            v
        };
        Self {
            z,
            x: clamp(x),
            y: clamp(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_tiles_outside_the_matrix() {
        assert!(TileCoord::new(0, 0, 0).is_ok());
        assert!(TileCoord::new(0, 1, 0).is_err());
        assert!(TileCoord::new(14, 16383, 16383).is_ok());
        assert!(TileCoord::new(14, 16384, 0).is_err());
        assert_eq!(
            TileCoord::new(23, 0, 0),
            Err(TileCoordError::ZoomTooDeep(23))
        );
    }

    #[test]
    fn bounds_hold_the_point_the_tile_was_found_for() {
        let tile = TileCoord::containing(120.48, 37.64, 14);
        let [west, south, east, north] = tile.bounds_lonlat(0.0);
        assert!(west <= 120.48 && 120.48 < east, "{west} {east}");
        assert!(south <= 37.64 && 37.64 < north, "{south} {north}");
        let [west_buffered, ..] = tile.bounds_lonlat(0.5);
        assert!((west - west_buffered - (east - west) / 2.0).abs() < 1e-9);
        assert_eq!(
            TileCoord::new(0, 0, 0).unwrap().bounds_lonlat(0.0)[0],
            -180.0
        );
    }

    #[test]
    fn containing_tile_of_longkou_centre() {
        // 120.48E 37.64N at z14; PostGIS agrees: ST_TileEnvelope(14, 13675, 6340) covers it.
        let tile = TileCoord::containing(120.48, 37.64, 14);
        assert_eq!((tile.x, tile.y), (13675, 6340));
    }
}
