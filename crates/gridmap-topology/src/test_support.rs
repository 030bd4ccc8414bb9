//! Small constructors for the unit tests.

use crate::{Building, Grid};
use geo::{polygon, MultiPolygon};

pub(crate) fn rectangle(west: f64, south: f64, east: f64, north: f64) -> MultiPolygon<f64> {
    MultiPolygon(vec![polygon![
        (x: west, y: south), (x: east, y: south),
        (x: east, y: north), (x: west, y: north), (x: west, y: south),
    ]])
}

pub(crate) fn grid(code: &str, polygon: MultiPolygon<f64>) -> Grid {
    Grid {
        code: code.to_owned(),
        community_code: code[..12].to_owned(),
        polygon,
        has_worker: true,
        households: 100,
    }
}

pub(crate) fn building(code: &str, polygon: MultiPolygon<f64>) -> Building {
    Building {
        code: code.to_owned(),
        grid_code: "370681001001001".to_owned(),
        polygon,
    }
}
