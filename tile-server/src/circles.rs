//! Walking service circles over the road network:
//!
//! - `GET /api/v1/circles?kind=K&minutes=M[&speed_m_s=S][&street=CODE|community=CODE]`:
//!   a GeoJSON FeatureCollection with one circle per station of kind `K`;
//! - `GET /api/v1/coverage?kind=K&minutes=M[&speed_m_s=S]&street=CODE|community=CODE[&new_sites=N]`:
//!   the households within any circle, per community, and up to `N` greedy
//!   new sites. For `kind=rider_rest_stop` also the rider activity reports
//!   within reach (`reports`, optionally only those since `since=YYYY-MM-DD`,
//!   midnight China Standard Time), and the new sites are chosen by reports
//!   gained instead of households: a rest stop serves riders where they are.
//!
//! Circles walk on roads within the walking distance of the area, so they
//! cross into the next street; coverage counts the area's own stations only.
//! Circles at a kind's own minutes and the default speed are the ones the
//! `service_circles` tiles draw: they are taken from the tiles' computed
//! snapshot (whole road network) rather than recomputed, as long as the
//! snapshot holds every station as it is now; the header `X-Circles-Source`
//! says which (`snapshot` or `computed`).
//! Both are public, so they answer with totals only: never one building's
//! households or code, never one report's location or time.

use crate::area_params::{multi_polygon_json, parse_area, require_area};
use crate::{ApiError, AppState, SharedState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderName;
use axum::Json;
use gridmap_circles::{
    best_new_sites, coverage, demand_coverage, service_circles, snap_homes, snap_points, Coord,
    Demand, Home, NewSite, Parameters, ServiceCircle, WalkGraph,
};
use gridmap_store::circle_queries::{
    area_exists, load_building_households, load_circle_stations, load_report_points, load_roads,
    CircleStation,
};
use gridmap_store::topology_queries::AreaFilter;
use gridmap_tiles::circle_layer::circle_parameters;
use gridmap_tiles::CircleSnapshot;
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

/// The station kind whose coverage is weighted by rider activity reports.
const RIDER_REST_STOP: &str = "rider_rest_stop";

/// Raw query parameters; parsed by hand so every mistake gets a clear message.
#[derive(Debug, Deserialize)]
pub struct CircleParams {
    kind: Option<String>,
    minutes: Option<String>,
    speed_m_s: Option<String>,
    street: Option<String>,
    community: Option<String>,
    new_sites: Option<String>,
    since: Option<String>,
}

/// The response header naming where the circles came from: `snapshot` (the
/// tiles' computed circles) or `computed` (walked for this request).
const CIRCLES_SOURCE: HeaderName = HeaderName::from_static("x-circles-source");

pub async fn circles(
    State(state): State<SharedState>,
    params: Result<Query<CircleParams>, QueryRejection>,
) -> Result<([(HeaderName, &'static str); 1], Json<Value>), ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let kind = parse_kind(params.kind.as_deref())?;
    let parameters = parse_parameters(params.minutes.as_deref(), params.speed_m_s.as_deref())?;
    let area = parse_area(params.street.as_deref(), params.community.as_deref())?;
    if params.new_sites.is_some() || params.since.is_some() {
        return Err(ApiError::BadRequest(
            "new_sites and since belong to /api/v1/coverage".to_owned(),
        ));
    }
    if let Some(area) = &area {
        ensure_exists(&state, area).await?;
    }
    let stations = load_circle_stations(&state.pool, kind, area.as_ref())
        .await
        .map_err(ApiError::internal)?;
    if circle_parameters(kind) == Some(parameters) {
        if let Some(snapshot) = state.tile_cache.circles(&state.pool).await {
            if let Some(features) = features_from_snapshot(&snapshot, &stations, &parameters) {
                return Ok(([(CIRCLES_SOURCE, "snapshot")], feature_collection(features)));
            }
        }
    }
    let margin_m = parameters.limit_m() + parameters.frontage_m;
    let roads = load_roads(&state.pool, area.as_ref(), margin_m)
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
            .zip(&circles)
            .map(|(station, circle)| circle_feature(station, circle, &parameters))
            .collect::<Vec<Value>>()
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(([(CIRCLES_SOURCE, "computed")], feature_collection(features)))
}

/// The circles of `stations` as the snapshot holds them; `None` when it
/// lacks a station or holds an older row of one (a change it has not taken
/// in yet), so the caller recomputes.
fn features_from_snapshot(
    snapshot: &CircleSnapshot,
    stations: &[CircleStation],
    parameters: &Parameters,
) -> Option<Vec<Value>> {
    stations
        .iter()
        .map(|station| {
            let (computed_for, circle) = snapshot.circle(&station.code)?;
            (computed_for == station).then(|| circle_feature(station, circle, parameters))
        })
        .collect()
}

fn circle_feature(
    station: &CircleStation,
    circle: &ServiceCircle,
    parameters: &Parameters,
) -> Value {
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
}

fn feature_collection(features: Vec<Value>) -> Json<Value> {
    Json(json!({ "type": "FeatureCollection", "features": features }))
}

pub async fn coverage_report(
    State(state): State<SharedState>,
    params: Result<Query<CircleParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let kind = parse_kind(params.kind.as_deref())?;
    let parameters = parse_parameters(params.minutes.as_deref(), params.speed_m_s.as_deref())?;
    let area = require_area(params.street.as_deref(), params.community.as_deref())?;
    let new_sites = parse_new_sites(params.new_sites.as_deref())?;
    let since = parse_since(params.since.as_deref())?;
    let weigh_reports = kind == RIDER_REST_STOP;
    if since.is_some() && !weigh_reports {
        return Err(ApiError::BadRequest(format!(
            "since counts rider reports and applies to kind={RIDER_REST_STOP} only"
        )));
    }
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
    let reports = if weigh_reports {
        let since = since.as_ref().map(|date| date.start_in_china());
        Some(
            load_report_points(&state.pool, &area, since.as_deref())
                .await
                .map_err(ApiError::internal)?,
        )
    } else {
        None
    };
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
        let mut answer = json!({
            "kind": kind,
            "minutes": parameters.minutes,
            "speed_m_s": parameters.speed_m_s,
            "distance_m": parameters.limit_m(),
            "stations": points.len(),
            "covered_households": covered.covered_households,
            "total_households": covered.total_households,
            "uncovered_buildings": covered.uncovered_buildings,
            "per_community": covered.per_community,
        });
        let sites = if let Some(reports) = reports {
            // Each report weighs 1 and is snapped to the graph like a home.
            let demand: Vec<Demand> = reports
                .into_iter()
                .map(|report| Demand {
                    community_code: report.community_code,
                    weight: 1,
                    location: Coord {
                        x: report.lon,
                        y: report.lat,
                    },
                })
                .collect();
            let report_snaps = snap_points(&graph, demand.iter().map(|report| report.location));
            let reached = demand_coverage(&graph, &points, &demand, &report_snaps, &parameters);
            let weights: Vec<i64> = demand.iter().map(|report| report.weight).collect();
            let sites = chosen_sites(new_sites, |count| {
                best_new_sites(
                    &graph,
                    &weights,
                    &report_snaps,
                    &reached.covered,
                    &parameters,
                    count,
                )
            });
            answer["reports"] = json!({
                "since": since.map(|date| date.to_string()),
                "total": reached.total,
                "covered": reached.covered_weight,
                "per_community": reached.per_community,
            });
            sites_json(&sites, "gained_reports")
        } else {
            let households: Vec<i64> = homes.iter().map(|home| home.households).collect();
            let sites = chosen_sites(new_sites, |count| {
                best_new_sites(
                    &graph,
                    &households,
                    &snaps,
                    &covered.covered,
                    &parameters,
                    count,
                )
            });
            sites_json(&sites, "gained_households")
        };
        answer["best_new_sites"] = sites;
        answer
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(report))
}

/// The greedy sites, or none without running the search when none are asked.
fn chosen_sites(count: usize, choose: impl FnOnce(usize) -> Vec<NewSite>) -> Vec<NewSite> {
    if count == 0 {
        Vec::new()
    } else {
        choose(count)
    }
}

/// New sites with their gain named after what was weighed.
fn sites_json(sites: &[NewSite], gained: &str) -> Value {
    sites
        .iter()
        .map(|site| {
            let mut entry = serde_json::Map::new();
            entry.insert("lon".to_owned(), json!(site.lon));
            entry.insert("lat".to_owned(), json!(site.lat));
            entry.insert(gained.to_owned(), json!(site.gained));
            Value::Object(entry)
        })
        .collect()
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

/// A calendar date of `since=YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SinceDate {
    year: u16,
    month: u8,
    day: u8,
}

impl SinceDate {
    /// Midnight at the start of the date in China Standard Time, where the
    /// reports are made, as a timestamp PostgreSQL reads.
    fn start_in_china(&self) -> String {
        format!("{self}T00:00:00+08:00")
    }
}

impl std::fmt::Display for SinceDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn parse_since(value: Option<&str>) -> Result<Option<SinceDate>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::BadRequest(format!(
            "since must be a date written YYYY-MM-DD, got {value:?}"
        ))
    };
    let text = value.trim();
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(invalid());
    };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return Err(invalid());
    }
    let number = |part: &str| -> Result<u16, ApiError> {
        if part.bytes().all(|byte| byte.is_ascii_digit()) {
            part.parse().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    let (year, month, day) = (number(year)?, number(month)?, number(day)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(invalid()),
    };
    if year < 1900 || day == 0 || day > days_in_month {
        return Err(invalid());
    }
    Ok(Some(SinceDate {
        year,
        month: u8::try_from(month).map_err(|_| invalid())?,
        day: u8::try_from(day).map_err(|_| invalid())?,
    }))
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
        let since = parse_since(Some("2026-10-01")).unwrap().unwrap();
        assert_eq!(since.start_in_china(), "2026-10-01T00:00:00+08:00");
        assert_eq!(parse_since(None).unwrap(), None);
        assert!(parse_since(Some("2024-02-29")).unwrap().is_some());
        for bad in [
            "2025-02-29",
            "2026-13-01",
            "2026-1-01",
            "yesterday",
            "2026-10-01T08:00",
        ] {
            assert_eq!(
                message(parse_since(Some(bad)).map(|_| Parameters::default())),
                format!("since must be a date written YYYY-MM-DD, got {bad:?}")
            );
        }
    }
}
