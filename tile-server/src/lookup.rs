//! `GET /api/v1/lookup?lon=…&lat=…`: which grid owns a coordinate.

use crate::grid_index::Unit;
use crate::{ApiError, AppState};
use axum::extract::{Query, State};
use axum::Json;
use gridmap_crs::LonLatCrs;
use serde::{Deserialize, Serialize};

/// Raw query parameters; parsed by hand so every mistake gets a clear message.
#[derive(Debug, Deserialize)]
pub struct LookupParams {
    lon: Option<String>,
    lat: Option<String>,
    /// CRS of lon/lat: 4490 (default), 4326, gcj02 or bd09.
    crs: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LookupResponse {
    pub query: QueryPoint,
    pub grid: Option<GridSummary>,
    pub community: Option<Unit>,
    pub street: Option<Unit>,
    pub district: Option<Unit>,
}

#[derive(Debug, Serialize)]
pub struct QueryPoint {
    /// The point as given.
    pub lon: f64,
    pub lat: f64,
    pub crs: &'static str,
    /// The point in CGCS2000, the CRS the grids are stored in.
    pub cgcs2000: [f64; 2],
}

#[derive(Debug, Serialize)]
pub struct GridSummary {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub status: String,
}

pub async fn lookup(
    State(state): State<AppState>,
    params: Result<Query<LookupParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LookupResponse>, ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let (lon, lat) = parse_point(params.lon.as_deref(), params.lat.as_deref())?;
    let crs = match params.crs.as_deref() {
        None => LonLatCrs::Cgcs2000,
        Some(name) => {
            LonLatCrs::parse(name).map_err(|err| ApiError::BadRequest(err.to_string()))?
        }
    };
    let (x, y) = crs.to_cgcs2000(lon, lat);
    let index = state.grid_index.load();
    let hit = index.locate(x, y).map(|located| &located.payload);
    Ok(Json(LookupResponse {
        query: QueryPoint {
            lon,
            lat,
            crs: crs.as_str(),
            cgcs2000: [x, y],
        },
        grid: hit.map(|chain| GridSummary {
            code: chain.grid.code.clone(),
            name: chain.grid.name.clone(),
            kind: chain.kind.clone(),
            status: chain.status.clone(),
        }),
        community: hit.map(|chain| chain.community.clone()),
        street: hit.map(|chain| chain.street.clone()),
        district: hit.map(|chain| chain.district.clone()),
    }))
}

/// Validates a longitude/latitude pair, spotting the common swap.
fn parse_point(lon: Option<&str>, lat: Option<&str>) -> Result<(f64, f64), ApiError> {
    let lon = parse_number("lon", lon)?;
    let lat = parse_number("lat", lat)?;
    if !(-90.0..=90.0).contains(&lat) {
        let hint = if (-90.0..=90.0).contains(&lon) && (-180.0..=180.0).contains(&lat) {
            "; lon and lat look swapped"
        } else {
            ""
        };
        return Err(ApiError::BadRequest(format!(
            "lat must be within [-90, 90], got {lat}{hint}"
        )));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(ApiError::BadRequest(format!(
            "lon must be within [-180, 180], got {lon}"
        )));
    }
    Ok((lon, lat))
}

fn parse_number(name: &str, value: Option<&str>) -> Result<f64, ApiError> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("missing query parameter {name}")))?;
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            ApiError::BadRequest(format!("{name} must be a finite number, got {value:?}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lon: Option<&str>, lat: Option<&str>, expected: Result<(f64, f64), &str>) {
        let got = parse_point(lon, lat).map_err(|err| err.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{lon:?} {lat:?}");
    }

    #[test]
    fn parses_and_rejects_points() {
        check(Some("120.5"), Some("37.6"), Ok((120.5, 37.6)));
        check(None, Some("37.6"), Err("missing query parameter lon"));
        check(Some(" "), Some("37.6"), Err("missing query parameter lon"));
        check(
            Some("abc"),
            Some("37.6"),
            Err("lon must be a finite number, got \"abc\""),
        );
        check(
            Some("NaN"),
            Some("37.6"),
            Err("lon must be a finite number, got \"NaN\""),
        );
        check(
            Some("37.6"),
            Some("120.5"),
            Err("lat must be within [-90, 90], got 120.5; lon and lat look swapped"),
        );
        check(
            Some("190"),
            Some("37"),
            Err("lon must be within [-180, 180], got 190"),
        );
    }
}
