//! The in-memory grid index the lookups read, built from PostGIS.

use gridmap_index::{Located, PolygonIndex};
use serde::Serialize;

/// What a lookup answers about a grid besides its code.
#[derive(Debug, Clone)]
pub struct GridChain {
    pub grid: Unit,
    pub kind: String,
    pub status: String,
    pub community: Unit,
    pub street: Unit,
    pub district: Unit,
}

/// A code and name at one level of the administrative chain.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    pub code: String,
    pub name: String,
}

pub type GridIndex = PolygonIndex<GridChain>;

/// Reads every grid with its chain and indexes it.
///
/// # Errors
/// When the grids cannot be read.
pub async fn load_grid_index(pool: &sqlx::PgPool) -> Result<GridIndex, gridmap_store::StoreError> {
    let started = std::time::Instant::now();
    let records = gridmap_store::queries::load_grids(pool).await?;
    let items = records
        .into_iter()
        .map(|record| Located {
            code: record.code.clone(),
            payload: GridChain {
                grid: Unit {
                    code: record.code,
                    name: record.name,
                },
                kind: record.kind,
                status: record.status,
                community: Unit {
                    code: record.community_code,
                    name: record.community_name,
                },
                street: Unit {
                    code: record.street_code,
                    name: record.street_name,
                },
                district: Unit {
                    code: record.district_code,
                    name: record.district_name,
                },
            },
            polygon: record.geom,
        })
        .collect();
    let index = PolygonIndex::new(items);
    tracing::info!(
        grids = index.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "grid index built"
    );
    Ok(index)
}
