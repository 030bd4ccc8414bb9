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

/// A grid unit (网格单元) as the lookup index holds it.
#[derive(Debug, Clone)]
pub struct GridUnitRecord {
    pub code: String,
    pub name: String,
    pub geom: MultiPolygon<f64>,
}

/// A departmental grid (多网合一 overlay) as the lookup indexes it.
#[derive(Debug, Clone)]
pub struct DepartmentGridRecord {
    pub code: String,
    pub department: String,
    pub name: String,
    pub geom: MultiPolygon<f64>,
}

/// Every departmental grid, by department and code.
///
/// # Errors
/// On a database error or a geometry that does not decode as a multipolygon.
pub async fn load_department_grids(pool: &PgPool) -> Result<Vec<DepartmentGridRecord>, StoreError> {
    let rows: Vec<(String, String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT code, department, name, ST_AsBinary(geom) FROM department_grids
          ORDER BY department, code",
    )
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("loading departmental grids"))?;
    rows.into_iter()
        .map(|(code, department, name, wkb)| {
            let geom = decode_multipolygon(&wkb, &code)?;
            Ok(DepartmentGridRecord {
                code,
                department,
                name,
                geom,
            })
        })
        .collect()
}

/// Every grid unit, in code order.
///
/// # Errors
/// On a database error or a geometry that does not decode as a multipolygon.
pub async fn load_grid_units(pool: &PgPool) -> Result<Vec<GridUnitRecord>, StoreError> {
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT code, name, ST_AsBinary(geom) FROM grid_units ORDER BY code")
            .fetch_all(pool)
            .await
            .map_err(StoreError::query("loading grid units"))?;
    rows.into_iter()
        .map(|(code, name, wkb)| {
            let geom = decode_multipolygon(&wkb, &code)?;
            Ok(GridUnitRecord { code, name, geom })
        })
        .collect()
}

/// A building footprint with its standard address (标准地址), if it has one.
#[derive(Debug, Clone)]
pub struct BuildingRecord {
    pub code: String,
    pub name: String,
    pub floors: Option<i32>,
    /// The building's address with the smallest code, as `(code, address)`.
    pub address: Option<(String, String)>,
    pub geom: MultiPolygon<f64>,
}

/// The query of [`load_buildings`]. Each building's first address comes
/// from one pass over the addresses (DISTINCT ON, then a merge or hash join),
/// not from a subquery per building: without statistics, as right after an
/// import and before autovacuum analyses the tables, the planner ran such a
/// subquery as a walk of the addresses in code order for every building,
/// 14.5 s instead of 19 ms for the 22,845 buildings of the demo city, and
/// quadratic beyond.
pub const BUILDINGS_WITH_ADDRESSES: &str =
    "SELECT b.code, b.name, b.floors, a.code, a.address, ST_AsBinary(b.geom)
       FROM buildings b
       LEFT JOIN (SELECT DISTINCT ON (building_code) building_code, code, address
                    FROM addresses
                   ORDER BY building_code, code) a ON a.building_code = b.code
      ORDER BY b.code";

/// Every building with its first address, in code order. Household counts
/// are left out: they describe residents and have no place in a lookup.
///
/// # Errors
/// On a database error or a geometry that does not decode as a multipolygon.
pub async fn load_buildings(pool: &PgPool) -> Result<Vec<BuildingRecord>, StoreError> {
    type Row = (
        String,
        String,
        Option<i32>,
        Option<String>,
        Option<String>,
        Vec<u8>,
    );
    let rows: Vec<Row> = sqlx::query_as(BUILDINGS_WITH_ADDRESSES)
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("loading buildings with their addresses"))?;
    rows.into_iter()
        .map(|(code, name, floors, address_code, address, wkb)| {
            let geom = decode_multipolygon(&wkb, &code)?;
            Ok(BuildingRecord {
                code,
                name,
                floors,
                address: address_code.zip(address),
                geom,
            })
        })
        .collect()
}

/// A service point on the map: party-mass centre, red station, grid station
/// or rider rest stop. Opening hours and amenities stay in the tiles.
#[derive(Debug, Clone)]
pub struct StationRecord {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub lon: f64,
    pub lat: f64,
}

/// Every station, in code order.
///
/// # Errors
/// On a database error.
pub async fn load_stations(pool: &PgPool) -> Result<Vec<StationRecord>, StoreError> {
    let rows: Vec<(String, String, String, f64, f64)> = sqlx::query_as(
        "SELECT code, name, kind, ST_X(geom), ST_Y(geom) FROM stations ORDER BY code",
    )
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("loading stations"))?;
    Ok(rows
        .into_iter()
        .map(|(code, name, kind, lon, lat)| StationRecord {
            code,
            name,
            kind,
            lon,
            lat,
        })
        .collect())
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
