//! Reads for the seamless-cover checks: the communities, grids, buildings and
//! service centres of one street or one community.
//!
//! Codes are hierarchical, so "of a street" means "whose code starts with the
//! street's code". Grid workers' names are read only as a yes/no: no query
//! here selects `worker_name` or `worker_phone` themselves.

use crate::queries::decode_multipolygon;
use crate::StoreError;
use geo_types::MultiPolygon;
use sqlx::PgPool;

/// The area to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AreaFilter {
    Street(String),
    Community(String),
}

impl AreaFilter {
    /// The code every community, grid and building of the area starts with.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            AreaFilter::Street(code) | AreaFilter::Community(code) => code,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CommunityShape {
    pub code: String,
    pub geom: MultiPolygon<f64>,
}

#[derive(Debug, Clone)]
pub struct GridCoverRecord {
    pub code: String,
    pub community_code: String,
    pub geom: MultiPolygon<f64>,
    /// A non-blank `worker_name` is set; the name itself is not read.
    pub has_worker: bool,
    /// The sum of the households of the grid's buildings.
    pub households: i64,
}

#[derive(Debug, Clone)]
pub struct BuildingShape {
    pub code: String,
    pub grid_code: String,
    pub geom: MultiPolygon<f64>,
}

#[derive(Debug, Clone)]
pub struct ServiceCentreRecord {
    pub code: String,
    pub community_code: String,
    pub area_m2: Option<f64>,
    /// The sum of the households of the community's buildings.
    pub community_households: i64,
    pub lon: f64,
    pub lat: f64,
}

/// Everything the checks read for one area.
#[derive(Debug, Clone, Default)]
pub struct TopologyRecords {
    pub communities: Vec<CommunityShape>,
    pub grids: Vec<GridCoverRecord>,
    pub buildings: Vec<BuildingShape>,
    pub service_centres: Vec<ServiceCentreRecord>,
}

/// Loads the area's records, or `None` when no street or community has the
/// filter's code.
///
/// # Errors
/// On a database error or a geometry that does not decode as a multipolygon.
pub async fn load_topology(
    pool: &PgPool,
    filter: &AreaFilter,
) -> Result<Option<TopologyRecords>, StoreError> {
    let code = filter.code();
    let exists_sql = match filter {
        AreaFilter::Street(_) => "SELECT EXISTS (SELECT 1 FROM streets WHERE code = $1)",
        AreaFilter::Community(_) => "SELECT EXISTS (SELECT 1 FROM communities WHERE code = $1)",
    };
    let exists: bool = sqlx::query_scalar(exists_sql)
        .bind(code)
        .fetch_one(pool)
        .await
        .map_err(StoreError::query(format!("looking up area {code}")))?;
    if !exists {
        return Ok(None);
    }
    Ok(Some(TopologyRecords {
        communities: load_communities(pool, code).await?,
        grids: load_grids(pool, code).await?,
        buildings: load_buildings(pool, code).await?,
        service_centres: load_service_centres(pool, code).await?,
    }))
}

async fn load_communities(pool: &PgPool, code: &str) -> Result<Vec<CommunityShape>, StoreError> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT code, ST_AsBinary(geom) FROM communities
          WHERE starts_with(code, $1) ORDER BY code",
    )
    .bind(code)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query(format!(
        "loading the communities of {code}"
    )))?;
    rows.into_iter()
        .map(|(code, wkb)| {
            let geom = decode_multipolygon(&wkb, &code)?;
            Ok(CommunityShape { code, geom })
        })
        .collect()
}

async fn load_grids(pool: &PgPool, code: &str) -> Result<Vec<GridCoverRecord>, StoreError> {
    type Row = (String, String, Vec<u8>, bool, i64);
    // The households are summed in SQL so no building row travels for it,
    // in one pass over the area's buildings (a building's code starts with
    // its grid's): a subquery per grid or per centre depends on statistics,
    // and right after an import, before autovacuum analyses the tables, the
    // planner scanned every building once per service centre (1.8 s for one
    // street of a Zibo-sized city instead of tens of milliseconds).
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT g.code, g.community_code, ST_AsBinary(g.geom),
                coalesce(btrim(g.worker_name), '') <> '',
                coalesce(h.households, 0)::bigint
           FROM grids g
           LEFT JOIN (SELECT grid_code, sum(households) AS households FROM buildings
                       WHERE starts_with(code, $1) GROUP BY grid_code) h ON h.grid_code = g.code
          WHERE starts_with(g.code, $1)
          ORDER BY g.code",
    )
    .bind(code)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query(format!("loading the grids of {code}")))?;
    rows.into_iter()
        .map(|(code, community_code, wkb, has_worker, households)| {
            let geom = decode_multipolygon(&wkb, &code)?;
            Ok(GridCoverRecord {
                code,
                community_code,
                geom,
                has_worker,
                households,
            })
        })
        .collect()
}

async fn load_buildings(pool: &PgPool, code: &str) -> Result<Vec<BuildingShape>, StoreError> {
    let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT code, grid_code, ST_AsBinary(geom) FROM buildings
          WHERE starts_with(code, $1) ORDER BY code",
    )
    .bind(code)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query(format!(
        "loading the buildings of {code}"
    )))?;
    rows.into_iter()
        .map(|(code, grid_code, wkb)| {
            let geom = decode_multipolygon(&wkb, &code)?;
            Ok(BuildingShape {
                code,
                grid_code,
                geom,
            })
        })
        .collect()
}

async fn load_service_centres(
    pool: &PgPool,
    code: &str,
) -> Result<Vec<ServiceCentreRecord>, StoreError> {
    type Row = (String, String, Option<f64>, i64, f64, f64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.code, s.community_code, s.area_m2, coalesce(h.households, 0)::bigint,
                ST_X(s.geom), ST_Y(s.geom)
           FROM stations s
           LEFT JOIN (SELECT g.community_code, sum(b.households) AS households
                        FROM buildings b JOIN grids g ON g.code = b.grid_code
                       WHERE starts_with(b.code, $1)
                       GROUP BY g.community_code) h ON h.community_code = s.community_code
          WHERE s.kind = 'service_centre' AND starts_with(s.community_code, $1)
          ORDER BY s.code",
    )
    .bind(code)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query(format!(
        "loading the service centres of {code}"
    )))?;
    Ok(rows
        .into_iter()
        .map(
            |(code, community_code, area_m2, community_households, lon, lat)| ServiceCentreRecord {
                code,
                community_code,
                area_m2,
                community_households,
                lon,
                lat,
            },
        )
        .collect())
}
