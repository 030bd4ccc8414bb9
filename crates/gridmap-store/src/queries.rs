//! Typed reads over the schema.

use crate::StoreError;
use geo_traits::to_geo::ToGeoGeometry;
use geo_types::{Geometry, MultiPolygon};
use sqlx::PgPool;

/// A grid with its whole administrative chain, as the lookup index holds it.
#[derive(Debug, Clone)]
pub struct GridRecord {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub community_code: String,
    pub community_name: String,
    pub street_code: String,
    pub street_name: String,
    pub district_code: String,
    pub district_name: String,
    pub geom: MultiPolygon<f64>,
}

/// Every grid with its chain, in code order.
///
/// # Errors
/// On a database error or a geometry that does not decode as a multipolygon.
pub async fn load_grids(pool: &PgPool) -> Result<Vec<GridRecord>, StoreError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        Vec<u8>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT g.code, g.name, g.kind, g.status,
                c.code, c.name, s.code, s.name, d.code, d.name,
                ST_AsBinary(g.geom)
           FROM grids g
           JOIN communities c ON c.code = g.community_code
           JOIN streets s ON s.code = c.street_code
           JOIN districts d ON d.code = s.district_code
          ORDER BY g.code",
    )
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("loading grids with their chain"))?;
    rows.into_iter()
        .map(|row| {
            let geom = decode_multipolygon(&row.10, &row.0)?;
            Ok(GridRecord {
                code: row.0,
                name: row.1,
                kind: row.2,
                status: row.3,
                community_code: row.4,
                community_name: row.5,
                street_code: row.6,
                street_name: row.7,
                district_code: row.8,
                district_name: row.9,
                geom,
            })
        })
        .collect()
}

/// The bounding box of all districts as `[west, south, east, north]` in
/// CGCS2000 degrees, or `None` while the database holds no district.
///
/// # Errors
/// On a database error.
pub async fn extent(pool: &PgPool) -> Result<Option<[f64; 4]>, StoreError> {
    let row: (Option<f64>, Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
           FROM (SELECT ST_Extent(geom)::geometry AS e FROM districts) x",
    )
    .fetch_one(pool)
    .await
    .map_err(StoreError::query("reading the extent of the districts"))?;
    Ok(match row {
        (Some(w), Some(s), Some(e), Some(n)) => Some([w, s, e, n]),
        _ => None,
    })
}

/// Decodes WKB from PostGIS into a multipolygon (a polygon is promoted).
///
/// # Errors
/// [`StoreError::Geometry`] naming `what` when the bytes are not a (multi)polygon.
pub fn decode_multipolygon(bytes: &[u8], what: &str) -> Result<MultiPolygon<f64>, StoreError> {
    let wkb = wkb::reader::read_wkb(bytes).map_err(|err| StoreError::Geometry {
        what: what.to_owned(),
        reason: err.to_string(),
    })?;
    match wkb.to_geometry() {
        Geometry::MultiPolygon(multi) => Ok(multi),
        Geometry::Polygon(polygon) => Ok(MultiPolygon(vec![polygon])),
        other => Err(StoreError::Geometry {
            what: what.to_owned(),
            reason: format!("expected a polygon, found {other:?}")
                .chars()
                .take(120)
                .collect(),
        }),
    }
}
