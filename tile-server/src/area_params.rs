//! What the analysis endpoints (gaps, circles, coverage) share: the street or
//! community they are asked about, and polygons written as GeoJSON.

use crate::ApiError;
use gridmap_store::topology_queries::AreaFilter;
use gridmap_topology::{MultiPolygon, Polygon};
use serde_json::{json, Value};

/// At most one of `street` (9 digits) and `community` (12 digits).
pub fn parse_area(
    street: Option<&str>,
    community: Option<&str>,
) -> Result<Option<AreaFilter>, ApiError> {
    match (street, community) {
        (None, None) => Ok(None),
        (Some(street), None) => Ok(Some(AreaFilter::Street(parse_code("street", street, 9)?))),
        (None, Some(community)) => Ok(Some(AreaFilter::Community(parse_code(
            "community",
            community,
            12,
        )?))),
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "give only one of the query parameters street and community".to_owned(),
        )),
    }
}

/// Exactly one of `street` and `community`.
pub fn require_area(street: Option<&str>, community: Option<&str>) -> Result<AreaFilter, ApiError> {
    parse_area(street, community)?.ok_or_else(|| {
        ApiError::BadRequest("give one of the query parameters street or community".to_owned())
    })
}

fn parse_code(name: &str, code: &str, digits: usize) -> Result<String, ApiError> {
    let code = code.trim();
    if code.len() == digits && code.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(code.to_owned());
    }
    Err(ApiError::BadRequest(format!(
        "{name} must be a code of {digits} digits, got {code:?}"
    )))
}

pub fn multi_polygon_json(multi: &MultiPolygon) -> Value {
    json!({
        "type": "MultiPolygon",
        "coordinates": multi.0.iter().map(polygon_rings).collect::<Vec<_>>(),
    })
}

pub fn polygon_rings(polygon: &Polygon) -> Vec<Vec<[f64; 2]>> {
    std::iter::once(polygon.exterior())
        .chain(polygon.interiors())
        .map(|ring| ring.0.iter().map(|coord| [coord.x, coord.y]).collect())
        .collect()
}
