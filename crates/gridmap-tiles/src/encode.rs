//! One layer of one tile, encoded by PostGIS.

use crate::{LayerDef, TileCoord, BUFFER, EXTENT};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
#[error("encoding tile {z}/{x}/{y} of layer {layer}")]
pub struct EncodeError {
    pub layer: &'static str,
    pub z: u8,
    pub x: u32,
    pub y: u32,
    #[source]
    pub source: sqlx::Error,
}

/// The SQL that encodes `layer` for tile `($1, $2, $3)` = `(z, x, y)`.
///
/// Features are selected with the tile envelope grown by the clip buffer, the
/// same envelope `ST_AsMVTGeom` clips to, so a feature drawn in the buffer of
/// one tile is also drawn in its neighbour.
#[must_use]
pub fn layer_sql(layer: &LayerDef) -> String {
    let attributes: Vec<String> = layer
        .columns
        .iter()
        .map(|(expr, attr, _)| format!("{expr} AS \"{attr}\""))
        .collect();
    let margin = f64::from(BUFFER) / f64::from(EXTENT);
    format!(
        "SELECT COALESCE(ST_AsMVT(t, '{name}', {EXTENT}, 'geom'), ''::bytea) FROM (
           SELECT {attributes},
                  ST_AsMVTGeom(geom_3857, ST_TileEnvelope($1::int, $2::int, $3::int), {EXTENT}, {BUFFER}, true) AS geom
             FROM {table}
            WHERE geom_3857 && ST_TileEnvelope($1::int, $2::int, $3::int, margin => {margin})
         ) t
         WHERE geom IS NOT NULL",
        name = layer.name,
        attributes = attributes.join(", "),
        table = layer.table,
    )
}

/// Encodes `layer` for `tile`; an empty vector when no feature meets the tile.
///
/// # Errors
/// [`EncodeError`] naming the layer and tile when the query fails.
pub async fn encode_layer(
    pool: &PgPool,
    layer: &'static LayerDef,
    tile: TileCoord,
) -> Result<Vec<u8>, EncodeError> {
    let sql = layer_sql(layer);
    sqlx::query_scalar::<_, Vec<u8>>(&sql)
        .bind(i32::from(tile.z))
        .bind(i64::from(tile.x))
        .bind(i64::from(tile.y))
        .fetch_one(pool)
        .await
        .map_err(|source| EncodeError {
            layer: layer.name,
            z: tile.z,
            x: tile.x,
            y: tile.y,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find_layer;

    #[test]
    fn sql_selects_only_catalogued_columns() {
        let sql = layer_sql(find_layer("grids").unwrap());
        assert!(sql.contains("status AS \"status\""));
        assert!(!sql.contains("worker"));
        assert!(sql.contains("FROM grids"));
        assert!(sql.contains("margin => 0.015625"));
    }
}
