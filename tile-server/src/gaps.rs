//! `GET /api/v1/gaps?street=CODE | community=CODE [&min_area_m2=…][&household_limit=…]`:
//! where the grids of an area break seamless cover (无缝覆盖), as a GeoJSON
//! FeatureCollection with one feature per finding. Staff only, like the
//! `gap_findings` tiles.

use crate::area_params::{multi_polygon_json, polygon_rings, require_area};
use crate::auth::Staff;
use crate::{ApiError, SharedState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderName};
use axum::Json;
use gridmap_store::topology_queries::{load_topology, AreaFilter};
use gridmap_tiles::gap_layer::tessellation;
use gridmap_topology::{analyse, Finding, Geometry, Parameters};
use serde::Deserialize;
use serde_json::{json, Value};

/// Raw query parameters; parsed by hand so every mistake gets a clear message.
#[derive(Debug, Deserialize)]
pub struct GapsParams {
    street: Option<String>,
    community: Option<String>,
    min_area_m2: Option<String>,
    household_limit: Option<String>,
}

/// Staff only ([`Staff`]), like the `gap_findings` tiles: findings name
/// buildings and count households grid by grid.
pub async fn gaps(
    State(state): State<SharedState>,
    _staff: Staff,
    params: Result<Query<GapsParams>, QueryRejection>,
) -> Result<([(HeaderName, &'static str); 1], Json<Value>), ApiError> {
    let Query(params) = params.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let filter = parse_filter(params.street.as_deref(), params.community.as_deref())?;
    let parameters = parse_parameters(
        params.min_area_m2.as_deref(),
        params.household_limit.as_deref(),
    )?;
    let report = report(&state.pool, &filter, parameters)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            let level = match filter {
                AreaFilter::Street(_) => "street",
                AreaFilter::Community(_) => "community",
            };
            ApiError::NotFound(format!("no {level} with code {}", filter.code()))
        })?;
    Ok(([(header::CACHE_CONTROL, "private, no-cache")], Json(report)))
}

/// Why a gap report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GapsError {
    #[error("loading the area's grids, buildings and service centres")]
    Load(#[from] gridmap_store::StoreError),
    #[error("the analysis stopped unexpectedly")]
    Analysis(#[from] tokio::task::JoinError),
}

/// The findings of one street or community as the GeoJSON FeatureCollection
/// `GET /api/v1/gaps` answers (also behind the `gridmap-gaps` command);
/// `None` when the area does not exist.
///
/// # Errors
/// When the area cannot be loaded.
pub async fn report(
    pool: &sqlx::PgPool,
    filter: &AreaFilter,
    parameters: Parameters,
) -> Result<Option<Value>, GapsError> {
    let Some(records) = load_topology(pool, filter).await? else {
        return Ok(None);
    };
    // Unions and overlays of a whole street take tens of milliseconds or more;
    // they run on the blocking pool so they never stall the async workers.
    let findings =
        tokio::task::spawn_blocking(move || analyse(&tessellation(records), &parameters)).await?;
    Ok(Some(feature_collection(&findings)))
}

/// Exactly one of `street` (9 digits) and `community` (12 digits).
fn parse_filter(street: Option<&str>, community: Option<&str>) -> Result<AreaFilter, ApiError> {
    require_area(street, community)
}

fn parse_parameters(
    min_area_m2: Option<&str>,
    household_limit: Option<&str>,
) -> Result<Parameters, ApiError> {
    let mut parameters = Parameters::default();
    if let Some(value) = min_area_m2 {
        parameters.min_area_m2 = value.trim().parse().map_err(|_| {
            ApiError::BadRequest(format!("min_area_m2 must be a number, got {value:?}"))
        })?;
    }
    if let Some(value) = household_limit {
        parameters.household_limit = value.trim().parse().map_err(|_| {
            ApiError::BadRequest(format!("household_limit must be an integer, got {value:?}"))
        })?;
    }
    parameters
        .validated()
        .map_err(|err| ApiError::BadRequest(err.to_string()))
}

fn feature_collection(findings: &[Finding]) -> Value {
    let features: Vec<Value> = findings
        .iter()
        .map(|finding| {
            json!({
                "type": "Feature",
                "geometry": geometry_json(&finding.geometry),
                "properties": {
                    "kind": finding.kind.as_str(),
                    "codes": finding.codes,
                    "area_m2": finding.area_m2,
                    "point": [finding.point.x(), finding.point.y()],
                },
            })
        })
        .collect();
    json!({ "type": "FeatureCollection", "features": features })
}

/// GeoJSON for the two shapes findings carry: points and multipolygons.
/// Anything else has no place in a finding and is written as `null`.
fn geometry_json(geometry: &Geometry) -> Value {
    match geometry {
        Geometry::Point(point) => json!({ "type": "Point", "coordinates": [point.x(), point.y()] }),
        Geometry::MultiPolygon(multi) => multi_polygon_json(multi),
        Geometry::Polygon(polygon) => json!({
            "type": "Polygon",
            "coordinates": polygon_rings(polygon),
        }),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(street: Option<&str>, community: Option<&str>, expected: Result<AreaFilter, &str>) {
        let got = parse_filter(street, community).map_err(|err| err.to_string());
        assert_eq!(
            got,
            expected.map_err(str::to_owned),
            "{street:?} {community:?}"
        );
    }

    #[test]
    fn parses_and_rejects_filters() {
        check(
            Some("370681001"),
            None,
            Ok(AreaFilter::Street("370681001".to_owned())),
        );
        check(
            None,
            Some("370681001001"),
            Ok(AreaFilter::Community("370681001001".to_owned())),
        );
        check(
            None,
            None,
            Err("give one of the query parameters street or community"),
        );
        check(
            Some("370681001"),
            Some("370681001001"),
            Err("give only one of the query parameters street and community"),
        );
        check(
            Some("37068100x"),
            None,
            Err("street must be a code of 9 digits, got \"37068100x\""),
        );
        check(
            None,
            Some("370681001"),
            Err("community must be a code of 12 digits, got \"370681001\""),
        );
    }

    #[test]
    fn rejects_meaningless_parameters() {
        assert!(parse_parameters(Some("-1"), None).is_err());
        assert!(parse_parameters(None, Some("many")).is_err());
        let parameters = parse_parameters(Some("0.5"), Some("300")).unwrap();
        assert_eq!(parameters.min_area_m2, 0.5);
        assert_eq!(parameters.household_limit, 300);
    }
}
