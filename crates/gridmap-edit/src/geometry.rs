//! Geometries as clients send them (GeoJSON in CGCS2000 lon/lat) checked and
//! turned into EWKB, the form the edit queries pass around.

use crate::EditError;
use serde_json::Value;
use sqlx::PgConnection;

/// China's extent with a margin, in degrees: a coordinate outside it is a
/// mistake, not a place gridmap serves.
const LON_RANGE: (f64, f64) = (73.0, 136.0);
const LAT_RANGE: (f64, f64) = (3.0, 54.0);

/// The GeoJSON types accepted where a polygon is expected.
const POLYGONAL: &[&str] = &["Polygon", "MultiPolygon"];

/// Checks a polygonal GeoJSON geometry and returns it as a valid
/// MultiPolygon in EWKB (SRID 4490). `what` names it in error messages.
pub(crate) async fn polygon(
    conn: &mut PgConnection,
    geometry: &Value,
    what: &str,
) -> Result<Vec<u8>, EditError> {
    parse(conn, geometry, what, POLYGONAL, true).await
}

/// As [`polygon`], for a LineString (a split line).
pub(crate) async fn line(
    conn: &mut PgConnection,
    geometry: &Value,
    what: &str,
) -> Result<Vec<u8>, EditError> {
    parse(conn, geometry, what, &["LineString"], false).await
}

/// As [`polygon`], for a Point (a station).
pub(crate) async fn point(
    conn: &mut PgConnection,
    geometry: &Value,
    what: &str,
) -> Result<Vec<u8>, EditError> {
    parse(conn, geometry, what, &["Point"], false).await
}

async fn parse(
    conn: &mut PgConnection,
    geometry: &Value,
    what: &str,
    types: &[&str],
    multi: bool,
) -> Result<Vec<u8>, EditError> {
    let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("");
    if !types.contains(&kind) {
        return Err(EditError::Invalid(format!(
            "{what}: expected a GeoJSON {} geometry, got {}",
            types.join(" or "),
            if kind.is_empty() { "none" } else { kind }
        )));
    }
    let mut positions = Vec::new();
    collect_positions(geometry.get("coordinates"), &mut positions);
    if positions.is_empty() {
        return Err(EditError::Invalid(format!("{what}: empty geometry")));
    }
    for &(lon, lat) in &positions {
        check_position(lon, lat)
            .map_err(|reason| EditError::Invalid(format!("{what}: {reason}")))?;
    }
    let row: (Option<bool>, Option<String>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT ST_IsValid(g), ST_IsValidReason(g),
                ST_AsEWKB(CASE WHEN $2 THEN ST_Multi(g) ELSE g END)
           FROM (SELECT ST_SetSRID(ST_GeomFromGeoJSON($1), 4490) AS g) input",
    )
    .bind(geometry.to_string())
    .bind(multi)
    .fetch_one(&mut *conn)
    .await
    .map_err(|err| match err {
        sqlx::Error::Database(db) => {
            EditError::Invalid(format!("{what}: not a readable geometry: {}", db.message()))
        }
        other => EditError::Database(other),
    })?;
    match row {
        (Some(true), _, Some(ewkb)) => Ok(ewkb),
        (_, reason, _) => Err(EditError::Invalid(format!(
            "{what}: invalid geometry: {}",
            reason.unwrap_or_else(|| "unreadable".to_owned())
        ))),
    }
}

fn collect_positions(coordinates: Option<&Value>, out: &mut Vec<(f64, f64)>) {
    let Some(Value::Array(items)) = coordinates else {
        return;
    };
    match (
        items.first().and_then(Value::as_f64),
        items.get(1).and_then(Value::as_f64),
    ) {
        (Some(lon), Some(lat)) => out.push((lon, lat)),
        _ => {
            for item in items {
                collect_positions(Some(item), out);
            }
        }
    }
}

/// Refuses positions that betray a wrong CRS or swapped axes.
fn check_position(lon: f64, lat: f64) -> Result<(), String> {
    let inside = |value: f64, (low, high): (f64, f64)| (low..=high).contains(&value);
    if inside(lon, LON_RANGE) && inside(lat, LAT_RANGE) {
        return Ok(());
    }
    if inside(lat, LON_RANGE) && inside(lon, LAT_RANGE) {
        return Err(format!(
            "position [{lon}, {lat}] looks like [lat, lon]: GeoJSON wants longitude first"
        ));
    }
    if lon.abs() > 180.0 || lat.abs() > 90.0 {
        return Err(format!(
            "position [{lon}, {lat}] is not in degrees (projected metres?): send CGCS2000 longitude and latitude"
        ));
    }
    Err(format!(
        "position [{lon}, {lat}] lies outside China: send CGCS2000 longitude and latitude"
    ))
}

#[cfg(test)]
mod tests {
    use super::check_position;

    #[test]
    fn wrong_axes_and_units_are_named() {
        assert!(check_position(120.4, 37.6).is_ok());
        assert!(check_position(37.6, 120.4)
            .unwrap_err()
            .contains("looks like [lat, lon]"));
        assert!(check_position(40_512_345.0, 4_164_000.0)
            .unwrap_err()
            .contains("projected metres"));
        assert!(check_position(24.9, 60.2)
            .unwrap_err()
            .contains("outside China"));
    }
}
