//! Walking service circles over the road network:
//!
//! - `GET /api/v1/circles?kind=K&minutes=M[&speed_m_s=S][&street=CODE|community=CODE]`:
//!   a GeoJSON FeatureCollection with one circle per station of kind `K`;
//! - `GET /api/v1/coverage?kind=K&minutes=M[&speed_m_s=S]&street=CODE|community=CODE[&new_sites=N]`:
//!   the households within any circle, per community, and up to `N` greedy
//!   new sites.
//!
//! Circles walk on roads within the walking distance of the area, so they
//! cross into the next street; coverage counts the area's own stations only.
//! Both are public, so they answer with totals only: never one building's
//! households or code.

use crate::area_params::{multi_polygon_json, parse_area, require_area};
use crate::{ApiError, AppState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use gridmap_circles::{
    best_new_sites, coverage, service_circles, snap_homes, Coord, Home, Parameters, WalkGraph,
};
use gridmap_store::circle_queries::{
    area_exists, load_building_households, load_circle_stations, load_roads, CircleStation,
};
use gridmap_store::topology_queries::AreaFilter;
use serde::Deserialize;
use serde_json::{json, Value};

/// The station kinds of the schema's `stations.kind` check.
const KINDS: [&str; 4] = [
    "red_station",
    "service_centre",
    "grid_station",
    "rider_rest_stop",
];

/// More new sites than this is a planning study, not a request.
const MAX_NEW_SITES: usize = 10;

/// Raw query parameters; parsed by hand so every mistake gets a clear message.
#[derive(Debug, Deserialize)]
pub struct CircleParams {
    kind: Option<String>,
    minutes: Option<String>,
    speed_m_s: Option<String>,
    street: Option<String>,
    community: Option<String>,
    new_sites: Option<String>,
}

pub async fn circles(
    State(state): State<AppState>,
    params: Result<Query<CircleParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let kind = parse_kind(params.kind.as_deref())?;
    let parameters = parse_parameters(params.minutes.as_deref(), params.speed_m_s.as_deref())?;
    let area = parse_area(params.street.as_deref(), params.community.as_deref())?;
    if params.new_sites.is_some() {
        return Err(ApiError::BadRequest(
            "new_sites belongs to /api/v1/coverage".to_owned(),
        ));
    }
    if let Some(area) = &area {
        ensure_exists(&state, area).await?;
    }
    let margin_m = parameters.limit_m() + parameters.frontage_m;
    let roads = load_roads(&state.pool, area.as_ref(), margin_m)
        .await
        .map_err(ApiError::internal)?;
    let stations = load_circle_stations(&state.pool, kind, area.as_ref())
        .await
        .map_err(ApiError::internal)?;
    // Building the graph and buffering hundreds of circles takes from tens of
    // milliseconds to seconds: it runs on the blocking pool.
    let features = tokio::task::spawn_blocking(move || {
        let graph = WalkGraph::new(&roads);
        let points = station_points(&stations);
        let circles = service_circles(&graph, &points, &parameters);
        stations
            .iter()
            .zip(circles)
            .map(|(station, circle)| {
                json!({
                    "type": "Feature",
                    "geometry": multi_polygon_json(&circle.polygon),
                    "properties": {
                        "code": station.code,
                        "name": station.name,
                        "kind": station.kind,
                        "minutes": parameters.minutes,
                        "speed_m_s": parameters.speed_m_s,
                        "distance_m": circle.distance_m,
                        "snap_m": circle.snap_m,
                        "method": circle.method.as_str(),
                    },
                })
            })
            .collect::<Vec<Value>>()
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(
        json!({ "type": "FeatureCollection", "features": features }),
    ))
}

pub async fn coverage_report(
    State(state): State<AppState>,
    params: Result<Query<CircleParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let kind = parse_kind(params.kind.as_deref())?;
    let parameters = parse_parameters(params.minutes.as_deref(), params.speed_m_s.as_deref())?;
    let area = require_area(params.street.as_deref(), params.community.as_deref())?;
    let new_sites = parse_new_sites(params.new_sites.as_deref())?;
    ensure_exists(&state, &area).await?;
    let roads = load_roads(&state.pool, Some(&area), parameters.limit_m())
        .await
        .map_err(ApiError::internal)?;
    let stations = load_circle_stations(&state.pool, kind, Some(&area))
        .await
        .map_err(ApiError::internal)?;
    let buildings = load_building_households(&state.pool, &area)
        .await
        .map_err(ApiError::internal)?;
    let report = tokio::task::spawn_blocking(move || {
        let graph = WalkGraph::new(&roads);
        let points = station_points(&stations);
        let homes: Vec<Home> = buildings
            .into_iter()
            .map(|building| Home {
                code: building.code,
                community_code: building.community_code,
                households: building.households,
                location: Coord {
                    x: building.lon,
                    y: building.lat,
                },
            })
            .collect();
        let snaps = snap_homes(&graph, &homes);
        let covered = coverage(&graph, &points, &homes, &snaps, &parameters);
        let households: Vec<i64> = homes.iter().map(|home| home.households).collect();
        let sites = if new_sites == 0 {
            Vec::new()
        } else {
            best_new_sites(
                &graph,
                &households,
                &snaps,
                &covered.covered,
                &parameters,
                new_sites,
            )
        };
        json!({
            "kind": kind,
            "minutes": parameters.minutes,
            "speed_m_s": parameters.speed_m_s,
            "distance_m": parameters.limit_m(),
            "stations": points.len(),
            "covered_households": covered.covered_households,
            "total_households": covered.total_households,
            "uncovered_buildings": covered.uncovered_buildings,
            "per_community": covered.per_community,
            "best_new_sites": sites,
        })
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(report))
}

async fn ensure_exists(state: &AppState, area: &AreaFilter) -> Result<(), ApiError> {
    if area_exists(&state.pool, area)
        .await
        .map_err(ApiError::internal)?
    {
        return Ok(());
    }
    let level = match area {
        AreaFilter::Street(_) => "street",
        AreaFilter::Community(_) => "community",
    };
    Err(ApiError::NotFound(format!(
        "no {level} with code {}",
        area.code()
    )))
}

fn parse_kind(kind: Option<&str>) -> Result<&'static str, ApiError> {
    let kind = kind.map(str::trim).unwrap_or_default();
    KINDS
        .into_iter()
        .find(|known| *known == kind)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "kind must be one of {}, got {kind:?}",
                KINDS.join(", ")
            ))
        })
}

fn parse_parameters(
    minutes: Option<&str>,
    speed_m_s: Option<&str>,
) -> Result<Parameters, ApiError> {
    let minutes = minutes.ok_or_else(|| {
        ApiError::BadRequest("the query parameter minutes is required".to_owned())
    })?;
    let mut parameters = Parameters {
        minutes: parse_number("minutes", minutes)?,
        ..Parameters::default()
    };
    if let Some(speed) = speed_m_s {
        parameters.speed_m_s = parse_number("speed_m_s", speed)?;
    }
    parameters
        .validated()
        .map_err(|err| ApiError::BadRequest(err.to_string()))
}

fn parse_number(name: &str, value: &str) -> Result<f64, ApiError> {
    value
        .trim()
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{name} must be a number, got {value:?}")))
}

fn parse_new_sites(value: Option<&str>) -> Result<usize, ApiError> {
    let Some(value) = value else {
        return Ok(0);
    };
    match value.trim().parse::<usize>() {
        Ok(count) if count <= MAX_NEW_SITES => Ok(count),
        _ => Err(ApiError::BadRequest(format!(
            "new_sites must be an integer from 0 to {MAX_NEW_SITES}, got {value:?}"
        ))),
    }
}

/// Where the circles start: each station's location.
fn station_points(stations: &[CircleStation]) -> Vec<Coord> {
    stations
        .iter()
        .map(|station| Coord {
            x: station.lon,
            y: station.lat,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_parameters_with_clear_messages() {
        let message = |result: Result<Parameters, ApiError>| result.unwrap_err().to_string();
        assert_eq!(
            message(parse_parameters(None, None)),
            "the query parameter minutes is required"
        );
        assert_eq!(
            message(parse_parameters(Some("ten"), None)),
            "minutes must be a number, got \"ten\""
        );
        assert!(parse_parameters(Some("10"), Some("0")).is_err());
        let parameters = parse_parameters(Some("10"), Some("0.8")).unwrap();
        assert!((parameters.limit_m() - 480.0).abs() < 1e-9);
        assert!(parse_kind(Some("bus_stop")).is_err());
        assert_eq!(parse_kind(Some("red_station")).unwrap(), "red_station");
        assert!(parse_new_sites(Some("11")).is_err());
        assert_eq!(parse_new_sites(Some("3")).unwrap(), 3);
        assert!(parse_area(Some("1"), None).is_err());
        assert_eq!(parse_area(None, None).unwrap(), None);
    }
}
