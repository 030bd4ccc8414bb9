//! Reads for the walking service circles: roads, stations of one kind,
//! buildings with their households and rider activity reports.
//!
//! Households are an aggregate, read here for internal computation only; the
//! public endpoints built on these reads answer with totals, never with the
//! households of one building. Rider reports are read as bare points with
//! their community: no time, kind or source leaves this module, and callers
//! publish totals only.

use crate::topology_queries::AreaFilter;
use crate::StoreError;
use geo_traits::to_geo::ToGeoGeometry;
use geo_types::{Geometry, LineString};
use sqlx::PgPool;

/// A station as the circles read it.
#[derive(Debug, Clone, PartialEq)]
pub struct CircleStation {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub community_code: String,
    pub lon: f64,
    pub lat: f64,
}

/// A building's centroid and households.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildingHouseholds {
    pub code: String,
    pub community_code: String,
    pub households: i64,
    pub lon: f64,
    pub lat: f64,
}

/// Whether a street or community with the filter's code exists.
///
/// # Errors
/// On a database error.
pub async fn area_exists(pool: &PgPool, filter: &AreaFilter) -> Result<bool, StoreError> {
    let sql = match filter {
        AreaFilter::Street(_) => "SELECT EXISTS (SELECT 1 FROM streets WHERE code = $1)",
        AreaFilter::Community(_) => "SELECT EXISTS (SELECT 1 FROM communities WHERE code = $1)",
    };
    sqlx::query_scalar(sql)
        .bind(filter.code())
        .fetch_one(pool)
        .await
        .map_err(StoreError::query(format!(
            "looking up area {}",
            filter.code()
        )))
}

/// The roads within `margin_m` of the area's polygon, or every road when
/// `area` is `None`.
///
/// The margin lets a circle of a station near the area's edge walk on into
/// the next street. It is applied in Web Mercator, whose metres are
/// `1 / cos(latitude)` times ground metres, so the query scales it by that
/// factor and can use the `geom_3857` index.
///
/// # Errors
/// On a database error or a geometry that is not a line string.
pub async fn load_roads(
    pool: &PgPool,
    area: Option<&AreaFilter>,
    margin_m: f64,
) -> Result<Vec<LineString<f64>>, StoreError> {
    let rows: Vec<(i64, Vec<u8>)> = match area {
        None => sqlx::query_as("SELECT id, ST_AsBinary(geom) FROM roads ORDER BY id")
            .fetch_all(pool)
            .await
            .map_err(StoreError::query("loading every road"))?,
        Some(filter) => {
            let table = match filter {
                AreaFilter::Street(_) => "streets",
                AreaFilter::Community(_) => "communities",
            };
            let sql = format!(
                "WITH area AS (
                     SELECT geom_3857,
                            $2 / cos(radians(ST_Y(ST_Centroid(geom)))) AS margin
                       FROM {table} WHERE code = $1)
                 SELECT r.id, ST_AsBinary(r.geom)
                   FROM roads r, area a
                  WHERE ST_DWithin(r.geom_3857, a.geom_3857, a.margin)
                  ORDER BY r.id"
            );
            sqlx::query_as(&sql)
                .bind(filter.code())
                .bind(margin_m)
                .fetch_all(pool)
                .await
                .map_err(StoreError::query(format!(
                    "loading the roads near {}",
                    filter.code()
                )))?
        }
    };
    rows.into_iter()
        .map(|(id, wkb)| decode_line_string(&wkb, &format!("road {id}")))
        .collect()
}

/// The roads meeting a lon/lat box `[west, south, east, north]`.
///
/// # Errors
/// On a database error or a geometry that is not a line string.
pub async fn load_roads_in_bbox(
    pool: &PgPool,
    bbox: [f64; 4],
) -> Result<Vec<LineString<f64>>, StoreError> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT id, ST_AsBinary(geom) FROM roads
          WHERE geom_3857 && ST_Transform(ST_MakeEnvelope($1, $2, $3, $4, 4490), 3857)
            AND ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4490))
          ORDER BY id",
    )
    .bind(bbox[0])
    .bind(bbox[1])
    .bind(bbox[2])
    .bind(bbox[3])
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("loading the roads of a box"))?;
    rows.into_iter()
        .map(|(id, wkb)| decode_line_string(&wkb, &format!("road {id}")))
        .collect()
}

/// The stations of `kind` in the area (by community code), or in the whole
/// city when `area` is `None`, in code order.
///
/// # Errors
/// On a database error.
pub async fn load_circle_stations(
    pool: &PgPool,
    kind: &str,
    area: Option<&AreaFilter>,
) -> Result<Vec<CircleStation>, StoreError> {
    let prefix = area.map_or("", AreaFilter::code);
    let rows: Vec<(String, String, String, String, f64, f64)> = sqlx::query_as(
        "SELECT code, name, kind, community_code, ST_X(geom), ST_Y(geom)
           FROM stations
          WHERE kind = $1 AND starts_with(community_code, $2)
          ORDER BY code",
    )
    .bind(kind)
    .bind(prefix)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query(format!("loading the {kind} stations")))?;
    Ok(rows
        .into_iter()
        .map(
            |(code, name, kind, community_code, lon, lat)| CircleStation {
                code,
                name,
                kind,
                community_code,
                lon,
                lat,
            },
        )
        .collect())
}

/// The buildings of the area with their households and centroids, in code
/// order. For internal use: callers must not publish one building's
/// households.
///
/// # Errors
/// On a database error.
pub async fn load_building_households(
    pool: &PgPool,
    area: &AreaFilter,
) -> Result<Vec<BuildingHouseholds>, StoreError> {
    let rows: Vec<(String, String, i64, f64, f64)> = sqlx::query_as(
        "SELECT b.code, g.community_code, b.households::bigint,
                ST_X(ST_Centroid(b.geom)), ST_Y(ST_Centroid(b.geom))
           FROM buildings b JOIN grids g ON g.code = b.grid_code
          WHERE starts_with(b.code, $1)
          ORDER BY b.code",
    )
    .bind(area.code())
    .fetch_all(pool)
    .await
    .map_err(StoreError::query(format!(
        "loading the buildings of {}",
        area.code()
    )))?;
    Ok(rows
        .into_iter()
        .map(
            |(code, community_code, households, lon, lat)| BuildingHouseholds {
                code,
                community_code,
                households,
                lon,
                lat,
            },
        )
        .collect())
}

/// A rider activity report as coverage counts it: where, and in which
/// community (the smallest code among the communities whose closed area
/// covers the point, the lookup's boundary rule).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPoint {
    pub community_code: String,
    pub lon: f64,
    pub lat: f64,
}

/// The rider reports inside the area's communities, reported at or after
/// `since` when given (an RFC 3339 timestamp or any text PostgreSQL casts to
/// `timestamptz`), in id order. For internal use: callers must not publish a
/// single report's location.
///
/// # Errors
/// On a database error, including a `since` PostgreSQL cannot read as a time.
pub async fn load_report_points(
    pool: &PgPool,
    area: &AreaFilter,
    since: Option<&str>,
) -> Result<Vec<ReportPoint>, StoreError> {
    let table = match area {
        AreaFilter::Street(_) => "streets",
        AreaFilter::Community(_) => "communities",
    };
    // The area's polygon narrows the reports through the index; the
    // community of each is then the first by code that covers it, so a
    // report on a shared edge counts once, in one community.
    let sql = format!(
        "SELECT c.code, ST_X(r.geom), ST_Y(r.geom)
           FROM {table} a
           JOIN rider_reports r
             ON r.geom_3857 && a.geom_3857 AND ST_Intersects(r.geom, a.geom)
          CROSS JOIN LATERAL (
                SELECT code FROM communities c
                 WHERE c.geom_3857 && r.geom_3857 AND ST_Intersects(c.geom, r.geom)
                 ORDER BY code LIMIT 1) c
          WHERE a.code = $1
            AND starts_with(c.code, $1)
            AND ($2::timestamptz IS NULL OR r.reported_at >= $2::timestamptz)
          ORDER BY r.id"
    );
    let rows: Vec<(String, f64, f64)> = sqlx::query_as(&sql)
        .bind(area.code())
        .bind(since)
        .fetch_all(pool)
        .await
        .map_err(StoreError::query(format!(
            "loading the rider reports of {}",
            area.code()
        )))?;
    Ok(rows
        .into_iter()
        .map(|(community_code, lon, lat)| ReportPoint {
            community_code,
            lon,
            lat,
        })
        .collect())
}

/// Decodes WKB from PostGIS into a line string.
///
/// # Errors
/// [`StoreError::Geometry`] naming `what` when the bytes are not a line string.
pub fn decode_line_string(bytes: &[u8], what: &str) -> Result<LineString<f64>, StoreError> {
    let wkb = wkb::reader::read_wkb(bytes).map_err(|err| StoreError::Geometry {
        what: what.to_owned(),
        reason: err.to_string(),
    })?;
    match wkb.to_geometry() {
        Geometry::LineString(line) => Ok(line),
        other => Err(StoreError::Geometry {
            what: what.to_owned(),
            reason: format!("expected a line string, found {other:?}")
                .chars()
                .take(120)
                .collect(),
        }),
    }
}
