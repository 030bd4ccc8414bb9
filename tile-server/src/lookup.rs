//! `GET /api/v1/lookup?lon=…&lat=…`: what owns and serves a coordinate: the
//! grid with its administrative chain, the grid unit, the building whose
//! footprint covers the point with its standard address, and the nearest
//! station of each kind. Every distance is a straight line on the ellipsoid,
//! never a walking distance.

use crate::grid_index::{AddressInfo, LookupIndex, Unit};
use crate::{ApiError, AppState};
use axum::extract::{Query, State};
use axum::Json;
use gridmap_crs::LonLatCrs;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Raw query parameters; parsed by hand so every mistake gets a clear message.
#[derive(Debug, Deserialize)]
pub struct LookupParams {
    lon: Option<String>,
    lat: Option<String>,
    /// CRS of lon/lat: 4490 (default), 4326, gcj02 or bd09.
    crs: Option<String>,
}

/// The answer: no grid worker, phone or household appears in it, except
/// `grid.worker` for callers who may see personal data.
#[derive(Debug, Serialize)]
pub struct LookupResponse {
    pub query: QueryPoint,
    pub grid: Option<GridSummary>,
    pub community: Option<Unit>,
    pub street: Option<Unit>,
    pub district: Option<Unit>,
    pub grid_unit: Option<Unit>,
    pub building: Option<BuildingSummary>,
    /// The standard address of `building` (the one with the smallest code).
    pub address: Option<AddressInfo>,
    /// The nearest station of each kind by straight-line geodesic distance.
    pub nearest_stations: Vec<StationDistance>,
    /// Only when `grid` is null: the grid whose edge is nearest.
    pub nearest_grid: Option<NearestGrid>,
    /// The departmental grids (多网合一 overlays) covering the point, by
    /// department and code.
    pub departments: Vec<DepartmentSummary>,
}

/// A departmental grid covering the point.
#[derive(Debug, Serialize)]
pub struct DepartmentSummary {
    pub department: Arc<str>,
    pub code: Arc<str>,
    pub name: Arc<str>,
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
    pub code: Arc<str>,
    pub name: Arc<str>,
    pub kind: Arc<str>,
    pub status: Arc<str>,
    /// The grid's worker: personal data, set only for callers who may see it
    /// (absent otherwise, not null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<crate::auth::GridWorker>,
}

#[derive(Debug, Serialize)]
pub struct BuildingSummary {
    pub code: Arc<str>,
    pub name: Arc<str>,
    pub floors: Option<i32>,
}

#[derive(Debug, Serialize)]
pub struct StationDistance {
    pub code: Arc<str>,
    pub name: Arc<str>,
    pub kind: &'static str,
    /// Straight-line (geodesic) metres, rounded to decimetres.
    pub distance_m: f64,
    /// The nearest station of the kind by walking over the road network
    /// (often the same one), or null off the network (more than 500 m from
    /// any road) or where no station of the kind is reachable.
    pub walking: Option<WalkingDistance>,
}

/// The nearest station of a kind by walking, with the walking distance.
#[derive(Debug, Serialize)]
pub struct WalkingDistance {
    pub code: Arc<str>,
    pub name: Arc<str>,
    /// Metres walked, rounded to decimetres (see `grid_index::WalkingIndex`).
    pub distance_m: f64,
}

#[derive(Debug, Serialize)]
pub struct NearestGrid {
    pub code: Arc<str>,
    pub name: Arc<str>,
    /// Metres from the point to the grid's boundary, rounded to decimetres.
    pub distance_m: f64,
}

pub async fn lookup(
    State(state): State<AppState>,
    crate::auth::MaybeCaller(caller): crate::auth::MaybeCaller,
    params: Result<Query<LookupParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LookupResponse>, ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let (lon, lat) = parse_point(params.lon.as_deref(), params.lat.as_deref())?;
    let crs = parse_crs(params.crs.as_deref())?;
    let mut response = answer(&state.grid_index.load(), lon, lat, crs);
    crate::auth::add_grid_worker(
        &state.pool,
        state.auth.workers(),
        caller.as_ref(),
        &mut response,
    )
    .await?;
    Ok(Json(response))
}

/// The lookup answer for a validated point given in `crs`. Every text in it
/// is shared with the snapshot (`Arc<str>`), so building it allocates only
/// the station list.
#[must_use]
pub fn answer(index: &LookupIndex, lon: f64, lat: f64, crs: LonLatCrs) -> LookupResponse {
    let (x, y) = crs.to_cgcs2000(lon, lat);
    let resolved = index.resolve(x, y);
    let chain = resolved.grid;
    LookupResponse {
        query: QueryPoint {
            lon,
            lat,
            crs: crs.as_str(),
            cgcs2000: [x, y],
        },
        grid: chain.map(|chain| GridSummary {
            code: Arc::clone(&chain.grid.code),
            name: Arc::clone(&chain.grid.name),
            kind: Arc::clone(&chain.kind),
            status: Arc::clone(&chain.status),
            worker: None,
        }),
        community: chain.map(|chain| chain.community.clone()),
        street: chain.map(|chain| chain.street.clone()),
        district: chain.map(|chain| chain.district.clone()),
        grid_unit: resolved.grid_unit.map(|unit| Unit {
            code: Arc::clone(&unit.code),
            name: Arc::clone(&unit.payload),
        }),
        building: resolved.building.map(|building| BuildingSummary {
            code: Arc::clone(&building.code),
            name: Arc::clone(&building.payload.name),
            floors: building.payload.floors,
        }),
        address: resolved
            .building
            .and_then(|building| building.payload.address.clone()),
        nearest_stations: resolved
            .nearest_stations
            .into_iter()
            .map(|(station, metres)| StationDistance {
                code: Arc::clone(&station.code),
                name: Arc::clone(&station.name),
                kind: station.kind.as_str(),
                distance_m: round_decimetres(metres),
                walking: index.stations.nearest_by_walking(station.kind, x, y).map(
                    |(walked, metres)| WalkingDistance {
                        code: Arc::clone(&walked.code),
                        name: Arc::clone(&walked.name),
                        distance_m: round_decimetres(metres),
                    },
                ),
            })
            .collect(),
        nearest_grid: resolved.nearest_grid.map(|(chain, metres)| NearestGrid {
            code: Arc::clone(&chain.grid.code),
            name: Arc::clone(&chain.grid.name),
            distance_m: round_decimetres(metres),
        }),
        departments: departments(&resolved.departments),
    }
}

/// The departmental grids of a point, by department and code (as bytes).
fn departments(
    covering: &[&gridmap_index::Located<crate::grid_index::DepartmentGrid>],
) -> Vec<DepartmentSummary> {
    let mut departments: Vec<DepartmentSummary> = covering
        .iter()
        .map(|grid| DepartmentSummary {
            department: Arc::clone(&grid.payload.department),
            code: Arc::clone(&grid.code),
            name: Arc::clone(&grid.payload.name),
        })
        .collect();
    departments.sort_by(|a, b| (&a.department, &a.code).cmp(&(&b.department, &b.code)));
    departments
}

/// Parses the optional `crs` parameter shared by single and batch lookups.
pub(crate) fn parse_crs(name: Option<&str>) -> Result<LonLatCrs, ApiError> {
    match name {
        None => Ok(LonLatCrs::Cgcs2000),
        Some(name) => LonLatCrs::parse(name).map_err(|err| ApiError::BadRequest(err.to_string())),
    }
}

fn round_decimetres(metres: f64) -> f64 {
    (metres * 10.0).round() / 10.0
}

/// Validates a longitude/latitude pair, spotting the common swap.
fn parse_point(lon: Option<&str>, lat: Option<&str>) -> Result<(f64, f64), ApiError> {
    let lon = parse_number("lon", lon).map_err(ApiError::BadRequest)?;
    let lat = parse_number("lat", lat).map_err(ApiError::BadRequest)?;
    check_point(lon, lat).map_err(ApiError::BadRequest)
}

/// Checks the ranges of a parsed pair; the message names what is wrong and
/// spots swapped coordinates. Shared with the batch lookup's per-row errors.
pub(crate) fn check_point(lon: f64, lat: f64) -> Result<(f64, f64), String> {
    if !(-90.0..=90.0).contains(&lat) {
        let hint = if (-90.0..=90.0).contains(&lon) && (-180.0..=180.0).contains(&lat) {
            "; lon and lat look swapped"
        } else {
            ""
        };
        return Err(format!("lat must be within [-90, 90], got {lat}{hint}"));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!("lon must be within [-180, 180], got {lon}"));
    }
    Ok((lon, lat))
}

/// Parses one coordinate given as text; shared with the batch lookup.
pub(crate) fn parse_number(name: &str, value: Option<&str>) -> Result<f64, String> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("missing query parameter {name}"))?;
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{name} must be a finite number, got {value:?}"))
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
